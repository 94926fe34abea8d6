//! Faults during real calls: workers killed while ringing and while answered, nats-server
//! restarted mid-call, SIGTERM during a held call, and the same request published twice.

use std::time::Duration;

use callfleet_tests::{Behaviour, Role, summarize, wait_consumer, wait_for};
use serde_json::{Value, json};

use crate::rig::{Peers, Rig};

async fn state_of(rig: &Rig, call_id: &str) -> Value {
    rig.get_call(call_id).await.1
}

/// kill -9 while the callee rings: the next worker finds the SIP leg still ringing and follows
/// it instead of dialing again; when the ring ends unanswered it closes the call as
/// `worker_lost`. One INVITE in all.
#[tokio::test(flavor = "multi_thread")]
async fn fault_kill9_while_ringing_never_redials() {
    let mut rig = Rig::fast_takeover().await;
    rig.fleet.set("CALLFLEET_SIP__RINGING_TIMEOUT_SECS", "8");
    rig.start_agent("agent-a");
    let to = Behaviour::Ring.number(21);
    let call_id = rig
        .dispatch(&json!({"destination": to, "account_code": "acct-kill-ring"}))
        .await;
    wait_for("the INVITE", Duration::from_secs(30), || async {
        (!rig.callee().invites_to(&to).is_empty()).then_some(())
    })
    .await;
    rig.fleet.kill9(Role::Agent);
    rig.start_agent("agent-b");

    let hook = rig.summary_of(&call_id, 60).await;
    let s = &hook["data"];
    assert_eq!(s["end_reason"], "worker_lost", "{s}");
    assert_eq!(
        s["outcome"], "failed",
        "never answered, never claimed as answered: {s}"
    );
    assert!(s["call_start"].is_null(), "{s}");
    assert_eq!(s["worker_id"], "agent-b");
    let error = s["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("while ringing") && error.contains("not re-dialed"),
        "{error}"
    );
    let events = rig.event_kinds(&call_id).await;
    assert!(!events.contains(&"answered".to_owned()), "{events:?}");
    assert_eq!(
        rig.callee().invites_to(&to).len(),
        1,
        "one INVITE: {:?}",
        summarize(&rig.callee().requests())
    );
}

/// kill -9 while answered: the next worker finds the callee still in the room and resumes
/// holding the call; an operator's hang-up then ends it. One INVITE, an honest summary.
#[tokio::test(flavor = "multi_thread")]
async fn fault_kill9_while_answered_resumes_without_redial() {
    let mut rig = Rig::fast_takeover().await;
    rig.start_agent("agent-a");
    let to = Behaviour::AnswerAndStay.number(22);
    let call_id = rig
        .dispatch(&json!({"destination": to, "account_code": "acct-kill-answered"}))
        .await;
    rig.wait_event(&call_id, "answered", 30).await;
    rig.fleet.kill9(Role::Agent);
    rig.start_agent("agent-b");
    wait_for(
        "agent-b to take the call over",
        Duration::from_secs(60),
        || async {
            let s = state_of(&rig, &call_id).await;
            (s["worker_id"] == "agent-b" && s["status"] == "in_call").then_some(())
        },
    )
    .await;
    let (status, body) = rig
        .call_api(reqwest::Method::DELETE, &format!("/calls/{call_id}"), None)
        .await;
    assert_eq!(
        status, 202,
        "the resumed worker answers control requests: {body}"
    );

    let hook = rig.summary_of(&call_id, 30).await;
    let s = &hook["data"];
    assert_eq!(s["outcome"], "answered", "{s}");
    assert_eq!(s["end_reason"], "cancelled", "{s}");
    assert_eq!(s["worker_id"], "agent-b");
    let attempt = &s["attempts"][0];
    assert!(
        attempt["error"]
            .as_str()
            .unwrap_or_default()
            .contains("resumed by another worker"),
        "{s}"
    );
    assert!(
        s["call_start"].is_string(),
        "the answer time survives the takeover: {s}"
    );
    assert_eq!(rig.callee().invites_to(&to).len(), 1);
    assert_eq!(rig.callee().received("BYE").len(), 1, "hung up once");
}

/// nats-server restarts during a live call: the call goes on, and its summary is delivered
/// once NATS is back.
#[tokio::test(flavor = "multi_thread")]
async fn fault_nats_restart_during_live_call() {
    let mut rig = Rig::with(Peers::Telephony).await;
    rig.start_ingress().await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);
    let to = Behaviour::AnswerThenHangUp(4).number(23);
    let call_id = rig
        .dispatch(&json!({"destination": to, "account_code": "acct-nats-restart"}))
        .await;
    rig.wait_event(&call_id, "answered", 30).await;
    rig.nats.restart().await;

    let hook = rig.summary_of(&call_id, 60).await;
    let s = &hook["data"];
    assert_eq!(s["outcome"], "answered", "{s}");
    assert_eq!(s["end_reason"], "callee_hangup", "{s}");
    let duration = s["call_duration_seconds"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (2.5..10.0).contains(&duration),
        "the call ran its course: {duration}"
    );
    assert_eq!(rig.callee().invites_to(&to).len(), 1);
}

/// SIGTERM during a held call: the worker stops taking jobs, waits out its grace period, then
/// hangs up with reason `shutdown` and publishes the summary before exiting 0.
#[tokio::test(flavor = "multi_thread")]
async fn fault_sigterm_during_held_call_ends_cleanly() {
    let mut rig = Rig::with(Peers::Telephony).await;
    rig.fleet.set("CALLFLEET_AGENT__DRAIN_GRACE_SECS", "1");
    rig.start_ingress().await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);
    let to = Behaviour::AnswerAndStay.number(24);
    let call_id = rig
        .dispatch(&json!({"destination": to, "account_code": "acct-sigterm"}))
        .await;
    rig.wait_event(&call_id, "answered", 30).await;
    let codes = rig.fleet.sigterm(Role::Agent);
    assert_eq!(codes, [Some(0)], "clean exit");

    let hook = rig.summary_of(&call_id, 30).await;
    let s = &hook["data"];
    assert_eq!(s["outcome"], "answered", "{s}");
    assert_eq!(s["end_reason"], "shutdown", "{s}");
    assert!(s["call_end"].is_string());
    wait_for("the callee's BYE", Duration::from_secs(10), || async {
        (rig.callee().received("BYE").len() == 1).then_some(())
    })
    .await;
    assert_eq!(state_of(&rig, &call_id).await["status"], "ended");
}

/// The same request published twice inside the dedup window (same `Nats-Msg-Id`) dials once.
#[tokio::test(flavor = "multi_thread")]
async fn fault_duplicate_publish_dials_once() {
    let mut rig = Rig::with(Peers::Telephony).await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);
    wait_consumer(&rig.nats.url(), "CALL_JOBS", "agents").await;
    let to = Behaviour::AnswerThenHangUp(1).number(25);
    let body = json!({"call_id": "dup-1", "destination": to, "account_code": "acct-dup"});
    let js = async_nats::jetstream::new(rig.nats.client().await);
    for _ in 0..2 {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", "dup-1");
        js.publish_with_headers("calls.dispatch.default", headers, body.to_string().into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
    let hook = rig.summary_of("dup-1", 30).await;
    assert_eq!(hook["data"]["outcome"], "answered");
    assert_eq!(rig.callee().invites_to(&to).len(), 1);
    rig.wait_jobs_acked().await;
}

/// The SIP service is down (livekit-sip killed): dials fail as `infrastructure` and are retried
/// without spending an attempt, so with `max_attempts = 1` the call still goes through once
/// livekit-sip is back.
#[tokio::test(flavor = "multi_thread")]
async fn fault_sip_service_down_retries_without_spending_attempts() {
    let mut rig = Rig::with(Peers::Telephony).await;
    for (k, v) in [
        ("CALLFLEET_RETRY__MAX_ATTEMPTS", "1"),
        ("CALLFLEET_RETRY__MAX_INFRA_RETRIES", "20"),
        ("CALLFLEET_RETRY__INFRA_DELAY_SECS", "1"),
        ("CALLFLEET_LIVEKIT__REQUEST_TIMEOUT_SECS", "3"),
    ] {
        rig.fleet.set(k, v);
    }
    rig.start_ingress().await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);
    rig.telephony.as_mut().expect("telephony").stop_sip();

    let to = Behaviour::AnswerThenHangUp(1).number(26);
    let call_id = rig
        .dispatch(&json!({"destination": to, "account_code": "acct-sip-down"}))
        .await;
    let retry = rig.wait_event(&call_id, "retry_scheduled", 60).await;
    assert_eq!(retry["detail"]["outcome"], "infrastructure", "{retry}");
    assert_eq!(retry["detail"]["next_attempt"], 1, "same attempt: {retry}");
    assert!(
        rig.callee().requests().is_empty(),
        "nothing reached the callee"
    );

    rig.telephony.as_mut().expect("telephony").start_sip().await;
    let hook = rig.summary_of(&call_id, 90).await;
    let s = &hook["data"];
    assert_eq!(s["outcome"], "answered", "{s}");
    assert_eq!(
        s["attempt"], 1,
        "infrastructure retries spend no attempt: {s}"
    );
    let attempts = s["attempts"].as_array().cloned().unwrap_or_default();
    assert!(
        attempts.len() >= 2
            && attempts[..attempts.len() - 1]
                .iter()
                .all(|a| a["outcome"] == "infrastructure" && a["attempt"] == 1),
        "the infrastructure failures are listed under attempt 1: {s}"
    );
    assert_eq!(rig.callee().invites_to(&to).len(), 1);
}
