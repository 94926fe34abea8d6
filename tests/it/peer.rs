//! LiveKit Agents, the density bench's peer (`bench/peers/livekit-agents/`), on the real rig:
//! livekit-server + livekit-sip + a SIPp callee, the same provider stand-ins as callfleet's
//! voice tests. `peer_livekit_agents_places_a_call` proves the Python worker works on its own:
//! one dispatch, the job dials, the callee answers and says hello, the agent's reply reaches
//! the callee as RTP, the LLM's `end_call` hangs up. `peer_livekit_agents_density` (ignored:
//! a measurement, not a test) places N live calls per executor and prints CPU and PSS per
//! session; `PEER_N=2,5 PEER_EXECUTORS=process,thread PEER_SECS=20`.

use std::time::{Duration, Instant};

use callfleet_standins::{
    Record,
    llm::{FakeLlm, LlmScript},
    stt::{self, FakeStt, SttOptions, at, dg_result},
    tts::{self, FakeTts, TtsScript},
};
use callfleet_tests::{
    Behaviour, Telephony, load_factor,
    peers::{Executor, LiveKitAgents, Providers, quantile, sample, sample_pids, turns},
    wait_for,
};
use serde_json::{Value, json};

const FROM: &str = "+61299990000";
const REPLY: &str = "Hi! This is the LiveKit Agents peer. Goodbye!";

/// The rig; its livekit-server's agent `target_load` is raised (`AGENT_TARGET_LOAD`): on a
/// busy machine a worker reports its load near 1.0, and the default 0.7 would offer it no job.
async fn rig() -> Telephony {
    Telephony::start().await
}

fn providers(llm: &FakeLlm, stt: &FakeStt, tts: &FakeTts) -> Providers {
    Providers {
        openai: llm.base_url.clone(),
        deepgram: stt.url.clone(),
        cartesia: tts.url.clone(),
    }
}

/// Seed 001's dispatch metadata.
fn metadata(destination: &str) -> Value {
    json!({
        "destination": destination,
        "account_code": "em-tech-01",
        "transfer_target": "61731071901",
        "caller_id": "LiveKitNehosHosted",
        "caller_name": "LiveKit Nehos Hosted",
        "caller_number": FROM,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn peer_livekit_agents_places_a_call() {
    let tel = rig().await;
    let callee = tel.callee(&[FROM]).await;
    // The person (…207) says "Hello?" in its first second; the STT hears it then.
    let stt = FakeStt::start(
        stt::Flavor::Deepgram,
        vec![
            at(600, dg_result("Hello", false, false)),
            at(1400, dg_result("Hello?", true, true)),
        ],
    )
    .await;
    let llm = FakeLlm::start(vec![
        LlmScript::text(100, &[REPLY]).with_tool("end_call", r#"{"reason":"done"}"#),
    ])
    .await;
    let tts = FakeTts::start(
        tts::Flavor::Cartesia,
        TtsScript {
            ttfb: Duration::from_millis(50),
            ms_per_char: 30,
        },
    )
    .await;
    let worker = LiveKitAgents::start(
        &tel.livekit,
        &callee.trunk_id,
        &providers(&llm, &stt, &tts),
        Executor::Process,
        1,
    )
    .await;

    let number = Behaviour::Person.number(1);
    let streams = callee.tap().streams().len();
    let dispatched = Instant::now();
    worker.dispatch("peer-call-1", &metadata(&number)).await;
    let stream = callee
        .tap()
        .wait_stream(streams + 1, Duration::from_secs(60))
        .await;
    let tail = || worker.log_tail(60);

    // The LLM's end_call deletes the room: the callee gets a BYE.
    wait_for(
        "the agent's end_call (in its metrics file)",
        Duration::from_secs(60),
        || {
            let done = !worker.events("end_call").is_empty();
            async move { done.then_some(()) }
        },
    )
    .await;
    wait_for("the callee's BYE", Duration::from_secs(30), || {
        let bye = !callee.received("BYE").is_empty();
        async move { bye.then_some(()) }
    })
    .await;

    let invites = callee.invites_to(&number);
    assert_eq!(invites.len(), 1, "one INVITE: {invites:?}");
    assert_eq!(
        invites[0].header("X-Account-Code"),
        Some("em-tech-01"),
        "seed 001's header on the INVITE"
    );
    let heard = callee
        .tap()
        .stream(stream.source)
        .map_or(0, |s| s.loud_ms(dispatched, Instant::now()));
    // REPLY at 30 ms a character is about 1.4 s of tone.
    assert!(
        heard >= 500,
        "the callee heard {heard} ms of the agent{}",
        tail()
    );
    let said: Vec<String> = llm.requests().iter().map(|r| r.last_user()).collect();
    assert!(
        said.iter().any(|s| s.contains("Hello")),
        "the LLM got the callee's words: {said:?}"
    );
    assert!(
        tts.texts()
            .iter()
            .any(|t| t.contains("LiveKit Agents peer")),
        "the TTS spoke the reply: {:?}",
        tts.texts()
    );
    let turn = turns(&worker.metrics());
    assert_eq!(turn.len(), 1, "one turn measured{}", tail());
    eprintln!("peer turn: {:?}", turn[0]);
    // The stand-ins' 100 ms TTFT and 50 ms TTFB are the providers' share.
    assert!(turn[0].providers >= 0.15, "{:?}", turn[0]);
    let metrics = worker.events("metrics");
    for kind in ["llm_metrics", "tts_metrics", "eou_metrics"] {
        assert!(
            metrics.iter().any(|m| m["type"] == kind),
            "{kind} recorded: {metrics:?}{}",
            tail()
        );
    }
}

/// One measured window of N live calls.
struct Row {
    executor: Executor,
    n: usize,
    idle_pss_mb: f64,
    cpu_pct_per_session: f64,
    pss_mb_per_session: f64,
    rss_mb_per_session: f64,
    /// The tree's growth from idle (N warm processes) to N live calls, per call.
    marginal_pss_mb: f64,
    /// Process executor: the job processes' own PSS, per job (thread: NaN).
    job_pss_mb: f64,
    procs: usize,
    /// Calls answered (live) in the window: N unless the executor stalled.
    live: usize,
    load: f64,
    /// Turns measured, and the framework's added latency (ms) beyond the providers.
    turns: usize,
    added_p50_ms: f64,
    added_p99_ms: f64,
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: run with --ignored (see the module's doc)"]
async fn peer_livekit_agents_density() {
    let ns: Vec<usize> = std::env::var("PEER_N")
        .unwrap_or_else(|_| "2,5".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let executors: Vec<Executor> = std::env::var("PEER_EXECUTORS")
        .unwrap_or_else(|_| "process,thread".into())
        .split(',')
        .filter_map(|v| match v.trim() {
            "process" => Some(Executor::Process),
            "thread" => Some(Executor::Thread),
            _ => None,
        })
        .collect();
    let secs: u64 = std::env::var("PEER_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);

    let tel = rig().await;
    let callee = tel.callee(&[FROM]).await;
    // The demo callee (…206) says "Hello, who is this?" every 20 s and listens: one turn
    // per 20 s per call. Providers with the issue's realistic latency: LLM TTFT 300 ms, TTS
    // first byte 150 ms; nothing recorded.
    let period = Duration::from_secs(callfleet_rig::callee::HELLO_PERIOD_SECS);
    let stt = FakeStt::start_with(
        stt::Flavor::Deepgram,
        vec![
            at(900, dg_result("Hello, who", false, false)),
            at(2200, dg_result("Hello, who is this?", true, true)),
        ],
        SttOptions {
            record: Record::Off,
            repeat_every: Some(period),
        },
    )
    .await;
    let llm = FakeLlm::start_with(vec![LlmScript::text(300, &[REPLY])], Record::Off).await;
    let tts = FakeTts::start_with(
        tts::Flavor::Cartesia,
        TtsScript {
            ttfb: Duration::from_millis(150),
            ms_per_char: 30,
        },
        Record::Off,
    )
    .await;
    let p = providers(&llm, &stt, &tts);

    let mut rows = Vec::new();
    let mut tag = 0u16;
    for &executor in &executors {
        for &n in &ns {
            let worker =
                LiveKitAgents::start(&tel.livekit, &callee.trunk_id, &p, executor, n).await;
            // Let the warm processes load (Silero, the plugins) before the idle reading.
            tokio::time::sleep(Duration::from_secs(8)).await;
            let idle = sample(worker.pid());
            let mut rooms = Vec::new();
            for _ in 0..n {
                tag += 1;
                let room = format!("peer-{}-{n}-{tag}", executor.name());
                worker
                    .dispatch(&room, &metadata(&Behaviour::SayHello.number(tag)))
                    .await;
                rooms.push(room);
            }
            // Bounded, and not fatal: a stalled executor is a result (the row says how many
            // calls were live).
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut answered = 0;
            while Instant::now() < deadline {
                answered = worker.events("answered").len();
                if answered >= n {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            // Past the first greeting's turn, into the steady state.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let before = sample(worker.pid());
            let t0 = Instant::now();
            let load0 = load_factor();
            tokio::time::sleep(Duration::from_secs(secs)).await;
            let after = sample(worker.pid());
            let window = t0.elapsed().as_secs_f64();
            let jobs = worker.job_pids();
            let job_pss_mb = if executor == Executor::Process && !jobs.is_empty() {
                sample_pids(&jobs).pss_kb / 1024.0 / jobs.len() as f64
            } else {
                f64::NAN
            };
            let t = turns(&worker.metrics());
            let added: Vec<f64> = t.iter().map(|t| t.added * 1000.0).collect();
            let (turns_n, added_p50_ms, added_p99_ms) =
                (t.len(), quantile(&added, 0.5), quantile(&added, 0.99));
            let nf = n as f64;
            let row = Row {
                executor,
                n,
                idle_pss_mb: idle.pss_kb / 1024.0,
                cpu_pct_per_session: (after.cpu_s - before.cpu_s) / window / nf * 100.0,
                pss_mb_per_session: after.pss_kb / 1024.0 / nf,
                rss_mb_per_session: after.rss_kb / 1024.0 / nf,
                marginal_pss_mb: (after.pss_kb - idle.pss_kb) / 1024.0 / nf,
                job_pss_mb,
                procs: after.procs,
                live: answered,
                load: (load0 + load_factor()) / 2.0,
                turns: turns_n,
                added_p50_ms,
                added_p99_ms,
            };
            let closed = worker.events("close").len();
            let dial_failed = worker.events("dial_failed").len();
            eprintln!(
                "peer {executor:?} N={n}: {:.1} % of a core and {:.1} MB PSS ({:.1} MB RSS) per session (tree / N); PSS per call above idle {:.1} MB, per job process {:.1} MB; idle tree {:.1} MB PSS; {} processes; {} of {n} calls live; {} turns, added latency p50 {:.0} ms p99 {:.0} ms; closed early {closed}, dial failures {dial_failed}; load factor {:.1}",
                row.cpu_pct_per_session,
                row.pss_mb_per_session,
                row.rss_mb_per_session,
                row.marginal_pss_mb,
                row.job_pss_mb,
                row.idle_pss_mb,
                row.procs,
                row.live,
                row.turns,
                row.added_p50_ms,
                row.added_p99_ms,
                row.load
            );
            for room in &rooms {
                worker.hang_up(room).await;
            }
            rows.push(row);
            drop(worker);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    println!(
        "| executor | N | CPU % of a core per session | PSS MB per session (tree / N) | PSS MB per call above idle | PSS MB per job process | RSS MB per session (tree / N) | idle tree PSS MB | processes | live calls | turns | added latency p50 / p99 ms | load factor |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {:.0} / {:.0} | {:.1} |",
            r.executor.name(),
            r.n,
            r.cpu_pct_per_session,
            r.pss_mb_per_session,
            r.marginal_pss_mb,
            r.job_pss_mb,
            r.rss_mb_per_session,
            r.idle_pss_mb,
            r.procs,
            r.live,
            r.turns,
            r.added_p50_ms,
            r.added_p99_ms,
            r.load
        );
    }
}
