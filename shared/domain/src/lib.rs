//! callfleet's public contracts, with no I/O.
//!
//! - [`request`]: the dispatch request (seed-000 compatible), validated field by field
//!   into a [`request::CallRequest`] that cannot be invalid.
//! - [`phone`]: E.164 normalisation.
//! - [`outcome`]: dial outcomes (DESIGN.md §5) and end reasons.
//! - [`summary`], [`event`], [`state`]: what the fleet publishes and stores.
//! - [`subjects`]: NATS subject names, the single place they are spelled.

pub mod answering;
pub mod boolish;
pub mod campaign;
pub mod control;
pub mod event;
pub mod field;
pub mod inbound;
pub mod latency;
pub mod outcome;
pub mod phone;
pub mod request;
pub mod retry;
pub mod state;
pub mod subjects;
pub mod summary;

pub use event::{CallEvent, EventKind};
pub use outcome::{CallOutcome, EndReason};
pub use phone::PhoneNumber;
pub use request::{CallRequest, FieldError};
pub use state::{CallState, CallStatus};
pub use summary::CallSummary;

/// The JSON Schemas of the public messages, keyed by their path under `nats/`.
pub fn schemas() -> Vec<(String, serde_json::Value)> {
    let to_value = |s: schemars::Schema| s.to_value();
    vec![
        (
            "schemas/call-request.json".into(),
            to_value(schemars::schema_for!(request::DispatchPayload)),
        ),
        (
            "schemas/call-request.normalised.json".into(),
            to_value(schemars::schema_for!(CallRequest)),
        ),
        (
            "schemas/call-event.json".into(),
            to_value(schemars::schema_for!(CallEvent)),
        ),
        (
            "schemas/call-summary.json".into(),
            to_value(schemars::schema_for!(CallSummary)),
        ),
        (
            "schemas/call-control.request.json".into(),
            to_value(schemars::schema_for!(control::ControlRequest)),
        ),
        (
            "schemas/call-control.reply.json".into(),
            to_value(schemars::schema_for!(control::ControlReply)),
        ),
        (
            "schemas/inbound-job.json".into(),
            to_value(schemars::schema_for!(inbound::InboundJob)),
        ),
        (
            "schemas/call-state.json".into(),
            to_value(schemars::schema_for!(CallState)),
        ),
    ]
}
