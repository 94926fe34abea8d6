//! One message = one attempt of one call: parse it, pass the fence (state, control, lease, state
//! again under the lease), run [`crate::call::run`], then [`crate::settle::settle`] turns its
//! [`Disposition`] into the bus [`Outcome`] that [`handle`] returns.

use callfleet_bus::{Delivery, LeaseError, Outcome, backoff};
use callfleet_domain::{CallOutcome, CallState, CallStatus};

use crate::{
    Worker,
    control::Control,
    job::{Disposition, Job},
    keepalive::Keepalive,
    settle, summary,
};

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
