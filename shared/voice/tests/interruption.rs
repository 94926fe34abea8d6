//! Barge-in truncates the assistant message to what was played; a noise burst pauses the reply
//! and it resumes.

mod common;

use callfleet_standins as support;

use std::time::Duration;

use callfleet_voice::{EndReason, SessionEvent, metrics::SpeakerRole};
use serde_json::json;
use support::{
    Rig,
    callee::{Callee, Seg, lock},
    llm::LlmScript,
    stt::{self, at, dg_result},
    tts::{self, TtsScript},
};

const STORY: &str =
    "Once upon a time there was a small robot who loved to sing songs all day long.";
const MS_PER_CHAR: u64 = 40;

async fn rig(extra_stt: Vec<stt::At>, second_reply: &str) -> Rig {
    let mut script = vec![at(1150, dg_result("Tell me a story.", true, true))];
    script.extend(extra_stt);
    Rig::start(
        vec![
            LlmScript::text(50, &[STORY]),
            LlmScript::text(50, &[second_reply]),
        ],
        stt::Flavor::Deepgram,
        script,
        tts::Flavor::Cartesia,
        TtsScript {
            ttfb: Duration::from_millis(20),
            ms_per_char: MS_PER_CHAR,
        },
    )
    .await
}

fn options() -> serde_json::Value {
    json!({"llm": "openai/gpt-4o-mini", "stt": "deepgram/nova-3", "tts": "cartesia", "preemptive_generation": false})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_truncates_to_what_was_played() {
    // The callee asks for a story, then talks over it ~1 s into the reply.
    let rig = rig(
        vec![at(3300, dg_result("Wait, stop.", true, true))],
        "Okay, stopping.",
    )
    .await;
    let session = rig.session(options(), common::engine_options());
    let script = vec![
        Seg::Silence(300),
        Seg::Speech(800),
        Seg::Silence(1600),
        Seg::Speech(700),
    ];
    let (mut callee, io) = Callee::start(script, Duration::from_secs(12));
    let mut run = support::run(session, io);

    run.wait_event("the interruption", Duration::from_secs(8), |e| {
        *e == SessionEvent::Interrupted
    })
    .await;
    run.wait_event(
        "the second turn's metrics",
        Duration::from_secs(8),
        |e| matches!(e, SessionEvent::TurnMetrics(m) if m.turn == 2),
    )
    .await;
    callee.hangup();
    let report = run.report(Duration::from_secs(5)).await;
    assert_eq!(report.end_reason, EndReason::CalleeHungUp);

    // Playback stopped promptly: clear() within 0.5 s of the callee starting to talk over it.
    let t0 = callee.t0();
    let (first_sent, clear_at) = {
        let log = lock(&callee.log);
        assert_eq!(log.clears.len(), 1, "one clear");
        (log.sent[0].0, log.clears[0])
    };
    let barge_in_at = t0 + Duration::from_millis(2700);
    let reaction = clear_at.saturating_duration_since(barge_in_at);
    assert!(
        reaction < Duration::from_millis(500),
        "clear() {reaction:?} after barge-in"
    );

    // The assistant message holds what was played, give or take a word.
    let roles: Vec<_> = report
        .transcript
        .iter()
        .map(|t| (t.role, t.interrupted))
        .collect();
    assert_eq!(
        roles,
        vec![
            (SpeakerRole::User, false),
            (SpeakerRole::Assistant, true),
            (SpeakerRole::User, false),
            (SpeakerRole::Assistant, false)
        ],
        "{:#?}",
        report.transcript
    );
    let heard = &report.transcript[1].text;
    assert!(
        STORY.starts_with(heard.as_str()) && heard.len() < STORY.len(),
        "heard {heard:?}"
    );
    let played_chars = clear_at.duration_since(first_sent).as_millis() as f64 / MS_PER_CHAR as f64;
    assert!(
        (heard.len() as f64 - played_chars).abs() <= 8.0,
        "heard {} chars ({heard:?}), played ~{played_chars:.0}",
        heard.len()
    );
    assert_eq!(report.transcript[2].text, "Wait, stop.");
    assert!(report.turns[0].interrupted);

    // The next LLM request carries the truncated message, not the whole story.
    let reqs = rig.llm.requests();
    assert_eq!(reqs.len(), 2);
    let msgs = reqs[1].body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let assistant: Vec<_> = msgs.iter().filter(|m| m["role"] == "assistant").collect();
    assert_eq!(assistant.len(), 1);
    assert_eq!(assistant[0]["content"], json!(heard));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noise_burst_pauses_then_resumes_the_reply() {
    let rig = rig(vec![], "unused").await;
    let session = rig.session(options(), common::engine_options());
    let script = vec![
        Seg::Silence(300),
        Seg::Speech(800),
        Seg::Silence(1600),
        Seg::Noise(400),
    ];
    let (mut callee, io) = Callee::start(script, Duration::from_secs(12));
    let mut run = support::run(session, io);

    run.wait_event("the pause", Duration::from_secs(8), |e| {
        *e == SessionEvent::Interrupted
    })
    .await;
    run.wait_event("the resume", Duration::from_secs(5), |e| {
        *e == SessionEvent::Resumed
    })
    .await;
    run.wait_event("the turn's metrics", Duration::from_secs(8), |e| {
        matches!(e, SessionEvent::TurnMetrics(_))
    })
    .await;
    callee.hangup();
    let report = run.report(Duration::from_secs(5)).await;

    assert_eq!(report.false_interruptions, 1);
    assert_eq!(report.transcript.len(), 2, "{:#?}", report.transcript);
    assert_eq!(report.transcript[1].text, STORY);
    assert!(!report.transcript[1].interrupted);
    assert!(!report.turns[0].interrupted);
    assert_eq!(rig.llm.requests().len(), 1, "no new turn from noise");
    // Playback continued after the clear: frames were sent after it, and nothing was lost:
    // the audio after the resume picks up where the clear cut it.
    let log = lock(&callee.log);
    assert_eq!(log.clears.len(), 1);
    assert!(log.sent_after(log.clears[0]) > 10);
}
