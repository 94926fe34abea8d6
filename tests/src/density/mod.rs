//! End-to-end density: N concurrent real calls through livekit-server and livekit-sip to SIPp
//! callees that talk and listen, with a voice agent on every call against the local provider
//! stand-ins at realistic latency, and the agent's process tree measured while all N are live.
//!
//! # The pieces
//! - [`Bed`] (`bed.rs`): what every system under test shares in one run: the telephony rig
//!   (redis, livekit-server, livekit-sip), one SIPp callee with its RTP tap and an outbound
//!   trunk to it, and the provider stand-ins (OpenAI-compatible LLM, Deepgram STT, Cartesia
//!   TTS) scripted by [`Script`]: the callee says "Hello, who is this?" every
//!   `TALK_PERIOD_SECS` ([`crate::Behaviour::Talker`]), the STT sends its final transcript
//!   just after the words, the LLM answers [`Script::reply`] after [`Script::llm_ttft_ms`],
//!   the TTS speaks it after [`Script::tts_ttfb_ms`] at [`Script::tts_ms_per_char`].
//! - [`System`]: one voice-agent stack under test. callfleet is [`Callfleet`]
//!   (`callfleet.rs`); another stack (LiveKit Agents) implements the same trait.
//! - [`measure`]: one size N for one system, giving a [`DensityRow`]; [`table`],
//!   [`verdict`] and [`ratios`] turn rows into Markdown.
//!
//! # Implementing [`System`]
//! For each size the harness calls, in order:
//! 1. [`System::start`]`(bed, slots)`: start the stack's processes against `bed` (LiveKit
//!    URL and keys: `bed.telephony.livekit`; the trunk to the callee: `bed.callee.trunk_id`,
//!    calling from [`Bed::from_number`]; provider base URLs and keys: [`Bed::env`], the names
//!    `OPENAI_BASE_URL`, `DEEPGRAM_BASE_URL`, `CARTESIA_BASE_URL` and their `*_API_KEY`s),
//!    able to hold `slots` calls at once, and return once it is idle and ready. The harness
//!    then reads the idle footprint of [`System::pids`].
//! 2. [`System::place`]`(bed, calls)`: dial every [`Call::destination`] through the trunk
//!    (callfleet publishes jobs; LiveKit Agents would use CreateAgentDispatch and
//!    CreateSIPParticipant) and return once they are placed, not answered. Each callee talks,
//!    listens, and hangs up by itself after the hold the harness chose (the number says so).
//! 3. While all calls are live the harness samples [`System::pids`] (each pid with all its
//!    descendants: CPU, RSS and PSS summed; see `procs.rs`), livekit-server and livekit-sip.
//! 4. [`System::finish`]`(bed, calls, within)`: wait (at most `within`) until the calls are
//!    over and return each call's [`CallResult`]: per agent turn, the interval from the
//!    end-of-turn decision to the first agent audio frame handed to the transport
//!    ([`Turn::response_ms`]) and the provider latencies the agent's clients measured
//!    inside it ([`Turn::llm_ttft_ms`]: request sent to first token; [`Turn::tts_ttfb_ms`]:
//!    first text sent to first audio). Preemptive generation must be off, so the reply's
//!    LLM request starts at the end of turn.
//! 5. [`System::stop`]: stop the processes (the next size starts fresh).
//!
//! Frames delivered are counted at the callee's RTP tap, whatever the system.

mod bed;
mod callfleet;
mod livekit_agents;
pub mod procs;
mod report;

use std::{future::Future, time::Duration};

pub use bed::{Bed, Script};
pub use callfleet::Callfleet;
pub use livekit_agents::LiveKitAgents;
pub use report::{DensityRow, Target, ratios, table, verdict};

use crate::tap::SPEECH_DBFS;

/// One call to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Unique in the run (letters, digits and `-`).
    pub id: String,
    /// The callee's number (E.164), a [`crate::Behaviour::Talker`] with the hold chosen.
    pub destination: String,
}

/// One agent turn, as the system measured it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Turn {
    /// End-of-turn decision to the first agent audio frame handed to the transport, in ms.
    /// `None`: the agent never spoke on this turn.
    pub response_ms: Option<f64>,
    /// LLM request sent to its first token, in ms.
    pub llm_ttft_ms: Option<f64>,
    /// First text sent to the TTS to its first audio, in ms.
    pub tts_ttfb_ms: Option<f64>,
    /// The callee interrupted the reply (its audio was cut).
    pub interrupted: bool,
}

/// How one call went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallResult {
    pub id: String,
    /// The callee answered and the agent ran.
    pub answered: bool,
    /// The system's own outcome / end reason, for the notes.
    pub outcome: String,
    pub turns: Vec<Turn>,
}

/// A voice-agent stack under test. See the module's doc for the order of calls.
pub trait System {
    /// The row's name, with what differs between runs (e.g. `callfleet (energy VAD)`).
    fn name(&self) -> String;
    /// Start, idle and ready to hold `slots` calls at once.
    fn start(&mut self, bed: &Bed, slots: usize) -> impl Future<Output = Result<(), String>>;
    /// The roots of the process trees to measure (every descendant counts).
    fn pids(&self) -> Vec<u32>;
    /// Place the calls; return once placed.
    fn place(&mut self, bed: &Bed, calls: &[Call]) -> impl Future<Output = Result<(), String>>;
    /// Wait at most `within` for the calls to end; what each did.
    fn finish(
        &mut self,
        bed: &Bed,
        calls: &[Call],
        within: Duration,
    ) -> impl Future<Output = Result<Vec<CallResult>, String>>;
    /// Stop the processes.
    fn stop(&mut self) -> impl Future<Output = ()>;
}

/// How long each size runs.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// The steady window measured with every call live.
    pub window: Duration,
}

/// The nearest-rank quantile `q` of `v` (NaN when empty).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// How long the callees of `n` calls stay: enough for the calls to come up and the window,
/// a whole number of talk periods (so the callee hangs up as it starts to talk, never
/// while the agent's reply plays), at most 96 s (the number carries two digits).
pub fn hold_secs(n: usize, window: Duration) -> u8 {
    let period = callfleet_rig::callee::TALK_PERIOD_SECS;
    let ramp = 10 + n as u64 / 5;
    let want = window.as_secs() + ramp;
    let periods = want.div_ceil(period).min(96 / period);
    u8::try_from(periods * period).unwrap_or(96)
}

/// The lengths (in frames) of the runs of speech frames in `levels`: each reply the callee
/// heard, if none was cut (a gap of up to 3 quiet frames is inside a run).
fn bursts(levels: &[crate::tap::Level]) -> Vec<f64> {
    let mut out = Vec::new();
    let (mut run, mut quiet) = (0usize, 0usize);
    for l in levels {
        if l.dbfs >= SPEECH_DBFS {
            run += 1 + quiet.min(3) * usize::from(run > 0);
            quiet = 0;
        } else {
            quiet += 1;
            if quiet > 3 && run > 0 {
                out.push(run as f64);
                run = 0;
            }
        }
    }
    if run > 0 {
        out.push(run as f64);
    }
    out
}

/// One size for one system: place `n` calls, measure the window with all of them live,
/// collect their turns. `Err` when the system failed to start or place the calls.
pub async fn measure<S: System>(
    bed: &Bed,
    system: &mut S,
    n: usize,
    plan: Plan,
) -> Result<DensityRow, String> {
    let hold = hold_secs(n, plan.window);
    system.start(bed, n).await?;
    tokio::time::sleep(Duration::from_secs(2)).await; // settle before the idle reading
    let roots = system.pids();
    let idle = procs::sample(&roots);
    let calls = bed.calls(n, hold);
    let tap = bed.callee.tap();
    let before = tap.source_count();
    let placed = tokio::time::Instant::now();
    if let Err(e) = system.place(bed, &calls).await {
        system.stop().await;
        return Err(e);
    }
    // Every answered call sends RTP toward the tap (one source per call).
    let ramp_limit = crate::scaled(Duration::from_secs(30 + n as u64));
    let mut ramp_done = false;
    while placed.elapsed() < ramp_limit {
        if tap.source_count() >= before + n {
            ramp_done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ramp_s = placed.elapsed().as_secs_f64();
    let new = |s: Vec<crate::tap::Stream>| s.into_iter().skip(before).collect::<Vec<_>>();
    let first_at = new(tap.streams())
        .iter()
        .map(|s| s.first_at)
        .min()
        .unwrap_or_else(std::time::Instant::now);
    // The window ends before the first callee hangs up.
    let start = std::time::Instant::now();
    let last_end = first_at + Duration::from_secs(u64::from(hold).saturating_sub(3));
    let end = (start + plan.window).min(last_end).max(start);
    let s0 = procs::sample(&roots);
    let (lk0, sip0) = bed.server_cpu();
    tokio::time::sleep(end.saturating_duration_since(std::time::Instant::now())).await;
    let s1 = procs::sample(&roots);
    let (lk1, sip1) = bed.server_cpu();
    let wall = start.elapsed().as_secs_f64();
    let streams = new(tap.streams());
    let live_at = |t: std::time::Instant| {
        streams
            .iter()
            .filter(|s| {
                s.packets
                    .iter()
                    .any(|p| p.at <= t && t.duration_since(p.at) < Duration::from_secs(1))
            })
            .count()
    };
    let live = live_at(start + Duration::from_millis(500)).min(live_at(end));
    let packets: usize = streams
        .iter()
        .map(|s| {
            s.packets
                .iter()
                .filter(|p| p.at >= start && p.at < end)
                .count()
        })
        .sum();

    let within = Duration::from_secs(u64::from(hold) + 60);
    let results = system.finish(bed, &calls, within).await;
    system.stop().await;
    let results = results?;
    // The agent's speech as the callees heard it, over whole calls.
    let streams = new(tap.streams());
    let heard_frames: usize = streams
        .iter()
        .map(|s| s.levels.iter().filter(|l| l.dbfs >= SPEECH_DBFS).count())
        .sum();
    let bursts: Vec<f64> = streams.iter().flat_map(|s| bursts(&s.levels)).collect();
    Ok(report::row(report::Inputs {
        system: system.name(),
        n,
        live,
        ramp_s: if ramp_done { Some(ramp_s) } else { None },
        wall,
        idle,
        s0,
        s1,
        server_cpu: ((lk1 - lk0) / wall, (sip1 - sip0) / wall),
        packets,
        heard_frames,
        bursts: &bursts,
        results: &results,
        script: &bed.script,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_are_whole_talk_periods_that_outlast_the_ramp_and_window() {
        let period = callfleet_rig::callee::TALK_PERIOD_SECS as u8;
        for (n, secs) in [(10, 30), (25, 30), (50, 30), (2, 5), (500, 90)] {
            let hold = hold_secs(n, Duration::from_secs(secs));
            assert_eq!(hold % period, 0, "N={n}: {hold}");
            assert!(hold <= 96, "two digits: {hold}");
            assert!(
                u64::from(hold) >= (secs + 10).min(96),
                "N={n}, {secs} s: {hold}"
            );
        }
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&[3.0], 0.99), 3.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
