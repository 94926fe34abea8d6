//! The worker's cost of recording a call (`recording.backend = "nats"`), in process: N
//! concurrent simulated two-channel calls (the callee's 20 ms frames at 48 kHz, the agent's at
//! 24 kHz, as the voice session's room audio passes them) run once without recording and once
//! with a recorder per call (resampling, Opus encoding, Ogg paging, segments streamed to a real
//! local nats-server's object store, and the join at hang-up). Prints a Markdown table: CPU
//! seconds per call-minute and RSS per call, recorded beside unrecorded, and their ratio.
//!
//! `cargo bench -p callfleet-tests --bench recording_bench -- calls=20 seconds=20`

use std::time::Duration;

use callfleet_recording::{Recorder, Settings, Side};
use callfleet_tests::NatsServer;
use tokio::time::Instant;

/// Clock ticks per second for /proc/self/stat (Linux on x86-64: 100).
const CLK_TCK: f64 = 100.0;

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / CLK_TCK
}

fn rss_kb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Speech-ish: a tone with a slow wobble, `n` samples from sample `at` at `rate`.
fn frame(n: usize, at: u64, rate: f64, hz: f64) -> Vec<i16> {
    (0..n as u64)
        .map(|i| {
            let t = (at + i) as f64 / rate;
            let wobble = 0.5 + 0.5 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
            (9000.0 * wobble * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
        })
        .collect()
}

/// One simulated call: `seconds` of frames on both sides, tapped if it records.
async fn call(seconds: u64, recorder: Option<Recorder>) -> Option<f64> {
    let tap = recorder.as_ref().map(Recorder::tap);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut sink = 0i64;
    for n in 0..seconds * 50 {
        tick.tick().await;
        let callee = frame(960, n * 960, 48_000.0, 1000.0);
        let agent = frame(480, n * 480, 24_000.0, 267.0);
        if let Some(tap) = &tap {
            tap.push(Side::Callee, &callee, 48_000);
            tap.push(Side::Agent, &agent, 24_000);
        }
        sink += i64::from(callee[0]) + i64::from(agent[0]);
    }
    std::hint::black_box(sink);
    match recorder {
        Some(r) => r.finish(Instant::now()).await.bytes.map(|b| b as f64),
        None => None,
    }
}

struct Run {
    cpu: f64,
    rss_peak_kb: f64,
    bytes: f64,
}

async fn run(bus: Option<&callfleet_bus::Bus>, calls: u64, seconds: u64) -> Run {
    let settings = Settings {
        segment: Duration::from_secs(5),
        bitrate_bps: 24_000,
        max_segments: 1000,
    };
    let (cpu0, rss0) = (cpu_seconds(), rss_kb());
    let mut tasks = Vec::new();
    for i in 0..calls {
        let recorder = bus.map(|b| {
            Recorder::start(
                b.clone(),
                &settings,
                &format!("bench-{i}-{}", uuid()),
                Instant::now(),
            )
            .expect("recorder")
        });
        tasks.push(tokio::spawn(call(seconds, recorder)));
    }
    // Sample RSS while the calls run (bounded: one look per 200 ms of the calls' length).
    let mut peak = rss_kb();
    for _ in 0..seconds * 5 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        peak = peak.max(rss_kb());
    }
    let mut bytes = 0.0;
    for t in tasks {
        bytes += t.await.expect("call").unwrap_or(0.0);
    }
    Run {
        cpu: cpu_seconds() - cpu0,
        rss_peak_kb: (peak - rss0).max(0.0),
        bytes,
    }
}

fn uuid() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn main() {
    let (mut calls, mut seconds) = (20u64, 20u64);
    for arg in std::env::args().skip(1) {
        if let Some(v) = arg.strip_prefix("calls=") {
            calls = v.parse().unwrap_or(calls);
        } else if let Some(v) = arg.strip_prefix("seconds=") {
            seconds = v.parse().unwrap_or(seconds);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let nats = NatsServer::start().await;
        let config = callfleet_config::Config::from_toml(&format!("[nats]\nurl = \"{}\"", nats.url()))
            .expect("config");
        let bus = callfleet_bus::Bus::connect(&config, "bench").await.expect("bus");
        let plain = run(None, calls, seconds).await;
        let recorded = run(Some(&bus), calls, seconds).await;
        let minutes = (calls * seconds) as f64 / 60.0;
        let per_min = |r: &Run| r.cpu / minutes;
        let rss_per = |r: &Run| r.rss_peak_kb / 1024.0 / calls as f64;
        println!("{calls} concurrent simulated calls of {seconds} s, 2 worker threads, one local nats-server (file storage).\n");
        println!("| | CPU s per call-minute | RSS per call (MB, peak delta) | stored bytes per call-minute |");
        println!("|---|---|---|---|");
        println!("| unrecorded (frames only) | {:.4} | {:.2} | - |", per_min(&plain), rss_per(&plain));
        println!(
            "| recorded (tap, resample, Opus ×2, Ogg, segments to NATS, join) | {:.4} | {:.2} | {:.0} |",
            per_min(&recorded),
            rss_per(&recorded),
            recorded.bytes / minutes
        );
        println!(
            "\nRatio recorded / unrecorded: CPU **{:.1}x**, RSS {}. The recorder's own cost: {:.4} CPU s per call-minute ({:.2}% of a core per call), {:.2} MB per call.",
            per_min(&recorded) / per_min(&plain).max(1e-9),
            if rss_per(&plain) >= 0.01 {
                format!("**{:.1}x**", rss_per(&recorded) / rss_per(&plain))
            } else {
                "n/a (the unrecorded path holds no memory per call)".to_owned()
            },
            per_min(&recorded) - per_min(&plain),
            (per_min(&recorded) - per_min(&plain)) / 60.0 * 100.0,
            rss_per(&recorded) - rss_per(&plain),
        );
        bus.drain(Duration::from_secs(2)).await;
    });
}
