//! What a session reports. The per-turn metrics, usage, transcript and close reason are the
//! call-ended summary's own types (DESIGN.md §3, `callfleet_domain::summary`), re-exported here;
//! the preemptive-generation stats and the [`SessionReport`] around them are the engine's.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use callfleet_domain::summary::{
    LlmUsage, SessionCloseReason, SpeakerRole, SttUsage, TranscriptEntry, TtsUsage, TurnMetrics,
    Usage,
};

/// Why the session ended: the summary's [`SessionCloseReason`], under the name the engine's
/// callers use (`report.end_reason`).
pub use callfleet_domain::summary::SessionCloseReason as EndReason;

use crate::config::SessionConfig;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PreemptiveStats {
    /// Speculative LLM requests started.
    pub started: u32,
    /// Speculative replies used at the end of turn.
    pub reused: u32,
    /// Speculative replies cancelled (transcript or context changed, or failed).
    pub discarded: u32,
    /// Sum of time saved by reused replies.
    pub saved_ms: f64,
}

/// Everything the call-ended summary needs from the voice session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionReport {
    pub session_start: Timestamp,
    pub session_end: Timestamp,
    pub session_duration_seconds: f64,
    pub end_reason: SessionCloseReason,
    pub usage: Usage,
    pub turns: Vec<TurnMetrics>,
    pub transcript: Vec<TranscriptEntry>,
    pub preemptive: PreemptiveStats,
    pub false_interruptions: u32,
    /// When the first agent audio frame was handed to the transport ([`crate::AudioIo::send`]);
    /// `None` when the agent never spoke. The worker measures the call's dead air from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_audio_at: Option<Timestamp>,
    /// What answered, when answering-machine detection ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<callfleet_domain::answering::AnswerReport>,
    /// The resolved config; secrets are never serialised.
    pub session_config: SessionConfig,
}
