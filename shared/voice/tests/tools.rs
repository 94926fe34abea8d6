//! `end_call` and `transfer_call` end the session with the right outcome; a greeting plays
//! first when configured; silence ends the call.

mod common;

use callfleet_standins as support;

use std::time::Duration;

use callfleet_voice::{EndReason, EngineOptions, SessionEvent};
use serde_json::json;
use support::{
    Rig,
    callee::{Callee, Seg, lock},
    llm::LlmScript,
    stt::{self, at, dg_result},
    tts::{self, TtsScript},
};

async fn rig(reply: LlmScript) -> Rig {
    rig_with(
        reply,
        vec![at(1350, dg_result("That's all, thanks. Bye!", true, true))],
    )
    .await
}

async fn rig_with(reply: LlmScript, stt_script: Vec<stt::At>) -> Rig {
    Rig::start(
        vec![reply],
        stt::Flavor::Deepgram,
        stt_script,
        tts::Flavor::Cartesia,
        TtsScript {
            ttfb: Duration::from_millis(10),
            ms_per_char: 10,
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_call_ends_the_session_after_the_goodbye() {
    let rig = rig(LlmScript::text(30, &["Goodbye, have a nice day!"])
        .with_tool("end_call", r#"{"reason":"caller said goodbye"}"#))
    .await;
    let session = rig.session(
        json!({"tts": "cartesia", "preemptive_generation": false}),
        common::engine_options(),
    );
    let (callee, io) = Callee::start(
        vec![Seg::Silence(300), Seg::Speech(1000)],
        Duration::from_secs(10),
    );
    let mut run = support::run(session, io);
    run.wait_event("end_call", Duration::from_secs(8), |e| {
        matches!(e, SessionEvent::EndCall { .. })
    })
    .await;
    let report = run.report(Duration::from_secs(5)).await;

    assert_eq!(
        report.end_reason,
        EndReason::AgentEnded {
            reason: "caller said goodbye".into()
        }
    );
    assert_eq!(report.end_reason.label(), "agent_ended");
    // The goodbye was played in full before the session ended.
    assert_eq!(
        report.transcript.last().map(|t| t.text.as_str()),
        Some("Goodbye, have a nice day!")
    );
    let sent: usize = lock(&callee.log)
        .sent
        .iter()
        .map(|(_, f)| f.samples.len())
        .sum();
    assert!(sent >= "Goodbye, have a nice day!".len() * 240);
    // No transfer tool without a transfer target.
    let names: Vec<_> = rig.llm.requests()[0].body["tools"]
        .as_array()
        .map(|t| t.iter().map(|t| t["function"]["name"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec![json!("end_call"), json!("send_dtmf")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_call_emits_the_transfer_with_its_target() {
    let rig = rig(LlmScript::text(30, &["Let me put you through."])
        .with_tool("transfer_call", r#"{"reason":"wants a human"}"#))
    .await;
    let session = rig.session(
        json!({"tts": "cartesia", "preemptive_generation": false, "transfer_target": "tel:+61731071901"}),
        common::engine_options(),
    );
    let (_callee, io) = Callee::start(
        vec![Seg::Silence(300), Seg::Speech(1000)],
        Duration::from_secs(10),
    );
    let mut run = support::run(session, io);
    let ev = run
        .wait_event("transfer", Duration::from_secs(8), |e| {
            matches!(e, SessionEvent::Transfer { .. })
        })
        .await;
    let report = run.report(Duration::from_secs(5)).await;

    assert_eq!(
        ev,
        SessionEvent::Transfer {
            target: "tel:+61731071901".into(),
            reason: "wants a human".into()
        }
    );
    assert_eq!(
        report.end_reason,
        EndReason::Transferred {
            target: "tel:+61731071901".into()
        }
    );
    let names: Vec<_> = rig.llm.requests()[0].body["tools"]
        .as_array()
        .map(|t| t.iter().map(|t| t["function"]["name"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        vec![
            json!("end_call"),
            json!("send_dtmf"),
            json!("transfer_call")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greeting_plays_first_and_silence_ends_the_call() {
    let rig = rig_with(
        LlmScript::text(20, &["Hi, I'm Maya. How can I help?"]),
        vec![],
    )
    .await;
    let opts = EngineOptions {
        silence_timeout: Duration::from_millis(1500),
        ..common::engine_options()
    };
    let session = rig.session(
        json!({"greeting": "Say hi as Maya.", "tts": "cartesia"}),
        opts,
    );
    let (callee, io) = Callee::start(vec![], Duration::from_secs(10));
    let run = support::run(session, io);
    let report = run.report(Duration::from_secs(8)).await;

    assert_eq!(report.end_reason, EndReason::SilenceTimeout);
    assert_eq!(report.transcript.len(), 1);
    assert_eq!(report.transcript[0].text, "Hi, I'm Maya. How can I help?");
    let req = &rig.llm.requests()[0];
    let last = req.body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        last,
        json!({"role": "system", "content": "Say hi as Maya."})
    );
    assert!(!lock(&callee.log).sent.is_empty());
    assert!(report.turns.is_empty(), "a greeting is not a user turn");
    // The greeting is the first agent audio: dead air is measured from it.
    let first = report
        .first_audio_at
        .expect("the greeting's first frame is timed");
    assert!(
        report.session_start <= first && first <= report.session_end,
        "first audio {first} within the session {} .. {}",
        report.session_start,
        report.session_end
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_dtmf_presses_keys_and_the_callees_keys_reach_the_transcript() {
    let rig =
        rig(LlmScript::text(30, &["Pressing two."]).with_tool("send_dtmf", r#"{"digits":"2"}"#))
            .await;
    let session = rig.session(
        json!({"tts": "cartesia", "preemptive_generation": false}),
        common::engine_options(),
    );
    let (mut callee, io) = Callee::start(
        vec![Seg::Silence(300), Seg::Speech(1000)],
        Duration::from_secs(10),
    );
    let mut run = support::run(session, io);
    let ev = run
        .wait_event("send_dtmf", Duration::from_secs(8), |e| {
            matches!(e, SessionEvent::SendDtmf { .. })
        })
        .await;
    assert_eq!(ev, SessionEvent::SendDtmf { digits: "2".into() });
    callee.press('5');
    run.wait_event("the callee's key", Duration::from_secs(5), |e| {
        matches!(e, SessionEvent::CalleeDtmf { digit: '5' })
    })
    .await;
    callee.hangup();
    let report = run.report(Duration::from_secs(5)).await;
    let texts: Vec<_> = report
        .transcript
        .iter()
        .map(|t| (t.role, t.text.as_str()))
        .collect();
    assert!(
        texts.contains(&(callfleet_voice::SpeakerRole::Assistant, "[DTMF 2]")),
        "the agent's key press is in the transcript: {texts:?}"
    );
    assert!(
        texts.contains(&(callfleet_voice::SpeakerRole::User, "[DTMF 5]")),
        "the callee's key press is in the transcript: {texts:?}"
    );
}
