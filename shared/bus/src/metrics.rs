//! The bus's own counters, process-wide, for a role's `/metrics` registry.

use std::sync::LazyLock;

use prometheus::{IntCounter, Registry};

/// Acknowledgements (ack, NAK, term, in-progress) the server never got.
pub const ACK_FAILURES: &str = "callfleet_bus_ack_failures_total";

#[expect(
    clippy::expect_used,
    reason = "the metric definition is static and valid"
)]
static ACK_FAILED: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        ACK_FAILURES,
        "Acknowledgements (ack, NAK, term, in-progress) that failed; the message is redelivered",
    )
    .expect("valid metric")
});

pub(crate) fn ack_failed() {
    ACK_FAILED.inc();
}

/// How many acknowledgements failed in this process.
pub fn ack_failures() -> u64 {
    ACK_FAILED.get()
}

/// Register the bus's counters on `registry` (once per registry).
pub fn register(registry: &Registry) -> Result<(), prometheus::Error> {
    registry.register(Box::new(ACK_FAILED.clone()))
}

#[cfg(test)]
mod tests {
    use prometheus::{Encoder, TextEncoder};

    #[test]
    fn the_ack_failure_counter_shows_up_on_a_registry() {
        let registry = prometheus::Registry::new();
        super::register(&registry).expect("register");
        super::ack_failed();
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut buf)
            .expect("encode");
        let text = String::from_utf8(buf).expect("utf-8");
        assert!(text.contains(super::ACK_FAILURES), "{text}");
        assert!(super::ack_failures() >= 1);
    }
}
