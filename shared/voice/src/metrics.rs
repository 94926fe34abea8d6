//! What a session reports: per-turn metrics, usage, the transcript and preemptive-generation
//! stats. Field names match the call-ended summary (DESIGN.md §3, `callfleet-domain`'s
//! `TurnMetrics`, `Usage` and `TranscriptEntry`), so they deserialise into those types.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::SessionConfig;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TurnMetrics {
    pub turn: u32,
    /// VAD end of speech -> end-of-turn decision.
    pub end_of_utterance_delay_ms: Option<f64>,
    /// VAD end of speech -> last final transcript (0 if the final came first).
    pub transcription_delay_ms: Option<f64>,
    /// LLM request -> first token.
    pub llm_ttft_ms: Option<f64>,
    /// First text sent to the TTS -> first audio back.
    pub tts_ttfb_ms: Option<f64>,
    /// VAD end of speech -> first agent audio frame sent.
    pub e2e_latency_ms: Option<f64>,
    /// `reused`, `discarded` (a speculative reply existed but did not match) or `none`.
    pub preemptive: Option<String>,
    /// End-of-turn decision -> first agent audio frame sent.
    pub response_latency_ms: Option<f64>,
    /// How long the reused speculative reply had been running at the end of turn.
    pub preemptive_saved_ms: Option<f64>,
    /// The reply was cut short by the callee.
    pub interrupted: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub llm: Vec<LlmUsage>,
    pub tts: Vec<TtsUsage>,
    pub stt: Vec<SttUsage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmUsage {
    pub provider: String,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TtsUsage {
    pub provider: String,
    pub model: String,
    pub characters: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SttUsage {
    pub provider: String,
    pub model: String,
    pub audio_seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpeakerRole {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    pub role: SpeakerRole,
    pub text: String,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    pub interrupted: bool,
}

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

/// Why the session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EndReason {
    /// The callee hung up (the audio ended).
    CalleeHungUp,
    /// The agent called `end_call`.
    AgentEnded {
        reason: String,
    },
    /// The agent called `transfer_call`; the worker transfers to `target`.
    Transferred {
        target: String,
    },
    /// Nobody spoke for the silence timeout.
    SilenceTimeout,
    MaxDuration,
    /// The worker cancelled the session (shutdown).
    Cancelled,
    /// A provider failed for good.
    Error {
        message: String,
    },
}

impl EndReason {
    /// A short, stable label (`callee_hung_up`, `agent_ended`, ...).
    pub fn label(&self) -> &'static str {
        match self {
            Self::CalleeHungUp => "callee_hung_up",
            Self::AgentEnded { .. } => "agent_ended",
            Self::Transferred { .. } => "transferred",
            Self::SilenceTimeout => "silence_timeout",
            Self::MaxDuration => "max_duration",
            Self::Cancelled => "cancelled",
            Self::Error { .. } => "error",
        }
    }
}

/// Everything the call-ended summary needs from the voice session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionReport {
    pub session_start: Timestamp,
    pub session_end: Timestamp,
    pub session_duration_seconds: f64,
    pub end_reason: EndReason,
    pub usage: Usage,
    pub turns: Vec<TurnMetrics>,
    pub transcript: Vec<TranscriptEntry>,
    pub preemptive: PreemptiveStats,
    pub false_interruptions: u32,
    /// The resolved config; secrets are never serialised.
    pub session_config: SessionConfig,
}
