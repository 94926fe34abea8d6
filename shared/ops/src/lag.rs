//! The watched consumers' counts as gauges, labelled by stream and consumer, refreshed from
//! the server at each scrape. A consumer that is gone (a finished campaign's) disappears from
//! the output; when the server cannot be asked, every consumer gauge is dropped and
//! `callfleet_jetstream_consumer_info_up` is 0, so no stale backlog reaches a dashboard.

use std::time::Duration;

use callfleet_bus::{Bus, Watch};
use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};

pub const NUM_PENDING: &str = "callfleet_jetstream_consumer_num_pending";
pub const NUM_ACK_PENDING: &str = "callfleet_jetstream_consumer_num_ack_pending";
pub const NUM_WAITING: &str = "callfleet_jetstream_consumer_num_waiting";
pub const INFO_UP: &str = "callfleet_jetstream_consumer_info_up";

pub(crate) struct Lag {
    watch: Vec<Watch>,
    pending: IntGaugeVec,
    ack_pending: IntGaugeVec,
    waiting: IntGaugeVec,
    up: IntGauge,
}

impl Lag {
    pub(crate) fn new(watch: Vec<Watch>) -> Result<Self, prometheus::Error> {
        let vec = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["stream", "consumer"])
        };
        Ok(Self {
            watch,
            pending: vec(
                NUM_PENDING,
                "Messages the consumer has not delivered yet (the backlog)",
            )?,
            ack_pending: vec(
                NUM_ACK_PENDING,
                "Messages delivered and not acknowledged yet (jobs being handled: live calls among them)",
            )?,
            waiting: vec(
                NUM_WAITING,
                "Pull requests waiting for messages (idle fetches)",
            )?,
            up: IntGauge::new(
                INFO_UP,
                "1 when the last scrape read the consumers' info from the server, else 0",
            )?,
        })
    }

    pub(crate) fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.pending.clone()))?;
        registry.register(Box::new(self.ack_pending.clone()))?;
        registry.register(Box::new(self.waiting.clone()))?;
        registry.register(Box::new(self.up.clone()))
    }

    pub(crate) async fn refresh(&self, bus: &Bus, wait: Duration) {
        let read = tokio::time::timeout(wait, bus.consumer_lag(&self.watch)).await;
        for g in [&self.pending, &self.ack_pending, &self.waiting] {
            g.reset();
        }
        let lags = match read {
            Ok(Ok(lags)) => lags,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "consumer info for /metrics failed");
                self.up.set(0);
                return;
            }
            Err(_) => {
                tracing::debug!("consumer info for /metrics timed out");
                self.up.set(0);
                return;
            }
        };
        self.up.set(1);
        for l in lags {
            let labels = [l.stream.as_str(), l.consumer.as_str()];
            self.pending
                .with_label_values(&labels)
                .set(clamp(l.num_pending));
            self.ack_pending
                .with_label_values(&labels)
                .set(clamp(l.num_ack_pending));
            self.waiting
                .with_label_values(&labels)
                .set(clamp(l.num_waiting));
        }
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
