//! Answering-machine detection inside the session: the greeting waits for the classifier (never
//! longer than the budget), a person gets it at once, a voicemail box's greeting is heard and not
//! answered, the message is spoken once after the beep, `hangup` and a fax end the session
//! without a word, and a machine found after a tentative release cuts the agent off. The
//! stand-in callee's "speech" is synthetic, so these use the energy VAD (`common`); the
//! classifier on real speech and the default VAD is `tests/it/answering.rs` and the bench.

mod common;

use callfleet_standins as support;

use std::time::Duration;

use callfleet_domain::answering::{AnswerAction, AnswerClass};
use callfleet_voice::{Answering, EndReason, EngineOptions, SessionEvent, SpeakerRole};
use serde_json::json;
use support::{
    Rig,
    callee::{Callee, IoLog, Seg, lock},
    llm::LlmScript,
    stt::{self, at, dg_result},
    tts::{self, TtsScript},
};
use tokio::time::Instant;

const MESSAGE: &str = "Hi Sam, this is Acme about your order. Please call us back.";

fn policy(voicemail: AnswerAction) -> Answering {
    Answering {
        budget_ms: 2500,
        max_wait_ms: 15_000,
        silence_ms: 5000,
        voicemail,
        voicemail_message: Some(MESSAGE.into()),
        call_screening: AnswerAction::Continue,
        ivr: AnswerAction::Continue,
    }
}

async fn rig(stt_script: Vec<stt::At>) -> Rig {
    Rig::start(
        vec![LlmScript::text(
            30,
            &["Hi, this is Acme calling about your order."],
        )],
        stt::Flavor::Deepgram,
        stt_script,
        tts::Flavor::Cartesia,
        TtsScript {
            ttfb: Duration::from_millis(20),
            ms_per_char: 5,
        },
    )
    .await
}

fn session(rig: &Rig, answering: Answering) -> std::sync::Arc<callfleet_voice::Session> {
    let cfg = callfleet_voice::resolve_json(
        &json!({"tts": "cartesia", "preemptive_generation": false,
                "greeting": "Greet the callee and say why you call."}),
        &rig.env,
    )
    .map(|mut c| {
        c.answering = Some(answering);
        c
    })
    .expect("options resolve");
    std::sync::Arc::new(
        callfleet_voice::Session::new(
            cfg,
            EngineOptions {
                silence_timeout: Duration::from_secs(4),
                ..common::engine_options()
            },
        )
        .expect("session"),
    )
}

/// When the agent's first frame went out, relative to the callee's first frame.
fn first_sent(log: &IoLog, t0: Instant) -> Option<Duration> {
    log.sent
        .first()
        .map(|(at, _)| at.saturating_duration_since(t0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_gets_the_greeting_at_once_and_never_after_the_budget() {
    let rig = rig(vec![at(900, dg_result("Hello?", true, true))]).await;
    let (callee, io) = Callee::start(
        vec![Seg::Silence(300), Seg::Speech(600), Seg::Silence(6000)],
        Duration::from_secs(8),
    );
    let mut run = support::run(session(&rig, policy(AnswerAction::Hangup)), io);
    let ev = run
        .wait_event("the classification", Duration::from_secs(6), |e| {
            matches!(e, SessionEvent::Classified { .. })
        })
        .await;
    assert_eq!(
        ev,
        SessionEvent::Classified {
            class: AnswerClass::Human
        }
    );
    // The greeting plays, then the silence timeout ends the session.
    let report = run.report(Duration::from_secs(12)).await;
    let answer = report.answer.expect("the answer is reported");
    assert_eq!(answer.class, AnswerClass::Human);
    assert_eq!(answer.action, AnswerAction::Continue);
    let released = answer.released_ms.expect("released");
    assert!(
        released <= 2500,
        "a person is released within the budget: {answer:?}"
    );
    assert!(
        answer.decided_ms < 2500,
        "a short hello then quiet decides before the budget: {answer:?}"
    );
    let first = first_sent(&lock(&callee.log), callee.t0()).expect("the agent spoke");
    assert!(
        first >= Duration::from_millis(900),
        "the greeting waited for the callee's hello ({first:?})"
    );
    let greeted = report
        .transcript
        .iter()
        .any(|t| t.role == SpeakerRole::Assistant && t.text.contains("Acme"));
    assert!(greeted, "{:?}", report.transcript);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voicemail_hears_silence_then_one_message_after_its_beep() {
    let rig = rig(vec![
        at(1500, dg_result("Hi, you've reached Alex.", true, false)),
        at(
            3800,
            dg_result("Please leave a message after the tone.", true, true),
        ),
    ])
    .await;
    // A 4 s greeting, a pause, a 1 kHz beep of 500 ms, then the box records.
    let (callee, io) = Callee::start(
        vec![
            Seg::Silence(200),
            Seg::Speech(1800),
            Seg::Silence(300),
            Seg::Speech(1900),
            Seg::Silence(400),
            Seg::Tone { hz: 1000, ms: 500 },
            Seg::Silence(12_000),
        ],
        Duration::from_secs(14),
    );
    let beep_end = Duration::from_millis(200 + 1800 + 300 + 1900 + 400 + 500);
    let run = support::run(session(&rig, policy(AnswerAction::LeaveMessage)), io);
    let report = run.report(Duration::from_secs(20)).await;
    assert_eq!(
        report.end_reason,
        EndReason::AnswerPolicy {
            class: AnswerClass::Machine,
            message_left: true
        },
        "{:?}",
        report.answer
    );
    let answer = report.answer.clone().expect("the answer is reported");
    assert_eq!(answer.class, AnswerClass::Machine);
    assert_eq!(answer.action, AnswerAction::LeaveMessage);
    let log = lock(&callee.log);
    let first = first_sent(&log, callee.t0()).expect("the message was spoken");
    assert!(
        first >= beep_end,
        "nothing was said before the beep ended ({first:?} < {beep_end:?})"
    );
    assert!(
        first <= beep_end + Duration::from_millis(2500),
        "the message followed the beep ({first:?})"
    );
    let said: Vec<_> = report
        .transcript
        .iter()
        .filter(|t| t.role == SpeakerRole::Assistant)
        .map(|t| t.text.as_str())
        .collect();
    assert_eq!(said, vec![MESSAGE], "exactly one message, nothing else");
    assert!(
        rig.llm.requests().is_empty(),
        "the greeting was never answered by the LLM"
    );
    let heard = report
        .transcript
        .iter()
        .any(|t| t.role == SpeakerRole::User && t.text.contains("leave a message"));
    assert!(
        heard,
        "the greeting is in the transcript: {:?}",
        report.transcript
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hangup_on_a_voicemail_and_on_a_fax_ends_without_a_word() {
    // The greeting is transcribed as a real STT would: a transcribed call waits for a
    // greeting's phrase (a screener's or a menu's) before deciding on cadence alone.
    let greeting = || {
        vec![at(
            2000,
            dg_result("hi you've reached sam please leave a message", false, false),
        )]
    };
    for (script, stt, class) in [
        (
            vec![Seg::Silence(200), Seg::Speech(5000), Seg::Silence(3000)],
            greeting(),
            AnswerClass::Machine,
        ),
        (
            vec![
                Seg::Silence(300),
                Seg::Tone { hz: 2100, ms: 3000 },
                Seg::Silence(3000),
            ],
            Vec::new(),
            AnswerClass::Fax,
        ),
    ] {
        let rig = rig(stt).await;
        let (callee, io) = Callee::start(script, Duration::from_secs(8));
        let run = support::run(session(&rig, policy(AnswerAction::Hangup)), io);
        let report = run.report(Duration::from_secs(10)).await;
        assert_eq!(
            report.end_reason,
            EndReason::AnswerPolicy {
                class,
                message_left: false
            },
            "{:?}",
            report.answer
        );
        let answer = report.answer.expect("the answer is reported");
        assert!(
            answer.decided_ms <= 3500,
            "{class:?} decided early: {answer:?}"
        );
        assert!(
            lock(&callee.log).sent.is_empty(),
            "{class:?}: the agent never spoke"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_found_after_the_budget_cuts_the_agent_off() {
    // Quiet at first (the budget releases the agent), then a greeting whose words name a
    // voicemail: the agent's greeting stops and the call ends by policy.
    let rig = rig(vec![at(
        4200,
        dg_result("please leave a message", true, true),
    )])
    .await;
    let (callee, io) = Callee::start(
        vec![Seg::Silence(2800), Seg::Speech(2000), Seg::Silence(4000)],
        Duration::from_secs(9),
    );
    let mut run = support::run(session(&rig, policy(AnswerAction::Hangup)), io);
    run.wait_event("the tentative greeting", Duration::from_secs(6), |e| {
        matches!(e, SessionEvent::AgentSpeaking)
    })
    .await;
    let report = run.report(Duration::from_secs(10)).await;
    assert_eq!(
        report.end_reason,
        EndReason::AnswerPolicy {
            class: AnswerClass::Machine,
            message_left: false
        },
        "{:?}",
        report.answer
    );
    let answer = report.answer.expect("reported");
    assert!(
        answer.released_ms.is_some_and(|r| r <= 2600),
        "released at the budget: {answer:?}"
    );
    assert!(answer.decided_ms > 2500, "decided after: {answer:?}");
    assert!(!lock(&callee.log).sent.is_empty(), "the agent had started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_greeting_the_persons_first_words_are_answered_once_released() {
    let rig = rig(vec![at(900, dg_result("Hello?", true, true))]).await;
    let cfg = callfleet_voice::resolve_json(
        &json!({"tts": "cartesia", "preemptive_generation": false}),
        &rig.env,
    )
    .map(|mut c| {
        c.answering = Some(policy(AnswerAction::Hangup));
        c
    })
    .expect("options resolve");
    let session = std::sync::Arc::new(
        callfleet_voice::Session::new(
            cfg,
            EngineOptions {
                silence_timeout: Duration::from_secs(3),
                ..common::engine_options()
            },
        )
        .expect("session"),
    );
    let (_callee, io) = Callee::start(
        vec![Seg::Silence(300), Seg::Speech(600), Seg::Silence(6000)],
        Duration::from_secs(8),
    );
    let run = support::run(session, io);
    let report = run.report(Duration::from_secs(12)).await;
    assert_eq!(
        report.answer.as_ref().map(|a| a.class),
        Some(AnswerClass::Human)
    );
    assert_eq!(rig.llm.requests().len(), 1, "one reply, to the hello");
    assert_eq!(rig.llm.requests()[0].last_user(), "Hello?");
    assert_eq!(report.turns.len(), 1, "the hello is a measured turn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_waiting_when_the_session_starts_keeps_its_timing() {
    // The worker starts the session after the answer, and the callee's first audio waits in
    // the transport meanwhile. A fax whose only CNG burst is all in that backlog still sends
    // 0.5 s of 1100 Hz, and is told by it.
    let rig = rig(Vec::new()).await;
    let (callee, io) = Callee::start(
        vec![
            Seg::Silence(100),
            Seg::Tone { hz: 1100, ms: 500 },
            Seg::Silence(4000),
        ],
        Duration::from_secs(6),
    );
    let backlog = 40; // 800 ms of frames: the tone and what came before it
    let deadline = Instant::now() + Duration::from_secs(10);
    while io.queued() < backlog {
        assert!(
            Instant::now() < deadline,
            "the callee queued {} of {backlog} frames in 10 s",
            io.queued()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t0 = (*lock(&callee.t0)).expect("the callee started");
    let cfg = callfleet_voice::resolve_json(
        &json!({"tts": "cartesia", "preemptive_generation": false,
                "greeting": "Greet the callee and say why you call."}),
        &rig.env,
    )
    .map(|mut c| {
        c.answering = Some(policy(AnswerAction::Hangup));
        c
    })
    .expect("options resolve");
    let session = callfleet_voice::Session::new(
        cfg,
        EngineOptions {
            answered_ago: t0.elapsed(),
            ..common::engine_options()
        },
    )
    .expect("session");
    let report = support::run(std::sync::Arc::new(session), io)
        .report(Duration::from_secs(10))
        .await;
    let answer = report.answer.expect("the answer is reported");
    assert_eq!(answer.class, AnswerClass::Fax, "{answer:?}");
    assert!(
        answer.decided_ms < 1500,
        "decided on the backlog's tone, not later: {answer:?}"
    );
}
