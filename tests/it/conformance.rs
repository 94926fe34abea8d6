//! Provider conformance: each provider's OFFICIAL Python SDK is a peer of our Rust client.
//! For every provider the stand-in of `callfleet-standins` is started twice; a driver
//! (`tests/conformance/<provider>_driver.py`, stdlib + the SDK; not `<provider>.py`, which would
//! shadow the SDK package it imports) streams a request through the SDK
//! pointed at one, our client (`callfleet-voice`, resolved from session options as the engine
//! resolves them) streams the same request at the other. The test asserts what the SDK
//! understood of the stand-in's answer (transcripts and their flags, text deltas, tool calls,
//! usage, audio, done events; every server message strictly validated against the SDK's own
//! models) and compares what each stand-in recorded from each client: URL path, the query
//! parameters that matter, the auth header scheme, the messages sent and how the stream ended.
//! The SDK is the reference for the wire format. Error paths: a 401 on the upgrade / request.
//!
//! SDKs (pinned in the Makefile's venv step): `openai`, `deepgram-sdk`, `assemblyai`,
//! `cartesia`, `sarvamai`, `elevenlabs`. ElevenLabs' SDK always dials `wss://` (it rewrites its
//! base URL's scheme): its driver puts a TLS-terminating proxy (`common.tls_proxy`, a throwaway
//! certificate from `openssl`, trusted through `SSL_CERT_FILE`) in front of the ws:// stand-in.
//!
//! The interpreter is `.tools/venv/bin/python` (`make setup`); `CALLFLEET_CONFORMANCE_PYTHON`
//! overrides it.

mod llm;
mod stt;
mod tts;

use std::{collections::BTreeMap, path::PathBuf, process::Stdio, time::Duration};

use callfleet_tests::{scaled, workspace_root};
use serde_json::Value;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("CALLFLEET_CONFORMANCE_PYTHON") {
        return PathBuf::from(p);
    }
    let path = workspace_root().join(".tools/venv/bin/python");
    assert!(
        path.exists(),
        "the conformance venv is not installed at {}: run `make setup` (it installs the \
         providers' pinned SDKs into .tools/venv)",
        path.display()
    );
    path
}

/// Run `tests/conformance/<name>_driver.py` with `args`; its one JSON line of output.
async fn driver(name: &str, args: &Value) -> Value {
    run_driver(
        &workspace_root().join(format!("tests/conformance/{name}_driver.py")),
        args,
        Duration::from_secs(30),
    )
    .await
}

/// Run an SDK driver script in the venv with `args` (one JSON argument), within `limit`
/// (scaled for load); its last JSON line of output. A failure shows both its outputs.
pub(crate) async fn run_driver(script: &std::path::Path, args: &Value, limit: Duration) -> Value {
    let python = python();
    let name = script
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let child = tokio::process::Command::new(&python)
        .arg(script)
        .arg(args.to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let limit = scaled(limit);
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the {name} script ran longer than {limit:?}"))
        .expect("driver output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stdout.lines().rev().find(|l| l.starts_with('{'));
    match (out.status.success(), last) {
        (true, Some(line)) => serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{name} printed bad JSON ({e}): {line}")),
        _ => panic!(
            "{name} failed ({}); a missing module means the venv is stale: run \
             `make setup`\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        ),
    }
}

/// The path and query parameters of a recorded request URI.
/// `ws://host:port` of a stand-in URL (the SDKs take the API root and add the path).
fn root(url: &str) -> String {
    let u = reqwest::Url::parse(url).expect("stand-in url");
    format!(
        "ws://{}:{}",
        u.host_str().unwrap_or_default(),
        u.port().unwrap_or_default()
    )
}

fn split_uri(uri: &str) -> (String, BTreeMap<String, String>) {
    let u = reqwest::Url::parse(&format!("http://127.0.0.1{uri}")).expect("recorded URI");
    (u.path().to_owned(), u.query_pairs().into_owned().collect())
}

/// Assert that the SDK and our client sent the same value for each of `keys`. Booleans compare
/// without case: AssemblyAI's SDK url-encodes Python's `False` as `False`, the server's docs
/// write `false`, and the server takes both.
fn same_params(
    what: &str,
    sdk: &BTreeMap<String, String>,
    ours: &BTreeMap<String, String>,
    keys: &[&str],
) {
    let norm = |v: Option<&String>| {
        v.map(|v| match v.to_ascii_lowercase().as_str() {
            b @ ("true" | "false") => b.to_owned(),
            _ => v.clone(),
        })
    };
    for k in keys {
        assert_eq!(
            norm(sdk.get(*k)),
            norm(ours.get(*k)),
            "{what}: query parameter `{k}` differs (SDK {sdk:?}, ours {ours:?})"
        );
    }
}

/// The driver ran without the SDK raising and every server message fit the SDK's models.
fn clean(name: &str, out: &Value) {
    assert_eq!(
        out["errors"],
        serde_json::json!([]),
        "{name}: the SDK raised: {out}"
    );
    assert_eq!(
        out["schema_errors"],
        serde_json::json!([]),
        "{name}: the stand-in sent messages the SDK's models reject: {out}"
    );
}

/// Session options resolved as the engine resolves them, against the given env.
fn resolve(
    options: &Value,
    env: &std::collections::HashMap<String, String>,
) -> callfleet_voice::SessionConfig {
    callfleet_voice::resolve_json(options, env).expect("options resolve")
}
