//! The agent worker.
//!
//! Design note. A worker owns `agent.max_concurrent_calls` slots and never pulls more jobs than
//! it has free slots (a big batch would age its own jobs' ack_wait). The loop itself is the
//! bus's ([`callfleet_bus::consume()`]): it pulls the `agents` consumer (single dispatches) first,
//! then each live campaign's `campaign-<id>` consumer in turn, and hands every delivery to
//! [`handle::handle`], which returns the bus outcome to apply. Each job is one attempt of one
//! call:
//!
//! 1. [`job::Job::parse`] validates the message with the same code as the ingress; an invalid
//!    one is dead-lettered with its reason and a `failed` event.
//! 2. The call's KV state is checked (an ended call is skipped), then its lease is taken with
//!    KV `create` (a live lease elsewhere means: back off). While the attempt runs,
//!    [`keepalive`] sends `+WPI` every ack_wait/3 and renews the lease with update-at-revision.
//! 3. [`call`] runs the attempt on LiveKit: the checks before a fresh dial ([`guard`]), room,
//!    optional recording, `CreateSIPParticipant`
//!    (wait until answered, explicit ring timeout), hold until the callee leaves or
//!    `max_call_duration`, hang up. A job whose lease expired mid-call (its worker died) is
//!    reconciled against LiveKit, never re-dialed.
//! 4. The attempt's result is a [`job::Disposition`]; [`settle::settle`] is the one place that
//!    maps it onto a bus [`Outcome`] (ack, scheduled retry, back-off, dead letter) after
//!    publishing the final event.
//!
//! Shutdown: stop fetching, let live calls run up to `drain_grace_secs`, then hang them up with
//! end reason `shutdown`; their summaries are published before the process exits. Meanwhile
//! `agent.metrics_listen` answers `/readyz` with `503 draining` ([`metrics`]: slots and the job
//! consumers' counts on `/metrics`, for the autoscaler).

mod call;
mod control;
mod guard;
mod handle;
mod job;
mod keepalive;
mod leg;
mod leg_watch;
mod metrics;
mod overflow;
mod retry;
mod settle;
mod summary;
mod voice;

use std::{collections::HashMap, sync::Arc, time::Duration};

use callfleet_bus::{Bus, Slots, Sources, consume};
use callfleet_config::Config;
use callfleet_domain::{CallEvent, CallRequest, CallState, subjects as s};
use callfleet_livekit::LiveKit;
use tokio_util::sync::CancellationToken;

use crate::settle::backon_retry;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(
        "the agent needs LiveKit: set livekit.url, livekit.api_key and livekit.api_secret (LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET)"
    )]
    NoLiveKit,
    #[error(transparent)]
    Bus(#[from] callfleet_bus::BusError),
    #[error("cannot open the agents consumer")]
    Consumer(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("agent.vad: {0}")]
    Vad(#[from] callfleet_voice::vad::VadError),
    #[error(transparent)]
    Ops(#[from] callfleet_ops::OpsError),
}

/// One agent worker process.
#[derive(Clone)]
pub struct Worker {
    pub(crate) bus: Bus,
    pub(crate) livekit: LiveKit,
    pub(crate) config: Arc<Config>,
    pub(crate) worker_id: Arc<str>,
    /// Cancelled when live calls must hang up (shutdown grace period over).
    pub(crate) hangup: CancellationToken,
    /// Provider keys and base URLs for voice sessions, read once at start.
    pub(crate) provider_env: Arc<HashMap<String, String>>,
    /// The voice sessions' speech detector (`agent.vad`).
    pub(crate) vad: Arc<callfleet_voice::vad::VadOptions>,
    /// `inbound.busy_message`, synthesised once (see [`overflow`]).
    pub(crate) busy_audio: BusyAudio,
}

pub use overflow::{BusyAudio, Overflow};
pub use voice::provider_env;

impl Worker {
    /// A worker whose voice sessions read their providers from the process environment.
    pub async fn new(config: Arc<Config>) -> Result<Self, AgentError> {
        Self::with_providers(config, voice::provider_env()).await
    }

    /// A worker whose voice sessions read provider keys, base URLs and defaults from
    /// `provider_env` (the names [`provider_env`] reads): `callfleet dev` points it at its
    /// local stand-ins.
    pub async fn with_providers(
        config: Arc<Config>,
        provider_env: HashMap<String, String>,
    ) -> Result<Self, AgentError> {
        let (url, key, secret) = config.livekit.credentials().ok_or(AgentError::NoLiveKit)?;
        let vad = voice::vad_options(&config.agent);
        if config.agent.voice_session {
            // A missing model fails here, at start, not on a callee who just answered.
            callfleet_voice::vad::Prepared::new(&vad)?;
        }
        let livekit = LiveKit::new(
            url,
            key,
            secret,
            Duration::from_secs(config.livekit.request_timeout_secs),
        );
        let bus = Bus::connect(&config, "agent").await?;
        let worker_id = config.agent.worker_id.clone().unwrap_or_else(|| {
            format!("agent-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
        });
        Ok(Self {
            bus,
            livekit,
            config,
            worker_id: worker_id.into(),
            hangup: CancellationToken::new(),
            provider_env: Arc::new(provider_env),
            vad: Arc::new(vad),
            busy_audio: BusyAudio::default(),
        })
    }

    async fn consumer(&self) -> Result<callfleet_bus::Consumer, AgentError> {
        self.bus
            .consumer(s::JOBS_STREAM, s::AGENT_CONSUMER)
            .await
            .map_err(|e| AgentError::Consumer(Box::new(e)))
    }

    /// Handle at most one job, waiting up to `wait` for it. Returns whether one was handled.
    /// Deterministic entry point for tests; [`run`] is the forever loop (same handler, same
    /// settling).
    pub async fn process_next(&self, wait: Duration) -> Result<bool, AgentError> {
        let consumer = self.consumer().await?;
        let mut batch = consumer
            .fetch(1, wait)
            .await
            .map_err(|e| AgentError::Consumer(Box::new(e)))?;
        let Some(delivery) = batch.pop() else {
            return Ok(false);
        };
        let outcome = handle::handle(self, delivery.clone()).await;
        self.bus.settle(&delivery, outcome).await;
        Ok(true)
    }

    /// Events must not be lost: retry while NATS is away (bounded by the job's redelivery).
    pub(crate) async fn publish_until_done(&self, event: &CallEvent) {
        if let Err(e) = backon_retry(|| self.bus.publish_event(event)).await {
            tracing::error!(call.id = %event.call_id, kind = event.kind.as_str(), error = %e, "event not published");
        }
    }

    pub(crate) async fn put_state_until_done(&self, state: &CallState) {
        if let Err(e) = backon_retry(|| self.bus.put_call_state(state)).await {
            tracing::error!(call.id = %state.call_id, error = %e, "call state not recorded");
        }
    }

    /// The stored state, or a fresh one when there is none.
    pub(crate) async fn current_state(&self, req: &CallRequest) -> CallState {
        match self.bus.call_state(&req.call_id).await {
            Ok(Some((state, _))) => state,
            _ => CallState::queued(&req.call_id, &req.room, &req.campaign),
        }
    }
}

/// Run a worker until `shutdown`, then drain. Voice providers come from the process env.
pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> Result<(), AgentError> {
    run_with_providers(config, shutdown, voice::provider_env()).await
}

/// [`run`], with the voice providers' env given (see [`Worker::with_providers`]).
pub async fn run_with_providers(
    config: Arc<Config>,
    shutdown: CancellationToken,
    provider_env: HashMap<String, String>,
) -> Result<(), AgentError> {
    let worker = Worker::with_providers(config.clone(), provider_env).await?;
    let mut sources = Sources::with_campaigns(worker.consumer().await?);
    let slots = Slots::new(config.agent.max_concurrent_calls);
    let ops = metrics::ops(&worker.bus, &slots, shutdown.clone())?;
    let probes = ops.serve(&config.agent.metrics_listen).await?;
    ops.consuming();
    tracing::info!(worker.id = %worker.worker_id, slots = slots.total(), "agent started");
    let handler = {
        let worker = worker.clone();
        move |delivery| {
            let worker = worker.clone();
            async move { handle::handle(&worker, delivery).await }
        }
    };
    let tracker = consume(&worker.bus, &mut sources, &slots, &shutdown, handler).await;

    let grace = Duration::from_secs(config.agent.drain_grace_secs);
    tracing::info!(
        live_calls = tracker.len(),
        grace_secs = grace.as_secs(),
        "draining"
    );
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            live_calls = tracker.len(),
            "grace period over; hanging up live calls"
        );
        worker.hangup.cancel();
        if tokio::time::timeout(Duration::from_secs(30), tracker.wait())
            .await
            .is_err()
        {
            tracing::error!("calls did not end within 30 s of hang-up; exiting anyway");
        }
    }
    worker.bus.drain(Duration::from_secs(10)).await;
    probes.stop().await;
    tracing::info!("agent stopped");
    Ok(())
}
