//! A fresh dial: announce it, prepare everything before the phone rings (trunk, voice
//! providers, room, recording), ring with `CreateSIPParticipant` until answered, record the
//! answer.

use std::{collections::HashMap, time::Duration};

use callfleet_domain::{CallOutcome, CallState, CallStatus, EventKind};
use callfleet_livekit::{Dial, SipLeg};
use callfleet_voice::SessionConfig;
use jiff::Timestamp;

use super::{attempt::Attempt, finish::Failure};
use crate::{Worker, job::Job, leg::identity};

/// What ringing needs once the room is up.
pub(super) struct Ready {
    pub trunk_id: String,
    /// The voice session's configuration, `None` when voice sessions are off.
    pub voice: Option<SessionConfig>,
}

/// How ringing ended.
pub(super) enum Rang {
    Answered(Timestamp),
    /// Not answered, hung up by request, or shutdown while ringing; the room is still up.
    Failed(Failure),
    /// The lease went to another worker.
    Lost,
}

/// Record that the attempt dials: the call state, the `dialing` event, the campaign's tally.
pub(super) async fn announce(a: &mut Attempt<'_>) {
    let (w, job) = (a.w, a.job);
    let state = &mut a.state;
    state.status = CallStatus::Dialing;
    state.attempts = job.attempt;
    state.worker_id = Some(w.worker_id.to_string());
    state.next_attempt_at = None;
    state.answered_at = None;
    state.updated_at = a.session_start;
    w.put_state_until_done(state).await;
    let dialing = job.event(EventKind::Dialing, job.attempt);
    w.publish_until_done(&dialing).await;
    if job.campaign_job
        && let Err(e) = w
            .bus
            .tally(
                &job.req.campaign,
                "dialed",
                &format!("tally.{}", dialing.event_id),
            )
            .await
    {
        tracing::warn!(call.id = %job.req.call_id, error = %e, "dial not tallied");
    }
}

/// Everything before anything rings: a trunk, the voice providers, the room, the recording.
pub(super) async fn prepare(a: &mut Attempt<'_>) -> Result<Ready, Failure> {
    let Some(trunk_id) = a.w.config.sip.trunk_id.clone() else {
        return Err(Failure::new(
            CallOutcome::TrunkRejected,
            "sip.trunk_id (SIP_TRUNK_ID) is not configured",
        ));
    };
    let voice = crate::voice::prepare(a.w, &a.job.req)
        .map_err(|reason| Failure::new(CallOutcome::InvalidRequest, reason))?;
    create_room(a).await?;
    super::record::request(a).await;
    Ok(Ready { trunk_id, voice })
}

/// Create the call's room, its metadata naming the call.
async fn create_room(a: &Attempt<'_>) -> Result<(), Failure> {
    let (w, req) = (a.w, &a.job.req);
    let cfg = &w.config.livekit;
    let room_meta = serde_json::json!({
        "call_id": req.call_id, "campaign": req.campaign, "attempt": a.job.attempt,
        "account_code": req.account_code, "metadata": req.metadata,
    });
    let created = w
        .livekit
        .create_room(
            &req.room,
            room_meta.to_string(),
            cfg.room_empty_timeout_secs,
            cfg.room_departure_timeout_secs,
        )
        .await;
    created.map_err(|e| {
        let outcome = if e.is_infrastructure() {
            CallOutcome::Infrastructure
        } else {
            CallOutcome::Failed
        };
        Failure::new(outcome, e.to_string())
    })
}

/// `CreateSIPParticipant` until the callee answers or the dial fails, publishing `ringing`
/// meanwhile; an operator's hang-up, shutdown or the lease's loss stop it.
pub(super) async fn ring(a: &Attempt<'_>, trunk_id: String) -> Rang {
    let (w, job) = (a.w, a.job);
    let req = &job.req;
    let spec = dial_spec(w, job, trunk_id);
    tracing::info!(call.id = %req.call_id, to = %mask(w, &req.destination), "dialing");
    // Shutting down while it rings: cancel the INVITE; another worker dials again without
    // spending an attempt.
    let shut_down = || {
        Rang::Failed(Failure::new(
            CallOutcome::Infrastructure,
            "worker shut down while the call was ringing",
        ))
    };
    tokio::select! {
        r = w.livekit.dial(spec) => match r {
            Ok(_) => Rang::Answered(Timestamp::now()),
            Err(failure) => Rang::Failed(failure.into()),
        },
        () = w.hangup.cancelled() => shut_down(),
        () = a.control.hangup.cancelled() => Rang::Failed(Failure::new(
            CallOutcome::Cancelled,
            "hung up by request while ringing",
        )),
        () = a.keep.lost.cancelled() => Rang::Lost,
        () = watch_ringing(w, job, a.state.clone()) => shut_down(),
    }
}

/// Record the answer: control requests may transfer now, the state says `in_call`, the
/// `answered` event goes out.
pub(super) async fn mark_answered(a: &mut Attempt<'_>, answered: Timestamp) {
    let (w, job) = (a.w, a.job);
    tracing::info!(call.id = %job.req.call_id, "answered");
    a.control.set_answered();
    a.state.status = CallStatus::InCall;
    a.state.answered_at = Some(answered);
    a.state.updated_at = answered;
    w.put_state_until_done(&a.state).await;
    w.publish_until_done(&job.event(EventKind::Answered, job.attempt))
        .await;
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
        dtmf: req.session_options.dtmf_on_answer.clone(),
    }
}

fn mask(w: &Worker, number: &callfleet_domain::PhoneNumber) -> String {
    if w.config.phone.mask_in_logs {
        number.masked()
    } else {
        number.to_string()
    }
}
