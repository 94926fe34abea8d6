//! One message = one attempt of one call: parsing, the checks before dialing, the attempt,
//! then [`crate::settle::settle`] turns its [`Disposition`] into the bus [`Outcome`] that
//! [`handle`] returns.

use std::time::Duration;

use callfleet_bus::{Delivery, LeaseError, Outcome, backoff};
use callfleet_domain::{
    CallEvent, CallOutcome, CallRequest, CallState, CallStatus, EventKind, FieldError,
    request::{self, ValidateOptions},
    subjects as s,
    summary::{AttemptRecord, CallSummary},
};
use jiff::Timestamp;
use serde_json::Value;

use crate::{Worker, control::Control, keepalive::Keepalive, settle, summary};

/// A parsed job.
pub struct Job {
    pub req: CallRequest,
    pub attempt: u32,
    pub infra_retries: u32,
    pub delivered: i64,
    /// Non-zero for a job replayed from the dead-letter stream.
    pub generation: u32,
    /// Released by the campaigner (`calls.campaign.<id>`): tallied, retried through it.
    pub campaign_job: bool,
    /// A campaign contact's own time zone.
    pub timezone: Option<String>,
}

/// What became of an attempt.
pub enum Disposition {
    /// Finished for good: publish the final event (with its summary), record the state, ack.
    Final(Box<CallSummary>),
    /// Final because its retries ran out: as `Final`, and a copy of the job goes to the
    /// dead-letter stream with `reason`, so an operator can `callfleet dlq replay` it.
    Exhausted {
        summary: Box<CallSummary>,
        reason: String,
    },
    /// Dial again later: schedule the job, record the state, publish `retry_scheduled`, ack.
    Retry {
        at: Timestamp,
        attempt: u32,
        infra_retries: u32,
        record: AttemptRecord,
        reason: String,
    },
    /// The number is in another live call: wait as a scheduled message (no delivery spent, no
    /// attempt spent), then check again.
    WaitForNumber { at: Timestamp, holder: String },
    /// Someone else holds the call: redeliver after this long.
    Backoff(Duration),
    /// Nothing to do (the call already ended): ack.
    Skip,
    /// The worker lost the call (lease taken over); leave the message alone.
    Abandon,
}

impl Job {
    pub(crate) fn header(msg: &Delivery, name: &str) -> Option<u32> {
        msg.header(name)?.parse().ok()
    }

    /// Validate a message exactly like the ingress validates a POST body.
    pub fn parse(msg: &Delivery) -> Result<Self, (Option<String>, Vec<FieldError>)> {
        let delivered = msg.delivered();
        // A publisher that gave no call id (or no JSON at all) gets one derived from the stream
        // sequence, `js<seq>`, so every redelivery of the message maps to the same call.
        let fallback = msg.stream_sequence().map(|seq| format!("js{seq}"));
        let value: Value = serde_json::from_slice(msg.payload()).map_err(|e| {
            (
                fallback.clone(),
                vec![FieldError::new("(body)", format!("is not valid JSON: {e}"))],
            )
        })?;
        let call_id_hint = value
            .get("call_id")
            .and_then(Value::as_str)
            .filter(|id| s::is_token(id))
            .map(str::to_owned);
        let req = request::validate(
            &value,
            &ValidateOptions {
                default_country_code: None,
                fallback_call_id: fallback.clone(),
            },
        )
        .map_err(|errors| (call_id_hint.or(fallback), errors))?;
        Ok(Self {
            req,
            attempt: Self::header(msg, s::ATTEMPT_HEADER).unwrap_or(1).max(1),
            infra_retries: Self::header(msg, s::INFRA_RETRIES_HEADER).unwrap_or(0),
            delivered,
            generation: Self::header(msg, s::GENERATION_HEADER).unwrap_or(0),
            campaign_job: msg.subject().starts_with("calls.campaign."),
            timezone: msg.header(s::TIMEZONE_HEADER).map(str::to_owned),
        })
    }

    /// An event of this job. A replayed job's event ids carry its generation.
    pub fn event(&self, kind: EventKind, attempt: u32) -> CallEvent {
        let mut event = CallEvent::new(&self.req.call_id, kind, attempt);
        if self.generation > 0 {
            event.event_id = format!("{}.g{}", event.event_id, self.generation);
        }
        event
    }
}

/// Handle one message end to end and say what to do with it. Never panics on input.
pub(crate) async fn handle(w: &Worker, msg: Delivery) -> Outcome {
    let job = match Job::parse(&msg) {
        Ok(job) => job,
        Err((call_id, errors)) => return settle::reject(w, &msg, call_id, &errors).await,
    };
    let call_id = job.req.call_id.clone();
    if job.delivered > w.config.agent.max_deliveries {
        let reason = format!(
            "delivered {} times without completing (agent.max_deliveries)",
            job.delivered
        );
        return settle::dead_letter(w, &msg, &job.req, &reason).await;
    }
    let (disposition, keepalive) = attempt(w, &job, &msg).await;
    let outcome = settle::settle(w, &msg, &job, disposition).await;
    // The number and the lease are given back only once the outcome is recorded (its
    // event and state; the bus acknowledges the message right after).
    if let Some(number) = keepalive.as_ref().and_then(Keepalive::held_number)
        && let Err(e) = w.bus.unlock_number(&number).await
    {
        tracing::warn!(call.id = %call_id, error = %e, "cannot unlock the number; it expires on its own");
    }
    if let Some(keepalive) = keepalive
        && let Some(lease) = keepalive.stop().await
        && let Err(e) = w.bus.release_lease(&lease).await
    {
        tracing::warn!(call.id = %call_id, error = %e, "cannot release the lease; it expires on its own");
    }
    outcome
}

/// The checks before dialing, then the attempt itself.
async fn attempt(w: &Worker, job: &Job, msg: &Delivery) -> (Disposition, Option<Keepalive>) {
    let req = &job.req;
    match w.bus.call_state(&req.call_id).await {
        Ok(Some((state, _))) if state.status.is_terminal() => {
            tracing::info!(call.id = %req.call_id, status = ?state.status, "call already over; skipping");
            return (Disposition::Skip, None);
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(call.id = %req.call_id, error = %e, "call state unreadable; backing off");
            return (Disposition::Backoff(backoff::TRANSIENT), None);
        }
    }
    // Answer control requests from before the lease, so a hang-up is never missed.
    let mut control = Control::listen(w, &req.call_id, req.transfer_target.clone()).await;
    let lease = match w
        .bus
        .take_lease(&req.call_id, &w.worker_id, job.attempt)
        .await
    {
        Ok(lease) => lease,
        Err(LeaseError::Held { holder, .. }) => {
            tracing::info!(call.id = %req.call_id, holder = %holder, "lease held elsewhere; backing off");
            return (Disposition::Backoff(w.config.agent.lease_ttl() / 2), None);
        }
        Err(e) => {
            tracing::warn!(call.id = %req.call_id, error = %e, "cannot take lease; backing off");
            return (Disposition::Backoff(backoff::TRANSIENT), None);
        }
    };
    let keepalive = Keepalive::start(w, msg.clone(), lease);
    // Read the state again under the lease: a cancel may have landed in between.
    let state = match w.bus.call_state(&req.call_id).await {
        Ok(state) => state.map(|(s, _)| s),
        Err(e) => {
            tracing::warn!(call.id = %req.call_id, error = %e, "call state unreadable; backing off");
            return (Disposition::Backoff(backoff::TRANSIENT), Some(keepalive));
        }
    };
    let state = state.unwrap_or_else(|| CallState::queued(&req.call_id, &req.room, &req.campaign));
    if state.status.is_terminal() {
        return (Disposition::Skip, Some(keepalive));
    }
    if state.cancel_requested_at.is_some() {
        tracing::info!(call.id = %req.call_id, "cancelled before dialing; closing");
        let summary = summary::closed_before_dial(
            w,
            req,
            &state,
            CallOutcome::Cancelled,
            "cancelled by request before it was dialed again",
        );
        return (Disposition::Final(Box::new(summary)), Some(keepalive));
    }
    let in_flight = matches!(
        state.status,
        CallStatus::Dialing | CallStatus::Ringing | CallStatus::InCall
    ) && state.attempts >= job.attempt;
    let disposition = crate::call::run(w, job, state, in_flight, &keepalive, &mut control).await;
    (disposition, Some(keepalive))
}
