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
