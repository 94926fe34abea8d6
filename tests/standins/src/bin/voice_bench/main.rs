//! Turn overhead: from the end-of-turn decision to the first agent audio frame handed to the
//! transport, over local providers that add no latency (so what is measured is the engine plus
//! loopback provider I/O); and the share of LLM TTFT that preemptive generation hides.
//!
//! `cargo run --release -p callfleet-standins --bin voice_bench -- [sessions] [turns]`; writes
//! nothing, prints Markdown (`make bench` writes it to `bench/voice.md`; copied into
//! `shared/voice/BENCH.md`).
//!
//! `cargo run --release -p callfleet-standins --bin voice_bench -- load [seconds]`: CPU and RSS
//! per concurrent session at 10, 50 and 100 sessions (see `load.rs`).
//!
//! The providers are the scripted stand-ins the voice tests use ([`FakeLlm`], [`FakeStt`],
//! [`FakeTts`]), started with [`Record::Off`] (they keep no log, so memory per session is the
//! engine's), zero TTS TTFB, the chosen LLM TTFT (zero for the overhead and load figures) and
//! an STT script that repeats every `CYCLE_MS` of audio.

mod load;

use std::{collections::HashMap, sync::Arc, time::Duration};

use callfleet_standins::{
    Record,
    llm::{FakeLlm, LlmScript},
    stt::{self, FakeStt, SttOptions, at, dg_result},
    tts::{self, FakeTts, TtsScript},
};

use callfleet_voice::{AudioError, AudioFrame, AudioIo, EngineOptions, Session, resolve_json};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const SPEECH_MS: usize = 400;
const CYCLE_MS: usize = 2000;

/// A callee that says something every `CYCLE_MS`, paced in real time.
struct Callee {
    rx: mpsc::Receiver<AudioFrame>,
}

impl AudioIo for Callee {
    async fn recv(&mut self) -> Option<AudioFrame> {
        self.rx.recv().await
    }
    async fn send(&mut self, _frame: AudioFrame) -> Result<(), AudioError> {
        Ok(())
    }
    fn clear(&mut self) {}
}

/// `offset` staggers sessions so their turns do not all end in the same millisecond.
fn callee(turns: usize, offset: Duration) -> Callee {
    callee_at(turns * CYCLE_MS / 20 + 50, offset, 16_000)
}

/// `frames` 20 ms frames at `rate`: `SPEECH_MS` of a ~380 Hz tone every `CYCLE_MS`, silence
/// otherwise.
fn callee_at(frames: usize, offset: Duration, rate: u32) -> Callee {
    let (tx, rx) = mpsc::channel(16);
    let per_frame = rate as usize / 50;
    let step = 0.15 * 16_000.0 / f64::from(rate);
    tokio::spawn(async move {
        tokio::time::sleep(offset).await;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for i in 0..frames {
            tick.tick().await;
            let ms = (i * 20) % CYCLE_MS;
            let speaking = (200..200 + SPEECH_MS).contains(&ms);
            let samples = (0..per_frame)
                .map(|n| {
                    if speaking {
                        ((n as f64 * step).sin() * 6000.0) as i16
                    } else {
                        0
                    }
                })
                .collect();
            if tx.send(AudioFrame::new(samples, rate)).await.is_err() {
                return;
            }
        }
    });
    Callee { rx }
}

/// Start the local providers; their env for `resolve`. Each turn: the STT sends a final
/// (`speech_final`) transcript 50 ms of audio after the callee stops speaking, the LLM answers
/// "Sure." after `ttft`, the TTS sends 100 ms of audio for it at once.
async fn env(ttft: Duration) -> HashMap<String, String> {
    let final_at = 200 + SPEECH_MS as u64 + 50;
    let reply = LlmScript {
        ttft,
        ..LlmScript::text(0, &["Sure."])
    };
    let llm = FakeLlm::start_with(vec![reply], Record::Off).await;
    let stt = FakeStt::start_with(
        stt::Flavor::Deepgram,
        vec![at(final_at, dg_result("Hello there.", true, true))],
        SttOptions {
            record: Record::Off,
            repeat_every: Some(Duration::from_millis(CYCLE_MS as u64)),
        },
    )
    .await;
    // 5 characters x 20 ms: 100 ms of audio per reply.
    let voice = TtsScript {
        ttfb: Duration::ZERO,
        ms_per_char: 20,
    };
    let tts = FakeTts::start_with(tts::Flavor::Cartesia, voice, Record::Off).await;
    let unused = "ws://127.0.0.1:9/unused";
    callfleet_standins::env(&llm.base_url, &stt.url, unused, &tts.url, unused)
}

/// Response latencies (ms) of every turn of `sessions` concurrent sessions.
async fn measure(sessions: usize, turns: usize, ttft: Duration, preemptive: bool) -> Vec<f64> {
    measure_turns(sessions, turns, ttft, preemptive)
        .await
        .iter()
        .filter_map(|m| m.response_latency_ms)
        .collect()
}

/// Every turn's metrics of `sessions` concurrent sessions.
async fn measure_turns(
    sessions: usize,
    turns: usize,
    ttft: Duration,
    preemptive: bool,
) -> Vec<callfleet_voice::TurnMetrics> {
    let env = env(ttft).await;
    let cfg = match resolve_json(
        &json!({"preemptive_generation": preemptive, "tts": "cartesia"}),
        &env,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Vec::new();
        }
    };
    let mut tasks = Vec::new();
    for i in 0..sessions {
        let Ok(s) = Session::new(cfg.clone(), EngineOptions::default()) else {
            continue;
        };
        let s = Arc::new(s);
        let offset = Duration::from_millis((i * CYCLE_MS / sessions.max(1)) as u64);
        tasks.push(tokio::spawn(async move {
            s.run(callee(turns, offset), CancellationToken::new(), None)
                .await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        if let Ok(report) = t.await {
            out.extend(report.turns);
        }
    }
    out
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    match raw.first().map(String::as_str) {
        Some("load") => return load::all(&raw[1..]),
        Some("load-one") => return load::one(&raw[1..]).await,
        _ => {}
    }
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sessions = args.first().copied().unwrap_or(10);
    let turns = args.get(1).copied().unwrap_or(10);

    println!("## Turn overhead (end of turn -> first agent frame sent), zero provider latency\n");
    println!("{sessions} concurrent sessions x {turns} turns, preemptive generation off.\n");
    let metrics = measure_turns(sessions, turns, Duration::ZERO, false).await;
    let mut v: Vec<f64> = metrics
        .iter()
        .filter_map(|m| m.response_latency_ms)
        .collect();
    println!("| turns | p50 ms | p99 ms | max ms |\n|---|---|---|---|");
    println!(
        "| {} | {:.2} | {:.2} | {:.2} |\n",
        v.len(),
        pct(&mut v, 0.5),
        pct(&mut v, 0.99),
        pct(&mut v, 1.0)
    );
    // Where the time goes: the LLM's first token over loopback HTTP and SSE, the TTS's first
    // audio over its websocket (each as the engine's clients measured it), and the rest (the
    // engine's own work and its task wake-ups).
    let part = |f: &dyn Fn(&callfleet_voice::TurnMetrics) -> Option<f64>| {
        let mut p: Vec<f64> = metrics.iter().filter_map(f).collect();
        (pct(&mut p, 0.5), pct(&mut p, 0.99))
    };
    let llm = part(&|m| m.llm_ttft_ms);
    let tts = part(&|m| m.tts_ttfb_ms);
    let rest = part(&|m| {
        Some(m.response_latency_ms? - m.llm_ttft_ms.unwrap_or(0.0) - m.tts_ttfb_ms.unwrap_or(0.0))
    });
    println!("| part of the response | p50 ms | p99 ms |\n|---|---|---|");
    println!(
        "| LLM first token (loopback HTTP + SSE) | {:.2} | {:.2} |",
        llm.0, llm.1
    );
    println!(
        "| TTS first audio (websocket round trip) | {:.2} | {:.2} |",
        tts.0, tts.1
    );
    println!(
        "| the rest: the engine and its wake-ups | {:.2} | {:.2} |\n",
        rest.0, rest.1
    );

    println!("## Share of LLM TTFT hidden by preemptive generation (unchanged transcript)\n");
    println!("hidden = (p50 off - p50 on) / TTFT. Same sessions and turns as above.\n");
    println!("| TTFT ms | p50 off ms | p50 on ms | p99 on ms | hidden |\n|---|---|---|---|---|");
    for ttft_ms in [200u64, 400] {
        let ttft = Duration::from_millis(ttft_ms);
        let mut off = measure(sessions, turns, ttft, false).await;
        let mut on = measure(sessions, turns, ttft, true).await;
        let (p_off, p_on) = (pct(&mut off, 0.5), pct(&mut on, 0.5));
        let hidden = ((p_off - p_on) / ttft_ms as f64).clamp(0.0, 1.0);
        println!(
            "| {ttft_ms} | {p_off:.1} | {p_on:.1} | {:.1} | {:.0} % |",
            pct(&mut on, 0.99),
            hidden * 100.0
        );
    }
}
