use std::time::Duration;

use callfleet_domain::{CallEvent, EventKind};
use callfleet_tests::{Role, verify_signature, wait_consumer, wait_for};
use serde_json::Value;

use crate::rig::{Rig, SECRET};

/// Publish a final event as the agent would (the notifier's input contract).
async fn publish_final(rig: &Rig, call_id: &str) {
    let mut event = CallEvent::new(call_id, EventKind::Ended, 1);
    event.detail = Some(serde_json::json!({ "test": true }));
    let js = async_nats::jetstream::new(rig.nats.client().await);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", event.event_id.as_str());
    let body = serde_json::to_vec(&event).expect("encode");
    js.publish_with_headers(
        format!("calls.events.{call_id}.ended"),
        headers,
        body.into(),
    )
    .await
    .expect("publish")
    .await
    .expect("ack");
}

/// 500 then 200 → delivered once more with the same webhook-id; the notifier killed between
/// attempts → delivered after restart, still with the same id.
#[tokio::test(flavor = "multi_thread")]
async fn fault_notifier_retries_with_stable_id_across_restart() {
    let mut rig = Rig::new(false).await;
    rig.fleet
        .set("CALLFLEET_NOTIFIER__SCHEDULE_SECS", "[0,2,2,2,2]");
    rig.sink.set_status(500);
    rig.fleet.start(Role::Notifier);
    wait_consumer(&rig.nats.url(), "CALL_EVENTS", "notifier").await;

    publish_final(&rig, "n1").await;
    wait_for("first failed attempt", Duration::from_secs(20), || async {
        (!rig.sink.received().is_empty()).then_some(())
    })
    .await;
    rig.fleet.kill9(Role::Notifier);
    let failed = rig.sink.received();
    assert_eq!(failed.len(), 1, "one attempt before the kill");
    assert_eq!(failed[0].status, 500);

    rig.sink.set_status(200);
    rig.fleet.start(Role::Notifier);
    let ok = wait_for(
        "delivery after restart",
        Duration::from_secs(30),
        || async { rig.sink.delivered().into_iter().next() },
    )
    .await;
    assert_eq!(
        ok.header("webhook-id"),
        failed[0].header("webhook-id"),
        "webhook-id is stable across retries"
    );
    assert_eq!(ok.body, failed[0].body, "the same body is re-sent");
    assert!(verify_signature(
        SECRET,
        &ok.header("webhook-id"),
        &ok.header("webhook-timestamp"),
        &ok.body,
        &ok.header("webhook-signature")
    ));
    assert_eq!(ok.json()["type"], "call.ended");
    // Exactly one success: wait past one more retry step and check nothing else arrives.
    publish_final(&rig, "n2").await;
    wait_for("second call delivered", Duration::from_secs(20), || async {
        rig.sink
            .delivered()
            .into_iter()
            .find(|r| r.json()["data"]["call_id"] == "n2")
    })
    .await;
    let for_n1: Vec<_> = rig
        .sink
        .delivered()
        .into_iter()
        .filter(|r| r.json()["data"]["call_id"] == "n1")
        .collect();
    assert_eq!(for_n1.len(), 1, "delivered once");
}

/// 410 Gone: no more retries, the delivery is dead-lettered with the reason.
#[tokio::test(flavor = "multi_thread")]
async fn notifier_410_dead_letters_without_retrying() {
    let mut rig = Rig::new(false).await;
    rig.sink.set_status(410);
    rig.fleet.start(Role::Notifier);
    wait_consumer(&rig.nats.url(), "CALL_EVENTS", "notifier").await;
    publish_final(&rig, "gone1").await;
    let js = async_nats::jetstream::new(rig.nats.client().await);
    let reason = wait_for("dead letter", Duration::from_secs(20), || async {
        let stream = js.get_stream("CALL_DLQ").await.ok()?;
        let msg = stream
            .get_last_raw_message_by_subject("webhooks.dlq.msg_gone1_ended_1_0")
            .await
            .ok()?;
        msg.headers
            .get("Callfleet-Dlq-Reason")
            .map(|v| v.as_str().to_owned())
    })
    .await;
    assert!(reason.contains("410"), "{reason}");
    assert_eq!(rig.sink.received().len(), 1, "410 means give up at once");
    let _: Value = Value::Null;
}
