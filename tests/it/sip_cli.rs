//! `callfleet sip …` against a real livekit-server with Redis (its SIP store): seed 004's three
//! files as they are (`tests/fixtures/seed004/`, placeholder and all), what LiveKit then holds
//! (read back with livekit-api, and with LiveKit's own CLI `lk`), field-level errors, exit codes,
//! and passwords that never reach the output.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use callfleet_tests::{Telephony, TempDir, binary, free_port, scaled, workspace_root};
use livekit_api::services::sip::{ListSIPDispatchRuleFilter, ListSIPInboundTrunkFilter};
use livekit_protocol as proto;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

/// The seed's outbound password, which must never be printed.
const SEED_PASSWORD: &str = "<sip-password>";
/// The seed's dispatch rule names its trunk with this placeholder.
const SEED_PLACEHOLDER: &str = "<TRUNK_ID_FROM_INBOUND_CREATION>";

fn seed(name: &str) -> PathBuf {
    workspace_root().join("tests/fixtures/seed004").join(name)
}

/// One finished command.
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    fn ok(self, what: &str) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "{what} failed:\n{}\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The first word of stdout: the id `create` prints first.
    fn id(&self) -> String {
        self.stdout
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

/// Run `program args` in `cwd` with only `env` (and PATH), `stdin` fed in, bounded in time.
async fn run(
    program: &Path,
    args: &[&str],
    env: &[(String, String)],
    cwd: &Path,
    stdin: Option<&str>,
) -> Out {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", cwd)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await.expect("stdin");
    }
    let limit = scaled(Duration::from_secs(30));
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} {} did not finish within {limit:?}",
                program.display(),
                args.join(" ")
            )
        })
        .expect("wait");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// The `callfleet` binary pointed at one LiveKit, run from an empty folder (no `.env.local`).
struct Cli {
    env: Vec<(String, String)>,
    dir: TempDir,
}

impl Cli {
    fn new(url: &str, key: &str, secret: &str) -> Self {
        Self {
            env: vec![
                ("LIVEKIT_URL".into(), url.into()),
                ("LIVEKIT_API_KEY".into(), key.into()),
                ("LIVEKIT_API_SECRET".into(), secret.into()),
            ],
            dir: TempDir::new("sip-cli"),
        }
    }

    fn of(tel: &Telephony) -> Self {
        Self::new(&tel.livekit.url(), &tel.livekit.key, &tel.livekit.secret)
    }

    async fn sip(&self, args: &[&str]) -> Out {
        self.sip_stdin(args, None).await
    }

    async fn sip_stdin(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let args: Vec<&str> = std::iter::once("sip").chain(args.iter().copied()).collect();
        run(&binary(), &args, &self.env, &self.dir.0, stdin).await
    }

    /// A file in the command's folder.
    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.0.join(name);
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Seed 004 as its guide runs it, with `callfleet sip` in place of `lk`: inbound create →
/// dispatch create (refused with the placeholder, accepted with `--trunk`) → outbound create;
/// list them (tables and JSON), read them back through LiveKit's API, delete them.
#[tokio::test(flavor = "multi_thread")]
async fn sip_cli_seed_004_workflow() {
    let tel = Telephony::start().await;
    let cli = Cli::of(&tel);
    let (inbound_file, outbound_file, dispatch_file) = (
        seed("inboundTrunk.json"),
        seed("outboundTrunk.json"),
        seed("dispatchRule.json"),
    );

    let inbound = cli
        .sip(&["inbound", "create", path(&inbound_file)])
        .await
        .ok("inbound create");
    let inbound_id = inbound.id();
    assert!(inbound_id.starts_with("ST_"), "{}", inbound.stdout);
    assert!(inbound.stdout.contains("+3226010500"), "{}", inbound.stdout);

    // The seed's dispatch rule still has the template's placeholder: refused, by field.
    let refused = cli.sip(&["dispatch", "create", path(&dispatch_file)]).await;
    assert_eq!(refused.code, Some(65), "{}", refused.all());
    let expected = format!(
        "{}: trunk_ids[0]: \"{SEED_PLACEHOLDER}\" is a placeholder: pass --trunk ST_xxx",
        dispatch_file.display()
    );
    assert!(refused.stderr.contains(&expected), "{}", refused.stderr);
    assert!(!refused.stderr.contains("panicked"), "{}", refused.stderr);

    let rule = cli
        .sip(&[
            "dispatch",
            "create",
            path(&dispatch_file),
            "--trunk",
            &inbound_id,
        ])
        .await
        .ok("dispatch create --trunk");
    let rule_id = rule.id();
    assert!(rule_id.starts_with("SDR_"), "{}", rule.stdout);
    assert!(
        rule.stderr.contains("added agent \"callfleet\""),
        "the added agent is announced: {}",
        rule.stderr
    );

    let outbound = cli
        .sip(&["outbound", "create", path(&outbound_file)])
        .await
        .ok("outbound create");
    let outbound_id = outbound.id();
    assert!(outbound_id.starts_with("ST_"), "{}", outbound.stdout);
    assert!(
        outbound.stdout.contains("auth <sip-username>:***"),
        "{}",
        outbound.stdout
    );
    assert!(
        outbound
            .stderr
            .contains("trunk.auth_password is still a template placeholder"),
        "{}",
        outbound.stderr
    );
    assert!(
        !outbound.all().contains(SEED_PASSWORD),
        "{}",
        outbound.all()
    );

    // Tables.
    let list = cli.sip(&["inbound", "list"]).await.ok("inbound list");
    assert!(
        list.stdout.contains(&inbound_id) && list.stdout.contains("Telnyx Inbound Trunk"),
        "{}",
        list.stdout
    );
    let list = cli.sip(&["dispatch", "list"]).await.ok("dispatch list");
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&rule_id))
        .unwrap_or_else(|| panic!("no row for {rule_id}:\n{}", list.stdout));
    for part in [
        &inbound_id,
        "direct ai-sales-call",
        "callfleet",
        "AI Sales Dispatch Rule",
    ] {
        assert!(row.contains(part), "{part} missing from {row}");
    }
    let list = cli.sip(&["outbound", "list"]).await.ok("outbound list");
    assert!(
        list.stdout.contains(&outbound_id) && list.stdout.contains("sip.telnyx.com"),
        "{}",
        list.stdout
    );
    assert!(!list.all().contains(SEED_PASSWORD), "{}", list.all());

    // JSON: lk's shape (`{"items": […]}`, lowerCamelCase), the password masked.
    let json = cli
        .sip(&["outbound", "list", "--json"])
        .await
        .ok("outbound list --json");
    assert!(!json.all().contains(SEED_PASSWORD), "{}", json.all());
    let items = json.json()["items"].clone();
    let trunk = items
        .as_array()
        .and_then(|a| a.iter().find(|t| t["sipTrunkId"] == outbound_id.as_str()))
        .unwrap_or_else(|| panic!("{outbound_id} not in {items}"));
    assert_eq!(trunk["authPassword"], "***", "{trunk}");
    assert_eq!(trunk["authUsername"], "<sip-username>", "{trunk}");
    let json = cli
        .sip(&["dispatch", "list", "--json"])
        .await
        .ok("dispatch list --json");
    let rule_json = json.json()["items"][0].clone();
    assert_eq!(
        rule_json["sipDispatchRuleId"],
        rule_id.as_str(),
        "{rule_json}"
    );
    assert_eq!(
        rule_json["roomConfig"]["agents"][0]["agentName"], "callfleet",
        "{rule_json}"
    );

    // What LiveKit holds, read through its API (livekit-api), not through our CLI.
    let sip = tel.sip_client();
    let rules = sip
        .list_sip_dispatch_rule(ListSIPDispatchRuleFilter::All)
        .await
        .expect("ListSIPDispatchRule");
    let held = rules
        .iter()
        .find(|r| r.sip_dispatch_rule_id == rule_id)
        .unwrap_or_else(|| panic!("LiveKit does not list {rule_id}: {rules:?}"));
    assert_eq!(held.trunk_ids, vec![inbound_id.clone()]);
    assert_eq!(held.name, "AI Sales Dispatch Rule");
    let agents: Vec<&str> = held
        .room_config
        .iter()
        .flat_map(|c| c.agents.iter().map(|a| a.agent_name.as_str()))
        .collect();
    assert_eq!(agents, vec!["callfleet"], "{held:?}");
    match held.rule.as_ref().and_then(|r| r.rule.as_ref()) {
        Some(proto::sip_dispatch_rule::Rule::DispatchRuleDirect(d)) => {
            assert_eq!(d.room_name, "ai-sales-call");
        }
        other => panic!("not the seed's direct rule: {other:?}"),
    }
    let outbound_held = sip
        .list_sip_outbound_trunk(livekit_api::services::sip::ListSIPOutboundTrunkFilter::All)
        .await
        .expect("ListSIPOutboundTrunk");
    let held = outbound_held
        .iter()
        .find(|t| t.sip_trunk_id == outbound_id)
        .expect("outbound trunk held");
    // The password was sent whole (only the output masks it).
    assert_eq!(held.auth_password, SEED_PASSWORD);
    assert_eq!(held.address, "sip.telnyx.com");
    assert_eq!(held.numbers, vec!["+3226010500".to_owned()]);

    // Delete: each says what it deleted; the ids are gone; a second delete is an error.
    let del = cli
        .sip(&["dispatch", "delete", &rule_id])
        .await
        .ok("dispatch delete");
    assert!(
        del.stdout.starts_with(&format!("deleted {rule_id}")),
        "{}",
        del.stdout
    );
    let del = cli
        .sip(&["inbound", "delete", &inbound_id])
        .await
        .ok("inbound delete");
    assert!(del.stdout.contains(&inbound_id), "{}", del.stdout);
    let wrong_kind = cli.sip(&["inbound", "delete", &outbound_id]).await;
    assert_eq!(wrong_kind.code, Some(65), "{}", wrong_kind.all());
    assert!(
        wrong_kind.stderr.contains("is an outbound trunk"),
        "{}",
        wrong_kind.stderr
    );
    cli.sip(&["outbound", "delete", &outbound_id])
        .await
        .ok("outbound delete");
    for (kind, id) in [
        ("inbound", &inbound_id),
        ("outbound", &outbound_id),
        ("dispatch", &rule_id),
    ] {
        let again = cli.sip(&[kind, "delete", id]).await;
        assert_eq!(again.code, Some(65), "{kind} {id}: {}", again.all());
        assert!(again.stderr.contains(id.as_str()), "{}", again.stderr);
        let list = cli.sip(&[kind, "list"]).await.ok("list after delete");
        assert!(!list.stdout.contains(id.as_str()), "{}", list.stdout);
    }
    let inbound_left = sip
        .list_sip_inbound_trunk(ListSIPInboundTrunkFilter::All)
        .await
        .expect("ListSIPInboundTrunk");
    assert!(inbound_left.is_empty(), "{inbound_left:?}");
}

/// The dispatch file's other forms and the agent flags: `dispatch_rule` wrapper, camelCase or
/// snake_case, `--agent`, `--agent-metadata`, `--no-agent`, a file that names its own agent, a
/// trunk id that does not exist.
#[tokio::test(flavor = "multi_thread")]
async fn sip_cli_dispatch_forms_and_agents() {
    let tel = Telephony::start().await;
    let mut cli = Cli::of(&tel);
    cli.env
        .push(("LIVEKIT_AGENT_NAME".into(), "inbound-desk".into()));
    // One inbound trunk per rule (rules on one trunk with no numbers would conflict).
    let mut trunks = Vec::new();
    for n in 0..4 {
        let file = format!(r#"{{"trunk": {{"name": "t{n}", "numbers": ["+6140000000{n}"]}}}}"#);
        let out = cli
            .sip_stdin(&["inbound", "create", "-"], Some(file.as_str()))
            .await
            .ok("inbound create from stdin");
        trunks.push(out.id());
    }

    // The wrapped form, snake_case: the configured agent name (LIVEKIT_AGENT_NAME) is added.
    let wrapped = cli.write(
        "wrapped.json",
        r#"{"dispatch_rule": {"name": "wrapped", "trunk_ids": ["<ID>"],
            "rule": {"dispatch_rule_individual": {"room_prefix": "call-"}}}}"#,
    );
    let out = cli
        .sip(&[
            "dispatch", "create", &wrapped, "--trunk", &trunks[0], "--json",
        ])
        .await
        .ok("wrapped create");
    let created = out.json();
    assert_eq!(
        created["roomConfig"]["agents"][0]["agentName"], "inbound-desk",
        "{created}"
    );
    assert_eq!(created["trunkIds"][0], trunks[0].as_str(), "{created}");
    assert!(out.stderr.contains("livekit.agent_name"), "{}", out.stderr);

    // --agent and --agent-metadata.
    let top = cli.write(
        "top.json",
        r#"{"name": "flags", "rule": {"dispatchRuleDirect": {"roomName": "desk", "pin": "4321"}}}"#,
    );
    let out = cli
        .sip(&[
            "dispatch",
            "create",
            &top,
            "--trunk",
            &trunks[1],
            "--agent",
            "sales",
            "--agent-metadata",
            r#"{"campaign": "inbound"}"#,
        ])
        .await
        .ok("--agent");
    assert!(out.stdout.contains("agents sales"), "{}", out.stdout);
    assert!(out.stdout.contains("pin ***"), "{}", out.stdout);
    assert!(
        !out.all().contains("4321"),
        "the PIN is never printed: {}",
        out.all()
    );
    let rule_id = out.id();
    let rules = tel
        .sip_client()
        .list_sip_dispatch_rule(ListSIPDispatchRuleFilter::All)
        .await
        .expect("list");
    let held = rules
        .iter()
        .find(|r| r.sip_dispatch_rule_id == rule_id)
        .expect("held");
    let agent = &held.room_config.as_ref().expect("room_config").agents[0];
    assert_eq!(
        (agent.agent_name.as_str(), agent.metadata.as_str()),
        ("sales", r#"{"campaign": "inbound"}"#)
    );
    let list = cli.sip(&["dispatch", "list", "--json"]).await.ok("list");
    assert!(!list.all().contains("4321"), "{}", list.all());

    // --no-agent leaves room_config alone.
    let plain = cli.write(
        "plain.json",
        r#"{"name": "plain", "rule": {"dispatchRuleCallee": {"roomPrefix": "in-"}}}"#,
    );
    let out = cli
        .sip(&[
            "dispatch",
            "create",
            &plain,
            "--trunk",
            &trunks[2],
            "--no-agent",
            "--json",
        ])
        .await
        .ok("--no-agent");
    assert!(out.json().get("roomConfig").is_none(), "{}", out.stdout);

    // A file with its own agents keeps them; --agent beside them is refused.
    let own = cli.write(
        "own.json",
        r#"{"name": "own", "rule": {"dispatchRuleDirect": {"roomName": "own"}},
            "roomConfig": {"agents": [{"agentName": "theirs"}]}}"#,
    );
    let refused = cli
        .sip(&[
            "dispatch", "create", &own, "--trunk", &trunks[3], "--agent", "x",
        ])
        .await;
    assert_eq!(refused.code, Some(65), "{}", refused.all());
    assert!(
        refused
            .stderr
            .contains("--agent: the file's room_config.agents already names theirs"),
        "{}",
        refused.stderr
    );
    let out = cli
        .sip(&["dispatch", "create", &own, "--trunk", &trunks[3]])
        .await
        .ok("own agents");
    assert!(out.stdout.contains("agents theirs"), "{}", out.stdout);

    // Trunk ids LiveKit does not have are refused before anything is created.
    let missing = cli
        .sip(&["dispatch", "create", &plain, "--trunk", "ST_doesnotexist"])
        .await;
    assert_eq!(missing.code, Some(65), "{}", missing.all());
    assert!(
        missing
            .stderr
            .contains("--trunk: no inbound trunk ST_doesnotexist"),
        "{}",
        missing.stderr
    );
}

/// Bad input is named by file and field, exits non-zero, never panics, and never echoes a
/// password. No request reaches LiveKit for these, so the URL points at a closed port; the
/// last case is that port: LiveKit unreachable (69).
#[tokio::test(flavor = "multi_thread")]
async fn sip_cli_bad_input_is_named_by_field() {
    let cli = Cli::new(
        &format!("ws://127.0.0.1:{}", free_port()),
        "devkey",
        "secret",
    );
    let cases: &[(&str, &str, &[&str], &str, i32)] = &[
        (
            "syntax.json",
            "{\"trunk\": {\"name\": \"x\",}}",
            &["inbound", "create"],
            "syntax.json: not JSON (line 1, column 24): trailing comma",
            65,
        ),
        (
            "type.json",
            r#"{"trunk": {"name": "x", "numbers": "+3226010500"}}"#,
            &["inbound", "create"],
            "type.json: trunk.numbers: invalid type: string \"+3226010500\", expected a sequence",
            65,
        ),
        (
            "unknown.json",
            r#"{"trunk": {"name": "x", "number": ["+3226010500"]}}"#,
            &["inbound", "create"],
            "unknown.json: trunk.number: unknown field",
            65,
        ),
        (
            "bare.json",
            r#"{"name": "x", "numbers": ["+3226010500"]}"#,
            &["inbound", "create"],
            "bare.json: the trunk's fields must be inside {\"trunk\": {…}}",
            65,
        ),
        (
            "password.json",
            r#"{"trunk": {"name": "x", "address": "sip.example.com", "auth_password": 987654321}}"#,
            &["outbound", "create"],
            "password.json: trunk.auth_password: invalid type",
            65,
        ),
        (
            "noaddress.json",
            r#"{"trunk": {"name": "x", "numbers": ["+1"]}}"#,
            &["outbound", "create"],
            "noaddress.json: trunk.address: is missing",
            65,
        ),
        (
            "norule.json",
            r#"{"name": "x", "trunk_ids": ["ST_1"]}"#,
            &["dispatch", "create"],
            "norule.json: rule: is missing",
            65,
        ),
        (
            "array.json",
            "[]",
            &["dispatch", "create"],
            "array.json: expected a JSON object ({…}), found an array",
            65,
        ),
        (
            "badtrunk.json",
            r#"{"dispatch_rule": {"trunkIds": ["<TRUNK_ID>"], "rule": {"dispatchRuleDirect": {"roomName": "r"}}}}"#,
            &["dispatch", "create"],
            "badtrunk.json: dispatch_rule.trunk_ids[0]: \"<TRUNK_ID>\" is a placeholder",
            65,
        ),
    ];
    for (name, text, command, expected, code) in cases {
        let file = cli.write(name, text);
        let mut args = command.to_vec();
        args.push(&file);
        let out = cli.sip(&args).await;
        assert_eq!(out.code, Some(*code), "{name}: {}", out.all());
        assert!(
            out.stderr.contains(expected),
            "{name}: expected {expected:?} in {}",
            out.stderr
        );
        assert!(!out.all().contains("panicked"), "{name}: {}", out.all());
        assert!(!out.all().contains("987654321"), "{name}: {}", out.all());
    }

    let missing = cli.sip(&["inbound", "create", "no-such-file.json"]).await;
    assert_eq!(missing.code, Some(66), "{}", missing.all());
    assert!(
        missing.stderr.contains("cannot read no-such-file.json"),
        "{}",
        missing.stderr
    );

    let metadata = cli.write(
        "ok.json",
        r#"{"name": "x", "rule": {"dispatchRuleDirect": {"roomName": "r"}}}"#,
    );
    let out = cli
        .sip(&[
            "dispatch",
            "create",
            &metadata,
            "--agent-metadata",
            "{not json",
        ])
        .await;
    assert_eq!(out.code, Some(65), "{}", out.all());
    assert!(
        out.stderr.contains("--agent-metadata: not JSON"),
        "{}",
        out.stderr
    );

    let unreachable = cli.sip(&["inbound", "list"]).await;
    assert_eq!(unreachable.code, Some(69), "{}", unreachable.all());
    assert!(
        unreachable.stderr.contains("cannot reach LiveKit"),
        "{}",
        unreachable.stderr
    );

    let unconfigured = run(
        &binary(),
        &["sip", "inbound", "list"],
        &[],
        &cli.dir.0,
        None,
    )
    .await;
    assert_eq!(unconfigured.code, Some(64), "{}", unconfigured.all());
    assert!(
        unconfigured.stderr.contains("LIVEKIT_URL"),
        "{}",
        unconfigured.stderr
    );
}

/// LiveKit's own CLI, `lk`: `.tools/bin/lk` (built by `make setup` from tests/tools/lk), else
/// on PATH. Missing, the test fails with the install command.
fn lk() -> PathBuf {
    let local = workspace_root().join(".tools/bin/lk");
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("lk"));
    std::iter::once(local)
        .chain(on_path)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "lk (LiveKit's CLI) is not installed: run `make setup` (it builds lk v2.18.2 from \
                 tests/tools/lk into .tools/bin/lk)"
            )
        })
}

/// `lk` and `callfleet sip` see each other's work: what one creates from seed 004's files, the
/// other lists.
#[tokio::test(flavor = "multi_thread")]
async fn sip_cli_agrees_with_lk() {
    let lk = lk();
    let tel = Telephony::start().await;
    let cli = Cli::of(&tel);
    let creds = [
        "--url".to_owned(),
        tel.livekit.http_url(),
        "--api-key".to_owned(),
        tel.livekit.key.clone(),
        "--api-secret".to_owned(),
        tel.livekit.secret.clone(),
    ];
    let lk_run = |args: &[&str]| {
        // Root flags, before the command.
        let mut all: Vec<String> = creds.to_vec();
        all.extend(args.iter().map(|a| (*a).to_owned()));
        let (lk, dir) = (lk.clone(), cli.dir.0.clone());
        async move {
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            run(&lk, &all, &[], &dir, None).await
        }
    };

    // callfleet creates, lk lists.
    let inbound_id = cli
        .sip(&["inbound", "create", path(&seed("inboundTrunk.json"))])
        .await
        .ok("inbound create")
        .id();
    let rule_id = cli
        .sip(&[
            "dispatch",
            "create",
            path(&seed("dispatchRule.json")),
            "--trunk",
            &inbound_id,
        ])
        .await
        .ok("dispatch create")
        .id();
    let listed = lk_run(&["sip", "inbound", "list", "--json"])
        .await
        .ok("lk sip inbound list");
    let items = listed.json()["items"].clone();
    let trunk = items
        .as_array()
        .and_then(|a| a.iter().find(|t| t["sipTrunkId"] == inbound_id.as_str()))
        .unwrap_or_else(|| panic!("lk does not list {inbound_id}: {items}"));
    assert_eq!(trunk["numbers"][0], "+3226010500", "{trunk}");
    let listed = lk_run(&["sip", "dispatch", "list", "--json"])
        .await
        .ok("lk sip dispatch list");
    let items = listed.json()["items"].clone();
    let rule = items
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["sipDispatchRuleId"] == rule_id.as_str())
        })
        .unwrap_or_else(|| panic!("lk does not list {rule_id}: {items}"));
    assert_eq!(rule["trunkIds"][0], inbound_id.as_str(), "{rule}");
    assert_eq!(
        rule["roomConfig"]["agents"][0]["agentName"], "callfleet",
        "{rule}"
    );
    assert_eq!(
        rule["rule"]["dispatchRuleDirect"]["roomName"], "ai-sales-call",
        "{rule}"
    );
    cli.sip(&["dispatch", "delete", &rule_id])
        .await
        .ok("dispatch delete");
    cli.sip(&["inbound", "delete", &inbound_id])
        .await
        .ok("inbound delete");

    // lk creates from the same seed files, callfleet lists.
    let created = lk_run(&["sip", "inbound", "create", path(&seed("inboundTrunk.json"))])
        .await
        .ok("lk sip inbound create");
    let lk_inbound = created
        .all()
        .split_whitespace()
        .find(|w| w.starts_with("ST_"))
        .unwrap_or_else(|| panic!("no trunk id in lk's answer: {}", created.all()))
        .to_owned();
    // lk v2.18.2 reads a dispatch file into `dispatch_rule` only: the seed's top-level fields
    // are the request's deprecated ones, which it leaves behind ("missing rule"). The same rule
    // in its wrapper is what lk takes.
    let seed_rule: Value =
        serde_json::from_str(&std::fs::read_to_string(seed("dispatchRule.json")).expect("seed"))
            .expect("seed JSON");
    let refused = lk_run(&[
        "sip",
        "dispatch",
        "create",
        path(&seed("dispatchRule.json")),
    ])
    .await;
    assert_ne!(
        refused.code,
        Some(0),
        "lk took the seed's top-level form: {}",
        refused.all()
    );
    let mut wrapped_rule = seed_rule.clone();
    wrapped_rule["trunk_ids"] = serde_json::json!([lk_inbound]);
    let wrapped = cli.write(
        "lkDispatchRule.json",
        &serde_json::json!({ "dispatch_rule": wrapped_rule }).to_string(),
    );
    let created = lk_run(&["sip", "dispatch", "create", &wrapped])
        .await
        .ok("lk sip dispatch create");
    let lk_rule = created
        .all()
        .split_whitespace()
        .find(|w| w.starts_with("SDR_"))
        .unwrap_or_else(|| panic!("no rule id in lk's answer: {}", created.all()))
        .to_owned();
    let created = lk_run(&[
        "sip",
        "outbound",
        "create",
        path(&seed("outboundTrunk.json")),
    ])
    .await
    .ok("lk sip outbound create");
    let lk_outbound = created
        .all()
        .split_whitespace()
        .find(|w| w.starts_with("ST_"))
        .unwrap_or_else(|| panic!("no trunk id in lk's answer: {}", created.all()))
        .to_owned();

    let list = cli.sip(&["inbound", "list"]).await.ok("inbound list");
    assert!(list.stdout.contains(&lk_inbound), "{}", list.stdout);
    let list = cli
        .sip(&["dispatch", "list", "--json"])
        .await
        .ok("dispatch list");
    let items = list.json()["items"].clone();
    let rule = items
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["sipDispatchRuleId"] == lk_rule.as_str())
        })
        .unwrap_or_else(|| panic!("callfleet does not list {lk_rule}: {items}"));
    assert_eq!(rule["trunkIds"][0], lk_inbound.as_str(), "{rule}");
    assert!(rule.get("roomConfig").is_none(), "lk adds no agent: {rule}");
    let list = cli.sip(&["outbound", "list"]).await.ok("outbound list");
    assert!(list.stdout.contains(&lk_outbound), "{}", list.stdout);
    assert!(!list.all().contains(SEED_PASSWORD), "{}", list.all());

    // And callfleet deletes what lk made.
    cli.sip(&["dispatch", "delete", &lk_rule])
        .await
        .ok("delete lk's rule");
    cli.sip(&["inbound", "delete", &lk_inbound])
        .await
        .ok("delete lk's inbound trunk");
    cli.sip(&["outbound", "delete", &lk_outbound])
        .await
        .ok("delete lk's outbound trunk");
    let listed = lk_run(&["sip", "dispatch", "list", "--json"])
        .await
        .ok("lk list");
    assert!(!listed.stdout.contains(&lk_rule), "{}", listed.stdout);
}
