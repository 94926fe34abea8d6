//! The dispatcher's `livekit-events` consumer, in process, fed by the real chain: livekit-server
//! signs its webhooks, the ingress verifies them onto `LIVEKIT_EVENTS`, the consumer turns them
//! into the call's events. No call is placed: the room is created through the API with the
//! metadata an outbound call's room carries, and the call's state is written to KV.

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::consumer::pull;
use callfleet_bus::{Bus, BusError};
use callfleet_config::Config;
use callfleet_domain::CallState;
use callfleet_tests::{LiveKitServer, wait_for_logged};
use livekit_api::services::{
    agent_dispatch::AgentDispatchClient,
    room::{CreateRoomOptions, RoomClient},
};
use livekit_protocol as proto;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    livekit_webhook::{post, sign},
    rig::Rig,
};

/// The consumer has every message acknowledged (`num_pending` and `num_ack_pending` both 0).
async fn drained(rig: &Rig) -> Option<()> {
    let js = async_nats::jetstream::new(rig.nats.client().await);
    let stream = js.get_stream("LIVEKIT_EVENTS").await.ok()?;
    let mut consumer = stream
        .get_consumer::<pull::Config>("livekit-events")
        .await
        .ok()?;
    let info = consumer.info().await.ok()?;
    (info.num_pending == 0 && info.num_ack_pending == 0 && info.delivered.stream_sequence > 0)
        .then_some(())
}

/// The fleet's configuration for this rig's nats-server and livekit-server, with `extra` TOML.
fn config_of(rig: &Rig, extra: &str) -> Arc<Config> {
    let lk = rig._livekit.as_ref().expect("livekit-server");
    Arc::new(
        Config::from_toml(&format!(
            "[nats]\nurl = \"{}\"\n[livekit]\nurl = \"{}\"\napi_key = \"{}\"\napi_secret = \"{}\"\n{extra}",
            rig.nats.url(),
            lk.url(),
            lk.key,
            lk.secret
        ))
        .expect("config"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn lk_webhook_events_consumer_records_sip_status_and_room_finished() {
    callfleet_tests::test_log::init();
    let mut rig = Rig::with_livekit_webhooks().await;
    rig.start_ingress().await;
    let rig = &rig;
    let lk = rig._livekit.as_ref().expect("livekit-server");
    let config = config_of(rig, "");
    let bus = Bus::connect(&config, "test").await.expect("bus");
    let call_id = &format!("lkw{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let room = format!("call-{call_id}");
    bus.create_call_state(&CallState::queued(call_id, &room, "default"))
        .await
        .expect("call state");
    let rooms = RoomClient::with_api_key(&lk.http_url(), &lk.key, &lk.secret);
    let meta = json!({"call_id": call_id, "campaign": "default", "attempt": 1}).to_string();
    rooms
        .create_room(
            &room,
            CreateRoomOptions {
                metadata: meta,
                empty_timeout: 300,
                ..Default::default()
            },
        )
        .await
        .expect("CreateRoom");
    // A room no call owns: its events are acknowledged and ignored.
    let stray = format!("stray-{}", uuid::Uuid::new_v4().simple());
    rooms
        .create_room(&stray, CreateRoomOptions::default())
        .await
        .expect("CreateRoom stray");

    let shutdown = CancellationToken::new();
    let consumer = tokio::spawn(callfleet_dispatcher::events::run(
        bus.clone(),
        config.clone(),
        None,
        shutdown.clone(),
    ));

    // A SIP leg's status, signed as livekit-server signs (no livekit-sip here).
    let sip_event = json!({
        "event": "participant_joined",
        "id": format!("EV_sip{}", uuid::Uuid::new_v4().simple()),
        "createdAt": jiff::Timestamp::now().as_second().to_string(),
        "room": {"name": room},
        "participant": {"sid": "PA_leg1", "identity": format!("sip-{call_id}"), "kind": "SIP",
            "attributes": {"sip.callStatus": "ringing", "callfleet.call_id": call_id}}
    })
    .to_string();
    post_signed(rig, lk, sip_event).await;

    // Poison on the stream: dead-lettered with its reason.
    let nats = rig.nats.client().await;
    let js = async_nats::jetstream::new(nats);
    js.publish("livekit.events.garbage", "not json".into())
        .await
        .expect("publish")
        .await
        .expect("ack");

    rooms.delete_room(&room).await.expect("DeleteRoom");
    rooms.delete_room(&stray).await.expect("DeleteRoom stray");
    let log = lk.log_path();
    let logs = [log.as_path()];
    let finished = wait_for_logged(
        "the call's room_finished event",
        Duration::from_secs(30),
        &logs,
        || async move {
            rig.events(call_id)
                .await
                .into_iter()
                .find(|(kind, _)| kind == "room_finished")
                .map(|(_, v)| v)
        },
    )
    .await;
    assert_eq!(finished["detail"]["room"], room.as_str(), "{finished}");
    assert_eq!(
        finished["attempt"], 0,
        "the state's attempts so far: {finished}"
    );
    assert!(
        finished["event_id"]
            .as_str()
            .is_some_and(|id| id.starts_with(&format!("{call_id}.room_finished.EV_"))),
        "{finished}"
    );
    let sip = rig
        .events(call_id)
        .await
        .into_iter()
        .find(|(kind, _)| kind == "sip_status")
        .map(|(_, v)| v)
        .expect("sip_status event");
    assert_eq!(sip["detail"]["status"], "ringing", "{sip}");
    assert_eq!(
        sip["detail"]["participant"],
        format!("sip-{call_id}"),
        "{sip}"
    );

    wait_for_logged(
        "livekit-events drained (every event acknowledged)",
        Duration::from_secs(20),
        &logs,
        || drained(rig),
    )
    .await;
    let kinds: Vec<String> = rig
        .events(call_id)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "room_finished").count(),
        1,
        "{kinds:?}"
    );
    // Only the call's own events: the stray room's events went nowhere.
    let all_events = rig.stream_messages("CALL_EVENTS").await;
    assert_eq!(all_events, kinds.len() as u64, "{kinds:?}");
    let dlq = js.get_stream("CALL_DLQ").await.expect("dlq");
    let dead = dlq
        .get_last_raw_message_by_subject("livekit.dlq.garbage")
        .await
        .expect("the poison event is dead-lettered");
    let reason: Value = dead
        .headers
        .get("Callfleet-Dlq-Reason")
        .map(|v| Value::from(v.as_str()))
        .unwrap_or_default();
    assert!(
        reason
            .as_str()
            .unwrap_or_default()
            .contains("not a LiveKit webhook event"),
        "{reason}"
    );

    stop(&shutdown, consumer).await;
}

/// Cancel the consumer and wait for it to stop cleanly.
async fn stop(shutdown: &CancellationToken, consumer: JoinHandle<Result<(), BusError>>) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), consumer)
        .await
        .expect("the consumer stops on shutdown")
        .expect("no panic")
        .expect("no error");
}

/// A signed `participant_<what>` webhook for a SIP caller, POSTed to the ingress.
async fn post_sip_event(
    rig: &Rig,
    lk: &LiveKitServer,
    what: &str,
    room: &str,
    sid: &str,
    status: &str,
) {
    let body = json!({
        "event": format!("participant_{what}"),
        "id": format!("EV_{}", uuid::Uuid::new_v4().simple()),
        "createdAt": jiff::Timestamp::now().as_second().to_string(),
        "room": {"name": room, "metadata": "{\"tenant\": \"acme\"}"},
        "participant": {"sid": sid, "identity": "sip_+15550100", "kind": "SIP",
            "attributes": {"sip.callStatus": status, "sip.phoneNumber": "+15550100"}}
    })
    .to_string();
    post_signed(rig, lk, body).await;
}

/// `body` signed as livekit-server signs its webhooks, POSTed to the ingress: 200.
async fn post_signed(rig: &Rig, lk: &LiveKitServer, body: String) {
    let token = sign(&lk.key, &lk.secret, body.as_bytes());
    let (status, answer) = post(rig, Some(&token), body.clone()).await;
    assert_eq!(status, 200, "{answer} for {body}");
}

/// The jobs on `calls.dispatch.>` in `CALL_JOBS`.
async fn jobs(rig: &Rig) -> Vec<Value> {
    messages(rig, "calls.dispatch.").await
}

/// The payloads of `CALL_JOBS`' messages whose subject starts with `prefix`.
async fn messages(rig: &Rig, prefix: &str) -> Vec<Value> {
    rig.stored("CALL_JOBS")
        .await
        .into_iter()
        .filter(|m| m.subject.starts_with(prefix))
        .map(|m| serde_json::from_slice(&m.payload).unwrap_or(Value::Null))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn lk_webhook_sip_caller_in_an_unserved_room_gets_an_inbound_session() {
    callfleet_tests::test_log::init();
    let mut rig = Rig::with_livekit_webhooks().await;
    rig.start_ingress().await;
    let rig = &rig;
    let lk = rig._livekit.as_ref().expect("livekit-server");
    let config = config_of(
        rig,
        "[inbound]\nsessions_from_webhooks = true\n[agent]\nvoice_session = false\n",
    );
    let bus = Bus::connect(&config, "test").await.expect("bus");
    let shutdown = CancellationToken::new();
    let dispatcher =
        callfleet_dispatcher::Dispatcher::new(config.clone(), std::collections::HashMap::new())
            .await
            .expect("dispatcher");
    let consumer = tokio::spawn(callfleet_dispatcher::events::run(
        bus.clone(),
        config.clone(),
        Some(dispatcher),
        shutdown.clone(),
    ));
    let rooms = RoomClient::with_api_key(&lk.http_url(), &lk.key, &lk.secret);
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (unserved, with_agent, dispatched) = (
        format!("inb-{tag}"),
        format!("agent-room-{tag}"),
        format!("dispatched-{tag}"),
    );
    for room in [&unserved, &with_agent, &dispatched] {
        rooms
            .create_room(
                room,
                CreateRoomOptions {
                    empty_timeout: 300,
                    ..Default::default()
                },
            )
            .await
            .expect("CreateRoom");
    }
    // Served rooms: an agent is in one, LiveKit dispatched `livekit.agent_name` to the other.
    let _agent = callfleet_media::Transport::connect(
        &lk.url(),
        &lk.token(&with_agent, "agent-someone"),
        callfleet_media::Options::loopback(),
    )
    .await
    .expect("the agent joins");
    AgentDispatchClient::with_api_key(&lk.http_url(), &lk.key, &lk.secret)
        .create_dispatch(proto::CreateAgentDispatchRequest {
            agent_name: config.livekit.agent_name.clone(),
            room: dispatched.clone(),
            ..Default::default()
        })
        .await
        .expect("CreateDispatch");

    let sid = format!("PA_{}", &tag[..12]);
    for room in [&with_agent, &dispatched, &unserved] {
        post_sip_event(rig, lk, "joined", room, &sid, "active").await;
    }
    let log = lk.log_path();
    let logs = [log.as_path()];
    wait_for_logged(
        "livekit-events drained",
        Duration::from_secs(20),
        &logs,
        || drained(rig),
    )
    .await;
    let queued = jobs(rig).await;
    assert_eq!(
        queued.len(),
        1,
        "one session, for the unserved room only: {queued:?}"
    );
    let job = &queued[0];
    let call_id = callfleet_domain::inbound::call_id_for_job(&sid);
    assert_eq!(job["direction"], "inbound", "{job}");
    assert_eq!(job["call_id"], call_id.as_str(), "{job}");
    assert_eq!(job["room"], unserved.as_str(), "{job}");
    assert_eq!(job["participant_identity"], "sip_+15550100", "{job}");
    assert_eq!(job["metadata"]["tenant"], "acme", "{job}");
    assert!(job["answer_by"].is_string(), "{job}");
    let busy = messages(rig, &format!("calls.schedule.{call_id}.busy")).await;
    assert_eq!(
        busy.len(),
        1,
        "its busy check waits as a scheduled message: {busy:?}"
    );

    // A redelivered join (a new event id, the same caller) enqueues nothing new; the caller's
    // leaving is the call's event (its room was remembered).
    post_sip_event(rig, lk, "joined", &unserved, &sid, "active").await;
    post_sip_event(rig, lk, "left", &unserved, &sid, "hangup").await;
    let left = wait_for_logged(
        "the caller's sip_status (left)",
        Duration::from_secs(20),
        &logs,
        || {
            let call_id = call_id.clone();
            async move {
                rig.events(&call_id)
                    .await
                    .into_iter()
                    .find(|(kind, v)| kind == "sip_status" && v["detail"]["left"] == true)
                    .map(|(_, v)| v)
            }
        },
    )
    .await;
    assert_eq!(left["detail"]["status"], "hangup", "{left}");
    wait_for_logged(
        "livekit-events drained",
        Duration::from_secs(20),
        &logs,
        || drained(rig),
    )
    .await;
    assert_eq!(
        jobs(rig).await.len(),
        1,
        "a redelivered join is the same call"
    );

    stop(&shutdown, consumer).await;
}
