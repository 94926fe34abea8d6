//! The rig: real servers for integration tests. Each binds free loopback ports, keeps its state
//! in a temp folder, and is killed on Drop. A missing binary fails with the install command.
//! [`media`] holds the media transport tests' helpers; [`tap`] records the RTP a callee
//! receives (and can answer it, as an IVR); [`test_log`] is the one switch for test
//! logs (`TEST_LOG`), shared with the provider stand-ins (`callfleet-standins`). [`SphinxStt`]
//! is a real speech recogniser (pocketsphinx) speaking Deepgram's streaming protocol.
//! [`Caller`] places inbound calls through livekit-sip (SIPp as a UAC, `tests/sipp/caller.xml`).
//! [`NatsCluster`] is a 3-node nats-server cluster whose every link goes through a [`Proxy`] the
//! test can cut (a partition) and heal.

pub mod bench;
pub mod caller;
mod cluster;
pub mod density;
mod fleet;
pub mod media;
pub mod peers;
mod proxy;
mod servers;
mod sink;
pub mod sphinx;
pub mod tap;
mod telephony;

use std::{future::Future, path::PathBuf, time::Duration};

pub use caller::{
    Caller, CallerAudio, CallerOptions, Dispatch, DispatchRule, InboundCall, InboundTrunk, Side,
};
pub use callfleet_standins::test_log;
pub use cluster::{NODES as CLUSTER_NODES, NatsCluster};
pub use fleet::{ANSWERING, Fleet, Role, VOICE_SESSION, binary};
pub use proxy::{Link, Proxy};
pub use servers::{LiveKitOptions, LiveKitServer, NatsServer};
pub use sink::{Received, WebhookSink};
pub use sphinx::SphinxStt;
pub use telephony::{AGENT_TARGET_LOAD, Behaviour, Callee, SipRequest, Telephony, summarize};

/// Where a tool lives: `.tools/bin` (installed by `make setup`) or PATH. Panics with the
/// install command otherwise: a missing tool is a failing test, never a skip.
pub fn tool(name: &str) -> PathBuf {
    let root = workspace_root();
    let local = root.join(".tools/bin").join(name);
    if local.exists() {
        return local;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join(name).exists() {
                return dir.join(name);
            }
        }
    }
    panic!(
        "{name} is not installed: run `make setup` (installs the pinned nats-server, livekit-server and livekit-sip into .tools/bin, and sipp and redis-server with apt-get)"
    );
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A fresh temp folder, removed on Drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "callfleet-{prefix}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // KEEP_TEMP=1 keeps every server's logs and stores for a post-mortem.
        if std::env::var("KEEP_TEMP").is_ok_and(|v| v == "1") {
            eprintln!("kept {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How much longer than nominal a wait may take on this machine now. Test machines are busy (CI
/// beside other jobs, `make test-load` beside `stress-ng`), so every wait's limit is multiplied
/// by the load per core (1-min load average / cores, between 1 and 4) and by
/// `TEST_TIMEOUT_SCALE` (default 1). A wait that succeeds returns as soon as its condition
/// holds, so a generous limit costs nothing when all is well.
pub fn load_factor() -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    let scale = std::env::var("TEST_TIMEOUT_SCALE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(1.0);
    (load / cores).clamp(1.0, 4.0) * scale
}

/// `nominal` sized for the machine's current load (see [`load_factor`]).
pub fn scaled(nominal: Duration) -> Duration {
    nominal.mul_f64(load_factor())
}

/// Wait until `check` returns `Some`, polling every 50 ms, failing after `timeout` (sized for
/// the machine's load, see [`scaled`]) with what was awaited.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_for_logged(what, timeout, &[], check).await
}

/// [`wait_for`], and on timeout the last lines of each of `logs` (the servers involved) go into
/// the failure message.
pub async fn wait_for_logged<T, F, Fut>(
    what: &str,
    timeout: Duration,
    logs: &[&std::path::Path],
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let limit = scaled(timeout);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            let tails: String = logs.iter().map(|p| log_tail(p, 30)).collect();
            panic!(
                "timed out after {limit:?} (nominal {timeout:?}, load factor {:.1}) waiting for {what}{tails}",
                load_factor()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last `lines` lines of a log file, as a block for a failure message.
pub fn log_tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("(unreadable: {e})"));
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    format!("\n--- last {lines} lines of {} ---\n{tail}", path.display())
}

/// Wait until a TCP port accepts connections.
pub async fn wait_port(port: u16, what: &str) {
    wait_port_logged(port, what, &[]).await;
}

/// [`wait_port`], with the server's logs in the failure message.
pub async fn wait_port_logged(port: u16, what: &str, logs: &[&std::path::Path]) {
    wait_for_logged(
        &format!("{what} to accept connections on 127.0.0.1:{port}"),
        Duration::from_secs(30),
        logs,
        || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        },
    )
    .await;
}

/// Verify a Standard Webhooks signature with this crate's own HMAC, independently of the
/// notifier's code.
pub fn verify_signature(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
    signature: &str,
) -> bool {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use hmac::{Hmac, Mac};
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|b| STANDARD.decode(b).ok())
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(&key) else {
        return false;
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    signature.split(' ').any(|s| s == expected)
}

/// Wait until a durable consumer exists (a role created the topology and is ready to pull).
pub async fn wait_consumer(nats_url: &str, stream: &str, consumer: &str) {
    let client = async_nats::connect(nats_url)
        .await
        .unwrap_or_else(|e| panic!("connect {nats_url}: {e}"));
    let js = async_nats::jetstream::new(client);
    wait_for(
        &format!("consumer {stream}/{consumer}"),
        Duration::from_secs(30),
        || {
            let js = js.clone();
            async move {
                js.get_stream(stream)
                    .await
                    .ok()?
                    .consumer_info(consumer)
                    .await
                    .ok()
                    .map(|_| ())
            }
        },
    )
    .await;
}

/// How many telephony rigs run now, and whether a test has the machine's media to itself.
static MEDIA: (std::sync::Mutex<(usize, bool)>, std::sync::Condvar) =
    (std::sync::Mutex::new((0, false)), std::sync::Condvar::new());

thread_local! {
    /// This test thread holds [`MediaExclusive`]: its own rig does not wait for it.
    static MEDIA_OWNER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A telephony rig's share of the machine (every [`Telephony`] holds one): it waits while a
/// test that needs the whole machine ([`media_exclusive`]) runs.
pub struct MediaShare(());

/// The machine's media to one test: no other telephony rig runs meanwhile.
pub struct MediaExclusive(());

/// The media state, locked (a test that panicked while holding it leaves it usable).
fn media_state() -> std::sync::MutexGuard<'static, (usize, bool)> {
    MEDIA
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Wait on the media state while `busy` holds.
fn media_wait(
    state: std::sync::MutexGuard<'static, (usize, bool)>,
    busy: impl FnMut(&mut (usize, bool)) -> bool,
) -> std::sync::MutexGuard<'static, (usize, bool)> {
    MEDIA
        .1
        .wait_while(state, busy)
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Take a share: blocks while another test has the machine (bounded by that test).
pub fn media_share() -> MediaShare {
    let mut state = media_state();
    if !MEDIA_OWNER.with(std::cell::Cell::get) {
        state = media_wait(state, |s| s.1);
    }
    state.0 += 1;
    MediaShare(())
}

impl Drop for MediaShare {
    fn drop(&mut self) {
        let mut state = media_state();
        state.0 = state.0.saturating_sub(1);
        MEDIA.1.notify_all();
    }
}

/// Have the machine's media to this test: waits for the running telephony rigs to finish and
/// holds new ones back until dropped. For a test whose load is the point (50 callers at once on
/// two cores): beside another media test, the machine, not the code, would be measured.
pub fn media_exclusive() -> MediaExclusive {
    let mut state = media_wait(media_state(), |s| s.1);
    state.1 = true;
    drop(media_wait(state, |s| s.0 > 0));
    MEDIA_OWNER.with(|o| o.set(true));
    MediaExclusive(())
}

impl Drop for MediaExclusive {
    fn drop(&mut self) {
        let mut state = media_state();
        state.1 = false;
        MEDIA_OWNER.with(|o| o.set(false));
        MEDIA.1.notify_all();
    }
}
