//! What answered an outbound call, and what to do about it: the classes the worker tells apart
//! in the call's first seconds (answering-machine detection), the per-class policy a request, a
//! campaign or the config gives, and what the summary reports.

use serde::{Deserialize, Serialize};

/// What picked up the phone.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AnswerClass {
    /// A person: a short "hello?" and then listening.
    Human,
    /// A voicemail greeting (the box is not recording yet).
    Machine,
    /// A voicemail box's beep: it records from now on.
    Beep,
    /// A call screener ("please say your name and why you are calling").
    CallScreening,
    /// A menu ("press 1 for sales").
    Ivr,
    /// A fax machine: CNG (1100 Hz) or CED (2100 Hz).
    Fax,
    /// Nothing was heard.
    Silence,
}

impl AnswerClass {
    pub const ALL: [Self; 7] = [
        Self::Human,
        Self::Machine,
        Self::Beep,
        Self::CallScreening,
        Self::Ivr,
        Self::Fax,
        Self::Silence,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::Machine => "machine",
            Self::Beep => "beep",
            Self::CallScreening => "call_screening",
            Self::Ivr => "ivr",
            Self::Fax => "fax",
            Self::Silence => "silence",
        }
    }

    /// A voicemail box, whether or not its beep was heard yet.
    pub fn is_voicemail(self) -> bool {
        matches!(self, Self::Machine | Self::Beep)
    }
}

/// What kind of evidence a decision stood on.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// The cadence of speech from the VAD (a short utterance then listening; or a long greeting).
    Cadence,
    /// A narrowband tone after speech: a voicemail beep.
    Beep,
    /// A fax tone (CNG 1100 Hz, CED 2100 Hz).
    FaxTone,
    /// A transcript matched a phrase set ("leave a message", "press 1", ...).
    Phrase,
    /// The LLM, asked as a classifier.
    Llm,
    /// No speech within the time allowed.
    Silence,
    /// Digits the callee pressed (RFC 4733 events reach the room as SIP DTMF).
    Dtmf,
}

/// One piece of evidence, with when it was seen (milliseconds after the answer).
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema,
)]
pub struct AnswerSignal {
    pub kind: SignalKind,
    /// The class this evidence points to.
    pub class: AnswerClass,
    pub at_ms: u64,
    /// What was seen: `"greeting 3.1 s"`, `"1000 Hz for 420 ms"`, `"\"leave a message\""`.
    pub detail: String,
}

/// What to do with an answer that is not a person.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AnswerAction {
    /// Hang up at once.
    #[default]
    Hangup,
    /// Wait for the beep (or the end of the greeting), speak the message once, hang up.
    /// Only for voicemail.
    LeaveMessage,
    /// Let the agent talk as if a person answered (it may press digits or answer a screener).
    Continue,
}

impl AnswerAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hangup => "hangup",
            Self::LeaveMessage => "leave_message",
            Self::Continue => "continue",
        }
    }
}

/// `voicemail: {action, message, retry}`.
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
#[serde(deny_unknown_fields)]
pub struct VoicemailPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<AnswerAction>,
    /// Spoken by the TTS after the beep for `leave_message`; `{{name}}` is replaced by the
    /// call's metadata value `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether the contact is called again later (inside its campaign's window). Default: true
    /// unless a message was left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<bool>,
}

/// `call_screening: {action}` and `ivr: {action}` (`continue` or `hangup`).
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
#[serde(deny_unknown_fields)]
pub struct ClassPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<AnswerAction>,
}

/// What the summary reports about the answer.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema,
)]
pub struct AnswerReport {
    pub class: AnswerClass,
    /// From the answer to the decision.
    pub decided_ms: u64,
    /// From the answer to when the agent was let speak (`None`: it never was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_ms: Option<u64>,
    pub action: AnswerAction,
    /// The evidence, in the order it was seen; the deciding one is last.
    pub signals: Vec<AnswerSignal>,
}
