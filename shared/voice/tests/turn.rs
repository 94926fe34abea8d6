//! A full turn over the real provider clients and local wire-protocol servers: callee speech
//! -> Deepgram -> OpenAI-compatible SSE -> Cartesia -> agent audio out.

mod common;

use callfleet_standins as support;

use std::time::Duration;

use callfleet_voice::{EndReason, SessionEvent, metrics::SpeakerRole};
use serde_json::json;
use support::{
    Rig,
    callee::{Callee, Seg},
    llm::LlmScript,
    stt::{self, at, dg_result},
    tts::{self, TtsScript},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_turn_deepgram_openai_cartesia() {
    let rig = Rig::start(
        vec![LlmScript::text(
            100,
            &["We are open ", "nine to five. ", "See you soon."],
        )],
        stt::Flavor::Deepgram,
        vec![
            at(900, dg_result("what are your", false, false)),
            at(1350, dg_result("What are your opening hours?", true, true)),
        ],
        tts::Flavor::Cartesia,
        TtsScript {
            ttfb: Duration::from_millis(50),
            ms_per_char: 10,
        },
    )
    .await;
    let session = rig.session(
        json!({"llm": "openai/gpt-4o-mini", "stt": "deepgram/nova-3:en", "tts": "cartesia/sonic-3:voice-abc",
               "preemptive_generation": "off", "prompt": "Be brief."}),
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

    eprintln!("{m:?}");
    assert_eq!(report.end_reason, EndReason::CalleeHungUp);
    // Transcript: the callee's question, then the whole reply.
    assert_eq!(report.transcript.len(), 2, "{:#?}", report.transcript);
    assert_eq!(report.transcript[0].role, SpeakerRole::User);
    assert_eq!(report.transcript[0].text, "What are your opening hours?");
    assert_eq!(report.transcript[1].role, SpeakerRole::Assistant);
    assert_eq!(
        report.transcript[1].text,
        "We are open nine to five. See you soon."
    );
    assert!(!report.transcript[1].interrupted);
    assert!(report.transcript[0].ended_at <= report.transcript[1].started_at);

    // Agent audio came out of send(): the whole reply (10 ms per character at 24 kHz).
    let sent: usize = support::callee::lock(&callee.log)
        .sent
        .iter()
        .map(|(_, f)| f.samples.len())
        .sum();
    let expected = "We are open nine to five. See you soon.".len() * 240;
    assert!(
        sent >= expected && sent < expected + 480,
        "sent {sent} samples, expected ~{expected}"
    );

    // Per-turn metrics.
    assert_eq!(m.turn, 1);
    assert_eq!(m.preemptive.as_deref(), Some("none"));
    let eou = m.end_of_utterance_delay_ms.expect("eou");
    assert!(
        (450.0..1200.0).contains(&eou),
        "end of utterance delay {eou}"
    );
    let ttft = m.llm_ttft_ms.expect("ttft");
    assert!((95.0..600.0).contains(&ttft), "ttft {ttft}");
    let ttfb = m.tts_ttfb_ms.expect("ttfb");
    assert!((45.0..500.0).contains(&ttfb), "ttfb {ttfb}");
    let e2e = m.e2e_latency_ms.expect("e2e");
    assert!(e2e > eou + ttft, "e2e {e2e} covers eou {eou} + ttft {ttft}");
    assert!(m.transcription_delay_ms.is_some());

    // Usage.
    assert_eq!(report.usage.llm[0].prompt_tokens, 42);
    assert!(report.usage.llm[0].completion_tokens > 0);
    assert_eq!(
        report.usage.tts[0].characters,
        "We are open nine to five. See you soon.".len() as u64
    );
    assert!(report.usage.stt[0].audio_seconds > 1.0);

    // Wire formats as the providers document them.
    let reqs = rig.llm.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].auth.as_deref(), Some("Bearer sk-test-openai"));
    assert_eq!(reqs[0].body["stream"], json!(true));
    assert_eq!(reqs[0].body["stream_options"]["include_usage"], json!(true));
    assert_eq!(reqs[0].body["model"], json!("gpt-4o-mini"));
    assert_eq!(
        reqs[0].body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(reqs[0].last_user(), "What are your opening hours?");
    assert_eq!(
        reqs[0].body["tools"][0]["function"]["name"],
        json!("end_call")
    );
    let dg = &rig.stt.connections()[0];
    assert_eq!(dg.auth.as_deref(), Some("Token dg-test"));
    for p in [
        "model=nova-3",
        "encoding=linear16",
        "sample_rate=16000",
        "interim_results=true",
        "language=en",
        "endpointing=",
    ] {
        assert!(dg.uri.contains(p), "{p} missing from {}", dg.uri);
    }
    let car = &rig.tts.connections()[0];
    assert_eq!(
        car.headers.get("authorization").map(String::as_str),
        Some("Bearer sk_car_test")
    );
    assert!(car.headers.contains_key("cartesia-version"));
    let first = &car.messages[0];
    assert_eq!(first["voice"], json!({"mode": "id", "id": "voice-abc"}));
    assert_eq!(first["model_id"], json!("sonic-3"));
    assert_eq!(
        first["output_format"],
        json!({"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000})
    );
    assert_eq!(first["continue"], json!(true));
    let last = car.messages.last().expect("messages");
    assert_eq!(
        (last["transcript"].as_str(), last["continue"].as_bool()),
        (Some(""), Some(false))
    );

    // The report serialises, with no secret in it.
    let text = serde_json::to_string(&report).expect("serialise");
    for secret in ["sk-test-openai", "dg-test", "sk_car_test"] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
}
