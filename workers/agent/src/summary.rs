//! Building the call-ended summary (DESIGN.md §3).

use callfleet_domain::{
    CallOutcome, CallRequest, CallState, EndReason, latency,
    request::SessionOptions,
    summary::{
        AttemptRecord, CallSummary, DurationEstimate, LatencyPercentiles, Recording,
        SCHEMA_VERSION, SipStatus, TurnMetrics, Usage,
    },
};
use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::Worker;

/// Everything an attempt knows when it ends.
pub struct Parts {
    pub attempt: u32,
    pub attempts: Vec<AttemptRecord>,
    pub outcome: CallOutcome,
    pub end_reason: EndReason,
    pub sip: Option<SipStatus>,
    pub session_start: Timestamp,
    pub call_start: Option<Timestamp>,
    pub call_end: Option<Timestamp>,
    pub recording: Recording,
    pub error: Option<String>,
    /// Set when `call_start`/`call_end` were not observed (the holding worker was lost).
    pub estimate: Option<DurationEstimate>,
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    let d = to.duration_since(from).as_secs_f64();
    (d * 1000.0).round() / 1000.0
}

/// Dead air at the start of a call: the answer to the first agent audio frame, in whole
/// milliseconds (0 when the agent's audio went out before the answer was recorded).
pub fn first_agent_audio_ms(answered: Timestamp, first_audio: Option<Timestamp>) -> Option<u64> {
    let d = first_audio?.duration_since(answered).as_millis();
    Some(u64::try_from(d.max(0)).unwrap_or(u64::MAX))
}

/// p50 and p95 of the turns' response latency (end of the callee's turn to the agent's first
/// audio); `None` without a measured turn.
pub fn response_latency(turns: &[TurnMetrics]) -> Option<LatencyPercentiles> {
    let samples: Vec<f64> = turns.iter().filter_map(|t| t.response_latency_ms).collect();
    latency::percentiles(&samples)
}

pub fn build(worker: &Worker, req: &CallRequest, parts: Parts) -> CallSummary {
    let session_end = Timestamp::now();
    let call_duration_seconds = match (parts.call_start, parts.call_end) {
        (Some(a), Some(b)) => Some(seconds(a, b)),
        _ => None,
    };
    CallSummary {
        schema_version: SCHEMA_VERSION,
        call_id: req.call_id.clone(),
        room: req.room.clone(),
        agent_name: worker.config.agent.name.clone(),
        campaign: req.campaign.clone(),
        account_code: req.account_code.clone(),
        destination: req.destination.to_string(),
        direction: req.direction,
        inbound: req.inbound.clone(),
        metadata: req.metadata.clone(),
        outcome: parts.outcome,
        end_reason: parts.end_reason,
        attempt: parts.attempt,
        attempts: parts.attempts,
        sip: parts.sip,
        call_start: parts.call_start,
        call_end: parts.call_end,
        call_duration_seconds,
        duration_estimated: parts.estimate.is_some(),
        duration_estimate: parts.estimate,
        session_start: parts.session_start,
        session_end,
        session_duration_seconds: seconds(parts.session_start, session_end),
        usage: Usage::default(),
        turns: Vec::new(),
        session_config: req.session_options.clone(),
        transcript: Vec::new(),
        session_close_reason: None,
        first_agent_audio_ms: None,
        answer: None,
        response_latency_ms: None,
        recording: parts.recording,
        error: parts.error,
        callback_url: req.callback_url.as_ref().map(ToString::to_string),
        worker_id: worker.worker_id.to_string(),
    }
}

/// A call that ends before any dial (dead-lettered after too many deliveries).
pub fn never_dialed(
    worker: &Worker,
    req: &CallRequest,
    outcome: CallOutcome,
    end_reason: EndReason,
    reason: &str,
) -> CallSummary {
    let now = Timestamp::now();
    build(
        worker,
        req,
        Parts {
            attempt: 0,
            attempts: Vec::new(),
            outcome,
            end_reason,
            sip: None,
            session_start: now,
            call_start: None,
            call_end: None,
            recording: Recording::default(),
            error: Some(reason.to_owned()),
            estimate: None,
        },
    )
}

/// A call closed before a new dial (cancelled while it waited, on the do-not-call list, its
/// campaign cancelled): its earlier attempts, no new one.
pub fn closed_before_dial(
    worker: &Worker,
    req: &CallRequest,
    state: &CallState,
    outcome: CallOutcome,
    reason: &str,
) -> CallSummary {
    let now = Timestamp::now();
    build(
        worker,
        req,
        Parts {
            attempt: state.attempts,
            attempts: state.history.clone(),
            outcome,
            end_reason: EndReason::Cancelled,
            sip: None,
            session_start: now,
            call_start: None,
            call_end: None,
            recording: Recording::default(),
            error: Some(reason.to_owned()),
            estimate: None,
        },
    )
}

/// Longest text field of an invalid request echoed in its summary.
const MAX_ECHOED_TEXT: usize = 256;
/// Largest metadata of an invalid request echoed in its summary (bigger is left out).
const MAX_ECHOED_METADATA: usize = 16 * 1024;

/// An invalid request: what can be read of it, and why it was refused.
pub fn invalid(worker: &Worker, call_id: &str, payload: &[u8], reason: &str) -> CallSummary {
    let raw: Map<String, Value> = serde_json::from_slice(payload).unwrap_or_default();
    // Echo what can be read, never so much that the event outgrows NATS' max_payload.
    let text = |k: &str| {
        raw.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(MAX_ECHOED_TEXT)
            .collect::<String>()
    };
    let metadata = raw
        .get("metadata")
        .and_then(Value::as_object)
        .filter(|m| serde_json::to_vec(m).map_or(0, |v| v.len()) <= MAX_ECHOED_METADATA)
        .cloned()
        .unwrap_or_default();
    let now = Timestamp::now();
    CallSummary {
        schema_version: SCHEMA_VERSION,
        call_id: call_id.to_owned(),
        room: String::new(),
        agent_name: worker.config.agent.name.clone(),
        campaign: text("campaign"),
        account_code: text("account_code"),
        destination: text("destination"),
        direction: if raw.get("direction").and_then(Value::as_str) == Some("inbound") {
            callfleet_domain::inbound::Direction::Inbound
        } else {
            callfleet_domain::inbound::Direction::Outbound
        },
        inbound: None,
        metadata,
        outcome: CallOutcome::InvalidRequest,
        end_reason: EndReason::InvalidRequest,
        attempt: 0,
        attempts: Vec::new(),
        sip: None,
        call_start: None,
        call_end: None,
        call_duration_seconds: None,
        duration_estimated: false,
        duration_estimate: None,
        session_start: now,
        session_end: now,
        session_duration_seconds: 0.0,
        usage: Usage::default(),
        turns: Vec::new(),
        session_config: SessionOptions::default(),
        transcript: Vec::new(),
        session_close_reason: None,
        first_agent_audio_ms: None,
        answer: None,
        response_latency_ms: None,
        recording: Recording::default(),
        error: Some(reason.to_owned()),
        callback_url: raw
            .get("callback_url")
            .and_then(Value::as_str)
            .filter(|u| u.len() <= MAX_ECHOED_TEXT)
            .map(str::to_owned),
        worker_id: worker.worker_id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_agent_audio_is_measured_from_the_answer() {
        let answered: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
        let spoke: Timestamp = "2026-01-01T00:00:01.234Z".parse().expect("ts");
        assert_eq!(first_agent_audio_ms(answered, Some(spoke)), Some(1234));
        assert_eq!(first_agent_audio_ms(spoke, Some(answered)), Some(0));
        assert_eq!(first_agent_audio_ms(answered, None), None);
    }

    #[test]
    fn response_latency_over_the_measured_turns() {
        let turn = |ms: Option<f64>| TurnMetrics {
            response_latency_ms: ms,
            ..TurnMetrics::default()
        };
        assert_eq!(response_latency(&[turn(None)]), None);
        let p = response_latency(&[turn(Some(800.0)), turn(None), turn(Some(1200.0))])
            .expect("two measured");
        assert_eq!((p.p50, p.p95), (800.0, 1200.0));
    }
}
