//! The resolved session configuration: which provider, model, voice and endpoint each stage
//! uses. Serialises without secrets (for the call summary).

use std::fmt;

use callfleet_domain::answering::{AnswerAction, AnswerClass};
use serde::{Deserialize, Serialize};

/// An API key. Never printed, never serialised.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LlmProvider {
    OpenAi,
    Groq,
}

impl LlmProvider {
    /// The provider's name, as in the session options (`openai`, `groq`).
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Groq => "groq",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LlmConfig {
    pub provider: LlmProvider,
    pub model: String,
    /// OpenAI-compatible base URL, up to and including `/v1`.
    pub base_url: String,
    #[serde(skip)]
    pub api_key: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SttProvider {
    Deepgram,
    AssemblyAi,
    Sarvam,
}

impl SttProvider {
    /// The provider's name, as in the session options (`deepgram`, `assemblyai`, `sarvam`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Deepgram => "deepgram",
            Self::AssemblyAi => "assemblyai",
            Self::Sarvam => "sarvam",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SttConfig {
    pub provider: SttProvider,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `wss://…` endpoint (the full listen URL, without query).
    pub base_url: String,
    #[serde(skip)]
    pub api_key: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TtsProvider {
    Cartesia,
    ElevenLabs,
    Sarvam,
}

impl TtsProvider {
    /// The provider's name, as in the session options (`cartesia`, `elevenlabs`, `sarvam`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Cartesia => "cartesia",
            Self::ElevenLabs => "elevenlabs",
            Self::Sarvam => "sarvam",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TtsConfig {
    pub provider: TtsProvider,
    pub model: String,
    pub voice: String,
    /// Cartesia and ElevenLabs: ISO 639-1 (`en`); Sarvam: BCP-47 with region (`hi-IN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `wss://…` endpoint (Cartesia: the websocket URL; ElevenLabs: the API root; Sarvam: the
    /// `/text-to-speech/ws` URL).
    pub base_url: String,
    /// Output PCM rate requested from the provider.
    pub sample_rate: u32,
    #[serde(skip)]
    pub api_key: Secret,
}

/// Everything a session needs to know about its providers and prompt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionConfig {
    pub llm: LlmConfig,
    pub stt: SttConfig,
    pub tts: TtsConfig,
    pub preemptive_generation: bool,
    /// System instructions.
    pub prompt: String,
    /// Instructions for the opening line; `None` waits for the callee to speak first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Where `transfer_call` sends the callee (`tel:+E164` or `sip:`); `None` disables it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_target: Option<String>,
    /// Answering-machine detection and the policy per class, set by the worker from the
    /// request, its campaign and the fleet's config; `None`: the agent speaks at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answering: Option<Answering>,
}

/// How the session treats the call's first seconds: the classifier's limits, and what each
/// class of answer gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answering {
    /// The greeting is never held longer than this after the answer.
    pub budget_ms: u64,
    /// How long a voicemail message waits for the beep (or the greeting's end).
    pub max_wait_ms: u64,
    /// No speech at all for this long: `silence`.
    pub silence_ms: u64,
    pub voicemail: AnswerAction,
    /// The words spoken for `leave_message`, the contact's variables already filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voicemail_message: Option<String>,
    pub call_screening: AnswerAction,
    pub ivr: AnswerAction,
}

impl Answering {
    /// The action for a class: people (and an open line) get the agent; a fax is always hung
    /// up; the rest follow their policy.
    pub fn action(&self, class: AnswerClass) -> AnswerAction {
        match class {
            AnswerClass::Human | AnswerClass::Silence => AnswerAction::Continue,
            AnswerClass::Machine | AnswerClass::Beep => self.voicemail,
            AnswerClass::CallScreening => self.call_screening,
            AnswerClass::Ivr => self.ivr,
            AnswerClass::Fax => AnswerAction::Hangup,
        }
    }
}
