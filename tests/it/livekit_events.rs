//! The dispatcher's `livekit-events` consumer, in process, fed by the real chain: livekit-server
//! signs its webhooks, the ingress verifies them onto `LIVEKIT_EVENTS`, the consumer turns them
//! into the call's events. No call is placed: the room is created through the API with the
//! metadata an outbound call's room carries, and the call's state is written to KV.

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::consumer::pull;
use base64::Engine;
use callfleet_bus::Bus;
use callfleet_config::Config;
use callfleet_domain::CallState;
use callfleet_tests::wait_for_logged;
use livekit_api::{
    access_token::AccessToken,
    services::room::{CreateRoomOptions, RoomClient},
};
use serde_json::{Value, json};
use sha2::Digest;
use tokio_util::sync::CancellationToken;

use crate::rig::Rig;

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

#[tokio::test(flavor = "multi_thread")]
async fn lk_webhook_events_consumer_records_sip_status_and_room_finished() {
    let mut rig = Rig::with_livekit_webhooks().await;
    rig.start_ingress().await;
    let rig = &rig;
    let lk = rig._livekit.as_ref().expect("livekit-server");
    let config = Arc::new(
        Config::from_toml(&format!(
            "[nats]\nurl = \"{}\"\n[livekit]\nurl = \"{}\"\napi_key = \"{}\"\napi_secret = \"{}\"\n",
            rig.nats.url(),
            lk.url(),
            lk.key,
            lk.secret
        ))
        .expect("config"),
    );
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
    let hash =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&sip_event));
    let token = AccessToken::with_api_key(&lk.key, &lk.secret)
        .with_sha256(&hash)
        .to_jwt()
        .expect("sign");
    let resp = rig
        .http
        .post(rig.url("/livekit/webhook"))
        .header("authorization", token)
        .body(sip_event)
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status().as_u16(), 200);

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
    let logs = [lk.log_path()];
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
    assert_eq!(finished["attempt"], 0, "the state's attempts so far: {finished}");
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
    assert_eq!(sip["detail"]["participant"], format!("sip-{call_id}"), "{sip}");

    wait_for_logged(
        "livekit-events drained (every event acknowledged)",
        Duration::from_secs(20),
        &logs,
        || drained(rig),
    )
    .await;
    let kinds: Vec<String> = rig.events(call_id).await.into_iter().map(|(k, _)| k).collect();
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
        reason.as_str().unwrap_or_default().contains("not a LiveKit webhook event"),
        "{reason}"
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), consumer)
        .await
        .expect("the consumer stops on shutdown")
        .expect("no panic")
        .expect("no error");
}
