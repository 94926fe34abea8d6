//! What the worker reports for autoscaling (`agent.metrics_listen`, served by
//! [`callfleet_ops`]): its slots, and the job consumers' backlog and jobs in flight.
//!
//! A worker's capacity is `agent.max_concurrent_calls` slots; each job in progress (a call
//! being checked, dialed, rung or held) holds one. KEDA's `nats-jetstream` scaler sizes the
//! fleet from the `agents` consumer's `num_pending + num_ack_pending` with a `lagThreshold` of
//! the slots per worker (deploy/k8s/agent-scaledobject.yaml).

use callfleet_bus::{Bus, Slots, Watch};
use callfleet_domain::subjects as s;
use callfleet_ops::{OnScrape, Ops, OpsError};
use prometheus::IntGauge;
use tokio_util::sync::CancellationToken;

pub const SLOTS_TOTAL: &str = "callfleet_agent_slots_total";
pub const SLOTS_FREE: &str = "callfleet_agent_slots_free";
pub const SLOTS_BUSY: &str = "callfleet_agent_slots_busy";

/// The job consumers: single dispatches, then every live campaign's.
const WATCHED: [Watch; 2] = [
    Watch::Consumer {
        stream: s::JOBS_STREAM,
        name: s::AGENT_CONSUMER,
    },
    Watch::Prefix {
        stream: s::JOBS_STREAM,
        prefix: s::CAMPAIGN_CONSUMER_PREFIX,
    },
];

/// The worker's report; `draining` is its shutdown token.
pub(crate) fn ops(bus: &Bus, slots: &Slots, draining: CancellationToken) -> Result<Ops, OpsError> {
    let total = IntGauge::new(
        SLOTS_TOTAL,
        "Call slots of this worker (agent.max_concurrent_calls)",
    )?;
    let free = IntGauge::new(SLOTS_FREE, "Call slots no job holds")?;
    let busy = IntGauge::new(
        SLOTS_BUSY,
        "Call slots held by a job in progress: the worker's live calls (checked, dialing, ringing or answered)",
    )?;
    let refresh: OnScrape = {
        let (slots, total, free, busy) = (slots.clone(), total.clone(), free.clone(), busy.clone());
        Box::new(move || {
            total.set(gauge(slots.total()));
            free.set(gauge(slots.free()));
            busy.set(gauge(slots.busy()));
        })
    };
    Ops::new(
        "agent",
        bus.clone(),
        WATCHED.to_vec(),
        draining,
        vec![Box::new(total), Box::new(free), Box::new(busy)],
        vec![refresh],
    )
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
