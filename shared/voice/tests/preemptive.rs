//! Preemptive generation: a speculative reply is reused when the transcript is unchanged, and
//! cancelled and regenerated when it changed.

mod common;

use callfleet_standins as support;

use std::time::Duration;

use callfleet_voice::SessionEvent;
use serde_json::json;
use support::{
    Rig,
    callee::{Callee, Seg},
    llm::LlmScript,
    stt::{self, at, dg_result},
    tts::{self, TtsScript},
    wait_for,
};

fn options() -> serde_json::Value {
    json!({"llm": "openai/gpt-4o-mini", "stt": "deepgram/nova-3", "tts": "cartesia", "preemptive_generation": "yes"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_transcript_reuses_the_speculative_reply() {
    const TTFT_MS: f64 = 200.0;
    let rig = Rig::start(
        vec![LlmScript::text(TTFT_MS as u64, &["We open at nine."])],
        stt::Flavor::Deepgram,
        vec![at(
            1350,
            dg_result("What are your opening hours?", true, true),
        )],
        tts::Flavor::Cartesia,
        TtsScript {
            ttfb: Duration::from_millis(20),
            ms_per_char: 10,
        },
    )
    .await;
    let session = rig.session(options(), common::engine_options());
    let (mut callee, io) = Callee::start(
        vec![Seg::Silence(300), Seg::Speech(1000)],
        Duration::from_secs(10),
    );
    let mut run = support::run(session, io);
    let SessionEvent::TurnMetrics(m) = run
        .wait_event("turn metrics", Duration::from_secs(8), |e| {
            matches!(e, SessionEvent::TurnMetrics(_))
        })
        .await
    else {
        unreachable!()
    };
    callee.hangup();
    let report = run.report(Duration::from_secs(5)).await;
    eprintln!("{m:?}\n{:?}", report.preemptive);

    let reqs = rig.llm.requests();
    assert_eq!(reqs.len(), 1, "the LLM was called once");
    assert!(reqs[0].completed);
    assert_eq!(reqs[0].last_user(), "What are your opening hours?");
    assert_eq!(m.preemptive.as_deref(), Some("reused"));
    assert_eq!(
        (
            report.preemptive.started,
            report.preemptive.reused,
            report.preemptive.discarded
        ),
        (1, 1, 0)
    );
    // The LLM's 200 ms TTFT was (mostly) spent before the end of turn.
    let response = m.response_latency_ms.expect("response latency");
    assert!(
        response < 0.5 * TTFT_MS,
        "end of turn -> first audio took {response} ms"
    );
    assert!(m.llm_ttft_ms.expect("ttft") >= TTFT_MS - 5.0);
    assert!(m.preemptive_saved_ms.expect("saved") > 0.5 * TTFT_MS);
    assert_eq!(report.transcript[1].text, "We open at nine.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_transcript_cancels_and_regenerates() {
    let rig = Rig::start(
        vec![
            LlmScript::text(1500, &["(stale reply)"]),
            LlmScript::text(100, &["From nine to five."]),
        ],
        stt::Flavor::Deepgram,
        vec![
            at(1000, dg_result("What are your", true, false)),
            at(2050, dg_result("opening hours?", true, true)),
        ],
        tts::Flavor::Cartesia,
        TtsScript {
            ttfb: Duration::from_millis(20),
            ms_per_char: 10,
        },
    )
    .await;
    let session = rig.session(options(), common::engine_options());
    // "What are your" ... pause ... "opening hours?"
    let script = vec![
        Seg::Silence(300),
        Seg::Speech(600),
        Seg::Silence(500),
        Seg::Speech(600),
    ];
    let (mut callee, io) = Callee::start(script, Duration::from_secs(10));
    let mut run = support::run(session, io);
    let SessionEvent::TurnMetrics(m) = run
        .wait_event("turn metrics", Duration::from_secs(8), |e| {
            matches!(e, SessionEvent::TurnMetrics(_))
        })
        .await
    else {
        unreachable!()
    };
    // The first (speculative) request was cancelled by the client.
    let llm = rig.llm.clone();
    wait_for(
        "the stale request to be cancelled",
        Duration::from_secs(3),
        || llm.requests().first().filter(|r| r.cancelled).cloned(),
    )
    .await;
    callee.hangup();
    let report = run.report(Duration::from_secs(5)).await;

    let reqs = rig.llm.requests();
    assert_eq!(reqs.len(), 2, "the LLM was called twice");
    assert_eq!(reqs[0].last_user(), "What are your");
    assert!(reqs[0].cancelled && !reqs[0].completed);
    assert_eq!(reqs[1].last_user(), "What are your opening hours?");
    assert!(reqs[1].completed);
    assert_eq!(report.preemptive.discarded, 1);
    assert_eq!(report.preemptive.started, 2);
    assert_eq!(m.turn, 1);
    assert_eq!(report.transcript[0].text, "What are your opening hours?");
    assert_eq!(report.transcript[1].text, "From nine to five.");
    assert!(
        !serde_json::to_string(&report)
            .unwrap_or_default()
            .contains("stale")
    );
}
