//! An attempt whose worker died mid-dial or mid-call: follow, resume or close it, never re-dial.

use std::time::Duration;

use callfleet_domain::{
    CallOutcome, CallState, CallStatus, EndReason, EventKind,
    summary::{AttemptRecord, DurationEstimate, Recording},
};
use callfleet_livekit::SipLeg;
use jiff::Timestamp;

use super::{hang_up, hold::hold};
use crate::{
    Worker,
    control::Control,
    job::{Disposition, Job},
    keepalive::Keepalive,
    leg::{Held, identity},
    summary::{self, Parts},
};

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
async fn settle_leg(w: &Worker, job: &Job, keep: &Keepalive, control: &Control) -> Settled {
    let req = &job.req;
    let who = identity(&req.call_id);
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
            () = keep.lost.cancelled() => return Settled::Abandon,
            () = control.hangup.cancelled() => return stopped(
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

/// The job came back while its state says a dial was under way: the worker holding it died.
/// Ask LiveKit where the SIP leg stands: follow a ring until it is answered or gone, resume
/// holding an answered call, close with `worker_lost` if the callee is gone. Never dial again.
pub(super) async fn reconcile(
    w: &Worker,
    job: &Job,
    mut state: CallState,
    keep: &Keepalive,
    control: &mut Control,
) -> Disposition {
    let req = &job.req;
    let session_start = Timestamp::now();
    let recording = Recording {
        requested: req.session_options.record_call,
        ..Default::default()
    };
    // The call is ours now: `GET /calls/{id}` names this worker, not the lost one.
    state.worker_id = Some(w.worker_id.to_string());
    w.put_state_until_done(&state).await;
    let (leg, followed, rang) = match settle_leg(w, job, keep, control).await {
        Settled::Leg {
            leg,
            followed,
            rang,
        } => (leg, followed, rang),
        Settled::Backoff => return Disposition::Backoff(Duration::from_secs(5)),
        Settled::Abandon => return Disposition::Abandon,
        Settled::Stopped {
            outcome,
            end_reason,
            error,
        } => {
            hang_up(w, &req.room, &recording).await;
            tracing::warn!(call.id = %req.call_id, %error, "closing a call taken over while ringing");
            let mut attempts = state.history.clone();
            attempts.push(AttemptRecord {
                attempt: job.attempt,
                outcome,
                started_at: state.updated_at,
                ended_at: Timestamp::now(),
                sip: None,
                error: Some(error.clone()),
            });
            let parts = Parts {
                attempt: job.attempt,
                attempts,
                outcome,
                end_reason,
                sip: None,
                session_start,
                call_start: None,
                call_end: None,
                recording,
                error: Some(error),
                estimate: None,
            };
            return Disposition::Final(Box::new(summary::build(w, req, parts)));
        }
    };
    if leg == SipLeg::Active {
        tracing::warn!(call.id = %req.call_id, "resuming a call whose worker was lost");
        let seen_at = Timestamp::now();
        // The answer is known when it was recorded, or seen here while following the ring.
        // Otherwise it happened while no worker watched: between the lost worker's last write
        // (and the SIP participant's join, at the dial) and now.
        let estimate = match state.answered_at {
            Some(_) => None,
            None if followed => None,
            None => {
                let joined = w
                    .livekit
                    .sip_participant(&req.room, &identity(&req.call_id))
                    .await
                    .ok()
                    .flatten()
                    .and_then(|p| Timestamp::from_millisecond(p.joined_at_ms).ok());
                let earliest = joined.map_or(state.updated_at, |j| j.max(state.updated_at));
                Some(DurationEstimate {
                    start_from: "takeover".into(),
                    end_from: "observed".into(),
                    start_earliest: Some(earliest),
                    start_latest: Some(seen_at),
                    end_earliest: None,
                    end_latest: None,
                })
            }
        };
        let answered = state.answered_at.unwrap_or(seen_at);
        if state.status != CallStatus::InCall {
            state.status = CallStatus::InCall;
            state.answered_at = Some(answered);
            w.publish_until_done(&job.event(EventKind::Answered, job.attempt))
                .await;
        }
        state.updated_at = Timestamp::now();
        w.put_state_until_done(&state).await;
        control.set_answered();
        let end_reason = match hold(w, job, &mut state, answered, keep, control).await {
            Held::Ended(reason) => reason,
            Held::Lost => return Disposition::Abandon,
        };
        hang_up(w, &req.room, &recording).await;
        let call_end = Timestamp::now();
        let mut attempts = state.history.clone();
        attempts.push(AttemptRecord {
            attempt: job.attempt,
            outcome: CallOutcome::Answered,
            started_at: answered,
            ended_at: call_end,
            sip: None,
            error: Some("worker lost mid-call; resumed by another worker".into()),
        });
        let parts = Parts {
            attempt: job.attempt,
            attempts,
            outcome: CallOutcome::Answered,
            end_reason,
            sip: None,
            session_start,
            call_start: Some(answered),
            call_end: Some(call_end),
            recording,
            error: None,
            estimate,
        };
        return Disposition::Final(Box::new(summary::build(w, req, parts)));
    }
    hang_up(w, &req.room, &recording).await;
    let now = Timestamp::now();
    let (outcome, error) = if state.status == CallStatus::InCall {
        (
            CallOutcome::Answered,
            "worker lost mid-call; the callee had left when another worker checked".to_owned(),
        )
    } else if rang {
        (
            CallOutcome::Failed,
            "worker lost while ringing; the ring ended without an answer (its SIP status was lost with the worker); not re-dialed".to_owned(),
        )
    } else if followed {
        (
            CallOutcome::Failed,
            "worker lost while dialing; the INVITE ended without a ring or an answer (its SIP status was lost with the worker); not re-dialed".to_owned(),
        )
    } else {
        (
            CallOutcome::Failed,
            "worker lost while dialing; the call was not re-dialed".to_owned(),
        )
    };
    tracing::warn!(call.id = %req.call_id, %error, "closing call as worker_lost");
    let (call_end, estimate) = match state.answered_at {
        Some(answered) => {
            let (end, estimate) = estimate_end(answered, state.callee_seen_at, now);
            (Some(end), Some(estimate))
        }
        None => (None, None),
    };
    let mut attempts = state.history.clone();
    attempts.push(AttemptRecord {
        attempt: job.attempt,
        outcome,
        started_at: state.answered_at.unwrap_or(state.updated_at),
        ended_at: call_end.unwrap_or(now),
        sip: None,
        error: Some(error.clone()),
    });
    let parts = Parts {
        attempt: job.attempt,
        attempts,
        outcome,
        end_reason: EndReason::WorkerLost,
        sip: None,
        session_start,
        call_start: state.answered_at,
        call_end,
        recording,
        error: Some(error),
        estimate,
    };
    Disposition::Final(Box::new(summary::build(w, req, parts)))
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
