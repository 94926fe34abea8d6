//! Call events on `calls.events.<call_id>.<kind>`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::summary::CallSummary;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Queued,
    Dialing,
    Ringing,
    Answered,
    RetryScheduled,
    Transferred,
    Ended,
    Failed,
    Dead,
    /// The SIP leg's `sip.callStatus` as a verified LiveKit webhook reported it (`detail`:
    /// `status`, `participant`, `left`, `disconnect_reason`, `livekit_event`, `livekit_event_id`).
    SipStatus,
    /// LiveKit closed the call's room (a verified `room_finished` webhook; `detail`: `room`,
    /// `room_end_reason`, `livekit_event_id`).
    RoomFinished,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Dialing => "dialing",
            Self::Ringing => "ringing",
            Self::Answered => "answered",
            Self::RetryScheduled => "retry_scheduled",
            Self::Transferred => "transferred",
            Self::Ended => "ended",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::SipStatus => "sip_status",
            Self::RoomFinished => "room_finished",
        }
    }

    /// Whether this event closes the call (and carries a summary).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Ended | Self::Failed)
    }
}

/// One state change of one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CallEvent {
    pub schema_version: u32,
    /// Unique per event; also its `Nats-Msg-Id`, so a republished event is deduplicated.
    pub event_id: String,
    pub call_id: String,
    pub kind: EventKind,
    pub at: Timestamp,
    pub attempt: u32,
    /// Kind-specific details (e.g. `next_attempt_at` for `retry_scheduled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
    /// Present on `ended` and `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<CallSummary>,
}

impl CallEvent {
    pub fn new(call_id: &str, kind: EventKind, attempt: u32) -> Self {
        Self {
            schema_version: crate::summary::SCHEMA_VERSION,
            event_id: format!("{call_id}.{}.{attempt}", kind.as_str()),
            call_id: call_id.to_owned(),
            kind,
            at: Timestamp::now(),
            attempt,
            detail: None,
            summary: None,
        }
    }
}
