//! The voice engine inside the real worker, on a real call: the fleet dials through
//! livekit-sip to a SIPp callee who says something (2 s of audio) and then listens; the worker
//! joins the call's room with the pure-Rust media transport and runs the session with the real
//! provider clients against local wire-protocol servers; the summary reaches the webhook with
//! a transcript, turn metrics, usage and its dead air (`first_agent_audio_ms`). The providers
//! are the stand-ins the voice crate's own tests use (`callfleet-standins`).
//!
//! Then the default: with no `agent.voice_session` anywhere and no provider named in the
//! request, a campaign's call converses (and the campaign counts its first agent audio);
//! `false` holds a call silently as before; and a fleet without provider keys fails the call
//! before dialing, naming the fields.

use callfleet_standins as support;

use std::time::Duration;

use callfleet_tests::{
    Behaviour, Fleet, NatsServer, Role, Telephony, VOICE_SESSION, WebhookSink, wait_consumer,
    wait_for,
};
use serde_json::{Value, json};
use support::Rig;

/// The local providers: the callee's words heard, one reply, `end_call`.
async fn providers() -> Rig {
    Rig::hello_then_reply(
        &[
            "Hi, this is callfleet calling about your order. ",
            "Goodbye!",
        ],
        5,
    )
    .await
}

/// A conversed call's summary: the callee's words, the agent's reply, turns, usage, and dead
/// air measured from the answer (the callee speaks 2 s before the reply can start).
fn assert_conversed(s: &Value) {
    assert_eq!(s["outcome"], "answered", "{s}");
    assert_eq!(s["end_reason"], "agent_hangup", "the agent's end_call: {s}");
    let transcript = s["transcript"].as_array().cloned().unwrap_or_default();
    assert!(
        transcript
            .iter()
            .any(|t| t["role"] == "user" && t["text"] == "Hello, who is this?"),
        "the callee's words: {transcript:?}"
    );
    assert!(
        transcript
            .iter()
            .any(|t| t["role"] == "assistant"
                && t["text"].as_str().unwrap_or("").contains("callfleet")),
        "the agent's reply: {transcript:?}"
    );
    assert!(
        !s["turns"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .is_empty(),
        "turn metrics: {s}"
    );
    assert!(
        s["usage"]["tts"].as_array().is_some_and(|u| !u.is_empty()),
        "TTS characters counted: {s}"
    );
    let first = s["first_agent_audio_ms"].as_u64();
    assert!(
        first.is_some_and(|ms| (1_000..=30_000).contains(&ms)),
        "first agent audio after the callee's 2 s of words, within the call: {s}"
    );
    let (p50, p95) = (
        s["response_latency_ms"]["p50"].as_f64(),
        s["response_latency_ms"]["p95"].as_f64(),
    );
    assert!(
        p50.is_some_and(|p| (0.0..10_000.0).contains(&p)) && p50 <= p95,
        "response latency p50 <= p95: {s}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_voice_session_on_a_real_call() {
    let providers = providers().await;
    let tel = Telephony::start().await;
    let callee = tel.callee(&["+61299990000"]).await;
    let nats = NatsServer::start().await;
    let sink = WebhookSink::start().await;
    let mut env: Vec<(&str, String)> = vec![
        ("NATS_URL", nats.url()),
        ("SIP_TRUNK_ID", callee.trunk_id.clone()),
        ("SIP_FROM_NUMBER", "+61299990000".into()),
        ("N8N_WEBHOOK_URL", sink.url()),
        ("CALLFLEET_AGENT__VOICE_SESSION", "true".into()),
        ("CALLFLEET_AGENT__MEDIA_LOOPBACK", "true".into()),
        ("CALLFLEET_NOTIFIER__JITTER", "0".into()),
    ];
    env.extend(tel.livekit.fleet_env());
    for (k, v) in &providers.env {
        env.push((k.as_str(), v.clone()));
    }
    let mut fleet = Fleet::new(&env);
    fleet.start(Role::Agent);
    fleet.start(Role::Notifier);
    wait_consumer(&nats.url(), "CALL_JOBS", "agents").await;

    let to = Behaviour::SpeakOnce.number(1);
    let job = json!({
        "call_id": "voice-1", "destination": to, "account_code": "acct-voice",
        "llm": "openai/gpt-4o-mini", "stt": "deepgram/nova-3:en", "tts": "cartesia/sonic-3:voice-abc",
        "preemptive_generation": false, "prompt": "You call about an order. Be brief."
    });
    let js = async_nats::jetstream::new(nats.client().await);
    js.publish("calls.dispatch.default", job.to_string().into())
        .await
        .expect("publish")
        .await
        .expect("ack");

    let hook: Value = wait_for("the call's summary", Duration::from_secs(60), || async {
        sink.delivered()
            .into_iter()
            .map(|r| r.json())
            .find(|j| j["data"]["call_id"] == "voice-1")
    })
    .await;
    let s = &hook["data"];
    assert_conversed(s);
    eprintln!(
        "voice e2e: first agent audio {} ms after the answer, response latency {}",
        s["first_agent_audio_ms"], s["response_latency_ms"]
    );
    assert_eq!(providers.llm.requests().len(), 1, "one LLM request");
    wait_for("the callee's BYE", Duration::from_secs(10), || async {
        (!callee.received("BYE").is_empty()).then_some(())
    })
    .await;
    assert_eq!(callee.invites_to(&to).len(), 1);
}

/// No `agent.voice_session` anywhere and no provider in the request: a campaign's call
/// converses with the env's default providers, and the campaign counts its first agent audio.
/// `false` holds the next call silently, as before the default changed. Without provider keys
/// a call fails before dialing, with field-level reasons.
#[tokio::test(flavor = "multi_thread")]
async fn e2e_voice_is_the_default_false_holds_and_missing_keys_fail_before_dialing() {
    let providers = providers().await;
    let mut rig = crate::rig::Rig::with(crate::rig::Peers::Telephony).await;
    rig.fleet.voice_session_default();
    rig.fleet.set("CALLFLEET_AGENT__MEDIA_LOOPBACK", "true");
    for (k, v) in &providers.env {
        rig.fleet.set(k, v.clone());
    }
    assert!(
        !rig.fleet.env.contains_key(VOICE_SESSION),
        "the config default applies"
    );
    rig.start_ingress().await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);
    rig.fleet.start(Role::Campaigner);

    // 1. The default converses: a campaign of one, no provider named anywhere.
    let talk = Behaviour::SayHello.number(2);
    let (status, body) = rig
        .call_api(
            reqwest::Method::POST,
            "/campaigns",
            Some(json!({
                "id": "talks", "name": "Voice by default", "account_code": "acct-voice",
                "contacts": [{"destination": talk}],
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let hook = rig.summary_of("talks-1", 90).await;
    assert_conversed(&hook["data"]);
    assert!(
        hook["data"]["session_config"]["llm"].is_null(),
        "no provider named in the request: {hook}"
    );
    let view = wait_for(
        "the campaign's first-agent-audio count",
        Duration::from_secs(30),
        || async {
            let (_, view) = rig
                .call_api(reqwest::Method::GET, "/campaigns/talks", None)
                .await;
            (view["first_agent_audio"]["calls"] == 1).then_some(view)
        },
    )
    .await;
    let dead_air = &view["first_agent_audio"];
    let ms = hook["data"]["first_agent_audio_ms"].as_u64().unwrap_or(0);
    assert_eq!(
        dead_air["later_than_2s"],
        u64::from(ms > 2000),
        "{dead_air} for {ms} ms"
    );
    let p50 = dead_air["p50_ms"].as_u64().unwrap_or(0);
    assert!(
        p50 >= ms && p50 == dead_air["p95_ms"].as_u64().unwrap_or(0),
        "one call: p50 = p95 = the upper bound of its bucket: {dead_air} for {ms} ms"
    );

    // 2. `false` opts out: answered and held silently until the callee hangs up.
    rig.fleet.sigterm(Role::Agent);
    rig.fleet.set(VOICE_SESSION, "false");
    rig.fleet.start(Role::Agent);
    let held = rig
        .dispatch(&json!({"destination": Behaviour::AnswerThenHangUp(2).number(3), "account_code": "acct-voice"}))
        .await;
    let s = &rig.summary_of(&held, 60).await["data"];
    assert_eq!(s["outcome"], "answered", "{s}");
    assert_eq!(s["end_reason"], "callee_hangup", "{s}");
    assert_eq!(s["transcript"], json!([]), "no voice session: {s}");
    assert_eq!(s["turns"], json!([]), "{s}");
    assert!(s.get("first_agent_audio_ms").is_none(), "{s}");

    // 3. Voice on, no provider keys: the call fails before anyone's phone rings.
    rig.fleet.sigterm(Role::Agent);
    rig.fleet.voice_session_default();
    for k in providers.env.keys() {
        rig.fleet.env.remove(k);
    }
    rig.fleet.start(Role::Agent);
    let unreachable = Behaviour::AnswerThenHangUp(1).number(4);
    let failed = rig
        .dispatch(&json!({"destination": unreachable, "account_code": "acct-voice"}))
        .await;
    let s = &rig.summary_of(&failed, 60).await["data"];
    assert_eq!(s["outcome"], "invalid_request", "{s}");
    let error = s["error"].as_str().unwrap_or_default();
    for field in [
        "session_options.llm: OPENAI_API_KEY is not set",
        "session_options.stt: DEEPGRAM_API_KEY",
        "session_options.tts: CARTESIA_API_KEY",
    ] {
        assert!(error.contains(field), "{field} in {error}");
    }
    assert!(
        rig.callee().invites_to(&unreachable).is_empty(),
        "never dialed"
    );
}
