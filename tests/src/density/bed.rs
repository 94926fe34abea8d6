//! The density bench's test bed: the telephony rig, one talking callee behind a trunk, and
//! the provider stand-ins at realistic latency. Every system under test of a run shares it.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU16, Ordering},
    time::Duration,
};

use callfleet_standins::{
    Record,
    llm::{FakeLlm, LlmScript},
    stt::{self, FakeStt, SttOptions, at, dg_result},
    tts::{self, FakeTts, TtsScript},
};

use crate::{Behaviour, Callee, Telephony, density::Call, density::procs};

/// What the providers do on every turn.
#[derive(Debug, Clone, Copy)]
pub struct Script {
    /// The LLM's time to first token (the whole reply comes in one chunk after it).
    pub llm_ttft_ms: u64,
    /// The TTS's time from the text to its first audio.
    pub tts_ttfb_ms: u64,
    /// The TTS's audio per character of text (a tone).
    pub tts_ms_per_char: u64,
    /// The agent's reply, every turn (no tool call: the callee ends the call).
    pub reply: &'static str,
}

impl Default for Script {
    /// LLM TTFT 300 ms, TTS first byte 150 ms; a 27-character reply of 1.08 s, which ends
    /// before the callee talks again.
    fn default() -> Self {
        Self {
            llm_ttft_ms: 300,
            tts_ttfb_ms: 150,
            tts_ms_per_char: 40,
            reply: "Sure, I can help with that.",
        }
    }
}

impl Script {
    /// The reply's audio, in 20 ms frames.
    pub fn reply_frames(&self) -> f64 {
        (self.reply.chars().count() as u64 * self.tts_ms_per_char) as f64 / 20.0
    }
}

/// The shared rig of one run. Keep it alive while systems run.
pub struct Bed {
    pub telephony: Telephony,
    pub callee: Callee,
    pub script: Script,
    /// The trunk's caller number.
    pub from_number: String,
    /// Provider keys (placeholders) and base URLs of the stand-ins (`OPENAI_BASE_URL`,
    /// `DEEPGRAM_BASE_URL`, `CARTESIA_BASE_URL`, `OPENAI_API_KEY`, …).
    pub env: HashMap<String, String>,
    next_tag: AtomicU16,
    _llm: FakeLlm,
    _stt: FakeStt,
    _tts: FakeTts,
}

impl Bed {
    pub async fn start(script: Script) -> Self {
        let from_number = "+61299990000".to_owned();
        let telephony = Telephony::start().await;
        let callee = telephony.callee(&[from_number.as_str()]).await;
        let llm = FakeLlm::start_with(
            vec![LlmScript::text(script.llm_ttft_ms, &[script.reply])],
            Record::Off,
        )
        .await;
        // The callee's words take about 1.9 s from the start of each period; the final
        // transcript comes just after them, as a streaming STT's does. The script repeats with
        // the callee's period, on each connection's audio clock.
        let heard = callfleet_rig::callee::HELLO_TEXT;
        let stt = FakeStt::start_with(
            stt::Flavor::Deepgram,
            vec![
                at(900, dg_result("Hello, who", false, false)),
                at(2200, dg_result(heard, true, true)),
            ],
            SttOptions {
                record: Record::Off,
                repeat_every: Some(Duration::from_secs(callfleet_rig::callee::TALK_PERIOD_SECS)),
            },
        )
        .await;
        let tts = FakeTts::start_with(
            tts::Flavor::Cartesia,
            TtsScript {
                ttfb: Duration::from_millis(script.tts_ttfb_ms),
                ms_per_char: script.tts_ms_per_char,
            },
            Record::Off,
        )
        .await;
        let unused = "ws://127.0.0.1:9/unused";
        let mut env = callfleet_standins::env(&llm.base_url, &stt.url, unused, &tts.url, unused);
        env.insert("SARVAM_STT_BASE_URL".into(), unused.into());
        env.insert("SARVAM_TTS_BASE_URL".into(), unused.into());
        Self {
            telephony,
            callee,
            script,
            from_number,
            env,
            next_tag: AtomicU16::new(0),
            _llm: llm,
            _stt: stt,
            _tts: tts,
        }
    }

    /// `n` calls to talkers that hang up after `hold` s, each to its own number (unique in
    /// the run, so no two calls share a number).
    pub fn calls(&self, n: usize, hold: u8) -> Vec<Call> {
        let run = uuid::Uuid::new_v4().simple().to_string();
        (0..n)
            .map(|i| {
                let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
                Call {
                    id: format!("density-{}-{n}-{i}", &run[..8]),
                    destination: Behaviour::Talker(hold).number(tag),
                }
            })
            .collect()
    }

    /// CPU seconds livekit-server and livekit-sip have used so far.
    pub fn server_cpu(&self) -> (f64, f64) {
        let cpu = |pid: Option<u32>| pid.map_or(0.0, procs::cpu_seconds);
        (
            cpu(self.telephony.livekit.pid()),
            cpu(self.telephony.sip_pid()),
        )
    }
}
