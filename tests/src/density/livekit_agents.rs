//! LiveKit Agents as a [`System`]: the Python worker of `bench/peers/livekit-agents/agent.py`
//! (`crate::peers::LiveKitAgents`), run from its pinned venv with the process executor (the
//! framework's default) or the thread executor, `num_idle_processes` = the calls to come,
//! preemptive generation off (the harness's rule), Silero VAD. Calls are placed as LiveKit's
//! users place them: `CreateRoom` + `CreateAgentDispatch` with seed 001's metadata; the job
//! dials with `CreateSIPParticipant` through the bed's trunk. Each call's turns come from the
//! job's own metrics (`metrics_collected`: the openai plugin's TTFT, the cartesia plugin's
//! TTFB; the end-of-turn decision and the agent's `speaking` state), through
//! [`crate::peers::turns`]. The measured tree is the worker's: the main process, its
//! forkserver, the job processes and the warm spares.

use std::time::Duration;

use serde_json::json;

use super::{Bed, Call, CallResult, System, Turn};
use crate::peers::{self, Executor, LiveKitAgents as Worker, Providers};

/// The peer under test.
pub struct LiveKitAgents {
    pub executor: Executor,
    worker: Option<Worker>,
}

impl LiveKitAgents {
    pub fn new(executor: Executor) -> Self {
        Self {
            executor,
            worker: None,
        }
    }

    fn worker(&self) -> Result<&Worker, String> {
        self.worker
            .as_ref()
            .ok_or_else(|| "the LiveKit Agents worker is not running".to_owned())
    }
}

fn env(bed: &Bed, key: &str) -> Result<String, String> {
    bed.env
        .get(key)
        .cloned()
        .ok_or_else(|| format!("the bed's env has no {key}"))
}

impl System for LiveKitAgents {
    fn name(&self) -> String {
        format!(
            "LiveKit Agents 1.8.9 ({} executor, Silero VAD)",
            self.executor.name()
        )
    }

    async fn start(&mut self, bed: &Bed, slots: usize) -> Result<(), String> {
        let providers = Providers {
            openai: env(bed, "OPENAI_BASE_URL")?,
            deepgram: env(bed, "DEEPGRAM_BASE_URL")?,
            cartesia: env(bed, "CARTESIA_BASE_URL")?,
        };
        let worker = Worker::launch(
            &bed.telephony.livekit,
            &bed.callee.trunk_id,
            &providers,
            self.executor,
            slots,
            Duration::from_secs(90),
        )
        .await?;
        // The warm processes load Python, the plugins and Silero after the registration.
        tokio::time::sleep(Duration::from_secs(6)).await;
        self.worker = Some(worker);
        Ok(())
    }

    fn pids(&self) -> Vec<u32> {
        self.worker.as_ref().map(Worker::pid).into_iter().collect()
    }

    async fn place(&mut self, bed: &Bed, calls: &[Call]) -> Result<(), String> {
        let worker = self.worker()?;
        for call in calls {
            // Seed 001's dispatch metadata.
            let metadata = json!({
                "destination": call.destination,
                "account_code": "density",
                "caller_id": "callfleet-density",
                "caller_name": "callfleet density",
                "caller_number": bed.from_number,
            });
            worker.try_dispatch(&call.id, &metadata).await?;
        }
        Ok(())
    }

    async fn finish(
        &mut self,
        _bed: &Bed,
        calls: &[Call],
        within: Duration,
    ) -> Result<Vec<CallResult>, String> {
        let worker = self.worker()?;
        // A job's room is the call's id; its session closes when the callee hangs up.
        let job_of = |room: &str| {
            worker
                .events("job_start")
                .iter()
                .find(|m| m["room"] == room)
                .and_then(|m| m["job"].as_str().map(str::to_owned))
        };
        let ended = |job: &str| {
            worker
                .metrics()
                .iter()
                .find(|m| {
                    m["job"] == job && matches!(m["event"].as_str(), Some("close" | "dial_failed"))
                })
                .map(|m| {
                    m["reason"]
                        .as_str()
                        .or(m["message"].as_str())
                        .unwrap_or("dial_failed")
                        .to_owned()
                })
        };
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let open = calls
                .iter()
                .filter(|c| job_of(&c.id).is_some_and(|j| ended(&j).is_none()))
                .count();
            if open == 0 || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let metrics = worker.metrics();
        let turns = peers::turns(&metrics);
        Ok(calls
            .iter()
            .map(|call| {
                let job = job_of(&call.id);
                let answered = job.as_ref().is_some_and(|j| {
                    metrics
                        .iter()
                        .any(|m| m["job"] == j.as_str() && m["event"] == "answered")
                });
                let outcome = match &job {
                    None => "never dispatched".to_owned(),
                    Some(j) => ended(j).unwrap_or_else(|| "still open".to_owned()),
                };
                let turns = turns
                    .iter()
                    .filter(|t| job.as_deref() == Some(t.job.as_str()))
                    .map(|t| Turn {
                        response_ms: Some(t.decision_to_audio * 1000.0),
                        llm_ttft_ms: Some(t.llm_ttft * 1000.0),
                        tts_ttfb_ms: Some(t.tts_ttfb * 1000.0),
                        interrupted: false,
                    })
                    .collect();
                CallResult {
                    id: call.id.clone(),
                    answered,
                    outcome,
                    turns,
                }
            })
            .collect())
    }

    async fn stop(&mut self) {
        // Drop kills the worker's process group (worker, forkserver, jobs, spares).
        self.worker = None;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
