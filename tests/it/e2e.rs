use std::time::Duration;

use callfleet_tests::{Role, verify_signature, wait_consumer, wait_for, workspace_root};
use serde_json::{Value, json};

use crate::rig::{Rig, SECRET, seed_payload};

/// Seed payload → 202 → agent dials against livekit-server --dev (no SIP service) → the real
/// error is classified → state, events and a signed webhook all say so.
#[tokio::test(flavor = "multi_thread")]
async fn e2e_seed_payload_to_signed_webhook() {
    let mut rig = Rig::new(true).await;
    rig.start_ingress().await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);

    let (status, body) = rig.post(&seed_payload(), &[]).await;
    assert_eq!(status, 202, "{body}");
    let call_id = body["call_id"].as_str().expect("call_id").to_owned();
    assert_eq!(body["room"], format!("call-{call_id}"));
    assert_eq!(body["agent_name"], "callfleet-agent");
    assert_eq!(body["metadata"]["ticket_id"], "INC-1234");
    assert_eq!(body["metadata"]["destination"], "+61402012298");
    assert!(
        body["status_url"]
            .as_str()
            .expect("status_url")
            .ends_with(&format!("/calls/{call_id}"))
    );

    let hook = wait_for("the signed webhook", Duration::from_secs(30), || async {
        rig.sink
            .delivered()
            .into_iter()
            .find(|r| r.json()["data"]["call_id"] == call_id)
    })
    .await;
    let (id, ts, sig) = (
        hook.header("webhook-id"),
        hook.header("webhook-timestamp"),
        hook.header("webhook-signature"),
    );
    assert!(
        verify_signature(SECRET, &id, &ts, &hook.body, &sig),
        "signature must verify: {sig}"
    );
    assert!(
        !verify_signature("whsec_AAAAAAAAAAAAAAAAAAAAAAAA", &id, &ts, &hook.body, &sig),
        "a wrong secret must not verify"
    );
    let summary = &hook.json()["data"];
    assert_eq!(hook.json()["type"], "call.failed");
    assert_eq!(summary["outcome"], "infrastructure", "{summary}");
    assert_eq!(summary["end_reason"], "dial_failed");
    let error = summary["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("sip not connected"),
        "the real LiveKit error travels in the summary: {error}"
    );
    assert_eq!(summary["attempts"].as_array().map(Vec::len), Some(1));
    assert_eq!(summary["metadata"]["ticket_id"], "INC-1234");
    assert_eq!(summary["session_config"]["llm"], "openai/gpt-4o-mini");
    assert_eq!(
        summary["transcript"],
        json!([]),
        "documented as empty until the voice engine lands"
    );
    assert!(summary["call_start"].is_null(), "never answered");

    let (status, call) = rig.get_call(&call_id).await;
    assert_eq!(status, 200);
    assert_eq!(call["status"], "failed");
    assert_eq!(call["attempts"], 1);
    assert_eq!(call["last_outcome"], "infrastructure");

    let kinds = rig.event_kinds(&call_id).await;
    assert_eq!(kinds, ["queued", "dialing", "failed"], "events in order");
    rig.wait_jobs_acked().await;
}

/// A job published by nats-py is processed exactly like one from the ingress; an invalid one
/// is dead-lettered with its reason and a `failed` event.
#[tokio::test(flavor = "multi_thread")]
async fn e2e_direct_publish_from_python() {
    let mut rig = Rig::new(true).await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);
    let python = workspace_root().join(".tools/venv/bin/python");
    assert!(
        python.exists(),
        "nats-py is not installed: run `make setup` (creates .tools/venv with nats-py)"
    );
    let script = workspace_root().join("tests/publish.py");
    let publish = |payload: Value| {
        let out = std::process::Command::new(&python)
            .arg(&script)
            .args([
                rig.nats.url(),
                "calls.dispatch.py".into(),
                payload.to_string(),
            ])
            .output()
            .expect("run publish.py");
        assert!(
            out.status.success(),
            "publish.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    // The stream may not exist until a callfleet role created it.
    wait_for("topology", Duration::from_secs(20), || async {
        (rig.stream_messages("CALL_JOBS").await == 0
            && rig.nats.client().await.flush().await.is_ok())
        .then_some(())
    })
    .await;
    wait_consumer(&rig.nats.url(), "CALL_JOBS", "agents").await;

    let mut good = seed_payload();
    good["call_id"] = json!("py-call-1");
    good["campaign"] = json!("py");
    publish(good);
    publish(json!({"call_id": "py-bad-1", "destination": "not a number", "metadata": 5}));

    let hook = wait_for(
        "webhook for the python job",
        Duration::from_secs(30),
        || async {
            rig.sink
                .delivered()
                .into_iter()
                .find(|r| r.json()["data"]["call_id"] == "py-call-1")
        },
    )
    .await;
    assert_eq!(hook.json()["data"]["outcome"], "infrastructure");
    assert_eq!(hook.json()["data"]["campaign"], "py");

    let bad = wait_for(
        "failed event for the invalid job",
        Duration::from_secs(30),
        || async {
            rig.sink
                .delivered()
                .into_iter()
                .find(|r| r.json()["data"]["call_id"] == "py-bad-1")
        },
    )
    .await;
    let data = &bad.json()["data"];
    assert_eq!(data["outcome"], "invalid_request");
    let error = data["error"].as_str().unwrap_or_default();
    for field in ["destination", "account_code", "metadata"] {
        assert!(error.contains(field), "reason names {field}: {error}");
    }
    let js = async_nats::jetstream::new(rig.nats.client().await);
    let dlq = js.get_stream("CALL_DLQ").await.expect("dlq stream");
    let msg = dlq
        .get_last_raw_message_by_subject("calls.dlq.py-bad-1")
        .await
        .expect("dead letter");
    let reason = msg
        .headers
        .get("Callfleet-Dlq-Reason")
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default();
    assert!(reason.contains("destination"), "{reason}");
    assert_eq!(
        msg.headers
            .get("Callfleet-Original-Subject")
            .map(|v| v.as_str()),
        Some("calls.dispatch.py")
    );

    let (code, out, _) = rig.fleet.run(&["dlq", "list"], &[]);
    assert_eq!(code, Some(0));
    assert!(out.contains("calls.dlq.py-bad-1"), "{out}");
}

/// SIGTERM: the worker stops pulling, drains, and exits 0; a job published afterwards waits
/// for the next worker instead of being lost.
#[tokio::test(flavor = "multi_thread")]
async fn fault_sigterm_drains_and_next_worker_takes_over() {
    let mut rig = Rig::new(true).await;
    rig.start_ingress().await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);
    wait_for("agent consumer", Duration::from_secs(20), || async {
        let js = async_nats::jetstream::new(rig.nats.client().await);
        let mut c = js
            .get_stream("CALL_JOBS")
            .await
            .ok()?
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>("agents")
            .await
            .ok()?;
        (c.info().await.ok()?.num_waiting > 0).then_some(())
    })
    .await;
    let codes = rig.fleet.sigterm(Role::Agent);
    assert_eq!(codes, [Some(0)], "clean exit after drain");

    let (status, body) = rig.post(&seed_payload(), &[]).await;
    assert_eq!(status, 202);
    let call_id = body["call_id"].as_str().expect("call_id").to_owned();
    let (_, call) = rig.get_call(&call_id).await;
    assert_eq!(
        call["status"], "queued",
        "nobody took it while no worker runs"
    );

    rig.fleet.start(Role::Agent);
    wait_for(
        "summary after a new worker started",
        Duration::from_secs(30),
        || async {
            rig.sink
                .delivered()
                .into_iter()
                .find(|r| r.json()["data"]["call_id"] == call_id)
        },
    )
    .await;
}
