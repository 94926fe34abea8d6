//! The inbound caller rig on the real telephony rig (issue 15's test bed): SIPp calls IN through
//! livekit-sip (`callfleet_tests::Caller`, `tests/sipp/caller.xml`) to a number of an inbound
//! trunk, a dispatch rule puts each caller in a room, and the caller's RTP tap records what each
//! caller heard. No agent runs here: the test itself joins the rooms with `callfleet-media`
//! transports.
//!
//! What these tests pin down about livekit-sip v1.8.0 (the inbound design depends on it): it
//! puts the caller in the room at once but answers only when it has subscribed to an audio
//! track published there (or a second SIP participant is in the room); until then it sends
//! 180 Ringing every second, and when the trunk's `ringing_timeout` runs out it rejects with
//! 486. Removing the SIP participant or deleting the room sends the caller a BYE.

use std::{
    collections::HashMap,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use callfleet_media::{AudioFrame, tone::rms_dbfs};
use callfleet_tests::{
    CallerOptions, DispatchRule, InboundCall, InboundTrunk, Side, Telephony,
    caller::{ATTR_CALL_ID_FULL, ATTR_PHONE_NUMBER, ATTR_TRUNK_NUMBER, CUSTOMER_ATTR},
    media::spawn_tone,
    scaled,
    tap::SPEECH_DBFS,
    wait_for,
};
use jiff::Timestamp;
use livekit_api::services::agent_dispatch::AgentDispatchClient;
use livekit_protocol::{ParticipantInfo, participant_info::Kind};
use tokio::sync::broadcast;

/// The attribute the trunk's `headers_to_attributes` makes of `X-Customer-Id`.
const MAPPED_ATTR: &str = "customer.id";

/// The SIP participants of every room whose name starts with `prefix`, by caller number
/// (`sip.phoneNumber`): (room, participant).
async fn sip_participants(
    tel: &Telephony,
    prefix: &str,
) -> HashMap<String, (String, ParticipantInfo)> {
    let client = tel.rooms();
    let mut out = HashMap::new();
    let Ok(list) = client.list_rooms(Vec::new()).await else {
        return out;
    };
    for room in list.into_iter().filter(|r| r.name.starts_with(prefix)) {
        let Ok(ps) = client.list_participants(&room.name).await else {
            continue;
        };
        for p in ps.into_iter().filter(|p| p.kind == Kind::Sip as i32) {
            if let Some(n) = p.attributes.get(ATTR_PHONE_NUMBER) {
                out.insert(n.clone(), (room.name.clone(), p));
            }
        }
    }
    out
}

/// The loudest 20 ms window of `from`'s audio over `within` (from the first frame on).
async fn loudest(
    mut audio: broadcast::Receiver<AudioFrame>,
    from: String,
    within: Duration,
) -> Option<f64> {
    let deadline = tokio::time::Instant::now() + within;
    let mut peak: Option<f64> = None;
    let mut pcm: Vec<i16> = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, audio.recv()).await {
            Err(_) => return peak,
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(_)) => return peak,
            Ok(Ok(f)) if f.identity == from => {
                pcm.extend_from_slice(&f.samples);
                while pcm.len() >= 960 {
                    let level = rms_dbfs(&pcm[..960]);
                    peak = Some(peak.map_or(level, |p| p.max(level)));
                    pcm.drain(..960);
                }
            }
            Ok(Ok(_)) => {}
        }
    }
}

fn ms(from: Timestamp, to: Option<Timestamp>) -> String {
    to.and_then(|t| Duration::try_from(t.duration_since(from)).ok())
        .map_or("-".to_owned(), |d| format!("{} ms", d.as_millis()))
}

fn report(calls: &[InboundCall]) -> String {
    calls
        .iter()
        .map(InboundCall::line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Three callers, a room each (individual rule), no agent: livekit-sip puts each in its room
/// with the caller number, the called number and the custom header as attributes, and rings
/// until something publishes audio there. Then a transport joins each room and publishes (a
/// tone in one, silence in the others): every call is answered 200, each caller's speech
/// reaches its room, and the tap hears the tone on exactly that caller's downlink. The far end
/// hangs up two calls (RemoveParticipant, DeleteRoom) and the caller sees the BYEs; the third
/// caller hangs up itself.
#[tokio::test(flavor = "multi_thread")]
async fn inbound_rig_three_callers_rooms_answer_audio_and_hangups() {
    const CALLED: &str = "+15557000100";
    const PREFIX: &str = "inb";
    let tel = Telephony::start().await;
    let sip_logs = tel.sip_logs();
    let trunk = tel
        .inbound_trunk_with(
            "inbound",
            InboundTrunk {
                headers_to_attributes: HashMap::from([(
                    "X-Customer-Id".to_owned(),
                    MAPPED_ATTR.to_owned(),
                )]),
                ringing_timeout: Some(Duration::from_secs(60)),
                ..InboundTrunk::new(&[CALLED])
            },
        )
        .await;
    tel.dispatch_rule(&DispatchRule::individual(PREFIX).trunks(&[&trunk]))
        .await;

    // Call 2 hangs up itself, long after the checks below; 0 and 1 stay until the far end
    // hangs up.
    let talk = scaled(Duration::from_secs(15));
    let options = CallerOptions {
        talk: vec![Duration::ZERO, Duration::ZERO, talk],
        ..CallerOptions::calls(3)
    };
    let numbers: Vec<String> = (0..3).map(|i| options.number(i)).collect();
    let mut caller = tel.caller(CALLED, options).await;
    let logs: Vec<std::path::PathBuf> = caller.log_paths().into_iter().chain(sip_logs).collect();
    let logs: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();

    // Each caller is in its own room while it rings.
    let parts = callfleet_tests::wait_for_logged(
        "a room with a SIP participant for each of the 3 callers",
        Duration::from_secs(20),
        &logs,
        || async {
            let found = sip_participants(&tel, &format!("{PREFIX}_")).await;
            numbers
                .iter()
                .all(|n| found.contains_key(n))
                .then_some(found)
        },
    )
    .await;
    let calls = caller.calls();
    let mut rooms_of = Vec::new();
    for (i, number) in numbers.iter().enumerate() {
        let (room, p) = &parts[number];
        let call = calls
            .iter()
            .find(|c| c.index == Some(i))
            .unwrap_or_else(|| panic!("call {i} placed\n{}", report(&calls)));
        assert!(
            room.starts_with(&format!("{PREFIX}_{number}_")),
            "the room per caller is <prefix>_<number>_<random>: {room}"
        );
        assert_eq!(p.identity, format!("sip_{number}"));
        let attr = |k: &str| p.attributes.get(k).map(String::as_str);
        assert_eq!(attr(ATTR_PHONE_NUMBER), Some(number.as_str()));
        assert_eq!(attr(ATTR_TRUNK_NUMBER), Some(CALLED));
        let customer = format!("cust-{i}");
        assert_eq!(
            attr(CUSTOMER_ATTR),
            Some(customer.as_str()),
            "{:?}",
            p.attributes
        );
        assert_eq!(
            attr(MAPPED_ATTR),
            Some(customer.as_str()),
            "{:?}",
            p.attributes
        );
        assert_eq!(attr(ATTR_CALL_ID_FULL), Some(call.call_id.as_str()));
        rooms_of.push(room.clone());
    }

    // Nobody published anything: the calls ring (180 every second) and are not answered.
    let ringing = caller
        .wait_calls(
            "3 calls ringing for 2 s (three 180s each) without an answer",
            Duration::from_secs(10),
            |c| c.len() == 3 && c.iter().all(|c| c.ringing_count >= 3),
        )
        .await;
    assert!(
        ringing.iter().all(|c| c.status.is_none()),
        "livekit-sip answers only once it subscribed to a track in the room:\n{}",
        report(&ringing)
    );

    // The far end: a transport in each room, publishing a tone in room 1 and silence in 0, 2.
    let stop = Arc::new(AtomicBool::new(false));
    let mut agents = Vec::new();
    let mut published_at = Vec::new();
    let mut heard = Vec::new();
    for (i, room) in rooms_of.iter().enumerate() {
        let agent = tel.join(room, &format!("agent-{i}")).await;
        let audio = agent.remote_audio();
        let track = agent
            .publish_audio("agent", 48_000)
            .await
            .unwrap_or_else(|e| panic!("agent {i} publishes: {e}"));
        published_at.push(Timestamp::now());
        let amp = if i == 1 { 0.5 } else { 0.0 };
        spawn_tone(
            track,
            440.0,
            amp,
            scaled(Duration::from_secs(90)),
            stop.clone(),
        );
        heard.push(tokio::spawn(loudest(
            audio,
            format!("sip_{}", numbers[i]),
            Duration::from_secs(8),
        )));
        agents.push(agent);
    }

    let answered = caller.wait_answered(3, Duration::from_secs(20)).await;
    for (i, at) in published_at.iter().enumerate() {
        let call = answered
            .iter()
            .find(|c| c.index == Some(i))
            .unwrap_or_else(|| panic!("call {i}\n{}", report(&answered)));
        assert_eq!(call.status, Some(200));
        assert!(
            call.downlink.is_some(),
            "the 200 OK names livekit-sip's RTP port"
        );
        eprintln!(
            "call {i}: invite→180 {}, invite→200 {}, published→200 {}",
            ms(call.invited_at, call.ringing_at),
            ms(call.invited_at, call.answered_at),
            ms(*at, call.answered_at),
        );
    }
    let downlinks: std::collections::HashSet<_> = answered.iter().map(|c| c.downlink).collect();
    assert_eq!(downlinks.len(), 3, "one RTP port per call");

    // Each caller's speech ("Hello, who is this?" every 6 s) reaches its room.
    for (i, h) in heard.into_iter().enumerate() {
        let peak = h.await.unwrap_or_else(|e| panic!("listener {i}: {e}"));
        eprintln!("room {i}: the caller's loudest 20 ms at {peak:?} dBFS");
        assert!(
            peak.is_some_and(|p| p >= SPEECH_DBFS),
            "caller {i}'s speech reached the room (peak {peak:?} dBFS)"
        );
    }

    // The tap: the tone on call 1's downlink only; silence (RTP flowing) on 0 and 2.
    let calls = caller
        .wait_calls(
            "1 s of the tone on call 1's downlink at the tap, and 50 packets on the others",
            Duration::from_secs(15),
            |c| {
                c.iter().all(|c| c.downlink_packets >= 50)
                    && c.iter().any(|c| c.index == Some(1) && c.heard_ms >= 1000)
            },
        )
        .await;
    for call in &calls {
        eprintln!("{}", call.line());
        if call.index == Some(1) {
            assert!(call.first_heard_at.is_some());
        } else {
            assert_eq!(
                call.heard_ms,
                0,
                "only call 1's room published a tone:\n{}",
                report(&calls)
            );
        }
    }
    assert_eq!(caller.tap().source_count(), 3, "one tap source per call");

    // The far end hangs up calls 0 and 1; call 2 hangs up itself after its talk time.
    let client = tel.rooms();
    let removed_at = Timestamp::now();
    client
        .remove_participant(&rooms_of[0], &format!("sip_{}", numbers[0]))
        .await
        .unwrap_or_else(|e| panic!("RemoveParticipant: {e}"));
    let deleted_at = Timestamp::now();
    client
        .delete_room(&rooms_of[1])
        .await
        .unwrap_or_else(|e| panic!("DeleteRoom: {e}"));
    let done = caller.wait_done(talk + Duration::from_secs(20)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let by = |i: usize| {
        done.iter()
            .find(|c| c.index == Some(i))
            .and_then(|c| c.hangup)
            .unwrap_or_else(|| panic!("call {i} hung up\n{}", report(&done)))
    };
    let (h0, h1, h2) = (by(0), by(1), by(2));
    assert_eq!((h0.by, h0.confirmed), (Side::FarEnd, true));
    assert_eq!((h1.by, h1.confirmed), (Side::FarEnd, true));
    assert_eq!((h2.by, h2.confirmed), (Side::Caller, true));
    eprintln!(
        "RemoveParticipant→BYE {}, DeleteRoom→BYE {}",
        ms(removed_at, Some(h0.at)),
        ms(deleted_at, Some(h1.at))
    );
    let status = caller.exited();
    assert!(
        status.is_some_and(|s| s.success()),
        "sipp ended every call cleanly ({status:?}): {}",
        caller.errors()
    );
    // Call 2's room loses its SIP participant once the caller hung up.
    wait_for(
        "call 2's SIP participant to leave its room",
        Duration::from_secs(15),
        || async {
            let found = sip_participants(&tel, &rooms_of[2]).await;
            (!found.contains_key(&numbers[2])).then_some(())
        },
    )
    .await;
    drop(agents);
}

/// Nothing publishes in the caller's room: livekit-sip rings until the trunk's
/// `ringing_timeout` and rejects the call with 486, which the caller records and ACKs.
#[tokio::test(flavor = "multi_thread")]
async fn inbound_rig_unanswered_call_is_rejected_at_the_ringing_timeout() {
    const CALLED: &str = "+15557000200";
    let tel = Telephony::start().await;
    let trunk = tel
        .inbound_trunk_with(
            "inbound-ring",
            InboundTrunk {
                ringing_timeout: Some(Duration::from_secs(3)),
                ..InboundTrunk::new(&[CALLED])
            },
        )
        .await;
    tel.dispatch_rule(&DispatchRule::individual("ring").trunks(&[&trunk]))
        .await;
    let mut caller = tel.caller(CALLED, CallerOptions::calls(1)).await;
    let calls = caller.wait_done(Duration::from_secs(20)).await;
    let call = &calls[0];
    eprintln!("{}", call.line());
    assert_eq!(call.status, Some(486), "{}", report(&calls));
    assert!(call.ringing_count >= 2, "it rang: {}", call.line());
    let rang = call
        .final_at
        .and_then(|f| Duration::try_from(f.duration_since(call.invited_at)).ok())
        .unwrap_or_default();
    assert!(
        rang >= Duration::from_millis(2900),
        "rejected at the ringing timeout, not before: {rang:?}"
    );
    assert!(call.answered_at.is_none() && call.hangup.is_none());
    assert!(
        caller.exited().is_some_and(|s| s.success()),
        "{}",
        caller.errors()
    );
}

/// A direct rule with an agent in its room configuration: two callers land in one room, the
/// room carries the agent dispatch (name and metadata) for an agent that is not running, and
/// each caller's SIP participant sees the other, which livekit-sip takes as an answer (it
/// unblocks a room of two SIP participants, lest each wait for the other's track). Deleting
/// the room hangs both up.
#[tokio::test(flavor = "multi_thread")]
async fn inbound_rig_direct_room_with_agent_dispatch() {
    const CALLED: &str = "+15557000300";
    const AGENT: &str = "callfleet-inbound";
    const METADATA: &str = r#"{"campaign":"inbound-test"}"#;
    let room = format!("lobby-{}", uuid::Uuid::new_v4().simple());
    let tel = Telephony::start().await;
    let trunk = tel.inbound_trunk("inbound-direct", &[CALLED]).await;
    let rule = DispatchRule::direct(&room)
        .trunks(&[&trunk])
        .agent(AGENT, METADATA);
    tel.dispatch_rule(&rule).await;
    let mut caller = tel.caller(CALLED, CallerOptions::calls(2)).await;
    let numbers: Vec<String> = (0..2).map(|i| caller.options.number(i)).collect();

    let parts = wait_for(
        "both callers in the one room",
        Duration::from_secs(20),
        || async {
            let found = sip_participants(&tel, &room).await;
            numbers
                .iter()
                .all(|n| found.contains_key(n))
                .then_some(found)
        },
    )
    .await;
    for n in &numbers {
        assert_eq!(parts[n].0, room);
    }
    let dispatches = AgentDispatchClient::with_api_key(
        &tel.livekit.http_url(),
        &tel.livekit.key,
        &tel.livekit.secret,
    )
    .list_dispatch(&room)
    .await
    .unwrap_or_else(|e| panic!("ListDispatch {room}: {e}"));
    assert!(
        dispatches
            .iter()
            .any(|d| d.agent_name == AGENT && d.metadata == METADATA),
        "the room dispatches the rule's agent: {dispatches:?}"
    );

    let answered = caller.wait_answered(2, Duration::from_secs(15)).await;
    eprintln!("{}", report(&answered));
    let deleted_at = Timestamp::now();
    tel.rooms()
        .delete_room(&room)
        .await
        .unwrap_or_else(|e| panic!("DeleteRoom: {e}"));
    let done = caller.wait_done(Duration::from_secs(20)).await;
    for call in &done {
        let h = call.hangup.unwrap_or_else(|| panic!("{}", call.line()));
        assert_eq!((h.by, h.confirmed), (Side::FarEnd, true), "{}", call.line());
        eprintln!("DeleteRoom→BYE {}", ms(deleted_at, Some(h.at)));
    }
}
