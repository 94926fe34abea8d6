//! Per-call session options: which STT, LLM and TTS the voice session uses, and how.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::answering::{ClassPolicy, VoicemailPolicy};

/// Keys of `session_options` that may also be given at the top level.
pub const SESSION_KEYS: &[&str] = &[
    "llm",
    "stt",
    "tts",
    "cartesia_voice",
    "cartesia_model",
    "preemptive_generation",
    "record_call",
    "prompt",
    "greeting",
    "language",
    "answering_machine_detection",
    "voicemail",
    "call_screening",
    "ivr",
    "dtmf_on_answer",
];

/// TTS selection: a descriptor string (`cartesia`, `cartesia/sonic-3:<voice>`) or an object.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema,
)]
#[serde(untagged)]
pub enum TtsOption {
    Descriptor(String),
    Spec {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        voice: Option<String>,
    },
}

/// A boolean-ish value as the bridge accepts it: `true`, `"yes"`, `"1"`, `1`, `"off"`, ...
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema,
)]
#[serde(untagged)]
pub enum Boolish {
    Bool(bool),
    Int(i64),
    Text(String),
}

/// Per-call session options. Validated and normalised.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
pub struct SessionOptions {
    /// LLM descriptor, `provider/model[:variant]`, e.g. `openai/gpt-4o-mini`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<String>,
    /// STT descriptor, e.g. `assemblyai/universal-streaming:en`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stt: Option<String>,
    /// TTS descriptor or `{provider, model, voice}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tts: Option<TtsOption>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cartesia_voice: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cartesia_model: Option<String>,
    /// `None` means "use the fleet default".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemptive_generation: Option<bool>,
    #[serde(default)]
    pub record_call: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Classify the answer (person, voicemail, screener, IVR, fax) before the agent speaks;
    /// `None` means the fleet's `answering.enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answering_machine_detection: Option<bool>,
    /// What to do on a voicemail box: `{action: hangup|leave_message|continue, message, retry}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voicemail: Option<VoicemailPolicy>,
    /// What to do on a call screener: `{action: continue|hangup}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_screening: Option<ClassPolicy>,
    /// What to do on an IVR menu: `{action: continue|hangup}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ivr: Option<ClassPolicy>,
    /// DTMF digits sent once the call is answered (`0-9`, `*`, `#`, `A-D`; `w` waits 0.5 s),
    /// e.g. an extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtmf_on_answer: Option<String>,
    /// Keys callfleet does not know yet; kept, never dropped.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub extra: Map<String, Value>,
}
