//! The voice engine's VAD candidates side by side on a phone-line corpus, in one run so the
//! numbers compare: false speech on line noise, music on hold, tones and far-field chatter;
//! misses on the callee's quiet speech; onset latency; CPU per session.
//!
//! The corpus (`tests/tools/vad_corpus.py`, espeak-ng + sox, nothing downloaded) is made on
//! first use in `bench/tmp/vad-corpus`. Every clip is fed in 20 ms frames at 16 kHz to a fresh
//! detector (one call each), with the engine's default `activation` (60 ms) and `min_silence`
//! (250 ms) for every detector.
//!
//! `cargo bench -p callfleet-tests --bench vad_bench > bench/vad.md`

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use callfleet_tests::bench::cpu_seconds;
use callfleet_voice::vad::{Detector, Prepared, SpeechDetector, VadEvent, VadOptions, WebRtcMode};
use serde_json::Value;

const FRAME: usize = 320;
const FRAME_MS: f64 = 20.0;
/// An utterance counts as found if StartOfSpeech fires before its end plus this.
const GRACE_FRAMES: usize = 15;

struct Clip {
    name: String,
    category: String,
    note: String,
    samples: Vec<i16>,
    labels: Vec<bool>,
    utterances: Vec<(usize, usize)>,
}

/// What one detector did on one clip.
#[derive(Default, Clone)]
struct Run {
    frames: usize,
    nonspeech: usize,
    false_frames: usize,
    speech: usize,
    missed_frames: usize,
    starts: usize,
    utterances: usize,
    found: usize,
    onsets_ms: Vec<f64>,
}

impl Run {
    fn add(&mut self, o: &Run) {
        self.frames += o.frames;
        self.nonspeech += o.nonspeech;
        self.false_frames += o.false_frames;
        self.speech += o.speech;
        self.missed_frames += o.missed_frames;
        self.starts += o.starts;
        self.utterances += o.utterances;
        self.found += o.found;
        self.onsets_ms.extend_from_slice(&o.onsets_ms);
    }

    fn minutes(&self) -> f64 {
        self.frames as f64 * FRAME_MS / 60_000.0
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dir = root.join("bench/tmp/vad-corpus");
    for arg in std::env::args().skip(1) {
        if let Some(v) = arg.strip_prefix("corpus=") {
            dir = PathBuf::from(v);
        }
    }
    let clips = load(&root, &dir);
    let detectors: Vec<(&str, Detector)> = vec![
        ("energy (current)", Detector::Energy),
        (
            "webrtc aggressive",
            Detector::WebRtc(WebRtcMode::Aggressive),
        ),
        (
            "webrtc very aggressive",
            Detector::WebRtc(WebRtcMode::VeryAggressive),
        ),
        ("earshot 0.5", Detector::Earshot { threshold: 0.5 }),
        ("silero 0.5", Detector::silero_dev()),
    ];
    let mut results = Vec::new();
    for (label, detector) in &detectors {
        let opts = VadOptions::default().with_detector(detector.clone());
        let prepared = Prepared::new(&opts).unwrap_or_else(|e| {
            panic!("{label}: {}", callfleet_voice::error_chain(&e));
        });
        let cpu0 = cpu_seconds();
        let runs: Vec<Run> = clips.iter().map(|c| run(prepared.start(), c)).collect();
        let cpu = cpu_seconds() - cpu0;
        results.push((*label, runs, cpu));
    }
    report(&clips, &results);
}

/// The corpus, made first if it is not there yet.
fn load(root: &Path, dir: &Path) -> Vec<Clip> {
    let manifest = dir.join("manifest.json");
    if !manifest.exists() {
        let script = root.join("tests/tools/vad_corpus.py");
        let status = Command::new("python3").arg(&script).arg(dir).status();
        match status {
            Ok(s) if s.success() => {}
            other => panic!(
                "could not make the VAD corpus with {} ({other:?}): it needs python3, espeak-ng \
                 and sox (`apt-get install python3 espeak-ng sox`; make setup installs them)",
                script.display()
            ),
        }
    }
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let s = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_owned();
    v["clips"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let path = dir.join(s(c, "file"));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let samples = bytes
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            let utterances = c["utterances"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|u| Some((u[0].as_u64()? as usize, u[1].as_u64()? as usize)))
                .collect();
            Clip {
                name: s(c, "name"),
                category: s(c, "category"),
                note: s(c, "note"),
                samples,
                labels: s(c, "labels").bytes().map(|b| b == b'1').collect(),
                utterances,
            }
        })
        .collect()
}

fn run(mut vad: impl SpeechDetector, clip: &Clip) -> Run {
    let mut r = Run::default();
    let mut starts = Vec::new();
    for (i, f) in clip.samples.chunks_exact(FRAME).enumerate() {
        if let Some(VadEvent::StartOfSpeech { .. }) = vad.push(f, 16_000) {
            starts.push(i);
        }
        let said = vad.last_frame_speech();
        let truth = clip.labels.get(i).copied().unwrap_or(false);
        r.frames += 1;
        if truth {
            r.speech += 1;
            r.missed_frames += usize::from(!said);
        } else {
            r.nonspeech += 1;
            r.false_frames += usize::from(said);
        }
    }
    for &(a, b) in &clip.utterances {
        r.utterances += 1;
        if let Some(&s) = starts.iter().find(|&&s| s + 1 >= a && s < b + GRACE_FRAMES) {
            r.found += 1;
            r.onsets_ms.push((s + 1 - a) as f64 * FRAME_MS);
        }
    }
    // Starts that belong to no utterance are spurious (all of them on non-speech clips).
    r.starts = starts
        .iter()
        .filter(|&&s| {
            !clip
                .utterances
                .iter()
                .any(|&(a, b)| s + 1 >= a && s < b + GRACE_FRAMES)
        })
        .count();
    r
}

fn total(clips: &[Clip], runs: &[Run], keep: impl Fn(&Clip) -> bool) -> Run {
    let mut t = Run::default();
    for (c, r) in clips.iter().zip(runs) {
        if keep(c) {
            t.add(r);
        }
    }
    t
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "–".into()
    } else {
        format!("{:.1} %", 100.0 * n as f64 / d as f64)
    }
}

fn quantile(v: &[f64], q: f64) -> String {
    if v.is_empty() {
        return "–".into();
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    format!("{:.0}", v[i])
}

type Results<'a> = [(&'a str, Vec<Run>, f64)];

fn report(clips: &[Clip], results: &Results) {
    let frames: usize = clips.iter().map(|c| c.samples.len() / FRAME).sum();
    println!("# VAD on phone lines\n");
    println!(
        "`cargo bench -p callfleet-tests --bench vad_bench` on {} clips, {:.0} s of audio \
         (`tests/tools/vad_corpus.py`: built at 8 kHz, 300–3400 Hz, G.711 mu-law round trip, \
         fed at 16 kHz in 20 ms frames, a fresh detector per clip, `activation` 60 ms and \
         `min_silence` 250 ms for all). Chatter is far-field background talk: it is speech, \
         but not the callee's, so it is labelled non-speech and every StartOfSpeech on it \
         would be a false barge-in.\n",
        clips.len(),
        frames as f64 * FRAME_MS / 1000.0
    );
    println!(
        "## False speech (non-speech frames called speech · spurious StartOfSpeech per minute)\n"
    );
    let cats = ["noise", "music", "tones", "chatter"];
    print!("| detector |");
    for c in cats {
        print!(" {c} |");
    }
    println!(" quiet-speech clips' gaps |");
    println!("|---|{}---|", "---|".repeat(cats.len()));
    for (label, runs, _) in results {
        print!("| {label} |");
        for cat in cats {
            let t = total(clips, runs, |c| c.category == cat);
            print!(
                " {} · {:.1}/min |",
                pct(t.false_frames, t.nonspeech),
                t.starts as f64 / t.minutes()
            );
        }
        let t = total(clips, runs, |c| c.category == "quiet");
        println!(
            " {} · {:.1}/min |",
            pct(t.false_frames, t.nonspeech),
            t.starts as f64 / t.minutes()
        );
    }
    println!(
        "\n## Quiet speech (speech frames missed · utterances never detected · onset p50/p90 ms)\n"
    );
    let levels = [
        ("-26", "reference -26 dBFS"),
        ("-35", "-35 dBFS"),
        ("-40", "-40 dBFS"),
        ("-45", "-45 dBFS"),
    ];
    print!("| detector |");
    for (_, l) in levels {
        print!(" {l} |");
    }
    println!(" all quiet (-35…-45) |");
    println!("|---|{}---|", "---|".repeat(levels.len()));
    for (label, runs, _) in results {
        print!("| {label} |");
        for (lv, _) in levels {
            let t = total(clips, runs, |c| c.name.starts_with(&format!("speech{lv}-")));
            print!(" {} |", speech_cell(&t));
        }
        let t = total(clips, runs, |c| c.category == "quiet");
        println!(" {} |", speech_cell(&t));
    }
    println!("\n## CPU (this machine, one thread)\n");
    println!("| detector | µs per 20 ms frame | % of a core per session | sessions per core |");
    println!("|---|---|---|---|");
    for (label, _, cpu) in results {
        let us = cpu * 1e6 / frames as f64;
        let share = us / (FRAME_MS * 1000.0) * 100.0;
        let per_core = if share > 0.0 {
            format!("{:.0}", 100.0 / share)
        } else {
            "–".into()
        };
        println!("| {label} | {us:.2} | {share:.3} % | {per_core} |");
    }
    println!("\n## Per clip (spurious StartOfSpeech; for speech clips: utterances found of 12)\n");
    print!("| clip | what |");
    for (label, _, _) in results {
        print!(" {label} |");
    }
    println!();
    println!("|---|---|{}", "---|".repeat(results.len()));
    for (i, c) in clips.iter().enumerate() {
        print!("| {} | {} |", c.name, c.note);
        for (_, runs, _) in results {
            let r = &runs[i];
            if r.utterances > 0 {
                print!(" {} · {}/{} |", r.starts, r.found, r.utterances);
            } else {
                print!(" {} |", r.starts);
            }
        }
        println!();
    }
}

fn speech_cell(t: &Run) -> String {
    format!(
        "{} · {} · {}/{}",
        pct(t.missed_frames, t.speech),
        pct(t.utterances - t.found, t.utterances),
        quantile(&t.onsets_ms, 0.5),
        quantile(&t.onsets_ms, 0.9)
    )
}
