use std::time::Duration;

use callfleet_tests::{Role, wait_for};
use serde_json::{Value, json};

use crate::rig::{Rig, seed_payload};

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn without(mut base: Value, key: &str) -> Value {
    if let Some(o) = base.as_object_mut() {
        o.remove(key);
    }
    base
}

/// Bad requests: each gets the right status and names the bad field; none crashes the ingress.
#[tokio::test(flavor = "multi_thread")]
async fn ingress_rejects_bad_requests_field_by_field() {
    let mut rig = Rig::new(false).await;
    rig.start_ingress().await;
    let seed = seed_payload();
    let so = |k: &str, v: Value| {
        let mut s = seed_payload();
        s["session_options"][k] = v;
        s
    };
    // (case, body, status, field expected in `fields`)
    let json_cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "missing destination",
            without(seed.clone(), "destination"),
            422,
            "destination",
        ),
        (
            "missing account_code",
            without(seed.clone(), "account_code"),
            422,
            "account_code",
        ),
        (
            "empty account_code",
            with(seed.clone(), "account_code", json!("  ")),
            422,
            "account_code",
        ),
        (
            "letters in destination",
            with(seed.clone(), "destination", json!("call me")),
            422,
            "destination",
        ),
        (
            "too short destination",
            with(seed.clone(), "destination", json!("123")),
            422,
            "destination",
        ),
        (
            "too long destination",
            with(seed.clone(), "destination", json!("+1234567890123456")),
            422,
            "destination",
        ),
        (
            "national number, no country",
            with(seed.clone(), "destination", json!("0402012298")),
            422,
            "destination",
        ),
        (
            "destination wrong type",
            with(seed.clone(), "destination", json!(["+61402012298"])),
            422,
            "destination",
        ),
        (
            "account_code wrong type",
            with(seed.clone(), "account_code", json!({"a": 1})),
            422,
            "account_code",
        ),
        (
            "header injection",
            with(seed.clone(), "account_code", json!("a\r\nX-Evil: 1")),
            422,
            "account_code",
        ),
        (
            "bad caller_number",
            with(seed.clone(), "caller_number", json!("abc")),
            422,
            "caller_number",
        ),
        (
            "bad transfer_target",
            with(seed.clone(), "transfer_target", json!("sip:")),
            422,
            "transfer_target",
        ),
        (
            "metadata not an object",
            with(seed.clone(), "metadata", json!("x")),
            422,
            "metadata",
        ),
        (
            "session_options not an object",
            with(seed.clone(), "session_options", json!(3)),
            422,
            "session_options",
        ),
        (
            "tts wrong type",
            so("tts", json!(12)),
            422,
            "session_options.tts",
        ),
        (
            "tts object without provider",
            so("tts", json!({"voice": "v"})),
            422,
            "session_options.tts",
        ),
        (
            "tts object unknown key",
            so("tts", json!({"provider": "cartesia", "speed": 2})),
            422,
            "session_options.tts.speed",
        ),
        (
            "preemptive not boolish",
            so("preemptive_generation", json!("perhaps")),
            422,
            "session_options.preemptive_generation",
        ),
        (
            "record_call not boolish",
            with(seed.clone(), "record_call", json!([1])),
            422,
            "record_call",
        ),
        (
            "llm wrong type",
            so("llm", json!(true)),
            422,
            "session_options.llm",
        ),
        (
            "callback_url not http",
            with(seed.clone(), "callback_url", json!("ftp://example.com/x")),
            422,
            "callback_url",
        ),
        (
            "callback_url not a url",
            with(seed.clone(), "callback_url", json!("not a url")),
            422,
            "callback_url",
        ),
        (
            "not_before not a time",
            with(seed.clone(), "not_before", json!("tomorrow")),
            422,
            "not_before",
        ),
        (
            "campaign with dots",
            with(seed.clone(), "campaign", json!("a.b")),
            422,
            "campaign",
        ),
        (
            "call_id with spaces",
            with(seed.clone(), "call_id", json!("a b")),
            422,
            "call_id",
        ),
        (
            "retry attempts out of range",
            with(seed.clone(), "retry", json!({"max_attempts": 99})),
            422,
            "retry.max_attempts",
        ),
        (
            "retry unknown key",
            with(seed.clone(), "retry", json!({"tries": 2})),
            422,
            "retry",
        ),
        ("body is an array", json!([seed.clone()]), 422, "(body)"),
        ("body is a string", json!("hello"), 422, "(body)"),
    ];
    assert!(json_cases.len() >= 20);
    for (case, body, status, field) in json_cases {
        let (got, answer) = rig.post(&body, &[]).await;
        assert_eq!(got, status, "{case}: {answer}");
        assert_eq!(answer["error"], "invalid_request", "{case}: {answer}");
        let fields: Vec<&str> = answer["fields"]
            .as_array()
            .map(|f| f.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            fields.contains(&field),
            "{case}: expected an error on {field}, got {answer}"
        );
        assert!(
            answer["fields"][0]["problem"]
                .as_str()
                .is_some_and(|p| !p.is_empty()),
            "{case}: says why"
        );
    }

    // Raw bodies and headers.
    let url = rig.url("/dispatch");
    let raw = |body: Vec<u8>, ct: Option<&'static str>| {
        let mut req = rig.http.post(&url).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    // (name, body, content type, expected status, expected error)
    type Case = (
        &'static str,
        Vec<u8>,
        Option<&'static str>,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "malformed json",
            b"{\"destination\": ".to_vec(),
            Some("application/json"),
            400,
            "malformed_json",
        ),
        (
            "trailing garbage",
            b"{} x".to_vec(),
            Some("application/json"),
            400,
            "malformed_json",
        ),
        (
            "not utf-8",
            vec![0xff, 0xfe, 0x00],
            Some("application/json"),
            400,
            "malformed_json",
        ),
        (
            "form body",
            b"destination=1".to_vec(),
            Some("application/x-www-form-urlencoded"),
            415,
            "unsupported_media_type",
        ),
        (
            "no content type",
            seed.to_string().into_bytes(),
            None,
            415,
            "unsupported_media_type",
        ),
        (
            "oversize body",
            vec![b' '; 70_000],
            Some("application/json"),
            413,
            "body_too_large",
        ),
    ];
    for (case, body, ct, status, error) in cases {
        let resp = raw(body, ct).await.expect("request");
        assert_eq!(resp.status().as_u16(), status, "{case}");
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(answer["error"], error, "{case}: {answer}");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{case}: says why"
        );
    }
    let bad_key = rig
        .post(&seed, &[("idempotency-key", &"k".repeat(300))])
        .await;
    assert_eq!(bad_key.0, 422);
    assert_eq!(bad_key.1["fields"][0]["field"], "Idempotency-Key");

    assert!(
        rig.fleet.running(Role::Ingress),
        "no request crashed the ingress"
    );
    assert_eq!(
        rig.stream_messages("CALL_JOBS").await,
        0,
        "nothing invalid was enqueued"
    );
}

/// Same Idempotency-Key twice → same call id, one job. Same body call_id twice → one job.
#[tokio::test(flavor = "multi_thread")]
async fn ingress_idempotency_key_enqueues_once() {
    let mut rig = Rig::new(false).await;
    rig.start_ingress().await;
    let (s1, a) = rig
        .post(&seed_payload(), &[("idempotency-key", "order-42")])
        .await;
    let (s2, b) = rig
        .post(&seed_payload(), &[("idempotency-key", "order-42")])
        .await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(a["call_id"], b["call_id"]);
    assert_eq!(a["duplicate"], false);
    assert_eq!(b["duplicate"], true);
    let (_, c) = rig
        .post(&seed_payload(), &[("idempotency-key", "order-43")])
        .await;
    assert_ne!(a["call_id"], c["call_id"]);
    let body = with(seed_payload(), "call_id", json!("crm-7"));
    let (_, d) = rig.post(&body, &[]).await;
    let (_, e) = rig.post(&body, &[]).await;
    assert_eq!(d["call_id"], "crm-7");
    assert_eq!(e["duplicate"], true);
    assert_eq!(
        rig.stream_messages("CALL_JOBS").await,
        3,
        "three distinct calls, no duplicates"
    );
}

/// NATS stopped → 503 with a reason; restarted → the same ingress process recovers.
#[tokio::test(flavor = "multi_thread")]
async fn fault_nats_restart_503_then_recovers() {
    let mut rig = Rig::new(false).await;
    rig.start_ingress().await;
    assert_eq!(rig.post(&seed_payload(), &[]).await.0, 202);
    rig.nats.stop();
    let (status, body) = rig
        .post(&seed_payload(), &[("idempotency-key", "during-outage")])
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "nats_unavailable");
    let ready = rig
        .http
        .get(rig.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 503);

    rig.nats.restart().await;
    let accepted = wait_for("ingress recovers", Duration::from_secs(30), || async {
        let (status, body) = rig
            .post(&seed_payload(), &[("idempotency-key", "during-outage")])
            .await;
        (status == 202).then_some(body)
    })
    .await;
    assert_eq!(
        accepted["duplicate"], false,
        "the 503 request was not enqueued behind the answer"
    );
    assert_eq!(rig.stream_messages("CALL_JOBS").await, 2);
    assert!(rig.fleet.running(Role::Ingress));
}

/// Auth, probes, OpenAPI and metrics.
#[tokio::test(flavor = "multi_thread")]
async fn ingress_auth_probes_openapi_metrics() {
    let mut rig = Rig::new(false).await;
    rig.fleet.set(
        "CALLFLEET_API_KEYS",
        "k-0123456789abcdef,k-fedcba9876543210",
    );
    rig.start_ingress().await;
    assert_eq!(rig.post(&seed_payload(), &[]).await.0, 401);
    assert_eq!(
        rig.post(
            &seed_payload(),
            &[("authorization", "Bearer k-0123456789abcdeX")]
        )
        .await
        .0,
        401
    );
    let (status, body) = rig
        .post(
            &seed_payload(),
            &[("authorization", "Bearer k-fedcba9876543210")],
        )
        .await;
    assert_eq!(status, 202);
    let id = body["call_id"].as_str().expect("id").to_owned();
    let unauth = rig
        .http
        .get(rig.url(&format!("/calls/{id}")))
        .send()
        .await
        .expect("get");
    assert_eq!(unauth.status().as_u16(), 401);
    let call: Value = rig
        .http
        .get(rig.url(&format!("/calls/{id}")))
        .bearer_auth("k-0123456789abcdef")
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(call["status"], "queued");
    let missing = rig
        .http
        .get(rig.url("/calls/nope"))
        .bearer_auth("k-0123456789abcdef")
        .send()
        .await
        .expect("get");
    assert_eq!(missing.status().as_u16(), 404);

    assert_eq!(
        rig.http
            .get(rig.url("/healthz"))
            .send()
            .await
            .expect("healthz")
            .status()
            .as_u16(),
        200
    );
    let openapi: Value = rig
        .http
        .get(rig.url("/openapi.json"))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    assert!(openapi["paths"]["/dispatch"]["post"].is_object());
    assert!(openapi["components"]["schemas"]["DispatchPayload"].is_object());
    let metrics = rig.metrics().await;
    assert!(
        metrics.contains("callfleet_ingress_dispatch_accepted_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("status=\"401\""), "{metrics}");
    // The bus's acknowledgement failures are counted beside the ingress's own metrics.
    assert!(
        metrics.contains("callfleet_bus_ack_failures_total"),
        "{metrics}"
    );
}

/// Ids that cannot exist (a space, non-ASCII, a dot, a wildcard, too long, not UTF-8) answer
/// the same JSON `404 not_found` on every route with an id, never a NATS error (they used to
/// answer `503 nats_unavailable` with `Retry-After` on pause/resume/cancel and contacts, which
/// clients retry forever). A do-not-call number that does not parse is a `422` on `number`.
#[tokio::test(flavor = "multi_thread")]
async fn ingress_impossible_ids_answer_404_on_every_route() {
    let mut rig = Rig::new(false).await;
    rig.start_ingress().await;
    let long_call = "x".repeat(65);
    let long_campaign = "x".repeat(41);
    let common = [
        "a%20b", "%C3%A9", "a.b", "a*", "a%3E", "%FF", "a%00b", "a%2Fb",
    ];
    let calls: Vec<String> = common
        .iter()
        .map(|s| s.to_string())
        .chain([long_call])
        .collect();
    let campaigns: Vec<String> = common
        .iter()
        .map(|s| s.to_string())
        .chain([long_campaign])
        .collect();
    use reqwest::Method;
    let mut routes: Vec<(Method, String)> = Vec::new();
    for id in &calls {
        routes.push((Method::GET, format!("/calls/{id}")));
        routes.push((Method::DELETE, format!("/calls/{id}")));
        routes.push((Method::POST, format!("/calls/{id}/transfer")));
    }
    for id in &campaigns {
        routes.push((Method::GET, format!("/campaigns/{id}")));
        routes.push((Method::POST, format!("/campaigns/{id}/contacts")));
        for action in ["pause", "resume", "cancel"] {
            routes.push((Method::POST, format!("/campaigns/{id}/{action}")));
        }
    }
    // Ids that could exist but do not: the same 404.
    routes.push((Method::DELETE, "/calls/nope".into()));
    routes.push((Method::POST, "/calls/nope/transfer".into()));
    for action in ["pause", "resume", "cancel"] {
        routes.push((Method::POST, format!("/campaigns/nope/{action}")));
    }
    routes.push((Method::POST, "/campaigns/nope/contacts".into()));
    let mut failures = Vec::new();
    for (method, path) in &routes {
        let mut req = rig.http.request(method.clone(), rig.url(path));
        if path.ends_with("/contacts") {
            req = req.json(&json!([{"destination": "+61402012298"}]));
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let retry_after = resp.headers().contains_key("retry-after");
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status != 404 || body["error"] != "not_found" || retry_after {
            failures.push(format!("{method} {path} → {status} {body}"));
        }
    }
    assert!(
        failures.is_empty(),
        "not a clean 404:\n{}",
        failures.join("\n")
    );

    for method in [Method::GET, Method::POST, Method::DELETE] {
        for number in ["a%20b", "%C3%A9", "123", "%FF", "x"] {
            let path = format!("/dnc/{number}");
            let resp = rig
                .http
                .request(method.clone(), rig.url(&path))
                .send()
                .await
                .expect("request");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert_eq!(status, 422, "{method} {path}: {body}");
            assert_eq!(
                body["fields"][0]["field"], "number",
                "{method} {path}: {body}"
            );
        }
    }
    assert!(rig.fleet.running(Role::Ingress));
}

/// Every error answers the documented JSON body, axum's own rejections included (they used to
/// answer in plain text): a bad query, a non-JSON transfer body, an oversize campaign, an
/// unknown method, and campaigns created with a non-JSON content type.
#[tokio::test(flavor = "multi_thread")]
async fn ingress_every_error_is_json() {
    let mut rig = Rig::new(false).await;
    rig.fleet.set("CALLFLEET_INGRESS__BODY_LIMIT_BYTES", "2048");
    rig.fleet
        .set("CALLFLEET_INGRESS__UPLOAD_LIMIT_BYTES", "4096");
    rig.start_ingress().await;
    let (status, created) = rig
        .call_api(
            reqwest::Method::POST,
            "/campaigns",
            Some(json!({"id": "errs", "name": "Errors", "account_code": "em-tech-01"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let http = &rig.http;
    let cases = [
        (
            "bad query",
            http.post(rig.url("/campaigns/errs/contacts?last=maybe"))
                .header("content-type", "text/csv")
                .body("destination\n+61402012298\n"),
            422,
            "invalid_request",
        ),
        (
            "transfer body not JSON",
            http.post(rig.url("/calls/nope/transfer"))
                .header("content-type", "text/plain")
                .body("+61731071901"),
            415,
            "unsupported_media_type",
        ),
        (
            "transfer body malformed",
            http.post(rig.url("/calls/nope/transfer"))
                .header("content-type", "application/json")
                .body("{"),
            400,
            "malformed_json",
        ),
        (
            "campaign not JSON",
            http.post(rig.url("/campaigns"))
                .header("content-type", "text/plain")
                .body(r#"{"name": "x", "account_code": "y"}"#),
            415,
            "unsupported_media_type",
        ),
        (
            "campaign too large",
            http.post(rig.url("/campaigns"))
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"name": "x", "account_code": "y", "metadata": {{"pad": "{}"}}}}"#,
                    "p".repeat(5000)
                )),
            413,
            "body_too_large",
        ),
        (
            "dnc import too large",
            http.post(rig.url("/dnc"))
                .header("content-type", "text/csv")
                .body("6".repeat(5000)),
            413,
            "body_too_large",
        ),
        (
            "unknown method",
            http.patch(rig.url("/dispatch")),
            405,
            "method_not_allowed",
        ),
    ];
    for (case, req, status, error) in cases {
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status().as_u16(), status, "{case}");
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(ct, "application/json", "{case}");
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(body["error"], error, "{case}: {body}");
    }
}
