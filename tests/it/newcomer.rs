//! A newcomer's first five minutes: `make run` (`callfleet dev`) in a copy of the repository
//! layout, then the curl line it prints, exactly as printed. No provider key is set, so dev
//! runs the scripted provider stand-ins and says so; the demo callee says "Hello, who is
//! this?", and within 30 s the signed webhook carries a real turn: the transcript, turn
//! metrics, usage and the call's dead air. Then the supervision: the callee dies under a running rig, and dev reports it
//! with its log and exits non-zero instead of running on half a rig.
//!
//! `callfleet dev` uses the fixed ports a user sees in the README (4222, 7880, 8080, ...), not
//! free ones, so this is the only test that runs it.

use std::{
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use callfleet_tests::{TempDir, WebhookSink, binary, scaled, tool, wait_for, workspace_root};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

const SECRET: &str = "whsec_bmV3Y29tZXItdGVzdC1zZWNyZXQtMDEyMzQ1Njc4OQ==";

/// A copy of what `make run` needs from a checkout: the callee's scenario, the installed tools
/// (`.tools/bin`, linked) and the callees' speech (`.tools/audio`, from `make setup`).
/// `.tools/dev` (logs, stores) starts empty, as on a fresh clone.
fn checkout_copy() -> TempDir {
    let dir = TempDir::new("newcomer");
    let sipp = dir.0.join("tests/sipp");
    std::fs::create_dir_all(&sipp).expect("create tests/sipp");
    std::fs::copy(
        workspace_root().join("tests/sipp/callee.xml"),
        sipp.join("callee.xml"),
    )
    .expect("copy the callee scenario");
    std::fs::create_dir_all(dir.0.join(".tools")).expect("create .tools");
    // Resolve every tool first: a missing one fails here with the install command.
    for name in [
        "nats-server",
        "livekit-server",
        "livekit-sip",
        "sipp",
        "redis-server",
    ] {
        tool(name);
    }
    let bin = workspace_root().join(".tools/bin");
    if bin.exists() {
        std::os::unix::fs::symlink(&bin, dir.0.join(".tools/bin")).expect("link .tools/bin");
    }
    let spoken = callfleet_rig::callee::speech::ALL.map(|s| s.source);
    for speech in std::iter::once(callfleet_rig::callee::HELLO_SOURCE).chain(spoken) {
        let source = workspace_root().join(speech);
        assert!(
            source.exists(),
            "{} is missing: run `make setup` (it speaks the callees' words with espeak-ng, flite \
             and sox: `apt-get install espeak-ng flite sox`)",
            source.display()
        );
        let copy = dir.0.join(speech);
        std::fs::create_dir_all(copy.parent().expect("a folder")).expect("create .tools/audio");
        std::fs::copy(&source, &copy).expect("copy the callee's speech");
    }
    dir
}

/// `callfleet dev`, with its output collected line by line.
struct Dev {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
}

impl Dev {
    fn start(cwd: &Path, sink: &WebhookSink) -> Self {
        let mut child = Command::new(binary())
            .arg("dev")
            .current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", cwd)
            .env("N8N_WEBHOOK_URL", sink.url())
            .env("WEBHOOK_SECRET", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start callfleet dev");
        let out = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let out = out.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if callfleet_tests::test_log::enabled() {
                        eprintln!("dev| {line}");
                    }
                    if let Ok(mut out) = out.lock() {
                        out.push(line);
                    }
                }
            });
        }
        Self { child, out }
    }

    fn output(&self) -> String {
        self.out.lock().map(|o| o.join("\n")).unwrap_or_default()
    }

    /// The curl command the banner prints (its lines joined at the trailing backslashes).
    fn curl_line(&self) -> Option<String> {
        let out = self.out.lock().ok()?;
        let start = out
            .iter()
            .position(|l| l.trim_start().starts_with("curl "))?;
        let mut command = String::new();
        for line in &out[start..] {
            let line = line.trim();
            match line.strip_suffix('\\') {
                Some(head) => command.push_str(head),
                None => {
                    command.push_str(line);
                    return Some(command);
                }
            }
        }
        None
    }

    fn has_exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The pid of the rig's SIPp callee (a child of dev's running `sipp`).
    fn callee_pid(&self) -> Option<u32> {
        let dev = self.child.id()?;
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // "pid (comm) state ppid ..."
            let (comm, rest) = stat.split_once(") ")?;
            let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            (comm.ends_with("(sipp") && ppid == dev).then_some(pid)
        })
    }
}

impl Drop for Dev {
    /// A failed test must not leave dev's servers on the README's ports. SIGTERM lets dev stop
    /// them itself (a SIGKILL would orphan them); it does so without this process.
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn newcomer_make_run_then_the_printed_curl_gives_a_real_turn() {
    let checkout = checkout_copy();
    let sink = WebhookSink::start().await;
    let mut dev = Dev::start(&checkout.0, &sink);

    // The rig is up once the banner prints the curl line (after every child answered its probe).
    let curl = wait_for(
        "callfleet dev to print its curl line (every child ready)",
        Duration::from_secs(120),
        || {
            let exited = dev.has_exited();
            let line = dev.curl_line();
            let output = dev.output();
            async move {
                assert!(
                    exited.is_none(),
                    "callfleet dev exited ({exited:?}):\n{output}"
                );
                line
            }
        },
    )
    .await;
    let banner = dev.output();
    for child in ["nats-server ready", "livekit-sip", "SIPp callee"] {
        assert!(
            banner.contains(child),
            "the banner names {child}:\n{banner}"
        );
    }
    for words in ["SCRIPTED STAND-INS", ".env.local", "OPENAI_API_KEY"] {
        assert!(
            banner.contains(words),
            "without keys the banner says the replies are stand-ins, and how to switch \
             ({words}):\n{banner}"
        );
    }
    assert!(
        !banner.contains("<api key>"),
        "without API keys the line runs as printed: {curl}"
    );

    // Run it as a user would paste it. The ingress may still be binding: retry until it answers.
    let started = Instant::now();
    let answer = wait_for(
        "the printed curl line to get 202 from the ingress",
        Duration::from_secs(30),
        || {
            let curl = curl.clone();
            async move {
                let out = Command::new("bash")
                    .args(["-c", &curl])
                    .output()
                    .await
                    .ok()?;
                let body: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
                body["call_id"].is_string().then_some(body)
            }
        },
    )
    .await;
    let call_id = answer["call_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(answer["status"], "queued", "{answer}");

    // The demo callee says its words; the stand-ins hear them, answer, and end the call.
    let hook = wait_for(
        "the signed call.ended webhook of the demo call",
        Duration::from_secs(30),
        || async {
            sink.delivered()
                .into_iter()
                .find(|r| r.json()["data"]["call_id"] == call_id.as_str())
        },
    )
    .await;
    let took = started.elapsed();
    eprintln!(
        "newcomer: curl → signed webhook in {:.1} s",
        took.as_secs_f64()
    );
    assert!(
        took <= scaled(Duration::from_secs(30)),
        "the webhook within 30 s (machine-scaled), took {took:?}"
    );
    assert!(
        hook.signed_with(SECRET),
        "the webhook is signed with WEBHOOK_SECRET"
    );
    let summary = &hook.json()["data"];
    assert_eq!(hook.json()["type"], "call.ended", "{summary}");
    assert_eq!(summary["outcome"], "answered", "{summary}");
    assert_eq!(
        summary["end_reason"], "agent_hangup",
        "the stand-in LLM ends the call: {summary}"
    );
    let transcript = summary["transcript"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        transcript
            .iter()
            .any(|t| t["role"] == "user" && t["text"] == "Hello, who is this?"),
        "the callee's words in the transcript: {summary}"
    );
    assert!(
        transcript
            .iter()
            .any(|t| t["role"] == "assistant"
                && t["text"].as_str().unwrap_or("").contains("stand-in")),
        "the scripted reply says it is a stand-in: {summary}"
    );
    let turns = summary["turns"].as_array().cloned().unwrap_or_default();
    assert!(
        turns
            .iter()
            .any(|t| t["llm_ttft_ms"].is_number() && t["response_latency_ms"].is_number()),
        "a turn with metrics: {summary}"
    );
    for stage in ["llm", "stt", "tts"] {
        assert!(
            summary["usage"][stage]
                .as_array()
                .is_some_and(|u| !u.is_empty()),
            "{stage} usage: {summary}"
        );
    }
    assert!(
        summary["first_agent_audio_ms"].is_u64(),
        "dead air measured: {summary}"
    );
    // The console shows the same conversation, for a newcomer without a webhook receiver.
    let call_id = summary["call_id"].as_str().unwrap_or_default().to_owned();
    wait_for(
        "the call's conversation on dev's console",
        Duration::from_secs(10),
        || {
            let out = dev.output();
            let head = format!("dev: call {call_id} to +614000000206: answered, agent_hangup");
            let shown = out.contains(&head) && out.contains("  callee: Hello, who is this?");
            async move { shown.then_some(()) }
        },
    )
    .await;
    eprintln!(
        "newcomer: first agent audio {} ms, response latency {}",
        summary["first_agent_audio_ms"], summary["response_latency_ms"]
    );

    // Supervision: the callee dies under the running rig. Dev reports it, with its log, and
    // stops with a non-zero exit.
    let pid = wait_for("the rig's sipp process", Duration::from_secs(5), || {
        let pid = dev.callee_pid();
        async move { pid }
    })
    .await;
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -KILL {pid}");
    let status = tokio::time::timeout(scaled(Duration::from_secs(60)), dev.child.wait())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "callfleet dev kept running after its callee died:\n{}",
                dev.output()
            )
        })
        .expect("wait for callfleet dev");
    let output = dev.output();
    assert!(
        !status.success(),
        "dev must exit non-zero: {status}\n{output}"
    );
    assert!(
        output.contains("sipp callee exited"),
        "dev names the child that died:\n{output}"
    );
    assert!(
        output.contains("the last lines of"),
        "dev shows the child's log:\n{output}"
    );
    // Dev stopped the rest of its rig: nothing listens on its ports any more.
    for port in [4222, 7880] {
        wait_for(
            &format!("dev's servers to release 127.0.0.1:{port}"),
            Duration::from_secs(15),
            || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_err()
                    .then_some(())
            },
        )
        .await;
    }
}
