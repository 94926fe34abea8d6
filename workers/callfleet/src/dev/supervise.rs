//! The dev rig's child processes: each starts in its own process group with its log in
//! `.tools/dev/`, is probed until ready, and is watched until dev stops it. An exit that dev did
//! not ask for is reported through [`Supervisor::exited`] with the last lines of the child's log.

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    process::Command,
    sync::{mpsc, watch},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// How long a child may take to become ready. Generous: a busy machine (a build, a test suite)
/// starts livekit-server in seconds, not milliseconds, and a ready child answers at once.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a child may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Lines of a child's log shown when it fails.
const TAIL_LINES: usize = 20;

/// How to tell that a child is ready to serve.
pub enum Probe {
    /// Something accepts TCP connections on 127.0.0.1:port.
    Tcp(u16),
    /// Redis answers `PING` with `+PONG`.
    RedisPing(u16),
    /// An HTTP GET answers 2xx.
    Http(String),
    /// SIP `OPTIONS` to 127.0.0.1:port is answered 200 (the SIPp callee, see `callfleet_rig`).
    SipOptions(u16),
}

impl Probe {
    fn describe(&self) -> String {
        match self {
            Self::Tcp(port) => format!("TCP connections on 127.0.0.1:{port}"),
            Self::RedisPing(port) => format!("PONG to PING on 127.0.0.1:{port}"),
            Self::Http(url) => format!("2xx from GET {url}"),
            Self::SipOptions(port) => format!("200 to SIP OPTIONS on udp 127.0.0.1:{port}"),
        }
    }

    async fn ready(&self, http: &reqwest::Client) -> bool {
        match self {
            Self::Tcp(port) => tokio::net::TcpStream::connect(("127.0.0.1", *port))
                .await
                .is_ok(),
            Self::RedisPing(port) => redis_ping(*port).await.is_ok(),
            Self::Http(url) => http
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()),
            Self::SipOptions(port) => {
                let port = *port;
                tokio::task::spawn_blocking(move || {
                    callfleet_rig::callee::options_ping(port, Duration::from_millis(500))
                })
                .await
                .is_ok_and(|r| r.is_ok())
            }
        }
    }
}

async fn redis_ping(port: u16) -> std::io::Result<()> {
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    conn.write_all(b"PING\r\n").await?;
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(1), conn.read(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("no answer"))??;
    if buf[..n].starts_with(b"+PONG") {
        Ok(())
    } else {
        Err(std::io::Error::other("not PONG"))
    }
}

/// A child that exited while dev still needed it.
pub struct Exit {
    pub name: String,
    pub status: String,
    log: PathBuf,
}

impl Exit {
    /// What happened, with the last lines of the child's log.
    pub fn report(&self) -> String {
        format!(
            "dev: {} exited ({}); the last lines of {}:\n{}",
            self.name,
            self.status,
            self.log.display(),
            tail(&self.log)
        )
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n  ");
    if tail.is_empty() {
        "  (empty)".into()
    } else {
        format!("  {tail}")
    }
}

fn describe(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(s) => s.to_string(),
        Err(e) => format!("cannot wait for it: {e}"),
    }
}

/// The dev rig's children.
pub struct Supervisor {
    dir: PathBuf,
    stop: CancellationToken,
    tasks: TaskTracker,
    exits_tx: mpsc::UnboundedSender<Exit>,
    exits: mpsc::UnboundedReceiver<Exit>,
    http: reqwest::Client,
}

impl Supervisor {
    pub fn new(dir: PathBuf) -> Self {
        let (exits_tx, exits) = mpsc::unbounded_channel();
        Self {
            dir,
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            exits_tx,
            exits,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Where logs and configs go.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Start `name` once its TCP `ports` are free, logging to `<dir>/<name>.log`, and return
    /// when `probe` says it is ready. Fails, with the log's tail, when it exits first or is not
    /// ready within [`READY_TIMEOUT`].
    pub async fn start(
        &mut self,
        name: &str,
        mut cmd: Command,
        ports: &[u16],
        probe: Probe,
    ) -> anyhow::Result<()> {
        for port in ports {
            if std::net::TcpListener::bind(("127.0.0.1", *port)).is_err() {
                bail!(
                    "cannot start {name}: 127.0.0.1:{port} is already in use (another `make run`? \
                     stop it, or point callfleet at your own servers with NATS_URL / LIVEKIT_URL)"
                );
            }
        }
        let log = self.dir.join(format!("{}.log", name.replace(' ', "-")));
        let file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        // Its own process group: a terminal's Ctrl-C reaches callfleet only, which stops the
        // roles first and the servers after, instead of NATS vanishing under a draining fleet.
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id();
        let (exited_tx, exited) = watch::channel(None::<String>);
        let (stop, exits) = (self.stop.clone(), self.exits_tx.clone());
        let (task_name, task_log) = (name.to_owned(), log.clone());
        self.tasks.spawn(async move {
            tokio::select! {
                status = child.wait() => {
                    let status = describe(status);
                    let _ = exited_tx.send(Some(status.clone()));
                    if !stop.is_cancelled() {
                        let _ = exits.send(Exit { name: task_name, status, log: task_log });
                    }
                }
                () = stop.cancelled() => terminate(&mut child, pid).await,
            }
        });

        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = exited.borrow().clone() {
                bail!(
                    "{name} exited while starting ({status}); the last lines of {}:\n{}",
                    log.display(),
                    tail(&log)
                );
            }
            if probe.ready(&self.http).await {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{name} was not ready within {READY_TIMEOUT:?} (waited for {}); the last lines of {}:\n{}",
                    probe.describe(),
                    log.display(),
                    tail(&log)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first child that exits on its own (pending forever while all run).
    pub async fn exited(&mut self) -> Exit {
        match self.exits.recv().await {
            Some(exit) => exit,
            None => std::future::pending().await,
        }
    }

    /// Stop every child: SIGTERM, then SIGKILL after [`STOP_GRACE`].
    pub async fn stop(&mut self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Children are killed on drop (kill_on_drop) when dev fails before `stop`.
        self.stop.cancel();
    }
}

/// SIGTERM (through `kill`, as this crate forbids unsafe code), then SIGKILL.
async fn terminate(child: &mut tokio::process::Child, pid: Option<u32>) {
    if let Some(pid) = pid {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}
