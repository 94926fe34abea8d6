//! nats-server and livekit-server, started for real.

use std::process::{Child, Command, Stdio};

use crate::{TempDir, free_port, tool, wait_port_logged};

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

pub struct LiveKitServer {
    pub port: u16,
    pub key: String,
    pub secret: String,
    _dir: TempDir,
    child: Child,
}

impl LiveKitServer {
    /// `livekit-server` in dev-like mode on free loopback ports, with its own keys. It offers
    /// only 127.0.0.1 ICE candidates, so a participant limited to loopback (callfleet-media's
    /// `Options::loopback()`) can reach it.
    pub async fn start() -> Self {
        Self::start_with_redis(None).await
    }

    /// The same, backed by Redis (what livekit-sip needs to reach it).
    pub async fn start_with_redis(redis: Option<&str>) -> Self {
        let dir = TempDir::new("livekit");
        let (port, tcp, udp) = (free_port(), free_port(), free_port());
        let key = "devkey".to_owned();
        let secret = format!("secret-{}", uuid::Uuid::new_v4().simple());
        let mut config = format!(
            "port: {port}\nbind_addresses: [\"127.0.0.1\"]\nrtc:\n  tcp_port: {tcp}\n  udp_port: {udp}\n  use_external_ip: false\n  node_ip: 127.0.0.1\n  enable_loopback_candidate: true\n  interfaces:\n    includes: [lo]\n  ips:\n    includes: [127.0.0.1/8]\nkeys:\n  {key}: {secret}\nlogging:\n  level: warn\n"
        );
        if let Some(addr) = redis {
            config.push_str(&format!("redis:\n  address: {addr}\n"));
        }
        let path = dir.0.join("livekit.yaml");
        std::fs::write(&path, config)
            .unwrap_or_else(|e| panic!("cannot write livekit config: {e}"));
        let log = dir.0.join("livekit-server.log");
        let out = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        let child = Command::new(tool("livekit-server"))
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start livekit-server: {e}"));
        wait_port_logged(port, "livekit-server", &[&log]).await;
        Self {
            port,
            key,
            secret,
            _dir: dir,
            child,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for LiveKitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
