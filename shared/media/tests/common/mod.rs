//! Test harness: a real livekit-server on loopback ports, tokens, signal
//! generation and analysis. Shared by the integration tests.
#![allow(dead_code)]

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callfleet_media::{AudioFrame, Event};
use livekit_api::access_token::{AccessToken, VideoGrants};
use tokio::sync::broadcast;

pub const API_KEY: &str = "devkey";
pub const API_SECRET: &str = "callfleet-media-test-secret-0123456789";

/// A livekit-server child process, killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("LIVEKIT_SERVER_BIN") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/livekit-server")
}

fn free_tcp_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
    l.local_addr().expect("addr").port()
}

fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    s.local_addr().expect("addr").port()
}

fn spawn(bin: &std::path::Path, dir: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .expect("log file");
    Command::new(bin)
        .arg("--config")
        .arg(dir.join("livekit.yaml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log clone"))
        .stderr(log)
        .spawn()
        .expect("spawn livekit-server")
}

impl Server {
    /// Starts a server and waits (bounded) until its HTTP port accepts connections.
    pub async fn start() -> Self {
        let bin = binary();
        assert!(
            bin.is_file(),
            "livekit-server binary not found at {}: run `make setup`",
            bin.display()
        );
        let (port, tcp, udp) = (free_tcp_port(), free_tcp_port(), free_udp_port());
        let dir =
            std::env::temp_dir().join(format!("callfleet-media-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = format!(
            "port: {port}\nbind_addresses: [\"127.0.0.1\"]\n\
             rtc:\n  tcp_port: {tcp}\n  udp_port: {udp}\n  use_external_ip: false\n  node_ip: 127.0.0.1\n\
             \x20 enable_loopback_candidate: true\n  interfaces:\n    includes: [lo]\n  ips:\n    includes: [127.0.0.1/8]\n\
             room:\n  empty_timeout: 300\n  departure_timeout: 300\n\
             keys:\n  {API_KEY}: {API_SECRET}\nlogging:\n  level: warn\n"
        );
        let cfg_path = dir.join("livekit.yaml");
        std::fs::write(&cfg_path, config).expect("write config");
        let child = spawn(&bin, &dir);
        let mut server = Self { child, port, dir };
        server.wait_ready().await;
        server
    }

    /// Kills the server and starts a fresh one (no rooms) on the same ports.
    pub async fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&binary(), &self.dir);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "livekit-server exited early ({status}); log:\n{}",
                    self.log()
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await; // poll interval
        }
        panic!("livekit-server not ready in 20 s; log:\n{}", self.log());
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the server process: sockets stay
    /// open but nothing is answered.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{sig} failed");
    }

    /// CPU seconds (user + system) the server process has used.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (tick(11) + tick(12)) / 100.0
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn token(&self, room: &str, identity: &str) -> String {
        AccessToken::with_api_key(API_KEY, API_SECRET)
            .with_identity(identity)
            .with_grants(VideoGrants {
                room_join: true,
                room: room.into(),
                ..Default::default()
            })
            .to_jwt()
            .expect("token")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "callfleet_media=info".into()),
        )
        .with_test_writer()
        .try_init();
}

// Not every test file uses every helper.
#[allow(unused_imports)]
pub use callfleet_media::tone::{dominant_hz, rms_dbfs, sine};

/// Waits (bounded) for an event matching `pred`, returning it.
pub async fn wait_event(
    rx: &mut broadcast::Receiver<Event>,
    within: Duration,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => panic!("no matching event within {within:?}"),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(e)) => panic!("event stream ended: {e}"),
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
