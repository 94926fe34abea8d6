//! The numbers an autoscaler reads, on real processes: an agent worker with 2 slots on the real
//! telephony rig (livekit-sip, a SIPp callee whose numbers answer and stay), 3 jobs, so 2 calls
//! hold both slots and 1 job waits; then SIGTERM, during which `/readyz` says `draining` while
//! the calls still run.

use std::time::Duration;

use callfleet_tests::{Behaviour, NatsServer, Role, wait_for, wait_for_logged};
use serde_json::json;

use super::probe::{self, Scrape};
use crate::rig::{Peers, Rig};

const STREAM: &str = "CALL_JOBS";
const AGENTS: &str = "agents";

/// The server's own view of a consumer: (num_pending, num_ack_pending).
async fn server_counts(nats: &NatsServer, consumer: &str) -> Option<(u64, usize)> {
    let js = async_nats::jetstream::new(nats.client().await);
    let info = js
        .get_stream(STREAM)
        .await
        .ok()?
        .consumer_info(consumer)
        .await
        .ok()?;
    Some((info.num_pending, info.num_ack_pending))
}

/// (pending, ack pending, free slots, busy slots) as the agent's `/metrics` reports them.
fn agent_numbers(s: &Scrape) -> Option<(f64, f64, f64, f64)> {
    Some((
        s.consumer("num_pending", STREAM, AGENTS)?,
        s.consumer("num_ack_pending", STREAM, AGENTS)?,
        s.get("callfleet_agent_slots_free", &[])?,
        s.get("callfleet_agent_slots_busy", &[])?,
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn scale_agent_metrics_follow_backlog_and_slots_and_readyz_drains() {
    let mut rig = Rig::with(Peers::Telephony).await;
    rig.fleet.set("CALLFLEET_AGENT__MAX_CONCURRENT_CALLS", "2");
    // Long enough to watch the drain, short enough not to wait on it for long.
    rig.fleet.set("CALLFLEET_AGENT__DRAIN_GRACE_SECS", "10");
    rig.fleet.start(Role::Agent);
    let addr = rig
        .fleet
        .probe_addr(Role::Agent)
        .expect("the agent's probe address");
    let http = reqwest::Client::new();
    let logs = rig.fleet.logs();
    let logs: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();

    // Idle: alive, ready, every slot free, nothing waiting.
    let idle = wait_for_logged(
        "the agent ready and idle",
        Duration::from_secs(30),
        &logs,
        || async {
            let (status, _) = probe::readyz(&http, &addr).await?;
            let s = probe::scrape(&http, &addr)
                .await
                .filter(|_| status == 200)?;
            (agent_numbers(&s)? == (0.0, 0.0, 2.0, 0.0)).then_some(s)
        },
    )
    .await;
    assert_eq!(idle.get("callfleet_agent_slots_total", &[]), Some(2.0));
    assert_eq!(
        idle.get("callfleet_jetstream_consumer_info_up", &[]),
        Some(1.0)
    );
    let (status, _) = probe::get(&http, &addr, "/healthz")
        .await
        .expect("/healthz");
    assert_eq!(status, 200);

    // Three calls to callees that answer and stay: two hold the slots, one waits.
    let js = async_nats::jetstream::new(rig.nats.client().await);
    let ids: Vec<String> = (1..=3).map(|i| format!("scale-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let tag = 40 + u16::try_from(i).expect("small");
        let body = json!({
            "call_id": id,
            "destination": Behaviour::AnswerAndStay.number(tag),
            "account_code": "acct-scale",
        });
        js.publish("calls.dispatch.default", body.to_string().into())
            .await
            .expect("publish")
            .await
            .expect("acked");
    }
    let busy = wait_for_logged(
        "2 live calls holding both slots and 1 job waiting, on /metrics",
        Duration::from_secs(60),
        &logs,
        || async {
            let s = probe::scrape(&http, &addr).await?;
            (agent_numbers(&s)? == (1.0, 2.0, 0.0, 2.0)).then_some(s)
        },
    )
    .await;
    // What KEDA's nats-jetstream scaler computes: pending + ack pending = 3 calls' worth.
    assert_eq!(
        busy.consumer("num_pending", STREAM, AGENTS)
            .unwrap_or_default()
            + busy
                .consumer("num_ack_pending", STREAM, AGENTS)
                .unwrap_or_default(),
        3.0
    );
    // The same numbers as the server's own consumer info.
    assert_eq!(server_counts(&rig.nats, AGENTS).await, Some((1, 2)));
    // The slots are held by calls the callees answered (the first two jobs, in order).
    for id in &ids[..2] {
        wait_for(
            &format!("{id} answered"),
            Duration::from_secs(30),
            || async {
                rig.events(id)
                    .await
                    .iter()
                    .any(|(k, _)| k == "answered")
                    .then_some(())
            },
        )
        .await;
    }

    // SIGTERM: not ready at once (the pod leaves its Service), still alive, calls still live.
    rig.fleet.term(Role::Agent);
    let (_, body) = wait_for("/readyz 503 draining", Duration::from_secs(10), || async {
        probe::readyz(&http, &addr).await.filter(|(s, _)| *s == 503)
    })
    .await;
    assert_eq!(body["reason"], "draining", "{body}");
    let (status, _) = probe::get(&http, &addr, "/healthz")
        .await
        .expect("/healthz while draining");
    assert_eq!(status, 200, "alive while draining");
    let draining = probe::scrape(&http, &addr)
        .await
        .expect("/metrics while draining");
    assert_eq!(
        draining.get("callfleet_agent_slots_busy", &[]),
        Some(2.0),
        "the live calls run on through the drain"
    );
    assert!(
        rig.fleet.running(Role::Agent),
        "the agent drains, it does not exit at once"
    );

    // After the grace period the calls end with a summary; the waiting job was never pulled.
    wait_for_logged(
        "the agent to exit after its grace period",
        Duration::from_secs(60),
        &logs,
        || {
            let exited = !rig.fleet.running(Role::Agent);
            async move { exited.then_some(()) }
        },
    )
    .await;
    for id in &ids[..2] {
        let ended = rig.events(id).await;
        let summary = ended
            .iter()
            .find(|(k, _)| k == "ended")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{id} ended: {ended:?}"));
        assert_eq!(summary["summary"]["end_reason"], "shutdown", "{summary}");
    }
    // The live calls' acks were sent before the agent exited; nats-server applies acks from
    // its consumer's queue, after the connection that sent them may be gone, so wait for them
    // (a lost ack would instead turn into a second pending message after ack_wait).
    wait_for_logged(
        "the two live calls acked and the waiting job still pending (1, 0)",
        Duration::from_secs(10),
        &logs,
        || async { (server_counts(&rig.nats, AGENTS).await == Some((1, 0))).then_some(()) },
    )
    .await;
    assert!(
        probe::get(&http, &addr, "/healthz").await.is_none(),
        "the listener closes with the process"
    );
}

/// The notifier's and campaigner's probes: ready while NATS is there, `nats disconnected`
/// (and no stale consumer numbers) while it is away, ready again after it returns.
#[tokio::test(flavor = "multi_thread")]
async fn scale_notifier_and_campaigner_probes_follow_nats() {
    let mut rig = Rig::with(Peers::None).await;
    rig.fleet.start(Role::Notifier);
    rig.fleet.start(Role::Campaigner);
    let http = reqwest::Client::new();
    let notifier = rig
        .fleet
        .probe_addr(Role::Notifier)
        .expect("notifier probes");
    let campaigner = rig
        .fleet
        .probe_addr(Role::Campaigner)
        .expect("campaigner probes");
    let logs = rig.fleet.logs();
    let logs: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();
    for addr in [&notifier, &campaigner] {
        wait_for_logged(
            &format!("{addr} ready"),
            Duration::from_secs(30),
            &logs,
            || async { probe::readyz(&http, addr).await.filter(|(s, _)| *s == 200) },
        )
        .await;
    }
    let s = probe::scrape(&http, &notifier)
        .await
        .expect("notifier /metrics");
    for (stream, consumer) in [
        ("CALL_EVENTS", "notifier"),
        ("WEBHOOKS", "notifier-deliveries"),
    ] {
        assert_eq!(
            s.consumer("num_pending", stream, consumer),
            Some(0.0),
            "{stream}/{consumer}"
        );
        assert_eq!(
            s.consumer("num_ack_pending", stream, consumer),
            Some(0.0),
            "{stream}/{consumer}"
        );
    }
    let s = probe::scrape(&http, &campaigner)
        .await
        .expect("campaigner /metrics");
    assert_eq!(
        s.get("callfleet_jetstream_consumer_info_up", &[]),
        Some(1.0)
    );

    rig.nats.stop();
    for addr in [&notifier, &campaigner] {
        let (_, body) = wait_for(
            &format!("{addr} not ready without NATS"),
            Duration::from_secs(30),
            || async { probe::readyz(&http, addr).await.filter(|(s, _)| *s == 503) },
        )
        .await;
        assert_ne!(body["reason"], "draining", "{body}");
        let s = probe::scrape(&http, addr)
            .await
            .expect("/metrics without NATS");
        assert_eq!(
            s.get("callfleet_jetstream_consumer_info_up", &[]),
            Some(0.0)
        );
        assert_eq!(
            s.consumer("num_pending", "CALL_EVENTS", "notifier"),
            None,
            "no stale numbers"
        );
    }
    rig.nats.restart().await;
    for addr in [&notifier, &campaigner] {
        wait_for(
            &format!("{addr} ready after NATS returned"),
            Duration::from_secs(60),
            || async { probe::readyz(&http, addr).await.filter(|(s, _)| *s == 200) },
        )
        .await;
    }
}
