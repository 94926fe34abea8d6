//! A fresh dial: room, optional recording, `CreateSIPParticipant` until answered, then hold.

use std::{collections::HashMap, time::Duration};

use callfleet_domain::{
    CallOutcome, CallState, CallStatus, EventKind,
    summary::{AttemptRecord, Recording, SipStatus},
};
use callfleet_livekit::{Dial, SipLeg};
use jiff::Timestamp;

use super::{finish::finish_failed, hang_up, hold::hold};
use crate::{
    Worker,
    control::Control,
    job::{Disposition, Job},
    keepalive::Keepalive,
    leg::{Held, identity},
    summary::{self, Parts},
};

pub(super) async fn dial(
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
