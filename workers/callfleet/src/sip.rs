//! `callfleet sip inbound|outbound|dispatch create FILE | list | delete ID`: LiveKit SIP
//! provisioning from the same JSON files `lk sip … create FILE` takes (seed 004's
//! `inboundTrunk.json`, `outboundTrunk.json`, `dispatchRule.json`), over LiveKit's SIP API.
//!
//! `input` reads a file into livekit-protocol's request type (field-level errors, unknown
//! fields refused); `api` sends it; `show` prints results with passwords and PINs masked.
//! Dispatch rules send callers to callfleet's agent: without `room_config.agents` in the file,
//! one agent named `livekit.agent_name` is added (`--agent`, `--agent-metadata`, `--no-agent`).

pub(crate) mod api;
mod input;
mod show;

use std::path::{Path, PathBuf};

use callfleet_config::Config;
use clap::{Args, Subcommand};
use livekit_protocol as proto;

use api::SipApi;
use input::Secrets;

#[derive(Subcommand)]
pub enum SipCommand {
    /// Inbound trunks: the numbers LiveKit answers (`{"trunk": {"name", "numbers", …}}`).
    Inbound {
        #[command(subcommand)]
        command: TrunkCommand,
    },
    /// Outbound trunks: where calls are placed (`{"trunk": {"name", "address", "numbers",
    /// "auth_username", "auth_password", …}}`).
    Outbound {
        #[command(subcommand)]
        command: TrunkCommand,
    },
    /// Dispatch rules: which room (and agent) an inbound call goes to.
    Dispatch {
        #[command(subcommand)]
        command: DispatchCommand,
    },
}

#[derive(Subcommand)]
pub enum TrunkCommand {
    /// Create from a JSON file (`-` reads stdin); prints the new id.
    Create {
        file: PathBuf,
        /// Print the created trunk as JSON (passwords masked).
        #[arg(long)]
        json: bool,
    },
    /// List them (passwords masked).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete one by id (ST_…).
    Delete { id: String },
}

#[derive(Subcommand)]
pub enum DispatchCommand {
    /// Create from a JSON file (`-` reads stdin): the rule's fields at the top level or inside
    /// `dispatch_rule`; prints the new id.
    Create(DispatchCreate),
    /// List them.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete one by id (SDR_…).
    Delete { id: String },
}

#[derive(Args)]
pub struct DispatchCreate {
    file: PathBuf,
    /// Inbound trunk id (ST_…) the rule applies to; repeat for several. Replaces the file's
    /// `trunk_ids`.
    #[arg(long = "trunk", value_name = "ID")]
    trunks: Vec<String>,
    /// The agent to dispatch into the call's room when the file names none (default:
    /// `livekit.agent_name`).
    #[arg(long, value_name = "NAME", conflicts_with = "no_agent")]
    agent: Option<String>,
    /// That agent's metadata (JSON).
    #[arg(long, value_name = "JSON", conflicts_with = "no_agent")]
    agent_metadata: Option<String>,
    /// Leave the file's `room_config` as it is (no agent added).
    #[arg(long)]
    no_agent: bool,
    /// Print the created rule as JSON.
    #[arg(long)]
    json: bool,
}

/// Why a `callfleet sip` command failed; each kind has its exit code.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// A request file or an argument is wrong: names the file (or flag) and the field.
    #[error("{}", input_message(.file, .field, .problem))]
    Input {
        file: String,
        field: String,
        problem: String,
    },
    #[error("cannot read {file}: {problem}")]
    NoInput { file: String, problem: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Config(String),
    #[error("cannot reach LiveKit at {url}: {problem}")]
    Unavailable { url: String, problem: String },
    #[error("LiveKit refused {method} ({code}): {msg}{}", refused_hint(.code))]
    Refused {
        method: &'static str,
        code: String,
        msg: String,
    },
    #[error("cannot print the result: {0}")]
    Output(String),
}

fn input_message(file: &str, field: &str, problem: &str) -> String {
    if field.is_empty() {
        format!("{file}: {problem}")
    } else {
        format!("{file}: {field}: {problem}")
    }
}

fn refused_hint(code: &str) -> &'static str {
    match code {
        "unauthenticated" | "permission_denied" => {
            " (check LIVEKIT_API_KEY and LIVEKIT_API_SECRET)"
        }
        _ => "",
    }
}

impl SipError {
    fn input(file: &str, field: &str, problem: String) -> Self {
        Self::Input {
            file: file.to_owned(),
            field: field.to_owned(),
            problem,
        }
    }

    /// sysexits: 65 bad data (a file's field, an unknown id), 66 unreadable file, 64
    /// configuration, 69 LiveKit unreachable; 1 when LiveKit refused the request.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Input { .. } | Self::NotFound(_) => 65,
            Self::NoInput { .. } => 66,
            Self::Config(_) => 64,
            Self::Unavailable { .. } => 69,
            Self::Refused { .. } | Self::Output(_) => 1,
        }
    }

    /// The same error with every secret of the request file hidden (LiveKit may quote a field
    /// back in its refusal).
    fn scrubbed(self, secrets: &Secrets) -> Self {
        match self {
            Self::Refused { method, code, msg } => Self::Refused {
                method,
                code,
                msg: secrets.scrub(&msg),
            },
            Self::Input {
                file,
                field,
                problem,
            } => Self::Input {
                file,
                field,
                problem: secrets.scrub(&problem),
            },
            other => other,
        }
    }
}

pub async fn run(config: &Config, command: SipCommand) -> Result<(), SipError> {
    let api = SipApi::new(config)?;
    match command {
        SipCommand::Inbound { command } => match command {
            TrunkCommand::Create { file, json } => create_inbound(&api, &file, json).await,
            TrunkCommand::List { json } => {
                let items = api.inbound().await?;
                print_list(&items, json, show::inbound_table)
            }
            TrunkCommand::Delete { id } => delete_trunk(&api, &id, Direction::Inbound).await,
        },
        SipCommand::Outbound { command } => match command {
            TrunkCommand::Create { file, json } => create_outbound(&api, &file, json).await,
            TrunkCommand::List { json } => {
                let items = api.outbound().await?;
                print_list(&items, json, show::outbound_table)
            }
            TrunkCommand::Delete { id } => delete_trunk(&api, &id, Direction::Outbound).await,
        },
        SipCommand::Dispatch { command } => match command {
            DispatchCommand::Create(args) => create_dispatch(&api, config, args).await,
            DispatchCommand::List { json } => {
                let items = api.dispatch_rules().await?;
                print_list(&items, json, show::dispatch_table)
            }
            DispatchCommand::Delete { id } => delete_dispatch(&api, &id).await,
        },
    }
}

fn print_list<T: serde::Serialize>(
    items: &[T],
    json: bool,
    table: fn(&[T]) -> String,
) -> Result<(), SipError> {
    if json {
        // The shape of `lk sip … list --json`: the List…Response.
        let body = serde_json::json!({ "items": items });
        println!("{}", show::json(&body, &Secrets::default())?);
    } else {
        print!("{}", table(items));
    }
    Ok(())
}

async fn create_inbound(api: &SipApi, file: &Path, json: bool) -> Result<(), SipError> {
    let src = input::read(file)?;
    let req = input::trunk::<proto::CreateSipInboundTrunkRequest, proto::SipInboundTrunkInfo>(
        &src,
        |r| r.trunk.is_some(),
    )?;
    if let Some(t) = &req.trunk {
        check_new_trunk(&src.name, &t.sip_trunk_id)?;
        warn_placeholder_auth(&src.name, &t.auth_username, &t.auth_password);
    }
    let created = api
        .create_inbound(&req)
        .await
        .map_err(|e| e.scrubbed(&src.secrets))?;
    if json {
        println!("{}", show::json(&created, &src.secrets)?);
    } else {
        println!("{}", src.secrets.scrub(&show::inbound_line(&created)));
    }
    Ok(())
}

async fn create_outbound(api: &SipApi, file: &Path, json: bool) -> Result<(), SipError> {
    let src = input::read(file)?;
    let req = input::trunk::<proto::CreateSipOutboundTrunkRequest, proto::SipOutboundTrunkInfo>(
        &src,
        |r| r.trunk.is_some(),
    )?;
    if let Some(t) = &req.trunk {
        check_new_trunk(&src.name, &t.sip_trunk_id)?;
        if t.address.trim().is_empty() {
            return Err(SipError::input(
                &src.name,
                "trunk.address",
                "is missing: the carrier's SIP host (e.g. \"sip.telnyx.com\")".into(),
            ));
        }
        warn_placeholder_auth(&src.name, &t.auth_username, &t.auth_password);
    }
    let created = api
        .create_outbound(&req)
        .await
        .map_err(|e| e.scrubbed(&src.secrets))?;
    if json {
        println!("{}", show::json(&created, &src.secrets)?);
    } else {
        println!("{}", src.secrets.scrub(&show::outbound_line(&created)));
    }
    Ok(())
}

fn check_new_trunk(file: &str, id: &str) -> Result<(), SipError> {
    if id.is_empty() {
        Ok(())
    } else {
        Err(SipError::input(
            file,
            "trunk.sip_trunk_id",
            "must not be set: LiveKit assigns the id".into(),
        ))
    }
}

/// A template's `<sip-username>` / `<sip-password>` left in: created as given (as `lk` does),
/// with a warning that never repeats the value.
fn warn_placeholder_auth(file: &str, user: &str, password: &str) {
    for (field, value) in [
        ("trunk.auth_username", user),
        ("trunk.auth_password", password),
    ] {
        if input::is_placeholder(value) {
            eprintln!(
                "warning: {file}: {field} is still a template placeholder (<…>): the carrier \
                 will refuse it; edit the file, delete the trunk and create it again"
            );
        }
    }
}

async fn create_dispatch(
    api: &SipApi,
    config: &Config,
    args: DispatchCreate,
) -> Result<(), SipError> {
    let src = input::read(&args.file)?;
    let input::DispatchFile { mut info, prefix } = input::dispatch_rule(&src)?;
    if !args.trunks.is_empty() {
        info.trunk_ids = args.trunks.clone();
    }
    for (i, id) in info.trunk_ids.iter().enumerate() {
        // Blamed on the flag when the ids came from it.
        let (file, field) = if args.trunks.is_empty() {
            (src.name.clone(), format!("{prefix}trunk_ids[{i}]"))
        } else {
            ("--trunk".to_owned(), String::new())
        };
        if input::is_placeholder(id) {
            return Err(SipError::input(
                &file,
                &field,
                format!(
                    "{id:?} is a placeholder: pass --trunk ST_xxx (the id `callfleet sip \
                     inbound create` printed) or edit the file"
                ),
            ));
        }
        if id.trim().is_empty() {
            return Err(SipError::input(
                &file,
                &field,
                "is empty: pass --trunk ST_xxx or edit the file".into(),
            ));
        }
    }
    check_trunks_exist(api, &src.name, prefix, &args.trunks, &info.trunk_ids).await?;
    let note = add_agent(&mut info, config, &args)?;
    let created = api
        .create_dispatch(info)
        .await
        .map_err(|e| e.scrubbed(&src.secrets))?;
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    if args.json {
        println!("{}", show::json(&created, &src.secrets)?);
    } else {
        println!("{}", show::dispatch_line(&created));
    }
    Ok(())
}

/// A rule naming a trunk that does not exist never matches a call: refuse it here.
async fn check_trunks_exist(
    api: &SipApi,
    file: &str,
    prefix: &str,
    flag: &[String],
    ids: &[String],
) -> Result<(), SipError> {
    if ids.is_empty() {
        return Ok(());
    }
    let inbound = api.inbound().await?;
    let missing: Vec<(usize, &String)> = ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !inbound.iter().any(|t| &&t.sip_trunk_id == id))
        .collect();
    let Some((i, id)) = missing.first().copied() else {
        return Ok(());
    };
    let outbound = api.outbound().await?;
    let problem = if outbound.iter().any(|t| &t.sip_trunk_id == id) {
        format!("{id} is an outbound trunk: a dispatch rule takes inbound trunks")
    } else {
        format!("no inbound trunk {id} (`callfleet sip inbound list` shows them)")
    };
    Err(if flag.is_empty() {
        SipError::input(file, &format!("{prefix}trunk_ids[{i}]"), problem)
    } else {
        SipError::input("--trunk", "", problem)
    })
}

/// Callers go to callfleet's agent: without agents in the file's `room_config`, add one.
/// Returns what was done, to be said once the rule exists.
fn add_agent(
    info: &mut proto::SipDispatchRuleInfo,
    config: &Config,
    args: &DispatchCreate,
) -> Result<Option<String>, SipError> {
    if args.no_agent {
        return Ok(None);
    }
    let existing = show::agents(info);
    if !existing.is_empty() {
        if args.agent.is_some() || args.agent_metadata.is_some() {
            return Err(SipError::input(
                if args.agent.is_some() {
                    "--agent"
                } else {
                    "--agent-metadata"
                },
                "",
                format!(
                    "the file's room_config.agents already names {}: drop the flag or the \
                     file's agents",
                    existing.join(",")
                ),
            ));
        }
        return Ok(Some(format!(
            "kept the file's room_config.agents ({})",
            existing.join(",")
        )));
    }
    let (name, source) = match &args.agent {
        Some(name) => (name.clone(), "--agent"),
        None => (config.livekit.agent_name.clone(), "livekit.agent_name"),
    };
    if name.trim().is_empty() {
        return Err(SipError::input(
            "--agent",
            "",
            "is empty: name the agent".into(),
        ));
    }
    let metadata = args.agent_metadata.clone().unwrap_or_default();
    if !metadata.is_empty()
        && let Err(e) = serde_json::from_str::<serde_json::Value>(&metadata)
    {
        return Err(SipError::input(
            "--agent-metadata",
            "",
            format!("not JSON: {e}"),
        ));
    }
    info.room_config
        .get_or_insert_with(Default::default)
        .agents
        .push(proto::RoomAgentDispatch {
            agent_name: name.clone(),
            metadata,
            ..Default::default()
        });
    Ok(Some(format!(
        "added agent {name:?} ({source}) to the rule's room_config.agents; \
         --no-agent leaves the rule without one"
    )))
}

#[derive(Clone, Copy)]
enum Direction {
    Inbound,
    Outbound,
}

async fn delete_trunk(api: &SipApi, id: &str, dir: Direction) -> Result<(), SipError> {
    let (inbound, outbound) = (api.inbound().await?, api.outbound().await?);
    let (this, other, kind, other_kind) = match dir {
        Direction::Inbound => (
            inbound
                .iter()
                .find(|t| t.sip_trunk_id == id)
                .map(show::inbound_line),
            outbound.iter().any(|t| t.sip_trunk_id == id),
            "inbound",
            "outbound",
        ),
        Direction::Outbound => (
            outbound
                .iter()
                .find(|t| t.sip_trunk_id == id)
                .map(show::outbound_line),
            inbound.iter().any(|t| t.sip_trunk_id == id),
            "outbound",
            "inbound",
        ),
    };
    let Some(line) = this else {
        return Err(SipError::NotFound(if other {
            format!("{id} is an {other_kind} trunk: `callfleet sip {other_kind} delete {id}`")
        } else {
            format!("no {kind} trunk {id} (`callfleet sip {kind} list` shows them)")
        }));
    };
    api.delete_trunk(id).await?;
    println!("deleted {line}");
    if matches!(dir, Direction::Inbound) {
        for rule in api.dispatch_rules().await? {
            if rule.trunk_ids.iter().any(|t| t == id) {
                eprintln!(
                    "note: dispatch rule {} still names {id}: `callfleet sip dispatch delete {}`",
                    rule.sip_dispatch_rule_id, rule.sip_dispatch_rule_id
                );
            }
        }
    }
    Ok(())
}

async fn delete_dispatch(api: &SipApi, id: &str) -> Result<(), SipError> {
    match api.delete_dispatch(id).await {
        Ok(deleted) => {
            println!("deleted {}", show::dispatch_line(&deleted));
            Ok(())
        }
        Err(SipError::Refused { code, .. }) if code == "not_found" => {
            Err(SipError::NotFound(if id.starts_with("ST_") {
                format!("{id} is a trunk id; dispatch rule ids start with SDR_")
            } else {
                format!("no dispatch rule {id} (`callfleet sip dispatch list` shows them)")
            }))
        }
        Err(e) => Err(e),
    }
}
