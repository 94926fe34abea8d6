//! N concurrent transports in one process (pairs in rooms), each publishing
//! and receiving audio in real time, against a real livekit-server on
//! loopback. Reports our process's CPU and RSS per participant beside the
//! bare Opus encode+decode cost of the same audio.
//!
//! `cargo bench -p callfleet-tests --bench media_bench -- [sizes=10,50,100] [seconds=10]`
//! (`make bench` writes it to bench/media.md). The server is the rig's launcher, configured as
//! for the media tests (`callfleet_tests::media::livekit`).

use callfleet_media::audio;
use callfleet_tests::bench::{Row, cpu_seconds, pairs, signal};

/// CPU seconds to Opus-encode and decode `seconds` of the signal once.
fn bare_opus(seconds: u64) -> f64 {
    const REPS: u32 = 5;
    let pcm = signal(48_000 * seconds as usize, 0);
    let before = cpu_seconds();
    for _ in 0..REPS {
        let packets = audio::encode_decode_roundtrip(&pcm).unwrap_or(0);
        assert_eq!(packets as u64, seconds * 50);
    }
    (cpu_seconds() - before) / f64::from(REPS)
}

fn main() {
    let mut sizes = vec![10, 50, 100];
    let mut seconds = 10;
    for arg in std::env::args().skip(1) {
        if let Some(v) = arg.strip_prefix("sizes=") {
            sizes = v.split(',').filter_map(|s| s.parse().ok()).collect();
        } else if let Some(v) = arg.strip_prefix("seconds=") {
            seconds = v.parse().unwrap_or(10);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "| N | CPU/participant (% of a core) | sessions/core | RSS/participant (MB) | process RSS (MB) | bare Opus enc+dec (% of a core) | ratio | frames delivered | livekit-server CPU (cores) | ramp-up (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let r: Row = rt.block_on(pairs(n, seconds, None));
        let opus_cpu = bare_opus(seconds) / seconds as f64;
        println!(
            "| {} | {:.2} | {:.0} | {:.2} | {:.0} | {:.3} | {:.1}x | {:.1}% | {:.2} | {:.1} |",
            r.n,
            r.cpu_per * 100.0,
            1.0 / r.cpu_per.max(1e-9),
            r.rss_mb_per,
            r.rss_total_mb,
            opus_cpu * 100.0,
            r.cpu_per / opus_cpu.max(1e-9),
            r.delivered * 100.0,
            r.server_cpu,
            r.ramp,
        );
    }
}
