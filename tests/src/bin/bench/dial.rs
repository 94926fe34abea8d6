//! Dispatch to dial: a job published on JetStream → the worker's first LiveKit call (its
//! `dialing` event, stamped just before `CreateRoom` and `CreateSIPParticipant`) → the INVITE
//! seen by the SIPp callee, through the real livekit-server and livekit-sip.

use std::time::Duration;

use callfleet_tests::{Behaviour, Fleet, NatsServer, Role, Telephony, wait_consumer, wait_for};
use serde_json::json;

use crate::pct;

pub const IDLE_CALLS: usize = 50;
pub const BURST_CALLS: usize = 200;
pub const SLOTS: usize = 20;

/// p50/p99 in ms of publish → dialing and publish → INVITE.
pub struct DialRun {
    pub to_dialing: (f64, f64),
    pub to_invite: (f64, f64),
    pub calls: usize,
    /// Calls per second from the first publish to the last call finished.
    pub throughput: f64,
}

pub async fn bench_dispatch_to_dial() -> (DialRun, DialRun) {
    let tel = Telephony::start().await;
    let callee = tel.callee(&["+61299990000"]).await;
    let nats = NatsServer::start().await;
    let mut env = vec![
        ("NATS_URL", nats.url()),
        ("SIP_TRUNK_ID", callee.trunk_id.clone()),
        ("SIP_FROM_NUMBER", "+61299990000".into()),
        ("CALLFLEET_AGENT__MAX_CONCURRENT_CALLS", SLOTS.to_string()),
        ("LOG_LEVEL", "warn".into()),
    ];
    env.extend(tel.livekit.fleet_env());
    let mut fleet = Fleet::new(&env);
    fleet.start(Role::Agent);
    wait_consumer(&nats.url(), "CALL_JOBS", "agents").await;
    let js = async_nats::jetstream::new(nats.client().await);

    // Every call is declined (603): final at once, so a slot frees in tens of milliseconds.
    let publish = |i: usize| {
        let js = js.clone();
        async move {
            let body = json!({
                "call_id": format!("bench{i}"),
                "destination": Behaviour::Reject(603).number(i as u16),
                "account_code": "bench",
            });
            let sent = jiff::Timestamp::now();
            js.publish("calls.dispatch.bench", body.to_string().into())
                .await
                .expect("publish")
                .await
                .expect("ack");
            (i, sent)
        }
    };
    let finished = |ids: std::ops::Range<usize>| {
        let js = js.clone();
        async move {
            let kv = js.get_key_value("calls").await.ok()?;
            for i in ids {
                let entry = kv.get(format!("bench{i}")).await.ok()??;
                let state: serde_json::Value = serde_json::from_slice(&entry).ok()?;
                if state["status"] != "failed" {
                    return None;
                }
            }
            Some(())
        }
    };

    let mut idle = Vec::new();
    let idle_started = std::time::Instant::now();
    for i in 0..IDLE_CALLS {
        idle.push(publish(i).await);
        wait_for("an idle call to finish", Duration::from_secs(30), || {
            finished(i..i + 1)
        })
        .await;
    }
    let idle_secs = idle_started.elapsed().as_secs_f64();
    let mut burst = Vec::new();
    let burst_started = std::time::Instant::now();
    for i in IDLE_CALLS..IDLE_CALLS + BURST_CALLS {
        burst.push(publish(i).await);
    }
    wait_for("the burst to finish", Duration::from_secs(300), || {
        finished(IDLE_CALLS..IDLE_CALLS + BURST_CALLS)
    })
    .await;
    let burst_secs = burst_started.elapsed().as_secs_f64();

    let run = |sent: &[(usize, jiff::Timestamp)], secs: f64| {
        let js = js.clone();
        let requests = callee.requests();
        let sent = sent.to_vec();
        let sent_len = sent.len();
        async move {
            let events = js.get_stream("CALL_EVENTS").await.expect("events stream");
            let mut dialing = Vec::new();
            let mut invite = Vec::new();
            for (i, at) in sent {
                if let Ok(m) = events
                    .get_last_raw_message_by_subject(&format!("calls.events.bench{i}.dialing"))
                    .await
                    && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&m.payload)
                    && let Some(t) = v["at"]
                        .as_str()
                        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                {
                    dialing.push(t.duration_since(at).as_secs_f64() * 1000.0);
                }
                let number = Behaviour::Reject(603).number(i as u16);
                if let Some(t) = requests
                    .iter()
                    .find(|r| r.method == "INVITE" && r.user() == number)
                    .and_then(|r| r.at)
                {
                    invite.push(t.duration_since(at).as_secs_f64() * 1000.0);
                }
            }
            dialing.sort_by(f64::total_cmp);
            invite.sort_by(f64::total_cmp);
            DialRun {
                to_dialing: (pct(&dialing, 0.5), pct(&dialing, 0.99)),
                to_invite: (pct(&invite, 0.5), pct(&invite, 0.99)),
                calls: dialing.len().min(invite.len()),
                throughput: sent_len as f64 / secs,
            }
        }
    };
    let idle_run = run(&idle, idle_secs).await;
    let burst_run = run(&burst, burst_secs).await;
    drop(fleet);
    (idle_run, burst_run)
}
