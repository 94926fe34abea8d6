//! Provider failures end the call with a clear reason, and never hang the session: for the LLM,
//! the STT and the TTS, a refused connection, a 401, a malformed stream and a disconnect
//! mid-stream. An STT that drops once is reconnected and the turn still works.
//!
//! Every test bounds the whole session (`Running::report` times out) and checks the
//! `EndReason::Error` message names the stage, the provider and the problem.

mod common;

use callfleet_standins as support;

use std::{sync::atomic::Ordering, time::Duration};

use callfleet_voice::{
    EndReason, EngineOptions, SessionEvent, SessionReport, metrics::SpeakerRole,
};
use serde_json::{Value, json};
use support::{
    Rig,
    callee::{Callee, Seg},
    closed_port,
    llm::{LlmFail, LlmScript},
    stt::{self, FakeStt, SttFail, aai_turn, at, dg_result},
    tts::{self, FakeTts, TtsFail, TtsScript},
};

/// Longest a failing session may take to end (the STT gives up after 3 attempts, ~1 s).
const ENDS_WITHIN: Duration = Duration::from_secs(10);

fn dg_script() -> Vec<stt::At> {
    vec![
        at(900, dg_result("what are your", false, false)),
        at(1350, dg_result("What are your opening hours?", true, true)),
    ]
}

fn tts_script() -> TtsScript {
    TtsScript {
        ttfb: Duration::from_millis(20),
        ms_per_char: 10,
    }
}

/// A rig of working providers (Deepgram, OpenAI-compatible, the given TTS).
async fn rig(llm: Vec<LlmScript>, tts_flavor: tts::Flavor) -> Rig {
    Rig::start(
        llm,
        stt::Flavor::Deepgram,
        dg_script(),
        tts_flavor,
        tts_script(),
    )
    .await
}

fn llm_ok() -> Vec<LlmScript> {
    vec![LlmScript::text(
        20,
        &["We are open ", "nine to five. ", "See you soon."],
    )]
}

fn options(stt: &str, tts: &str) -> Value {
    json!({"llm": "openai/gpt-4o-mini", "stt": stt, "tts": tts, "preemptive_generation": "off"})
}

fn deepgram_cartesia() -> Value {
    options("deepgram/nova-3:en", "cartesia/sonic-3:voice-abc")
}

/// The callee asks one question; the session must end on its own, well before the callee's
/// audio runs out (then it would be `CalleeHungUp`).
async fn call(rig: &Rig, options: Value) -> SessionReport {
    let session = rig.session(options, common::engine_options());
    let (_callee, io) = Callee::start(
        vec![Seg::Silence(300), Seg::Speech(1000)],
        Duration::from_secs(20),
    );
    support::run(session, io).report(ENDS_WITHIN).await
}

/// The error message, checked to contain every one of `words` (case-insensitive).
fn error_with(report: &SessionReport, words: &[&str]) -> String {
    let EndReason::Error { message } = &report.end_reason else {
        panic!(
            "expected an error end, got {:?} (transcript {:?})",
            report.end_reason, report.transcript
        );
    };
    let lower = message.to_lowercase();
    for w in words {
        assert!(
            lower.contains(&w.to_lowercase()),
            "{w:?} missing from {message:?}"
        );
    }
    assert!(
        !message.contains("sk-test")
            && !message.contains("dg-test")
            && !message.contains("sk_car_test")
    );
    eprintln!("end reason: {message}");
    message.clone()
}

/// Any one of `words` (case-insensitive).
fn mentions_any(message: &str, words: &[&str]) {
    let lower = message.to_lowercase();
    assert!(
        words.iter().any(|w| lower.contains(w)),
        "none of {words:?} in {message:?}"
    );
}

/// The callee's turn was recorded before the reply failed.
fn user_turn_recorded(report: &SessionReport) {
    assert_eq!(report.transcript[0].role, SpeakerRole::User);
    assert_eq!(report.transcript[0].text, "What are your opening hours?");
    assert_eq!(report.turns.len(), 1, "{:?}", report.turns);
}

// --- LLM -------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_connection_refused_ends_the_call() {
    let mut rig = rig(llm_ok(), tts::Flavor::Cartesia).await;
    let base = format!("http://127.0.0.1:{}/v1", closed_port());
    rig.env.insert("OPENAI_BASE_URL".into(), base);
    let report = call(&rig, deepgram_cartesia()).await;
    error_with(&report, &["llm (openai)", "refused"]);
    user_turn_recorded(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_401_ends_the_call() {
    let rig = rig(
        vec![LlmScript::failing(LlmFail::Status(401))],
        tts::Flavor::Cartesia,
    )
    .await;
    let report = call(&rig, deepgram_cartesia()).await;
    error_with(&report, &["llm (openai)", "401", "Incorrect API key"]);
    user_turn_recorded(&report);
    assert_eq!(rig.llm.requests().len(), 1, "a 401 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_malformed_sse_data_ends_the_call() {
    let raw =
        "data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"Hel\n\ndata: [DONE]\n\n";
    let rig = rig(
        vec![LlmScript::failing(LlmFail::Raw(raw.into()))],
        tts::Flavor::Cartesia,
    )
    .await;
    let report = call(&rig, deepgram_cartesia()).await;
    error_with(&report, &["llm (openai)", "malformed"]);
    user_turn_recorded(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_body_that_is_not_sse_ends_the_call() {
    let raw = "<html><body><h1>502 Bad Gateway</h1></body></html>\n";
    let rig = rig(
        vec![LlmScript::failing(LlmFail::Raw(raw.into()))],
        tts::Flavor::Cartesia,
    )
    .await;
    let report = call(&rig, deepgram_cartesia()).await;
    error_with(
        &report,
        &["llm (openai)", "malformed", "without a data event", "502"],
    );
    user_turn_recorded(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_disconnect_mid_stream_ends_the_call() {
    let rig = rig(
        vec![LlmScript::failing(LlmFail::DisconnectAfterFirst)],
        tts::Flavor::Cartesia,
    )
    .await;
    let report = call(&rig, deepgram_cartesia()).await;
    error_with(&report, &["llm (openai)", "connection lost mid-response"]);
    user_turn_recorded(&report);
    // The text before the break was not spoken as if the reply were complete.
    assert!(
        report.transcript.iter().skip(1).all(|e| e.interrupted),
        "{:?}",
        report.transcript
    );
}

// --- STT -------------------------------------------------------------------------------------

/// A rig whose Deepgram endpoint is `url`.
async fn rig_with_deepgram(url: String) -> Rig {
    let mut rig = rig(llm_ok(), tts::Flavor::Cartesia).await;
    rig.env.insert("DEEPGRAM_BASE_URL".into(), url);
    rig
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stt_connection_refused_ends_the_call() {
    let rig = rig_with_deepgram(format!("ws://127.0.0.1:{}/v1/listen", closed_port())).await;
    let report = call(&rig, deepgram_cartesia()).await;
    error_with(&report, &["stt (deepgram)", "could not connect", "refused"]);
    assert!(rig.llm.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stt_upgrade_refused_with_401_ends_the_call() {
    let bad = FakeStt::failing(
        stt::Flavor::Deepgram,
        vec![],
        Some(SttFail::Reject(401)),
        usize::MAX,
    )
    .await;
    let rig = rig_with_deepgram(bad.url.clone()).await;
    let report = call(&rig, deepgram_cartesia()).await;
    error_with(&report, &["stt (deepgram)", "401"]);
    let attempts = bad.attempts.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&attempts),
        "{attempts} connection attempts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stt_malformed_message_ends_the_call() {
    let bad = FakeStt::failing(
        stt::Flavor::Deepgram,
        dg_script(),
        Some(SttFail::Garbage),
        usize::MAX,
    )
    .await;
    let rig = rig_with_deepgram(bad.url.clone()).await;
    let report = call(&rig, deepgram_cartesia()).await;
    error_with(&report, &["stt (deepgram)", "malformed", "502 Bad Gateway"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stt_disconnect_mid_stream_ends_the_call_after_retries() {
    let script = vec![at(100, dg_result("what", false, false))];
    let bad = FakeStt::failing(
        stt::Flavor::Deepgram,
        script,
        Some(SttFail::DropAfterFirst),
        usize::MAX,
    )
    .await;
    let rig = rig_with_deepgram(bad.url.clone()).await;
    let report = call(&rig, deepgram_cartesia()).await;
    let msg = error_with(&report, &["stt (deepgram)"]);
    mentions_any(&msg, &["connection lost", "closed the stream"]);
    assert_eq!(bad.attempts.load(Ordering::SeqCst), 3, "bounded reconnects");
}

/// One dropped STT connection is not the end of the call: the stream reconnects and the turn
/// is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stt_disconnect_once_reconnects_and_the_turn_completes() {
    let mut script = vec![at(100, dg_result("what", false, false))];
    script.extend(dg_script());
    let flaky = FakeStt::failing(
        stt::Flavor::Deepgram,
        script,
        Some(SttFail::DropAfterFirst),
        1,
    )
    .await;
    let rig = rig_with_deepgram(flaky.url.clone()).await;
    let session = rig.session(deepgram_cartesia(), common::engine_options());
    let (mut callee, io) = Callee::start(
        vec![Seg::Silence(300), Seg::Speech(1000)],
        Duration::from_secs(20),
    );
    let mut run = support::run(session, io);
    run.wait_event("turn metrics", Duration::from_secs(8), |e| {
        matches!(e, SessionEvent::TurnMetrics(_))
    })
    .await;
    callee.hangup();
    let report = run.report(Duration::from_secs(5)).await;
    assert_eq!(report.end_reason, EndReason::CalleeHungUp);
    assert_eq!(flaky.attempts.load(Ordering::SeqCst), 2);
    assert_eq!(report.transcript[0].text, "What are your opening hours?");
    assert_eq!(
        report.transcript[1].text,
        "We are open nine to five. See you soon."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assemblyai_upgrade_refused_with_401_ends_the_call() {
    let bad = FakeStt::failing(
        stt::Flavor::AssemblyAi,
        vec![at(900, aai_turn(0, "hi", false, ""))],
        Some(SttFail::Reject(401)),
        usize::MAX,
    )
    .await;
    let mut rig = rig(llm_ok(), tts::Flavor::Cartesia).await;
    rig.env
        .insert("ASSEMBLYAI_BASE_URL".into(), bad.url.clone());
    let report = call(
        &rig,
        options(
            "assemblyai/universal-streaming:en",
            "cartesia/sonic-3:voice-abc",
        ),
    )
    .await;
    error_with(&report, &["stt (assemblyai)", "401"]);
}

// --- TTS -------------------------------------------------------------------------------------

/// A rig whose TTS (`flavor`) endpoint is `url`.
async fn rig_with_tts(flavor: tts::Flavor, url: String) -> Rig {
    let mut rig = rig(llm_ok(), flavor).await;
    let key = match flavor {
        tts::Flavor::Cartesia => "CARTESIA_BASE_URL",
        tts::Flavor::ElevenLabs => "ELEVENLABS_BASE_URL",
        tts::Flavor::Sarvam => "SARVAM_TTS_BASE_URL",
    };
    rig.env.insert(key.into(), url);
    rig
}

fn deepgram_elevenlabs() -> Value {
    options("deepgram/nova-3:en", "elevenlabs/eleven_flash_v2_5:el-v1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tts_connection_refused_ends_the_call() {
    let url = format!("ws://127.0.0.1:{}/tts/websocket", closed_port());
    let rig = rig_with_tts(tts::Flavor::Cartesia, url).await;
    let report = call(&rig, deepgram_cartesia()).await;
    error_with(&report, &["tts (cartesia)", "could not connect", "refused"]);
    user_turn_recorded(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tts_upgrade_refused_with_401_ends_the_call() {
    let bad = FakeTts::failing(tts::Flavor::Cartesia, TtsFail::Reject(401)).await;
    let rig = rig_with_tts(tts::Flavor::Cartesia, bad.url.clone()).await;
    let report = call(&rig, deepgram_cartesia()).await;
    error_with(&report, &["tts (cartesia)", "401"]);
    user_turn_recorded(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tts_malformed_message_ends_the_call() {
    let bad = FakeTts::failing(tts::Flavor::Cartesia, TtsFail::Garbage).await;
    let rig = rig_with_tts(tts::Flavor::Cartesia, bad.url.clone()).await;
    let report = call(&rig, deepgram_cartesia()).await;
    error_with(&report, &["tts (cartesia)", "malformed", "502 Bad Gateway"]);
    user_turn_recorded(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tts_disconnect_mid_stream_ends_the_call() {
    let bad = FakeTts::failing(tts::Flavor::Cartesia, TtsFail::DropAfterFirst).await;
    let rig = rig_with_tts(tts::Flavor::Cartesia, bad.url.clone()).await;
    let report = call(&rig, deepgram_cartesia()).await;
    let msg = error_with(&report, &["tts (cartesia)"]);
    mentions_any(&msg, &["connection lost", "closed the stream"]);
    user_turn_recorded(&report);
    // Only the audio that arrived was played, and the reply is marked as cut.
    let agent = report
        .transcript
        .iter()
        .find(|e| e.role == SpeakerRole::Assistant);
    assert!(
        agent.is_none_or(|e| e.interrupted),
        "{:?}",
        report.transcript
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevenlabs_failures_end_the_call() {
    let closed = format!("ws://127.0.0.1:{}", closed_port());
    let rig = rig_with_tts(tts::Flavor::ElevenLabs, closed).await;
    let report = call(&rig, deepgram_elevenlabs()).await;
    error_with(&report, &["tts (elevenlabs)", "refused"]);

    let cases: [(TtsFail, &[&str], &[&str]); 3] = [
        (TtsFail::Reject(401), &["401"], &["401"]),
        (
            TtsFail::Garbage,
            &["malformed", "502 Bad Gateway"],
            &["malformed"],
        ),
        (
            TtsFail::DropAfterFirst,
            &[],
            &["connection lost", "closed the stream"],
        ),
    ];
    for (fail, all, any) in cases {
        let bad = FakeTts::failing(tts::Flavor::ElevenLabs, fail).await;
        let rig = rig_with_tts(tts::Flavor::ElevenLabs, bad.url.clone()).await;
        let report = call(&rig, deepgram_elevenlabs()).await;
        let mut words = vec!["tts (elevenlabs)"];
        words.extend_from_slice(all);
        let msg = error_with(&report, &words);
        mentions_any(&msg, any);
        user_turn_recorded(&report);
    }
}

// --- Sarvam ----------------------------------------------------------------------------------

fn sarvam_script() -> Vec<stt::At> {
    vec![
        at(400, stt::sarvam_event("START_SPEECH")),
        at(1300, stt::sarvam_event("END_SPEECH")),
        at(1350, stt::sarvam_data("What are your opening hours?")),
    ]
}

/// A rig whose Sarvam STT endpoint is the given failing server.
async fn rig_with_sarvam_stt(bad: &FakeStt) -> Rig {
    let mut rig = rig(llm_ok(), tts::Flavor::Cartesia).await;
    rig.env
        .insert("SARVAM_STT_BASE_URL".into(), bad.url.clone());
    rig
}

fn sarvam_cartesia() -> Value {
    options("sarvam/saarika:v2.5:en-IN", "cartesia/sonic-3:voice-abc")
}

fn deepgram_sarvam() -> Value {
    options("deepgram/nova-3:en", "sarvam/bulbul:v2:anushka")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sarvam_stt_upgrade_refused_with_401_ends_the_call() {
    let bad = FakeStt::failing(
        stt::Flavor::Sarvam,
        sarvam_script(),
        Some(SttFail::Reject(401)),
        usize::MAX,
    )
    .await;
    let rig = rig_with_sarvam_stt(&bad).await;
    let report = call(&rig, sarvam_cartesia()).await;
    let msg = error_with(&report, &["stt (sarvam)", "could not connect", "401"]);
    assert!(!msg.contains("sarvam-test"), "key leaked: {msg}");
    assert!(rig.llm.requests().is_empty());
    let attempts = bad.attempts.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&attempts),
        "{attempts} connection attempts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sarvam_stt_malformed_message_ends_the_call() {
    let bad = FakeStt::failing(
        stt::Flavor::Sarvam,
        sarvam_script(),
        Some(SttFail::Garbage),
        usize::MAX,
    )
    .await;
    let rig = rig_with_sarvam_stt(&bad).await;
    let report = call(&rig, sarvam_cartesia()).await;
    error_with(&report, &["stt (sarvam)", "malformed", "502 Bad Gateway"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sarvam_tts_upgrade_refused_with_401_ends_the_call() {
    let bad = FakeTts::failing(tts::Flavor::Sarvam, TtsFail::Reject(401)).await;
    let rig = rig_with_tts(tts::Flavor::Sarvam, bad.url.clone()).await;
    let report = call(&rig, deepgram_sarvam()).await;
    error_with(&report, &["tts (sarvam)", "could not connect", "401"]);
    user_turn_recorded(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sarvam_tts_malformed_message_ends_the_call() {
    let bad = FakeTts::failing(tts::Flavor::Sarvam, TtsFail::Garbage).await;
    let rig = rig_with_tts(tts::Flavor::Sarvam, bad.url.clone()).await;
    let report = call(&rig, deepgram_sarvam()).await;
    error_with(&report, &["tts (sarvam)", "malformed", "502 Bad Gateway"]);
    user_turn_recorded(&report);
}

// --- A TTS that never answers ----------------------------------------------------------------

/// A TTS that accepts the text and then sends nothing ends the reply (and the call) once the
/// idle timeout passes after the text is complete, not at `max_duration`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_tts_ends_the_call_after_the_idle_timeout() {
    let opts = EngineOptions {
        tts_idle_timeout: Duration::from_millis(1000),
        ..common::engine_options()
    };
    for (flavor, options, name) in [
        (tts::Flavor::Cartesia, deepgram_cartesia(), "tts (cartesia)"),
        (tts::Flavor::Sarvam, deepgram_sarvam(), "tts (sarvam)"),
    ] {
        let bad = FakeTts::failing(flavor, TtsFail::Silent).await;
        let rig = rig_with_tts(flavor, bad.url.clone()).await;
        let session = rig.session(options, opts.clone());
        let (_callee, io) = Callee::start(
            vec![Seg::Silence(300), Seg::Speech(1000)],
            Duration::from_secs(20),
        );
        let report = support::run(session, io).report(ENDS_WITHIN).await;
        error_with(
            &report,
            &[name, "no audio within 1s after the text was complete"],
        );
        user_turn_recorded(&report);
        // The text did reach the provider.
        assert_eq!(
            bad.texts().concat(),
            "We are open nine to five. See you soon."
        );
    }
}
