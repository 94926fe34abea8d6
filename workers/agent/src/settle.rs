//! [`settle`]: the one place that turns an attempt's [`Disposition`] into the bus [`Outcome`]
//! (after publishing the final event and recording the state), and the two ways a job ends
//! without an attempt: [`reject`] (invalid) and [`dead_letter`] (poison, crash loop).
//!
//! Dead letters are written here, before the `failed`/`dead` events go out, so an event never
//! names a dead letter that is not there yet; if the copy cannot be written the message is
//! redelivered (never dropped).

use std::time::Duration;

use callfleet_bus::{Delivery, Outcome, Scheduled, backoff};
use callfleet_domain::{
    CallEvent, CallOutcome, CallRequest, CallState, CallStatus, EndReason, EventKind, FieldError,
    latency, request, subjects as s, summary::CallSummary,
};
use jiff::Timestamp;

use crate::{
    Worker,
    job::{Disposition, Job},
    summary,
};

/// Publish a call's final event (with its summary), tally it for its campaign, and record the
/// terminal state. Used by [`settle`] and by the busy message of an inbound call no worker took.
pub(crate) async fn finalize(w: &Worker, job: &Job, summary: CallSummary) {
    let req = &job.req;
    let kind = if summary.outcome.was_answered() {
        EventKind::Ended
    } else {
        EventKind::Failed
    };
    let mut state = w.current_state(req).await;
    state.status = if kind == EventKind::Ended {
        CallStatus::Ended
    } else {
        CallStatus::Failed
    };
    state.last_outcome = Some(summary.outcome);
    state.history.clone_from(&summary.attempts);
    state.attempts = summary.attempt;
    state.next_attempt_at = None;
    state.error.clone_from(&summary.error);
    state.updated_at = Timestamp::now();
    let mut event = job.event(kind, summary.attempt);
    let outcome = summary.outcome;
    // A call a person (not a machine) answered that ran a voice session counts in the
    // campaign's dead-air histogram (`callfleet_domain::latency`).
    let first_audio = (outcome == CallOutcome::Answered && summary.session_close_reason.is_some())
        .then(|| latency::bucket(summary.first_agent_audio_ms));
    event.summary = Some(summary);
    w.publish_until_done(&event).await;
    let tally_id = format!("tally.{}", event.event_id);
    if job.campaign_job
        && let Err(e) =
            backon_retry(|| w.bus.tally(&req.campaign, outcome.as_str(), &tally_id)).await
    {
        tracing::error!(call.id = %req.call_id, error = %e, "campaign tally not recorded");
    }
    if job.campaign_job
        && let Some(bucket) = first_audio
    {
        let what = format!("{}.{bucket}", s::TALLY_FIRST_AUDIO);
        let id = format!("{tally_id}.{}", s::TALLY_FIRST_AUDIO);
        if let Err(e) = backon_retry(|| w.bus.tally(&req.campaign, &what, &id)).await {
            tracing::error!(call.id = %req.call_id, error = %e, "first-audio tally not recorded");
        }
    }
    w.put_state_until_done(&state).await;
}

/// Longest dead-letter reason kept (a field error can echo a huge invalid value).
const MAX_REASON: usize = 2048;

/// The one place that maps a disposition onto the bus.
pub(crate) async fn settle(
    w: &Worker,
    msg: &Delivery,
    job: &Job,
    disposition: Disposition,
) -> Outcome {
    let req = &job.req;
    match disposition {
        Disposition::Exhausted { summary, reason } => {
            let dlq = backon_retry(|| {
                w.bus
                    .dead_letter_delivery(msg, s::dlq(&req.call_id), &reason, None)
            })
            .await;
            if let Err(e) = dlq {
                tracing::error!(call.id = %req.call_id, error = %e, "cannot dead-letter the exhausted job; its summary still goes out");
            }
            Box::pin(settle(w, msg, job, Disposition::Final(summary))).await
        }
        Disposition::Final(summary) => {
            finalize(w, job, *summary).await;
            Outcome::Ack
        }
        Disposition::Retry {
            at,
            attempt,
            infra_retries,
            record,
            reason,
        } => {
            if let Err(outcome) = schedule(w, job, at, attempt, infra_retries).await {
                return outcome;
            }
            let mut state = w.current_state(req).await;
            state.status = CallStatus::Scheduled;
            state.last_outcome = Some(record.outcome);
            state.history.push(record.clone());
            state.next_attempt_at = Some(at);
            state.error = Some(reason.clone());
            state.worker_id = None;
            state.updated_at = Timestamp::now();
            w.put_state_until_done(&state).await;
            let mut event = job.event(EventKind::RetryScheduled, record.attempt);
            event.event_id = format!("{}.{}", event.event_id, infra_retries);
            event.detail = Some(serde_json::json!({
                "next_attempt": attempt, "next_attempt_at": at, "outcome": record.outcome,
                "sip": record.sip, "reason": reason, "infra_retries": infra_retries,
            }));
            w.publish_until_done(&event).await;
            Outcome::Ack
        }
        Disposition::WaitForNumber { at, holder } => {
            if let Err(outcome) = schedule(w, job, at, job.attempt, job.infra_retries).await {
                return outcome;
            }
            let mut state = w.current_state(req).await;
            state.status = CallStatus::Scheduled;
            state.next_attempt_at = Some(at);
            state.error = Some(format!(
                "waiting for the number: it is in another live call ({holder})"
            ));
            state.worker_id = None;
            state.updated_at = Timestamp::now();
            w.put_state_until_done(&state).await;
            Outcome::Ack
        }
        Disposition::Backoff(delay) => Outcome::retry(delay, "the call is not ours to dial now"),
        Disposition::Skip => Outcome::Ack,
        Disposition::Abandon => Outcome::Leave,
    }
}

/// Put the job back as a scheduled message for `at` (a campaign contact goes back through
/// the campaigner). `Err` is the outcome when that cannot be written: redeliver.
async fn schedule(
    w: &Worker,
    job: &Job,
    at: Timestamp,
    attempt: u32,
    infra_retries: u32,
) -> Result<(), Outcome> {
    let when = Scheduled {
        at,
        attempt,
        infra_retries,
        generation: job.generation,
        campaign_contact: job.campaign_job.then(|| job.timezone.clone()),
    };
    let scheduled = backon_retry(|| w.bus.schedule_job(&job.req, when.clone())).await;
    scheduled.map_err(|e| {
        tracing::error!(call.id = %job.req.call_id, error = %e, "cannot schedule the job; redelivering");
        Outcome::retry(backoff::WRITE_FAILED, "cannot schedule the job")
    })
}

/// Invalid message: dead-letter it and tell the world with a `failed` event. The copy is
/// cut to fit when the message is close to `max_payload`; if it still cannot be written
/// (JetStream unavailable), the message is redelivered, every 60 s once it has been tried
/// `agent.max_deliveries` times, and never dropped.
pub(crate) async fn reject(
    w: &Worker,
    msg: &Delivery,
    call_id: Option<String>,
    errors: &[FieldError],
) -> Outcome {
    let mut reason = format!("invalid request: {}", request::describe(errors));
    if reason.len() > MAX_REASON {
        let cut = (0..=MAX_REASON)
            .rev()
            .find(|&i| reason.is_char_boundary(i))
            .unwrap_or(0);
        reason.truncate(cut);
        reason.push('…');
    }
    tracing::warn!(call.id = call_id.as_deref().unwrap_or("-"), reason = %reason, "dead-lettering invalid job");
    let key = call_id.clone().unwrap_or_else(|| "unknown".into());
    let dlq = w
        .bus
        .dead_letter_delivery(msg, s::dlq(&key), &reason, None)
        .await;
    if let Err(e) = dlq {
        // The copy is cut to fit, so a failure here is JetStream being unavailable, not the
        // message: keep it (nothing is lost), and back off harder once it has been tried
        // agent.max_deliveries times.
        let delivered = msg.delivered();
        let delay = if delivered < w.config.agent.max_deliveries {
            backoff::WRITE_FAILED
        } else {
            backoff::STUCK
        };
        tracing::error!(error = %e, delivered, retry_in_s = delay.as_secs(), "cannot dead-letter an invalid job; redelivering");
        return Outcome::retry(delay, "cannot dead-letter an invalid job");
    }
    if let Some(call_id) = call_id {
        let summary = summary::invalid(w, &call_id, msg.payload(), &reason);
        let mut event = CallEvent::new(&call_id, EventKind::Failed, 0);
        event.summary = Some(summary);
        w.publish_until_done(&event).await;
        let mut state = CallState::queued(&call_id, "", "");
        state.status = CallStatus::Failed;
        state.last_outcome = Some(CallOutcome::InvalidRequest);
        state.error = Some(reason);
        w.put_state_until_done(&state).await;
    }
    Outcome::Ack
}

/// Poison or crash-looping job: dead-letter with the reason, publish `dead` and `failed`.
pub(crate) async fn dead_letter(
    w: &Worker,
    msg: &Delivery,
    req: &CallRequest,
    reason: &str,
) -> Outcome {
    tracing::error!(call.id = %req.call_id, reason, "dead-lettering job");
    let dlq = w
        .bus
        .dead_letter_delivery(msg, s::dlq(&req.call_id), reason, None)
        .await;
    if let Err(e) = dlq {
        tracing::error!(call.id = %req.call_id, error = %e, "cannot dead-letter the job; redelivering");
        return Outcome::retry(backoff::WRITE_FAILED, "cannot dead-letter the job");
    }
    let mut dead = CallEvent::new(&req.call_id, EventKind::Dead, 0);
    dead.event_id = format!("{}.{}", dead.event_id, msg.stream_sequence().unwrap_or(0));
    dead.detail = Some(serde_json::json!({ "reason": reason }));
    w.publish_until_done(&dead).await;
    let summary = summary::never_dialed(w, req, CallOutcome::Failed, EndReason::DialFailed, reason);
    let job = Job {
        req: req.clone(),
        attempt: summary.attempt,
        infra_retries: 0,
        delivered: 0,
        generation: Job::header(msg, s::GENERATION_HEADER).unwrap_or(0),
        campaign_job: msg.subject().starts_with("calls.campaign."),
        timezone: None,
        inbound: None,
    };
    settle(w, msg, &job, Disposition::Final(Box::new(summary))).await
}

/// Retry a NATS operation for up to about five minutes (NATS restarting, a cluster electing).
pub(crate) async fn backon_retry<T, E, F, Fut>(op: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    use backon::{ExponentialBuilder, Retryable};
    op.retry(
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(70),
    )
    .notify(|e: &E, after: Duration| tracing::warn!(error = %e, retry_in_ms = after.as_millis() as u64, "NATS operation failed"))
    .await
}
