//! One attempt of one call on LiveKit: dial, hold, hang up; or reconcile a call whose worker died.

use std::{collections::HashMap, time::Duration};

use callfleet_domain::{
    CallOutcome, CallState, CallStatus, EndReason, EventKind,
    control::ControlReply,
    outcome,
    summary::{AttemptRecord, DurationEstimate, Recording, SipStatus},
};
use callfleet_livekit::{Dial, SipLeg};
use jiff::Timestamp;

use crate::{
    Worker,
    control::Control,
    job::{Disposition, Job},
    keepalive::Keepalive,
    leg_watch::LegWatch,
    retry::{self, Decision},
    summary::{self, Parts},
};

/// How a held call ended, or that it is no longer ours.
pub(crate) enum Held {
    Ended(EndReason),
    Lost,
}

pub(crate) fn identity(call_id: &str) -> String {
    format!("sip-{call_id}")
}

/// Run one attempt: a fresh dial, or the reconciliation of an attempt whose worker died.
pub async fn run(
    w: &Worker,
    job: &Job,
    state: CallState,
    in_flight: bool,
    keep: &Keepalive,
    control: &mut Control,
) -> Disposition {
    if in_flight {
        reconcile(w, job, state, keep, control).await
    } else {
        dial(w, job, state, keep, control).await
    }
}

async fn dial(
    w: &Worker,
    job: &Job,
    mut state: CallState,
    keep: &Keepalive,
    control: &mut Control,
) -> Disposition {
    let req = &job.req;
    let cfg = &w.config;
    let session_start = Timestamp::now();
    state.status = CallStatus::Dialing;
    state.attempts = job.attempt;
    state.worker_id = Some(w.worker_id.to_string());
    state.next_attempt_at = None;
    state.answered_at = None;
    state.updated_at = session_start;
    w.put_state_until_done(&state).await;
    let dialing = job.event(EventKind::Dialing, job.attempt);
    w.publish_until_done(&dialing).await;
    if job.campaign_job
        && let Err(e) = w
            .bus
            .tally(
                &req.campaign,
                "dialed",
                &format!("tally.{}", dialing.event_id),
            )
            .await
    {
        tracing::warn!(call.id = %req.call_id, error = %e, "dial not tallied");
    }

    let fail = |outcome, sip, error: String, recording| {
        finish_failed(
            w,
            job,
            &state,
            session_start,
            outcome,
            sip,
            error,
            recording,
        )
    };
    let Some(trunk_id) = cfg.sip.trunk_id.clone() else {
        let error = "sip.trunk_id (SIP_TRUNK_ID) is not configured".to_owned();
        return fail(
            CallOutcome::TrunkRejected,
            None,
            error,
            Recording::default(),
        );
    };

    // Providers are resolved before anything rings.
    let voice = match crate::voice::prepare(w, req) {
        Ok(v) => v,
        Err(reason) => {
            return fail(
                CallOutcome::InvalidRequest,
                None,
                reason,
                Recording::default(),
            );
        }
    };
    let room_meta = serde_json::json!({
        "call_id": req.call_id, "campaign": req.campaign, "attempt": job.attempt,
        "account_code": req.account_code, "metadata": req.metadata,
    });
    let created = w
        .livekit
        .create_room(
            &req.room,
            room_meta.to_string(),
            cfg.livekit.room_empty_timeout_secs,
            cfg.livekit.room_departure_timeout_secs,
        )
        .await;
    if let Err(e) = created {
        let outcome = if e.is_infrastructure() {
            CallOutcome::Infrastructure
        } else {
            CallOutcome::Failed
        };
        return fail(outcome, None, e.to_string(), Recording::default());
    }

    let mut recording = Recording {
        requested: req.session_options.record_call,
        ..Default::default()
    };
    if recording.requested {
        let path = cfg
            .livekit
            .recording_filepath
            .replace("{room}", &req.room)
            .replace("{call_id}", &req.call_id);
        match w.livekit.start_recording(&req.room, &path).await {
            Ok(id) => {
                recording.egress_id = Some(id);
                recording.location = Some(path);
            }
            Err(e) => {
                tracing::warn!(call.id = %req.call_id, error = %e, "recording failed; the call goes on");
                recording.error = Some(e.to_string());
            }
        }
    }

    let spec = dial_spec(w, job, trunk_id);
    tracing::info!(call.id = %req.call_id, to = %mask(w, &req.destination), "dialing");
    let dialed = tokio::select! {
        r = w.livekit.dial(spec) => Some(r),
        () = w.hangup.cancelled() => None,
        () = control.hangup.cancelled() => {
            hang_up(w, &req.room, &recording).await;
            let error = "hung up by request while ringing".to_owned();
            return fail(CallOutcome::Cancelled, None, error, recording);
        }
        () = keep.lost.cancelled() => return Disposition::Abandon,
        () = watch_ringing(w, job, state.clone()) => None,
    };
    let answered = match dialed {
        Some(Ok(_)) => Timestamp::now(),
        Some(Err(failure)) => {
            hang_up(w, &req.room, &recording).await;
            return fail(
                failure.outcome,
                failure.sip.clone(),
                failure.to_string(),
                recording,
            );
        }
        None => {
            // Shutting down while it rings: cancel the INVITE; another worker dials again
            // without spending an attempt.
            hang_up(w, &req.room, &recording).await;
            let error = "worker shut down while the call was ringing".to_owned();
            return fail(CallOutcome::Infrastructure, None, error, recording);
        }
    };

    tracing::info!(call.id = %req.call_id, "answered");
    control.set_answered();
    state.status = CallStatus::InCall;
    state.answered_at = Some(answered);
    state.updated_at = answered;
    w.put_state_until_done(&state).await;
    w.publish_until_done(&job.event(EventKind::Answered, job.attempt))
        .await;

    let (held, session) = match voice {
        Some(cfg) => {
            let (held, report) = crate::voice::converse(w, job, cfg, answered, keep, control).await;
            (held, Some(report))
        }
        None => (
            hold(w, job, &mut state, answered, keep, control).await,
            None,
        ),
    };
    let end_reason = match held {
        Held::Ended(reason) => reason,
        Held::Lost => return Disposition::Abandon,
    };
    hang_up(w, &req.room, &recording).await;
    let call_end = Timestamp::now();
    tracing::info!(call.id = %req.call_id, reason = ?end_reason, "call ended");
    let mut attempts = state.history.clone();
    attempts.push(AttemptRecord {
        attempt: job.attempt,
        outcome: CallOutcome::Answered,
        started_at: session_start,
        ended_at: call_end,
        sip: Some(SipStatus {
            code: Some(200),
            reason: Some("OK".into()),
        }),
        error: None,
    });
    let parts = Parts {
        attempt: job.attempt,
        attempts,
        outcome: CallOutcome::Answered,
        end_reason,
        sip: Some(SipStatus {
            code: Some(200),
            reason: Some("OK".into()),
        }),
        session_start,
        call_start: Some(answered),
        call_end: Some(call_end),
        recording,
        error: session.as_ref().and_then(|r| r.error.clone()),
        estimate: None,
    };
    let mut summary = summary::build(w, req, parts);
    if let Some(report) = session {
        summary.usage = report.usage;
        summary.turns = report.turns;
        summary.transcript = report.transcript;
        summary.session_close_reason = report.close_reason;
    }
    Disposition::Final(Box::new(summary))
}

/// While `CreateSIPParticipant` waits for the answer, watch the SIP leg's `sip.callStatus`;
/// once it rings, record `ringing` and publish the event. Never completes.
///
/// `ringing` is livekit-sip's word: it sets it on the first provisional response 180–199 (v1.8.0
/// `outboundCall.sipSignal`). Before that the leg is `dialing` (the INVITE is out, maybe
/// unanswered, maybe to nobody), which is not reported as ringing.
async fn watch_ringing(w: &Worker, job: &Job, mut state: CallState) {
    let req = &job.req;
    let who = identity(&req.call_id);
    let poll = Duration::from_millis(w.config.agent.hold_poll_ms);
    let limit = w.config.sip.ringing_timeout_secs * 1000 / poll.as_millis().max(1) as u64 + 10;
    for _ in 0..limit {
        tokio::time::sleep(poll).await;
        if let Ok(SipLeg::Ringing) = w.livekit.sip_leg(&req.room, &who).await {
            state.status = CallStatus::Ringing;
            state.updated_at = Timestamp::now();
            w.put_state_until_done(&state).await;
            let mut event = job.event(EventKind::Ringing, job.attempt);
            event.detail = Some(ringing_detail());
            w.publish_until_done(&event).await;
            break;
        }
    }
    std::future::pending::<()>().await;
}

/// Where a `ringing` event comes from.
fn ringing_detail() -> serde_json::Value {
    serde_json::json!({
        "source": "livekit-sip sip.callStatus",
        "sip_call_status": "ringing",
        "meaning": "a provisional response 180-199 reached livekit-sip",
    })
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
async fn reconcile(
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

/// Hold an answered call until the callee leaves, `max_call_duration`, an operator's hang-up,
/// or shutdown; carry out transfers meanwhile. Every lease_ttl/3 the call state records that
/// the callee is still there (`callee_seen_at`), the evidence a worker taking the call over
/// has if this one is lost. The voice session plugs in here.
async fn hold(
    w: &Worker,
    job: &Job,
    state: &mut CallState,
    answered: Timestamp,
    keep: &Keepalive,
    control: &mut Control,
) -> Held {
    let req = &job.req;
    let max = Duration::from_secs(w.config.agent.max_call_duration_secs);
    let elapsed = Timestamp::now().duration_since(answered).unsigned_abs();
    let deadline = tokio::time::sleep(max.saturating_sub(elapsed));
    tokio::pin!(deadline);
    let poll = Duration::from_millis(w.config.agent.hold_poll_ms);
    let who = identity(&req.call_id);
    let mut watch = LegWatch::start(w, &req.room, &req.call_id, &who);
    let heartbeat = w.config.agent.lease_ttl() / 3;
    let mut last_beat = tokio::time::Instant::now();
    let mut transferred = false;
    let operator_hangup = control.hangup.clone();
    loop {
        tokio::select! {
            () = &mut deadline => return Held::Ended(EndReason::MaxDuration),
            () = w.hangup.cancelled() => return Held::Ended(EndReason::Shutdown),
            () = operator_hangup.cancelled() => return Held::Ended(EndReason::Cancelled),
            () = keep.lost.cancelled() => return Held::Lost,
            t = control.next_transfer() => {
                let reply = transfer(w, job, &t.to).await;
                transferred |= reply.ok;
                t.answer(reply);
            }
            () = tokio::time::sleep(poll) => match w.livekit.sip_leg(&req.room, &who).await {
                Ok(SipLeg::Active | SipLeg::Ringing | SipLeg::Dialing) => {
                    if last_beat.elapsed() >= heartbeat {
                        last_beat = tokio::time::Instant::now();
                        state.callee_seen_at = Some(Timestamp::now());
                        if let Err(e) = w.bus.put_call_state(state).await {
                            tracing::debug!(call.id = %req.call_id, error = %e, "callee_seen_at not recorded");
                        }
                    }
                }
                Ok(SipLeg::Absent) => {
                    // How it left: `hangup` (a BYE) or still `active` (dropped: no media).
                    let status = watch.final_status(Duration::from_secs(2)).await;
                    let reason = outcome::leg_left(status.as_deref(), transferred);
                    tracing::info!(call.id = %req.call_id, sip.call_status = status.as_deref().unwrap_or("(not seen)"), reason = ?reason, "the SIP leg left");
                    return Held::Ended(reason);
                }
                Err(e) => tracing::warn!(call.id = %req.call_id, error = %e, "cannot check the callee; still holding"),
            },
        }
    }
}

/// `TransferSIPParticipant` (SIP REFER): the callee is handed to `to`; LiveKit then drops the
/// SIP leg. Publishes `transferred` on success. The voice session's transfer tool calls this too.
pub(crate) async fn transfer(w: &Worker, job: &Job, to: &str) -> ControlReply {
    let req = &job.req;
    let ring = Duration::from_secs(w.config.sip.ringing_timeout_secs);
    tracing::info!(call.id = %req.call_id, "transferring");
    match w
        .livekit
        .transfer(&req.room, &identity(&req.call_id), to, ring)
        .await
    {
        Ok(()) => {
            let mut event = job.event(EventKind::Transferred, job.attempt);
            event.detail = Some(serde_json::json!({ "to": to }));
            w.publish_until_done(&event).await;
            ControlReply::ok(format!("transferred to {to}"))
        }
        Err(failure) => {
            tracing::warn!(call.id = %req.call_id, error = %failure, "transfer failed");
            ControlReply::err(format!("transfer failed: {failure}"))
        }
    }
}

/// Delete the room (hangs up the SIP leg) and stop the recording.
async fn hang_up(w: &Worker, room: &str, recording: &Recording) {
    if let Some(id) = &recording.egress_id
        && let Err(e) = w.livekit.stop_recording(id).await
    {
        tracing::warn!(egress.id = %id, error = %e, "cannot stop the recording");
    }
    if let Err(e) = w.livekit.delete_room(room).await {
        tracing::warn!(room, error = %e, "cannot delete the room; LiveKit closes it when empty");
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site shape, kept flat for readability"
)]
fn finish_failed(
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

fn dial_spec(w: &Worker, job: &Job, trunk_id: String) -> Dial {
    let req = &job.req;
    let sip = &w.config.sip;
    // The From number: the request's, else the configured default, else an identity. Never the
    // destination (carriers reject that, and it would be a lie).
    let from_number = req
        .caller_number
        .as_ref()
        .map(ToString::to_string)
        .or_else(|| sip.from_number.clone())
        .or_else(|| req.caller_id.clone())
        .or_else(|| sip.from_identity.clone());
    let display_name = req.caller_name.clone().or_else(|| sip.display_name.clone());
    let mut attributes = HashMap::from([
        ("callfleet.call_id".to_owned(), req.call_id.clone()),
        ("callfleet.campaign".to_owned(), req.campaign.clone()),
        ("callfleet.attempt".to_owned(), job.attempt.to_string()),
        (
            "callfleet.account_code".to_owned(),
            req.account_code.clone(),
        ),
    ]);
    if let Some(t) = &req.transfer_target {
        attributes.insert("callfleet.transfer_target".into(), t.clone());
    }
    if let Some(c) = &req.caller_id {
        attributes.insert("callfleet.caller_id".into(), c.clone());
    }
    Dial {
        trunk_id,
        to: req.destination.to_string(),
        room: req.room.clone(),
        identity: identity(&req.call_id),
        name: req.caller_name.clone().unwrap_or_else(|| "callee".into()),
        from_number,
        display_name,
        headers: HashMap::from([(sip.account_code_header.clone(), req.account_code.clone())]),
        attributes,
        metadata: serde_json::Value::Object(req.metadata.clone()).to_string(),
        ringing_timeout: Duration::from_secs(sip.ringing_timeout_secs),
        max_call_duration: Duration::from_secs(w.config.agent.max_call_duration_secs),
    }
}

fn mask(w: &Worker, number: &callfleet_domain::PhoneNumber) -> String {
    if w.config.phone.mask_in_logs {
        number.masked()
    } else {
        number.to_string()
    }
}
