//! Settling a failed dial into a `Disposition`: a scheduled retry or a final summary.

use callfleet_domain::{
    CallOutcome, CallState, EndReason,
    summary::{AttemptRecord, Recording, SipStatus},
};
use jiff::Timestamp;

use crate::{
    Worker,
    job::{Disposition, Job},
    retry::{self, Decision},
    summary::{self, Parts},
};

#[expect(
    clippy::too_many_arguments,
    reason = "one call site shape, kept flat for readability"
)]
pub(super) fn finish_failed(
    w: &Worker,
    job: &Job,
    state: &CallState,
    session_start: Timestamp,
    outcome: CallOutcome,
    sip: Option<SipStatus>,
    error: String,
    recording: Recording,
) -> Disposition {
    let req = &job.req;
    tracing::info!(call.id = %req.call_id, outcome = outcome.as_str(), %error, "dial failed");
    let record = AttemptRecord {
        attempt: job.attempt,
        outcome,
        started_at: session_start,
        ended_at: Timestamp::now(),
        sip: sip.clone(),
        error: Some(error.clone()),
    };
    match retry::decide(
        &w.config.retry,
        req,
        outcome,
        job.attempt,
        job.infra_retries,
    ) {
        Decision::Retry {
            after,
            attempt,
            infra_retries,
        } => Disposition::Retry {
            at: retry::due(after),
            attempt,
            infra_retries,
            record,
            reason: error,
        },
        Decision::Final => {
            let exhausted = (outcome.is_retryable() || outcome == CallOutcome::Infrastructure)
                .then(|| {
                    format!(
                        "retries exhausted: {} on attempt {} ({} infrastructure retries)",
                        outcome.as_str(),
                        job.attempt,
                        job.infra_retries
                    )
                });
            let mut attempts = state.history.clone();
            attempts.push(record);
            let parts = Parts {
                attempt: job.attempt,
                attempts,
                outcome,
                end_reason: if outcome == CallOutcome::Cancelled {
                    EndReason::Cancelled
                } else {
                    EndReason::DialFailed
                },
                sip,
                session_start,
                call_start: None,
                call_end: None,
                recording,
                error: Some(error),
                estimate: None,
            };
            let summary = Box::new(summary::build(w, req, parts));
            match exhausted {
                Some(reason) => Disposition::Exhausted { summary, reason },
                None => Disposition::Final(summary),
            }
        }
    }
}
