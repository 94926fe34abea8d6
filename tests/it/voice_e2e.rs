//! The voice engine inside the real worker, on a real call: the fleet dials through
//! livekit-sip to a SIPp callee who says something (2 s of audio) and then listens; the worker
//! joins the call's room with the pure-Rust media transport and runs the session with the real
//! provider clients against local wire-protocol servers; the summary reaches the webhook with
//! a transcript, turn metrics and usage. The providers are the stand-ins the voice crate's own
//! tests use (`callfleet-standins`).

use callfleet_standins as support;

use std::time::Duration;

use callfleet_tests::{
    Behaviour, Fleet, NatsServer, Role, Telephony, WebhookSink, wait_consumer, wait_for,
};
use serde_json::{Value, json};
use support::{
    Rig,
    llm::LlmScript,
    stt::{self, at, dg_result},
    tts::{self, TtsScript},
};

#[tokio::test(flavor = "multi_thread")]
async fn e2e_voice_session_on_a_real_call() {
    let providers = Rig::start(
        vec![
            LlmScript::text(
                80,
                &[
                    "Hi, this is callfleet calling about your order. ",
                    "Goodbye!",
                ],
            )
            .with_tool("end_call", r#"{"reason":"done"}"#),
        ],
        stt::Flavor::Deepgram,
        // The callee's words (2 s of audio), final just after they stop.
        vec![
            at(1000, dg_result("Hello, who", false, false)),
            at(2300, dg_result("Hello, who is this?", true, true)),
        ],
        tts::Flavor::Cartesia,
        TtsScript {
            ttfb: Duration::from_millis(40),
            ms_per_char: 5,
        },
    )
    .await;
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
    assert_eq!(providers.llm.requests().len(), 1, "one LLM request");
    wait_for("the callee's BYE", Duration::from_secs(10), || async {
        (!callee.received("BYE").is_empty()).then_some(())
    })
    .await;
    assert_eq!(callee.invites_to(&to).len(), 1);
}
