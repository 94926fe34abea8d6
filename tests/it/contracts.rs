use callfleet_tests::{Fleet, TempDir, workspace_root};

/// `nats/` holds exactly what the code creates: topology and JSON Schemas.
#[test]
fn contract_nats_folder_matches_the_code() {
    let out = TempDir::new("export");
    let fleet = Fleet::new(&[]);
    let (code, _, err) = fleet.run(
        &["export", "--dir", out.0.to_str().expect("utf-8 path")],
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    let mut checked = 0;
    for sub in [
        "streams",
        "consumers",
        "kv",
        "object_stores",
        "schemas",
        "cluster/streams",
        "cluster/consumers",
        "cluster/kv",
        "cluster/object_stores",
    ] {
        for entry in std::fs::read_dir(out.0.join(sub)).expect("exported folder") {
            let path = entry.expect("entry").path();
            let name = path.file_name().expect("name").to_owned();
            let committed = workspace_root().join("nats").join(sub).join(&name);
            let want = std::fs::read_to_string(&path).expect("read export");
            let have = std::fs::read_to_string(&committed)
                .unwrap_or_else(|_| panic!("{} is missing: run `make nats`", committed.display()));
            assert_eq!(
                have,
                want,
                "{} drifted from the code: run `make nats`",
                committed.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 14,
        "all definitions and schemas checked ({checked})"
    );
}

/// The topology export shows the replica count each deployment gets: R1 for one server at
/// the top of `nats/`, R3 for the 3-node cluster under `nats/cluster/` (every stream, KV bucket
/// and the recordings object store).
#[test]
fn contract_cluster_topology_is_r3() {
    let root = workspace_root().join("nats");
    let read = |path: std::path::PathBuf| -> serde_json::Value {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run `make nats`)", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let mut seen = 0;
    for (sub, key) in [
        ("streams", "num_replicas"),
        ("kv", "replicas"),
        ("object_stores", "replicas"),
    ] {
        for entry in std::fs::read_dir(root.join(sub)).expect("nats/ folder") {
            let name = entry.expect("entry").file_name();
            let single = read(root.join(sub).join(&name));
            let cluster = read(root.join("cluster").join(sub).join(&name));
            assert_eq!(single[key], 1, "{sub}/{name:?}: {single}");
            assert_eq!(cluster[key], 3, "cluster/{sub}/{name:?}: {cluster}");
            seen += 1;
        }
    }
    assert!(seen >= 12, "6 streams, 5 buckets, 1 object store ({seen})");
}

/// Invalid configuration exits 64 and names the key.
#[test]
fn contract_invalid_config_exits_64_naming_the_key() {
    let fleet = Fleet::new(&[]);
    for (env, key) in [
        (
            "CALLFLEET_SIP__RINGING_TIMEOUT_SECS",
            "sip.ringing_timeout_secs",
        ),
        (
            "CALLFLEET_AGENT__MAX_CONCURRENT_CALLS",
            "max_concurrent_calls",
        ),
        ("N8N_WEBHOOK_URL", "notifier.webhook_url"),
        ("CALLFLEET_INGRESS__BIND", "ingress.bind"),
    ] {
        let value = match key {
            "sip.ringing_timeout_secs" => "90",
            "max_concurrent_calls" => "lots",
            "notifier.webhook_url" => "not a url",
            _ => "everywhere",
        };
        let (code, _, err) = fleet.run(&["ingress"], &[(env, value)]);
        assert_eq!(code, Some(64), "{env}: {err}");
        assert!(
            err.to_lowercase().contains(key),
            "{env}: message names {key}: {err}"
        );
    }
    let (code, _, err) = fleet.run(&["agent"], &[("NATS_URL", "nats://127.0.0.1:1")]);
    assert_eq!(
        code,
        Some(64),
        "the agent without LiveKit is a config error: {err}"
    );
    assert!(err.contains("LIVEKIT_URL"), "{err}");
}

/// The help texts say what `callfleet dev` / `make run` really start (they used to promise
/// `livekit-server --dev`, which has no SIP service and cannot place the demo call).
#[test]
fn contract_help_texts_describe_the_local_rig() {
    let fleet = Fleet::new(&[]);
    let (code, out, err) = fleet.run(&["--help"], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains("--dev"), "callfleet --help: {out}");
    assert!(
        out.contains("LIVEKIT_URL") && out.contains("livekit-sip"),
        "callfleet --help names the telephony rig dev starts: {out}"
    );
    let make = std::process::Command::new("make")
        .arg("help")
        .current_dir(workspace_root())
        .output()
        .expect("run make help");
    let help = String::from_utf8_lossy(&make.stdout);
    assert!(make.status.success(), "make help: {help}");
    assert!(!help.contains("--dev"), "make help: {help}");
    assert!(
        help.contains("make run") && help.contains("telephony rig"),
        "make help describes make run: {help}"
    );
}

/// The agent, the media transport and the voice engine keep one-way module layering (no module
/// imports one that imports it back), as their codemaps describe. Checked by
/// `tests/tools/import_cycles.py`, which reads every `use crate::`/`super::` edge.
#[test]
fn contract_no_import_cycles() {
    let root = workspace_root();
    let script = root.join("tests/tools/import_cycles.py");
    for krate in ["workers/agent/src", "shared/media/src", "shared/voice/src"] {
        let out = std::process::Command::new("python3")
            .arg(&script)
            .arg(root.join(krate))
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run python3 ({e}): install it with `apt-get install python3`")
            });
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{krate} has an import cycle:\n{report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(report.contains("no cycles"), "{krate}:\n{report}");
    }
}
