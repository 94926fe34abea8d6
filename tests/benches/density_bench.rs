//! End-to-end density: N concurrent real calls placed through a real fleet (nats-server, the
//! agent worker, release build) and livekit-server + livekit-sip to SIPp callees that talk
//! every 6 s and listen, the voice session on every call against the local provider stand-ins
//! (LLM TTFT 300 ms, TTS first byte 150 ms). The harness and its definitions are in
//! `tests/src/density/` (a `System` trait, so another stack can be measured in the same run).
//!
//! `cargo bench -p callfleet-tests --bench density_bench -- [sizes=10,25,50] [seconds=30]
//! [vads=energy,silero] [peers=process,thread] [peer_sizes=10]`; prints Markdown (`make bench` writes it to bench/density.md). The
//! worker is `CALLFLEET_BIN`, else the release `callfleet` beside this bench's build (`cargo
//! build --release -p callfleet` first; `make bench` does).
//!
//! The peer, LiveKit Agents (`bench/peers/livekit-agents/`, `.tools/lk-agents-venv` from
//! `make setup`), runs the same calls on the same bed with each executor in `peers`
//! (`peers=` for none), at `peer_sizes` only: with a process per job plus as many warm spares,
//! N = 25 or 50 would need 7-15 GB and several cores. Its rows get ratios against callfleet's
//! at the same N (the Silero row when measured: the peer runs Silero).

use std::{path::PathBuf, time::Duration};

use callfleet_tests::{
    density::{
        Bed, Callfleet, DensityRow, LiveKitAgents, Plan, Script, System, Target, measure, ratios,
        table, verdict,
    },
    peers::Executor,
};

/// The release worker: `CALLFLEET_BIN`, else `<target>/release/callfleet` (this bench runs
/// from `<target>/release/deps/`).
fn worker_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("CALLFLEET_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|release| release.join("callfleet"))
        .unwrap_or_default();
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release -p callfleet` (make bench does), or set CALLFLEET_BIN",
        bin.display()
    );
    bin
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every size of `sizes` for one system, its rows appended (a failed size is reported, not
/// fatal).
async fn step<S: System>(
    bed: &Bed,
    system: &mut S,
    sizes: &[usize],
    plan: Plan,
    rows: &mut Vec<DensityRow>,
) {
    for &n in sizes {
        eprintln!("density: {} N={n} …", system.name());
        match measure(bed, system, n, plan).await {
            Ok(row) => {
                eprintln!("{}", table(std::slice::from_ref(&row)));
                rows.push(row);
            }
            Err(e) => eprintln!("density: {} N={n} failed: {e}", system.name()),
        }
    }
}

fn main() {
    let mut sizes = vec![10, 25, 50];
    let mut seconds = 30;
    let mut vads = vec!["energy".to_owned()];
    let mut peers = vec![Executor::Process, Executor::Thread];
    let mut peer_sizes = vec![10];
    for arg in std::env::args().skip(1) {
        if let Some(v) = arg.strip_prefix("peers=") {
            peers = v
                .split(',')
                .filter_map(|e| match e.trim() {
                    "process" => Some(Executor::Process),
                    "thread" => Some(Executor::Thread),
                    _ => None,
                })
                .collect();
        } else if let Some(v) = arg.strip_prefix("peer_sizes=") {
            peer_sizes = v.split(',').filter_map(|s| s.parse().ok()).collect();
        }
        if let Some(v) = arg.strip_prefix("sizes=") {
            sizes = v.split(',').filter_map(|s| s.parse().ok()).collect();
        } else if let Some(v) = arg.strip_prefix("seconds=") {
            seconds = v.parse().unwrap_or(30);
        } else if let Some(v) = arg.strip_prefix("vads=") {
            vads = v.split(',').map(str::to_owned).collect();
        }
    }
    let bin = worker_binary();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let script = Script::default();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let load_before = loadavg();
    let started = std::time::Instant::now();
    let rows: Vec<DensityRow> = rt.block_on(async {
        let bed = Bed::start(script).await;
        let mut rows = Vec::new();
        let plan = Plan {
            window: Duration::from_secs(seconds),
        };
        for vad in &vads {
            let mut system = Callfleet::new(vad, Some(bin.clone()));
            step(&bed, &mut system, &sizes, plan, &mut rows).await;
        }
        for &executor in &peers {
            let mut system = LiveKitAgents::new(executor);
            step(&bed, &mut system, &peer_sizes, plan, &mut rows).await;
        }
        rows
    });

    println!("## End-to-end density on real calls\n");
    println!(
        "N concurrent calls through livekit-server and livekit-sip to SIPp callees that say \
         \"Hello, who is this?\" every 6 s and listen; the voice session on every call (STT -> LLM \
         -> TTS, preemptive generation off, answering-machine detection off) against the local \
         provider stand-ins: LLM time to first token {} ms, TTS first byte {} ms, the reply \
         \"{}\" ({} ms of audio). Measured over a {seconds} s window with every call live (shorter \
         if the calls came up late: see the window column); the worker, one process with N \
         slots, is `{}`. {cores} cores; load average \
         {load_before} before, {} after; {:.0} s in all. The machine is shared: treat the \
         numbers as this run's, not a constant.\n",
        script.llm_ttft_ms,
        script.tts_ttfb_ms,
        script.reply,
        script.reply.chars().count() as u64 * script.tts_ms_per_char,
        bin.display(),
        loadavg(),
        started.elapsed().as_secs_f64(),
    );
    println!("{}", table(&rows));
    let base = ["silero", "energy", "webrtc"]
        .iter()
        .map(|vad| format!("callfleet ({vad} VAD)"))
        .find(|name| rows.iter().any(|r| &r.system == name));
    let peer_names: Vec<String> = peers
        .iter()
        .map(|e| LiveKitAgents::new(*e).name())
        .filter(|name| rows.iter().any(|r| &r.system == name))
        .collect();
    if let Some(base) = &base {
        for peer in &peer_names {
            println!("### {peer} against {base}, per call\n");
            println!("{}", ratios(&rows, base, peer));
        }
    }
    println!("### Against the target\n");
    println!("{}", verdict(&rows, Target::default()));
    println!("### What each column is\n");
    println!(
        "- **CPU**: utime + stime of the agent worker process (`/proc/<pid>/stat`) over the \
         window, as % of one core, divided by the live calls; **RSS / PSS per call**: (at the \
         window's end - the idle worker before any call) / live calls (`VmRSS`, \
         `smaps_rollup`'s `Pss`), the total beside it.\n\
         - **live**: calls whose callee received RTP both at the window's start and at its end.\n\
         - **RTP to callees**: packets reaching the callees' RTP tap in the window / (live x 50 \
         per s x window): livekit-sip sends a packet every 20 ms, silence included.\n\
         - **agent speech heard / sent**: PCMU frames at or above -40 dBFS at the callees (whole \
         calls) / the frames of reply audio the agent sent (turns not interrupted x the reply's \
         length): the agent's audio delivered end to end.\n\
         - **response**: the voice engine's `response_latency_ms` per turn: from its end-of-turn \
         decision to its first audio frame handed to the media transport (all turns of all \
         calls). **added beyond providers** = response - (scripted LLM TTFT + TTS first byte): \
         what callfleet adds, provider I/O over loopback and the stand-ins' own timer slack \
         included. **turn overhead** = response - (the turn's `llm_ttft_ms` + `tts_ttfb_ms` as \
         the agent's clients measured them): the engine's own time, the figure \
         `voice_bench` measures in isolation (DESIGN §9: p99 <= 5 ms).\n\
         - **livekit-server / livekit-sip CPU**: their processes over the same window (% of one \
         core), for scale: they carry every call's media.\n\
         - **LiveKit Agents rows** (`bench/peers/livekit-agents/`): livekit-agents 1.8.9 with \
         its deepgram, openai and cartesia plugins on the same stand-ins, Silero VAD \
         (onnxruntime), preemptive generation off, no answering-machine detection; calls placed \
         by CreateRoom + CreateAgentDispatch with seed 001's metadata, the job dialing with \
         CreateSIPParticipant. CPU, RSS and PSS are the worker's whole process tree (main \
         process, forkserver, job processes and `num_idle_processes` = N warm spares with the \
         process executor; one process with the thread executor). Its response is the \
         framework's end-of-turn decision (its EOU metric) to its `speaking` state, and the \
         provider latencies are its plugins' TTFT and TTFB. Not comparable: Python against \
         Rust is the point; callfleet also runs its answering gate and recording-ready taps.\n"
    );
}
