//! One attempt of one call on LiveKit, read top-down from [`run`].
//!
//! The caller has fenced the attempt: the call is not over, its lease is this worker's and kept
//! alive, and a cancel that landed before the dial is already closed. From there:
//!
//! - a fresh attempt passes [`guard::before_dial`] (the campaign runs, the number is not on the
//!   do-not-call list nor in another live call), is [`dial`]ed (state and event, room,
//!   recording, `CreateSIPParticipant` until answered), then [`hold`] holds the answered call or
//!   lets the voice session converse until the leg ends, the room is hung up, and [`finish`]
//!   settles the attempt into a [`Disposition`] (a scheduled retry or a final summary);
//! - an attempt whose worker died while it dialed or held the call is [`reconcile`]d against
//!   LiveKit instead: a ring is followed, an answered call resumed, a gone callee closed with
//!   `worker_lost`. It is never dialed again.

mod attempt;
mod dial;
mod finish;
mod hold;
mod inbound;
mod reconcile;
mod record;

use callfleet_domain::CallState;

use self::{
    attempt::{Attempt, hang_up},
    dial::Rang,
};
use crate::{
    Worker,
    control::Control,
    guard,
    job::{Disposition, Job},
    keepalive::Keepalive,
    leg::Held,
};

/// Run one attempt: a fresh dial, or the reconciliation of an attempt whose worker died.
pub async fn run(
    w: &Worker,
    job: &Job,
    state: CallState,
    in_flight: bool,
    keep: &Keepalive,
    control: &mut Control,
) -> Disposition {
    if let Some(inbound) = &job.inbound {
        return inbound::run(w, job, inbound, state, in_flight, keep, control).await;
    }
    if in_flight {
        return reconcile::run(Attempt::new(w, job, state, keep, control)).await;
    }
    if let Some(early) = guard::before_dial(w, job, &state, keep).await {
        return early;
    }
    fresh(Attempt::new(w, job, state, keep, control)).await
}

/// A fresh attempt, step by step.
async fn fresh(mut a: Attempt<'_>) -> Disposition {
    dial::announce(&mut a).await;
    let ready = match dial::prepare(&mut a).await {
        Ok(ready) => ready,
        Err(failure) => return finish::failed(a, failure),
    };
    // The voice session joins the room while the phone rings, so it hears the callee from
    // the answer on (a person's "hello?" comes within a second; joining after the answer took
    // about as long and missed it).
    let joining = async {
        match ready.voice {
            Some(_) => Some(crate::voice::join(a.w, a.job).await),
            None => None,
        }
    };
    let (rang, joined) = tokio::join!(dial::ring(&a, ready.trunk_id), joining);
    let answered = match rang {
        Rang::Answered(at) => at,
        Rang::Failed(failure) => {
            crate::voice::leave(joined, &a.job.req.call_id).await;
            hang_up(&a).await;
            return finish::failed(a, failure);
        }
        Rang::Lost => {
            crate::voice::leave(joined, &a.job.req.call_id).await;
            return Disposition::Abandon;
        }
    };
    dial::mark_answered(&mut a, answered).await;
    let (held, session) = hold::hold_or_converse(&mut a, ready.voice, joined, answered).await;
    let Held::Ended(end_reason) = held else {
        return Disposition::Abandon;
    };
    hang_up(&a).await;
    record::finish(&mut a).await;
    finish::ended(a, end_reason, answered, session)
}
