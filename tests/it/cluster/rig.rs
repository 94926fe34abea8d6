//! The cluster tests' rig: a [`NatsCluster`], optionally the telephony rig and a callee, a
//! webhook sink and the fleet's env (every role on the cluster, R3); the trickle of
//! `POST /dispatch` a fault is driven through.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use callfleet_tests::{
    Behaviour, Callee, Fleet, NatsCluster, Role, Telephony, WebhookSink, free_port, wait_for,
};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::rig::{FROM_NUMBER, SECRET};

/// Agents, and call slots each: 20 live calls.
pub const AGENTS: usize = 2;
pub const SLOTS: usize = 10;
/// The trickle's pace and its bound (its callees decline at once: 603).
const TRICKLE_EVERY: Duration = Duration::from_millis(200);
const TRICKLE_MAX: usize = 300;

pub(super) struct ClusterRig {
    pub cluster: NatsCluster,
    pub telephony: Option<Telephony>,
    pub callee: Option<Callee>,
    pub sink: WebhookSink,
    pub fleet: Fleet,
    pub http: reqwest::Client,
    pub ingress_port: u16,
}

impl ClusterRig {
    /// The cluster, a webhook sink and the fleet's env; with `telephony`, the SIP rig and a
    /// callee too. No role runs yet.
    pub(super) async fn start(telephony: bool) -> Self {
        let cluster = NatsCluster::start().await;
        let telephony = if telephony {
            Some(Telephony::start().await)
        } else {
            None
        };
        let callee = match &telephony {
            Some(t) => Some(t.callee(&[FROM_NUMBER]).await),
            None => None,
        };
        let sink = WebhookSink::start().await;
        let ingress_port = free_port();
        let mut env = vec![
            ("NATS_URL", cluster.client_urls()),
            ("CALLFLEET_NATS__REPLICAS", "3".to_owned()),
            ("CALLFLEET_RECORDING__REPLICAS", "3".to_owned()),
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
            ("CALLFLEET_NOTIFIER__SCHEDULE_SECS", "[0,1,1,1]".to_owned()),
            ("CALLFLEET_NOTIFIER__JITTER", "0".to_owned()),
            ("CALLFLEET_AGENT__HOLD_POLL_MS", "200".to_owned()),
            ("CALLFLEET_AGENT__DRAIN_GRACE_SECS", "5".to_owned()),
            ("CALLFLEET_AGENT__MAX_CONCURRENT_CALLS", SLOTS.to_string()),
        ];
        if let Some(t) = &telephony {
            env.extend(t.livekit.fleet_env());
        }
        Self {
            cluster,
            telephony,
            callee,
            sink,
            fleet: Fleet::new(&env),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("http client"),
            ingress_port,
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ingress_port)
    }

    pub(super) fn logs(&self) -> Vec<std::path::PathBuf> {
        let mut logs = self.fleet.logs();
        logs.extend(self.cluster.logs());
        logs.extend(self.callee.as_ref().map(Callee::log_path));
        logs
    }

    pub(super) async fn start_ingress(&mut self) {
        self.fleet.start(Role::Ingress);
        let (http, url) = (self.http.clone(), self.url("/readyz"));
        wait_for("the ingress ready", Duration::from_secs(30), || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let r = http.get(&url).send().await.ok()?;
                (r.status() == 200).then_some(())
            }
        })
        .await;
    }

    /// Every role: the ingress, the notifier and the agents.
    pub(super) async fn start_fleet(&mut self) {
        self.start_ingress().await;
        self.fleet.start(Role::Notifier);
        for n in 0..AGENTS {
            self.fleet
                .set("CALLFLEET_AGENT__WORKER_ID", format!("agent-{n}"));
            self.fleet.start(Role::Agent);
        }
    }

    /// The kinds of events each call has so far (from the per-subject counts of
    /// `CALL_EVENTS`, asked of the cluster; `None` while it cannot answer).
    pub(super) async fn event_kinds(&self) -> Option<HashMap<String, HashSet<String>>> {
        let client = self.cluster.client().await;
        let reply = tokio::time::timeout(
            Duration::from_secs(3),
            client.request(
                "$JS.API.STREAM.INFO.CALL_EVENTS",
                json!({"subjects_filter": "calls.events.>"})
                    .to_string()
                    .into(),
            ),
        )
        .await
        .ok()?
        .ok()?;
        let info: Value = serde_json::from_slice(&reply.payload).ok()?;
        let subjects = info["state"]["subjects"].as_object()?;
        let mut kinds: HashMap<String, HashSet<String>> = HashMap::new();
        for subject in subjects.keys() {
            let mut parts = subject.splitn(4, '.').skip(2);
            if let (Some(id), Some(kind)) = (parts.next(), parts.next()) {
                kinds
                    .entry(id.to_owned())
                    .or_default()
                    .insert(kind.to_owned());
            }
        }
        Some(kinds)
    }

    /// The calls answered and not over yet.
    pub(super) async fn live_calls(&self) -> Option<HashSet<String>> {
        let kinds = self.event_kinds().await?;
        Some(
            kinds
                .into_iter()
                .filter(|(_, k)| k.contains("answered") && !k.contains("ended"))
                .filter(|(_, k)| !k.contains("failed"))
                .map(|(id, _)| id)
                .collect(),
        )
    }

    /// The delivered (2xx) final webhooks per call id.
    pub(super) fn finals(&self) -> HashMap<String, Vec<Value>> {
        let mut by_call: HashMap<String, Vec<Value>> = HashMap::new();
        for r in self.sink.delivered() {
            let body = r.json();
            if let Some(id) = body["data"]["call_id"].as_str() {
                by_call.entry(id.to_owned()).or_default().push(body);
            }
        }
        by_call
    }

    pub(super) async fn jobs_left(&self) -> Option<u64> {
        let info = self.cluster.stream_info("CALL_JOBS").await?;
        info["state"]["messages"].as_u64()
    }
}

/// One `POST /dispatch` of the trickle: when it was sent and answered, and how.
#[derive(Debug, Clone)]
pub(super) struct Answer {
    pub sent: Instant,
    pub answered: Instant,
    pub status: u16,
    pub call_id: Option<String>,
    /// The error's message, if any.
    pub message: String,
}

pub(super) async fn dispatch(http: &reqwest::Client, url: &str, key: &str, to: &str) -> Answer {
    let sent = Instant::now();
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .header("Idempotency-Key", key)
        .body(json!({"destination": to, "account_code": "acct-cluster"}).to_string())
        .send()
        .await;
    let (status, body) = match resp {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
        Err(e) => (0, json!({"transport_error": e.to_string()})),
    };
    Answer {
        sent,
        answered: Instant::now(),
        status,
        call_id: (status == 202)
            .then(|| body["call_id"].as_str().map(str::to_owned))
            .flatten(),
        message: body["message"].as_str().unwrap_or_default().to_owned(),
    }
}

/// `POST /dispatch` every [`TRICKLE_EVERY`] until `stop` (at most [`TRICKLE_MAX`]); each
/// callee declines (603), so a call is one INVITE and a final webhook.
pub(super) fn trickle(
    http: reqwest::Client,
    url: String,
    stop: Arc<AtomicBool>,
) -> (Arc<Mutex<Vec<Answer>>>, tokio::task::JoinHandle<()>) {
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let out = answers.clone();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(TRICKLE_EVERY);
        for n in 0..TRICKLE_MAX {
            tick.tick().await;
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let to = Behaviour::Reject(603).number(300 + n as u16);
            let answer = dispatch(&http, &url, &format!("trickle-{n}"), &to).await;
            if let Ok(mut a) = out.lock() {
                a.push(answer);
            }
        }
    });
    (answers, task)
}

/// The node holding the most agents' connections (the ingress's breaks a tie), once every
/// agent and the ingress are connected.
pub(super) async fn busiest_node(cluster: &NatsCluster) -> usize {
    wait_for(
        "every agent and the ingress connected to a node",
        Duration::from_secs(30),
        || async {
            let mut best = (0, 0);
            let (mut agents_seen, mut ingress_seen) = (0, false);
            for node in 0..callfleet_tests::CLUSTER_NODES {
                let names = cluster.connection_names(node).await?;
                let agents = names.iter().filter(|n| *n == "callfleet-agent").count();
                let ingress = names.iter().any(|n| n == "callfleet-ingress");
                agents_seen += agents;
                ingress_seen |= ingress;
                let score = agents * 2 + usize::from(ingress);
                if score > best.1 {
                    best = (node, score);
                }
            }
            (agents_seen == AGENTS && ingress_seen).then_some(best.0)
        },
    )
    .await
}
