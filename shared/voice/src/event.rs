//! What a running session tells the worker as it happens ([`SessionEvent`]).

use callfleet_domain::answering::AnswerClass;

use crate::metrics::TurnMetrics;

/// Things the worker may want as they happen (the report has them all at the end).
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    UserTranscript {
        text: String,
        is_final: bool,
    },
    /// The agent started playing a reply.
    AgentSpeaking,
    /// Barge-in: playback was stopped.
    Interrupted,
    /// A false interruption: the reply resumed.
    Resumed,
    /// The agent asked for a transfer; the worker should perform it (the session then ends).
    Transfer {
        target: String,
        reason: String,
    },
    /// The agent ended the call (the session ends after its last words).
    EndCall {
        reason: String,
    },
    TurnMetrics(TurnMetrics),
    /// The answer was classified (answering-machine detection).
    Classified {
        class: AnswerClass,
    },
    /// The agent presses keys (`send_dtmf`): the worker sends them as SIP DTMF.
    SendDtmf {
        digits: String,
    },
    /// The callee pressed a key.
    CalleeDtmf {
        digit: char,
    },
}
