//! The dispatch request: the seed bridge's payload plus callfleet's additions (DESIGN.md §3).
//!
//! Input is read leniently and validated strictly, field by field, so a caller gets every
//! problem at once: [`validate`] turns any JSON value into a [`CallRequest`] or a list of
//! [`FieldError`]s. The ingress and the agent run the same function, so a request published
//! straight onto NATS is treated exactly like one that came through HTTP.

mod options;
mod validate;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

pub use crate::field::{FieldError, describe};
pub use options::{Boolish, SESSION_KEYS, SessionOptions, TtsOption};
pub use validate::{
    ValidateOptions, kind, normalise_transfer_target, session_options_of, validate,
};

use crate::{
    inbound::{Direction, InboundLeg},
    phone::PhoneNumber,
    retry::RetryOverride,
};

/// A validated call request: what travels on `calls.dispatch.<campaign>` once normalised.
/// Its JSON form is itself a valid dispatch payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CallRequest {
    pub call_id: String,
    pub destination: PhoneNumber,
    pub account_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_number: Option<PhoneNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_name: Option<String>,
    pub session_options: SessionOptions,
    /// The request's metadata merged with its call fields and any unknown top-level keys.
    pub metadata: Map<String, Value>,
    pub campaign: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryOverride>,
    pub room: String,
    /// `inbound` for a caller who dialed in (built by the worker from an
    /// [`crate::inbound::InboundJob`]); absent (outbound) on every dispatch payload.
    #[serde(default, skip_serializing_if = "Direction::is_outbound")]
    pub direction: Direction,
    /// The caller's SIP leg, for an inbound call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound: Option<InboundLeg>,
}

/// The dispatch payload as publishers send it; documentation and JSON Schema only.
/// Validation goes through [`validate`], which also accepts every `session_options` key at the
/// top level and keeps unknown keys in `metadata`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema)]
#[schemars(
    title = "CallRequest",
    description = "A call request, as POSTed to /dispatch or published on calls.dispatch.<campaign>. Every session_options key may also be given at the top level; unknown top-level keys are kept in metadata."
)]
pub struct DispatchPayload {
    /// Idempotency key and call id: ASCII letters, digits, `-`, `_`, at most 64. Generated when
    /// absent: a UUID by the ingress; `js<stream sequence>` (e.g. `js42`) for a message published
    /// straight on `calls.dispatch.<campaign>`, also when it is not JSON at all, so its `failed`
    /// event and its dead letter (`calls.dlq.js<seq>`) can be found.
    pub call_id: Option<String>,
    /// The number to call. Normalised to E.164; bare international digits are accepted.
    pub destination: String,
    /// Sent to the trunk as the `X-Account-Code` SIP header.
    pub account_code: String,
    /// Number or `sip:` URI used if the agent transfers the call.
    pub transfer_target: Option<String>,
    /// Caller identity (the SIP `From` user when no caller number is set).
    pub caller_id: Option<String>,
    /// Caller number presented to the callee (the SIP `From`).
    pub caller_number: Option<String>,
    /// Caller display name.
    pub caller_name: Option<String>,
    pub session_options: Option<SessionOptionsPayload>,
    /// Merged into the call's metadata and echoed in every summary.
    #[schema(value_type = Object)]
    pub metadata: Option<Map<String, Value>>,
    /// Campaign id (subject token); `default` when absent.
    pub campaign: Option<String>,
    /// Extra webhook URL that receives this call's summary.
    pub callback_url: Option<String>,
    /// RFC 3339 time before which the call is not dialed.
    pub not_before: Option<String>,
    pub retry: Option<RetryOverride>,
    /// LiveKit room name (1 to 256 characters, no control characters); `call-<call_id>` when
    /// absent.
    pub room: Option<String>,
}

/// `session_options` as publishers send it (documentation and JSON Schema only).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema)]
pub struct SessionOptionsPayload {
    pub llm: Option<String>,
    pub stt: Option<String>,
    pub tts: Option<TtsOption>,
    pub cartesia_voice: Option<String>,
    pub cartesia_model: Option<String>,
    pub preemptive_generation: Option<Boolish>,
    pub record_call: Option<Boolish>,
    pub prompt: Option<String>,
    pub greeting: Option<String>,
    pub language: Option<String>,
}

#[cfg(test)]
mod tests;
