//! The dispatcher: callfleet as a LiveKit agent, made durable.
//!
//! Design note. LiveKit's own dispatch (`lk dispatch create --agent-name`, CreateAgentDispatch,
//! a SIP dispatch rule's `room_config.agents`) offers each job to a registered agent worker
//! over the `/agent` WebSocket. A job offered to a worker that dies is lost when self-hosting,
//! and bursts drop dispatches. So the dispatcher registers under `livekit.agent_name`, and
//! for every offer:
//!
//! 1. publishes the job on JetStream (`calls.dispatch.<campaign>`, `Nats-Msg-Id` = the call id
//!    derived from LiveKit's job id, so a re-offer is not enqueued twice) and waits for the
//!    stream's acknowledgement;
//! 2. only then answers LiveKit "available" (with the identity the worker will join as); if
//!    JetStream cannot take it, it declines and LiveKit offers the job elsewhere;
//! 3. records the call `queued` with its event, as the ingress does.
//!
//! An ordinary agent worker then runs the job with the same leases and fencing as any call.
//! A dispatch whose metadata names a `destination` is an outbound call request (seed 001's
//! metadata); one without is an [`InboundJob`]: the worker joins the room and converses.
//!
//! Inbound callers wait for a free worker at most `inbound.max_wait_secs`. With the job the
//! dispatcher publishes its busy check as a JetStream scheduled message
//! (`calls.schedule.<call_id>.busy`, due at `answer_by`, moved then onto
//! `calls.overflow.<call_id>`); whichever dispatcher pulls it (`dispatcher-overflow`) takes the
//! call's lease if no worker did, plays `inbound.busy_message`, and ends the call
//! (`agents_busy`). So the timer survives the dispatcher that accepted the call.
//!
//! [`events`] consumes the verified LiveKit webhooks the ingress put on `LIVEKIT_EVENTS`: SIP
//! status changes and room endings become the call's events, and a SIP caller in a room no
//! agent was dispatched to becomes an inbound job (`inbound.sessions_from_webhooks`, seed 003's
//! telephony mode) through [`Dispatcher::enqueue_inbound`].

pub mod events; // webhook helper: LiveKit events → call events (verified webhooks)

use std::{collections::HashMap, sync::Arc, time::Duration};

use callfleet_agent::{Overflow, Worker};
use callfleet_bus::{Bus, Delivery, Outcome, Slots, Sources, consume};
use callfleet_config::Config;
use callfleet_domain::{
    CallEvent, CallState, EventKind,
    inbound::{Direction, InboundJob, call_id_for_job},
    subjects as s,
};
use callfleet_livekit::agent_worker::{
    self, AgentWorkerOptions, JobHandler, Offer, WorkerEvent, WorkerLoad,
};
use jiff::Timestamp;
use livekit_protocol as proto;
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Busy messages one dispatcher plays at once (each a short stay in a room).
const BUSY_AT_ONCE: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum DispatcherError {
    #[error(
        "the dispatcher needs LiveKit: set livekit.url, livekit.api_key and livekit.api_secret (LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET)"
    )]
    NoLiveKit,
    #[error(transparent)]
    Agent(#[from] callfleet_agent::AgentError),
    #[error(transparent)]
    Bus(#[from] callfleet_bus::BusError),
    #[error(transparent)]
    Worker(#[from] agent_worker::AgentWorkerError),
    #[error(transparent)]
    Ops(#[from] callfleet_ops::OpsError),
}

/// The dispatcher's counters on `/metrics`.
#[derive(Clone)]
struct Metrics {
    /// LiveKit offers by result: `enqueued`, `duplicate` (a re-offer), `declined`.
    offers: prometheus::IntCounterVec,
    /// Inbound callers no worker took in time: `busy_message`, `caller_gone`, `failed`.
    overflow: prometheus::IntCounterVec,
}

impl Metrics {
    fn new() -> Self {
        let vec = |name: &str, help: &str, label: &str| {
            prometheus::IntCounterVec::new(prometheus::Opts::new(name, help), &[label])
                .unwrap_or_else(|e| unreachable!("static metric definition: {e}"))
        };
        Self {
            offers: vec(
                "callfleet_dispatcher_offers_total",
                "Jobs LiveKit offered, by what became of them",
                "result",
            ),
            overflow: vec(
                "callfleet_dispatcher_unserved_inbound_total",
                "Inbound callers no worker took within inbound.max_wait_secs",
                "result",
            ),
        }
    }
}

/// What the dispatcher shares between LiveKit's offers, the busy checks and the events.
#[derive(Clone)]
pub struct Dispatcher {
    bus: Bus,
    config: Arc<Config>,
    /// A worker without slots: its only work is the busy message.
    overflow: Worker,
    metrics: Metrics,
}

/// How a LiveKit job was enqueued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub call_id: String,
    pub direction: Direction,
    /// JetStream had it already (a re-offer of the same job).
    pub duplicate: bool,
}

impl Dispatcher {
    pub async fn new(
        config: Arc<Config>,
        provider_env: HashMap<String, String>,
    ) -> Result<Self, DispatcherError> {
        let overflow = Worker::with_providers(config.clone(), provider_env).await?;
        let warm = overflow.clone();
        tokio::spawn(async move {
            if let Err(e) = warm.prepare_busy_message().await {
                tracing::warn!(error = %e, "cannot synthesise the busy message now; trying again when a caller needs it");
            }
        });
        let bus = Bus::connect(&config, "dispatcher").await?;
        Ok(Self {
            bus,
            config,
            overflow,
            metrics: Metrics::new(),
        })
    }

    /// Put an offered LiveKit job on JetStream. Returns once the stream has it.
    pub async fn enqueue_job(&self, job: &proto::Job) -> Result<Enqueued, callfleet_bus::BusError> {
        let room = job
            .room
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default();
        let metadata = metadata_object(&job.metadata);
        let call_id = metadata
            .get("call_id")
            .and_then(Value::as_str)
            .filter(|id| s::is_token(id))
            .map_or_else(|| call_id_for_job(&job.id), str::to_owned);
        if metadata.contains_key("destination") {
            let campaign = campaign_of(&metadata, &self.config.inbound.campaign);
            let mut payload = metadata.clone();
            payload.insert("call_id".into(), call_id.clone().into());
            payload.entry("room").or_insert(room.clone().into());
            payload.entry("campaign").or_insert(campaign.clone().into());
            let mut extra = match payload.remove("metadata") {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            extra.insert("livekit_job_id".into(), job.id.clone().into());
            extra.insert("livekit_dispatch_id".into(), job.dispatch_id.clone().into());
            payload.insert("metadata".into(), Value::Object(extra));
            let body = serde_json::to_vec(&payload).unwrap_or_default();
            let duplicate = self
                .bus
                .publish_dispatch_payload(&campaign, &call_id, body)
                .await?;
            if !duplicate {
                self.record_queued(&call_id, &room, &campaign).await;
            }
            return Ok(Enqueued {
                call_id,
                direction: Direction::Outbound,
                duplicate,
            });
        }
        let accepted_at = Timestamp::now();
        let inbound = InboundJob {
            direction: Direction::Inbound,
            call_id: call_id.clone(),
            room: room.clone(),
            campaign: campaign_of(&metadata, &self.config.inbound.campaign),
            participant_identity: job
                .participant
                .as_ref()
                .map(|p| p.identity.clone())
                .filter(|i| !i.is_empty()),
            agent_name: Some(job.agent_name.clone()).filter(|n| !n.is_empty()),
            livekit_job_id: Some(job.id.clone()),
            dispatch_id: Some(job.dispatch_id.clone()).filter(|d| !d.is_empty()),
            metadata,
            accepted_at,
            answer_by: accepted_at.checked_add(self.config.inbound.max_wait()).ok(),
        };
        self.enqueue_inbound(inbound).await
    }

    /// Put an inbound job on JetStream with its busy check. Also used for a SIP caller in a
    /// room no agent was dispatched to (the verified webhook's telephony mode).
    pub async fn enqueue_inbound(
        &self,
        inbound: InboundJob,
    ) -> Result<Enqueued, callfleet_bus::BusError> {
        let duplicate = self.bus.publish_inbound(&inbound).await?;
        // LiveKit's events about a room a dispatch rule named carry no call id: remember it.
        if let Err(e) = events::remember_room(&self.bus, &inbound.room, &inbound.call_id).await {
            tracing::warn!(call.id = %inbound.call_id, error = %e, "cannot remember the call's room; its LiveKit events are not recorded");
        }
        // The busy check waits in JetStream, not in this process: any dispatcher plays it.
        self.bus.schedule_busy_check(&inbound).await?;
        if !duplicate {
            self.record_queued(&inbound.call_id, &inbound.room, &inbound.campaign)
                .await;
        }
        Ok(Enqueued {
            call_id: inbound.call_id,
            direction: Direction::Inbound,
            duplicate,
        })
    }

    /// A due busy check (`calls.overflow.<call_id>`, from the scheduled message
    /// [`Self::enqueue_inbound`] published): the busy message if no worker took the call.
    async fn busy_check(&self, delivery: Delivery) -> Outcome {
        let job: InboundJob = match serde_json::from_slice(delivery.payload()) {
            Ok(job) => job,
            Err(e) => {
                return Outcome::Dead {
                    dlq_subject: s::dlq(delivery.subject().rsplit('.').next().unwrap_or("unknown")),
                    reason: format!("a busy check that is not an inbound job: {e}"),
                    payload: None,
                };
            }
        };
        match self.overflow.busy_if_unserved(&job).await {
            Ok(Overflow::Served) => Outcome::Ack,
            Ok(found) => {
                let result = match found {
                    Overflow::CallerGone => "caller_gone",
                    _ => "busy_message",
                };
                self.metrics.overflow.with_label_values(&[result]).inc();
                tracing::info!(call.id = %job.call_id, ?found, "inbound call not served in time");
                Outcome::Ack
            }
            Err(e) => {
                self.metrics.overflow.with_label_values(&["failed"]).inc();
                tracing::error!(call.id = %job.call_id, error = %e, "busy message failed; trying again");
                Outcome::retry(Duration::from_secs(1), "busy message failed")
            }
        }
    }

    /// Best effort, as the ingress does: the job is enqueued already.
    async fn record_queued(&self, call_id: &str, room: &str, campaign: &str) {
        let state = CallState::queued(call_id, room, campaign);
        let event = CallEvent::new(call_id, EventKind::Queued, 0);
        let (created, published) = tokio::join!(
            self.bus.create_call_state(&state),
            self.bus.publish_event(&event)
        );
        if let Err(e) = created.map(|_| ()).and(published) {
            tracing::warn!(call.id = %call_id, error = %e, "could not record the queued state");
        }
    }
}

/// The dispatch's metadata as a JSON object: non-JSON text is kept under `text`.
fn metadata_object(raw: &str) -> Map<String, Value> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(m)) => m,
        _ if raw.trim().is_empty() => Map::new(),
        _ => Map::from_iter([("text".to_owned(), Value::from(raw))]),
    }
}

fn campaign_of(metadata: &Map<String, Value>, default: &str) -> String {
    metadata
        .get("campaign")
        .and_then(Value::as_str)
        .filter(|c| s::is_token(c))
        .unwrap_or(default)
        .to_owned()
}

impl JobHandler for Dispatcher {
    async fn offer(&self, job: proto::Job, resuming: bool) -> Offer {
        match self.enqueue_job(&job).await {
            Ok(done) => {
                let result = if done.duplicate {
                    "duplicate"
                } else {
                    "enqueued"
                };
                self.metrics.offers.with_label_values(&[result]).inc();
                tracing::info!(
                    livekit.job = %job.id, call.id = %done.call_id, direction = ?done.direction,
                    duplicate = done.duplicate, resuming, "LiveKit job enqueued; accepting it"
                );
                Offer::Accept {
                    identity: format!("agent-{}", done.call_id),
                    name: "callfleet agent".into(),
                    metadata: String::new(),
                    attributes: HashMap::from([("callfleet.call_id".into(), done.call_id)]),
                }
            }
            Err(e) => {
                self.metrics.offers.with_label_values(&["declined"]).inc();
                tracing::warn!(livekit.job = %job.id, error = %e, "JetStream cannot take the job; declining it");
                Offer::Decline
            }
        }
    }

    async fn not_assigned(&self, job_id: String, reason: String) {
        // The job is on JetStream already: a worker runs it anyway (joins the room, or dials).
        tracing::warn!(livekit.job = %job_id, %reason, "LiveKit did not assign an accepted job; it runs from the queue regardless");
    }

    async fn terminated(&self, job_id: String) {
        tracing::info!(livekit.job = %job_id, "LiveKit terminated the job (its room closed or its dispatch was deleted)");
    }
}

/// Run the dispatcher until `shutdown`.
pub async fn run(
    config: Arc<Config>,
    shutdown: CancellationToken,
    provider_env: HashMap<String, String>,
) -> Result<(), DispatcherError> {
    let (url, key, secret) = config
        .livekit
        .credentials()
        .ok_or(DispatcherError::NoLiveKit)?;
    let options = AgentWorkerOptions {
        version: format!("callfleet {}", env!("CARGO_PKG_VERSION")),
        ..AgentWorkerOptions::new(url, key, secret, &config.livekit.agent_name)
    };
    let dispatcher = Arc::new(Dispatcher::new(config.clone(), provider_env).await?);
    let metrics = &dispatcher.metrics;
    let ops = callfleet_ops::Ops::new(
        "dispatcher",
        dispatcher.bus.clone(),
        vec![callfleet_bus::Watch::Consumer {
            stream: s::LIVEKIT_EVENTS_STREAM,
            name: s::LIVEKIT_EVENTS_CONSUMER,
        }],
        shutdown.clone(),
        vec![
            Box::new(metrics.offers.clone()),
            Box::new(metrics.overflow.clone()),
        ],
        Vec::new(),
    )?;
    let probes = ops.serve(&config.dispatcher.metrics_listen).await?;
    let (_load_tx, load) = watch::channel(WorkerLoad {
        load: 0.0,
        full: false,
    });
    // The verified webhooks' consumer (`events`: call events, telephony mode) runs beside the
    // registration.
    let livekit_events = tokio::spawn(events::run(
        dispatcher.bus.clone(),
        config.clone(),
        Some(Dispatcher::clone(&dispatcher)),
        shutdown.clone(),
    ));
    let busy_checks = {
        let consumer = dispatcher
            .bus
            .consumer(s::JOBS_STREAM, s::OVERFLOW_CONSUMER)
            .await?;
        let (this, shutdown) = (Dispatcher::clone(&dispatcher), shutdown.clone());
        tokio::spawn(async move {
            let mut sources = Sources::one(consumer, Duration::from_secs(5));
            let handler = {
                let this = this.clone();
                move |delivery| {
                    let this = this.clone();
                    async move { this.busy_check(delivery).await }
                }
            };
            consume(
                &this.bus,
                &mut sources,
                &Slots::new(BUSY_AT_ONCE),
                &shutdown,
                handler,
            )
            .await
        })
    };
    tracing::info!(agent_name = %config.livekit.agent_name, "dispatcher registering with LiveKit");
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let agent_name = config.livekit.agent_name.clone();
    let readiness = ops.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                WorkerEvent::Registered { worker_id } => {
                    readiness.consuming();
                    tracing::info!(livekit.worker_id = %worker_id, agent_name = %agent_name, "dispatcher registered with LiveKit");
                }
                WorkerEvent::Disconnected { error } => {
                    readiness.not_consuming();
                    tracing::warn!(%error, "dispatcher disconnected from LiveKit; reconnecting");
                }
                WorkerEvent::OfferTimedOut { job_id } => {
                    tracing::warn!(livekit.job = %job_id, "an offer was not enqueued in time; declined (LiveKit offers it again or to another dispatcher)");
                }
            }
        }
    });
    let result = agent_worker::run(
        options,
        dispatcher.clone(),
        load,
        shutdown.clone(),
        Some(events_tx),
    )
    .await;
    match livekit_events.await {
        Ok(Err(e)) => tracing::error!(error = %e, "the livekit-events consumer stopped"),
        Err(e) => tracing::error!(error = %e, "the livekit-events consumer panicked"),
        Ok(Ok(())) => {}
    }
    match busy_checks.await {
        Ok(tracker) => {
            // Busy messages under way finish (the caller is hung up, the call closed).
            tracker.close();
            tracker.wait().await;
        }
        Err(e) => tracing::error!(error = %e, "the busy checks' consumer panicked"),
    }
    dispatcher.bus.drain(Duration::from_secs(5)).await;
    probes.stop().await;
    result.map_err(Into::into)
}
