//! The real `callfleet` binary, one process per role, configured through env as users do.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use crate::{TempDir, workspace_root};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ingress,
    Agent,
    Notifier,
    Campaigner,
    /// LiveKit's agent dispatch made durable, and inbound callers' busy message.
    Dispatcher,
}

impl Role {
    /// The env key of the role's probe and metrics listener (`<role>.metrics_listen`).
    pub fn metrics_env(self) -> Option<&'static str> {
        match self {
            Self::Ingress => None,
            Self::Agent => Some("CALLFLEET_AGENT__METRICS_LISTEN"),
            Self::Notifier => Some("CALLFLEET_NOTIFIER__METRICS_LISTEN"),
            Self::Campaigner => Some("CALLFLEET_CAMPAIGNER__METRICS_LISTEN"),
            Self::Dispatcher => Some("CALLFLEET_DISPATCHER__METRICS_LISTEN"),
        }
    }

    fn arg(self) -> &'static str {
        match self {
            Self::Ingress => "ingress",
            Self::Agent => "agent",
            Self::Notifier => "notifier",
            Self::Campaigner => "campaigner",
            Self::Dispatcher => "dispatcher",
        }
    }
}

/// The voice session switch. The agent's default is on (`agent.voice_session = true`), and a call
/// whose providers cannot be resolved fails before dialing; most tests exercise the plumbing
/// without providers, so [`Fleet::new`] turns it off unless the test's env names it.
pub const VOICE_SESSION: &str = "CALLFLEET_AGENT__VOICE_SESSION";

/// The answering-machine detection switch (`answering.enabled`, on by default). Tests of other
/// parts of a voice call (whose callees are tones, not people) get it off from [`Fleet::new`]
/// unless their env names it; the answering tests turn it on.
pub const ANSWERING: &str = "CALLFLEET_ANSWERING__ENABLED";

/// The env every role of one test shares, and the processes started with it.
pub struct Fleet {
    pub env: BTreeMap<String, String>,
    cwd: TempDir,
    procs: Vec<(Role, Child)>,
    logs: Vec<PathBuf>,
    /// Each started process's `/healthz`, `/readyz`, `/metrics` address, in start order.
    probes: Vec<(Role, String)>,
    bin: Option<PathBuf>,
}

pub fn binary() -> PathBuf {
    // `CALLFLEET_BIN`, else the debug build in `CARGO_TARGET_DIR` (as `make test` builds it),
    // else the workspace's own `target/`.
    let path = std::env::var_os("CALLFLEET_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR").map(|d| PathBuf::from(d).join("debug/callfleet"))
        })
        .unwrap_or_else(|| workspace_root().join("target/debug/callfleet"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p callfleet` (make test does)",
        path.display()
    );
    path
}

impl Fleet {
    /// A fleet with `env`. Voice sessions and answering-machine detection are off
    /// (`VOICE_SESSION=false`, `ANSWERING=false`) unless `env` names them;
    /// [`Fleet::voice_session_default`] leaves both at the config default.
    pub fn new(env: &[(&str, String)]) -> Self {
        let mut map = BTreeMap::new();
        map.insert("LOG_LEVEL".to_owned(), crate::test_log::role_level());
        map.insert(VOICE_SESSION.to_owned(), "false".to_owned());
        map.insert(ANSWERING.to_owned(), "false".to_owned());
        for (k, v) in env {
            map.insert((*k).to_owned(), v.clone());
        }
        Self {
            env: map,
            cwd: TempDir::new("fleet"),
            procs: Vec::new(),
            logs: Vec::new(),
            probes: Vec::new(),
            bin: None,
        }
    }

    /// Leave `agent.voice_session` and `answering.enabled` at the config default (on): the roles
    /// started from now on get neither [`VOICE_SESSION`] nor [`ANSWERING`].
    pub fn voice_session_default(&mut self) {
        self.env.remove(VOICE_SESSION);
        self.env.remove(ANSWERING);
    }

    /// Start roles from this binary instead of [`binary`]'s (the density bench runs the
    /// release build).
    pub fn set_binary(&mut self, path: PathBuf) {
        self.bin = Some(path);
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.env.insert(key.to_owned(), value.into());
    }

    /// Start a role. Its logs go to `<role>-<n>.log` in the fleet's folder (shown when a wait
    /// fails, see [`Fleet::logs`]), or to stderr when `TEST_LOG` is on (see [`crate::test_log`]).
    pub fn start(&mut self, role: Role) {
        let show = crate::test_log::enabled();
        let log = self
            .cwd
            .0
            .join(format!("{}-{}.log", role.arg(), self.logs.len()));
        let stderr = if show {
            Stdio::inherit()
        } else {
            std::fs::File::create(&log).map_or_else(|_| Stdio::null(), Stdio::from)
        };
        if !show {
            self.logs.push(log);
        }
        // Each process gets its own probe port (unless the test chose one), so that several
        // roles, and several tests, never fight over the default.
        let mut own = Vec::new();
        if let Some(key) = role.metrics_env() {
            let addr = self
                .env
                .get(key)
                .cloned()
                .unwrap_or_else(|| format!("127.0.0.1:{}", crate::free_port()));
            own.push((key, addr.clone()));
            self.probes.push((role, addr));
        }
        let bin = self.bin.clone().unwrap_or_else(binary);
        let child = Command::new(bin)
            .arg(role.arg())
            .current_dir(&self.cwd.0)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&self.env)
            .envs(own)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start callfleet {}: {e}", role.arg()));
        self.procs.push((role, child));
    }

    fn pids(&self, role: Role) -> Vec<u32> {
        self.procs
            .iter()
            .filter(|(r, _)| *r == role)
            .map(|(_, c)| c.id())
            .collect()
    }

    fn signal(&self, role: Role, sig: &str) {
        for pid in self.pids(role) {
            let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
        }
    }

    /// The probe address (`host:port` of `/healthz`, `/readyz`, `/metrics`) of the role's
    /// latest started process.
    pub fn probe_addr(&self, role: Role) -> Option<String> {
        self.probes
            .iter()
            .rev()
            .find(|(r, _)| *r == role)
            .map(|(_, a)| a.clone())
    }

    /// SIGTERM every process of a role without waiting: the test watches the drain.
    pub fn term(&self, role: Role) {
        self.signal(role, "-TERM");
    }

    /// kill -9 every process of a role.
    pub fn kill9(&mut self, role: Role) {
        self.signal(role, "-KILL");
        self.reap(role);
    }

    /// SIGTERM every process of a role; returns their exit codes once they exit.
    pub fn sigterm(&mut self, role: Role) -> Vec<Option<i32>> {
        self.signal(role, "-TERM");
        self.reap(role)
    }

    fn reap(&mut self, role: Role) -> Vec<Option<i32>> {
        let mut codes = Vec::new();
        let mut keep = Vec::new();
        for (r, mut child) in self.procs.drain(..) {
            if r == role {
                codes.push(child.wait().ok().and_then(|s| s.code()));
            } else {
                keep.push((r, child));
            }
        }
        self.procs = keep;
        codes
    }

    /// The log file of every role started so far.
    pub fn logs(&self) -> Vec<PathBuf> {
        self.logs.clone()
    }

    /// The pid of a role's first running process.
    pub fn pid(&self, role: Role) -> Option<u32> {
        self.pids(role).first().copied()
    }

    /// Whether a role's process is still running.
    pub fn running(&mut self, role: Role) -> bool {
        self.procs
            .iter_mut()
            .any(|(r, c)| *r == role && matches!(c.try_wait(), Ok(None)))
    }

    /// Run `callfleet <args>` to completion; returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str], extra_env: &[(&str, &str)]) -> (Option<i32>, String, String) {
        let out = Command::new(binary())
            .args(args)
            .current_dir(&self.cwd.0)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&self.env)
            .envs(extra_env.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("cannot run callfleet: {e}"));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for (_, child) in &mut self.procs {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
