//! Real telephony: the fleet dials through livekit-sip to a SIPp callee on loopback.

use std::time::Duration;

use callfleet_tests::{Behaviour, Role};
use serde_json::{Value, json};

use crate::rig::{Peers, Rig, seed_payload};

async fn telephony_rig() -> Rig {
    let mut rig = Rig::with(Peers::Telephony).await;
    rig.start_ingress().await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);
    rig
}

fn seconds(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// The seed payload, answered: the INVITE carries the account code and the caller identity;
/// the summary measures the call from answer to the callee's hang-up.
#[tokio::test(flavor = "multi_thread")]
async fn tel_answered_call_headers_and_timings() {
    let rig = telephony_rig().await;
    let to = Behaviour::AnswerThenHangUp(2).number(1);
    let mut body = seed_payload();
    body["destination"] = json!(to);
    let call_id = rig.dispatch(&body).await;

    let hook = rig.summary_of(&call_id, 60).await;
    let s = &hook["data"];
    assert_eq!(hook["type"], "call.ended", "{hook}");
    assert_eq!(s["outcome"], "answered", "{s}");
    assert_eq!(s["end_reason"], "callee_hangup", "{s}");
    assert_eq!(s["sip"]["code"], 200);
    let duration = seconds(&s["call_duration_seconds"]);
    assert!(
        (1.0..8.0).contains(&duration),
        "the callee hangs up 2 s after answering; measured {duration} s"
    );
    let start: jiff::Timestamp = s["call_start"].as_str().expect("call_start").parse().expect("ts");
    let end: jiff::Timestamp = s["call_end"].as_str().expect("call_end").parse().expect("ts");
    let span = end.duration_since(start).as_secs_f64();
    assert!((span - duration).abs() < 0.01, "duration is call_end - call_start: {span} vs {duration}");

    let invites = rig.callee().invites_to(&to);
    assert_eq!(invites.len(), 1, "one INVITE: {:?}", rig.callee().requests());
    let invite = &invites[0];
    assert_eq!(invite.header("X-Account-Code"), Some("em-tech-01"));
    let from = invite.header("From").unwrap_or_default();
    assert!(from.contains("\"LiveKit Nehos Hosted\""), "display name in From: {from}");
    assert!(from.contains("sip:+61123456789@"), "caller number in From: {from}");

    let (_, call) = rig.get_call(&call_id).await;
    assert_eq!(call["status"], "ended");
    let kinds: Vec<String> = rig.events(&call_id).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["queued", "dialing", "answered", "ended"]);
}

/// Every rejection the callee can give, and a ring timeout, each classified per DESIGN.md §5
/// from the real error; retryable ones are dialed again after the (shortened) delay up to
/// `max_attempts`, then one final webhook lists every attempt.
#[tokio::test(flavor = "multi_thread")]
async fn tel_outcomes_classified_and_retried_by_policy() {
    let mut rig = Rig::with(Peers::Telephony).await;
    for (k, v) in [
        ("CALLFLEET_RETRY__MAX_ATTEMPTS", "2"),
        ("CALLFLEET_RETRY__BUSY_DELAY_SECS", "1"),
        ("CALLFLEET_RETRY__UNAVAILABLE_DELAY_SECS", "1"),
        ("CALLFLEET_RETRY__NO_ANSWER_DELAY_SECS", "1"),
        ("CALLFLEET_RETRY__CARRIER_THROTTLED_DELAY_SECS", "1"),
        ("CALLFLEET_SIP__RINGING_TIMEOUT_SECS", "2"),
    ] {
        rig.fleet.set(k, v);
    }
    rig.start_ingress().await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);

    // (behaviour, outcome, SIP code, attempts)
    let cases = [
        (Behaviour::Reject(486), "busy", Some(486), 2),
        (Behaviour::Reject(480), "unavailable", Some(480), 2),
        (Behaviour::Reject(503), "carrier_throttled", Some(503), 2),
        (Behaviour::Ring, "no_answer", None, 2),
        (Behaviour::Reject(603), "declined", Some(603), 1),
        (Behaviour::Reject(404), "invalid_number", Some(404), 1),
        (Behaviour::Reject(403), "trunk_rejected", Some(403), 1),
    ];
    let mut calls = Vec::new();
    for (i, (behaviour, ..)) in cases.iter().enumerate() {
        let to = behaviour.number(i as u16);
        let body = json!({"destination": to, "account_code": "acct-outcomes"});
        calls.push((rig.dispatch(&body).await, to));
    }
    for ((call_id, to), (behaviour, outcome, code, attempts)) in calls.iter().zip(cases) {
        let hook = rig.summary_of(call_id, 90).await;
        let s = &hook["data"];
        assert_eq!(hook["type"], "call.failed", "{behaviour:?}: {hook}");
        assert_eq!(s["outcome"], outcome, "{behaviour:?}: {s}");
        assert_eq!(s["end_reason"], "dial_failed");
        assert_eq!(s["sip"]["code"], json!(code), "{behaviour:?}: {s}");
        let listed = s["attempts"].as_array().cloned().unwrap_or_default();
        assert_eq!(listed.len(), attempts, "{behaviour:?} lists every attempt: {s}");
        for (n, a) in listed.iter().enumerate() {
            assert_eq!(a["attempt"], n + 1);
            assert_eq!(a["outcome"], outcome);
        }
        assert_eq!(
            rig.callee().invites_to(to).len(),
            attempts,
            "{behaviour:?}: one INVITE per attempt"
        );
        let events = rig.events(call_id).await;
        let retries: Vec<&Value> = events
            .iter()
            .filter(|(k, _)| k == "retry_scheduled")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(retries.len(), attempts - 1, "{behaviour:?}: {events:?}");
        for r in retries {
            assert!(
                r["detail"]["next_attempt_at"].is_string(),
                "retry_scheduled names the time: {r}"
            );
        }
        let (_, state) = rig.get_call(call_id).await;
        assert_eq!(state["status"], "failed");
        assert_eq!(state["attempts"], attempts);
    }
    // Exactly one webhook per call: the final one.
    for (call_id, _) in &calls {
        let n = rig
            .sink
            .delivered()
            .iter()
            .filter(|r| r.json()["data"]["call_id"] == *call_id)
            .count();
        assert_eq!(n, 1, "{call_id}: one final webhook");
    }
    let _ = Duration::ZERO;
}
