//! An inbound call: LiveKit put a caller in a room and dispatched callfleet to it. The worker
//! joins that room (it never dials), finds the caller's SIP participant, answers with the
//! greeting and runs the same voice session as an outbound call; hanging up removes the
//! caller's participant (livekit-sip sends the BYE), never the room, which a dispatch rule may
//! share between callers.
//!
//! The request is completed here from the caller's leg: `destination` is the number they
//! dialed, `caller_number` theirs, `inbound` the leg (trunk, SIP Call-ID, SIP headers), and the
//! session options are the called number's (`[inbound.numbers]`, else `[inbound.default]`)
//! with the dispatch's metadata over them, key by key.

use std::time::Duration;

use callfleet_domain::{
    CallOutcome, CallRequest, CallState, EndReason, PhoneNumber,
    inbound::{InboundJob, InboundLeg, session_keys},
    request::session_options_of,
    summary::AttemptRecord,
};
use callfleet_livekit::SipCaller;
use jiff::Timestamp;

use super::{
    attempt::{Attempt, hang_up},
    dial, finish, hold,
};
use crate::{
    Worker,
    control::Control,
    job::{Disposition, Job},
    keepalive::Keepalive,
    leg::Held,
};

/// How long a worker looks for the caller's SIP participant in the room (livekit-sip joins it
/// as it creates the room, so it is there at once unless the caller already hung up).
const FIND_CALLER: Duration = Duration::from_secs(5);

/// Serve an inbound caller: find them, converse, hang up, summarise.
pub(super) async fn run(
    w: &Worker,
    job: &Job,
    inbound: &InboundJob,
    state: CallState,
    in_flight: bool,
    keep: &Keepalive,
    control: &mut Control,
) -> Disposition {
    let caller = match find_caller(w, inbound).await {
        Ok(Some(caller)) => caller,
        Ok(None) => {
            let a = Attempt::new(w, job, state, keep, control);
            return if in_flight {
                finish::worker_lost(
                    a,
                    CallOutcome::Answered,
                    "the worker serving the caller was lost and the caller has hung up".into(),
                    Timestamp::now(),
                )
            } else {
                abandoned(a, inbound)
            };
        }
        Err(e) => {
            tracing::warn!(call.id = %job.req.call_id, error = %e, "cannot list the room's participants; backing off");
            return Disposition::Backoff(callfleet_bus::backoff::PEER_UNREACHABLE);
        }
    };
    let leg = InboundLeg::from_attributes(&caller.identity, &caller.attributes);
    let (req, options_error) = request(w, &job.req, inbound, leg);
    let job = Job {
        req,
        attempt: job.attempt,
        infra_retries: job.infra_retries,
        delivered: job.delivered,
        generation: job.generation,
        campaign_job: job.campaign_job,
        timezone: job.timezone.clone(),
        inbound: None,
    };
    if let Some(error) = &options_error {
        tracing::warn!(call.id = %job.req.call_id, %error, "the dispatch's session options are invalid; the called number's apply");
    }
    // Without a voice session nobody would ever answer (livekit-sip rings until a track is
    // published in the room): the caller hears the busy message instead.
    let voice = match crate::voice::prepare(w, &job.req) {
        Ok(Some(voice)) => Ok(voice),
        Ok(None) => Err("agent.voice_session is off".to_owned()),
        Err(reason) => Err(reason),
    };
    let voice = match voice {
        Ok(voice) => voice,
        Err(why) => {
            tracing::error!(call.id = %job.req.call_id, %why, "no voice session for an inbound caller: the busy message instead");
            return match w.busy_under_lease(inbound).await {
                Ok(_) => Disposition::Skip,
                Err(e) => {
                    tracing::error!(call.id = %job.req.call_id, error = %e, "busy message failed; trying again");
                    Disposition::Backoff(callfleet_bus::backoff::PEER_UNREACHABLE)
                }
            };
        }
    };
    converse(
        Attempt::new(w, &job, state, keep, control),
        voice,
        options_error,
    )
    .await
}

/// The caller's SIP participant: the one the job names, else the room's first SIP caller.
async fn find_caller(
    w: &Worker,
    inbound: &InboundJob,
) -> Result<Option<SipCaller>, callfleet_livekit::LiveKitError> {
    let deadline = tokio::time::Instant::now() + FIND_CALLER;
    loop {
        let callers = w.livekit.sip_callers(&inbound.room).await?;
        let found = match &inbound.participant_identity {
            Some(who) => callers.into_iter().find(|c| &c.identity == who),
            None => callers.into_iter().next(),
        };
        if found.is_some() || tokio::time::Instant::now() >= deadline {
            return Ok(found);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The call request of an inbound call, from its caller's leg. Invalid session options in the
/// dispatch's metadata are reported (in the summary's `error`) and the called number's used,
/// so the caller is still answered.
fn request(
    w: &Worker,
    provisional: &CallRequest,
    inbound: &InboundJob,
    leg: InboundLeg,
) -> (CallRequest, Option<String>) {
    let configured = w.config.inbound.options_for(leg.called_number.as_deref());
    let mut keys = configured.clone();
    let mut problem = None;
    match session_keys(&inbound.metadata) {
        Ok(overrides) => keys.extend(overrides),
        Err(errors) => {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            problem = Some(format!("dispatch metadata ignored: {}", list.join("; ")));
        }
    }
    // Config was validated at start; the merge of two valid sets is valid, but never trust it.
    let mut session_options = session_options_of(&keys)
        .or_else(|_| session_options_of(&configured))
        .unwrap_or_default();
    // A caller is a person who called: no answering-machine detection.
    session_options.answering_machine_detection = Some(false);
    let mut metadata = provisional.metadata.clone();
    for (key, value) in [
        ("direction", Some("inbound".to_owned())),
        ("caller_number", leg.caller_number.clone()),
        ("called_number", leg.called_number.clone()),
        ("trunk_id", leg.trunk_id.clone()),
        ("livekit_job_id", inbound.livekit_job_id.clone()),
    ] {
        if let Some(value) = value {
            metadata.entry(key).or_insert(value.into());
        }
    }
    let req = CallRequest {
        destination: PhoneNumber::as_reported(leg.called_number.as_deref().unwrap_or_default()),
        caller_number: leg.caller_number.as_deref().map(PhoneNumber::as_reported),
        session_options,
        metadata,
        inbound: Some(leg),
        ..provisional.clone()
    };
    (req, problem)
}

/// Answer the caller: the call is `in_call` from now, the agent greets and converses.
async fn converse(
    mut a: Attempt<'_>,
    voice: callfleet_voice::SessionConfig,
    options_error: Option<String>,
) -> Disposition {
    // livekit-sip answers the caller's INVITE once the agent's track is published: the
    // session's start is the call's answer.
    let answered = Timestamp::now();
    let joined = crate::voice::join(a.w, a.job).await;
    dial::mark_answered(&mut a, answered).await;
    let (held, session) = hold::hold_or_converse(&mut a, Some(voice), Some(joined), answered).await;
    let Held::Ended(end_reason) = held else {
        return Disposition::Abandon;
    };
    hang_up(&a).await;
    super::record::finish(&mut a).await;
    let mut disposition = finish::ended(a, end_reason, answered, session);
    if let (Some(error), Disposition::Final(summary)) = (options_error, &mut disposition) {
        summary.error.get_or_insert(error);
    }
    disposition
}

/// The caller hung up before a worker took the call.
fn abandoned(a: Attempt<'_>, inbound: &InboundJob) -> Disposition {
    let now = Timestamp::now();
    let record = AttemptRecord {
        attempt: a.job.attempt,
        outcome: CallOutcome::Abandoned,
        started_at: inbound.accepted_at,
        ended_at: now,
        sip: None,
        error: Some("the caller hung up before an agent took the call".into()),
    };
    tracing::info!(call.id = %a.job.req.call_id, "the caller left before an agent took the call");
    finish::closed(a, record, EndReason::CalleeHangup)
}
