//! `callfleet export`: the JetStream definitions and JSON Schemas under `nats/`.
//! A test compares these files with the code, so they cannot drift.
//!
//! The topology is written twice: for one server (`nats.replicas = 1`, the default) at the top,
//! and for the 3-node cluster of `nats/cluster/` (`nats.replicas = 3`, `recording.replicas =
//! 3`) under `cluster/`, so the replica count each deployment gets is there to read.

use std::path::Path;

use anyhow::Context;
use callfleet_config::Config;

/// The settings of the 3-node cluster (`nats/cluster/node*.conf`) that change the topology.
const CLUSTER_TOML: &str = "[nats]\nreplicas = 3\n[recording]\nreplicas = 3\n";

/// Every generated file, keyed by its path under `nats/`.
pub fn files() -> anyhow::Result<Vec<(String, String)>> {
    let config = Config::from_toml("").context("default configuration")?;
    let cluster = Config::from_toml(CLUSTER_TOML).context("cluster configuration")?;
    let mut out = Vec::new();
    for (path, value) in callfleet_bus::topology::export(&config) {
        out.push((path, serde_json::to_string_pretty(&value)? + "\n"));
    }
    for (path, value) in callfleet_bus::topology::export(&cluster) {
        out.push((
            format!("cluster/{path}"),
            serde_json::to_string_pretty(&value)? + "\n",
        ));
    }
    for (path, schema) in callfleet_domain::schemas() {
        out.push((path, serde_json::to_string_pretty(&schema)? + "\n"));
    }
    Ok(out)
}

pub fn write_all(dir: &Path) -> anyhow::Result<()> {
    for (path, text) in files()? {
        let full = dir.join(&path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&full, text).with_context(|| format!("writing {}", full.display()))?;
        println!("wrote {}", full.display());
    }
    Ok(())
}
