//! The other provider set over its wire protocols: AssemblyAI v3 -> Groq (OpenAI-compatible)
//! -> ElevenLabs stream-input.

mod support;

use std::time::Duration;

use callfleet_voice::{EngineOptions, SessionEvent};
use serde_json::json;
use support::{
    Rig,
    callee::{Callee, Seg, lock},
    llm::LlmScript,
    stt::{self, aai_turn, at},
    tts::{self, TtsScript},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assemblyai_groq_elevenlabs_turn() {
    let rig = Rig::start(
        vec![LlmScript::text(50, &["I'm well, ", "thanks for asking."])],
        stt::Flavor::AssemblyAi,
        vec![
            at(800, aai_turn(0, "hello there", false, "")),
            at(
                1400,
                aai_turn(
                    0,
                    "hello there how are you",
                    true,
                    "hello there how are you",
                ),
            ),
        ],
        tts::Flavor::ElevenLabs,
        TtsScript {
            ttfb: Duration::from_millis(20),
            ms_per_char: 10,
        },
    )
    .await;
    let session = rig.session(
        json!({"llm": "groq/llama-3.3-70b-versatile", "stt": "assemblyai/universal-streaming:en",
               "tts": {"provider": "elevenlabs", "model": "eleven_flash_v2_5", "voice": "el-v1"}}),
        EngineOptions::default(),
    );
    let (mut callee, io) = Callee::start(
        vec![Seg::Silence(300), Seg::Speech(1000)],
        Duration::from_secs(10),
    );
    let mut run = support::run(session, io);
    run.wait_event("turn metrics", Duration::from_secs(8), |e| {
        matches!(e, SessionEvent::TurnMetrics(_))
    })
    .await;
    callee.hangup();
    let report = run.report(Duration::from_secs(5)).await;

    assert_eq!(report.transcript[0].text, "hello there how are you");
    assert_eq!(report.transcript[1].text, "I'm well, thanks for asking.");
    assert!(!lock(&callee.log).sent.is_empty());
    assert_eq!(report.usage.llm[0].provider, "groq");
    assert_eq!(report.usage.stt[0].provider, "assemblyai");
    assert_eq!(report.usage.tts[0].provider, "elevenlabs");

    let req = &rig.llm.requests()[0];
    assert_eq!(req.auth.as_deref(), Some("Bearer gsk-test"));
    assert_eq!(req.body["model"], json!("llama-3.3-70b-versatile"));
    let aai = &rig.stt.connections()[0];
    assert_eq!(aai.auth.as_deref(), Some("aai-test"));
    for p in [
        "sample_rate=16000",
        "encoding=pcm_s16le",
        "speech_model=universal-streaming-english",
    ] {
        assert!(aai.uri.contains(p), "{p} missing from {}", aai.uri);
    }
    let el = &rig.tts.connections()[0];
    assert!(
        el.uri.starts_with("/v1/text-to-speech/el-v1/stream-input?"),
        "{}",
        el.uri
    );
    assert!(
        el.uri.contains("model_id=eleven_flash_v2_5") && el.uri.contains("output_format=pcm_24000")
    );
    assert_eq!(
        el.headers.get("xi-api-key").map(String::as_str),
        Some("xi-test")
    );
    assert_eq!(
        el.messages[0]["text"],
        json!(" "),
        "stream-input opens with a single space"
    );
    assert_eq!(
        el.messages.last().map(|m| m["text"].clone()),
        Some(json!(""))
    );
}
