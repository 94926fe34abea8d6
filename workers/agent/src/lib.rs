//! The agent worker.
//!
//! Design note. A worker owns `agent.max_concurrent_calls` slots and never pulls more jobs than
//! it has free slots (a big batch would age its own jobs' ack_wait). Each job is one attempt of
//! one call:
//!
//! 1. [`job::Job::parse`] validates the message with the same code as the ingress; an invalid
//!    one is dead-lettered with its reason and a `failed` event.
//! 2. The call's KV state is checked (an ended call is skipped), then its lease is taken with
//!    KV `create` (a live lease elsewhere means: back off). While the attempt runs,
//!    [`keepalive`] sends `+WPI` every ack_wait/3 and renews the lease with update-at-revision.
//! 3. [`call`] runs the attempt on LiveKit: room, optional recording, `CreateSIPParticipant`
//!    (wait until answered, explicit ring timeout), hold until the callee leaves or
//!    `max_call_duration`, hang up. A job whose lease expired mid-call (its worker died) is
//!    reconciled against LiveKit, never re-dialed.
//! 4. The attempt's result is a [`job::Disposition`]; [`Worker::settle`] is the one place that
//!    maps it onto JetStream (ack, scheduled retry, dead letter) and publishes the final event.
//!
//! Shutdown: stop fetching, let live calls run up to `drain_grace_secs`, then hang them up with
//! end reason `shutdown`; their summaries are published before the process exits.

mod call;
mod control;
mod guard;
mod job;
mod keepalive;
mod leg;
mod leg_watch;
mod retry;
mod summary;
mod voice;

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{self, AckKind};
use callfleet_bus::{Bus, async_nats};
use callfleet_config::Config;
use callfleet_domain::subjects as s;
use callfleet_livekit::LiveKit;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

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
    pub(crate) provider_env: Arc<std::collections::HashMap<String, String>>,
}

impl Worker {
    pub async fn new(config: Arc<Config>) -> Result<Self, AgentError> {
        let (url, key, secret) = config.livekit.credentials().ok_or(AgentError::NoLiveKit)?;
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
            provider_env: Arc::new(voice::provider_env()),
        })
    }

    async fn consumer(&self) -> Result<jetstream::consumer::PullConsumer, AgentError> {
        self.bus
            .js
            .get_consumer_from_stream(s::AGENT_CONSUMER, s::JOBS_STREAM)
            .await
            .map_err(|e| AgentError::Consumer(Box::new(e)))
    }

    /// Handle at most one job, waiting up to `wait` for it. Returns whether one was handled.
    /// Deterministic entry point for tests; [`run`] is the forever loop.
    pub async fn process_next(&self, wait: Duration) -> Result<bool, AgentError> {
        let consumer = self.consumer().await?;
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| AgentError::Consumer(Box::new(e)))?;
        match batch.next().await {
            Some(Ok(msg)) => {
                self.handle(msg).await;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// The consumers a worker pulls from: `agents` (single dispatches) first, then every live
/// campaign's `campaign-<id>` consumer, whose `max_ack_pending` caps that campaign's calls.
struct Sources {
    agents: jetstream::consumer::PullConsumer,
    campaigns: Vec<jetstream::consumer::PullConsumer>,
    refreshed: Option<tokio::time::Instant>,
    next: usize,
}

impl Sources {
    /// Re-list the campaign consumers every two seconds.
    async fn refresh(&mut self, worker: &Worker) {
        if self
            .refreshed
            .is_some_and(|t| t.elapsed() < Duration::from_secs(2))
        {
            return;
        }
        self.refreshed = Some(tokio::time::Instant::now());
        let Ok(stream) = worker.bus.js.get_stream(s::JOBS_STREAM).await else {
            return;
        };
        let mut names = stream.consumer_names();
        let mut found = Vec::new();
        while let Some(Ok(name)) = names.next().await {
            if name.starts_with("campaign-")
                && let Ok(c) = stream.get_consumer(&name).await
            {
                found.push(c);
            }
        }
        self.campaigns = found;
    }

    /// Fetch up to `max` jobs: `agents` first, then the campaigns in turn (fairness).
    async fn fetch(&mut self, max: usize) -> Vec<jetstream::Message> {
        let mut out = Vec::new();
        // Without campaigns, long-poll the dispatch consumer; with them, keep rounds short.
        let wait = if self.campaigns.is_empty() {
            Duration::from_secs(5)
        } else {
            Duration::from_millis(100)
        };
        Self::pull(&self.agents, max, wait, &mut out).await;
        let n = self.campaigns.len();
        for i in 0..n {
            if out.len() >= max {
                break;
            }
            let c = &self.campaigns[(self.next + i) % n];
            Self::pull(c, max - out.len(), Duration::from_millis(50), &mut out).await;
        }
        if n > 0 {
            self.next = (self.next + 1) % n;
        }
        out
    }

    async fn pull(
        consumer: &jetstream::consumer::PullConsumer,
        max: usize,
        wait: Duration,
        out: &mut Vec<jetstream::Message>,
    ) {
        let batch = consumer
            .fetch()
            .max_messages(max)
            .expires(wait)
            .messages()
            .await;
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(error = %e, "fetch failed");
                return;
            }
        };
        while let Some(next) = batch.next().await {
            match next {
                Ok(msg) => out.push(msg),
                Err(e) => {
                    tracing::debug!(error = %e, "fetch ended");
                    break;
                }
            }
        }
    }
}

/// Run a worker until `shutdown`, then drain.
pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> Result<(), AgentError> {
    let worker = Worker::new(config.clone()).await?;
    let mut sources = Sources {
        agents: worker.consumer().await?,
        campaigns: Vec::new(),
        refreshed: None,
        next: 0,
    };
    let slots = Arc::new(Semaphore::new(config.agent.max_concurrent_calls));
    let tracker = TaskTracker::new();
    tracing::info!(worker.id = %worker.worker_id, slots = config.agent.max_concurrent_calls, "agent started");

    while !shutdown.is_cancelled() {
        // Wait for one free slot, then take every other free one: that is the batch size.
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
            () = shutdown.cancelled() => break,
        };
        let mut permits = vec![first];
        while let Ok(p) = slots.clone().try_acquire_owned() {
            permits.push(p);
        }
        sources.refresh(&worker).await;
        let messages = tokio::select! {
            m = sources.fetch(permits.len()) => m,
            () = shutdown.cancelled() => Vec::new(),
        };
        for msg in messages {
            let Some(permit) = permits.pop().filter(|_| !shutdown.is_cancelled()) else {
                // Shutting down (or, never, more messages than slots): hand it back.
                let _ = msg.ack_with(AckKind::Nak(None)).await;
                continue;
            };
            let worker = worker.clone();
            tracker.spawn(async move {
                worker.handle(msg).await;
                drop(permit);
            });
        }
        drop(permits);
    }

    tracker.close();
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
    // Bounded: with NATS gone there is nothing to flush to, and exiting beats hanging.
    let drained = tokio::time::timeout(Duration::from_secs(10), worker.bus.client.drain()).await;
    if let Ok(Err(e)) = drained {
        tracing::warn!(error = %e, "nats drain failed");
    }
    tracing::info!("agent stopped");
    Ok(())
}
