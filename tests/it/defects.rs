//! Defects of issue 10, each pinned on the real rig: number-lock waits that spent deliveries,
//! poison too large to dead-letter, non-JSON jobs without a `failed` event, a taken-over call
//! still naming its dead worker, durations after a lost worker, `ringing` without a ring, and
//! media timeouts reported as hang-ups.

use std::time::Duration;

use callfleet_tests::{Behaviour, Role, free_port, wait_consumer, wait_for};
use livekit_api::services::room::RoomClient;
use serde_json::{Value, json};

use crate::rig::{Peers, Rig};

fn ts(v: &Value) -> jiff::Timestamp {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a timestamp: {v}"))
}

async fn dead_letter(
    rig: &Rig,
    subject: &str,
) -> Option<async_nats::jetstream::message::StreamMessage> {
    let js = async_nats::jetstream::new(rig.nats.client().await);
    let dlq = js.get_stream("CALL_DLQ").await.ok()?;
    dlq.get_last_raw_message_by_subject(subject).await.ok()
}

fn header(msg: &async_nats::jetstream::message::StreamMessage, name: &str) -> Option<String> {
    msg.headers.get(name).map(|v| v.as_str().to_owned())
}

/// Two calls to one number, the first held longer than `max_deliveries` back-offs last: the
/// second waits (as scheduled messages, spending no delivery) and is dialed once the first
/// ends. Before: it was dead-lettered as poison after max_deliveries NAKs, never dialed.
#[tokio::test(flavor = "multi_thread")]
async fn defect_number_lock_wait_spends_no_deliveries() {
    let mut rig = Rig::with(Peers::Telephony).await;
    rig.fleet.set("CALLFLEET_AGENT__MAX_DELIVERIES", "2");
    rig.start_ingress().await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);
    let to = Behaviour::AnswerThenHangUp(10).number(31);
    let first = rig
        .dispatch(&json!({"destination": to, "account_code": "acct-lock-1"}))
        .await;
    rig.wait_event(&first, "answered", 30).await;
    let second = rig
        .dispatch(&json!({"destination": to, "account_code": "acct-lock-2"}))
        .await;

    let a = rig.summary_of(&first, 60).await;
    let b = rig.summary_of(&second, 60).await;
    let (a, b) = (&a["data"], &b["data"]);
    assert_eq!(a["outcome"], "answered", "{a}");
    assert_eq!(b["outcome"], "answered", "the waiting call was dialed: {b}");
    assert!(
        ts(&b["call_start"]) >= ts(&a["call_end"]),
        "never two live calls to one number: {a} {b}"
    );
    assert_eq!(rig.callee().invites_to(&to).len(), 2, "one INVITE per call");
    assert_eq!(
        rig.stream_messages("CALL_DLQ").await,
        0,
        "nothing dead-lettered"
    );
    let kinds = rig.event_kinds(&second).await;
    assert!(!kinds.contains(&"dead".to_owned()), "{kinds:?}");
}

/// An invalid job close to NATS' max_payload (1 MiB): its dead-letter copy is cut to fit
/// (`Callfleet-Dlq-Truncated` gives the original size, the reason is kept) and a `failed`
/// event goes out. Before: the copy was too large, and the job came back every 5 s forever.
#[tokio::test(flavor = "multi_thread")]
async fn defect_oversized_poison_is_dead_lettered_truncated() {
    let mut rig = Rig::new(true).await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);
    wait_consumer(&rig.nats.url(), "CALL_JOBS", "agents").await;
    let mut body = json!({
        "call_id": "big-1", "destination": "not a number", "account_code": "acct-big",
        "metadata": {"blob": ""},
    })
    .to_string()
    .into_bytes();
    // Room for the publisher's headers only: the old dead-letter copy (more headers) did not fit.
    let size = 1024 * 1024 - 256;
    let pad = size - body.len();
    // Fill the blob: `"blob":""` → `"blob":"xxxx…"`.
    let at = body
        .windows(9)
        .position(|w| w == b"\"blob\":\"\"")
        .expect("blob")
        + 8;
    body.splice(at..at, std::iter::repeat_n(b'x', pad));
    assert_eq!(body.len(), size);
    let js = async_nats::jetstream::new(rig.nats.client().await);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "pub-big-1");
    js.publish_with_headers("calls.dispatch.big", headers, body.into())
        .await
        .expect("publish")
        .await
        .expect("ack");

    let msg = wait_for("the dead letter", Duration::from_secs(30), || {
        dead_letter(&rig, "calls.dlq.big-1")
    })
    .await;
    assert_eq!(
        header(&msg, "Callfleet-Dlq-Truncated").as_deref(),
        Some(size.to_string().as_str())
    );
    let reason = header(&msg, "Callfleet-Dlq-Reason").unwrap_or_default();
    assert!(reason.contains("destination"), "{reason}");
    assert_eq!(
        header(&msg, "Callfleet-Publisher-Msg-Id").as_deref(),
        Some("pub-big-1")
    );
    assert!(msg.payload.len() < size && msg.payload.len() > size - 8 * 1024);
    let hook = rig.summary_of("big-1", 30).await;
    assert_eq!(hook["data"]["outcome"], "invalid_request");
    wait_for(
        "the job gone from CALL_JOBS",
        Duration::from_secs(10),
        || async { (rig.stream_messages("CALL_JOBS").await == 0).then_some(()) },
    )
    .await;
    assert_eq!(
        rig.stream_messages("CALL_DLQ").await,
        1,
        "dead-lettered once"
    );
}

/// Non-JSON on `calls.dispatch.*`: a `failed` event under the `js<stream seq>` call id, and the
/// dead letter keeps the publisher's `Nats-Msg-Id` in `Callfleet-Publisher-Msg-Id`.
#[tokio::test(flavor = "multi_thread")]
async fn defect_non_json_job_fails_under_its_stream_id() {
    let mut rig = Rig::new(true).await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);
    wait_consumer(&rig.nats.url(), "CALL_JOBS", "agents").await;
    let js = async_nats::jetstream::new(rig.nats.client().await);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "pub-raw-1");
    let ack = js
        .publish_with_headers("calls.dispatch.raw", headers, "this is not json".into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    let call_id = format!("js{}", ack.sequence);

    let hook = rig.summary_of(&call_id, 30).await;
    let s = &hook["data"];
    assert_eq!(s["outcome"], "invalid_request", "{s}");
    assert!(
        s["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not valid JSON"),
        "{s}"
    );
    let msg = dead_letter(&rig, &format!("calls.dlq.{call_id}"))
        .await
        .expect("the dead letter under the stream id");
    assert_eq!(
        header(&msg, "Callfleet-Publisher-Msg-Id").as_deref(),
        Some("pub-raw-1")
    );
    assert_eq!(
        header(&msg, "Callfleet-Original-Subject").as_deref(),
        Some("calls.dispatch.raw")
    );
    assert_eq!(&msg.payload[..], b"this is not json");
    let kinds = rig.event_kinds(&call_id).await;
    assert_eq!(kinds, ["failed"], "{kinds:?}");
}

/// kill -9 while ringing: while the next worker follows the ring, and after, `GET /calls/{id}`
/// names it. Before: the dead worker's id stayed in the call state.
#[tokio::test(flavor = "multi_thread")]
async fn defect_takeover_records_the_new_worker() {
    let mut rig = Rig::fast_takeover().await;
    rig.fleet.set("CALLFLEET_SIP__RINGING_TIMEOUT_SECS", "12");
    rig.start_agent("agent-a");
    let to = Behaviour::Ring.number(32);
    let call_id = rig
        .dispatch(&json!({"destination": to, "account_code": "acct-takeover"}))
        .await;
    let ringing = rig.wait_event(&call_id, "ringing", 30).await;
    rig.fleet.kill9(Role::Agent);
    rig.start_agent("agent-b");
    wait_for(
        "the state to name agent-b while it follows the ring",
        Duration::from_secs(30),
        || async {
            let s = rig.get_call(&call_id).await.1;
            (s["worker_id"] == "agent-b" && s["status"] == "ringing").then_some(())
        },
    )
    .await;
    let hook = rig.summary_of(&call_id, 60).await;
    assert_eq!(hook["data"]["end_reason"], "worker_lost");
    let state = rig.get_call(&call_id).await.1;
    assert_eq!(state["worker_id"], "agent-b", "{state}");
    assert_eq!(state["status"], "failed", "{state}");
    assert_eq!(
        ringing["detail"]["source"], "livekit-sip sip.callStatus",
        "the event names where it comes from: {ringing}"
    );
}

/// kill -9 mid-call, and the callee hangs up before another worker takes over: the duration is
/// estimated from the lost worker's last sight of the callee and the takeover, marked as
/// estimated, and close to the real hold. Before: takeover time minus answer time.
#[tokio::test(flavor = "multi_thread")]
async fn defect_duration_after_a_lost_worker_is_estimated() {
    let mut rig = Rig::fast_takeover().await;
    rig.start_agent("agent-a");
    let hold = 6.0;
    let to = Behaviour::AnswerThenHangUp(6).number(33);
    let call_id = rig
        .dispatch(&json!({"destination": to, "account_code": "acct-estimate"}))
        .await;
    rig.wait_event(&call_id, "answered", 30).await;
    // Let agent-a see the callee for a while (its heartbeat is every lease_ttl/3 = 1 s).
    wait_for(
        "agent-a to see the callee 3 s in",
        Duration::from_secs(20),
        || async {
            let s = rig.get_call(&call_id).await.1;
            let (Some(answered), Some(seen)) =
                (s["answered_at"].as_str(), s["callee_seen_at"].as_str())
            else {
                return None;
            };
            let answered: jiff::Timestamp = answered.parse().ok()?;
            let seen: jiff::Timestamp = seen.parse().ok()?;
            (seen.duration_since(answered).as_secs_f64() >= 3.0).then_some(())
        },
    )
    .await;
    rig.fleet.kill9(Role::Agent);
    // The callee hangs up on its own; wait until LiveKit has the SIP leg gone.
    let lk = &rig.telephony.as_ref().expect("telephony").livekit;
    let rooms = RoomClient::with_api_key(&lk.http_url(), &lk.key, &lk.secret);
    let room = format!("call-{call_id}");
    let sip = format!("sip-{call_id}");
    wait_for("the callee to hang up", Duration::from_secs(30), || async {
        let list = rooms.list_participants(&room).await.unwrap_or_default();
        (!list.iter().any(|p| p.identity == sip)).then_some(())
    })
    .await;
    rig.start_agent("agent-b");

    let hook = rig.summary_of(&call_id, 60).await;
    let s = &hook["data"];
    assert_eq!(s["end_reason"], "worker_lost", "{s}");
    assert_eq!(s["outcome"], "answered", "{s}");
    assert_eq!(s["duration_estimated"], true, "{s}");
    let estimate = &s["duration_estimate"];
    assert!(
        estimate["end_from"]
            .as_str()
            .unwrap_or_default()
            .contains("callee_seen_at"),
        "{s}"
    );
    let duration = s["call_duration_seconds"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (duration - hold).abs() <= 2.5,
        "estimated {duration} s for a {hold} s call: {s}"
    );
    let end = ts(&s["call_end"]);
    assert!(
        ts(&estimate["end_earliest"]) <= end && end <= ts(&estimate["end_latest"]),
        "{s}"
    );
    assert_eq!(rig.get_call(&call_id).await.1["worker_id"], "agent-b");
    assert_eq!(rig.callee().invites_to(&to).len(), 1);
}

/// An INVITE nobody answers (nothing listens at the trunk's address: no 100, no 180): the call
/// is `dialing` until the ring timeout, and no `ringing` event is published. livekit-sip sets
/// `sip.callStatus = ringing` only on a provisional 180–199; `dialing` is not a ring.
#[tokio::test(flavor = "multi_thread")]
async fn defect_no_ringing_without_a_provisional_response() {
    let mut rig = Rig::with(Peers::Telephony).await;
    let dead = free_port();
    let trunk = rig
        .telephony
        .as_ref()
        .expect("telephony")
        .outbound_trunk(&format!("nobody-{dead}"), dead, &[crate::rig::FROM_NUMBER])
        .await;
    rig.fleet.set("SIP_TRUNK_ID", trunk);
    rig.fleet.set("CALLFLEET_SIP__RINGING_TIMEOUT_SECS", "6");
    rig.fleet.set("CALLFLEET_RETRY__MAX_ATTEMPTS", "1");
    rig.start_ingress().await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);
    let call_id = rig
        .dispatch(&json!({"destination": "+61400000999", "account_code": "acct-nobody"}))
        .await;
    let hook = rig.summary_of(&call_id, 60).await;
    assert_ne!(hook["data"]["outcome"], "answered", "{}", hook["data"]);
    let kinds = rig.event_kinds(&call_id).await;
    assert!(kinds.contains(&"dialing".to_owned()), "{kinds:?}");
    assert!(
        !kinds.contains(&"ringing".to_owned()),
        "no provisional response, no ringing: {kinds:?}"
    );
}

/// A callee that answers and sends no RTP (a dead line): livekit-sip drops the call after its
/// media timeout (~30 s without RTP), leaving with `sip.callStatus` still `active`; the call
/// ends as `media_timeout`, not `callee_hangup`.
#[tokio::test(flavor = "multi_thread")]
async fn defect_media_timeout_is_its_own_end_reason() {
    let mut rig = Rig::with(Peers::Telephony).await;
    rig.start_ingress().await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);
    let to = Behaviour::AnswerSilent.number(34);
    let call_id = rig
        .dispatch(&json!({"destination": to, "account_code": "acct-dead-line"}))
        .await;
    rig.wait_event(&call_id, "answered", 30).await;
    // livekit-sip's initial media timeout is 30 s; leave room for a busy machine.
    let hook = rig.summary_of(&call_id, 120).await;
    let s = &hook["data"];
    assert_eq!(s["outcome"], "answered", "{s}");
    assert_eq!(s["end_reason"], "media_timeout", "{s}");
    let duration = s["call_duration_seconds"].as_f64().unwrap_or(f64::NAN);
    assert!(
        duration >= 25.0,
        "dropped by the media timeout, not earlier: {duration}"
    );
    assert_eq!(rig.callee().invites_to(&to).len(), 1);
}

/// A callee that holds longer than livekit-sip's media timeout (~30 s) and then hangs up itself.
/// The test callee used to send no RTP on `…HH200`, so livekit-sip dropped such calls at 30 s and
/// they were reported as the callee hanging up; it now sends silence like a phone, so the call
/// lasts its full hold and ends with the callee's BYE.
#[tokio::test(flavor = "multi_thread")]
async fn defect_long_hold_outlasts_the_media_timeout() {
    const HOLD: u8 = 36;
    let mut rig = Rig::with(Peers::Telephony).await;
    rig.start_ingress().await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);
    let to = Behaviour::AnswerThenHangUp(HOLD).number(35);
    let call_id = rig
        .dispatch(&json!({"destination": to, "account_code": "acct-long-hold"}))
        .await;
    let hook = rig.summary_of(&call_id, 150).await;
    let s = &hook["data"];
    assert_eq!(s["outcome"], "answered", "{s}");
    assert_eq!(s["end_reason"], "callee_hangup", "{s}");
    let duration = s["call_duration_seconds"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (f64::from(HOLD) - 2.0..=f64::from(HOLD) + 6.0).contains(&duration),
        "the call lasts the callee's {HOLD} s hold, not livekit-sip's 30 s media timeout: {duration}"
    );
    assert!(
        rig.callee().received("BYE").is_empty(),
        "the callee hung up; livekit-sip never sent it a BYE (as its media timeout would)"
    );
}
