//! `callfleet dev` (`make run`): the whole fleet on one machine.
//!
//! When `NATS_URL` is unset it starts a pinned nats-server. When LiveKit is not configured
//! (`LIVEKIT_URL` unset) it starts the local telephony rig that the tests use too:
//! redis-server, livekit-server backed by Redis, livekit-sip, and a SIPp callee standing in for
//! the PSTN, with an outbound trunk to it created through the LiveKit API. Calls then really
//! ring, answer and hang up on loopback. Binaries come from `.tools/bin` (`make setup`) or PATH.
//! Then it runs ingress, agent, notifier and campaigner in-process.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, bail};
use callfleet_config::Config;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

const DEV_DIR: &str = ".tools/dev";
const REDIS_PORT: u16 = 6390;
const LIVEKIT_PORT: u16 = 7880;
const SIP_PORT: u16 = 5070;
const SIP_HEALTH_PORT: u16 = 8091;
const CALLEE_PORT: u16 = 5080;
const CALLEE_MEDIA_PORT: u16 = 6080;
const DEV_KEY: &str = "devkey";
const DEV_SECRET: &str = "callfleet-dev-secret-change-me-0123456789";
const DEV_FROM_NUMBER: &str = "+61299990000";

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

async fn wait_port(port: u16, what: &str) -> anyhow::Result<()> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} did not start listening on 127.0.0.1:{port} within 10 s")
}

fn unset(var: &str) -> bool {
    std::env::var_os(var).is_none()
}

/// Child processes, killed when dropped.
#[derive(Default)]
struct Children(Vec<Child>);

impl Children {
    fn spawn(&mut self, what: &str, mut cmd: Command, log: Option<&Path>) -> anyhow::Result<()> {
        let (out, err) = match log {
            Some(path) => {
                let f = std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?;
                (Stdio::from(f.try_clone()?), Stdio::from(f))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        // Its own process group: a terminal's Ctrl-C reaches callfleet only, which stops the
        // roles first and the servers after, instead of NATS vanishing under a draining fleet.
        let child = cmd
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        self.0.push(child);
        Ok(())
    }
}

pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut config = (*config).clone();
    let mut children = Children::default();
    std::fs::create_dir_all(DEV_DIR).context("creating .tools/dev")?;

    if unset("NATS_URL") && unset("CALLFLEET_NATS__URL") {
        let store = PathBuf::from(DEV_DIR).join("nats");
        let mut cmd = Command::new(tool("nats-server")?);
        cmd.args(["-a", "127.0.0.1", "-p", "4222", "-js", "-sd"])
            .arg(&store);
        children.spawn("nats-server", cmd, None)?;
        wait_port(4222, "nats-server").await?;
        config.nats.url = "nats://127.0.0.1:4222".into();
        println!("dev: started nats-server on nats://127.0.0.1:4222 (store in {DEV_DIR}/nats)");
    }
    let mut demo_number = "+61402012298".to_owned();
    if config.livekit.credentials().is_none() {
        start_telephony(&mut config, &mut children).await?;
        // The callee answers numbers ending in HH200 and hangs up after HH seconds.
        demo_number = "+614000005200".into();
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
        "  curl -s -X POST http://{bind}/dispatch -H 'Content-Type: application/json'{auth} \\\n    -d '{{\"destination\":\"{demo_number}\",\"account_code\":\"em-tech-01\",\"session_options\":{{\"llm\":\"openai/gpt-4o-mini\",\"tts\":\"cartesia\"}}}}'"
    );
    match &config.notifier.webhook_url {
        Some(url) => println!("dev: summaries go to {url}"),
        None => println!("dev: set N8N_WEBHOOK_URL to receive summaries"),
    }

    let ingress = tokio::spawn(callfleet_ingress::run(config.clone(), shutdown.clone()));
    let agent = tokio::spawn(callfleet_agent::run(config.clone(), shutdown.clone()));
    let notifier = tokio::spawn(callfleet_notifier::run(config.clone(), shutdown.clone()));
    let campaigner = tokio::spawn(callfleet_campaigner::run(config.clone(), shutdown.clone()));
    let (i, a, n, c) = tokio::join!(ingress, agent, notifier, campaigner);
    shutdown.cancel();
    i??;
    a??;
    n??;
    c??;
    drop(children);
    Ok(())
}

/// redis-server, livekit-server with Redis, livekit-sip, the SIPp callee, and a trunk to it.
async fn start_telephony(config: &mut Config, children: &mut Children) -> anyhow::Result<()> {
    let dir = PathBuf::from(DEV_DIR);
    let mut redis = Command::new(tool("redis-server")?);
    redis.args(["--port", &REDIS_PORT.to_string(), "--bind", "127.0.0.1"]);
    redis.args(["--save", "", "--appendonly", "no"]);
    children.spawn("redis-server", redis, Some(&dir.join("redis.log")))?;
    wait_port(REDIS_PORT, "redis-server").await?;

    let livekit_yaml = dir.join("livekit.yaml");
    std::fs::write(
        &livekit_yaml,
        format!(
            "port: {LIVEKIT_PORT}\nbind_addresses: [\"127.0.0.1\"]\nrtc:\n  tcp_port: 7881\n  udp_port: 7882\n  use_external_ip: false\n  node_ip: 127.0.0.1\nredis:\n  address: 127.0.0.1:{REDIS_PORT}\nkeys:\n  {DEV_KEY}: {DEV_SECRET}\nlogging:\n  level: info\n"
        ),
    )?;
    let mut livekit = Command::new(tool("livekit-server")?);
    livekit.arg("--config").arg(&livekit_yaml);
    children.spawn("livekit-server", livekit, Some(&dir.join("livekit.log")))?;
    wait_port(LIVEKIT_PORT, "livekit-server").await?;

    let sip_yaml = dir.join("livekit-sip.yaml");
    std::fs::write(
        &sip_yaml,
        format!(
            "api_key: {DEV_KEY}\napi_secret: {DEV_SECRET}\nws_url: ws://127.0.0.1:{LIVEKIT_PORT}\nredis:\n  address: 127.0.0.1:{REDIS_PORT}\nsip_port: {SIP_PORT}\nrtp_port: 31000-31999\nhealth_port: {SIP_HEALTH_PORT}\nuse_external_ip: false\nlisten_ip: 127.0.0.1\nnat_1_to_1_ip: 127.0.0.1\nmax_cpu_utilization: 1.0\nlogging:\n  level: info\n"
        ),
    )?;
    let mut sip = Command::new(tool("livekit-sip")?);
    sip.arg("--config").arg(&sip_yaml);
    children.spawn("livekit-sip", sip, Some(&dir.join("livekit-sip.log")))?;
    wait_port(SIP_HEALTH_PORT, "livekit-sip").await?;

    let scenario = PathBuf::from("tests/sipp/callee.xml");
    if !scenario.exists() {
        bail!(
            "{} is missing: run `make run` from the repository root",
            scenario.display()
        );
    }
    let mut callee = Command::new(tool("sipp")?);
    callee
        .arg("-sf")
        .arg(&scenario)
        .args(["-i", "127.0.0.1", "-p", &CALLEE_PORT.to_string()])
        .args(["-mi", "127.0.0.1", "-mp", &CALLEE_MEDIA_PORT.to_string()])
        .args(["-nostdin", "-trace_msg", "-message_file"])
        .arg(dir.join("callee-messages.log"));
    children.spawn("sipp", callee, Some(&dir.join("callee.log")))?;

    let url = format!("ws://127.0.0.1:{LIVEKIT_PORT}");
    let lk = callfleet_livekit::LiveKit::new(&url, DEV_KEY, DEV_SECRET, Duration::from_secs(10));
    let trunk = lk
        .create_outbound_trunk(
            "callfleet-dev-callee",
            &format!("127.0.0.1:{CALLEE_PORT}"),
            vec![DEV_FROM_NUMBER.into()],
        )
        .await
        .context("creating the outbound trunk to the local callee")?;
    config.livekit.url = Some(url.clone());
    config.livekit.api_key = Some(DEV_KEY.into());
    config.livekit.api_secret = Some(DEV_SECRET.into());
    if config.sip.trunk_id.is_none() {
        config.sip.trunk_id = Some(trunk.clone());
    }
    if config.sip.from_number.is_none() {
        config.sip.from_number = Some(DEV_FROM_NUMBER.into());
    }
    println!(
        "dev: started redis, livekit-server ({url}, key {DEV_KEY}), livekit-sip (udp 127.0.0.1:{SIP_PORT}) \
         and a SIPp callee on 127.0.0.1:{CALLEE_PORT}; trunk {trunk}. Logs in {DEV_DIR}/."
    );
    println!(
        "dev: the callee's behaviour is picked by the dialed number's last digits (tests/sipp/callee.xml): \
         ...HH200 answers and hangs up after HH s, ...00486 busy, ...00180 rings, ...00603 declines"
    );
    Ok(())
}
