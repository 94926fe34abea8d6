//! What the cluster says of itself: the JetStream meta leader and each node's connections
//! (the monitoring endpoint's `/jsz` and `/connz`), stream leaders and replicas (the
//! JetStream API's stream info, asked of a healthy node), and moving a leader.

use std::{path::PathBuf, time::Duration};

use serde_json::Value;

use super::NatsCluster;
use crate::wait_for_logged;

impl NatsCluster {
    /// The monitoring endpoint's `/jsz` of a node, if it answers within a second.
    async fn jsz(&self, node: usize) -> Option<Value> {
        let url = format!("http://127.0.0.1:{}/jsz", self.nodes[node].http_port);
        let resp = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    /// The names of the client connections a node holds (`callfleet-agent`, ...), from its
    /// monitoring endpoint's `/connz`.
    pub async fn connection_names(&self, node: usize) -> Option<Vec<String>> {
        let url = format!(
            "http://127.0.0.1:{}/connz?limit=1024",
            self.nodes[node].http_port
        );
        let resp = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .ok()?;
        let connz: Value = resp.json().await.ok()?;
        Some(
            connz["connections"]
                .as_array()?
                .iter()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect(),
        )
    }

    /// Make `node` the leader of `stream` and, with `consumer`, of that consumer too
    /// (`$JS.API.…LEADER.STEPDOWN` with the node as the preferred placement), waiting until
    /// the stream info says so.
    pub async fn move_leader(&self, stream: &str, consumer: Option<&str>, node: usize) {
        let body = serde_json::json!({"placement": {"preferred": self.name(node)}}).to_string();
        let logs = self.logs();
        let logs: Vec<&std::path::Path> = logs.iter().map(PathBuf::as_path).collect();
        let subjects: Vec<(String, String)> = std::iter::once((
            format!("$JS.API.STREAM.LEADER.STEPDOWN.{stream}"),
            format!("$JS.API.STREAM.INFO.{stream}"),
        ))
        .chain(consumer.map(|c| {
            (
                format!("$JS.API.CONSUMER.LEADER.STEPDOWN.{stream}.{c}"),
                format!("$JS.API.CONSUMER.INFO.{stream}.{c}"),
            )
        }))
        .collect();
        for (stepdown, info) in &subjects {
            // One step-down at a time: the election it starts takes a moment.
            let last = std::sync::Mutex::new(None::<tokio::time::Instant>);
            wait_for_logged(
                &format!("{} to lead ({stepdown})", self.name(node)),
                Duration::from_secs(30),
                &logs,
                || async {
                    let client = self.client().await;
                    let ask = |subject: String, body: String| {
                        let client = client.clone();
                        async move {
                            let reply = tokio::time::timeout(
                                Duration::from_secs(2),
                                client.request(subject, body.into()),
                            )
                            .await
                            .ok()?
                            .ok()?;
                            serde_json::from_slice::<Value>(&reply.payload).ok()
                        }
                    };
                    let now = ask(info.clone(), String::new()).await?;
                    if now["cluster"]["leader"].as_str() == Some(self.name(node)) {
                        return Some(());
                    }
                    // Not yet: ask the leader to step down toward the node, then look again.
                    let due = last
                        .lock()
                        .ok()
                        .is_some_and(|l| l.is_none_or(|t| t.elapsed() > Duration::from_secs(3)));
                    if due {
                        ask(stepdown.clone(), body.clone()).await;
                        if let Ok(mut l) = last.lock() {
                            *l = Some(tokio::time::Instant::now());
                        }
                    }
                    None
                },
            )
            .await;
        }
    }

    /// Wait until every healthy node names the same JetStream meta leader, itself healthy.
    pub async fn wait_meta_leader(&self) -> usize {
        let logs = self.logs();
        let logs: Vec<&std::path::Path> = logs.iter().map(PathBuf::as_path).collect();
        wait_for_logged(
            "the healthy nats nodes to agree on a JetStream meta leader",
            Duration::from_secs(30),
            &logs,
            || async {
                let mut leaders = Vec::new();
                for i in self.healthy() {
                    let jsz = self.jsz(i).await?;
                    leaders.push(jsz["meta_cluster"]["leader"].as_str()?.to_owned());
                }
                let first = leaders.first()?.clone();
                let node = self.node_named(&first)?;
                (leaders.iter().all(|l| *l == first) && self.healthy().any(|i| i == node))
                    .then_some(node)
            },
        )
        .await
    }

    /// `$JS.API.STREAM.INFO.<stream>` as one healthy node answers it, within two seconds.
    pub async fn stream_info(&self, stream: &str) -> Option<Value> {
        let client = tokio::time::timeout(Duration::from_secs(2), self.client())
            .await
            .ok()?;
        let reply = tokio::time::timeout(
            Duration::from_secs(2),
            client.request(format!("$JS.API.STREAM.INFO.{stream}"), "".into()),
        )
        .await
        .ok()?
        .ok()?;
        let info: Value = serde_json::from_slice(&reply.payload).ok()?;
        info.get("error").is_none().then_some(info)
    }

    /// The node leading `stream` (its RAFT group's leader, from the stream info), if any.
    pub async fn leader_of(&self, stream: &str) -> Option<usize> {
        let info = self.stream_info(stream).await?;
        self.node_named(info["cluster"]["leader"].as_str()?)
    }

    /// How many replicas `stream` has (its config's `num_replicas`) and how many servers hold
    /// one (the leader and its peers in the stream info).
    pub async fn replicas_of(&self, stream: &str) -> Option<(u64, usize)> {
        let info = self.stream_info(stream).await?;
        let configured = info["config"]["num_replicas"].as_u64()?;
        let peers = info["cluster"]["replicas"].as_array().map_or(0, Vec::len);
        let leader = usize::from(info["cluster"]["leader"].is_string());
        Some((configured, leader + peers))
    }

    /// Wait until `stream` has a healthy leader and every replica is current and online: its
    /// quorum is whole again. Returns the leader.
    pub async fn wait_stream_current(&self, stream: &str, within: Duration) -> usize {
        let logs = self.logs();
        let logs: Vec<&std::path::Path> = logs.iter().map(PathBuf::as_path).collect();
        wait_for_logged(
            &format!("stream {stream} to have a healthy leader and every replica current"),
            within,
            &logs,
            || async {
                let info = self.stream_info(stream).await?;
                let leader = self.node_named(info["cluster"]["leader"].as_str()?)?;
                let replicas = info["cluster"]["replicas"].as_array()?;
                let whole = replicas.iter().all(|r| {
                    r["current"].as_bool() == Some(true) && r["offline"].as_bool() != Some(true)
                });
                (self.healthy().any(|i| i == leader) && whole).then_some(leader)
            },
        )
        .await
    }

    /// Wait until `stream` has a leader among the healthy nodes (a quorum, after a fault).
    pub async fn wait_stream_leader(&self, stream: &str, within: Duration) -> usize {
        let logs = self.logs();
        let logs: Vec<&std::path::Path> = logs.iter().map(PathBuf::as_path).collect();
        wait_for_logged(
            &format!("stream {stream} to have a leader among the healthy nodes"),
            within,
            &logs,
            || async {
                let leader = self.leader_of(stream).await?;
                self.healthy().any(|i| i == leader).then_some(leader)
            },
        )
        .await
    }
}
