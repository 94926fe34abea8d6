//! The call-ended summary (DESIGN.md §3): what the webhook receives when a call ends or fails.
//!
//! The voice session (when `agent.voice_session` is on) fills `usage`, `turns`, `transcript` and
//! `session_close_reason`: the voice engine (`callfleet-voice`) produces these very types;
//! without a session they are present and empty. `session_config` echoes the requested options.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    outcome::{CallOutcome, EndReason},
    request::SessionOptions,
};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CallSummary {
    pub schema_version: u32,
    pub call_id: String,
    pub room: String,
    pub agent_name: String,
    pub campaign: String,
    pub account_code: String,
    /// E.164 destination: the callee's number, or for an inbound call the number the caller
    /// dialed (empty when livekit-sip did not say).
    pub destination: String,
    /// `outbound` (callfleet dialed) or `inbound` (the caller dialed in).
    #[serde(default)]
    pub direction: crate::inbound::Direction,
    /// An inbound call's SIP leg: the caller's and the called number, the trunk, the SIP
    /// Call-ID and the SIP headers livekit-sip passed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound: Option<crate::inbound::InboundLeg>,
    /// The request's metadata merged with its call fields.
    pub metadata: Map<String, Value>,
    pub outcome: CallOutcome,
    pub end_reason: EndReason,
    /// The attempt that ended the call (1-based).
    pub attempt: u32,
    /// Every dial attempt, oldest first.
    pub attempts: Vec<AttemptRecord>,
    /// SIP status of the final attempt, when one is known.
    pub sip: Option<SipStatus>,
    /// When the callee answered. `None` if never answered.
    pub call_start: Option<Timestamp>,
    /// When the call was hung up. `None` if never answered.
    pub call_end: Option<Timestamp>,
    /// `call_end - call_start`, in seconds (answer to hang-up).
    pub call_duration_seconds: Option<f64>,
    /// Whether `call_start`/`call_end` (and so the duration) are estimates: the worker that held
    /// the call was lost and the moment it was answered or ended was not observed.
    #[serde(default)]
    pub duration_estimated: bool,
    /// What an estimated `call_start`/`call_end` comes from, and the bounds of the real value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_estimate: Option<DurationEstimate>,
    /// When the worker started handling this attempt.
    pub session_start: Timestamp,
    pub session_end: Timestamp,
    pub session_duration_seconds: f64,
    /// Provider usage. Empty without a voice session.
    pub usage: Usage,
    /// Per-turn metrics. Empty without a voice session.
    pub turns: Vec<TurnMetrics>,
    /// The session options the call ran with (no secrets are ever part of them).
    pub session_config: SessionOptions,
    /// The conversation. Empty without a voice session.
    pub transcript: Vec<TranscriptEntry>,
    /// How the voice session closed (`callee_hung_up`, `agent_ended`, `silence_timeout`,
    /// `max_duration`, `error`, …), when one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_close_reason: Option<SessionCloseReason>,
    /// Dead air at the start: answer to the first agent audio frame sent, in milliseconds.
    /// `None` when the agent never spoke (no voice session, or it ended before speaking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_agent_audio_ms: Option<u64>,
    /// The call's response latency over its turns (end of the callee's speech to the agent's
    /// first audio), p50 and p95 in milliseconds. `None` without a measured turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_latency_ms: Option<LatencyPercentiles>,
    /// What answered (answering-machine detection): the class, the time to decide, when the
    /// agent was let speak, the action taken and the signals that decided. `None` when
    /// detection did not run (no voice session, or `answering_machine_detection: false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<crate::answering::AnswerReport>,
    pub recording: Recording,
    /// A human-readable error when the call failed.
    pub error: Option<String>,
    /// The request's own webhook, if it gave one.
    pub callback_url: Option<String>,
    /// Identity of the worker that produced the summary.
    pub worker_id: String,
}

/// How an estimated call duration was reached (the worker holding the call was lost).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DurationEstimate {
    /// Where `call_start` comes from: `answered_at` (recorded at the answer), or `takeover` (the
    /// answer happened while no worker watched: the taking-over worker's first look, with the
    /// lost worker's last write or the SIP participant's `joined_at`, at the dial, as the bounds).
    pub start_from: String,
    /// Where `call_end` comes from: `observed` (the worker holding the call saw it end),
    /// `midpoint of callee_seen_at and takeover` (the lost worker last saw the callee at
    /// `callee_seen_at`; another worker found it gone at the takeover), or `midpoint of
    /// answered_at and takeover` (no sighting recorded after the answer).
    pub end_from: String,
    /// The real answer lies between these two.
    pub start_earliest: Option<Timestamp>,
    pub start_latest: Option<Timestamp>,
    /// The real hang-up lies between these two.
    pub end_earliest: Option<Timestamp>,
    pub end_latest: Option<Timestamp>,
}

#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema,
)]
pub struct SipStatus {
    pub code: Option<i32>,
    pub reason: Option<String>,
}

#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema,
)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub outcome: CallOutcome,
    #[schema(value_type = String)]
    pub started_at: Timestamp,
    #[schema(value_type = String)]
    pub ended_at: Timestamp,
    pub sip: Option<SipStatus>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Usage {
    pub llm: Vec<LlmUsage>,
    pub tts: Vec<TtsUsage>,
    pub stt: Vec<SttUsage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LlmUsage {
    pub provider: String,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TtsUsage {
    pub provider: String,
    pub model: String,
    pub characters: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SttUsage {
    pub provider: String,
    pub model: String,
    pub audio_seconds: f64,
}

/// One turn's latencies, as the voice engine measures them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TurnMetrics {
    pub turn: u32,
    pub end_of_utterance_delay_ms: Option<f64>,
    pub transcription_delay_ms: Option<f64>,
    pub llm_ttft_ms: Option<f64>,
    pub tts_ttfb_ms: Option<f64>,
    pub e2e_latency_ms: Option<f64>,
    /// `reused` or `discarded` when preemptive generation ran for this turn.
    pub preemptive: Option<String>,
    /// End of the user's turn to the agent's first audio, as the caller heard it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_latency_ms: Option<f64>,
    /// Latency preemptive generation saved on this turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemptive_saved_ms: Option<f64>,
    /// The callee interrupted the agent's reply.
    #[serde(default)]
    pub interrupted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TranscriptEntry {
    pub role: SpeakerRole,
    pub text: String,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    pub interrupted: bool,
}

/// Who said a transcript entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SpeakerRole {
    /// The callee.
    User,
    /// The agent.
    Assistant,
}

/// Why the voice session closed (the call's [`EndReason`] is derived from it by the worker,
/// which also knows about operator hang-ups, shutdowns and the SIP leg).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SessionCloseReason {
    /// The callee hung up (the audio ended).
    CalleeHungUp,
    /// The agent called `end_call`.
    AgentEnded { reason: String },
    /// The agent called `transfer_call`; the worker transfers to `target`.
    Transferred { target: String },
    /// Nobody spoke for the silence timeout.
    SilenceTimeout,
    /// The session ran for its maximum duration.
    MaxDuration,
    /// The worker cancelled the session (shutdown, operator hang-up, lost call).
    Cancelled,
    /// A provider failed for good.
    Error { message: String },
    /// The answer was not a person and its policy ended the call: hung up at once, or after
    /// the voicemail message (`message_left`).
    AnswerPolicy {
        class: crate::answering::AnswerClass,
        message_left: bool,
    },
}

impl SessionCloseReason {
    /// A short, stable label (`callee_hung_up`, `agent_ended`, ...): the JSON `kind`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::CalleeHungUp => "callee_hung_up",
            Self::AgentEnded { .. } => "agent_ended",
            Self::Transferred { .. } => "transferred",
            Self::SilenceTimeout => "silence_timeout",
            Self::MaxDuration => "max_duration",
            Self::Cancelled => "cancelled",
            Self::Error { .. } => "error",
            Self::AnswerPolicy { .. } => "answer_policy",
        }
    }
}

/// p50 and p95 of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LatencyPercentiles {
    pub p50: f64,
    pub p95: f64,
}

/// Where a call's recording went. `backend` `nats`: the worker recorded the media it handles
/// into the NATS object store (`key` in bucket `recordings`); `egress`: LiveKit Egress wrote
/// it (`egress_id`, `location`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Recording {
    pub requested: bool,
    /// `nats` or `egress`, when recording was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The object's key in the `recordings` bucket (`nats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Hex SHA-256 of the stored file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// `ogg/opus` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Channel layout, in order: `["callee", "agent"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// The recording stopped early (its worker was lost mid-call): what was stored is playable
    /// but ends before the call did.
    #[serde(default)]
    pub partial: bool,
    pub egress_id: Option<String>,
    /// Where the egress writes the file (object key or path).
    pub location: Option<String>,
    /// Why recording failed; the call went on without it.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{SessionCloseReason, SpeakerRole};

    /// The webhook's JSON for the voice session's types (as the engine's own types wrote it).
    #[test]
    fn session_types_keep_their_json() {
        let reasons = [
            (
                SessionCloseReason::CalleeHungUp,
                json!({"kind": "callee_hung_up"}),
            ),
            (
                SessionCloseReason::AgentEnded {
                    reason: "done".into(),
                },
                json!({"kind": "agent_ended", "reason": "done"}),
            ),
            (
                SessionCloseReason::Transferred {
                    target: "tel:+61299990000".into(),
                },
                json!({"kind": "transferred", "target": "tel:+61299990000"}),
            ),
            (
                SessionCloseReason::SilenceTimeout,
                json!({"kind": "silence_timeout"}),
            ),
            (
                SessionCloseReason::MaxDuration,
                json!({"kind": "max_duration"}),
            ),
            (SessionCloseReason::Cancelled, json!({"kind": "cancelled"})),
            (
                SessionCloseReason::Error {
                    message: "tts: down".into(),
                },
                json!({"kind": "error", "message": "tts: down"}),
            ),
        ];
        for (reason, want) in reasons {
            assert_eq!(serde_json::to_value(&reason).ok(), Some(want.clone()));
            assert_eq!(want["kind"], reason.label());
        }
        assert_eq!(
            serde_json::to_string(&[SpeakerRole::User, SpeakerRole::Assistant]).ok(),
            Some(r#"["user","assistant"]"#.to_owned())
        );
    }
}
