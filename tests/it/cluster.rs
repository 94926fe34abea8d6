//! The fleet on a 3-node NATS cluster (`nats.replicas = 3`), every NATS link through the rig's
//! proxies, with real calls through livekit-sip to a SIPp callee, under faults:
//! - kill -9 of the node leading `CALL_JOBS` (the `agents` consumer's stream), restarted later;
//! - a partition of that node (its routes and clients cut both ways), healed later.
//!
//! Each fault hits while 200 calls are enqueued and 20 are live (two agents of 10 slots; every
//! callee answers, holds [`HOLD_SECS`] and hangs up), and while a trickle of `POST /dispatch`
//! goes on. Afterwards: every accepted call has exactly one final webhook and its job is gone
//! (no lost jobs, no duplicated webhooks), INVITEs per call equal its recorded attempts (no
//! double dial), the calls live at the fault end normally, and the ingress answered only 202,
//! or 503 while the cluster had no quorum for what it writes.

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
    wait_for_logged,
};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::rig::{FROM_NUMBER, SECRET};

/// Calls enqueued before the fault.
const CALLS: usize = 200;
/// Agents, and call slots each: 20 live calls.
const AGENTS: usize = 2;
const SLOTS: usize = 10;
/// How long each callee holds the answered call before hanging up.
const HOLD_SECS: u8 = 4;
/// The trickle's pace and its bound (its callees decline at once: 603).
const TRICKLE_EVERY: Duration = Duration::from_millis(200);
const TRICKLE_MAX: usize = 300;
/// What the ingress writes (its quorum): the jobs stream, the call-state bucket, the events.
const INGRESS_STREAMS: [&str; 3] = ["CALL_JOBS", "KV_calls", "CALL_EVENTS"];
/// Every stream and bucket the fleet creates.
const ALL_STREAMS: [&str; 12] = [
    "CALL_JOBS",
    "CALL_EVENTS",
    "CALL_DLQ",
    "WEBHOOKS",
    "CAMPAIGN_CONTACTS",
    "CAMPAIGN_TALLY",
    "KV_calls",
    "KV_call_leases",
    "KV_campaigns",
    "KV_number_locks",
    "KV_dnc",
    "OBJ_recordings",
];

struct ClusterRig {
    cluster: NatsCluster,
    telephony: Option<Telephony>,
    callee: Option<Callee>,
    sink: WebhookSink,
    fleet: Fleet,
    http: reqwest::Client,
    ingress_port: u16,
}

impl ClusterRig {
    /// The cluster, a webhook sink and the fleet's env; with `telephony`, the SIP rig and a
    /// callee too. No role runs yet.
    async fn start(telephony: bool) -> Self {
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

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ingress_port)
    }

    fn logs(&self) -> Vec<std::path::PathBuf> {
        let mut logs = self.fleet.logs();
        logs.extend(self.cluster.logs());
        logs.extend(self.callee.as_ref().map(Callee::log_path));
        logs
    }

    async fn start_ingress(&mut self) {
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
    async fn start_fleet(&mut self) {
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
    async fn event_kinds(&self) -> Option<HashMap<String, HashSet<String>>> {
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
    async fn live_calls(&self) -> Option<HashSet<String>> {
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
    fn finals(&self) -> HashMap<String, Vec<Value>> {
        let mut by_call: HashMap<String, Vec<Value>> = HashMap::new();
        for r in self.sink.delivered() {
            let body = r.json();
            if let Some(id) = body["data"]["call_id"].as_str() {
                by_call.entry(id.to_owned()).or_default().push(body);
            }
        }
        by_call
    }

    async fn jobs_left(&self) -> Option<u64> {
        let info = self.cluster.stream_info("CALL_JOBS").await?;
        info["state"]["messages"].as_u64()
    }
}

/// One `POST /dispatch` of the trickle: when it was sent and answered, and how.
#[derive(Debug, Clone)]
struct Answer {
    sent: Instant,
    answered: Instant,
    status: u16,
    call_id: Option<String>,
    /// The error's message, if any.
    message: String,
}

async fn dispatch(http: &reqwest::Client, url: &str, key: &str, to: &str) -> Answer {
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
fn trickle(
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Kill9,
    Partition,
}

/// Wait until every stream the ingress writes has a leader among the healthy nodes, and the
/// meta group has one: the cluster has quorum for `POST /dispatch` again.
async fn wait_ingress_quorum(cluster: &NatsCluster) {
    cluster.wait_meta_leader().await;
    for stream in INGRESS_STREAMS {
        cluster
            .wait_stream_leader(stream, Duration::from_secs(30))
            .await;
    }
}

/// The node holding the most agents' connections (the ingress's breaks a tie).
async fn busiest_node(cluster: &NatsCluster) -> usize {
    let mut best = (0, 0);
    for node in 0..callfleet_tests::CLUSTER_NODES {
        let names = cluster.connection_names(node).await.unwrap_or_default();
        let agents = names.iter().filter(|n| *n == "callfleet-agent").count();
        let ingress = usize::from(names.iter().any(|n| n == "callfleet-ingress"));
        let score = agents * 2 + ingress;
        if score > best.1 {
            best = (node, score);
        }
    }
    best.0
}

async fn scenario(fault: Fault) {
    let started = Instant::now();
    let mut rig = ClusterRig::start(true).await;
    rig.start_fleet().await;
    let (configured, holders) = rig
        .cluster
        .replicas_of("CALL_JOBS")
        .await
        .expect("CALL_JOBS info");
    assert_eq!((configured, holders), (3, 3), "CALL_JOBS is R3");

    // 200 calls, enqueued 8 at a time; all accepted (the cluster is whole).
    let url = rig.url("/dispatch");
    let numbers: Vec<String> = (0..CALLS)
        .map(|i| Behaviour::AnswerThenHangUp(HOLD_SECS).number(i as u16))
        .collect();
    let mut ids: HashMap<String, String> = HashMap::new();
    for chunk in (0..CALLS).collect::<Vec<_>>().chunks(8) {
        let answers = futures::future::join_all(chunk.iter().map(|&i| {
            let (http, url, to) = (rig.http.clone(), url.clone(), numbers[i].clone());
            async move { (i, dispatch(&http, &url, &format!("call-{i}"), &to).await) }
        }))
        .await;
        for (i, a) in answers {
            assert_eq!(a.status, 202, "call {i} before the fault: {a:?}");
            ids.insert(a.call_id.expect("call_id"), numbers[i].clone());
        }
    }
    let enqueued_in = started.elapsed();

    // 20 live calls.
    let logs = rig.logs();
    let log_refs: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();
    wait_for_logged(
        "20 calls live (answered, not over) at once",
        Duration::from_secs(120),
        &log_refs,
        || async {
            let live = rig.live_calls().await?;
            (live.len() >= AGENTS * SLOTS).then_some(())
        },
    )
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let (answers, trickle_task) = trickle(rig.http.clone(), url.clone(), stop.clone());
    // Let the trickle start against the whole cluster.
    wait_for(
        "the trickle's first answers",
        Duration::from_secs(20),
        || {
            let answers = answers.clone();
            async move { (answers.lock().ok()?.len() >= 3).then_some(()) }
        },
    )
    .await;

    // The harshest node to lose: the one most agents talk through, made the leader of
    // `CALL_JOBS` and of its `agents` consumer.
    let leader = busiest_node(&rig.cluster).await;
    rig.cluster
        .move_leader("CALL_JOBS", Some("agents"), leader)
        .await;
    let clients_on_leader = rig
        .cluster
        .connection_names(leader)
        .await
        .unwrap_or_default();
    assert!(
        clients_on_leader.iter().any(|n| n == "callfleet-agent"),
        "an agent talks through the node at fault: {clients_on_leader:?}"
    );
    let live_at_fault = rig.live_calls().await.expect("events before the fault");
    let fault_at = Instant::now();
    match fault {
        Fault::Kill9 => rig.cluster.kill9(leader),
        Fault::Partition => rig.cluster.partition(leader),
    }
    wait_ingress_quorum(&rig.cluster).await;
    let quorum_at = Instant::now();
    let new_leader = rig
        .cluster
        .wait_stream_leader("CALL_JOBS", Duration::from_secs(30))
        .await;
    assert_ne!(new_leader, leader, "CALL_JOBS moved to a healthy node");

    // The degraded cluster keeps working: 20 more calls end, and the ingress accepts the
    // trickle, while the node is away.
    let finals_at_quorum = rig.finals().len();
    let grace = Duration::from_secs(2);
    wait_for_logged(
        "20 more calls to end, and 5 dispatches accepted, while the node is away",
        Duration::from_secs(120),
        &log_refs,
        || async {
            let accepted = answers
                .lock()
                .ok()?
                .iter()
                .filter(|a| a.status == 202 && a.sent > quorum_at + grace)
                .count();
            (rig.finals().len() >= finals_at_quorum + 20 && accepted >= 5).then_some(())
        },
    )
    .await;
    let restore_at = Instant::now();
    match fault {
        Fault::Kill9 => rig.cluster.restart(leader).await,
        Fault::Partition => rig.cluster.heal(leader),
    }
    rig.cluster.wait_meta_leader().await;
    for stream in INGRESS_STREAMS {
        rig.cluster
            .wait_stream_current(stream, Duration::from_secs(60))
            .await;
    }
    let whole_at = Instant::now();
    stop.store(true, Ordering::SeqCst);
    trickle_task.await.expect("trickle task");
    let answers = answers.lock().map(|a| a.clone()).unwrap_or_default();

    // Every accepted call reaches its final webhook, and its job leaves the stream.
    let mut accepted: HashMap<String, String> = ids.clone();
    for (n, a) in answers.iter().enumerate() {
        if let Some(id) = &a.call_id {
            accepted.insert(id.clone(), Behaviour::Reject(603).number(300 + n as u16));
        }
    }
    wait_for_logged(
        &format!(
            "a final webhook for each of the {} accepted calls",
            accepted.len()
        ),
        Duration::from_secs(240),
        &log_refs,
        || async {
            let finals = rig.finals();
            accepted
                .keys()
                .all(|id| finals.contains_key(id))
                .then_some(())
        },
    )
    .await;
    wait_for_logged(
        "every job acked (CALL_JOBS empty)",
        Duration::from_secs(90),
        &log_refs,
        || async { (rig.jobs_left().await? == 0).then_some(()) },
    )
    .await;
    let done_in = started.elapsed();

    let finals = rig.finals();
    let degraded_202 = answers
        .iter()
        .filter(|a| a.status == 202 && a.sent > quorum_at + grace && a.answered < restore_at)
        .count();
    let n503 = answers.iter().filter(|a| a.status == 503).count();
    eprintln!(
        "cluster {fault:?}: {CALLS} calls enqueued in {enqueued_in:?}; {} live at the fault; \
         node {} (CALL_JOBS and agents leader, clients {clients_on_leader:?}) down; quorum back after {:?}; node back after {:?}, whole \
         after {:?}; trickle {} requests ({} × 202, {n503} × 503, {degraded_202} × 202 while \
         degraded); {} final webhooks; done in {done_in:?}",
        live_at_fault.len(),
        rig.cluster.name(leader),
        quorum_at - fault_at,
        restore_at - fault_at,
        whole_at - fault_at,
        answers.len(),
        answers.iter().filter(|a| a.status == 202).count(),
        finals.len(),
    );

    // 0 lost, 0 duplicated final webhooks; nothing delivered for a call never accepted.
    let dupes: Vec<_> = finals
        .iter()
        .filter(|(_, hooks)| hooks.len() != 1)
        .map(|(id, hooks)| (id.clone(), hooks.len()))
        .collect();
    assert!(
        dupes.is_empty(),
        "final webhooks delivered more than once: {dupes:?}"
    );
    let unknown: Vec<_> = finals
        .keys()
        .filter(|id| !accepted.contains_key(*id))
        .collect();
    assert!(
        unknown.is_empty(),
        "webhooks for calls never accepted: {unknown:?}"
    );

    // 0 double dials: INVITEs per call (distinct SIP dialogs: a retransmission is not a
    // dial) == its attempts.
    let mut dialogs: HashMap<String, HashSet<String>> = HashMap::new();
    for r in rig.callee.as_ref().expect("callee").received("INVITE") {
        let dialog = r.header("Call-ID").unwrap_or_default().to_owned();
        dialogs
            .entry(r.user().to_owned())
            .or_default()
            .insert(dialog);
    }
    let invites: HashMap<String, usize> = dialogs.into_iter().map(|(k, v)| (k, v.len())).collect();
    let mut mismatched = Vec::new();
    for (id, number) in &accepted {
        let summary = &finals[id][0]["data"];
        let attempts = summary["attempts"].as_array().map_or(0, Vec::len);
        let got = invites.get(number).copied().unwrap_or(0);
        if got != attempts {
            mismatched.push(format!(
                "{id} ({number}): {got} INVITEs, {attempts} attempts: {summary}"
            ));
        }
    }
    assert!(
        mismatched.is_empty(),
        "double (or lost) dials:\n{}",
        mismatched.join("\n")
    );

    // Every enqueued call was answered and ended by its callee; those live at the fault too.
    let mut failed = Vec::new();
    for id in ids.keys() {
        let s = &finals[id][0]["data"];
        if s["outcome"] != "answered" || s["end_reason"] != "callee_hangup" {
            let live = if live_at_fault.contains(id) {
                " (live at the fault)"
            } else {
                ""
            };
            failed.push(format!("{id}{live}: {s}"));
        }
    }
    assert!(
        failed.is_empty(),
        "calls that did not end normally:\n{}",
        failed.join("\n")
    );
    for id in answers.iter().filter_map(|a| a.call_id.as_ref()) {
        let s = &finals[id][0]["data"];
        assert_eq!(s["outcome"], "declined", "{s}");
    }

    // The ingress: 202, or 503 only while the cluster had no quorum for its writes (a request
    // sent before the quorum was seen back; the test polls, so allow the poll's lag).
    let mut bad = Vec::new();
    for a in &answers {
        let ok = match a.status {
            202 => true,
            503 => a.answered >= fault_at && a.sent <= quorum_at + grace,
            _ => false,
        };
        if !ok {
            bad.push(format!(
                "{} sent at +{:?} answered at +{:?} (fault at 0, quorum back at +{:?}): {}",
                a.status,
                a.sent.saturating_duration_since(fault_at),
                a.answered.saturating_duration_since(fault_at),
                quorum_at - fault_at,
                a.message
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "the ingress answered outside the contract:\n{}",
        bad.join("\n")
    );
    assert!(
        degraded_202 > 0,
        "the ingress accepted calls while the node was away"
    );
    drop(rig.telephony.take());
}

/// The fleet on the cluster creates every stream, bucket and the object store with 3 replicas
/// (`CALLFLEET_NATS__REPLICAS=3`, `CALLFLEET_RECORDING__REPLICAS=3`), each held by 3 servers,
/// and accepts a dispatch through the proxies.
#[tokio::test(flavor = "multi_thread")]
async fn cluster_streams_and_buckets_are_r3() {
    let mut rig = ClusterRig::start(false).await;
    rig.start_ingress().await;
    for stream in ALL_STREAMS {
        let replicas = rig.cluster.replicas_of(stream).await;
        assert_eq!(
            replicas,
            Some((3, 3)),
            "{stream}: (configured, servers holding it)"
        );
    }
    let a = dispatch(&rig.http, &rig.url("/dispatch"), "r3-1", "+61400000001").await;
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(rig.jobs_left().await, Some(1));
    let pids = rig.cluster.pids();
    assert!(pids.iter().all(Option::is_some), "{pids:?}");
}

/// `nats.replicas = 3` on a single server is refused at start, plainly: the process exits
/// non-zero naming the stream and NATS's reason, instead of running on R1.
#[tokio::test(flavor = "multi_thread")]
async fn cluster_replicas_on_a_single_server_are_refused_at_start() {
    let nats = callfleet_tests::NatsServer::start().await;
    let fleet = Fleet::new(&[
        ("NATS_URL", nats.url()),
        ("CALLFLEET_NATS__REPLICAS", "3".to_owned()),
        (
            "CALLFLEET_INGRESS__BIND",
            format!("127.0.0.1:{}", free_port()),
        ),
    ]);
    let (code, _, err) = fleet.run(&["ingress"], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("CALL_JOBS") && err.contains("non-clustered"),
        "names the stream and the reason: {err}"
    );
}

/// kill -9 of the node leading `CALL_JOBS` with 200 calls enqueued and 20 live; restarted once
/// 20 more calls ended on the remaining two.
#[tokio::test(flavor = "multi_thread")]
async fn cluster_kill9_of_the_jobs_leader_loses_nothing() {
    scenario(Fault::Kill9).await;
}

/// The node leading `CALL_JOBS` partitioned (routes and clients cut both ways, new links
/// refused) with 200 calls enqueued and 20 live; healed once 20 more calls ended.
#[tokio::test(flavor = "multi_thread")]
async fn cluster_partition_of_the_jobs_leader_loses_nothing() {
    scenario(Fault::Partition).await;
}
