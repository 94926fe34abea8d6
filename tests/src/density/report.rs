//! Rows and their Markdown: one [`DensityRow`] per system and size, the table, the targets
//! and the ratios between two systems measured in the same run.

use std::fmt::Write as _;

use super::{CallResult, Script, procs::Sample, quantile};

/// One system at one size.
#[derive(Debug, Clone, PartialEq)]
pub struct DensityRow {
    /// The system (and what varies, e.g. the VAD).
    pub system: String,
    /// Calls placed.
    pub n: usize,
    /// Calls live through the whole window (RTP reaching their callee at its start and end).
    pub live: usize,
    /// Placing the calls to the last one's first RTP at its callee, in s (`None`: not all
    /// came up in time).
    pub ramp_s: Option<f64>,
    /// The steady window, in s.
    pub window_s: f64,
    /// The system's process trees over the window: % of one core, per live call and in all.
    pub cpu_pct_per_call: f64,
    pub cpu_pct_total: f64,
    /// (at the window's end - idle before the calls) / live, in MB; and the absolute value.
    pub rss_mb_per_call: f64,
    pub rss_mb_total: f64,
    pub pss_mb_per_call: f64,
    pub pss_mb_total: f64,
    /// Processes in the trees at the window's end.
    pub procs: usize,
    /// RTP packets reaching the callees in the window / (live x 50 per s x window).
    pub rtp_ratio: f64,
    /// Frames of agent speech the callees heard (PCMU frames at or above the tap's
    /// `SPEECH_DBFS`, whole calls) / frames of agent speech sent (turns spoken x the reply's
    /// audio, from the TTS script).
    pub frames_ratio: f64,
    /// Agent turns with a response, over whole calls; and those the callee interrupted.
    pub turns: usize,
    pub interrupted: usize,
    /// End of turn -> first agent frame handed to the transport, in ms.
    pub response_p50_ms: f64,
    pub response_p99_ms: f64,
    /// That minus the providers' scripted latency (LLM TTFT + TTS first byte): everything the
    /// system adds, provider I/O on loopback included.
    pub added_p50_ms: f64,
    pub added_p99_ms: f64,
    /// That minus the provider latency the agent's own clients measured in the turn (LLM
    /// request to first token, TTS text to first audio): the engine's turn overhead.
    pub overhead_p50_ms: f64,
    pub overhead_p99_ms: f64,
    /// livekit-server's and livekit-sip's CPU over the window, % of one core (they serve
    /// every system alike: for scale).
    pub livekit_cpu_pct: f64,
    pub sip_cpu_pct: f64,
    /// Calls that did not answer, or what else went wrong.
    pub notes: String,
}

/// What [`row`] is computed from.
pub(super) struct Inputs<'a> {
    pub system: String,
    pub n: usize,
    pub live: usize,
    pub ramp_s: Option<f64>,
    pub wall: f64,
    pub idle: Sample,
    pub s0: Sample,
    pub s1: Sample,
    pub server_cpu: (f64, f64),
    pub packets: usize,
    pub heard_frames: usize,
    /// The length of each run of agent speech heard, in frames.
    pub bursts: &'a [f64],
    pub results: &'a [CallResult],
    pub script: &'a Script,
}

pub(super) fn row(i: Inputs<'_>) -> DensityRow {
    let live = i.live.max(1) as f64;
    let cpu = (i.s1.cpu_s - i.s0.cpu_s) / i.wall * 100.0;
    let mb = |kb: f64| kb / 1024.0;
    let turns: Vec<_> = i
        .results
        .iter()
        .flat_map(|r| r.turns.iter())
        .filter(|t| t.response_ms.is_some())
        .collect();
    let interrupted = turns.iter().filter(|t| t.interrupted).count();
    let spoken = turns.len() - interrupted;
    let scripted = (i.script.llm_ttft_ms + i.script.tts_ttfb_ms) as f64;
    let response: Vec<f64> = turns.iter().filter_map(|t| t.response_ms).collect();
    let added: Vec<f64> = response.iter().map(|r| r - scripted).collect();
    let overhead: Vec<f64> = turns
        .iter()
        .filter_map(|t| Some(t.response_ms? - t.llm_ttft_ms? - t.tts_ttfb_ms?))
        .collect();
    let unanswered: Vec<&str> = i
        .results
        .iter()
        .filter(|r| !r.answered)
        .map(|r| r.outcome.as_str())
        .collect();
    let mut notes = String::new();
    if !unanswered.is_empty() {
        let _ = write!(
            notes,
            "{} not answered ({:?}); ",
            unanswered.len(),
            unanswered
        );
    }
    if !i.bursts.is_empty() {
        let _ = write!(
            notes,
            "agent speech heard as {} bursts of {:.0} frames at the median (min {:.0}, max {:.0}; a reply is {:.0}); ",
            i.bursts.len(),
            quantile(i.bursts, 0.5),
            quantile(i.bursts, 0.0),
            quantile(i.bursts, 1.0),
            i.script.reply_frames(),
        );
    }
    if i.ramp_s.is_none() {
        notes.push_str("not every call came up before the ramp limit; ");
    }
    DensityRow {
        system: i.system,
        n: i.n,
        live: i.live,
        ramp_s: i.ramp_s,
        window_s: i.wall,
        cpu_pct_per_call: cpu / live,
        cpu_pct_total: cpu,
        rss_mb_per_call: mb(i.s1.rss_kb - i.idle.rss_kb) / live,
        rss_mb_total: mb(i.s1.rss_kb),
        pss_mb_per_call: mb(i.s1.pss_kb - i.idle.pss_kb) / live,
        pss_mb_total: mb(i.s1.pss_kb),
        procs: i.s1.procs,
        rtp_ratio: i.packets as f64 / (live * 50.0 * i.wall),
        frames_ratio: i.heard_frames as f64 / (spoken as f64 * i.script.reply_frames()).max(1.0),
        turns: turns.len(),
        interrupted,
        response_p50_ms: quantile(&response, 0.5),
        response_p99_ms: quantile(&response, 0.99),
        added_p50_ms: quantile(&added, 0.5),
        added_p99_ms: quantile(&added, 0.99),
        overhead_p50_ms: quantile(&overhead, 0.5),
        overhead_p99_ms: quantile(&overhead, 0.99),
        livekit_cpu_pct: i.server_cpu.0 * 100.0,
        sip_cpu_pct: i.server_cpu.1 * 100.0,
        notes,
    }
}

impl DensityRow {
    /// Every call came up and was live through the window: per-call figures mean something.
    pub fn measured(&self) -> bool {
        self.ramp_s.is_some() && self.live > 0
    }
}

/// The rows as a Markdown table (any systems, in the order given).
pub fn table(rows: &[DensityRow]) -> String {
    let mut out = String::from(
        "| system | N | live | ramp / window s | CPU % of a core per call (total) | RSS MB per call (total) | PSS MB per call (total) | procs | RTP to callees | agent speech heard / sent | turns (interrupted) | response p50 / p99 ms | added beyond providers p50 / p99 ms | turn overhead p50 / p99 ms | livekit-server CPU % | livekit-sip CPU % |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let ramp = r.ramp_s.map_or("-".to_owned(), |s| format!("{s:.1}"));
        let ramp = format!("{ramp} / {:.0}", r.window_s);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {ramp} | {:.2} ({:.1}) | {:.2} ({:.0}) | {:.2} ({:.0}) | {} | {:.3} | {:.3} | {} ({}) | {:.0} / {:.0} | {:.1} / {:.1} | {:.1} / {:.1} | {:.0} | {:.0} |",
            r.system,
            r.n,
            r.live,
            r.cpu_pct_per_call,
            r.cpu_pct_total,
            r.rss_mb_per_call,
            r.rss_mb_total,
            r.pss_mb_per_call,
            r.pss_mb_total,
            r.procs,
            r.rtp_ratio,
            r.frames_ratio,
            r.turns,
            r.interrupted,
            r.response_p50_ms,
            r.response_p99_ms,
            r.added_p50_ms,
            r.added_p99_ms,
            r.overhead_p50_ms,
            r.overhead_p99_ms,
            r.livekit_cpu_pct,
            r.sip_cpu_pct,
        );
    }
    let notes: Vec<String> = rows
        .iter()
        .filter(|r| !r.notes.is_empty())
        .map(|r| {
            format!(
                "- {} N={}: {}",
                r.system,
                r.n,
                r.notes.trim_end_matches("; ")
            )
        })
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        out.push_str(&notes.join("\n"));
        out.push('\n');
    }
    out
}

/// The density target: live calls per core and MB per call in the worker.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub calls_per_core: f64,
    pub mb_per_call: f64,
}

impl Default for Target {
    /// DESIGN §9: at least 100 live calls per core, at most 5 MB per call.
    fn default() -> Self {
        Self {
            calls_per_core: 100.0,
            mb_per_call: 5.0,
        }
    }
}

/// Each row against the target: calls per core (100 / CPU % per call) and RSS per call.
pub fn verdict(rows: &[DensityRow], target: Target) -> String {
    let mut out = format!(
        "| system | N | live calls per core | target >= {:.0} | RSS MB per call | target <= {:.0} MB |\n|---|---|---|---|---|---|\n",
        target.calls_per_core, target.mb_per_call
    );
    for r in rows {
        if !r.measured() {
            let _ = writeln!(
                out,
                "| {} | {} | not measured: not every call came up | - | - | - |",
                r.system, r.n
            );
            continue;
        }
        let per_core = 100.0 / r.cpu_pct_per_call;
        let _ = writeln!(
            out,
            "| {} | {} | {per_core:.0} | {} ({:.2}x) | {:.2} | {} ({:.2}x) |",
            r.system,
            r.n,
            if per_core >= target.calls_per_core {
                "met"
            } else {
                "not met"
            },
            per_core / target.calls_per_core,
            r.rss_mb_per_call,
            if r.rss_mb_per_call <= target.mb_per_call {
                "met"
            } else {
                "not met"
            },
            target.mb_per_call / r.rss_mb_per_call,
        );
    }
    out
}

/// How much denser `base` is than `peer` at each size both ran: peer / base of CPU, RSS and
/// PSS per call (a ratio above 1 means `base` uses less).
pub fn ratios(rows: &[DensityRow], base: &str, peer: &str) -> String {
    let mut out = format!(
        "| N | CPU per call, {peer} / {base} | RSS per call | PSS per call |\n|---|---|---|---|\n"
    );
    for b in rows.iter().filter(|r| r.system == base) {
        let Some(p) = rows.iter().find(|r| r.system == peer && r.n == b.n) else {
            continue;
        };
        if !b.measured() || !p.measured() {
            let _ = writeln!(
                out,
                "| {} | not measured: not every call came up | - | - |",
                b.n
            );
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {:.1}x | {:.1}x | {:.1}x |",
            b.n,
            p.cpu_pct_per_call / b.cpu_pct_per_call,
            p.rss_mb_per_call / b.rss_mb_per_call,
            p.pss_mb_per_call / b.pss_mb_per_call,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::Turn;

    fn sample(cpu_s: f64, rss_mb: f64) -> Sample {
        Sample {
            cpu_s,
            rss_kb: rss_mb * 1024.0,
            pss_kb: rss_mb * 1024.0,
            procs: 1,
        }
    }

    #[test]
    fn a_row_is_per_live_call_and_latency_is_net_of_providers() {
        let turn = |response, llm, tts| Turn {
            response_ms: Some(response),
            llm_ttft_ms: Some(llm),
            tts_ttfb_ms: Some(tts),
            interrupted: false,
        };
        let results = vec![CallResult {
            id: "a".into(),
            answered: true,
            outcome: "answered/callee_hangup".into(),
            turns: vec![turn(460.0, 305.0, 152.0), turn(470.0, 310.0, 155.0)],
        }];
        let script = Script::default();
        let r = row(Inputs {
            system: "x".into(),
            n: 10,
            live: 10,
            ramp_s: Some(3.0),
            wall: 10.0,
            idle: sample(0.0, 20.0),
            s0: sample(5.0, 40.0),
            s1: sample(6.0, 40.0),
            server_cpu: (0.5, 0.25),
            packets: 5000,
            heard_frames: (2.0 * script.reply_frames()) as usize,
            bursts: &[],
            results: &results,
            script: &script,
        });
        assert!((r.cpu_pct_per_call - 1.0).abs() < 1e-9, "{r:?}");
        assert!((r.rss_mb_per_call - 2.0).abs() < 1e-9);
        assert!((r.rtp_ratio - 1.0).abs() < 1e-9);
        assert!((r.frames_ratio - 1.0).abs() < 1e-9);
        assert_eq!(r.added_p50_ms, 10.0);
        assert_eq!(r.overhead_p99_ms, 5.0);
        assert_eq!(r.livekit_cpu_pct, 50.0);
        let md = table(std::slice::from_ref(&r));
        assert!(md.contains("| x | 10 | 10 | 3.0 / 10 |"), "{md}");
        assert!(verdict(&[r], Target::default()).contains("| 100 | met"));
    }
}
