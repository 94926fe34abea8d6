//! Real telephony: the fleet dials through livekit-sip to a SIPp callee on loopback.

use std::time::Duration;

use callfleet_tests::{Behaviour, Role, wait_for};
use serde_json::{Value, json};

use crate::rig::{FROM_NUMBER, Peers, Rig, seed_payload};

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
    let start: jiff::Timestamp = s["call_start"]
        .as_str()
        .expect("call_start")
        .parse()
        .expect("ts");
    let end: jiff::Timestamp = s["call_end"]
        .as_str()
        .expect("call_end")
        .parse()
        .expect("ts");
    let span = end.duration_since(start).as_secs_f64();
    assert!(
        (span - duration).abs() < 0.01,
        "duration is call_end - call_start: {span} vs {duration}"
    );

    let invites = rig.callee().invites_to(&to);
    assert_eq!(
        invites.len(),
        1,
        "one INVITE: {:?}",
        rig.callee().requests()
    );
    let invite = &invites[0];
    assert_eq!(invite.header("X-Account-Code"), Some("em-tech-01"));
    let from = invite.header("From").unwrap_or_default();
    assert!(
        from.contains("\"LiveKit Nehos Hosted\""),
        "display name in From: {from}"
    );
    assert!(
        from.contains("sip:+61123456789@"),
        "caller number in From: {from}"
    );

    let (_, call) = rig.get_call(&call_id).await;
    assert_eq!(call["status"], "ended");
    let kinds: Vec<String> = rig
        .events(&call_id)
        .await
        .into_iter()
        .map(|(k, _)| k)
        // `ringing` shows only if the 180 lasted long enough to be seen (this callee answers
        // at once).
        .filter(|k| k != "ringing")
        .collect();
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
        // Long enough for the worker's 500 ms polls to see livekit-sip's `ringing` on a busy
        // machine (`ringing` is only livekit-sip's word after a 180, never `dialing`).
        ("CALLFLEET_SIP__RINGING_TIMEOUT_SECS", "4"),
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
    // The request's own policy beats the configured one (2 attempts): 3 attempts here.
    let override_to = Behaviour::Reject(486).number(99);
    let override_id = rig
        .dispatch(&json!({
            "destination": override_to, "account_code": "acct-outcomes",
            "retry": {"max_attempts": 3, "delay_seconds": {"busy": 1}},
        }))
        .await;
    for ((call_id, to), (behaviour, outcome, code, attempts)) in calls.iter().zip(cases) {
        let hook = rig.summary_of(call_id, 90).await;
        let s = &hook["data"];
        assert_eq!(hook["type"], "call.failed", "{behaviour:?}: {hook}");
        assert_eq!(s["outcome"], outcome, "{behaviour:?}: {s}");
        assert_eq!(s["end_reason"], "dial_failed");
        assert_eq!(s["sip"]["code"], json!(code), "{behaviour:?}: {s}");
        let listed = s["attempts"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            listed.len(),
            attempts,
            "{behaviour:?} lists every attempt: {s}"
        );
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
        if behaviour == Behaviour::Ring {
            let ringing = events.iter().filter(|(k, _)| k == "ringing").count();
            assert_eq!(ringing, attempts, "a ringing event per attempt: {events:?}");
        }
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
    let hook = rig.summary_of(&override_id, 90).await;
    assert_eq!(
        hook["data"]["attempts"].as_array().map(Vec::len),
        Some(3),
        "{hook}"
    );
    assert_eq!(rig.callee().invites_to(&override_to).len(), 3);

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

    // The exhausted busy call was dead-lettered with its reason; the declined one was not.
    let (busy_id, busy_to) = &calls[0];
    let (code, out, err) = rig.fleet.run(&["dlq", "list"], &[]);
    assert_eq!(code, Some(0), "{err}");
    let line = out
        .lines()
        .find(|l| l.contains(&format!("calls.dlq.{busy_id}")))
        .unwrap_or_else(|| panic!("exhausted job in the DLQ: {out}"));
    assert!(line.contains("retries exhausted: busy"), "{line}");
    assert!(
        !out.contains(&format!("calls.dlq.{}", calls[4].0)),
        "final outcomes are not dead letters: {out}"
    );

    // Replaying it dials again from attempt 1, and its new summary is delivered too.
    let seq = line.split('\t').next().unwrap_or_default();
    let (code, out, err) = rig.fleet.run(&["dlq", "replay", seq], &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    wait_for(
        "the replayed call's webhook",
        Duration::from_secs(60),
        || async {
            (rig.sink
                .delivered()
                .iter()
                .filter(|r| r.json()["data"]["call_id"] == *busy_id)
                .count()
                == 2)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        rig.callee().invites_to(busy_to).len(),
        4,
        "two more attempts after the replay"
    );
}

/// A call waiting for its retry is cancelled: the scheduled retry never fires, the callee sees
/// no further INVITE, and a final `cancelled` summary lists the attempt made.
#[tokio::test(flavor = "multi_thread")]
async fn tel_cancelled_scheduled_retry_is_never_dialed() {
    let mut rig = Rig::with(Peers::Telephony).await;
    rig.fleet.set("CALLFLEET_RETRY__BUSY_DELAY_SECS", "3");
    rig.start_ingress().await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);
    let to = Behaviour::Reject(486).number(7);
    let call_id = rig
        .dispatch(&json!({"destination": to, "account_code": "acct-cancel"}))
        .await;
    let retry = rig.wait_event(&call_id, "retry_scheduled", 30).await;
    let due: jiff::Timestamp = retry["detail"]["next_attempt_at"]
        .as_str()
        .expect("next_attempt_at")
        .parse()
        .expect("timestamp");

    let (status, body) = rig
        .call_api(reqwest::Method::DELETE, &format!("/calls/{call_id}"), None)
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "cancelling");

    let hook = rig.summary_of(&call_id, 30).await;
    let s = &hook["data"];
    assert_eq!(s["outcome"], "cancelled", "{s}");
    assert_eq!(s["end_reason"], "cancelled");
    assert_eq!(s["attempts"].as_array().map(Vec::len), Some(1), "{s}");
    assert_eq!(s["attempts"][0]["outcome"], "busy");

    // Watch past the time the retry was due (plus the schedule's one-second rounding).
    let watch_until = due + jiff::SignedDuration::from_secs(3);
    callfleet_tests::wait_for(
        "the retry's due time to pass",
        Duration::from_secs(30),
        || async { (jiff::Timestamp::now() > watch_until).then_some(()) },
    )
    .await;
    assert_eq!(
        rig.callee().invites_to(&to).len(),
        1,
        "never dialed after the cancel: {:?}",
        callfleet_tests::summarize(&rig.callee().requests())
    );
    rig.wait_jobs_acked().await;
    let (_, state) = rig.get_call(&call_id).await;
    assert_eq!(state["status"], "failed");
    assert_eq!(state["last_outcome"], "cancelled");
    let (status, body) = rig
        .call_api(reqwest::Method::DELETE, &format!("/calls/{call_id}"), None)
        .await;
    assert_eq!(status, 409, "an ended call cannot be cancelled: {body}");
}

/// DELETE on a live call hangs it up: the callee gets a BYE, the summary says `cancelled`.
#[tokio::test(flavor = "multi_thread")]
async fn tel_delete_hangs_up_a_live_call() {
    let rig = telephony_rig().await;
    let to = Behaviour::AnswerAndStay.number(8);
    let call_id = rig
        .dispatch(&json!({"destination": to, "account_code": "acct-hangup"}))
        .await;
    rig.wait_event(&call_id, "answered", 30).await;
    let (status, body) = rig
        .call_api(reqwest::Method::DELETE, &format!("/calls/{call_id}"), None)
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "hanging_up");
    let hook = rig.summary_of(&call_id, 30).await;
    let s = &hook["data"];
    assert_eq!(s["outcome"], "answered", "{s}");
    assert_eq!(s["end_reason"], "cancelled", "{s}");
    assert!(s["call_duration_seconds"].as_f64().is_some());
    callfleet_tests::wait_for("the callee's BYE", Duration::from_secs(10), || async {
        (!rig.callee().received("BYE").is_empty()).then_some(())
    })
    .await;
    let (status, _) = rig
        .call_api(reqwest::Method::DELETE, "/calls/no-such-call", None)
        .await;
    assert_eq!(status, 404);
}

/// Transfer: the callee receives a REFER to `tel:+<E164>`; the call ends as `transferred`.
#[tokio::test(flavor = "multi_thread")]
async fn tel_transfer_sends_refer_to_e164() {
    let rig = telephony_rig().await;
    let to = Behaviour::AcceptRefer.number(9);
    let mut body = seed_payload();
    body["destination"] = json!(to);
    let call_id = rig.dispatch(&body).await;
    let path = format!("/calls/{call_id}/transfer");

    rig.wait_event(&call_id, "answered", 30).await;
    let (status, resp) = rig
        .call_api(
            reqwest::Method::POST,
            &path,
            Some(json!({"transfer_target": 12})),
        )
        .await;
    assert_eq!(status, 422, "{resp}");
    assert_eq!(resp["fields"][0]["field"], "transfer_target");

    // No target given: the call's own transfer_target from the seed payload (61731071901).
    let (status, resp) = rig.call_api(reqwest::Method::POST, &path, None).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["status"], "transferred");

    let refers = rig.callee().received("REFER");
    assert_eq!(refers.len(), 1, "{:?}", rig.callee().requests());
    assert_eq!(refers[0].header("Refer-To"), Some("tel:+61731071901"));
    let transferred = rig.wait_event(&call_id, "transferred", 10).await;
    assert_eq!(transferred["detail"]["to"], "tel:+61731071901");
    let hook = rig.summary_of(&call_id, 30).await;
    assert_eq!(hook["data"]["end_reason"], "transferred", "{hook}");
    let (status, _) = rig.call_api(reqwest::Method::POST, &path, None).await;
    assert_eq!(status, 409, "an ended call cannot be transferred");
}

/// The worker enforces `max_call_duration` itself (SIP does not always): a callee who never
/// hangs up is hung up on, with reason `max_duration`.
#[tokio::test(flavor = "multi_thread")]
async fn tel_max_call_duration_enforced_by_the_worker() {
    let mut rig = Rig::with(Peers::Telephony).await;
    rig.fleet
        .set("CALLFLEET_AGENT__MAX_CALL_DURATION_SECS", "2");
    rig.fleet.set("SIP_DISPLAY_NAME", "Callfleet Support");
    rig.start_ingress().await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);
    let to = Behaviour::AnswerAndStay.number(10);
    let call_id = rig
        .dispatch(&json!({"destination": to, "account_code": "acct-max"}))
        .await;
    let hook = rig.summary_of(&call_id, 30).await;
    let s = &hook["data"];
    assert_eq!(s["end_reason"], "max_duration", "{s}");
    let duration = seconds(&s["call_duration_seconds"]);
    assert!((1.5..6.0).contains(&duration), "about 2 s: {duration}");
    // No caller fields on the request: the configured defaults, never the destination.
    let invite = &rig.callee().invites_to(&to)[0];
    let from = invite.header("From").unwrap_or_default();
    assert!(
        from.contains("\"Callfleet Support\""),
        "SIP_DISPLAY_NAME: {from}"
    );
    assert!(
        from.contains(&format!("sip:{FROM_NUMBER}@")),
        "SIP_FROM_NUMBER: {from}"
    );
    assert!(!from.contains(&to), "never the destination: {from}");
    assert_eq!(invite.header("X-Account-Code"), Some("acct-max"));
    callfleet_tests::wait_for("the callee's BYE", Duration::from_secs(10), || async {
        (rig.callee().received("BYE").len() == 1).then_some(())
    })
    .await;
}
