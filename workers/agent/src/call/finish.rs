//! Settling an attempt into a [`Disposition`]: a failed dial is retried or closed, an ended or
//! reconciled call gets its final summary (the attempt's record appended to the call's history).

use callfleet_config::AnsweringConfig;
use callfleet_domain::{
    CallOutcome, CallRequest, EndReason, outcome,
    summary::{AttemptRecord, CallSummary, DurationEstimate, SessionCloseReason, SipStatus},
};
use callfleet_livekit::DialFailure;
use jiff::Timestamp;

use super::attempt::Attempt;
use crate::{
    job::Disposition,
    retry::{self, Decision},
    summary::{self, Parts},
    voice::Report,
};

/// Why a dial failed.
pub(super) struct Failure {
    pub outcome: CallOutcome,
    pub sip: Option<SipStatus>,
    pub error: String,
}

impl Failure {
    pub fn new(outcome: CallOutcome, error: impl Into<String>) -> Self {
        Self {
            outcome,
            sip: None,
            error: error.into(),
        }
    }
}

impl From<DialFailure> for Failure {
    fn from(failure: DialFailure) -> Self {
        Self {
            outcome: failure.outcome,
            error: failure.to_string(),
            sip: failure.sip,
        }
    }
}

/// A failed dial: scheduled again if [`retry::decide`] says so, else closed (dead-lettered too
/// when its retries ran out).
pub(super) fn failed(a: Attempt<'_>, failure: Failure) -> Disposition {
    let job = a.job;
    let Failure {
        outcome,
        sip,
        error,
    } = failure;
    tracing::info!(call.id = %job.req.call_id, outcome = outcome.as_str(), %error, "dial failed");
    let record = AttemptRecord {
        attempt: job.attempt,
        outcome,
        started_at: a.session_start,
        ended_at: Timestamp::now(),
        sip: sip.clone(),
        error: Some(error.clone()),
    };
    let decision = retry::decide(
        &a.w.config.retry,
        &job.req,
        outcome,
        job.attempt,
        job.infra_retries,
    );
    let Decision::Retry {
        after,
        attempt,
        infra_retries,
    } = decision
    else {
        return failed_for_good(a, record, sip, error);
    };
    Disposition::Retry {
        at: retry::due(after),
        attempt,
        infra_retries,
        record,
        reason: error,
    }
}

/// A failed dial that is not retried: its final summary, `Exhausted` if retries ran out.
fn failed_for_good(
    a: Attempt<'_>,
    record: AttemptRecord,
    sip: Option<SipStatus>,
    error: String,
) -> Disposition {
    let (outcome, job) = (record.outcome, a.job);
    let exhausted = (outcome.is_retryable() || outcome == CallOutcome::Infrastructure).then(|| {
        format!(
            "retries exhausted: {} on attempt {} ({} infrastructure retries)",
            outcome.as_str(),
            job.attempt,
            job.infra_retries
        )
    });
    let end_reason = if outcome == CallOutcome::Cancelled {
        EndReason::Cancelled
    } else {
        EndReason::DialFailed
    };
    let summary = Box::new(close(a, record, end_reason, |p| {
        p.sip = sip;
        p.error = Some(error);
    }));
    match exhausted {
        Some(reason) => Disposition::Exhausted { summary, reason },
        None => Disposition::Final(summary),
    }
}

/// A call this attempt dialed, answered and held (or conversed) to its end.
pub(super) fn ended(
    a: Attempt<'_>,
    end_reason: EndReason,
    answered: Timestamp,
    session: Option<Report>,
) -> Disposition {
    let call_end = Timestamp::now();
    let answer = session.as_ref().and_then(|r| match &r.close_reason {
        Some(SessionCloseReason::AnswerPolicy {
            class,
            message_left,
        }) => Some((*class, *message_left)),
        _ => None,
    });
    let outcome = answer.map_or(CallOutcome::Answered, |(class, left)| {
        outcome::of_answer(class, left)
    });
    tracing::info!(call.id = %a.job.req.call_id, reason = ?end_reason, outcome = outcome.as_str(), "call ended");
    let ok = || {
        Some(SipStatus {
            code: Some(200),
            reason: Some("OK".into()),
        })
    };
    let record = AttemptRecord {
        attempt: a.job.attempt,
        outcome,
        started_at: a.session_start,
        ended_at: call_end,
        sip: ok(),
        error: None,
    };
    if let Some((class, left)) = answer
        && class.is_voicemail()
        && let Decision::Retry {
            after,
            attempt,
            infra_retries,
        } = retry::after_voicemail(
            &a.w.config.retry,
            &a.job.req,
            voicemail_retries(&a.w.config.answering, &a.job.req, left),
            a.job.attempt,
        )
    {
        return Disposition::Retry {
            at: retry::due(after),
            attempt,
            infra_retries,
            reason: format!("{}: called again later", outcome.as_str()),
            record,
        };
    }
    let mut summary = close(a, record, end_reason, |p| {
        p.sip = ok();
        p.call_start = Some(answered);
        p.call_end = Some(call_end);
        p.error = session.as_ref().and_then(|r| r.error.clone());
    });
    if let Some(report) = session {
        summary.first_agent_audio_ms =
            crate::summary::first_agent_audio_ms(answered, report.first_audio_at);
        summary.response_latency_ms = crate::summary::response_latency(&report.turns);
        summary.usage = report.usage;
        summary.turns = report.turns;
        summary.transcript = report.transcript;
        summary.session_close_reason = report.close_reason;
        summary.answer = report.answer;
    }
    Disposition::Final(Box::new(summary))
}

/// Whether a voicemail is called again: the request's `voicemail.retry`, else the fleet's, else
/// yes unless the message was left.
fn voicemail_retries(fleet: &AnsweringConfig, req: &CallRequest, message_left: bool) -> bool {
    req.session_options
        .voicemail
        .as_ref()
        .and_then(|v| v.retry)
        .or(fleet.voicemail.retry)
        .unwrap_or(!message_left)
}

/// A ring taken over from a lost worker that this worker stopped following.
pub(super) fn stopped_following(
    a: Attempt<'_>,
    outcome: CallOutcome,
    end_reason: EndReason,
    error: String,
) -> Disposition {
    let record = AttemptRecord {
        attempt: a.job.attempt,
        outcome,
        started_at: a.state.updated_at,
        ended_at: Timestamp::now(),
        sip: None,
        error: Some(error.clone()),
    };
    Disposition::Final(Box::new(close(a, record, end_reason, |p| {
        p.error = Some(error);
    })))
}

/// An answered call taken over from a lost worker and held by this one to its end.
pub(super) fn resumed(
    a: Attempt<'_>,
    end_reason: EndReason,
    answered: Timestamp,
    estimate: Option<DurationEstimate>,
) -> Disposition {
    let call_end = Timestamp::now();
    let record = AttemptRecord {
        attempt: a.job.attempt,
        outcome: CallOutcome::Answered,
        started_at: answered,
        ended_at: call_end,
        sip: None,
        error: Some("worker lost mid-call; resumed by another worker".into()),
    };
    Disposition::Final(Box::new(close(a, record, end_reason, |p| {
        p.call_start = Some(answered);
        p.call_end = Some(call_end);
        p.estimate = estimate;
    })))
}

/// A call whose worker died and whose callee was gone (or never answered) when this worker
/// looked, found at `now`: closed with `worker_lost`, its end estimated if it was answered.
pub(super) fn worker_lost(
    a: Attempt<'_>,
    outcome: CallOutcome,
    error: String,
    now: Timestamp,
) -> Disposition {
    let state = &a.state;
    let (call_end, estimate) = match state.answered_at {
        Some(answered) => {
            let (end, estimate) = estimate_end(answered, state.callee_seen_at, now);
            (Some(end), Some(estimate))
        }
        None => (None, None),
    };
    let record = AttemptRecord {
        attempt: a.job.attempt,
        outcome,
        started_at: state.answered_at.unwrap_or(state.updated_at),
        ended_at: call_end.unwrap_or(now),
        sip: None,
        error: Some(error.clone()),
    };
    let call_start = state.answered_at;
    Disposition::Final(Box::new(close(a, record, EndReason::WorkerLost, |p| {
        p.call_start = call_start;
        p.call_end = call_end;
        p.error = Some(error);
        p.estimate = estimate;
    })))
}

/// A call closed with `record` as its last attempt and nothing else known.
pub(super) fn closed(a: Attempt<'_>, record: AttemptRecord, end_reason: EndReason) -> Disposition {
    Disposition::Final(Box::new(close(a, record, end_reason, |_| {})))
}

/// The final summary of the attempt's call: the call's past attempts and this one's `record`
/// (whose outcome is the call's), ended for `end_reason`; `fill` sets what else is known (SIP
/// status, answer and hang-up times, error, estimate), which is absent otherwise.
fn close(
    a: Attempt<'_>,
    record: AttemptRecord,
    end_reason: EndReason,
    fill: impl FnOnce(&mut Parts),
) -> CallSummary {
    let outcome = record.outcome;
    let mut attempts = a.state.history.clone();
    attempts.push(record);
    let mut parts = Parts {
        attempt: a.job.attempt,
        attempts,
        outcome,
        end_reason,
        sip: None,
        session_start: a.session_start,
        call_start: None,
        call_end: None,
        recording: a.recording,
        error: None,
        estimate: None,
    };
    fill(&mut parts);
    summary::build(a.w, &a.job.req, parts)
}

/// The hang-up of an answered call nobody watched end: the lost worker last saw the callee at
/// `seen` (or at the answer), another worker found it gone at `found_gone`. The estimate is the
/// middle of that span, which is given as the bounds.
fn estimate_end(
    answered: Timestamp,
    seen: Option<Timestamp>,
    found_gone: Timestamp,
) -> (Timestamp, DurationEstimate) {
    let earliest = seen.map_or(answered, |s| s.max(answered)).min(found_gone);
    let half = found_gone.duration_since(earliest) / 2;
    let end = earliest.checked_add(half).unwrap_or(found_gone);
    let estimate = DurationEstimate {
        start_from: "answered_at".into(),
        end_from: if seen.is_some() {
            "midpoint of callee_seen_at and takeover".into()
        } else {
            "midpoint of answered_at and takeover".into()
        },
        start_earliest: Some(answered),
        start_latest: Some(answered),
        end_earliest: Some(earliest),
        end_latest: Some(found_gone),
    };
    (end, estimate)
}
