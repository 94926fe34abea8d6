//! `callfleet dev` (`make run`): the whole fleet on one machine. Starts a pinned nats-server
//! when `NATS_URL` is unset and `livekit-server --dev` when `LIVEKIT_URL` is unset (both from
//! `.tools/bin`, installed by `make setup`), then runs ingress, agent and notifier in-process.

use std::{path::PathBuf, process::Stdio, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use callfleet_config::Config;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

fn tool(name: &str) -> anyhow::Result<PathBuf> {
    let local = PathBuf::from(".tools/bin").join(name);
    if local.exists() {
        return Ok(local);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.exists() {
                return Ok(candidate);
            }
        }
    }
    bail!("{name} not found in .tools/bin or PATH: run `make setup`")
}

async fn wait_port(addr: &str, what: &str) -> anyhow::Result<()> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} did not start listening on {addr} within 10 s")
}

fn unset(var: &str) -> bool {
    std::env::var_os(var).is_none()
}

pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut config = (*config).clone();
    let mut children: Vec<Child> = Vec::new();

    if unset("NATS_URL") && unset("CALLFLEET_NATS__URL") {
        let store = PathBuf::from(".tools/dev/nats");
        std::fs::create_dir_all(&store).context("creating .tools/dev/nats")?;
        let child = Command::new(tool("nats-server")?)
            .args(["-a", "127.0.0.1", "-p", "4222", "-js", "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting nats-server")?;
        children.push(child);
        wait_port("127.0.0.1:4222", "nats-server").await?;
        config.nats.url = "nats://127.0.0.1:4222".into();
        println!("dev: started nats-server on nats://127.0.0.1:4222 (store in .tools/dev/nats)");
    }
    if config.livekit.credentials().is_none() {
        let child = Command::new(tool("livekit-server")?)
            .args(["--dev", "--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting livekit-server --dev")?;
        children.push(child);
        wait_port("127.0.0.1:7880", "livekit-server").await?;
        config.livekit.url = Some("ws://127.0.0.1:7880".into());
        config.livekit.api_key = Some("devkey".into());
        config.livekit.api_secret = Some("secret".into());
        println!("dev: started livekit-server --dev on ws://127.0.0.1:7880 (keys devkey/secret)");
        if config.sip.trunk_id.is_none() {
            config.sip.trunk_id = Some("ST_dev".into());
            println!(
                "dev: no SIP service runs with livekit-server --dev, so dials fail as `infrastructure` \
                 (\"sip not connected\") and are retried, then reported. Set LIVEKIT_URL and SIP_TRUNK_ID for real calls."
            );
        }
    }
    let config = Arc::new(config);
    let bind = config.ingress.bind.clone();
    let auth = config
        .ingress
        .api_keys
        .first()
        .map(|_| " -H 'Authorization: Bearer <api key>'")
        .unwrap_or_default();
    println!("dev: ingress on http://{bind}; enqueue a call with:");
    println!(
        "  curl -s -X POST http://{bind}/dispatch -H 'Content-Type: application/json'{auth} \\\n    -d '{{\"destination\":\"61402012298\",\"account_code\":\"em-tech-01\",\"session_options\":{{\"llm\":\"openai/gpt-4o-mini\",\"tts\":\"cartesia\"}}}}'"
    );
    match &config.notifier.webhook_url {
        Some(url) => println!("dev: summaries go to {url}"),
        None => println!("dev: set N8N_WEBHOOK_URL to receive summaries"),
    }

    let ingress = tokio::spawn(callfleet_ingress::run(config.clone(), shutdown.clone()));
    let agent = tokio::spawn(callfleet_agent::run(config.clone(), shutdown.clone()));
    let notifier = tokio::spawn(callfleet_notifier::run(config.clone(), shutdown.clone()));
    let (i, a, n) = tokio::join!(ingress, agent, notifier);
    shutdown.cancel();
    i??;
    a??;
    n??;
    for mut child in children {
        let _ = child.kill().await;
    }
    Ok(())
}
