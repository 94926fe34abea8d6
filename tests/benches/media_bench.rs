//! N concurrent transports in one process (pairs in rooms), each publishing
//! and receiving audio in real time, against a real livekit-server on
//! loopback. Reports our process's CPU and RSS per participant beside the
//! bare Opus encode+decode cost of the same audio.
//!
//! `cargo bench -p callfleet-tests --bench media_bench -- [sizes=10,50,100] [seconds=10]`
//! (`make bench` writes it to bench/media.md). The server is the rig's launcher, configured as
//! for the media tests (`callfleet_tests::media::livekit`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use callfleet_media::{Event, Options, Transport, audio};
use callfleet_tests::media::livekit;

/// Clock ticks per second for /proc/self/stat (Linux on x86-64: 100).
const CLK_TCK: f64 = 100.0;

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
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

/// Speech-ish test signal: two tones plus a slow amplitude wobble.
fn signal(n: usize, start: u64) -> Vec<i16> {
    (0..n as u64)
        .map(|i| {
            let t = (start + i) as f64 / 48_000.0;
            let env = 0.6 + 0.4 * (t * 3.0 * std::f64::consts::TAU).sin();
            let v = 0.2 * (t * 220.0 * std::f64::consts::TAU).sin()
                + 0.1 * (t * 1330.0 * std::f64::consts::TAU).sin();
            (v * env * 32767.0) as i16
        })
        .collect()
}

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

struct Row {
    n: usize,
    cpu_per: f64,
    rss_mb_per: f64,
    rss_total_mb: f64,
    delivered: f64,
    server_cpu: f64,
    opus_cpu: f64,
    ramp: f64,
}

async fn run(n: usize, seconds: u64) -> Row {
    let server = livekit().await;
    let rss0 = rss_kb();
    let ramp_start = Instant::now();
    let mut transports = Vec::with_capacity(n);
    for i in 0..n {
        let room = format!("bench-{}", i / 2);
        let t = Transport::connect(
            &server.url(),
            &server.token(&room, &format!("p{i}")),
            Options::loopback(),
        )
        .await
        .expect("join");
        transports.push(Arc::new(t));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    // The signal repeats every second (all its frequencies are whole Hz), so
    // one precomputed second keeps signal generation out of the measurement.
    let second: Arc<Vec<i16>> = Arc::new(signal(48_000, 0));
    let mut tasks = Vec::new();
    let mut waits = Vec::new();
    for t in &transports {
        let track = t.publish_audio("bench", 48_000).await.expect("publish");
        let (stop2, sent2, second) = (stop.clone(), sent.clone(), second.clone());
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let mut pos = 0;
            // Bounded by the stop flag and a hard cap.
            for _ in 0..(seconds * 50 * 10) {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                tick.tick().await;
                let _ = track.push(&second[pos..pos + 960]).await;
                pos = (pos + 960) % second.len();
                sent2.fetch_add(1, Ordering::Relaxed);
            }
        }));
        let mut audio = t.remote_audio();
        let (stop2, recv2) = (stop.clone(), received.clone());
        tasks.push(tokio::spawn(async move {
            let cap = Instant::now() + Duration::from_secs(seconds * 10 + 120);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < cap {
                match tokio::time::timeout(Duration::from_millis(200), audio.recv()).await {
                    Ok(Ok(_)) => {
                        recv2.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => break,
                    _ => {}
                }
            }
        }));
        let mut ev = t.events();
        waits.push(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                match tokio::time::timeout_at(deadline, ev.recv()).await {
                    Ok(Ok(Event::TrackSubscribed { .. })) => return true,
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                    Ok(Ok(_)) => {}
                    _ => return false,
                }
            }
        });
    }
    let subscribed = futures_join_all(waits)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count();
    assert_eq!(
        subscribed, n,
        "only {subscribed}/{n} transports got their peer's track"
    );
    let ramp = ramp_start.elapsed().as_secs_f64();

    // Measure a steady window.
    let (cpu0, sent0, recv0) = (
        cpu_seconds(),
        sent.load(Ordering::Relaxed),
        received.load(Ordering::Relaxed),
    );
    let server_cpu0 = server.cpu_seconds();
    let window = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await; // the measurement window itself
    let wall = window.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let server_cpu = server.cpu_seconds() - server_cpu0;
    let rss_total = rss_kb();
    let rss = rss_total - rss0;
    let sent_d = sent.load(Ordering::Relaxed) - sent0;
    let recv_d = received.load(Ordering::Relaxed) - recv0;

    stop.store(true, Ordering::Relaxed);
    for t in &tasks {
        t.abort();
    }
    for t in &transports {
        let _ = t.leave().await;
    }
    drop(transports);
    drop(server);
    let opus_cpu = bare_opus(seconds);
    Row {
        n,
        cpu_per: cpu / wall / n as f64,
        rss_mb_per: rss / 1024.0 / n as f64,
        rss_total_mb: rss_total / 1024.0,
        delivered: recv_d as f64 / sent_d.max(1) as f64,
        server_cpu: server_cpu / wall,
        opus_cpu: opus_cpu / seconds as f64,
        ramp,
    }
}

async fn futures_join_all<F: std::future::Future<Output = bool>>(fs: Vec<F>) -> Vec<bool> {
    let mut set = Vec::with_capacity(fs.len());
    for f in fs {
        set.push(f.await);
    }
    set
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
        let r = rt.block_on(run(n, seconds));
        println!(
            "| {} | {:.2} | {:.0} | {:.2} | {:.0} | {:.3} | {:.1}x | {:.1}% | {:.2} | {:.1} |",
            r.n,
            r.cpu_per * 100.0,
            1.0 / r.cpu_per.max(1e-9),
            r.rss_mb_per,
            r.rss_total_mb,
            r.opus_cpu * 100.0,
            r.cpu_per / r.opus_cpu.max(1e-9),
            r.delivered * 100.0,
            r.server_cpu,
            r.ramp,
        );
    }
}
