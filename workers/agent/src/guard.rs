//! The checks right before a fresh dial: the call's campaign still runs, the number is not on
//! the do-not-call list (checked here again, so a number added after enqueue is never dialed),
//! and no other call holds the number (the same person is never in two live calls at once).

use std::time::Duration;

use callfleet_bus::backoff;
use callfleet_domain::{CallOutcome, CallState, campaign::CampaignStatus};

use crate::{
    Worker,
    job::{Disposition, Job},
    keepalive::Keepalive,
    summary,
};

/// How long a call waits before it checks a busy number again.
const NUMBER_WAIT: Duration = Duration::from_secs(3);

/// `Some` ends or defers the attempt before it dials.
pub(crate) async fn before_dial(
    w: &Worker,
    job: &Job,
    state: &CallState,
    keep: &Keepalive,
) -> Option<Disposition> {
    if job.campaign_job
        && let Some(early) = campaign_runs(w, job, state).await
    {
        return Some(early);
    }
    let number = job.req.destination.to_string();
    if let Some(early) = not_on_dnc(w, job, state, &number).await {
        return Some(early);
    }
    lock_number(w, job, keep, number).await
}

/// A call closed before it dials, with its reason.
fn close(
    w: &Worker,
    job: &Job,
    state: &CallState,
    outcome: CallOutcome,
    reason: &str,
) -> Disposition {
    let req = &job.req;
    tracing::info!(call.id = %req.call_id, outcome = outcome.as_str(), reason, "not dialing");
    Disposition::Final(Box::new(summary::closed_before_dial(
        w, req, state, outcome, reason,
    )))
}

/// The call's campaign must run: a cancelled one closes the call, a paused one defers it.
async fn campaign_runs(w: &Worker, job: &Job, state: &CallState) -> Option<Disposition> {
    let req = &job.req;
    match w.bus.campaign(&req.campaign).await {
        Ok(Some((c, _))) if c.status == CampaignStatus::Cancelled => Some(close(
            w,
            job,
            state,
            CallOutcome::Cancelled,
            "its campaign was cancelled",
        )),
        Ok(Some((c, _))) if c.status == CampaignStatus::Paused => {
            Some(Disposition::Backoff(backoff::CHECK_AGAIN))
        }
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(call.id = %req.call_id, error = %e, "campaign unreadable; backing off");
            Some(Disposition::Backoff(backoff::CHECK_AGAIN))
        }
    }
}

/// A number on the do-not-call list is never dialed.
async fn not_on_dnc(w: &Worker, job: &Job, state: &CallState, number: &str) -> Option<Disposition> {
    match w.bus.is_dnc(number).await {
        Ok(true) => Some(close(
            w,
            job,
            state,
            CallOutcome::DoNotCall,
            "the number is on the do-not-call list; never dialed",
        )),
        Ok(false) => None,
        Err(e) => {
            tracing::warn!(call.id = %job.req.call_id, error = %e, "do-not-call list unreadable; backing off");
            Some(Disposition::Backoff(backoff::CHECK_AGAIN))
        }
    }
}

/// Take the number's lock for the call (kept by the keepalive), or wait for the call that holds it.
async fn lock_number(
    w: &Worker,
    job: &Job,
    keep: &Keepalive,
    number: String,
) -> Option<Disposition> {
    let req = &job.req;
    match w.bus.lock_number(&number, &req.call_id).await {
        Ok(None) => {
            keep.hold_number(number, req.call_id.clone());
            None
        }
        Ok(Some(holder)) => {
            // Not a NAK: each would spend a delivery, and a call longer than
            // max_deliveries' worth of back-offs would dead-letter this one unwound.
            tracing::info!(call.id = %req.call_id, other = %holder, "the number is in another live call; waiting as a scheduled message");
            Some(Disposition::WaitForNumber {
                at: crate::retry::due(NUMBER_WAIT),
                holder,
            })
        }
        Err(e) => {
            tracing::warn!(call.id = %req.call_id, error = %e, "cannot lock the number; backing off");
            Some(Disposition::Backoff(backoff::CHECK_AGAIN))
        }
    }
}
