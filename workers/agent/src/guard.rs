//! The checks right before a fresh dial: the call's campaign still runs, the number is not on
//! the do-not-call list (checked here again, so a number added after enqueue is never dialed),
//! and no other call holds the number (the same person is never in two live calls at once).

use std::time::Duration;

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
    let req = &job.req;
    let close = |outcome: CallOutcome, reason: &str| {
        tracing::info!(call.id = %req.call_id, outcome = outcome.as_str(), reason, "not dialing");
        Some(Disposition::Final(Box::new(summary::closed_before_dial(
            w, req, state, outcome, reason,
        ))))
    };
    if job.campaign_job {
        match w.bus.campaign(&req.campaign).await {
            Ok(Some((c, _))) if c.status == CampaignStatus::Cancelled => {
                return close(CallOutcome::Cancelled, "its campaign was cancelled");
            }
            Ok(Some((c, _))) if c.status == CampaignStatus::Paused => {
                return Some(Disposition::Backoff(Duration::from_secs(2)));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(call.id = %req.call_id, error = %e, "campaign unreadable; backing off");
                return Some(Disposition::Backoff(Duration::from_secs(2)));
            }
        }
    }
    let number = req.destination.to_string();
    match w.bus.is_dnc(&number).await {
        Ok(true) => {
            return close(
                CallOutcome::DoNotCall,
                "the number is on the do-not-call list; never dialed",
            );
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(call.id = %req.call_id, error = %e, "do-not-call list unreadable; backing off");
            return Some(Disposition::Backoff(Duration::from_secs(2)));
        }
    }
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
            Some(Disposition::Backoff(Duration::from_secs(2)))
        }
    }
}
