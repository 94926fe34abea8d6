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

/// `compose.yaml` as JSON, read by PyYAML from `.tools/venv` (it comes with schemathesis).
fn compose_file() -> serde_json::Value {
    let python = workspace_root().join(".tools/venv/bin/python");
    let out = std::process::Command::new(&python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(workspace_root().join("compose.yaml"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}): run `make setup`", python.display()));
    assert!(
        out.status.success(),
        "compose.yaml is not YAML PyYAML reads (or the venv lacks it: run `make setup`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}

/// `compose.yaml`'s `cluster` profile runs the three nodes of `nats/cluster/` (each with its own
/// config, store volume and the routes the configs name) and every role on them with
/// `CALLFLEET_NATS__REPLICAS=3` and a `NATS_URL` naming the three nodes; the default stack
/// stays on its single node.
#[test]
fn contract_compose_cluster_profile_matches_nats_cluster() {
    let compose = compose_file();
    let services = compose["services"].as_object().expect("services");
    let nodes = ["n1", "n2", "n3"];
    let url = "nats://n1:4222,nats://n2:4222,nats://n3:4222";
    for (i, node) in nodes.iter().enumerate() {
        let s = &services[*node];
        assert_eq!(s["profiles"], serde_json::json!(["cluster"]), "{node}: {s}");
        let volumes: Vec<&str> = s["volumes"]
            .as_array()
            .map(|v| v.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        let conf_mount = format!(
            "./nats/cluster/node{}.conf:/etc/nats/nats-server.conf:ro",
            i + 1
        );
        assert!(
            volumes.contains(&conf_mount.as_str()),
            "{node}: {volumes:?}"
        );
        assert!(
            volumes.contains(&format!("{node}-data:/var/lib/nats").as_str()),
            "{node} keeps its store in a volume: {volumes:?}"
        );
        assert_eq!(
            s["command"],
            serde_json::json!(["-c", "/etc/nats/nats-server.conf"])
        );
        let conf = std::fs::read_to_string(
            workspace_root().join(format!("nats/cluster/node{}.conf", i + 1)),
        )
        .expect("node config");
        assert!(
            conf.contains(&format!("server_name: {node}\n")),
            "{node}: {conf}"
        );
        assert!(
            conf.contains("store_dir: \"/var/lib/nats\""),
            "{node}: {conf}"
        );
        assert!(
            conf.contains(&format!("NATS_URL={url}")),
            "{node}'s comment: {conf}"
        );
        for peer in conf
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nats://"))
        {
            let host = peer.split(':').next().unwrap_or_default();
            assert!(
                nodes.contains(&host),
                "{node} routes to {peer}, not a node of the profile"
            );
        }
    }
    let mut roles = Vec::new();
    for (name, s) in services {
        let env = &s["environment"];
        if name.ends_with("-cluster") {
            assert_eq!(s["profiles"], serde_json::json!(["cluster"]), "{name}: {s}");
            assert_eq!(env["NATS_URL"], url, "{name}: {s}");
            assert_eq!(env["CALLFLEET_NATS__REPLICAS"], "3", "{name}: {s}");
            assert_eq!(env["CALLFLEET_RECORDING__REPLICAS"], "3", "{name}: {s}");
            assert_eq!(s["depends_on"], serde_json::json!(nodes), "{name}: {s}");
            roles.push(s["command"][0].as_str().unwrap_or_default().to_owned());
        } else if !nodes.contains(&name.as_str()) {
            assert!(
                s.get("profiles").is_none(),
                "{name} is in the default stack: {s}"
            );
            if name != "nats" {
                assert_eq!(env["NATS_URL"], "nats://nats:4222", "{name}: {s}");
                assert!(env.get("CALLFLEET_NATS__REPLICAS").is_none(), "{name}: {s}");
            }
        }
    }
    roles.sort();
    assert_eq!(
        roles,
        ["agent", "campaigner", "dispatcher", "ingress", "notifier"],
        "every role on the cluster"
    );
}
