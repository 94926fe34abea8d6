//! The job came back while its state says a dial was under way: the worker holding it died.
//! Ask LiveKit where the SIP leg stands: follow a ring until it is answered or gone, resume
//! holding an answered call, close with `worker_lost` if the callee is gone. Never dial again.

use std::time::Duration;

use callfleet_bus::backoff;
use callfleet_domain::{
    CallOutcome, CallState, CallStatus, EndReason, EventKind, summary::DurationEstimate,
};
use callfleet_livekit::SipLeg;
use jiff::Timestamp;

use super::{
    attempt::{Attempt, hang_up},
    finish,
    hold::hold,
};
use crate::{job::Disposition, leg::Held};

/// Reconcile the attempt with what LiveKit says of its SIP leg.
pub(super) async fn run(mut a: Attempt<'_>) -> Disposition {
    super::record::salvage(&mut a).await;
    // The call is ours now: `GET /calls/{id}` names this worker, not the lost one.
    a.state.worker_id = Some(a.w.worker_id.to_string());
    a.w.put_state_until_done(&a.state).await;
    match settle_leg(&a).await {
        Settled::Leg {
            leg: SipLeg::Active,
            followed,
            ..
        } => resume(a, followed).await,
        Settled::Leg { followed, rang, .. } => close_lost(a, followed, rang).await,
        Settled::Backoff => Disposition::Backoff(backoff::PEER_UNREACHABLE),
        Settled::Abandon => Disposition::Abandon,
        Settled::Stopped {
            outcome,
            end_reason,
            error,
        } => {
            hang_up(&a).await;
            tracing::warn!(call.id = %a.job.req.call_id, %error, "closing a call taken over while ringing");
            finish::stopped_following(a, outcome, end_reason, error)
        }
    }
}

/// How the SIP leg of a call whose worker died settled.
enum Settled {
    /// Answered or gone. `followed`: it was still dialing or ringing when this worker looked
    /// first (so an answer was seen as it happened); `rang`: livekit-sip reported it ringing.
    Leg {
        leg: SipLeg,
        followed: bool,
        rang: bool,
    },
    /// LiveKit could not be asked: try again later.
    Backoff,
    /// The lease went to another worker.
    Abandon,
    /// Stopped following a ring: operator hang-up, shutdown, or the ring outlasted its timeout.
    Stopped {
        outcome: CallOutcome,
        end_reason: EndReason,
        error: String,
    },
}

/// Wait until the SIP leg is answered or gone: a leg still ringing is followed, not re-dialed.
async fn settle_leg(a: &Attempt<'_>) -> Settled {
    let (w, req) = (a.w, &a.job.req);
    let who = a.job.callee();
    let poll = Duration::from_millis(w.config.agent.hold_poll_ms);
    let limit = Duration::from_secs(w.config.sip.ringing_timeout_secs + 30);
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let (mut followed, mut rang) = (false, false);
    loop {
        match w.livekit.sip_leg(&req.room, &who).await {
            Ok(leg) if leg.is_unanswered() => {
                if !followed {
                    tracing::warn!(call.id = %req.call_id, leg = ?leg, "following the ring of a call whose worker was lost");
                }
                followed = true;
                rang |= leg == SipLeg::Ringing;
            }
            Ok(leg) => {
                return Settled::Leg {
                    leg,
                    followed,
                    rang,
                };
            }
            Err(e) if !followed => {
                tracing::warn!(call.id = %req.call_id, error = %e, "cannot reconcile with LiveKit yet; backing off");
                return Settled::Backoff;
            }
            Err(e) => {
                tracing::warn!(call.id = %req.call_id, error = %e, "cannot check the ringing call; still following")
            }
        }
        let stopped = |outcome, end_reason, error: &str| Settled::Stopped {
            outcome,
            end_reason,
            error: error.to_owned(),
        };
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = a.keep.lost.cancelled() => return Settled::Abandon,
            () = a.control.hangup.cancelled() => return stopped(
                CallOutcome::Cancelled, EndReason::Cancelled, "hung up by request while ringing"),
            () = w.hangup.cancelled() => return stopped(
                CallOutcome::Failed, EndReason::Shutdown,
                "worker shut down while following a ring taken over from a lost worker; not re-dialed"),
            () = &mut deadline => return stopped(
                CallOutcome::Failed, EndReason::WorkerLost,
                "the ring taken over from a lost worker outlasted the ring timeout; hung up, not re-dialed"),
        }
    }
}

/// The callee is on the line: take the call over and hold it until it ends.
async fn resume(mut a: Attempt<'_>, followed: bool) -> Disposition {
    tracing::warn!(call.id = %a.job.req.call_id, "resuming a call whose worker was lost");
    let seen_at = Timestamp::now();
    let estimate = answer_estimate(&a, followed, seen_at).await;
    let answered = a.state.answered_at.unwrap_or(seen_at);
    if a.state.status != CallStatus::InCall {
        a.state.status = CallStatus::InCall;
        a.state.answered_at = Some(answered);
        a.w.publish_until_done(&a.job.event(EventKind::Answered, a.job.attempt))
            .await;
    }
    a.state.updated_at = Timestamp::now();
    a.w.put_state_until_done(&a.state).await;
    a.control.set_answered();
    let Held::Ended(end_reason) = hold(&mut a, answered).await else {
        return Disposition::Abandon;
    };
    hang_up(&a).await;
    finish::resumed(a, end_reason, answered, estimate)
}

/// The answer is known when it was recorded, or seen here while following the ring (`None`).
/// Otherwise it happened while no worker watched: between the lost worker's last write (and the
/// SIP participant's join, at the dial) and `seen_at`.
async fn answer_estimate(
    a: &Attempt<'_>,
    followed: bool,
    seen_at: Timestamp,
) -> Option<DurationEstimate> {
    if a.state.answered_at.is_some() || followed {
        return None;
    }
    let req = &a.job.req;
    let joined =
        a.w.livekit
            .sip_participant(&req.room, &a.job.callee())
            .await
            .ok()
            .flatten()
            .and_then(|p| Timestamp::from_millisecond(p.joined_at_ms).ok());
    let earliest = joined.map_or(a.state.updated_at, |j| j.max(a.state.updated_at));
    Some(DurationEstimate {
        start_from: "takeover".into(),
        end_from: "observed".into(),
        start_earliest: Some(earliest),
        start_latest: Some(seen_at),
        end_earliest: None,
        end_latest: None,
    })
}

/// The callee is gone (or never answered): hang up and close the call with `worker_lost`.
async fn close_lost(a: Attempt<'_>, followed: bool, rang: bool) -> Disposition {
    hang_up(&a).await;
    let now = Timestamp::now();
    let (outcome, error) = lost_outcome(&a.state, followed, rang);
    tracing::warn!(call.id = %a.job.req.call_id, %error, "closing call as worker_lost");
    finish::worker_lost(a, outcome, error, now)
}

/// What is known of a call whose worker died, by how far it got.
fn lost_outcome(state: &CallState, followed: bool, rang: bool) -> (CallOutcome, String) {
    let (outcome, error) = if state.status == CallStatus::InCall {
        (
            CallOutcome::Answered,
            "worker lost mid-call; the callee had left when another worker checked",
        )
    } else if rang {
        (
            CallOutcome::Failed,
            "worker lost while ringing; the ring ended without an answer (its SIP status was lost with the worker); not re-dialed",
        )
    } else if followed {
        (
            CallOutcome::Failed,
            "worker lost while dialing; the INVITE ended without a ring or an answer (its SIP status was lost with the worker); not re-dialed",
        )
    } else {
        (
            CallOutcome::Failed,
            "worker lost while dialing; the call was not re-dialed",
        )
    };
    (outcome, error.to_owned())
}
