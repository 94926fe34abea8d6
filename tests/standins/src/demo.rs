//! The scripted providers of `callfleet dev` (`make run`), started in-process when no provider
//! key is configured, so the demo call has a real turn without paid accounts: the STT hears the
//! demo callee's words ([`HEARD`]) about when it says them, the LLM answers with one sentence
//! that says it is a stand-in ([`REPLY`]) and ends the call (`end_call`), and the TTS speaks it.
//! Nothing is recorded ([`Record::Off`]): dev runs for as long as its user wants.

use std::{collections::HashMap, time::Duration};

use crate::{
    Record,
    llm::{FakeLlm, LlmScript},
    stt::{self, FakeStt, SttOptions, at, dg_result},
    tts::{self, FakeTts, TtsScript},
};

/// What the demo callee says (`tests/sipp/callee.xml`, `…00206`), as the stand-in STT hears it.
pub const HEARD: &str = "Hello, who is this?";
/// The stand-in LLM's one answer.
pub const REPLY: &str = "Hi! This is callfleet's scripted stand-in voice, not a real AI model. \
Add provider keys to .env.local for a real conversation. Goodbye!";

/// The stand-in servers (kept alive as long as this is) and the provider env pointing at them.
pub struct Demo {
    pub llm: FakeLlm,
    pub stt: FakeStt,
    pub tts: FakeTts,
    /// Provider keys (placeholders), defaults and base URLs: what the agent's resolver reads.
    pub env: HashMap<String, String>,
}

/// Start the three stand-ins on 127.0.0.1. `period` is how often the callee says its words
/// again (the length of its looped audio): the STT script repeats with it.
pub async fn start(period: Duration) -> Demo {
    let llm = FakeLlm::start_with(
        vec![LlmScript::text(150, &[REPLY]).with_tool("end_call", r#"{"reason":"demo done"}"#)],
        Record::Off,
    )
    .await;
    // The words take about 1.9 s from the start of the callee's audio; the final transcript
    // arrives just after them, as a streaming STT's does.
    let script = vec![
        at(900, dg_result("Hello, who", false, false)),
        at(2200, dg_result(HEARD, true, true)),
    ];
    let stt = FakeStt::start_with(
        stt::Flavor::Deepgram,
        script,
        SttOptions {
            record: Record::Off,
            repeat_every: Some(period),
        },
    )
    .await;
    let tts = FakeTts::start_with(
        tts::Flavor::Cartesia,
        TtsScript {
            ttfb: Duration::from_millis(80),
            ms_per_char: 30,
        },
        Record::Off,
    )
    .await;
    let unused = "ws://127.0.0.1:9/unused";
    let mut env = crate::env(&llm.base_url, &stt.url, unused, &tts.url, unused);
    env.insert("SARVAM_STT_BASE_URL".into(), unused.into());
    env.insert("SARVAM_TTS_BASE_URL".into(), unused.into());
    Demo { llm, stt, tts, env }
}
