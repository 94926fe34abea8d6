//! Cost per concurrent session: N sessions (10, 50, 100) run over in-memory audio against the
//! local providers (the scripted stand-ins, not recording, with zero TTFT and TTFB), each
//! callee sending 48 kHz 20 ms frames continuously with `SPEECH_MS` of "speech" every
//! `CYCLE_MS` (so the VAD, the STT stream, turns, LLM requests,
//! TTS and paced playout all run). Process CPU comes from `/proc/self/stat` (utime + stime),
//! RSS from `/proc/self/status` (VmRSS).
//!
//! The local providers run on their own runtime thread (`fake-providers`), so their CPU is read
//! separately from `/proc/self/task/*/stat` and the engine's share is the rest. Each N runs in a
//! fresh child process (`load-one`), so RSS is not flattered by memory freed by a previous run.

use std::{sync::Arc, time::Duration};

use callfleet_voice::{EngineOptions, Session, resolve_json};
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{CYCLE_MS, callee_at, env};

const COUNTS: [usize; 3] = [10, 50, 100];
/// Time for every session to start (they are staggered over one cycle) and reach steady state.
const WARMUP: Duration = Duration::from_secs(3);
const RSS_EVERY: Duration = Duration::from_millis(250);
/// Kernel clock ticks per second for /proc stat times (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// Run every N in a child process and print the Markdown table.
pub fn all(args: &[String]) {
    let secs = args.first().and_then(|a| a.parse().ok()).unwrap_or(10u64);
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot find the bench binary: {e}");
            return;
        }
    };
    println!("## Cost per concurrent session (48 kHz callee audio, a turn every 2 s)\n");
    println!(
        "{secs} s measured after {} s of warm-up; CPU in % of one core.\n",
        WARMUP.as_secs()
    );
    println!(
        "| sessions | CPU total % | CPU fake providers % | CPU engine % | engine % per session | \
         sessions per core (engine) | RSS before MB | RSS peak MB | RSS per session MB | turns per session |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for n in COUNTS {
        let out = std::process::Command::new(&exe)
            .args(["load-one", &n.to_string(), &secs.to_string()])
            .output();
        match out {
            Ok(o) if o.status.success() => print!("{}", String::from_utf8_lossy(&o.stdout)),
            Ok(o) => eprintln!(
                "load-one {n} failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("load-one {n}: {e}"),
        }
    }
}

/// One N: print one table row.
pub async fn one(args: &[String]) {
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10);
    let secs: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let window = Duration::from_secs(secs);

    // The providers get their own runtime (one thread) so their CPU can be told apart.
    let fakes_rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fake-providers")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fakes runtime: {e}");
            return;
        }
    };
    let env = match fakes_rt.spawn(env(Duration::ZERO)).await {
        Ok(env) => env,
        Err(e) => {
            eprintln!("fakes task: {e}");
            return;
        }
    };
    let cfg = match resolve_json(
        &json!({"preemptive_generation": false, "tts": "cartesia"}),
        &env,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };

    let rss_before = rss_kb();
    let cancel = CancellationToken::new();
    // Enough audio for warm-up, the window and the stagger; cancelled at the end anyway.
    let frames = ((WARMUP + window).as_millis() as usize + 2 * CYCLE_MS) / 20;
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let Ok(s) = Session::new(cfg.clone(), EngineOptions::default()) else {
            continue;
        };
        let s = Arc::new(s);
        let offset = Duration::from_millis((i * CYCLE_MS / n.max(1)) as u64);
        let io = callee_at(frames, offset, 48_000);
        let c = cancel.clone();
        tasks.push(tokio::spawn(async move { s.run(io, c, None).await }));
    }
    tokio::time::sleep(WARMUP).await;

    let (cpu0, fakes0) = cpu_seconds();
    let t0 = Instant::now();
    let mut rss_peak = rss_kb();
    let mut tick = tokio::time::interval(RSS_EVERY);
    while t0.elapsed() < window {
        tick.tick().await;
        rss_peak = rss_peak.max(rss_kb());
    }
    let (cpu1, fakes1) = cpu_seconds();
    let wall = t0.elapsed().as_secs_f64();

    cancel.cancel();
    let mut turns = 0usize;
    let mut ended = 0usize;
    for t in tasks {
        if let Ok(report) = t.await {
            turns += report.turns.len();
            ended += 1;
        }
    }
    fakes_rt.shutdown_background();

    let total = (cpu1 - cpu0) / wall * 100.0;
    let fakes = (fakes1 - fakes0) / wall * 100.0;
    let engine = total - fakes;
    let per_session = engine / n as f64;
    let per_core = if per_session > 0.0 {
        100.0 / per_session
    } else {
        f64::INFINITY
    };
    let mb = |kb: u64| kb as f64 / 1024.0;
    let rss_per = mb(rss_peak.saturating_sub(rss_before)) / n as f64;
    println!(
        "| {n} | {total:.1} | {fakes:.1} | {engine:.1} | {per_session:.2} | {per_core:.0} | {:.1} | {:.1} | {rss_per:.2} | {:.1} |",
        mb(rss_before),
        mb(rss_peak),
        turns as f64 / ended.max(1) as f64,
    );
}

/// `(process CPU seconds, CPU seconds of the fake-provider threads)`.
fn cpu_seconds() -> (f64, f64) {
    let total = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| stat_ticks(&s))
        .map_or(0.0, |(_, t)| t);
    let mut fakes = 0.0;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for task in dir.flatten() {
            let Ok(s) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            if let Some((comm, t)) = stat_ticks(&s)
                && comm.starts_with("fake-providers")
            {
                fakes += t;
            }
        }
    }
    (total / TICKS, fakes / TICKS)
}

/// `(comm, utime + stime in ticks)` from a `stat` line.
fn stat_ticks(stat: &str) -> Option<(String, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // After the comm: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: f64 = rest.get(11)?.parse().ok()?;
    let stime: f64 = rest.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
