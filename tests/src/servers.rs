//! nats-server and livekit-server, started for real.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use livekit_api::access_token::{AccessToken, VideoGrants};

use crate::{TempDir, free_port, log_tail, tool, wait_port_logged};

pub struct NatsServer {
    pub port: u16,
    store: TempDir,
    child: Option<Child>,
}

impl NatsServer {
    pub async fn start() -> Self {
        let mut server = Self {
            port: free_port(),
            store: TempDir::new("nats"),
            child: None,
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let log = self.log_path();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        let child = Command::new(tool("nats-server"))
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.0.join("js"))
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nats-server: {e}"));
        self.child = Some(child);
        wait_port_logged(self.port, "nats-server", &[&log]).await;
    }

    /// Its log (kept across restarts).
    pub fn log_path(&self) -> std::path::PathBuf {
        self.store.0.join("nats-server.log")
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kill the server (its store survives for `restart`).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port and store.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }

    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url()))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How many times a server is started on fresh ports when a port it was given is taken
/// before it binds.
pub(crate) const BIND_ATTEMPTS: u32 = 3;

/// How to start livekit-server (see [`LiveKitServer::start_with`]).
#[derive(Debug, Default, Clone)]
pub struct LiveKitOptions {
    /// Back it with Redis at this address (what livekit-sip needs to reach it).
    pub redis: Option<String>,
    /// Keep a room this many seconds after it empties or its last participant leaves (the
    /// server's own defaults otherwise).
    pub room_timeout_secs: Option<u32>,
    /// The agent service's `target_load` (0.7 by default): livekit-server offers a job only to
    /// a worker whose reported load is below it, so a LiveKit Agents worker on a busy machine
    /// (load = the machine's CPU) gets nothing. The density bench's peer raises it.
    pub agent_target_load: Option<f32>,
    /// Where it POSTs its webhooks (`webhook.urls`), signed with its own key and secret
    /// (`webhook.api_key`): the real signer the ingress's `POST /livekit/webhook` is tested
    /// against.
    pub webhook_urls: Vec<String>,
}

/// A livekit-server child process, killed on Drop.
pub struct LiveKitServer {
    pub port: u16,
    pub key: String,
    pub secret: String,
    dir: TempDir,
    child: Option<Child>,
}

impl LiveKitServer {
    /// `livekit-server` in dev-like mode on free loopback ports, with its own keys. It offers
    /// only 127.0.0.1 ICE candidates, so a participant limited to loopback (callfleet-media's
    /// `Options::loopback()`) can reach it.
    pub async fn start() -> Self {
        Self::start_with(LiveKitOptions::default()).await
    }

    /// The same, backed by Redis (what livekit-sip needs to reach it).
    pub async fn start_with_redis(redis: Option<&str>) -> Self {
        Self::start_with(LiveKitOptions {
            redis: redis.map(str::to_owned),
            ..LiveKitOptions::default()
        })
        .await
    }

    /// The same, configured by `options`. Returns once the server accepts connections.
    pub async fn start_with(options: LiveKitOptions) -> Self {
        let mut server = Self {
            port: 0,
            key: "devkey".to_owned(),
            secret: format!("secret-{}", uuid::Uuid::new_v4().simple()),
            dir: TempDir::new("livekit"),
            child: None,
        };
        // A port checked free can be taken before the server binds it (suites run side by side
        // in one process, and WebRTC peers bind UDP ports of their own): then it exits at once,
        // and it is started again on other ports.
        for attempt in 1..=BIND_ATTEMPTS {
            server.port = free_port();
            server.write_config(&options, free_port(), free_udp_port());
            match server.spawn().await {
                Ok(()) => return server,
                Err(e) if e.contains("address already in use") && attempt < BIND_ATTEMPTS => {
                    eprintln!(
                        "livekit-server lost a port race (attempt {attempt}); trying other ports"
                    );
                }
                Err(e) => panic!("{e}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn write_config(&self, options: &LiveKitOptions, tcp: u16, udp: u16) {
        let (port, key, secret) = (self.port, &self.key, &self.secret);
        let mut config = format!(
            "port: {port}\nbind_addresses: [\"127.0.0.1\"]\nrtc:\n  tcp_port: {tcp}\n  udp_port: {udp}\n  use_external_ip: false\n  node_ip: 127.0.0.1\n  enable_loopback_candidate: true\n  interfaces:\n    includes: [lo]\n  ips:\n    includes: [127.0.0.1/8]\nkeys:\n  {key}: {secret}\nlogging:\n  level: warn\n"
        );
        if let Some(secs) = options.room_timeout_secs {
            config.push_str(&format!(
                "room:\n  empty_timeout: {secs}\n  departure_timeout: {secs}\n"
            ));
        }
        if let Some(load) = options.agent_target_load {
            config.push_str(&format!("agents:\n  target_load: {load}\n"));
        }
        if !options.webhook_urls.is_empty() {
            config.push_str(&format!("webhook:\n  api_key: {key}\n  urls:\n"));
            for url in &options.webhook_urls {
                config.push_str(&format!("    - {url}\n"));
            }
        }
        if let Some(addr) = &options.redis {
            config.push_str(&format!("redis:\n  address: {addr}\n"));
        }
        std::fs::write(self.dir.0.join("livekit.yaml"), config)
            .unwrap_or_else(|e| panic!("cannot write livekit config: {e}"));
    }

    /// Start the process on the config in its folder (the log is appended to) and wait (sized
    /// for the machine's load) until it accepts connections; an error with its log's tail if it
    /// exits first (a port taken since it was picked, a bad config) or the wait runs out.
    async fn spawn(&mut self) -> Result<(), String> {
        let log = self.log_path();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        let child = Command::new(tool("livekit-server"))
            .arg("--config")
            .arg(self.dir.0.join("livekit.yaml"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start livekit-server: {e}"));
        self.child = Some(child);
        let port = self.port;
        let limit = crate::scaled(Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "livekit-server exited early ({status})\n--- last 30 lines of {} ---\n{}",
                    log.display(),
                    log_tail(&log, 30)
                ));
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "timed out after {limit:?} (load factor {:.1}) waiting for livekit-server to accept connections on 127.0.0.1:{port}\n--- last 30 lines of {} ---\n{}",
                    crate::load_factor(),
                    log.display(),
                    log_tail(&log, 30)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kill the server and start a fresh one (no rooms) on the same ports, keys and config.
    pub async fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn().await {
            panic!("{e}");
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The fleet's env naming this server: `LIVEKIT_URL`, `LIVEKIT_API_KEY`, `LIVEKIT_API_SECRET`.
    pub fn fleet_env(&self) -> [(&'static str, String); 3] {
        [
            ("LIVEKIT_URL", self.url()),
            ("LIVEKIT_API_KEY", self.key.clone()),
            ("LIVEKIT_API_SECRET", self.secret.clone()),
        ]
    }

    /// Its log (kept across restarts).
    pub fn log_path(&self) -> std::path::PathBuf {
        self.dir.0.join("livekit-server.log")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A token to join `room` as `identity`, signed with the server's keys.
    pub fn token(&self, room: &str, identity: &str) -> String {
        AccessToken::with_api_key(&self.key, &self.secret)
            .with_identity(identity)
            .with_grants(VideoGrants {
                room_join: true,
                room: room.into(),
                ..Default::default()
            })
            .to_jwt()
            .unwrap_or_else(|e| panic!("cannot sign a token for {room}/{identity}: {e}"))
    }

    /// Send the process a signal by name (`STOP` freezes it: sockets stay open but nothing is
    /// answered; `CONT` thaws it).
    pub fn signal(&self, sig: &str) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("livekit-server is not running"));
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig} {pid} failed");
    }

    /// CPU seconds (user + system) the server process has used.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = self
            .pid()
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .unwrap_or_default();
        // Fields after the parenthesised command: utime is the 14th, stime the 15th.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // Kernel clock ticks per second (USER_HZ, 100 on Linux).
        (tick(11) + tick(12)) / 100.0
    }
}

impl Drop for LiveKitServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free UDP port on 127.0.0.1 (livekit-server's RTC port is UDP).
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}
