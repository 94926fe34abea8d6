//! The worker's loop: connections one after another ([`Worker::run`]), with backoff between
//! them; each is opened and registered here and served by a [`Session`].

use std::{sync::Arc, time::Duration};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::StreamExt;
use livekit_protocol::{self as proto, server_message};
use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
    time::Instant,
};
use tokio_tungstenite::{
    connect_async_with_config,
    tungstenite::{self, client::IntoClientRequest, http::HeaderValue},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    AgentWorkerError, AgentWorkerOptions, Command, JobHandler, Offer, WorkerEvent, WorkerLoad,
    session::{Lost, Session, Ws, send},
    wire::{self, Frame},
};
use crate::error_chain;

/// TCP + WebSocket handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// livekit-server's own `RegisterTimeout`.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// Handler callbacks still running when the worker stops.
const CALLBACKS_WAIT: Duration = Duration::from_secs(5);

/// An offer's answer, from its own task.
pub(super) struct Answered {
    /// The connection the offer came on.
    pub(super) generation: u64,
    pub(super) job_id: String,
    pub(super) offer: Offer,
    pub(super) took: Duration,
    /// Declined by the client: the handler ran out of time (or panicked).
    pub(super) forced: Option<&'static str>,
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What lives across connections.
pub(super) struct Worker<H> {
    pub(super) opts: AgentWorkerOptions,
    pub(super) url: url::Url,
    pub(super) handler: Arc<H>,
    pub(super) load: watch::Receiver<WorkerLoad>,
    pub(super) load_open: bool,
    pub(super) commands: mpsc::UnboundedReceiver<Command>,
    pub(super) commands_open: bool,
    pub(super) events: Option<mpsc::UnboundedSender<WorkerEvent>>,
    pub(super) offers: JoinSet<Answered>,
    pub(super) callbacks: TaskTracker,
    pub(super) draining: bool,
    pub(super) generation: u64,
}

/// How a connection ended.
pub(super) enum End {
    Shutdown,
    Lost(Lost),
}

impl<H: JobHandler> Worker<H> {
    pub(super) fn new(
        opts: AgentWorkerOptions,
        url: url::Url,
        handler: Arc<H>,
        load: watch::Receiver<WorkerLoad>,
        commands: mpsc::UnboundedReceiver<Command>,
        events: Option<mpsc::UnboundedSender<WorkerEvent>>,
    ) -> Self {
        Self {
            opts,
            url,
            handler,
            load,
            load_open: true,
            commands,
            commands_open: true,
            events,
            offers: JoinSet::new(),
            callbacks: TaskTracker::new(),
            draining: false,
            generation: 0,
        }
    }

    pub(super) async fn run(mut self, shutdown: CancellationToken) -> Result<(), AgentWorkerError> {
        let result = self.connections(&shutdown).await;
        self.offers.abort_all();
        self.callbacks.close();
        if tokio::time::timeout(CALLBACKS_WAIT, self.callbacks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                wait_ms = CALLBACKS_WAIT.as_millis() as u64,
                "agent worker stopped with job handler callbacks still running"
            );
        }
        result
    }

    fn backoff() -> impl Iterator<Item = Duration> {
        ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(10))
            .with_jitter()
            .without_max_times()
            .build()
    }

    async fn connections(&mut self, shutdown: &CancellationToken) -> Result<(), AgentWorkerError> {
        let mut backoff = Self::backoff();
        loop {
            let opened = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                opened = self.open() => opened,
            };
            let lost = match opened {
                Ok(Ok((ws, worker_id))) => {
                    backoff = Self::backoff();
                    self.generation += 1;
                    tracing::info!(worker.id = %worker_id, agent.name = %self.opts.agent_name, url = %self.url, "agent worker registered");
                    let mut session = Session::new(ws, self.generation, worker_id);
                    match session.serve(self, shutdown).await {
                        End::Shutdown => return Ok(()),
                        End::Lost(lost) => {
                            session.forget_accepted(self, "the connection to LiveKit was lost");
                            lost
                        }
                    }
                }
                Ok(Err(lost)) => lost,
                Err(fatal) => {
                    tracing::error!(error = %fatal, "agent worker cannot register with LiveKit");
                    return Err(fatal);
                }
            };
            let error = error_chain(&lost);
            let delay = backoff.next().unwrap_or(Duration::from_secs(10));
            tracing::warn!(%error, url = %self.url, retry_in_ms = delay.as_millis() as u64, "agent worker disconnected from LiveKit");
            self.emit(WorkerEvent::Disconnected { error });
            if !self.wait_between(delay, shutdown).await {
                return Ok(());
            }
        }
    }

    /// Sleep before the next connection, still reaping offers and commands; false on shutdown.
    async fn wait_between(&mut self, delay: Duration, shutdown: &CancellationToken) -> bool {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = tokio::time::sleep_until(until) => return true,
                Some(done) = self.offers.join_next(), if !self.offers.is_empty() => {
                    if let Ok(answered) = done {
                        self.answer_lost(answered);
                    }
                }
                cmd = self.commands.recv(), if self.commands_open => match cmd {
                    None => self.commands_open = false,
                    Some(Command::Drain) => self.draining = true,
                    Some(Command::UpdateJob(u)) => tracing::debug!(job.id = %u.job_id, "job update dropped: no connection (LiveKit forgot the job)"),
                },
            }
        }
    }

    /// Connect and register. `Err` is fatal, `Ok(Err)` worth retrying.
    async fn open(&self) -> Result<Result<(Ws, String), Lost>, AgentWorkerError> {
        let token = wire::worker_token(&self.opts.api_key, &self.opts.api_secret)
            .map_err(|source| AgentWorkerError::Token { source })?;
        let mut request =
            self.url
                .as_str()
                .into_client_request()
                .map_err(|e| AgentWorkerError::InvalidUrl {
                    url: self.opts.url.clone(),
                    reason: e.to_string(),
                })?;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            AgentWorkerError::InvalidOption {
                field: "api_key",
                reason: "not usable in an HTTP header".into(),
            }
        })?;
        request.headers_mut().insert("Authorization", bearer);
        let connect = connect_async_with_config(request, None, true);
        let mut ws = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Err(_) => return Ok(Err(Lost::Timeout(CONNECT_TIMEOUT, "connecting"))),
            Ok(Err(tungstenite::Error::Http(resp))) => {
                // The body names the rejected token: never shown.
                let status = resp.status().as_u16();
                if matches!(status, 401 | 403) {
                    return Err(AgentWorkerError::Unauthorized {
                        url: self.url.to_string(),
                        api_key: self.opts.api_key.clone(),
                        status,
                    });
                }
                return Ok(Err(Lost::Http(status)));
            }
            Ok(Err(e)) => return Ok(Err(Lost::Ws(Box::new(e)))),
            Ok(Ok((ws, _response))) => ws,
        };
        let register = wire::register(
            &self.opts.agent_name,
            &self.opts.version,
            self.opts.namespace.as_deref(),
            self.opts.ping_interval,
        );
        if let Err(lost) = send(&mut ws, register).await {
            return Ok(Err(lost));
        }
        let registered = tokio::time::timeout(REGISTER_TIMEOUT, async {
            loop {
                let frame = match ws.next().await {
                    None => return Err(Lost::Ended),
                    Some(Err(e)) => return Err(Lost::Ws(Box::new(e))),
                    Some(Ok(frame)) => frame,
                };
                match wire::decode(frame)? {
                    Frame::Nothing => {}
                    Frame::Closed(why) => return Err(Lost::Closed(why)),
                    Frame::Server(msg) => match *msg {
                        server_message::Message::Register(r) => return Ok(r.worker_id),
                        other => return Err(Lost::Unregistered(kind(&other))),
                    },
                }
            }
        })
        .await;
        Ok(match registered {
            Err(_) => Err(Lost::Timeout(
                REGISTER_TIMEOUT,
                "waiting for RegisterWorkerResponse",
            )),
            Ok(Err(lost)) => Err(lost),
            Ok(Ok(worker_id)) => Ok((ws, worker_id)),
        })
    }

    pub(super) fn emit(&self, event: WorkerEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }

    /// Run an offer through the handler in its own task (declined at once while draining).
    pub(super) fn spawn_offer(&mut self, generation: u64, req: proto::AvailabilityRequest) {
        let Some(job) = req.job else {
            tracing::warn!("AvailabilityRequest without a job: ignored");
            return;
        };
        let job_id = job.id.clone();
        tracing::info!(
            job.id = %job_id,
            dispatch.id = %job.dispatch_id,
            room = job.room.as_ref().map_or("", |r| r.name.as_str()),
            resuming = req.resuming,
            "job offered"
        );
        let handler = Arc::clone(&self.handler);
        let limit = self.opts.offer_timeout;
        let draining = self.draining;
        let resuming = req.resuming;
        self.offers.spawn(async move {
            let started = Instant::now();
            let (offer, forced) = if draining {
                (Offer::Decline, None)
            } else {
                // Its own task, so that a panicking handler is a decline, not a dead worker;
                // dropped (on time out, or with this task) it is aborted.
                let mut task =
                    AbortOnDrop(tokio::spawn(
                        async move { handler.offer(job, resuming).await },
                    ));
                match tokio::time::timeout(limit, &mut task.0).await {
                    Ok(Ok(offer)) => (offer, None),
                    Ok(Err(_)) => (Offer::Decline, Some("the handler panicked")),
                    Err(_) => (Offer::Decline, Some("the handler did not answer in time")),
                }
            };
            Answered {
                generation,
                job_id,
                offer,
                took: started.elapsed(),
                forced,
            }
        });
    }

    /// An answer whose connection is gone: LiveKit no longer waits for it.
    pub(super) fn answer_lost(&self, answered: Answered) {
        if matches!(answered.offer, Offer::Accept { .. }) {
            tracing::warn!(job.id = %answered.job_id, "job accepted after its connection to LiveKit was lost: not assigned");
            self.not_assigned(
                answered.job_id,
                "accepted after the connection to LiveKit was lost",
            );
        } else {
            tracing::debug!(job.id = %answered.job_id, "offer answered after its connection was lost");
        }
    }

    pub(super) fn not_assigned(&self, job_id: String, reason: &str) {
        let handler = Arc::clone(&self.handler);
        let reason = reason.to_owned();
        self.callbacks
            .spawn(async move { handler.not_assigned(job_id, reason).await });
    }
}

fn kind(msg: &server_message::Message) -> &'static str {
    match msg {
        server_message::Message::Register(_) => "Register",
        server_message::Message::Availability(_) => "AvailabilityRequest",
        server_message::Message::Assignment(_) => "JobAssignment",
        server_message::Message::Termination(_) => "JobTermination",
        server_message::Message::Pong(_) => "WorkerPong",
        server_message::Message::GoAway(_) => "GoAway",
    }
}
