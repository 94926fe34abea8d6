//! Dial outcomes and end reasons (DESIGN.md §5), and the classification of LiveKit's errors.

use serde::{Deserialize, Serialize};

/// How one dial attempt, or a whole call, turned out.
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
pub enum CallOutcome {
    /// The callee answered.
    Answered,
    /// SIP 486 or 600.
    Busy,
    /// SIP 480: often the carrier's capacity.
    Unavailable,
    /// Ring timeout, SIP 408 or 504.
    NoAnswer,
    /// SIP 503: often the trunk's calls-per-second limit.
    CarrierThrottled,
    /// SIP 603, 607, 608.
    Declined,
    /// SIP 404, 410, 484, 604.
    InvalidNumber,
    /// SIP 401, 402, 403: a trunk or caller-ID configuration problem.
    TrunkRejected,
    /// LiveKit unreachable or failing; retried without spending an attempt.
    Infrastructure,
    /// The request itself is invalid; never dialed.
    InvalidRequest,
    /// Cancelled before it was dialed (or hung up by request while ringing).
    Cancelled,
    /// The number is on the do-not-call list: never dialed.
    DoNotCall,
    /// Any other SIP failure.
    Failed,
    /// Answered by a voicemail box; hung up without a message (retried later by default).
    Voicemail,
    /// Answered by a voicemail box; the message was spoken after its beep.
    VoicemailLeft,
    /// Answered by a call screener, and hung up by policy.
    CallScreening,
    /// Answered by an IVR menu, and hung up by policy.
    Ivr,
    /// Answered by a fax machine; always hung up.
    Fax,
    /// An inbound caller whom no worker could take within `inbound.max_wait_secs`: they heard
    /// the busy message and the call was ended.
    AgentsBusy,
    /// An inbound caller who hung up before a worker took the call.
    Abandoned,
}

impl CallOutcome {
    /// Whether the default policy retries this outcome.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Busy | Self::Unavailable | Self::NoAnswer | Self::CarrierThrottled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Busy => "busy",
            Self::Unavailable => "unavailable",
            Self::NoAnswer => "no_answer",
            Self::CarrierThrottled => "carrier_throttled",
            Self::Declined => "declined",
            Self::InvalidNumber => "invalid_number",
            Self::TrunkRejected => "trunk_rejected",
            Self::Infrastructure => "infrastructure",
            Self::InvalidRequest => "invalid_request",
            Self::Cancelled => "cancelled",
            Self::DoNotCall => "do_not_call",
            Self::Failed => "failed",
            Self::Voicemail => "voicemail",
            Self::VoicemailLeft => "voicemail_left",
            Self::CallScreening => "call_screening",
            Self::Ivr => "ivr",
            Self::Fax => "fax",
            Self::AgentsBusy => "agents_busy",
            Self::Abandoned => "abandoned",
        }
    }

    /// Something picked up: a person, or a machine the worker classified and hung up on.
    pub fn was_answered(self) -> bool {
        matches!(
            self,
            Self::Answered
                | Self::Voicemail
                | Self::VoicemailLeft
                | Self::CallScreening
                | Self::Ivr
                | Self::Fax
        )
    }
}

/// The outcome of a call whose answer was classified and ended by its policy (a person, or an
/// open line the agent talked to, is `Answered`).
pub fn of_answer(class: crate::answering::AnswerClass, message_left: bool) -> CallOutcome {
    use crate::answering::AnswerClass as C;
    match class {
        C::Machine | C::Beep if message_left => CallOutcome::VoicemailLeft,
        C::Machine | C::Beep => CallOutcome::Voicemail,
        C::CallScreening => CallOutcome::CallScreening,
        C::Ivr => CallOutcome::Ivr,
        C::Fax => CallOutcome::Fax,
        C::Human | C::Silence => CallOutcome::Answered,
    }
}

/// Why an answered call, or a call that never connected, ended.
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
pub enum EndReason {
    /// The callee hung up.
    CalleeHangup,
    /// The agent (or an operator) hung up.
    AgentHangup,
    /// `max_call_duration` was reached; the worker enforces it.
    MaxDuration,
    /// The worker was shutting down and the grace period ran out.
    Shutdown,
    /// The worker holding the call vanished; the call was reconciled against LiveKit.
    WorkerLost,
    /// The dial failed; see the outcome and SIP status.
    DialFailed,
    /// Cancelled by an operator before or during the call.
    Cancelled,
    /// The request was invalid and was dead-lettered.
    InvalidRequest,
    /// The call was transferred away.
    Transferred,
    /// The SIP service dropped an answered call because no media (RTP) came from the callee:
    /// livekit-sip's `media_timeout` (30 s without any RTP from the answer, 15 s after it stops).
    MediaTimeout,
}

/// livekit-sip's `sip.callStatus` value when it ends a call on a BYE (from the callee, or the
/// one it sends on `EndCall`/after a REFER). A media timeout drops the call without it.
pub const SIP_STATUS_HANGUP: &str = "hangup";

/// Why an answered SIP leg left the room, from the last `sip.callStatus` a watcher of the room
/// saw on it (`None`: nobody saw its final state). livekit-sip v1.8.0 sets `hangup` before it
/// leaves on a BYE and leaves with `active` unchanged when it drops the call on a media timeout
/// (its disconnect reason is the same in both cases, so the attribute is the only trace).
pub fn leg_left(final_sip_status: Option<&str>, transferred: bool) -> EndReason {
    match final_sip_status {
        _ if transferred => EndReason::Transferred,
        Some("active") => EndReason::MediaTimeout,
        // `hangup`, or not seen: the callee hung up (the reason reported before this existed).
        _ => EndReason::CalleeHangup,
    }
}

/// The parts of a LiveKit (Twirp) error that classification looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialError<'a> {
    /// Twirp code: `canceled`, `unavailable`, `resource_exhausted`, ...; empty when the request
    /// never got an answer (connection refused, timeout).
    pub code: &'a str,
    pub message: &'a str,
    pub sip_status: Option<i32>,
}

/// Classify a failed `CreateSIPParticipant` per DESIGN.md §5. The SIP status wins when present;
/// without one, the Twirp code decides.
pub fn classify(err: &DialError<'_>) -> CallOutcome {
    if let Some(status) = err.sip_status {
        return match status {
            486 | 600 => CallOutcome::Busy,
            480 => CallOutcome::Unavailable,
            408 | 504 | 487 => CallOutcome::NoAnswer,
            503 => CallOutcome::CarrierThrottled,
            603 | 607 | 608 => CallOutcome::Declined,
            404 | 410 | 484 | 604 => CallOutcome::InvalidNumber,
            401 | 402 | 403 | 407 => CallOutcome::TrunkRejected,
            _ => CallOutcome::Failed,
        };
    }
    let message = err.message.to_ascii_lowercase();
    match err.code {
        "canceled" | "deadline_exceeded"
            if message.contains("timed out") || message.contains("timeout") =>
        {
            CallOutcome::NoAnswer
        }
        "canceled" => CallOutcome::NoAnswer,
        "" | "unavailable" | "internal" | "unknown" | "deadline_exceeded" | "malformed"
        | "bad_route" => CallOutcome::Infrastructure,
        "unauthenticated" | "permission_denied" => CallOutcome::TrunkRejected,
        "not_found" | "invalid_argument" | "failed_precondition" => CallOutcome::TrunkRejected,
        "resource_exhausted" => CallOutcome::CarrierThrottled,
        _ => CallOutcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(status: i32) -> CallOutcome {
        classify(&DialError {
            code: "resource_exhausted",
            message: "",
            sip_status: Some(status),
        })
    }

    #[test]
    fn sip_status_decides_first() {
        assert_eq!(sip(486), CallOutcome::Busy);
        assert_eq!(sip(600), CallOutcome::Busy);
        assert_eq!(sip(480), CallOutcome::Unavailable);
        assert_eq!(sip(408), CallOutcome::NoAnswer);
        assert_eq!(sip(503), CallOutcome::CarrierThrottled);
        assert_eq!(sip(603), CallOutcome::Declined);
        assert_eq!(sip(404), CallOutcome::InvalidNumber);
        assert_eq!(sip(403), CallOutcome::TrunkRejected);
        assert_eq!(sip(499), CallOutcome::Failed);
    }

    #[test]
    fn twirp_code_decides_without_a_sip_status() {
        let ring = DialError {
            code: "canceled",
            message: "sip request timed out",
            sip_status: None,
        };
        assert_eq!(classify(&ring), CallOutcome::NoAnswer);
        let down = DialError {
            code: "",
            message: "connection refused",
            sip_status: None,
        };
        assert_eq!(classify(&down), CallOutcome::Infrastructure);
        let unavailable = DialError {
            code: "unavailable",
            message: "no response from servers",
            sip_status: None,
        };
        assert_eq!(classify(&unavailable), CallOutcome::Infrastructure);
        let bad_trunk = DialError {
            code: "not_found",
            message: "trunk not found",
            sip_status: None,
        };
        assert_eq!(classify(&bad_trunk), CallOutcome::TrunkRejected);
    }

    #[test]
    fn a_leg_that_leaves_still_active_was_dropped_for_lack_of_media() {
        assert_eq!(leg_left(Some("active"), false), EndReason::MediaTimeout);
        assert_eq!(
            leg_left(Some(SIP_STATUS_HANGUP), false),
            EndReason::CalleeHangup
        );
        assert_eq!(leg_left(None, false), EndReason::CalleeHangup);
        assert_eq!(leg_left(Some("active"), true), EndReason::Transferred);
        assert_eq!(leg_left(None, true), EndReason::Transferred);
    }

    #[test]
    fn only_the_documented_outcomes_retry() {
        assert!(CallOutcome::Busy.is_retryable());
        assert!(CallOutcome::NoAnswer.is_retryable());
        assert!(!CallOutcome::Declined.is_retryable());
        assert!(!CallOutcome::TrunkRejected.is_retryable());
        assert!(
            !CallOutcome::Infrastructure.is_retryable(),
            "infrastructure retries outside the attempt budget"
        );
    }
}
