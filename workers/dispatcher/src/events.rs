//! LiveKit's events, made the call's events.
//!
//! Design note. The ingress verifies LiveKit's webhooks and only puts them on `LIVEKIT_EVENTS`
//! (`livekit.events.<event>`, deduplicated by LiveKit's event id). This consumer (durable
//! `livekit-events`, on the bus's one consume loop) reads them and, for each:
//!
//! 1. finds the call: the room's metadata `call_id` (outbound rooms, `call::dial`), the SIP
//!    leg's `callfleet.call_id` attribute, an identity `agent-<call_id>` / `sip-<call_id>`, or
//!    the `livekit_rooms` bucket (rooms a dispatch rule named, recorded by [`remember_room`]);
//!    a candidate counts only if the call has a state in KV;
//! 2. publishes the call's event on `CALL_EVENTS`: `sip_status` for a SIP participant joining,
//!    leaving or changing attributes (`sip.callStatus`), `room_finished` when LiveKit closes the
//!    room. Event ids derive from LiveKit's, so a redelivery is deduplicated;
//! 3. in telephony mode (`inbound.sessions_from_webhooks`), a SIP caller joining a room no
//!    agent serves (no agent participant, no call known, no LiveKit dispatch for
//!    `livekit.agent_name`) becomes an [`InboundJob`] through [`Dispatcher::enqueue_inbound`]
//!    (deduplicated by call id, so a redelivery is safe), and its room is remembered.
//!
//! Events about rooms with no known call are acknowledged and ignored (debug log). A message
//! that is not a LiveKit event is dead-lettered (`livekit.dlq.<event>`) with its reason.

use std::{sync::Arc, time::Duration};

use callfleet_bus::{Bus, BusError, Delivery, Outcome, Slots, Sources, backoff, consume};
use callfleet_config::Config;
use callfleet_domain::{
    CallEvent, EventKind,
    inbound::{Direction, InboundJob, call_id_for_job},
    subjects as s,
};
use callfleet_livekit::room_agents::{RoomAgents, Served};
use jiff::Timestamp;
use livekit_protocol as proto;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::Dispatcher;

/// Events handled at once, and how long one fetch waits for them.
const SLOTS: usize = 32;
const FETCH_WAIT: Duration = Duration::from_secs(2);

/// livekit-sip's attribute with the SIP call's status.
const SIP_CALL_STATUS: &str = "sip.callStatus";
/// The attribute callfleet's outbound SIP legs carry.
const CALL_ID_ATTRIBUTE: &str = "callfleet.call_id";

/// Record which call a LiveKit room belongs to (a day), so LiveKit's events about a room a
/// dispatch rule named find the call. The dispatcher calls it when it enqueues an inbound job.
pub async fn remember_room(bus: &Bus, room: &str, call_id: &str) -> Result<(), BusError> {
    bus.remember_room(room, call_id).await
}

/// What the handler needs.
#[derive(Clone)]
struct Ctx {
    bus: Bus,
    config: Arc<Config>,
    /// Where telephony-mode sessions go; `None`: LiveKit events become call events only.
    sessions: Option<Dispatcher>,
    agents: Option<RoomAgents>,
}

/// Consume `livekit-events` until `shutdown`. `sessions` starts telephony-mode sessions (when
/// `inbound.sessions_from_webhooks`); without it events only become call events.
pub async fn run(
    bus: Bus,
    config: Arc<Config>,
    sessions: Option<Dispatcher>,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    let agents = config.livekit.credentials().map(|(url, key, secret)| {
        RoomAgents::new(
            url,
            key,
            secret,
            Duration::from_secs(config.livekit.request_timeout_secs),
        )
    });
    let consumer = bus
        .consumer(s::LIVEKIT_EVENTS_STREAM, s::LIVEKIT_EVENTS_CONSUMER)
        .await?;
    let ctx = Ctx {
        bus: bus.clone(),
        config,
        sessions,
        agents,
    };
    let mut sources = Sources::one(consumer, FETCH_WAIT);
    let handler = move |delivery: Delivery| {
        let ctx = ctx.clone();
        async move { handle(&ctx, &delivery).await }
    };
    tracing::info!("reading LiveKit events (livekit-events)");
    let tracker = consume(&bus, &mut sources, &Slots::new(SLOTS), &shutdown, handler).await;
    if tokio::time::timeout(Duration::from_secs(10), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("LiveKit events still being handled at shutdown; they will be redelivered");
    }
    Ok(())
}

/// What a LiveKit event means to callfleet.
#[derive(Debug, Clone, PartialEq)]
enum Meaning {
    /// A SIP participant joined, left, or changed attributes.
    Sip {
        identity: String,
        status: Option<String>,
        left: bool,
        joined: bool,
    },
    RoomFinished,
    /// Nothing callfleet acts on (tracks, egress, non-SIP participants, …).
    Nothing,
}

fn meaning(event: &proto::WebhookEvent) -> Meaning {
    match event.event.as_str() {
        "room_finished" => Meaning::RoomFinished,
        "participant_joined"
        | "participant_left"
        | "participant_connection_aborted"
        | "participant_attributes_changed" => match &event.participant {
            Some(p) if is_sip(p) => Meaning::Sip {
                identity: p.identity.clone(),
                status: p.attributes.get(SIP_CALL_STATUS).cloned(),
                left: event.event != "participant_joined"
                    && event.event != "participant_attributes_changed",
                joined: event.event == "participant_joined",
            },
            _ => Meaning::Nothing,
        },
        _ => Meaning::Nothing,
    }
}

fn is_sip(p: &proto::ParticipantInfo) -> bool {
    p.kind == proto::participant_info::Kind::Sip as i32
        || p.attributes.contains_key(SIP_CALL_STATUS)
}

/// The call ids an event names, most specific first: the room's metadata `call_id`, the
/// participant's `callfleet.call_id` attribute, its identity `agent-<id>` / `sip-<id>`.
fn named_calls(event: &proto::WebhookEvent) -> Vec<String> {
    let mut ids = Vec::new();
    if let Some(room) = &event.room
        && let Ok(Value::Object(meta)) = serde_json::from_str::<Value>(&room.metadata)
        && let Some(id) = meta.get("call_id").and_then(Value::as_str)
    {
        ids.push(id.to_owned());
    }
    if let Some(p) = &event.participant {
        if let Some(id) = p.attributes.get(CALL_ID_ATTRIBUTE) {
            ids.push(id.clone());
        }
        for prefix in ["agent-", "sip-"] {
            if let Some(id) = p.identity.strip_prefix(prefix) {
                ids.push(id.to_owned());
            }
        }
    }
    ids.retain(|id| s::is_token(id));
    ids.dedup();
    ids
}

fn room_name(event: &proto::WebhookEvent) -> &str {
    event.room.as_ref().map_or("", |r| r.name.as_str())
}

async fn handle(ctx: &Ctx, delivery: &Delivery) -> Outcome {
    let name = delivery
        .subject()
        .strip_prefix("livekit.events.")
        .filter(|n| s::is_token(n))
        .unwrap_or("unknown");
    let event: proto::WebhookEvent = match serde_json::from_slice(delivery.payload()) {
        Ok(e) => e,
        Err(e) => {
            let reason = format!("not a LiveKit webhook event: {e}");
            tracing::error!(subject = delivery.subject(), %reason, "unreadable LiveKit event; dead-lettering");
            return Outcome::dead(s::livekit_dlq(name), reason);
        }
    };
    let meaning = meaning(&event);
    if meaning == Meaning::Nothing {
        return Outcome::Ack;
    }
    let call = match find_call(&ctx.bus, &event).await {
        Ok(call) => call,
        Err(e) => {
            tracing::warn!(livekit.event_id = %event.id, error = %e, "cannot look the call up; retrying");
            return Outcome::retry(backoff::TRANSIENT, "call lookup failed");
        }
    };
    match (call, &meaning) {
        (Some((call_id, attempt)), _) => {
            let call_event = call_event(&event, &meaning, &call_id, attempt);
            match ctx.bus.publish_event(&call_event).await {
                Ok(()) => {
                    tracing::debug!(call.id = %call_id, livekit.event = %event.event, kind = call_event.kind.as_str(), "LiveKit event recorded");
                    Outcome::Ack
                }
                Err(e) => {
                    tracing::warn!(call.id = %call_id, error = %e, "cannot publish the call event; retrying");
                    Outcome::retry(backoff::TRANSIENT, "call event not published")
                }
            }
        }
        (None, Meaning::Sip { joined: true, .. }) => start_session(ctx, &event).await,
        (None, _) => {
            tracing::debug!(livekit.event = %event.event, livekit.room = %room_name(&event), "LiveKit event for a room with no known call; ignored");
            Outcome::Ack
        }
    }
}

/// The call an event is about, with its attempt: a named call that has a state, else the
/// call remembered for the room.
async fn find_call(
    bus: &Bus,
    event: &proto::WebhookEvent,
) -> Result<Option<(String, u32)>, BusError> {
    let mut candidates = named_calls(event);
    let room = room_name(event);
    if !room.is_empty()
        && let Some(id) = bus.room_call(room).await?
    {
        candidates.push(id);
    }
    for id in candidates {
        if let Some((state, _)) = bus.call_state(&id).await? {
            return Ok(Some((id, state.attempts)));
        }
    }
    Ok(None)
}

/// The call's event for a LiveKit event; its id derives from LiveKit's, so a redelivered
/// event is a JetStream duplicate.
fn call_event(
    event: &proto::WebhookEvent,
    meaning: &Meaning,
    call_id: &str,
    attempt: u32,
) -> CallEvent {
    let (kind, detail) = match meaning {
        Meaning::Sip {
            identity,
            status,
            left,
            ..
        } => {
            let mut detail = json!({
                "status": status, "participant": identity, "left": left,
                "livekit_event": event.event, "livekit_event_id": event.id,
                "room": room_name(event),
            });
            if let Some(p) = &event.participant
                && *left
                && let Ok(reason) = proto::DisconnectReason::try_from(p.disconnect_reason)
            {
                detail["disconnect_reason"] = reason.as_str_name().into();
            }
            (EventKind::SipStatus, detail)
        }
        _ => {
            let mut detail = json!({
                "room": room_name(event), "livekit_event_id": event.id,
            });
            if let Ok(reason) = proto::RoomEndReason::try_from(event.room_end_reason)
                && event.room_end_reason != 0
            {
                detail["room_end_reason"] = reason.as_str_name().into();
            }
            (EventKind::RoomFinished, detail)
        }
    };
    let mut out = CallEvent::new(call_id, kind, attempt);
    out.event_id = format!("{call_id}.{}.{}", kind.as_str(), event.id);
    if let Ok(at) = Timestamp::from_second(event.created_at)
        && event.created_at > 0
    {
        out.at = at;
    }
    out.detail = Some(detail);
    out
}

/// Telephony mode: a SIP caller in a room no agent serves gets a session.
async fn start_session(ctx: &Ctx, event: &proto::WebhookEvent) -> Outcome {
    let room = room_name(event);
    let (Some(dispatcher), Some(agents)) = (&ctx.sessions, &ctx.agents) else {
        tracing::debug!(livekit.room = %room, "SIP caller in a room with no known call; no sessions from webhooks here");
        return Outcome::Ack;
    };
    if !ctx.config.inbound.sessions_from_webhooks || room.is_empty() {
        return Outcome::Ack;
    }
    match agents.served(room, &ctx.config.livekit.agent_name).await {
        Ok(Served::Nobody) => {}
        Ok(served) => {
            tracing::debug!(livekit.room = %room, ?served, "SIP caller's room is served already");
            return Outcome::Ack;
        }
        Err(e) if e.is_infrastructure() => {
            tracing::warn!(livekit.room = %room, error = %e, "cannot ask LiveKit who serves the room; retrying");
            return Outcome::retry(backoff::PEER_UNREACHABLE, "LiveKit unreachable");
        }
        Err(e) => {
            tracing::warn!(livekit.room = %room, error = %e, "LiveKit refused to say who serves the room; caller not served from this event");
            return Outcome::Ack;
        }
    }
    let Some(job) = inbound_job(event, &ctx.config, Timestamp::now()) else {
        return Outcome::Ack;
    };
    let room = job.room.clone();
    match dispatcher.enqueue_inbound(job).await {
        Ok(done) => {
            tracing::info!(call.id = %done.call_id, livekit.room = %room, duplicate = done.duplicate, "SIP caller in an unserved room: inbound session enqueued");
            match remember_room(&ctx.bus, &room, &done.call_id).await {
                Ok(()) => Outcome::Ack,
                Err(e) => {
                    tracing::warn!(call.id = %done.call_id, error = %e, "cannot remember the room; retrying (the job is deduplicated)");
                    Outcome::retry(backoff::TRANSIENT, "room not remembered")
                }
            }
        }
        Err(e) => {
            tracing::warn!(livekit.room = %room, error = %e, "cannot enqueue the inbound session; retrying");
            Outcome::retry(backoff::TRANSIENT, "inbound session not enqueued")
        }
    }
}

/// The inbound job for a SIP caller who joined `event`'s room: the call id derives from the
/// participant's sid (every delivery of the event maps to one call), the room's metadata
/// when it is a JSON object, and the caller waits at most `inbound.max_wait_secs`.
fn inbound_job(event: &proto::WebhookEvent, config: &Config, now: Timestamp) -> Option<InboundJob> {
    let room = event.room.as_ref()?;
    let caller = event.participant.as_ref()?;
    let metadata = match serde_json::from_str::<Value>(&room.metadata) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let source = if caller.sid.is_empty() {
        format!("{}/{}", room.name, caller.identity)
    } else {
        caller.sid.clone()
    };
    let campaign = metadata
        .get("campaign")
        .and_then(Value::as_str)
        .filter(|c| s::is_token(c))
        .unwrap_or(&config.inbound.campaign)
        .to_owned();
    Some(InboundJob {
        direction: Direction::Inbound,
        call_id: call_id_for_job(&source),
        room: room.name.clone(),
        campaign,
        participant_identity: Some(caller.identity.clone()).filter(|i| !i.is_empty()),
        agent_name: None,
        livekit_job_id: None,
        dispatch_id: None,
        metadata,
        accepted_at: now,
        answer_by: now.checked_add(config.inbound.max_wait()).ok(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn sip(identity: &str, status: &str) -> proto::ParticipantInfo {
        proto::ParticipantInfo {
            sid: "PA_caller1".into(),
            identity: identity.into(),
            kind: proto::participant_info::Kind::Sip as i32,
            attributes: HashMap::from([(SIP_CALL_STATUS.to_owned(), status.to_owned())]),
            ..Default::default()
        }
    }

    fn event(
        name: &str,
        metadata: &str,
        participant: Option<proto::ParticipantInfo>,
    ) -> proto::WebhookEvent {
        proto::WebhookEvent {
            event: name.into(),
            id: "EV_1".into(),
            created_at: 1_700_000_000,
            room: Some(proto::Room {
                name: "call-_+3226010500_xYz".into(),
                metadata: metadata.into(),
                ..Default::default()
            }),
            participant,
            ..Default::default()
        }
    }

    #[test]
    fn sip_participants_and_room_endings_matter() {
        let joined = event("participant_joined", "", Some(sip("sip-c1", "ringing")));
        assert_eq!(
            meaning(&joined),
            Meaning::Sip {
                identity: "sip-c1".into(),
                status: Some("ringing".into()),
                left: false,
                joined: true
            }
        );
        let left = event("participant_left", "", Some(sip("sip-c1", "hangup")));
        assert!(matches!(
            meaning(&left),
            Meaning::Sip {
                left: true,
                joined: false,
                ..
            }
        ));
        let agent = proto::ParticipantInfo {
            identity: "agent-c1".into(),
            ..Default::default()
        };
        assert_eq!(
            meaning(&event("participant_joined", "", Some(agent))),
            Meaning::Nothing
        );
        assert_eq!(
            meaning(&event("room_finished", "", None)),
            Meaning::RoomFinished
        );
        assert_eq!(
            meaning(&event("track_published", "", None)),
            Meaning::Nothing
        );
    }

    #[test]
    fn the_call_is_named_by_metadata_attribute_or_identity() {
        let mut leg = sip("sip-c2", "active");
        leg.attributes.insert(CALL_ID_ATTRIBUTE.into(), "c3".into());
        let e = event(
            "participant_left",
            r#"{"call_id": "c1", "attempt": 2}"#,
            Some(leg),
        );
        assert_eq!(named_calls(&e), ["c1", "c3", "c2"]);
        let e = event(
            "participant_joined",
            "not json",
            Some(sip("sip_+15550100", "active")),
        );
        assert!(
            named_calls(&e).is_empty(),
            "an inbound caller's identity names no call"
        );
        let e = event("room_finished", r#"{"call_id": "a b"}"#, None);
        assert!(named_calls(&e).is_empty(), "not a call id");
    }

    #[test]
    fn call_events_derive_their_ids_from_livekit() {
        let e = event("participant_left", "", Some(sip("sip-c1", "active")));
        let out = call_event(&e, &meaning(&e), "c1", 2);
        assert_eq!(out.kind, EventKind::SipStatus);
        assert_eq!(out.event_id, "c1.sip_status.EV_1");
        assert_eq!(out.attempt, 2);
        assert_eq!(out.at.as_second(), 1_700_000_000);
        let detail = out.detail.expect("detail");
        assert_eq!(detail["status"], "active");
        assert_eq!(detail["left"], true);
        let mut e = event("room_finished", "", None);
        e.room_end_reason = proto::RoomEndReason::RoomEndApiDelete as i32;
        let out = call_event(&e, &Meaning::RoomFinished, "c1", 1);
        assert_eq!(out.event_id, "c1.room_finished.EV_1");
        assert_eq!(
            out.detail.expect("detail")["room_end_reason"],
            "ROOM_END_API_DELETE"
        );
    }

    #[test]
    fn a_sip_caller_becomes_an_inbound_job() {
        let config = callfleet_config::Config::from_toml("").expect("config");
        let now = Timestamp::from_second(1_700_000_000).expect("ts");
        let e = event(
            "participant_joined",
            r#"{"tenant": "acme", "campaign": "sales"}"#,
            Some(sip("sip_+15550100", "active")),
        );
        let job = inbound_job(&e, &config, now).expect("job");
        assert_eq!(job.call_id, call_id_for_job("PA_caller1"));
        assert_eq!(job.room, "call-_+3226010500_xYz");
        assert_eq!(job.campaign, "sales");
        assert_eq!(job.participant_identity.as_deref(), Some("sip_+15550100"));
        assert_eq!(job.metadata.get("tenant"), Some(&json!("acme")));
        assert_eq!(
            job.answer_by.map(|t| t.as_second()),
            Some(1_700_000_000 + config.inbound.max_wait_secs as i64)
        );
        let plain = event(
            "participant_joined",
            "",
            Some(sip("sip_+15550100", "active")),
        );
        assert_eq!(
            inbound_job(&plain, &config, now).expect("job").campaign,
            config.inbound.campaign
        );
    }
}
