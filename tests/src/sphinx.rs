//! A real local speech recogniser behind Deepgram's wire protocol:
//! `tests/standins/sphinx/sphinx_stt.py` (pocketsphinx and its bundled en-us model, in
//! `.tools/venv`), so that answering-machine tests measure real recognition of real audio
//! instead of scripted transcripts. A voice session reaches it as it reaches Deepgram: the
//! resolver reads `DEEPGRAM_BASE_URL` (the full `/v1/listen` URL) and `DEEPGRAM_API_KEY`
//! ([`SphinxStt::env`]); any key is accepted.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::{TempDir, log_tail, scaled, workspace_root};

/// The API key the rig hands the Deepgram client (the server checks that one is present).
pub const SPHINX_KEY: &str = "sphinx-test";

pub struct SphinxStt {
    pub port: u16,
    child: Child,
    dir: TempDir,
}

impl SphinxStt {
    /// Start the server on a free port; returns once it printed its listening line, which it
    /// does after a recogniser loaded the model. Panics naming `make setup` when the venv or
    /// pocketsphinx is missing, with the server's stderr when it does not come up.
    pub async fn start() -> Self {
        let python = python();
        let dir = TempDir::new("sphinx");
        let log = dir.0.join("sphinx_stt.log");
        let err = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let mut child = Command::new(&python)
            .arg(script())
            .args(["--port", "0"])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
        let Some(stdout) = child.stdout.take() else {
            panic!("sphinx_stt.py: no stdout pipe");
        };
        let limit = scaled(Duration::from_secs(30));
        let first = tokio::time::timeout(limit, BufReader::new(stdout).lines().next_line()).await;
        let line = match first {
            Ok(Ok(Some(line))) => line,
            Ok(_) => panic!(
                "sphinx_stt.py exited before printing `listening on 127.0.0.1:<port>`; a \
                 missing pocketsphinx means the venv is stale: run `make setup`{}",
                log_tail(&log, 30)
            ),
            Err(_) => panic!(
                "timed out after {limit:?} waiting for sphinx_stt.py to print `listening on \
                 127.0.0.1:<port>` (it prints it once pocketsphinx loaded its model){}",
                log_tail(&log, 30)
            ),
        };
        let port = line
            .strip_prefix("listening on 127.0.0.1:")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("sphinx_stt.py printed {line:?}, not its listening line"));
        Self { port, child, dir }
    }

    /// `ws://127.0.0.1:<port>`: the API root, as Deepgram's SDK takes it.
    pub fn base_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// The streaming endpoint, as our resolver's `DEEPGRAM_BASE_URL` takes it.
    pub fn listen_url(&self) -> String {
        format!("{}/v1/listen", self.base_url())
    }

    /// The env a voice session needs to use this server as its Deepgram STT (merge it over
    /// the other providers' env; `session_options.stt` = `deepgram/nova-3` or the default).
    pub fn env(&self) -> HashMap<String, String> {
        HashMap::from([
            ("DEEPGRAM_BASE_URL".to_owned(), self.listen_url()),
            ("DEEPGRAM_API_KEY".to_owned(), SPHINX_KEY.to_owned()),
        ])
    }

    /// Its stderr (ignored messages, lost recognisers).
    pub fn log_path(&self) -> PathBuf {
        self.dir.0.join("sphinx_stt.log")
    }

    /// CPU seconds the server and its finished recogniser processes have used (user + system,
    /// the children's once reaped), from `/proc`.
    pub fn cpu_secs(&self) -> f64 {
        self.child.id().map_or(0.0, cpu_secs)
    }

    /// How many recogniser processes it has now: one per open stream, plus the spare it keeps
    /// warm for the next connection (its children, found by their parent in `/proc`).
    pub fn recognisers(&self) -> usize {
        let Some(pid) = self.child.id() else {
            return 0;
        };
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return 0;
        };
        procs
            .filter_map(Result::ok)
            .filter_map(|p| std::fs::read_to_string(p.path().join("stat")).ok())
            .filter(|stat| parent(stat) == Some(pid))
            .count()
    }
}

/// The venv's interpreter; panics naming `make setup` when the venv is not there.
pub fn python() -> PathBuf {
    let path = workspace_root().join(".tools/venv/bin/python");
    assert!(
        path.exists(),
        "the Python venv is not installed at {}: run `make setup` (it installs pocketsphinx and \
         the providers' SDKs into .tools/venv)",
        path.display()
    );
    path
}

/// `tests/standins/sphinx/sphinx_stt.py`.
pub fn script() -> PathBuf {
    workspace_root().join("tests/standins/sphinx/sphinx_stt.py")
}

/// The parent pid in a `/proc/<pid>/stat` line (the field after the state, after the
/// command, which may hold spaces and parentheses).
fn parent(stat: &str) -> Option<u32> {
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// utime + stime + cutime + cstime of a process, in seconds (0 when it cannot be read).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat"))
        .unwrap_or_default();
    // Fields after the command (which may hold spaces) start after the last ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let ticks: f64 = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|t| t.parse::<f64>().ok())
        .sum();
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    ticks / 100.0
}

impl Drop for SphinxStt {
    fn drop(&mut self) {
        // Its recogniser processes read their audio from its pipes and exit at EOF.
        let _ = self.child.start_kill();
    }
}
