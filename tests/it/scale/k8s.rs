//! deploy/k8s, validated with no cluster: kubeconform `-strict` against the Kubernetes and KEDA
//! schemas `make setup` generates (deploy/k8s/schemas/generate.py), and cross-checked against
//! the code: env keys the config accepts, probe ports and paths, grace periods, and the
//! ScaledObject's stream and consumers as `callfleet export` writes the topology.

use std::{path::Path, process::Command};

use callfleet_tests::{TempDir, binary, workspace_root};
use serde_json::Value;

const INSTALL: &str = "run `make setup` (it runs `go install github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0` into .tools/bin and generates .tools/k8s-schemas)";

fn kubeconform(files: &[std::path::PathBuf]) -> (bool, String) {
    let root = workspace_root();
    let bin = root.join(".tools/bin/kubeconform");
    let schemas = root.join(".tools/k8s-schemas");
    assert!(bin.exists(), "{} is missing: {INSTALL}", bin.display());
    assert!(
        schemas.join("scaledobject-keda-v1alpha1.json").exists(),
        "{} is missing: {INSTALL}",
        schemas.display()
    );
    let out = Command::new(bin)
        .args(["-strict", "-summary", "-output", "text", "-schema-location"])
        .arg(format!(
            "{}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
            schemas.display()
        ))
        .args(files)
        .output()
        .expect("run kubeconform");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Every document of a YAML file, as JSON (PyYAML in .tools/venv).
fn yaml(path: &Path) -> Vec<Value> {
    let python = workspace_root().join(".tools/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make setup`",
        python.display()
    );
    let out = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
        ])
        .arg(path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn dir() -> std::path::PathBuf {
    workspace_root().join("deploy/k8s")
}

/// The kustomization's resources, and the example Secret it leaves out on purpose.
fn manifests() -> Vec<std::path::PathBuf> {
    let k = &yaml(&dir().join("kustomization.yaml"))[0];
    let mut files: Vec<_> = k["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| dir().join(r.as_str().expect("a file")))
        .collect();
    files.push(dir().join("secret.example.yaml"));
    files
}

fn deployment(role: &str) -> Value {
    yaml(&dir().join(format!("{role}.yaml")))
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap_or_else(|| panic!("{role}.yaml has a Deployment"))
}

fn env_of(container: &Value) -> Vec<(String, String)> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_owned(),
                e["value"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

#[test]
fn scale_k8s_manifests_are_valid_kubernetes_and_keda() {
    let files = manifests();
    let mut on_disk: Vec<_> = std::fs::read_dir(dir())
        .expect("deploy/k8s")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    on_disk.sort();
    let mut listed = files.clone();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "every manifest is in kustomization.yaml (and so validated)"
    );

    let (ok, out) = kubeconform(&files);
    assert!(ok, "kubeconform -strict:\n{out}");
    assert!(out.contains("Invalid: 0, Errors: 0, Skipped: 0"), "{out}");
    assert!(
        out.contains("Valid: 15"),
        "5 Deployments, a Service, 5 PDBs, a ConfigMap, a Secret, a Namespace, the ScaledObject:\n{out}"
    );

    // The schemas bite: an unknown field in the ScaledObject or a Deployment is refused.
    let tmp = TempDir::new("k8s");
    for (file, from, to) in [
        (
            "agent-scaledobject.yaml",
            "minReplicaCount:",
            "minReplicas:",
        ),
        (
            "agent.yaml",
            "terminationGracePeriodSeconds:",
            "terminationGracePeriod:",
        ),
    ] {
        let text = std::fs::read_to_string(dir().join(file)).expect("read");
        let broken = tmp.0.join(file);
        std::fs::write(&broken, text.replacen(from, to, 1)).expect("write");
        let (ok, out) = kubeconform(&[broken]);
        assert!(!ok, "{file} with {to} must be invalid:\n{out}");
    }
}

#[test]
fn scale_k8s_manifests_match_the_code() {
    // The ScaledObject's stream and consumers are the topology's (`callfleet export`).
    let tmp = TempDir::new("export");
    let status = Command::new(binary())
        .args(["export", "--dir"])
        .arg(&tmp.0)
        .status()
        .expect("callfleet export");
    assert!(status.success());
    let so = &yaml(&dir().join("agent-scaledobject.yaml"))[0];
    let triggers = so["spec"]["triggers"].as_array().expect("triggers");
    let nats = triggers
        .iter()
        .find(|t| t["type"] == "nats-jetstream")
        .expect("nats-jetstream");
    let (stream, consumer) = (
        nats["metadata"]["stream"].as_str().expect("stream"),
        nats["metadata"]["consumer"].as_str().expect("consumer"),
    );
    let exported: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.0.join(format!("consumers/{stream}.{consumer}.json")))
            .unwrap_or_else(|e| panic!("the topology has no {stream}/{consumer}: {e}")),
    )
    .expect("json");
    assert_eq!(exported["stream_name"], stream);
    assert_eq!(exported["durable_name"], consumer);
    // The campaigns' consumers: the export's example campaign, `campaign-EXAMPLE`.
    let campaign: Value = serde_json::from_str(
        &std::fs::read_to_string(
            tmp.0
                .join(format!("consumers/{stream}.campaign-EXAMPLE.json")),
        )
        .expect("the export's campaign consumer"),
    )
    .expect("json");
    let prefix = campaign["durable_name"]
        .as_str()
        .expect("name")
        .trim_end_matches("EXAMPLE");
    let prom = triggers
        .iter()
        .find(|t| t["type"] == "prometheus")
        .expect("prometheus");
    let query = prom["metadata"]["query"].as_str().expect("query");
    for part in [
        format!("stream=\"{stream}\""),
        format!("consumer=~\"{prefix}.+\""),
        "callfleet_jetstream_consumer_num_pending".to_owned(),
        "callfleet_jetstream_consumer_num_ack_pending".to_owned(),
    ] {
        assert!(query.contains(&part), "{part} in {query}");
    }

    // Each role's env is configuration the binary accepts (unknown keys stop it with 64), and
    // its probes use the port the role listens on.
    let config_map = &yaml(&dir().join("config.yaml"))[0]["data"];
    // The Secret's names, with values of the right shape (the example's are placeholders).
    let secret: Vec<(String, String)> = yaml(&dir().join("secret.example.yaml"))[0]["stringData"]
        .as_object()
        .expect("stringData")
        .keys()
        .map(|k| {
            let v = match k.as_str() {
                "WEBHOOK_SECRET" => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "CALLFLEET_API_KEYS" => "0123456789abcdef0123",
                _ => "test-value",
            };
            (k.clone(), v.to_owned())
        })
        .collect();
    for (role, listen_key, port) in [
        ("agent", "CALLFLEET_AGENT__METRICS_LISTEN", 8081),
        ("notifier", "CALLFLEET_NOTIFIER__METRICS_LISTEN", 8082),
        ("campaigner", "CALLFLEET_CAMPAIGNER__METRICS_LISTEN", 8083),
        ("dispatcher", "CALLFLEET_DISPATCHER__METRICS_LISTEN", 8084),
        ("ingress", "CALLFLEET_INGRESS__BIND", 8080),
    ] {
        let d = deployment(role);
        let pod = &d["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(c["args"][0], role);
        let env = env_of(c);
        let listen = env
            .iter()
            .find(|(k, _)| k == listen_key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{role} sets {listen_key}"));
        assert_eq!(listen, format!("0.0.0.0:{port}"), "{role}");
        let named = c["ports"][0]["name"].as_str().expect("port name");
        assert_eq!(c["ports"][0]["containerPort"], port, "{role}");
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            assert_eq!(c[probe]["httpGet"]["path"], path, "{role} {probe}");
            assert_eq!(c[probe]["httpGet"]["port"], named, "{role} {probe}");
        }
        assert_eq!(
            d["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"],
            port.to_string()
        );
        let mut cmd = Command::new(binary());
        cmd.arg("config").env_clear().current_dir(&tmp.0);
        for (k, v) in config_map.as_object().expect("data") {
            cmd.env(k, v.as_str().expect("string"));
        }
        cmd.envs(secret.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let out = cmd.output().expect("callfleet config");
        assert!(
            out.status.success(),
            "{role}'s env is not a valid configuration: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config: Value = serde_json::from_slice(&out.stdout).expect("config json");
        assert_eq!(config["nats"]["replicas"], 3);
        if role == "agent" {
            let slots = config["agent"]["max_concurrent_calls"]
                .as_u64()
                .expect("slots");
            let grace = config["agent"]["drain_grace_secs"].as_u64().expect("grace");
            assert_eq!(config["agent"]["metrics_listen"], listen);
            // The drain: grace, then up to 30 s for hung-up calls, then 10 s of NATS drain.
            let period = pod["terminationGracePeriodSeconds"]
                .as_u64()
                .expect("period");
            assert!(
                period >= grace + 30 + 10,
                "terminationGracePeriodSeconds {period} < drain {grace} + 40"
            );
            // KEDA: one worker per `slots` jobs waiting or in flight.
            let slots = slots.to_string();
            assert_eq!(nats["metadata"]["lagThreshold"], slots.as_str());
            assert_eq!(prom["metadata"]["threshold"], slots.as_str());
            assert_eq!(
                so["spec"]["advanced"]["scalingModifiers"]["target"],
                slots.as_str()
            );
            assert_eq!(so["spec"]["scaleTargetRef"]["name"], d["metadata"]["name"]);
        }
    }
}
