//! LiveKit Agents as a system under test beside callfleet (issue 14 §5): the Python worker of
//! `bench/peers/livekit-agents/agent.py`, run from its own pinned venv
//! (`.tools/lk-agents-venv`, `make setup`), registered with the rig's livekit-server under an
//! agent name; each call is placed as LiveKit's users place one: `CreateRoom` +
//! `CreateAgentDispatch` with seed 001's metadata, and the job dials the callee itself with
//! `CreateSIPParticipant` through the trunk. The worker's whole process tree (the main
//! process, its forkserver and the job processes of the process executor) is measured from
//! `/proc`: CPU from `stat`, RSS from `status`, PSS from `smaps_rollup`.
//!
//! The interface is deliberately small (start → dispatch N → pids to measure → metrics), for
//! the density bench's system-under-test abstraction to wrap.

use std::{
    collections::BTreeSet,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use livekit_api::services::{
    agent_dispatch::AgentDispatchClient,
    room::{CreateRoomOptions, RoomClient},
};
use livekit_protocol as proto;
use serde_json::Value;

use crate::{LiveKitServer, TempDir, log_tail, workspace_root};

/// The agent name the peer registers (explicit dispatch).
pub const AGENT_NAME: &str = "callfleet-peer";

/// LiveKit Agents' job executors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executor {
    /// The framework's default: one process per job (forkserver children).
    Process,
    /// `JobExecutorType.THREAD`: every job a thread of one process.
    Thread,
}

impl Executor {
    pub fn name(self) -> &'static str {
        match self {
            Self::Process => "process",
            Self::Thread => "thread",
        }
    }
}

/// Where the worker's providers are: the stand-ins' URLs as `callfleet_standins` gives them.
#[derive(Debug, Clone)]
pub struct Providers {
    /// The OpenAI API root, `http://h:p/v1` (`FakeLlm::base_url`).
    pub openai: String,
    /// Deepgram's live URL, `ws://h:p/v1/listen` (`FakeStt::url`).
    pub deepgram: String,
    /// Cartesia's websocket, `ws://h:p/tts/websocket` (`FakeTts::url`); the agent cuts it to
    /// the API root its plugin takes.
    pub cartesia: String,
}

/// The worker's venv Python; panics naming `make setup` when it is missing.
pub fn python() -> PathBuf {
    let py = workspace_root().join(".tools/lk-agents-venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run `make setup` (installs LiveKit Agents from bench/peers/livekit-agents/requirements.txt)",
        py.display()
    );
    py
}

/// A running LiveKit Agents worker (its process group is killed on Drop).
pub struct LiveKitAgents {
    child: Child,
    pub executor: Executor,
    log: PathBuf,
    metrics: PathBuf,
    dir: TempDir,
    url: String,
    key: String,
    secret: String,
}

impl LiveKitAgents {
    /// Start the worker against `livekit`, dialing through `trunk_id`, with `idle` warm job
    /// processes (size it to the calls to come), and wait until livekit-server registered it.
    /// Panics (with the worker's log) if it does not.
    pub async fn start(
        livekit: &LiveKitServer,
        trunk_id: &str,
        providers: &Providers,
        executor: Executor,
        idle: usize,
    ) -> Self {
        Self::launch(
            livekit,
            trunk_id,
            providers,
            executor,
            idle,
            Duration::from_secs(90),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`start`](Self::start), an error (with the worker's log) instead of a panic when it
    /// exits or has not registered within `within` (scaled for the machine's load).
    pub async fn launch(
        livekit: &LiveKitServer,
        trunk_id: &str,
        providers: &Providers,
        executor: Executor,
        idle: usize,
        within: Duration,
    ) -> Result<Self, String> {
        let dir = TempDir::new("lk-agents");
        let log = dir.0.join("worker.log");
        let metrics = dir.0.join("metrics.jsonl");
        let out = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        let agent = workspace_root().join("bench/peers/livekit-agents/agent.py");
        let mut cmd = Command::new(python());
        cmd.arg(&agent)
            .arg("start")
            .current_dir(&dir.0)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &dir.0)
            .env("LIVEKIT_URL", livekit.url())
            .env("LIVEKIT_API_KEY", &livekit.key)
            .env("LIVEKIT_API_SECRET", &livekit.secret)
            .env("SIP_TRUNK_ID", trunk_id)
            .env("SIP_FROM_NUMBER", "+61299990000")
            .env("OPENAI_BASE_URL", &providers.openai)
            .env("OPENAI_API_KEY", "sk-test-openai")
            .env("DEEPGRAM_BASE_URL", &providers.deepgram)
            .env("DEEPGRAM_API_KEY", "dg-test")
            .env("CARTESIA_BASE_URL", &providers.cartesia)
            .env("CARTESIA_API_KEY", "sk_car_test")
            .env("LK_PEER_AGENT_NAME", AGENT_NAME)
            .env("LK_PEER_EXECUTOR", executor.name())
            .env("LK_PEER_IDLE", idle.to_string())
            .env("LK_PEER_METRICS", &metrics)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the LiveKit Agents worker: {e}"));
        let deadline = tokio::time::Instant::now() + crate::scaled(within);
        loop {
            if std::fs::read_to_string(&log).is_ok_and(|t| t.contains("registered worker")) {
                break;
            }
            if let Some(status) = child.try_wait().ok().flatten() {
                return Err(format!(
                    "the LiveKit Agents worker exited ({status}) before registering{}",
                    log_tail(&log, 40)
                ));
            }
            if tokio::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the LiveKit Agents worker did not register within {within:?} (scaled){}",
                    log_tail(&log, 40)
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            child,
            executor,
            log,
            metrics,
            dir,
            url: livekit.http_url(),
            key: livekit.key.clone(),
            secret: livekit.secret.clone(),
        })
    }

    /// Place one call as LiveKit's users do: a room, then an explicit dispatch of the agent with
    /// seed 001's metadata (`destination`, `account_code`, ...); the job dials.
    pub async fn dispatch(&self, room: &str, metadata: &Value) -> String {
        self.try_dispatch(room, metadata)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`dispatch`](Self::dispatch), an error instead of a panic.
    pub async fn try_dispatch(&self, room: &str, metadata: &Value) -> Result<String, String> {
        let rooms = RoomClient::with_api_key(&self.url, &self.key, &self.secret);
        rooms
            .create_room(
                room,
                CreateRoomOptions {
                    empty_timeout: 30,
                    departure_timeout: 5,
                    ..CreateRoomOptions::default()
                },
            )
            .await
            .map_err(|e| format!("CreateRoom {room}: {e}"))?;
        let dispatch = AgentDispatchClient::with_api_key(&self.url, &self.key, &self.secret)
            .create_dispatch(proto::CreateAgentDispatchRequest {
                agent_name: AGENT_NAME.to_owned(),
                room: room.to_owned(),
                metadata: metadata.to_string(),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("CreateAgentDispatch {room}: {e}"))?;
        Ok(dispatch.id)
    }

    /// Delete a call's room (hangs the SIP leg up; the job ends).
    pub async fn hang_up(&self, room: &str) {
        let rooms = RoomClient::with_api_key(&self.url, &self.key, &self.secret);
        let _ = rooms.delete_room(room).await;
    }

    /// The worker's main pid: measure the tree under it ([`tree`], [`sample`]).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every line the jobs wrote to the metrics file (`metrics_collected` and session events).
    pub fn metrics(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.metrics)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The metrics lines of one event kind (`answered`, `close`, `metrics`, ...).
    pub fn events(&self, event: &str) -> Vec<Value> {
        self.metrics()
            .into_iter()
            .filter(|m| m["event"] == event)
            .collect()
    }

    /// The processes the jobs ran in (their `job_start` lines): one per job with the process
    /// executor, the worker itself with the thread executor.
    pub fn job_pids(&self) -> Vec<u32> {
        let pids: BTreeSet<u32> = self
            .events("job_start")
            .iter()
            .filter_map(|m| m["pid"].as_u64().and_then(|p| u32::try_from(p).ok()))
            .collect();
        pids.into_iter().collect()
    }

    pub fn log_path(&self) -> &std::path::Path {
        &self.log
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir.0
    }

    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }
}

impl Drop for LiveKitAgents {
    fn drop(&mut self) {
        // The worker's tree (forkserver, job processes, warm spares), each by its pid, leaves
        // first, then the worker itself. No group kill: each pid is one this worker started.
        let mut pids = crate::density::procs::tree(&[self.child.id()]);
        pids.retain(|p| *p != self.child.id());
        if !pids.is_empty() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(pids.iter().map(u32::to_string))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One turn's latencies, from a job's metrics lines (seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// The job (one call) the turn belongs to.
    pub job: String,
    /// The LLM's time to first token, as the openai plugin measured it.
    pub llm_ttft: f64,
    /// The TTS's time to first byte, as the cartesia plugin measured it.
    pub tts_ttfb: f64,
    /// The framework's end-of-turn decision (its `eou_metrics` line, written when the reply is
    /// scheduled) to the agent's state `speaking` (its first audio frame played out).
    pub decision_to_audio: f64,
    /// The providers' share of it: LLM time to first token + TTS time to first byte, as the
    /// plugins measured them for this turn's speech.
    pub providers: f64,
    /// `decision_to_audio - providers`: what the framework added (its turn overhead).
    pub added: f64,
    /// The final transcript's arrival to `speaking` (endpointing delay included).
    pub transcript_to_audio: f64,
}

/// The turns in `metrics` (one job's or all jobs' lines): per `eou_metrics`, the LLM and TTS
/// metrics of the same `speech_id` and the job's next `speaking` state. A turn missing any of
/// them (cut off by a hang-up) is left out.
pub fn turns(metrics: &[Value]) -> Vec<Turn> {
    let f = |v: &Value, k: &str| v[k].as_f64();
    let mut out = Vec::new();
    for eou in metrics.iter().filter(|m| m["type"] == "eou_metrics") {
        let (job, speech) = (&eou["job"], &eou["speech_id"]);
        let Some(decided) = f(eou, "t") else { continue };
        let same = |kind: &str| {
            metrics
                .iter()
                .find(|m| m["job"] == *job && m["type"] == kind && m["speech_id"] == *speech)
        };
        let (Some(llm), Some(tts)) = (same("llm_metrics"), same("tts_metrics")) else {
            continue;
        };
        let speaking = metrics
            .iter()
            .filter(|m| m["job"] == *job && m["event"] == "agent_state" && m["state"] == "speaking")
            .filter_map(|m| f(m, "t"))
            .find(|t| *t >= decided);
        let transcript = metrics
            .iter()
            .filter(|m| m["job"] == *job && m["event"] == "transcript" && m["final"] == true)
            .filter_map(|m| f(m, "t"))
            .rfind(|t| *t <= decided);
        let (Some(speaking), Some(ttft), Some(ttfb)) = (speaking, f(llm, "ttft"), f(tts, "ttfb"))
        else {
            continue;
        };
        let decision_to_audio = speaking - decided;
        out.push(Turn {
            job: job.as_str().unwrap_or_default().to_owned(),
            llm_ttft: ttft,
            tts_ttfb: ttfb,
            decision_to_audio,
            providers: ttft + ttfb,
            added: decision_to_audio - (ttft + ttfb),
            transcript_to_audio: transcript.map_or(f64::NAN, |t| speaking - t),
        });
    }
    out
}

pub use crate::density::{
    procs::{Sample, sample_pids},
    quantile,
};

/// The tree under `root`: CPU seconds, RSS and PSS summed over its processes.
pub fn sample(root: u32) -> Sample {
    crate::density::procs::sample(&[root])
}
