//! Helpers for the media transport's tests and bench (`tests/it/media_transport`,
//! `benches/media_bench.rs`): the livekit-server they run against, tones in and out, events
//! awaited with a bound, and a proxy whose connections can be cut.

use std::sync::Arc;
use std::time::{Duration, Instant};

use callfleet_media::{AudioFrame, Event};
use tokio::sync::broadcast;

pub use callfleet_media::tone::{dominant_hz, rms_dbfs, sine};

use crate::{LiveKitOptions, LiveKitServer};

/// livekit-server as the media tests and bench run it: rooms stay 300 s after they empty or
/// a participant departs, so a test sees the room service's view of a room everyone left.
pub async fn livekit() -> LiveKitServer {
    LiveKitServer::start_with(LiveKitOptions {
        room_timeout_secs: Some(300),
        ..LiveKitOptions::default()
    })
    .await
}

/// Waits (bounded) for an event matching `pred`, returning it.
pub async fn wait_event(
    rx: &mut broadcast::Receiver<Event>,
    within: Duration,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    wait_event_named(rx, within, "a matching event", pred).await
}

/// The same, naming `what` it waits for when it times out.
pub async fn wait_event_named(
    rx: &mut broadcast::Receiver<Event>,
    within: Duration,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => panic!("no {what} within {within:?}"),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(e)) => panic!("event stream ended waiting for {what}: {e}"),
            Ok(Ok(e)) if pred(&e) => return e,
            Ok(Ok(_)) => {}
        }
    }
}

/// Collects `want` samples of audio from `from` (an identity or a track sid)
/// after skipping `skip` frames (bounded).
pub async fn collect_audio(
    rx: &mut broadcast::Receiver<AudioFrame>,
    from: &str,
    skip: usize,
    want: usize,
    within: Duration,
) -> Vec<i16> {
    let deadline = tokio::time::Instant::now() + within;
    let (mut skipped, mut out) = (0, Vec::with_capacity(want));
    while out.len() < want {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => panic!(
                "only {} of {want} samples from {from} within {within:?}",
                out.len()
            ),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(e)) => panic!("audio stream ended: {e}"),
            Ok(Ok(f)) if f.identity == from || f.track_sid == from => {
                assert_eq!(f.sample_rate, 48_000);
                if skipped < skip {
                    skipped += 1;
                } else {
                    out.extend_from_slice(&f.samples);
                }
            }
            Ok(Ok(_)) => {}
        }
    }
    out
}

/// Pushes a sine into `track` in real time (20 ms every 20 ms) until `stop`
/// flips or `max` elapses.
pub fn spawn_tone(
    track: callfleet_media::LocalAudioTrack,
    hz: f64,
    amp: f64,
    max: Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let rate = track.sample_rate();
        let per = (rate / 50) as usize;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let started = Instant::now();
        let mut pos = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && started.elapsed() < max {
            tick.tick().await;
            if track.push(&sine(rate, hz, amp, pos, per)).await.is_err() {
                return;
            }
            pos += per as u64;
        }
    })
}

/// A loopback TCP proxy in front of the server's signal port, whose open
/// connections can be cut (the server and the media path stay up).
pub struct Proxy {
    pub port: u16,
    accept: tokio::task::JoinHandle<()>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(target_port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy bind");
        let port = listener.local_addr().expect("addr").port();
        let conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let list = conns.clone();
        let accept = tokio::spawn(async move {
            // Ends when the proxy is dropped (the task is aborted).
            while let Ok((mut client, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                if let Ok(mut l) = list.lock() {
                    l.push(task);
                }
            }
        });
        Self {
            port,
            accept,
            conns,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// Drops every connection open through the proxy.
    pub fn sever(&self) {
        if let Ok(mut l) = self.conns.lock() {
            l.drain(..).for_each(|t| t.abort());
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.sever();
    }
}
