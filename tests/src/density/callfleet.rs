//! callfleet as a [`System`]: a nats-server and one agent worker (the real binary) with as
//! many slots as calls, the voice session on, answering-machine detection off, preemptive
//! generation off; calls are jobs published on `calls.dispatch.density`, and each call's
//! turns come from its `ended` (or `failed`) event's summary. The measured process is the
//! agent worker alone (nats-server is not on the media path; its CPU is not counted).

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::{Bed, Call, CallResult, System, Turn};
use crate::{Fleet, NatsServer, Role, VOICE_SESSION, wait_consumer};

type Summaries = Arc<Mutex<HashMap<String, Value>>>;

/// The worker under test.
pub struct Callfleet {
    /// `agent.vad`: `energy`, `webrtc` or `silero`.
    pub vad: String,
    bin: Option<PathBuf>,
    nats: Option<NatsServer>,
    fleet: Option<Fleet>,
    summaries: Summaries,
    watcher: Option<tokio::task::JoinHandle<()>>,
}

impl Callfleet {
    /// Workers run `bin` (the release build for a bench), else the rig's [`crate::binary`].
    pub fn new(vad: &str, bin: Option<PathBuf>) -> Self {
        Self {
            vad: vad.to_owned(),
            bin,
            nats: None,
            fleet: None,
            summaries: Arc::default(),
            watcher: None,
        }
    }
}

fn lock(s: &Summaries) -> std::sync::MutexGuard<'_, HashMap<String, Value>> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

impl System for Callfleet {
    fn name(&self) -> String {
        format!("callfleet ({} VAD)", self.vad)
    }

    async fn start(&mut self, bed: &Bed, slots: usize) -> Result<(), String> {
        if self.nats.is_none() {
            self.nats = Some(NatsServer::start().await);
        }
        let nats = self.nats.as_ref().ok_or("no nats-server")?;
        let client = nats.client().await;
        let mut sub = client
            .subscribe("calls.events.*.>")
            .await
            .map_err(|e| format!("subscribe to events: {e}"))?;
        let summaries = self.summaries.clone();
        self.watcher = Some(tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let Ok(event) = serde_json::from_slice::<Value>(&msg.payload) else {
                    continue;
                };
                if matches!(event["kind"].as_str(), Some("ended" | "failed"))
                    && let Some(id) = event["call_id"].as_str()
                {
                    lock(&summaries).insert(id.to_owned(), event["summary"].clone());
                }
            }
        }));
        let mut env: Vec<(&str, String)> = vec![
            ("NATS_URL", nats.url()),
            ("SIP_TRUNK_ID", bed.callee.trunk_id.clone()),
            ("SIP_FROM_NUMBER", bed.from_number.clone()),
            (VOICE_SESSION, "true".into()),
            ("CALLFLEET_AGENT__MEDIA_LOOPBACK", "true".into()),
            ("CALLFLEET_AGENT__MAX_CONCURRENT_CALLS", slots.to_string()),
            ("CALLFLEET_AGENT__VAD", self.vad.clone()),
            ("LOG_LEVEL", "warn".into()),
        ];
        env.extend(bed.telephony.livekit.fleet_env());
        for (k, v) in &bed.env {
            env.push((k.as_str(), v.clone()));
        }
        let mut fleet = Fleet::new(&env);
        if let Some(bin) = &self.bin {
            fleet.set_binary(bin.clone());
        }
        fleet.start(Role::Agent);
        wait_consumer(&nats.url(), "CALL_JOBS", "agents").await;
        self.fleet = Some(fleet);
        Ok(())
    }

    fn pids(&self) -> Vec<u32> {
        self.fleet
            .as_ref()
            .and_then(|f| f.pid(Role::Agent))
            .into_iter()
            .collect()
    }

    async fn place(&mut self, _bed: &Bed, calls: &[Call]) -> Result<(), String> {
        let nats = self.nats.as_ref().ok_or("not started")?;
        let js = async_nats::jetstream::new(nats.client().await);
        let mut acks = Vec::with_capacity(calls.len());
        for c in calls {
            let job = json!({
                "call_id": c.id, "destination": c.destination, "account_code": "density",
                "llm": "openai/gpt-4o-mini", "stt": "deepgram/nova-3:en",
                "tts": "cartesia/sonic-3:voice-density", "preemptive_generation": false,
                "prompt": "Answer in one short sentence.",
            });
            let ack = js
                .publish("calls.dispatch.density", job.to_string().into())
                .await
                .map_err(|e| format!("publish {}: {e}", c.id))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await.map_err(|e| format!("publish ack: {e}"))?;
        }
        Ok(())
    }

    async fn finish(
        &mut self,
        _bed: &Bed,
        calls: &[Call],
        within: Duration,
    ) -> Result<Vec<CallResult>, String> {
        let deadline = tokio::time::Instant::now() + crate::scaled(within);
        loop {
            let done = {
                let s = lock(&self.summaries);
                calls.iter().all(|c| s.contains_key(&c.id))
            };
            if done || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let s = lock(&self.summaries);
        Ok(calls
            .iter()
            .map(|c| match s.get(&c.id) {
                Some(summary) => result(&c.id, summary),
                None => CallResult {
                    id: c.id.clone(),
                    answered: false,
                    outcome: "no summary in time".into(),
                    turns: Vec::new(),
                },
            })
            .collect())
    }

    async fn stop(&mut self) {
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
        // The worker is killed (its calls are over); the next size starts a fresh one.
        self.fleet = None;
    }
}

/// A call's summary as a [`CallResult`].
fn result(id: &str, s: &Value) -> CallResult {
    let f = |t: &Value, k: &str| t[k].as_f64();
    CallResult {
        id: id.to_owned(),
        answered: s["outcome"] == "answered",
        outcome: format!(
            "{}/{}",
            s["outcome"].as_str().unwrap_or("?"),
            s["end_reason"].as_str().unwrap_or("?")
        ),
        turns: s["turns"]
            .as_array()
            .map(|turns| {
                turns
                    .iter()
                    .map(|t| Turn {
                        response_ms: f(t, "response_latency_ms"),
                        llm_ttft_ms: f(t, "llm_ttft_ms"),
                        tts_ttfb_ms: f(t, "tts_ttfb_ms"),
                        interrupted: t["interrupted"].as_bool().unwrap_or(false),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}
