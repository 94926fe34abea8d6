//! The fleet on a 3-node NATS cluster (`nats.replicas = 3`), every NATS link through the rig's
//! proxies, with real calls through livekit-sip to a SIPp callee, under faults:
//! - kill -9 of the node leading `CALL_JOBS` (the `agents` consumer's stream), restarted later;
//! - a partition of that node (its routes and clients black-holed both ways), healed later.
//!
//! Each fault hits while 200 calls are enqueued and 20 are live (two agents of 10 slots; every
//! callee answers, holds [`HOLD_SECS`] and hangs up), and while a trickle of `POST /dispatch`
//! goes on. Afterwards: every accepted call has exactly one final webhook and its job is gone
//! (no lost jobs, no duplicated webhooks), INVITEs per call equal its recorded attempts (no
//! double dial), the calls live at the fault end normally, and the ingress answered only 202,
//! or 503 while the cluster had no quorum for what it writes.

mod rig;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use callfleet_tests::{Behaviour, Fleet, NatsCluster, free_port, wait_for, wait_for_logged};
use tokio::time::Instant;

use rig::{AGENTS, ClusterRig, SLOTS, busiest_node, dispatch, trickle};

/// Calls enqueued before the fault.
const CALLS: usize = 200;
/// How long each callee holds the answered call before hanging up.
const HOLD_SECS: u8 = 4;
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

    // The harshest node to lose: the one most agents talk through, made the leader of
    // `CALL_JOBS` and of its `agents` consumer before any call (a step-down is an election).
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
    // How late after the quorum the test may see it (it polls) and a client may still be
    // leaving a silent node (two 1 s pings, then a reconnection): 2 s, sized for the load.
    let grace = callfleet_tests::scaled(Duration::from_secs(2));
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
         degraded); {} final webhooks ({} media timeouts); done in {done_in:?}",
        live_at_fault.len(),
        rig.cluster.name(leader),
        quorum_at - fault_at,
        restore_at - fault_at,
        whole_at - fault_at,
        answers.len(),
        answers.iter().filter(|a| a.status == 202).count(),
        finals.len(),
        finals
            .values()
            .filter(|h| h[0]["data"]["end_reason"] == "media_timeout")
            .count(),
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
        // Ended by the line and seen to its end by the worker holding it: the callee's BYE, or
        // (on a machine too busy for SIPp to keep its RTP and BYE timely) livekit-sip's media
        // timeout; never `worker_lost` or an estimated duration.
        let by_the_line = matches!(
            s["end_reason"].as_str(),
            Some("callee_hangup" | "media_timeout")
        );
        if s["outcome"] != "answered" || !by_the_line || s["duration_estimated"] != false {
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

/// The node leading `CALL_JOBS` partitioned (routes and clients black-holed both ways, new
/// links never answered) with 200 calls enqueued and 20 live; healed once 20 more calls ended.
#[tokio::test(flavor = "multi_thread")]
async fn cluster_partition_of_the_jobs_leader_loses_nothing() {
    scenario(Fault::Partition).await;
}
