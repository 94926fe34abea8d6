//! The worker's cost of recording a call (`recording.backend = "nats"`), beside the same call
//! unrecorded, in one run. A call's media in the worker is one transport joined to a real
//! livekit-server, publishing the agent's audio and receiving the callee's
//! (`callfleet_tests::bench::pairs`: rooms of two, the peer playing the callee). The run:
//!
//! 1. unrecorded: `calls` rooms, measured over a steady window: CPU and RSS per participant is
//!    the worker's media cost of one call;
//! 2. recorded: the same rooms again, with a recorder per call tapping the agent side's frames
//!    both ways (timeline, resampling, two Opus encoders, Ogg paging, segments streamed to a
//!    real local nats-server's object store), then each recording finished (the join at
//!    hang-up). The recorder's cost per call is run 2 minus run 1, plus the finish.
//!
//! The voice engine's provider traffic (STT, LLM, TTS) is not in the baseline, so the ratio is
//! an upper bound of what recording adds to a real voice call.
//!
//! `cargo bench -p callfleet-tests --bench recording_bench -- calls=20 seconds=20`

use std::{sync::Arc, time::Duration};

use callfleet_recording::{Recorder, Settings, Side, Tap};
use callfleet_tests::{
    NatsServer,
    bench::{Direction, FrameHook, cpu_seconds, pairs},
};
use tokio::time::Instant;

fn main() {
    let (mut calls, mut seconds) = (20usize, 20u64);
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
        let settings = Settings {
            segment: Duration::from_secs(5),
            bitrate_bps: 24_000,
            max_segments: 1000,
        };
        let n = calls * 2;

        // 1. Unrecorded.
        let plain = pairs(n, seconds, None).await;

        // 2. Recorded: participant 2k+1 is call k's agent.
        let run = std::process::id();
        let recorders: Vec<Recorder> = (0..calls)
            .map(|k| {
                Recorder::start(bus.clone(), &settings, &format!("bench-{run}-{k}"), Instant::now())
                    .expect("recorder")
            })
            .collect();
        let taps: Arc<Vec<Tap>> = Arc::new(recorders.iter().map(Recorder::tap).collect());
        let hook: FrameHook = {
            let taps = taps.clone();
            Arc::new(move |i, dir, pcm, rate| {
                if i % 2 == 1 {
                    let side = match dir {
                        Direction::Sent => Side::Agent,
                        Direction::Received => Side::Callee,
                    };
                    taps[i / 2].push(side, pcm, rate);
                }
            })
        };
        let recorded = pairs(n, seconds, Some(hook)).await;
        let cpu0 = cpu_seconds();
        let mut bytes = 0u64;
        for r in recorders {
            bytes += r.finish(Instant::now()).await.bytes.unwrap_or(0);
        }
        let finish_cpu = cpu_seconds() - cpu0;

        // Per call, per minute of call.
        let call_cpu = plain.cpu_per * 60.0;
        let recorder_cpu = ((recorded.cpu_per - plain.cpu_per) * n as f64 / calls as f64) * 60.0
            + finish_cpu / calls as f64 / (seconds as f64 / 60.0);
        let call_rss = plain.rss_mb_per;
        let recorder_rss =
            ((recorded.rss_total_mb - plain.rss_total_mb) / calls as f64).max(0.0);
        let stored_per_min = bytes as f64 / calls as f64 / (seconds as f64 / 60.0);

        println!(
            "{calls} concurrent calls (rooms of two transports on a real livekit-server, the agent side is the worker's call), {seconds} s steady window each, 2 worker threads; recordings stored in a local nats-server.\n"
        );
        println!("| | CPU s per call-minute | % of a core per call | RSS per call (MB) |");
        println!("|---|---|---|---|");
        println!(
            "| unrecorded call (the worker's media: transport, Opus in and out) | {call_cpu:.3} | {:.2} | {call_rss:.2} |",
            call_cpu / 60.0 * 100.0
        );
        println!(
            "| recorded call (the same + tap, timeline, Opus x2, Ogg, segments to NATS, join) | {:.3} | {:.2} | {:.2} |",
            call_cpu + recorder_cpu,
            (call_cpu + recorder_cpu) / 60.0 * 100.0,
            call_rss + recorder_rss
        );
        println!(
            "\nRatio recorded / unrecorded, same run: CPU **{:.2}x**, RSS **{:.2}x**. The recorder alone: {recorder_cpu:.3} CPU s per call-minute, {recorder_rss:.2} MB per call; {:.0} kB stored per call-minute. Frames delivered: {:.1}% unrecorded, {:.1}% recorded.",
            (call_cpu + recorder_cpu) / call_cpu.max(1e-9),
            (call_rss + recorder_rss) / call_rss.max(1e-9),
            stored_per_min / 1000.0,
            plain.delivered * 100.0,
            recorded.delivered * 100.0,
        );
        bus.drain(Duration::from_secs(2)).await;
    });
}
