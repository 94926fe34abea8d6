//! The ingress fuzzed from its own OpenAPI document: schemathesis (`.tools/venv`, pinned by
//! `make setup`) generates valid and invalid requests for every operation and checks each
//! answer against the document (status code, content type, headers, body schema) and that no
//! answer is a 5xx. NATS is up the whole time, so a 5xx is always a defect, never an outage.
//!
//! The run is bounded by `--max-examples` and an outer deadline. The seed varies per run and is
//! printed; `FUZZ_SEED=<n>` replays one, `FUZZ_EXAMPLES=<n>` runs more cases per operation.

use std::{path::PathBuf, process::Stdio, time::Duration};

use callfleet_tests::{Role, TempDir, workspace_root};

use crate::rig::Rig;

const KEY: &str = "k-fuzz-0123456789abcdef";
/// What every answer must satisfy. Not checked: `positive_data_acceptance` and
/// `negative_data_rejection` (the document gives the canonical forms, the server is more lenient:
/// `+61 402 012 298`, numbers as strings, any IANA zone), and `use_after_free` (`DELETE
/// /calls/{id}` cancels a call; the call stays readable).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,ignored_auth,unsupported_method,\
allow_header_conformance,missing_required_header,ensure_resource_availability";

fn schemathesis() -> PathBuf {
    let path = workspace_root().join(".tools/venv/bin/schemathesis");
    assert!(
        path.exists(),
        "schemathesis is not installed at {}: run `make setup` (it installs schemathesis==4.32.5 into .tools/venv)",
        path.display()
    );
    path
}

fn seed() -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(uuid::Uuid::new_v4().as_fields().0))
}

/// The last `n` lines of a report, for the failure message.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn ingress_fuzz_answers_match_the_openapi_document() {
    let schemathesis = schemathesis();
    let mut rig = Rig::new(false).await;
    rig.fleet.set("CALLFLEET_API_KEYS", KEY);
    rig.start_ingress().await;
    let seed = seed();
    let examples = std::env::var("FUZZ_EXAMPLES").unwrap_or_else(|_| "100".into());
    eprintln!("fuzz: seed {seed}, {examples} examples per operation (FUZZ_SEED={seed} replays it)");
    let reports = TempDir::new("fuzz");
    let started = std::time::Instant::now();
    let child = tokio::process::Command::new(&schemathesis)
        .args(["run", &rig.url("/openapi.json"), "--url", &rig.url("")])
        .args(["--header", &format!("Authorization: Bearer {KEY}")])
        .args(["--checks", CHECKS, "--mode", "all"])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", &examples, "--seed", &seed.to_string()])
        // One worker: hypothesis parses lambdas with `ast.parse`, which is not thread-safe on
        // CPython 3.11 ("AST constructor recursion depth mismatch" aborted a 2-worker run).
        .args(["--workers", "1", "--request-timeout", "10"])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--report", "ndjson", "--report-dir"])
        .arg(&reports.0)
        // schemathesis keeps replay data in `./.schemathesis`: not in the repository.
        .current_dir(&reports.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", schemathesis.display()));
    let output = tokio::time::timeout(Duration::from_secs(150), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis ran longer than 150 s (seed {seed})"))
        .expect("schemathesis output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "fuzz: schemathesis finished in {:.1} s\n{}",
        started.elapsed().as_secs_f64(),
        tail(&stdout, 25)
    );
    assert!(
        output.status.success(),
        "schemathesis found answers that break the document (seed {seed}, FUZZ_SEED={seed} replays it):\n{}\n{}",
        tail(&stdout, 200),
        tail(&stderr, 20)
    );
    assert!(rig.fleet.running(Role::Ingress), "the ingress survived");

    // The document lets a generator build valid calls: some dispatches were accepted.
    let metrics = rig.metrics().await;
    let accepted: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("callfleet_ingress_dispatch_accepted_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(
        accepted >= 1.0,
        "no generated POST /dispatch was accepted (seed {seed}):\n{metrics}"
    );
    let server_errors: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("callfleet_ingress_requests_total") && l.contains("status=\"5"))
        .collect();
    assert!(
        server_errors.is_empty(),
        "5xx answers while NATS was up (seed {seed}): {server_errors:?}"
    );
}

/// Checks the served document with validators from the venv: the OpenAPI 3.1 meta-schema that
/// schemathesis loads documents with, the JSON Schema 2020-12 meta-schema for every schema
/// object (`jsonschema_rs`, schemathesis' validator), and every `pattern` compiles.
const VALIDATE: &str = r##"
import json, re, sys
import jsonschema_rs
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR
doc = json.load(sys.stdin)
assert doc["openapi"].startswith("3.1"), doc["openapi"]
OPENAPI_31_VALIDATOR.validate(doc)
for name, schema in doc["components"]["schemas"].items():
    jsonschema_rs.meta.validate(schema)
def walk(node, where):
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            re.compile(node["pattern"])
        if isinstance(node.get("$ref"), str):
            target = doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target.get(part) if isinstance(target, dict) else None
            assert target is not None, f"dangling $ref {node['$ref']} at {where}"
        for k, v in node.items():
            walk(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk(v, f"{where}/{i}")
walk(doc, "")
print("valid")
"##;

#[tokio::test(flavor = "multi_thread")]
async fn ingress_openapi_document_is_valid() {
    let python = schemathesis().with_file_name("python");
    let mut rig = Rig::new(false).await;
    rig.start_ingress().await;
    let doc = rig
        .http
        .get(rig.url("/openapi.json"))
        .send()
        .await
        .expect("openapi")
        .bytes()
        .await
        .expect("body");
    let mut child = tokio::process::Command::new(&python)
        .args(["-c", VALIDATE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let mut stdin = child.stdin.take().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, &doc)
        .await
        .expect("write");
    drop(stdin);
    let output = child.wait_with_output().await.expect("validator");
    assert!(
        output.status.success(),
        "/openapi.json is not valid OpenAPI 3.1:\n{}",
        tail(&String::from_utf8_lossy(&output.stderr), 30)
    );
}
