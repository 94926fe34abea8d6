//! What the benches share: this process's CPU time and RSS, a speech-like test signal, and
//! [`pairs`]: N media transports in rooms of two against a real livekit-server, each
//! publishing and receiving audio in real time, measured over a steady window (the media
//! bench's table, and the unrecorded call of the recording bench). `on_frame` sees every frame a
//! participant receives and sends, for work done per frame (the recorder's tap).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use callfleet_media::{Event, Options, Transport};

use crate::media::livekit;

/// Clock ticks per second for /proc/self/stat (Linux on x86-64: 100).
const CLK_TCK: f64 = 100.0;

pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / CLK_TCK
}

pub fn rss_kb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Speech-ish test signal: two tones plus a slow amplitude wobble.
pub fn signal(n: usize, start: u64) -> Vec<i16> {
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

/// One measured window.
pub struct Row {
    pub n: usize,
    pub cpu_per: f64,
    pub rss_mb_per: f64,
    pub rss_total_mb: f64,
    pub delivered: f64,
    pub server_cpu: f64,
    pub ramp: f64,
}

/// Which way a frame went, for [`FrameHook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

/// Called with (participant index, direction, samples, sample rate) for every frame.
pub type FrameHook = Arc<dyn Fn(usize, Direction, &[i16], u32) + Send + Sync>;

/// `n` transports in rooms of two (participants `2k` and `2k + 1` share room `k`), each
/// publishing the test signal and receiving its peer's audio; after all have subscribed, a
/// steady window of `seconds` is measured. Panics when a transport cannot join or subscribe.
pub async fn pairs(n: usize, seconds: u64, hook: Option<FrameHook>) -> Row {
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
    for (i, t) in transports.iter().enumerate() {
        let track = t.publish_audio("bench", 48_000).await.expect("publish");
        let (stop2, sent2, second) = (stop.clone(), sent.clone(), second.clone());
        let hook_sent = hook.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let mut pos = 0;
            // Bounded by the stop flag and a hard cap.
            for _ in 0..(seconds * 50 * 10) {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                tick.tick().await;
                let frame = &second[pos..pos + 960];
                let _ = track.push(frame).await;
                if let Some(h) = &hook_sent {
                    h(i, Direction::Sent, frame, 48_000);
                }
                pos = (pos + 960) % second.len();
                sent2.fetch_add(1, Ordering::Relaxed);
            }
        }));
        let mut audio = t.remote_audio();
        let (stop2, recv2) = (stop.clone(), received.clone());
        let hook_received = hook.clone();
        tasks.push(tokio::spawn(async move {
            let cap = Instant::now() + Duration::from_secs(seconds * 10 + 120);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < cap {
                match tokio::time::timeout(Duration::from_millis(200), audio.recv()).await {
                    Ok(Ok(f)) => {
                        recv2.fetch_add(1, Ordering::Relaxed);
                        if let Some(h) = &hook_received {
                            h(i, Direction::Received, &f.samples, f.sample_rate);
                        }
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
    let subscribed = join_all(waits).await.into_iter().filter(|ok| *ok).count();
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
    Row {
        n,
        cpu_per: cpu / wall / n as f64,
        rss_mb_per: rss / 1024.0 / n as f64,
        rss_total_mb: rss_total / 1024.0,
        delivered: recv_d as f64 / sent_d.max(1) as f64,
        server_cpu: server_cpu / wall,
        ramp,
    }
}

async fn join_all<F: std::future::Future<Output = bool>>(fs: Vec<F>) -> Vec<bool> {
    let mut set = Vec::with_capacity(fs.len());
    for f in fs {
        set.push(f.await);
    }
    set
}
