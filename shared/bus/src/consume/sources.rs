//! Where deliveries come from: durable pull consumers, fetched never beyond the free slots.

use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use callfleet_domain::subjects as s;
use futures::StreamExt;
use tokio::time::Instant;

use super::Delivery;
use crate::{Bus, BusError};

/// How often [`Sources`] re-lists the campaign consumers.
const RELIST_EVERY: Duration = Duration::from_secs(2);
/// The long poll on the first consumer when it is the only one.
const LONG_POLL: Duration = Duration::from_secs(5);
/// The first consumer's wait while campaigns exist, and each campaign's.
const SHORT_POLL: Duration = Duration::from_millis(100);
const CAMPAIGN_POLL: Duration = Duration::from_millis(50);

/// A durable pull consumer.
#[derive(Clone)]
pub struct Consumer {
    inner: PullConsumer,
}

impl Bus {
    /// Open the durable consumer `name` of `stream`.
    pub async fn consumer(&self, stream: &str, name: &str) -> Result<Consumer, BusError> {
        self.js
            .get_consumer_from_stream(name, stream)
            .await
            .map(|inner| Consumer { inner })
            .map_err(|e| BusError::js("get consumer", e))
    }

    /// Every campaign's `campaign-<id>` consumer on `CALL_JOBS` (empty if they cannot be
    /// listed).
    pub async fn campaign_job_consumers(&self) -> Vec<Consumer> {
        let Ok(stream) = self.js.get_stream(s::JOBS_STREAM).await else {
            return Vec::new();
        };
        let mut names = stream.consumer_names();
        let mut found = Vec::new();
        while let Some(Ok(name)) = names.next().await {
            if name.starts_with(s::CAMPAIGN_CONSUMER_PREFIX)
                && let Ok(inner) = stream.get_consumer(&name).await
            {
                found.push(Consumer { inner });
            }
        }
        found
    }
}

impl Consumer {
    /// Up to `max` deliveries, waiting up to `wait` for the first.
    pub async fn fetch(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        let mut batch = self
            .inner
            .fetch()
            .max_messages(max)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| BusError::js("fetch", e))?;
        let mut out = Vec::new();
        while let Some(next) = batch.next().await {
            match next {
                Ok(msg) => out.push(Delivery::new(msg)),
                Err(e) => {
                    tracing::debug!(error = %e, "fetch ended");
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// The consumers one loop pulls from: `first`, then (for the agent) every live campaign's
/// `campaign-<id>` consumer in turn, re-listed every two seconds, so no campaign starves
/// another and single dispatches go first.
pub struct Sources {
    first: Consumer,
    wait: Duration,
    campaigns: Option<Vec<Consumer>>,
    relisted: Option<Instant>,
    next: usize,
    failed: bool,
}

impl Sources {
    /// One consumer, long-polled for `wait`.
    pub fn one(consumer: Consumer, wait: Duration) -> Self {
        Self {
            first: consumer,
            wait,
            campaigns: None,
            relisted: None,
            next: 0,
            failed: false,
        }
    }

    /// `first` (the agents' single dispatches), then the campaigns' consumers in turn.
    pub fn with_campaigns(first: Consumer) -> Self {
        Self {
            campaigns: Some(Vec::new()),
            ..Self::one(first, LONG_POLL)
        }
    }

    /// Re-list the campaign consumers, at most every two seconds.
    pub(crate) async fn refresh(&mut self, bus: &Bus) {
        if self.campaigns.is_none() || self.relisted.is_some_and(|t| t.elapsed() < RELIST_EVERY) {
            return;
        }
        self.relisted = Some(Instant::now());
        self.campaigns = Some(bus.campaign_job_consumers().await);
    }

    /// Whether the last fetch from the first consumer failed (back off before the next).
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    /// Fetch up to `max`: the first consumer, then the campaigns in turn (fairness).
    pub(crate) async fn fetch(&mut self, max: usize) -> Vec<Delivery> {
        let campaigns = self.campaigns.as_deref().unwrap_or_default();
        // Without campaigns, long-poll the first consumer; with them, keep rounds short.
        let wait = if campaigns.is_empty() {
            self.wait
        } else {
            SHORT_POLL
        };
        let mut out = match self.first.fetch(max, wait).await {
            Ok(d) => {
                self.failed = false;
                d
            }
            Err(e) => {
                tracing::debug!(error = %e, "fetch failed");
                self.failed = true;
                Vec::new()
            }
        };
        let n = campaigns.len();
        for i in 0..n {
            if out.len() >= max {
                break;
            }
            let c = &campaigns[(self.next + i) % n];
            match c.fetch(max - out.len(), CAMPAIGN_POLL).await {
                Ok(d) => out.extend(d),
                Err(e) => tracing::debug!(error = %e, "campaign fetch failed"),
            }
        }
        if n > 0 {
            self.next = (self.next + 1) % n;
        }
        out
    }
}
