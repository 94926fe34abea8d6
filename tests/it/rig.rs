//! One test's fleet: its own nats-server, optionally livekit-server, a webhook sink, and the
//! env every `callfleet` role of the test shares.

use std::time::Duration;

use callfleet_tests::{
    Callee, Fleet, LiveKitOptions, LiveKitServer, NatsServer, Role, Telephony, WebhookSink,
    free_port, wait_for, wait_for_logged,
};
use serde_json::Value;

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The caller number every rig's fleet defaults to (`SIP_FROM_NUMBER`).
pub const FROM_NUMBER: &str = "+61123456789";

/// Which real peers a test needs besides nats-server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peers {
    None,
    /// livekit-server --dev-like, no SIP service.
    LiveKit,
    /// redis + livekit-server + livekit-sip + a SIPp callee behind an outbound trunk.
    Telephony,
}

pub struct Rig {
    pub nats: NatsServer,
    pub _livekit: Option<LiveKitServer>,
    pub telephony: Option<Telephony>,
    pub callee: Option<Callee>,
    pub sink: WebhookSink,
    pub fleet: Fleet,
    pub http: reqwest::Client,
    pub ingress_port: u16,
}

impl Rig {
    pub async fn new(with_livekit: bool) -> Self {
        Self::with(if with_livekit {
            Peers::LiveKit
        } else {
            Peers::None
        })
        .await
    }

    pub async fn with(peers: Peers) -> Self {
        Self::build(peers, false).await
    }

    /// A rig whose livekit-server sends its webhooks (signed with its keys) to the ingress's
    /// `POST /livekit/webhook`.
    pub async fn with_livekit_webhooks() -> Self {
        Self::build(Peers::LiveKit, true).await
    }

    async fn build(peers: Peers, webhooks: bool) -> Self {
        let nats = NatsServer::start().await;
        // Picked before livekit-server starts: its webhook URL names it.
        let ingress_port = free_port();
        let livekit = match peers {
            Peers::LiveKit => Some(
                LiveKitServer::start_with(LiveKitOptions {
                    webhook_urls: if webhooks {
                        vec![format!("http://127.0.0.1:{ingress_port}/livekit/webhook")]
                    } else {
                        Vec::new()
                    },
                    ..LiveKitOptions::default()
                })
                .await,
            ),
            _ => None,
        };
        let telephony = match peers {
            Peers::Telephony => Some(Telephony::start().await),
            _ => None,
        };
        let callee = match &telephony {
            Some(t) => Some(t.callee(&[FROM_NUMBER, "+61299990000"]).await),
            None => None,
        };
        let sink = WebhookSink::start().await;
        let mut env = vec![
            ("NATS_URL", nats.url()),
            (
                "CALLFLEET_INGRESS__BIND",
                format!("127.0.0.1:{ingress_port}"),
            ),
            ("N8N_WEBHOOK_URL", sink.url()),
            ("WEBHOOK_SECRET", SECRET.to_owned()),
            (
                "SIP_TRUNK_ID",
                callee
                    .as_ref()
                    .map_or_else(|| "ST_test".to_owned(), |c| c.trunk_id.clone()),
            ),
            ("SIP_FROM_NUMBER", FROM_NUMBER.to_owned()),
            ("CALLFLEET_RETRY__MAX_INFRA_RETRIES", "0".to_owned()),
            ("CALLFLEET_NOTIFIER__SCHEDULE_SECS", "[0,1,1,1]".to_owned()),
            ("CALLFLEET_NOTIFIER__JITTER", "0".to_owned()),
            ("CALLFLEET_AGENT__HOLD_POLL_MS", "100".to_owned()),
            ("CALLFLEET_AGENT__DRAIN_GRACE_SECS", "5".to_owned()),
        ];
        if let Some(lk) = livekit.as_ref().or(telephony.as_ref().map(|t| &t.livekit)) {
            env.extend(lk.fleet_env());
        }
        let fleet = Fleet::new(&env);
        Self {
            nats,
            _livekit: livekit,
            telephony,
            callee,
            sink,
            fleet,
            http: reqwest::Client::new(),
            ingress_port,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ingress_port)
    }

    pub async fn start_ingress(&mut self) {
        self.fleet.start(Role::Ingress);
        let url = self.url("/readyz");
        let http = self.http.clone();
        wait_for("ingress ready", Duration::from_secs(30), || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.get(&url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status() == 200)
                    .map(|_| ())
            }
        })
        .await;
    }

    pub async fn post(&self, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url("/dispatch"))
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /dispatch: {e}"));
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_call(&self, id: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(self.url(&format!("/calls/{id}")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET: {e}"));
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Every message stored on `stream`, in order (none if the stream does not exist).
    pub async fn stored(&self, stream: &str) -> Vec<async_nats::jetstream::message::StreamMessage> {
        let js = async_nats::jetstream::new(self.nats.client().await);
        let Ok(mut stream) = js.get_stream(stream).await else {
            return Vec::new();
        };
        let Ok(state) = stream.info().await.map(|i| i.state.clone()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(m) = stream.get_raw_message(seq).await {
                out.push(m);
            }
        }
        out
    }

    /// Every event published for a call, in order, as (kind, json).
    pub async fn events(&self, call_id: &str) -> Vec<(String, Value)> {
        let prefix = format!("calls.events.{call_id}.");
        self.stored("CALL_EVENTS")
            .await
            .into_iter()
            .filter_map(|m| {
                let kind = m.subject.strip_prefix(prefix.as_str())?.to_owned();
                Some((
                    kind,
                    serde_json::from_slice(&m.payload).unwrap_or(Value::Null),
                ))
            })
            .collect()
    }

    /// Messages left on a stream.
    pub async fn stream_messages(&self, stream: &str) -> u64 {
        let js = async_nats::jetstream::new(self.nats.client().await);
        match js.get_stream(stream).await {
            Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(_) => 0,
        }
    }
}

/// The seed-000 payload, verbatim.
pub fn seed_payload() -> Value {
    serde_json::json!({
      "destination": "61402012298",
      "account_code": "em-tech-01",
      "transfer_target": "61731071901",
      "caller_id": "LiveKitNehosHosted",
      "caller_number": "+61123456789",
      "caller_name": "LiveKit Nehos Hosted",
      "session_options": {
        "preemptive_generation": false,
        "llm": "openai/gpt-4o-mini",
        "stt": "assemblyai/universal-streaming:en",
        "tts": "cartesia",
        "cartesia_voice": "043cfc81-d69f-4bee-ae1e-7862cb358650"
      },
      "metadata": { "ticket_id": "INC-1234" }
    })
}

impl Rig {
    /// The logs a failed wait shows the tail of: every role's, and the callee's.
    pub fn logs(&self) -> Vec<std::path::PathBuf> {
        let mut logs = self.fleet.logs();
        logs.extend(self.callee.as_ref().map(Callee::log_path));
        logs
    }

    /// The delivered webhook whose summary is for `call_id`, waiting up to `secs`.
    pub async fn summary_of(&self, call_id: &str, secs: u64) -> Value {
        let logs = self.logs();
        let logs: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();
        wait_for_logged(
            &format!("the summary webhook of {call_id}"),
            Duration::from_secs(secs),
            &logs,
            || async {
                self.sink
                    .delivered()
                    .into_iter()
                    .find(|r| r.json()["data"]["call_id"] == call_id)
                    .map(|r| r.json())
            },
        )
        .await
    }

    pub fn callee(&self) -> &Callee {
        self.callee
            .as_ref()
            .expect("this rig was built with Peers::Telephony")
    }

    /// POST /dispatch and return the call id, asserting 202.
    pub async fn dispatch(&self, body: &Value) -> String {
        let (status, resp) = self.post(body, &[]).await;
        assert_eq!(status, 202, "{resp}");
        resp["call_id"]
            .as_str()
            .expect("call_id in the 202")
            .to_owned()
    }
}

impl Rig {
    /// A telephony rig whose leases and ack waits are short (3 s), so a killed worker's call
    /// is taken over within seconds; the ingress and the notifier run, agents are started by
    /// the test ([`Rig::start_agent`]).
    pub async fn fast_takeover() -> Self {
        let mut rig = Self::with(Peers::Telephony).await;
        rig.fleet.set("CALLFLEET_AGENT__ACK_WAIT_SECS", "3");
        rig.fleet.set("CALLFLEET_AGENT__LEASE_TTL_SECS", "3");
        rig.start_ingress().await;
        rig.fleet.start(Role::Notifier);
        rig
    }

    /// Start an agent with this worker id.
    pub fn start_agent(&mut self, id: &str) {
        self.fleet.set("CALLFLEET_AGENT__WORKER_ID", id);
        self.fleet.start(Role::Agent);
    }

    /// Wait until `CALL_JOBS` is empty: every job acked. A worker acks after it publishes the
    /// final event, so a test that saw the webhook must wait for the ack, not assert it.
    pub async fn wait_jobs_acked(&self) {
        let logs = self.logs();
        let logs: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();
        wait_for_logged(
            "every job to be acked (CALL_JOBS empty)",
            Duration::from_secs(10),
            &logs,
            || async { (self.stream_messages("CALL_JOBS").await == 0).then_some(()) },
        )
        .await;
    }

    /// The kinds of a call's events so far, in order.
    pub async fn event_kinds(&self, call_id: &str) -> Vec<String> {
        self.events(call_id)
            .await
            .into_iter()
            .map(|(kind, _)| kind)
            .collect()
    }

    /// The ingress's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Wait for the first event of `kind` for a call.
    pub async fn wait_event(&self, call_id: &str, kind: &str, secs: u64) -> Value {
        let logs = self.logs();
        let logs: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();
        wait_for_logged(
            &format!("event {kind} of {call_id}"),
            Duration::from_secs(secs),
            &logs,
            || async {
                self.events(call_id)
                    .await
                    .into_iter()
                    .find(|(k, _)| k == kind)
                    .map(|(_, v)| v)
            },
        )
        .await
    }

    /// A request to the ingress: (status, JSON body).
    pub async fn call_api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}
