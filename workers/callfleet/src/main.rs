//! `callfleet`: one binary, every role. main only wires: config → telemetry → role → signals.

mod campaign;
mod dev;
mod dlq;
mod export;
mod recording;
mod sip;

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use callfleet_config::Config;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// Exit code for invalid configuration (sysexits EX_CONFIG).
const EX_CONFIG: u8 = 64;
/// Exit code when a required service (NATS, LiveKit) is unavailable (EX_UNAVAILABLE).
const EX_UNAVAILABLE: u8 = 69;

#[derive(Parser)]
#[command(
    name = "callfleet",
    version,
    about = "AI voice calls at scale: LiveKit SIP workers driven by NATS JetStream"
)]
struct Cli {
    /// Configuration file layered over the defaults (env CALLFLEET_CONFIG).
    #[arg(long, global = true, env = "CALLFLEET_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// HTTP ingress: POST /dispatch → JetStream.
    Ingress,
    /// Agent worker: pulls jobs and places calls through LiveKit SIP.
    Agent,
    /// Notifier: relays call summaries to webhooks, signed and retried.
    Notifier,
    /// Campaigner: releases campaign contacts at their pace, inside calling windows.
    Campaigner,
    /// Dispatcher: registers with LiveKit as agent `livekit.agent_name` and puts every job
    /// LiveKit offers (lk dispatch create, CreateAgentDispatch, SIP dispatch rules) on
    /// JetStream before accepting it; plays the busy message to inbound callers no worker took.
    Dispatcher,
    /// Everything locally: nats-server when NATS_URL is unset, and the local telephony rig
    /// (redis, livekit-server, livekit-sip, a SIPp callee) when LIVEKIT_URL is unset.
    Dev,
    /// Campaigns: create from a CSV (with a progress bar), status (--watch), pause, resume, cancel.
    Campaign {
        #[command(subcommand)]
        command: campaign::CampaignCommand,
    },
    /// Call recordings: `recording get <call_id> -o FILE` saves one (through the ingress).
    Recording {
        #[command(subcommand)]
        command: recording::RecordingCommand,
    },
    /// LiveKit SIP provisioning from `lk`-style JSON files: `sip inbound|outbound|dispatch
    /// create FILE`, `list`, `delete ID`.
    Sip {
        #[command(subcommand)]
        command: sip::SipCommand,
    },
    /// Dead letters: list and replay.
    Dlq {
        #[command(subcommand)]
        command: dlq::DlqCommand,
    },
    /// Write the JetStream definitions and JSON Schemas to a folder (default: nats/).
    Export {
        #[arg(long, default_value = "nats")]
        dir: PathBuf,
    },
    /// Print the effective configuration (secrets redacted).
    Config,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Export { dir } = &cli.command {
        return match export::write_all(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("callfleet: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("callfleet: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            return ExitCode::from(EX_CONFIG);
        }
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("callfleet: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Sip { command } = cli.command {
        // An operator's command: its message is the output (no log line), its kind the exit code.
        return match runtime.block_on(sip::run(&config, command)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("callfleet sip: {e}");
                ExitCode::from(e.exit_code())
            }
        };
    }
    let result = runtime.block_on(run(cli.command, config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "callfleet failed");
            eprintln!("callfleet: {e:#}");
            let unavailable = e.chain().any(|c| {
                c.downcast_ref::<callfleet_bus::BusError>()
                    .is_some_and(|b| matches!(b, callfleet_bus::BusError::Connect { .. }))
            });
            let config_problem = e.chain().any(|c| {
                c.downcast_ref::<callfleet_agent::AgentError>()
                    .is_some_and(|a| matches!(a, callfleet_agent::AgentError::NoLiveKit))
                    || c.downcast_ref::<callfleet_dispatcher::DispatcherError>()
                        .is_some_and(|d| {
                            matches!(d, callfleet_dispatcher::DispatcherError::NoLiveKit)
                        })
            });
            if config_problem {
                ExitCode::from(EX_CONFIG)
            } else if unavailable {
                ExitCode::from(EX_UNAVAILABLE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(command: Command, config: Arc<Config>) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    tokio::spawn(wait_for_signal(shutdown.clone()));
    match command {
        Command::Ingress => callfleet_ingress::run(config, shutdown).await?,
        Command::Agent => callfleet_agent::run(config, shutdown).await?,
        Command::Notifier => callfleet_notifier::run(config, shutdown).await?,
        Command::Campaigner => callfleet_campaigner::run(config, shutdown).await?,
        Command::Dispatcher => {
            callfleet_dispatcher::run(config, shutdown, callfleet_agent::provider_env()).await?
        }
        Command::Dev => dev::run(config, shutdown).await?,
        Command::Dlq { command } => dlq::run(&config, command).await?,
        Command::Campaign { command } => campaign::run(&config, command).await?,
        Command::Recording { command } => recording::run(&config, command).await?,
        Command::Config => println!("{}", redacted(&config)?),
        Command::Export { .. } | Command::Sip { .. } => {}
    }
    Ok(())
}

fn redacted(config: &Config) -> anyhow::Result<String> {
    let mut c = config.clone();
    let hide = |v: &mut Option<String>| {
        if v.is_some() {
            *v = Some("<redacted>".into());
        }
    };
    hide(&mut c.livekit.api_secret);
    hide(&mut c.nats.token);
    hide(&mut c.notifier.webhook_secret);
    hide(&mut c.notifier.auth_header);
    c.ingress.api_keys = c
        .ingress
        .api_keys
        .iter()
        .map(|_| "<redacted>".to_owned())
        .collect();
    Ok(serde_json::to_string_pretty(&c)?)
}

async fn wait_for_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: draining"),
            _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: draining"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    shutdown.cancel();
}

/// The WebRTC stack logs every call's ICE gathering and teardown at `info` and `warn` (STUN
/// hosts it cannot resolve, candidates already closed): dozens of lines per call that say
/// nothing about the call. A bare level (`info`, `debug`, ...) keeps them at `error` below
/// `trace`; a level with directives (`info,webrtc_ice=debug`) is used as written.
const WEBRTC_QUIET: &str = "webrtc=error,webrtc_ice=error,webrtc_mdns=error,webrtc_srtp=error,\
                            webrtc_sctp=error,webrtc_dtls=error";

fn log_directives(level: &str) -> String {
    if level.contains('=') || level.trim().eq_ignore_ascii_case("trace") {
        level.to_owned()
    } else {
        format!("{level},{WEBRTC_QUIET}")
    }
}

fn init_tracing(config: &Config) {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_new(log_directives(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
