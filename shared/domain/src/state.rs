//! Call state as stored in the `calls` KV bucket and served by `GET /calls/{id}`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{outcome::CallOutcome, summary::AttemptRecord};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Queued,
    /// Waiting for a scheduled retry or `not_before`.
    Scheduled,
    Dialing,
    Ringing,
    InCall,
    Ended,
    Failed,
}

impl CallStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Ended | Self::Failed)
    }
}

#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema,
)]
pub struct CallState {
    pub call_id: String,
    pub status: CallStatus,
    pub room: String,
    pub campaign: String,
    /// Attempts started so far.
    pub attempts: u32,
    pub last_outcome: Option<CallOutcome>,
    /// Finished attempts, oldest first.
    pub history: Vec<AttemptRecord>,
    /// When the callee answered the current attempt.
    #[schema(value_type = Option<String>)]
    pub answered_at: Option<Timestamp>,
    #[schema(value_type = Option<String>)]
    pub next_attempt_at: Option<Timestamp>,
    #[schema(value_type = String)]
    pub updated_at: Timestamp,
    /// Worker currently holding the call, if any (the new one once a lost worker's call was
    /// taken over).
    pub worker_id: Option<String>,
    /// The last time the holding worker saw the callee in the answered call (refreshed every
    /// lease_ttl/3): if that worker is lost, the call ended between this and the takeover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub callee_seen_at: Option<Timestamp>,
    pub error: Option<String>,
    /// Set by `DELETE /calls/{id}` on a queued or scheduled call: it is never dialed again, and
    /// the next worker to see the job closes it as `cancelled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub cancel_requested_at: Option<Timestamp>,
}

impl CallState {
    pub fn queued(call_id: &str, room: &str, campaign: &str) -> Self {
        Self {
            call_id: call_id.to_owned(),
            status: CallStatus::Queued,
            room: room.to_owned(),
            campaign: campaign.to_owned(),
            attempts: 0,
            last_outcome: None,
            history: Vec::new(),
            answered_at: None,
            next_attempt_at: None,
            updated_at: Timestamp::now(),
            worker_id: None,
            callee_seen_at: None,
            error: None,
            cancel_requested_at: None,
        }
    }
}
