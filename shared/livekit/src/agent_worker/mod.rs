//! LiveKit's agent-worker protocol: callfleet registers with livekit-server as an agent worker
//! (as LiveKit Agents' Python worker does), so that `lk dispatch create --agent-name callfleet`,
//! `CreateAgentDispatch` and SIP dispatch rules with `room_config.agents` offer it jobs.
//!
//! ```no_run
//! use std::sync::Arc;
//! use callfleet_livekit::agent_worker::{AgentWorker, AgentWorkerOptions, JobHandler, Offer, WorkerLoad};
//! use livekit_protocol as proto;
//!
//! struct Calls;
//! impl JobHandler for Calls {
//!     async fn offer(&self, job: proto::Job, _resuming: bool) -> Offer {
//!         // e.g. enqueue `job.metadata` on JetStream (idempotent on `job.id`), then accept.
//!         Offer::Accept {
//!             identity: format!("callfleet-{}", job.id),
//!             name: "callfleet".into(),
//!             metadata: String::new(),
//!             attributes: Default::default(),
//!         }
//!     }
//! }
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let opts = AgentWorkerOptions::new("ws://127.0.0.1:7880", "devkey", "secret", "callfleet");
//! let worker = AgentWorker::new(opts)?;
//! let handle = worker.handle(); // update_job(job_id, JobStatus::JsSuccess, "") when a call ends
//! let (_load, load_rx) = tokio::sync::watch::channel(WorkerLoad::default());
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! worker.run(Arc::new(Calls), load_rx, shutdown, None).await?;
//! # drop(handle);
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! One WebSocket to `<livekit url>/agent` (`Authorization: Bearer <JWT with video.agent>`),
//! binary protobuf `WorkerMessage` / `ServerMessage` ([`wire`]). A connection's life
//! ([`session`]): `RegisterWorkerRequest` (`JT_ROOM` + agent name) → `RegisterWorkerResponse`
//! → `UpdateWorkerStatus` from the caller's [`WorkerLoad`] (again on every change) → serve:
//! - `AvailabilityRequest` (an offer): the handler's [`JobHandler::offer`] runs in its own
//!   task, so several offers may be outstanding; its answer goes back as
//!   `AvailabilityResponse`. A handler slower than [`AgentWorkerOptions::offer_timeout`] is
//!   dropped and the offer declined (logged, [`WorkerEvent::OfferTimedOut`]).
//! - `JobAssignment` (after an accept: the job and the agent's token) →
//!   [`JobHandler::assigned`]; no assignment within 7.5 s of an accept (LiveKit gave up
//!   waiting, or the connection dropped) → [`JobHandler::not_assigned`].
//! - `JobTermination` → [`JobHandler::terminated`].
//! - `WorkerPing` every `ping_interval`; a connection silent for three intervals is dead.
//! - [`AgentWorkerHandle::update_job`] sends `UpdateJobStatus` for a job assigned on the live
//!   connection (LiveKit forgets a worker's jobs when its connection ends).
//!
//! Any disconnect (server restart, network, GoAway) is retried with exponential backoff
//! (0.5 s → 10 s, jittered) and a fresh registration; only bad credentials (HTTP 401) end
//! [`AgentWorker::run`] with an error. Shutdown: status full + draining, outstanding offers
//! answered (each within its timeout), queued job updates sent, close frame, close.
//!
//! livekit-server facts this relies on (v1.13.5, `pkg/service/agentservice.go`,
//! `pkg/agent/worker.go`; the `agent_worker_` integration tests check each): a new worker is
//! available with load 0; a job goes to an available worker whose load is below
//! `agents.target_load` (0.7), chosen at random weighted by `1 - load`; a decline makes the
//! server offer the same job to a worker not yet asked, and a job nobody takes is dropped (the
//! dispatch lists no job; `LaunchJob` in `pkg/agent/client.go` has no retry). The offer comes about 0.2 s after
//! `CreateAgentDispatch`, and the dispatcher's request expires 3 s after it was sent (psrpc's
//! default timeout; the worker side's 10 s `AssignJobTimeout` never comes into play): an
//! accept after 2 s is assigned, one after 4 s is not (livekit-server logs "received
//! availability response for unknown job"). Hence the default `offer_timeout` of 2 s, which
//! leaves a declined job most of a second to find another worker.

mod session;
mod wire;
mod worker;

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use livekit_protocol as proto;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// How to reach LiveKit and what to register as.
#[derive(Clone)]
pub struct AgentWorkerOptions {
    /// `livekit.url`: `ws(s)://` or `http(s)://`; `/agent` is appended to its path.
    pub url: String,
    pub api_key: String,
    pub api_secret: String,
    /// The name dispatches use (`lk dispatch create --agent-name`); never empty (an unnamed
    /// worker would be offered every new room).
    pub agent_name: String,
    /// Shown in LiveKit's logs.
    pub version: String,
    /// Deprecated by LiveKit; `None` for the default namespace.
    pub namespace: Option<String>,
    /// How often the worker pings; three intervals without a word from the server and the
    /// connection counts as dead.
    pub ping_interval: Duration,
    /// How long [`JobHandler::offer`] may take before the client declines by itself.
    pub offer_timeout: Duration,
}

impl AgentWorkerOptions {
    /// Defaults: version = this crate's, no namespace, ping every 10 s, offers answered within
    /// 2 s (livekit-server's dispatcher gives up on a job 3 s after dispatching it).
    pub fn new(url: &str, api_key: &str, api_secret: &str, agent_name: &str) -> Self {
        Self {
            url: url.to_owned(),
            api_key: api_key.to_owned(),
            api_secret: api_secret.to_owned(),
            agent_name: agent_name.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            namespace: None,
            ping_interval: Duration::from_secs(10),
            offer_timeout: Duration::from_secs(2),
        }
    }
}

impl std::fmt::Debug for AgentWorkerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentWorkerOptions")
            .field("url", &self.url)
            .field("api_key", &self.api_key)
            .field("api_secret", &"<redacted>")
            .field("agent_name", &self.agent_name)
            .field("version", &self.version)
            .field("namespace", &self.namespace)
            .field("ping_interval", &self.ping_interval)
            .field("offer_timeout", &self.offer_timeout)
            .finish()
    }
}

/// The answer to an offered job.
#[derive(Debug, Clone, PartialEq)]
pub enum Offer {
    /// Take it: LiveKit then sends a `JobAssignment` with a token to join the room as this
    /// participant (LiveKit adds the attribute `lk.agent_name`).
    Accept {
        identity: String,
        name: String,
        metadata: String,
        attributes: HashMap<String, String>,
    },
    /// Not this worker: LiveKit offers it to the next registered worker, if any.
    Decline,
    /// The job is done without joining (LiveKit marks it successful).
    Terminate,
}

/// What the worker does with offered jobs. Callbacks run in their own tasks.
pub trait JobHandler: Send + Sync + 'static {
    /// Called for every `AvailabilityRequest`. Answer within
    /// [`AgentWorkerOptions::offer_timeout`]: past it the future is dropped (so it should be
    /// cancel-safe) and the client declines, logging it.
    fn offer(&self, job: proto::Job, resuming: bool) -> impl Future<Output = Offer> + Send;

    /// LiveKit assigned an accepted job: `assignment.token` joins its room.
    fn assigned(&self, assignment: proto::JobAssignment) -> impl Future<Output = ()> + Send {
        let _ = assignment;
        async {}
    }

    /// An accepted job that LiveKit did not assign (the answer came too late, or the connection
    /// was lost before the assignment): LiveKit does not consider this worker responsible.
    fn not_assigned(&self, job_id: String, reason: String) -> impl Future<Output = ()> + Send {
        let _ = (job_id, reason);
        async {}
    }

    /// LiveKit terminated an assigned job (its room closed, its dispatch was deleted).
    fn terminated(&self, job_id: String) -> impl Future<Output = ()> + Send {
        let _ = job_id;
        async {}
    }
}

/// The worker's load as the caller sees it.
///
/// livekit-server offers jobs only to a worker that is available and whose load is below its
/// `agents.target_load` (0.7 by default), more often the lower the load.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WorkerLoad {
    /// 0.0 (idle) to 1.0.
    pub load: f32,
    /// Take no new jobs.
    pub full: bool,
}

/// What happened to the connection, for observers (tests, health).
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerEvent {
    /// Registered, and livekit-server's worker loop answered a first ping: from now on
    /// dispatches reach this worker.
    Registered {
        worker_id: String,
    },
    Disconnected {
        error: String,
    },
    /// The handler did not answer in time; the client declined.
    OfferTimedOut {
        job_id: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AgentWorkerError {
    #[error("livekit.url {url:?} is not usable for the agent worker: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("agent worker option {field}: {reason}")]
    InvalidOption { field: &'static str, reason: String },
    #[error(
        "LiveKit at {url} refused the agent worker's credentials (HTTP {status}): check livekit.api_key (now {api_key:?}) and livekit.api_secret"
    )]
    Unauthorized {
        url: String,
        api_key: String,
        status: u16,
    },
    #[error("cannot sign the agent worker's token (livekit.api_key / livekit.api_secret)")]
    Token {
        #[source]
        source: livekit_api::access_token::AccessTokenError,
    },
    #[error("the agent worker has stopped")]
    Stopped,
}

/// What the handle asks of the running worker.
#[derive(Debug)]
enum Command {
    UpdateJob(proto::UpdateJobStatus),
    Drain,
}

/// Talks to a running [`AgentWorker`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct AgentWorkerHandle {
    commands: mpsc::UnboundedSender<Command>,
}

impl AgentWorkerHandle {
    /// Report a job's status (`JsSuccess` / `JsFailed` when its call ended; `error` is shown
    /// in LiveKit's logs). Sent on the live connection if the job was assigned on it; an
    /// update for a job of an earlier connection is dropped (LiveKit forgot it).
    pub fn update_job(
        &self,
        job_id: &str,
        status: proto::JobStatus,
        error: &str,
    ) -> Result<(), AgentWorkerError> {
        self.commands
            .send(Command::UpdateJob(proto::UpdateJobStatus {
                job_id: job_id.to_owned(),
                status: status as i32,
                error: error.to_owned(),
            }))
            .map_err(|_| AgentWorkerError::Stopped)
    }

    /// Take no more jobs (status full + draining; offers are declined without asking the
    /// handler) but keep the connection, so that running jobs can still report their end.
    pub fn drain(&self) -> Result<(), AgentWorkerError> {
        self.commands
            .send(Command::Drain)
            .map_err(|_| AgentWorkerError::Stopped)
    }
}

/// An agent worker, validated and not yet connected.
pub struct AgentWorker {
    opts: AgentWorkerOptions,
    url: url::Url,
    commands_tx: mpsc::UnboundedSender<Command>,
    commands: mpsc::UnboundedReceiver<Command>,
}

impl AgentWorker {
    pub fn new(opts: AgentWorkerOptions) -> Result<Self, AgentWorkerError> {
        let url = wire::agent_url(&opts.url).map_err(|reason| AgentWorkerError::InvalidUrl {
            url: opts.url.clone(),
            reason,
        })?;
        if opts.agent_name.trim().is_empty() {
            return Err(AgentWorkerError::InvalidOption {
                field: "agent_name",
                reason: "empty: an unnamed worker is offered every new room".into(),
            });
        }
        if opts.ping_interval.is_zero() {
            return Err(AgentWorkerError::InvalidOption {
                field: "ping_interval",
                reason: "zero".into(),
            });
        }
        // Sign once now so that unusable keys fail before any connection.
        wire::worker_token(&opts.api_key, &opts.api_secret)
            .map_err(|source| AgentWorkerError::Token { source })?;
        let (commands_tx, commands) = mpsc::unbounded_channel();
        Ok(Self {
            opts,
            url,
            commands_tx,
            commands,
        })
    }

    pub fn handle(&self) -> AgentWorkerHandle {
        AgentWorkerHandle {
            commands: self.commands_tx.clone(),
        }
    }

    /// Runs until `shutdown`: connect, register, keep alive, report status, answer offers,
    /// reconnect after any disconnect. `Err` only for what retrying cannot fix.
    pub async fn run<H: JobHandler>(
        self,
        handler: Arc<H>,
        load: watch::Receiver<WorkerLoad>,
        shutdown: CancellationToken,
        events: Option<mpsc::UnboundedSender<WorkerEvent>>,
    ) -> Result<(), AgentWorkerError> {
        let Self {
            opts,
            url,
            commands_tx,
            commands,
        } = self;
        // Handles hold their own senders; this one must not keep the channel open.
        drop(commands_tx);
        worker::Worker::new(opts, url, handler, load, commands, events)
            .run(shutdown)
            .await
    }
}

/// [`AgentWorker::new`] + [`AgentWorker::run`], for a caller that needs no handle.
pub async fn run(
    opts: AgentWorkerOptions,
    handler: Arc<impl JobHandler>,
    load: watch::Receiver<WorkerLoad>,
    shutdown: CancellationToken,
    events: Option<mpsc::UnboundedSender<WorkerEvent>>,
) -> Result<(), AgentWorkerError> {
    AgentWorker::new(opts)?
        .run(handler, load, shutdown, events)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated_field_by_field() {
        let ok = AgentWorkerOptions::new("http://127.0.0.1:7880", "devkey", "secret", "callfleet");
        assert!(AgentWorker::new(ok.clone()).is_ok());
        let err = |o| {
            AgentWorker::new(o)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let bad_url = AgentWorkerOptions {
            url: "127.0.0.1:7880".into(),
            ..ok.clone()
        };
        assert!(err(bad_url).starts_with("livekit.url \"127.0.0.1:7880\""));
        let unnamed = AgentWorkerOptions {
            agent_name: " ".into(),
            ..ok.clone()
        };
        assert!(err(unnamed).contains("agent_name"));
        let no_secret = AgentWorkerOptions {
            api_secret: String::new(),
            ..ok.clone()
        };
        assert!(err(no_secret).contains("livekit.api_secret"));
    }

    #[test]
    fn the_secret_is_never_printed() {
        let opts = AgentWorkerOptions::new("ws://h", "devkey", "s3cr3t-value", "callfleet");
        assert!(!format!("{opts:?}").contains("s3cr3t-value"));
        let err = AgentWorkerError::Unauthorized {
            url: "ws://h/agent".into(),
            api_key: "devkey".into(),
            status: 401,
        };
        let shown = err.to_string();
        assert!(shown.contains("livekit.api_key") && shown.contains("livekit.api_secret"));
    }

    #[test]
    fn a_handle_of_a_stopped_worker_says_so() {
        let worker = AgentWorker::new(AgentWorkerOptions::new("ws://h", "k", "s", "a"));
        let Ok(worker) = worker else {
            panic!("valid options refused");
        };
        let handle = worker.handle();
        drop(worker);
        assert!(matches!(
            handle.update_job("AJ_1", proto::JobStatus::JsSuccess, ""),
            Err(AgentWorkerError::Stopped)
        ));
    }
}
