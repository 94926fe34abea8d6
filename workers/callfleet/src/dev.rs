//! `callfleet dev` (`make run`): the whole fleet on one machine.
//!
//! When `NATS_URL` is unset it starts a pinned nats-server. When LiveKit is not configured
//! (`LIVEKIT_URL` unset) it starts the local telephony rig that the tests use too:
//! redis-server, livekit-server backed by Redis, livekit-sip, and a SIPp callee standing in for
//! the PSTN, with an outbound trunk to it created through the LiveKit API. Calls then really
//! ring, answer and hang up on loopback. Binaries come from `.tools/bin` (`make setup`) or PATH.
//! Then it runs ingress, agent, notifier, campaigner and dispatcher in-process.
//!
//! Every answered call runs the voice session (the default). Without provider keys, dev starts
//! the project's scripted provider stand-ins in-process and points the agent at them
//! ([`providers`]); the banner says so, and how to switch to real providers (`.env.local`).
//! The demo number's callee says "Hello, who is this?" (speech from `make setup`), so the
//! printed curl line gives a real turn and a webhook with a transcript.
//!
//! Every child is supervised ([`supervise`]): the banner names a child only once it answered
//! its readiness probe (a port, a health endpoint, Redis' PING, the callee's SIP OPTIONS), and a
//! child that exits at any time is reported at once with the last lines of its log. Dev then
//! drains the roles and exits non-zero rather than run on half a rig.

mod console;
mod providers;
mod supervise;

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use callfleet_config::Config;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use supervise::{Probe, Supervisor};

const DEV_DIR: &str = ".tools/dev";
const NATS_PORT: u16 = 4222;
const REDIS_PORT: u16 = 6390;
const LIVEKIT_PORT: u16 = 7880;
const LIVEKIT_TCP_PORT: u16 = 7881;
const SIP_PORT: u16 = 5070;
const SIP_HEALTH_PORT: u16 = 8091;
const CALLEE_PORT: u16 = 5080;
const CALLEE_MEDIA_PORT: u16 = 6080;
const DEV_KEY: &str = "devkey";
const DEV_SECRET: &str = "callfleet-dev-secret-change-me-0123456789";
const DEV_FROM_NUMBER: &str = "+61299990000";
/// The callee answers numbers ending in 00206, says "Hello, who is this?" and listens until the
/// caller hangs up (`tests/sipp/callee.xml`).
const DEMO_NUMBER: &str = "+614000000206";
/// The dev rig's inbound number: an inbound trunk and a dispatch rule (a room per caller, agent
/// `livekit.agent_name`) send its callers to the dispatcher, then an agent worker.
const DEV_INBOUND_NUMBER: &str = "+15550100100";

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

fn unset(var: &str) -> bool {
    std::env::var_os(var).is_none()
}

pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut config = (*config).clone();
    let dir = PathBuf::from(DEV_DIR);
    std::fs::create_dir_all(&dir).context("creating .tools/dev")?;
    let mut rig = Supervisor::new(dir.clone());
    // Fail before booting servers when the ingress could not listen anyway.
    if let Err(e) = std::net::TcpListener::bind(&config.ingress.bind) {
        bail!(
            "the ingress cannot listen on {} ({e}): another `make run`? Stop it, or set \
             CALLFLEET_INGRESS__BIND",
            config.ingress.bind
        );
    }

    // A rig that fails to start stops what it started (the supervisor's Drop) and says why.
    let telephony = tokio::select! {
        started = start_rig(&mut config, &mut rig) => started?,
        () = shutdown.cancelled() => {
            rig.stop().await;
            return Ok(());
        }
    };
    // Stand-ins live as long as `providers`, i.e. until dev returns.
    let providers = providers::choose(&config, &callfleet_agent::provider_env()).await;
    let provider_env = providers.env();
    let config = Arc::new(config);
    // Each call's conversation on the console as it ends.
    tokio::spawn(console::print_calls(config.clone(), shutdown.clone()));
    // The banner (with the curl line) once the ingress really listens.
    tokio::spawn(announce(
        config.clone(),
        telephony,
        providers::describe(&providers),
        shutdown.clone(),
    ));
    // A role that fails (the ingress cannot bind its port, say) stops the others: dev never
    // runs on without one of them.
    let role = |name: &'static str, run: tokio::task::JoinHandle<anyhow::Result<()>>| {
        let shutdown = shutdown.clone();
        async move {
            let result = run
                .await
                .map_err(anyhow::Error::from)
                .and_then(|r| r)
                .map_err(|e| e.context(format!("the {name} role failed")));
            if result.is_err() {
                shutdown.cancel();
            }
            result
        }
    };
    let roles = async {
        let (i, a, n, c, d) = tokio::join!(
            role(
                "ingress",
                tokio::spawn(ingress(config.clone(), shutdown.clone()))
            ),
            role(
                "agent",
                tokio::spawn(agent(
                    config.clone(),
                    shutdown.clone(),
                    provider_env.clone()
                ))
            ),
            role(
                "notifier",
                tokio::spawn(notifier(config.clone(), shutdown.clone()))
            ),
            role(
                "campaigner",
                tokio::spawn(campaigner(config.clone(), shutdown.clone()))
            ),
            role(
                "dispatcher",
                tokio::spawn(dispatcher(config.clone(), shutdown.clone(), provider_env))
            ),
        );
        shutdown.cancel();
        i.and(a).and(n).and(c).and(d)
    };
    tokio::pin!(roles);
    let outcome = tokio::select! {
        done = &mut roles => done,
        exit = rig.exited() => {
            eprintln!("{}", exit.report());
            eprintln!("dev: stopping the fleet: the rig is incomplete without {}", exit.name);
            shutdown.cancel();
            // The roles drain (live calls end with a summary), bounded by the drain grace.
            let grace = Duration::from_secs(config.agent.drain_grace_secs + 10);
            if tokio::time::timeout(grace, &mut roles).await.is_err() {
                eprintln!("dev: the roles did not stop within {grace:?}");
            }
            Err(anyhow::anyhow!("{} exited unexpectedly ({})", exit.name, exit.status))
        }
    };
    // Servers stop after the roles, so NATS never vanishes under a draining fleet.
    rig.stop().await;
    drop(providers);
    outcome
}

/// Start what is not configured: nats-server, then the telephony rig (true when started).
async fn start_rig(config: &mut Config, rig: &mut Supervisor) -> anyhow::Result<bool> {
    if unset("NATS_URL") && unset("CALLFLEET_NATS__URL") {
        let store = rig.dir().join("nats");
        let mut cmd = Command::new(tool("nats-server")?);
        cmd.args([
            "-a",
            "127.0.0.1",
            "-p",
            &NATS_PORT.to_string(),
            "-js",
            "-sd",
        ])
        .arg(&store);
        rig.start("nats-server", cmd, &[NATS_PORT], Probe::Tcp(NATS_PORT))
            .await?;
        config.nats.url = format!("nats://127.0.0.1:{NATS_PORT}");
        println!(
            "dev: nats-server ready on {} (store in {DEV_DIR}/nats)",
            config.nats.url
        );
    }
    if config.livekit.credentials().is_some() {
        return Ok(false);
    }
    start_telephony(config, rig).await?;
    Ok(true)
}

/// redis-server, livekit-server with Redis, livekit-sip, the SIPp callee, and a trunk to it.
async fn start_telephony(config: &mut Config, rig: &mut Supervisor) -> anyhow::Result<()> {
    let dir = rig.dir().to_owned();
    let mut redis = Command::new(tool("redis-server")?);
    redis.args(["--port", &REDIS_PORT.to_string(), "--bind", "127.0.0.1"]);
    redis.args(["--save", "", "--appendonly", "no"]);
    rig.start(
        "redis-server",
        redis,
        &[REDIS_PORT],
        Probe::RedisPing(REDIS_PORT),
    )
    .await?;

    let livekit_yaml = dir.join("livekit.yaml");
    std::fs::write(
        &livekit_yaml,
        format!(
            "port: {LIVEKIT_PORT}\nbind_addresses: [\"127.0.0.1\"]\nrtc:\n  tcp_port: {LIVEKIT_TCP_PORT}\n  udp_port: 7882\n  use_external_ip: false\n  node_ip: 127.0.0.1\nredis:\n  address: 127.0.0.1:{REDIS_PORT}\nkeys:\n  {DEV_KEY}: {DEV_SECRET}\nlogging:\n  level: info\n"
        ),
    )?;
    let mut livekit = Command::new(tool("livekit-server")?);
    livekit.arg("--config").arg(&livekit_yaml);
    rig.start(
        "livekit-server",
        livekit,
        &[LIVEKIT_PORT, LIVEKIT_TCP_PORT],
        Probe::Http(format!("http://127.0.0.1:{LIVEKIT_PORT}/")),
    )
    .await?;

    let sip_yaml = dir.join("livekit-sip.yaml");
    std::fs::write(
        &sip_yaml,
        format!(
            "api_key: {DEV_KEY}\napi_secret: {DEV_SECRET}\nws_url: ws://127.0.0.1:{LIVEKIT_PORT}\nredis:\n  address: 127.0.0.1:{REDIS_PORT}\nsip_port: {SIP_PORT}\nrtp_port: 31000-31999\nhealth_port: {SIP_HEALTH_PORT}\nuse_external_ip: false\nlisten_ip: 127.0.0.1\nnat_1_to_1_ip: 127.0.0.1\nmax_cpu_utilization: 1.0\nlogging:\n  level: info\n"
        ),
    )?;
    let mut sip = Command::new(tool("livekit-sip")?);
    sip.arg("--config").arg(&sip_yaml);
    rig.start(
        "livekit-sip",
        sip,
        &[SIP_HEALTH_PORT],
        Probe::Http(format!("http://127.0.0.1:{SIP_HEALTH_PORT}/")),
    )
    .await?;

    // SIPp reads the audio its scenario streams when it loads it, from its working directory.
    let root = std::env::current_dir().context("the current directory")?;
    let scenario = callfleet_rig::callee::scenario(&root)
        .context("the callee's scenario: run `make run` from the repository root")?;
    let callee_dir = dir.join("callee");
    std::fs::create_dir_all(&callee_dir).context("creating .tools/dev/callee")?;
    callfleet_rig::callee::write_audio(&callee_dir, &root).context("writing the callee's audio")?;
    let callee_dir = std::fs::canonicalize(&callee_dir)?;
    let mut callee = Command::new(tool("sipp")?);
    callee
        .current_dir(&callee_dir)
        .args(callfleet_rig::callee::args(
            &callfleet_rig::callee::Options {
                scenario: &scenario,
                port: CALLEE_PORT,
                media_port: CALLEE_MEDIA_PORT,
                log_dir: &callee_dir,
                rtp_echo: false,
                tap_port: None,
            },
        ));
    rig.start("sipp callee", callee, &[], Probe::SipOptions(CALLEE_PORT))
        .await?;

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
    inbound_demo(config)
        .await
        .context("creating the inbound trunk and dispatch rule of the dev rig")?;
    println!(
        "dev: redis, livekit-server ({url}, key {DEV_KEY}), livekit-sip (udp 127.0.0.1:{SIP_PORT}) \
         and a SIPp callee (udp 127.0.0.1:{CALLEE_PORT}) ready; trunk {trunk}. Logs in {DEV_DIR}/."
    );
    println!(
        "dev: call in (inbound, answered by the agent with its greeting): \
         sipp -sn uac -s {DEV_INBOUND_NUMBER} -m 1 -d 8000 127.0.0.1:{SIP_PORT}"
    );
    println!(
        "dev: the callee's behaviour is picked by the dialed number's last digits (tests/sipp/callee.xml): \
         ...00206 says \"Hello, who is this?\" and listens, ...HH200 answers and hangs up after HH s, \
         ...00486 busy, ...00180 rings, ...00603 declines"
    );
    Ok(())
}

/// An inbound trunk for [`DEV_INBOUND_NUMBER`] and a dispatch rule sending its callers, a room
/// each, to the dispatcher's agent name.
async fn inbound_demo(config: &Config) -> anyhow::Result<()> {
    use livekit_protocol as proto;
    let api = crate::sip::api::SipApi::new(config)?;
    let trunk = api
        .create_inbound(&proto::CreateSipInboundTrunkRequest {
            trunk: Some(proto::SipInboundTrunkInfo {
                name: "callfleet-dev-inbound".into(),
                numbers: vec![DEV_INBOUND_NUMBER.into()],
                ..Default::default()
            }),
        })
        .await?;
    api.create_dispatch(proto::SipDispatchRuleInfo {
        name: "callfleet-dev-inbound".into(),
        trunk_ids: vec![trunk.sip_trunk_id],
        rule: Some(proto::SipDispatchRule {
            rule: Some(proto::sip_dispatch_rule::Rule::DispatchRuleIndividual(
                proto::SipDispatchRuleIndividual {
                    room_prefix: "inbound".into(),
                    ..Default::default()
                },
            )),
        }),
        room_config: Some(proto::RoomConfiguration {
            agents: vec![proto::RoomAgentDispatch {
                agent_name: config.livekit.agent_name.clone(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    })
    .await?;
    Ok(())
}

async fn ingress(config: Arc<Config>, shutdown: CancellationToken) -> anyhow::Result<()> {
    Ok(callfleet_ingress::run(config, shutdown).await?)
}

async fn agent(
    config: Arc<Config>,
    shutdown: CancellationToken,
    provider_env: std::collections::HashMap<String, String>,
) -> anyhow::Result<()> {
    Ok(callfleet_agent::run_with_providers(config, shutdown, provider_env).await?)
}

async fn notifier(config: Arc<Config>, shutdown: CancellationToken) -> anyhow::Result<()> {
    Ok(callfleet_notifier::run(config, shutdown).await?)
}

async fn campaigner(config: Arc<Config>, shutdown: CancellationToken) -> anyhow::Result<()> {
    Ok(callfleet_campaigner::run(config, shutdown).await?)
}

async fn dispatcher(
    config: Arc<Config>,
    shutdown: CancellationToken,
    provider_env: std::collections::HashMap<String, String>,
) -> anyhow::Result<()> {
    Ok(callfleet_dispatcher::run(config, shutdown, provider_env).await?)
}

/// Print the banner once the ingress accepts connections; nothing when dev stops first.
async fn announce(
    config: Arc<Config>,
    telephony: bool,
    voice: Vec<String>,
    shutdown: CancellationToken,
) {
    let bind = config.ingress.bind.clone();
    let listening = async {
        while tokio::net::TcpStream::connect(&bind).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        () = listening => banner(&config, telephony, &voice),
        () = shutdown.cancelled() => {}
    }
}

fn banner(config: &Config, telephony: bool, voice: &[String]) {
    let bind = &config.ingress.bind;
    let number = if telephony {
        DEMO_NUMBER
    } else {
        "+61402012298"
    };
    let auth = config
        .ingress
        .api_keys
        .first()
        .map(|_| " -H 'Authorization: Bearer <api key>'")
        .unwrap_or_default();
    for line in voice {
        println!("{line}");
    }
    println!("dev: ingress on http://{bind}; enqueue a call with:");
    println!(
        "  curl -s -X POST http://{bind}/dispatch -H 'Content-Type: application/json'{auth} \\\n    -d '{{\"destination\":\"{number}\",\"account_code\":\"em-tech-01\"}}'"
    );
    match &config.notifier.webhook_url {
        Some(url) => println!("dev: summaries go to {url}"),
        None => println!("dev: set N8N_WEBHOOK_URL to receive summaries"),
    }
}
