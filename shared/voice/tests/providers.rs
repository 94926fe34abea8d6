//! The other provider sets over their wire protocols: AssemblyAI v3 -> Groq (OpenAI-compatible)
//! -> ElevenLabs stream-input, and Sarvam STT -> OpenAI -> Sarvam TTS.

mod common;

use callfleet_standins as support;

use std::time::Duration;

use callfleet_voice::{EndReason, SessionEvent};
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
        common::engine_options(),
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

/// Sarvam end to end: callee speech -> Sarvam STT (VAD events, one final transcript per
/// utterance) -> OpenAI-compatible LLM -> Sarvam TTS (config, text, flush; linear16 audio and
/// a `final` event) -> agent audio.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sarvam_stt_openai_sarvam_tts_turn() {
    const ASKED: &str = "आपकी दुकान कब खुलती है?";
    const REPLY: &str = "हम सुबह नौ बजे खुलते हैं। शाम पाँच बजे बंद करते हैं।";
    let rig = Rig::start(
        vec![LlmScript::text(
            50,
            &["हम सुबह नौ बजे ", "खुलते हैं। ", "शाम पाँच बजे बंद करते हैं।"],
        )],
        stt::Flavor::Sarvam,
        vec![
            at(400, stt::sarvam_event("START_SPEECH")),
            at(1300, stt::sarvam_event("END_SPEECH")),
            at(1350, stt::sarvam_data(ASKED)),
        ],
        tts::Flavor::Sarvam,
        TtsScript {
            ttfb: Duration::from_millis(30),
            ms_per_char: 10,
        },
    )
    .await;
    let session = rig.session(
        json!({"llm": "openai/gpt-4o-mini", "stt": "sarvam/saarika:v2.5:hi-IN",
               "tts": {"provider": "sarvam", "model": "bulbul:v2", "voice": "arya"},
               "language": "hi", "preemptive_generation": "off"}),
        common::engine_options(),
    );
    let (mut callee, io) = Callee::start(
        vec![Seg::Silence(300), Seg::Speech(1000)],
        Duration::from_secs(10),
    );
    let mut run = support::run(session, io);
    let turn = run
        .wait_event("turn metrics", Duration::from_secs(8), |e| {
            matches!(e, SessionEvent::TurnMetrics(_))
        })
        .await;
    callee.hangup();
    let report = run.report(Duration::from_secs(5)).await;
    let SessionEvent::TurnMetrics(m) = turn else {
        unreachable!()
    };

    assert_eq!(report.end_reason, EndReason::CalleeHungUp);
    assert_eq!(report.transcript.len(), 2, "{:#?}", report.transcript);
    assert_eq!(report.transcript[0].text, ASKED);
    assert_eq!(report.transcript[1].text, REPLY);
    assert!(!report.transcript[1].interrupted);
    // The whole reply was played: 10 ms per character at 24 kHz.
    let sent: usize = lock(&callee.log)
        .sent
        .iter()
        .map(|(_, f)| f.samples.len())
        .sum();
    let expected = REPLY.chars().count() * 240;
    assert!(
        sent >= expected && sent < expected + 480,
        "sent {sent} samples, expected ~{expected}"
    );
    // Metrics and usage.
    assert!(m.end_of_utterance_delay_ms.is_some(), "{m:?}");
    assert!(m.llm_ttft_ms.is_some_and(|t| t >= 45.0), "{m:?}");
    assert!(m.tts_ttfb_ms.is_some_and(|t| t >= 25.0), "{m:?}");
    assert!(m.e2e_latency_ms.is_some(), "{m:?}");
    assert_eq!(report.usage.stt[0].provider, "sarvam");
    assert_eq!(report.usage.tts[0].provider, "sarvam");
    assert!(report.usage.stt[0].audio_seconds > 1.0);
    assert_eq!(report.usage.tts[0].characters, REPLY.chars().count() as u64);

    // STT wire format.
    let sv = &rig.stt.connections()[0];
    assert_eq!(sv.api_key.as_deref(), Some("sarvam-test"));
    let uri = url::Url::parse(&format!("ws://h{}", sv.uri)).expect("uri");
    assert_eq!(uri.path(), "/speech-to-text/ws");
    let q: Vec<(String, String)> = uri.query_pairs().into_owned().collect();
    for (k, v) in [
        ("language-code", "hi-IN"),
        ("model", "saarika:v2.5"),
        ("sample_rate", "16000"),
        ("input_audio_codec", "pcm_s16le"),
        ("vad_signals", "true"),
    ] {
        assert!(q.contains(&(k.into(), v.into())), "{k}={v} missing: {q:?}");
    }
    let audio = sv.first_audio.as_ref().expect("audio messages");
    assert_eq!(audio["audio"]["encoding"], json!("audio/wav"));
    assert_eq!(audio["audio"]["sample_rate"], json!(16000));
    assert!(
        sv.audio_messages > 20,
        "{} audio messages",
        sv.audio_messages
    );

    // TTS wire format: one connection for the reply.
    let conns = rig.tts.connections();
    assert_eq!(conns.len(), 1);
    let tts_conn = &conns[0];
    let uri = url::Url::parse(&format!("ws://h{}", tts_conn.uri)).expect("uri");
    assert_eq!(uri.path(), "/text-to-speech/ws");
    let q: Vec<(String, String)> = uri.query_pairs().into_owned().collect();
    assert!(q.contains(&("model".into(), "bulbul:v2".into())), "{q:?}");
    assert!(q.contains(&("send_completion_event".into(), "true".into())));
    assert_eq!(
        tts_conn
            .headers
            .get("api-subscription-key")
            .map(String::as_str),
        Some("sarvam-test")
    );
    let config = &tts_conn.messages[0];
    assert_eq!(config["type"], json!("config"));
    assert_eq!(config["data"]["language_code"], json!("hi-IN"));
    assert_eq!(config["data"]["speaker"], json!("arya"));
    assert_eq!(config["data"]["speech_sample_rate"], json!(24000));
    assert_eq!(config["data"]["output_audio_codec"], json!("linear16"));
    assert!(
        tts_conn.messages[1..tts_conn.messages.len() - 1]
            .iter()
            .all(|m| m["type"] == json!("text"))
    );
    assert_eq!(tts_conn.messages.last(), Some(&json!({"type": "flush"})));
    assert_eq!(rig.tts.texts().concat(), REPLY);

    let text = serde_json::to_string(&report).expect("serialise");
    assert!(!text.contains("sarvam-test"), "key leaked");
}
