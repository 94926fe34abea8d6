//! Local stand-ins for the voice providers, the one set every voice test uses: the voice
//! crate's own tests, the full-fleet voice test (`tests/it/voice_e2e.rs`) and the voice bench
//! (`src/bin/voice_bench`). An in-memory call (callee script + recorded agent audio) and local
//! servers that speak each provider's wire protocol, scripted per test ([`stt`], [`llm`],
//! [`tts`]). By default they record what they receive, for the tests to assert on; the bench
//! starts them with [`Record::Off`], a zero TTFT/TTFB and an STT script that repeats, so what
//! it measures is the engine, not them. Everything binds 127.0.0.1. No NATS or LiveKit here:
//! that is the fleet rig (`callfleet-tests`), which leaf crates do not depend on.
//!
//! [`test_log`] is the one switch for test logs, `TEST_LOG`.

pub mod callee;
pub mod demo;
pub mod llm;
pub mod stt;
pub mod test_log;
pub mod tts;

use std::{collections::HashMap, future::Future, time::Duration};

use tokio::time::Instant;

/// Whether a stand-in keeps a log of what it receives (requests, messages, audio counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Record {
    /// Keep everything, for the test to read back (`requests()`, `connections()`).
    #[default]
    On,
    /// Keep nothing: for the bench, whose many sessions x turns would otherwise grow the log
    /// and inflate its memory per session. The logs then stay empty.
    Off,
}

/// Poll `check` until it returns `Some`, at most `timeout` (bounded: 5 ms steps).
pub async fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Await `fut`, failing the test after `timeout`.
pub async fn within<T>(what: &str, timeout: Duration, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(timeout, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Env for `resolve()` with every key set and every base URL pointing at the given servers.
pub fn env(
    llm: &str,
    deepgram: &str,
    assemblyai: &str,
    cartesia: &str,
    elevenlabs: &str,
) -> HashMap<String, String> {
    [
        ("OPENAI_API_KEY", "sk-test-openai"),
        ("GROQ_API_KEY", "gsk-test"),
        ("DEEPGRAM_API_KEY", "dg-test"),
        ("ASSEMBLYAI_API_KEY", "aai-test"),
        ("CARTESIA_API_KEY", "sk_car_test"),
        ("CARTESIA_VOICE_ID", "voice-123"),
        ("ELEVENLABS_API_KEY", "xi-test"),
        ("ELEVENLABS_VOICE_ID", "el-voice"),
        ("OPENAI_BASE_URL", llm),
        ("GROQ_BASE_URL", llm),
        ("DEEPGRAM_BASE_URL", deepgram),
        ("ASSEMBLYAI_BASE_URL", assemblyai),
        ("CARTESIA_BASE_URL", cartesia),
        ("ELEVENLABS_BASE_URL", elevenlabs),
        ("SARVAM_API_KEY", "sarvam-test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

use std::sync::Arc;

use callfleet_voice::{EngineOptions, Session, SessionEvent, SessionReport};
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use self::{
    callee::MemoryIo,
    llm::{FakeLlm, LlmScript},
    stt::{At, FakeStt},
    tts::{FakeTts, TtsScript},
};

/// The three local providers of one test.
pub struct Rig {
    pub llm: FakeLlm,
    pub stt: FakeStt,
    pub tts: FakeTts,
    pub env: HashMap<String, String>,
}

impl Rig {
    /// The providers of a short outbound call, as the fleet tests script it: the callee's
    /// "Hello, who is this?" (2 s of its audio) comes back as Deepgram results, final just after
    /// it stops; the LLM answers with the `reply` chunks, then calls `end_call`; a Cartesia
    /// stand-in speaks it at `ms_per_char` (40 ms to its first byte).
    pub async fn hello_then_reply(reply: &[&str], ms_per_char: u64) -> Self {
        Self::start(
            vec![LlmScript::text(80, reply).with_tool("end_call", r#"{"reason":"done"}"#)],
            stt::Flavor::Deepgram,
            vec![
                stt::at(1000, stt::dg_result("Hello, who", false, false)),
                stt::at(2300, stt::dg_result("Hello, who is this?", true, true)),
            ],
            tts::Flavor::Cartesia,
            TtsScript {
                ttfb: Duration::from_millis(40),
                ms_per_char,
            },
        )
        .await
    }

    pub async fn start(
        llm: Vec<LlmScript>,
        stt_flavor: stt::Flavor,
        stt_script: Vec<At>,
        tts_flavor: tts::Flavor,
        tts_script: TtsScript,
    ) -> Self {
        test_log::init();
        let llm = FakeLlm::start(llm).await;
        let stt = FakeStt::start(stt_flavor, stt_script).await;
        let tts = FakeTts::start(tts_flavor, tts_script).await;
        let unused = "ws://127.0.0.1:9/unused";
        let (dg, aai, sv_stt) = match stt_flavor {
            stt::Flavor::Deepgram => (stt.url.as_str(), unused, unused),
            stt::Flavor::AssemblyAi => (unused, stt.url.as_str(), unused),
            stt::Flavor::Sarvam => (unused, unused, stt.url.as_str()),
        };
        let (car, el, sv_tts) = match tts_flavor {
            tts::Flavor::Cartesia => (tts.url.as_str(), unused, unused),
            tts::Flavor::ElevenLabs => (unused, tts.url.as_str(), unused),
            tts::Flavor::Sarvam => (unused, unused, tts.url.as_str()),
        };
        let mut env = env(&llm.base_url, dg, aai, car, el);
        // Sarvam's STT and TTS share one API root in production; here they are two servers.
        env.insert("SARVAM_STT_BASE_URL".into(), sv_stt.into());
        env.insert("SARVAM_TTS_BASE_URL".into(), sv_tts.into());
        Self { llm, stt, tts, env }
    }

    pub fn session(&self, options: serde_json::Value, opts: EngineOptions) -> Arc<Session> {
        let cfg = callfleet_voice::resolve_json(&options, &self.env).expect("options resolve");
        Arc::new(Session::new(cfg, opts).expect("session"))
    }
}

/// A running session and its event stream.
pub struct Running {
    pub handle: JoinHandle<SessionReport>,
    pub events: mpsc::UnboundedReceiver<SessionEvent>,
    pub seen: Vec<SessionEvent>,
    pub cancel: CancellationToken,
}

pub fn run(session: Arc<Session>, io: MemoryIo) -> Running {
    let (tx, events) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let handle = tokio::spawn(async move { session.run(io, c, Some(tx)).await });
    Running {
        handle,
        events,
        seen: Vec::new(),
        cancel,
    }
}

impl Running {
    /// Wait for an event matching `pred` (all events are kept in `seen`).
    pub async fn wait_event(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&SessionEvent) -> bool,
    ) -> SessionEvent {
        if let Some(e) = self.seen.iter().find(|e| pred(e)) {
            return e.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(e)) => {
                    self.seen.push(e.clone());
                    if pred(&e) {
                        return e;
                    }
                }
                Ok(None) => panic!(
                    "session ended while waiting for {what}; saw {:?}",
                    self.seen
                ),
                Err(_) => panic!(
                    "timed out after {timeout:?} waiting for {what}; saw {:?}",
                    self.seen
                ),
            }
        }
    }

    pub async fn report(self, timeout: Duration) -> SessionReport {
        within("the session report", timeout, self.handle)
            .await
            .expect("session task")
    }
}

/// A 127.0.0.1 port nothing listens on: bound, then released, so connecting is refused.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}
