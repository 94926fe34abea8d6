//! Voice activity detection: is the callee speaking? Barge-in (`engine/input.rs`) and the
//! answering-machine classifier stand on it, so a false "speech" on line noise, music on hold
//! or background chatter interrupts the agent, and a missed quiet "hello?" is ignored.
//!
//! Four detectors behind one [`SpeechDetector`] shape, chosen by [`VadOptions::detector`] and
//! measured side by side on a phone-line corpus by `tests/benches/vad_bench.rs`
//! (bench/vad.md has the numbers and the reasons for the default):
//!
//! - `energy`: level above an adaptive floor; no model, but anything loud is speech to it;
//! - `webrtc`: WebRTC's GMM VAD (earshot 0.1's port to Rust);
//! - `earshot`: earshot 1.x's small neural VAD, weights inside the crate;
//! - `silero`: Silero VAD v6 on tract, the model file fetched by `make setup`.
//!
//! Each detector only decides, window by window, whether audio is speech; the `gate` turns
//! those decisions into [`VadEvent`]s with the same `activation` and `min_silence` for all.
//! [`Prepared`] is built once per session (it loads Silero's model, so a missing model fails
//! the session's construction) and starts a fresh [`Vad`] per run.

mod earshot;
mod energy;
mod gate;
mod options;
mod silero;
#[cfg(test)]
mod test_audio;
mod webrtc;
mod window;

use std::time::Duration;

pub use options::{Detector, VadError, VadEvent, VadOptions, dev_model_path, level_dbfs};
pub use silero::SileroModel;
pub use webrtc::WebRtcMode;

use gate::Gate;

/// What the engine asks of a detector.
pub trait SpeechDetector {
    /// Feed one frame (any length, any rate; model detectors resample to 16 kHz); returns a
    /// transition if this frame completed one.
    fn push(&mut self, samples: &[i16], rate: u32) -> Option<VadEvent>;
    /// Inside speech (between `StartOfSpeech` and `EndOfSpeech`).
    fn speaking(&self) -> bool;
    /// How long the input has been quiet (zero while a window is speech), even before the
    /// silence is long enough to end the speech.
    fn silence_run(&self) -> Duration;
    /// Whether the last decided window was speech, before any hysteresis: the per-frame flag
    /// the answering-machine classifier takes. A model detector decides per window (20, 16 or
    /// 32 ms), so a frame that completed no window repeats the previous decision.
    fn last_frame_speech(&self) -> bool;
}

/// A session's detector choice, ready to start runs: Silero's model is loaded here, once.
#[derive(Debug, Clone)]
pub struct Prepared {
    opts: VadOptions,
    silero: Option<(SileroModel, f32)>,
}

impl Prepared {
    pub fn new(opts: &VadOptions) -> Result<Self, VadError> {
        let silero = match &opts.detector {
            Detector::Silero { model, threshold } => Some((SileroModel::load(model)?, *threshold)),
            _ => None,
        };
        Ok(Self {
            opts: opts.clone(),
            silero,
        })
    }

    /// A fresh detector for one run.
    pub fn start(&self) -> Vad {
        let gate = Gate::new(self.opts.activation, self.opts.min_silence);
        let kind = match (&self.opts.detector, &self.silero) {
            (Detector::Silero { .. }, Some((model, threshold))) => Kind::Silero(
                Box::new(silero::Silero::new(model.clone())),
                Score::new(*threshold),
            ),
            (Detector::WebRtc(mode), _) => Kind::WebRtc(Box::new(webrtc::WebRtc::new(*mode))),
            (Detector::Earshot { threshold }, _) => {
                Kind::Earshot(earshot::Earshot::new(), Score::new(*threshold))
            }
            // `new` loaded the model for Silero, so this arm is Energy.
            _ => Kind::Energy(energy::Energy::new(&self.opts)),
        };
        Vad { gate, kind }
    }
}

/// One run's detector: the chosen classifier and the shared gate, dispatched statically.
#[derive(Debug)]
pub struct Vad {
    gate: Gate,
    kind: Kind,
}

#[derive(Debug)]
// Boxed: the WebRTC and Silero states are hundreds of bytes, the energy VAD's a dozen.
enum Kind {
    Energy(energy::Energy),
    WebRtc(Box<webrtc::WebRtc>),
    Earshot(earshot::Earshot, Score),
    Silero(Box<silero::Silero>, Score),
}

impl Vad {
    /// The energy detector, which needs no preparation (tests, tools).
    pub fn energy(opts: &VadOptions) -> Self {
        Self {
            gate: Gate::new(opts.activation, opts.min_silence),
            kind: Kind::Energy(energy::Energy::new(opts)),
        }
    }

    /// The detector's name, as in [`Detector::name`].
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Energy(_) => "energy",
            Kind::WebRtc(_) => "webrtc",
            Kind::Earshot(..) => "earshot",
            Kind::Silero(..) => "silero",
        }
    }
}

// Inherent methods, so the engine calls them without importing the trait; the trait is for code
// generic over detectors (the bench, the answering-machine classifier's tests).
impl Vad {
    /// See [`SpeechDetector::push`].
    pub fn push(&mut self, samples: &[i16], rate: u32) -> Option<VadEvent> {
        if samples.is_empty() || rate == 0 {
            return None;
        }
        let gate = &mut self.gate;
        let mut event = None;
        let mut note = |e: Option<VadEvent>| event = e.or(event);
        match &mut self.kind {
            Kind::Energy(e) => {
                let dur = crate::audio::samples_to_duration(samples.len(), rate);
                let speech = e.classify(samples, gate.speaking());
                note(gate.update(speech, dur));
            }
            Kind::WebRtc(d) => {
                let dur = d.window();
                d.push(samples, rate, |p| note(gate.update(p >= 0.5, dur)));
            }
            Kind::Earshot(d, score) => {
                let dur = d.window();
                d.push(samples, rate, |p| {
                    let speech = score.decide(p, gate.speaking());
                    note(gate.update(speech, dur));
                });
            }
            Kind::Silero(d, score) => {
                let dur = d.window();
                d.push(samples, rate, |p| {
                    let speech = score.decide(p, gate.speaking());
                    note(gate.update(speech, dur));
                });
            }
        }
        event
    }

    pub fn speaking(&self) -> bool {
        self.gate.speaking()
    }

    pub fn silence_run(&self) -> Duration {
        self.gate.silence_run()
    }

    pub fn last_frame_speech(&self) -> bool {
        self.gate.last()
    }
}

impl SpeechDetector for Vad {
    fn push(&mut self, samples: &[i16], rate: u32) -> Option<VadEvent> {
        Vad::push(self, samples, rate)
    }

    fn speaking(&self) -> bool {
        Vad::speaking(self)
    }

    fn silence_run(&self) -> Duration {
        Vad::silence_run(self)
    }

    fn last_frame_speech(&self) -> bool {
        Vad::last_frame_speech(self)
    }
}

/// A probability to a decision, with Silero's own hysteresis: speech starts at `threshold` and,
/// once the callee speaks, lasts down to `threshold - 0.15`.
#[derive(Debug, Clone, Copy)]
struct Score {
    threshold: f32,
}

impl Score {
    fn new(threshold: f32) -> Self {
        Self { threshold }
    }

    fn decide(&self, p: f32, speaking: bool) -> bool {
        let t = if speaking {
            self.threshold - 0.15
        } else {
            self.threshold
        };
        p >= t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: usize, amp: f64) -> Vec<i16> {
        (0..ms * 16)
            .map(|i| (amp * (i as f64 * 0.05).sin() * 32767.0) as i16)
            .collect()
    }

    #[test]
    fn detects_speech_between_silences() {
        let mut vad = Vad::energy(&VadOptions::default());
        let mut events = Vec::new();
        let mut feed = |s: Vec<i16>| {
            for f in s.chunks(320) {
                if let Some(e) = vad.push(f, 16_000) {
                    events.push(e);
                }
            }
        };
        feed(tone(500, 0.001));
        feed(tone(800, 0.3));
        feed(tone(600, 0.001));
        assert!(matches!(events[0], VadEvent::StartOfSpeech { .. }));
        assert!(matches!(events[1], VadEvent::EndOfSpeech { .. }));
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn ignores_a_click() {
        let mut vad = Vad::energy(&VadOptions::default());
        let mut n = 0;
        for s in [tone(300, 0.001), tone(20, 0.8), tone(300, 0.001)] {
            for f in s.chunks(320) {
                n += usize::from(vad.push(f, 16_000).is_some());
            }
        }
        assert_eq!(n, 0);
    }

    /// Every detector finds the callee's words (real speech, `make setup`'s espeak-ng clip)
    /// after a second of silence, and ends the speech after it.
    #[test]
    fn every_detector_finds_real_speech() {
        let words = test_audio::hello_16k();
        for detector in [
            Detector::Energy,
            Detector::WebRtc(WebRtcMode::Aggressive),
            Detector::Earshot { threshold: 0.5 },
            Detector::silero_dev(),
        ] {
            let name = detector.name();
            let prepared = Prepared::new(&VadOptions::default().with_detector(detector))
                .unwrap_or_else(|e| panic!("{name}: {}", crate::error_chain(&e)));
            let mut vad = prepared.start();
            assert_eq!(vad.name(), name);
            let mut events = Vec::new();
            let mut any_speech_frame = false;
            let audio = [vec![0i16; 16_000], words.clone(), vec![0i16; 16_000]].concat();
            for f in audio.chunks(320) {
                if let Some(e) = vad.push(f, 16_000) {
                    events.push(e);
                }
                any_speech_frame |= vad.last_frame_speech();
            }
            assert!(any_speech_frame, "{name}: no frame was speech");
            assert!(
                matches!(events.first(), Some(VadEvent::StartOfSpeech { .. })),
                "{name}: {events:?}"
            );
            assert!(
                matches!(events.last(), Some(VadEvent::EndOfSpeech { .. })),
                "{name}: {events:?}"
            );
            assert!(!vad.speaking(), "{name}");
        }
    }

    #[test]
    fn a_missing_silero_model_fails_preparation() {
        let opts = VadOptions::default().with_detector(Detector::Silero {
            model: std::path::PathBuf::from("/nonexistent/model.onnx"),
            threshold: 0.5,
        });
        assert!(matches!(
            Prepared::new(&opts),
            Err(VadError::ModelMissing { .. })
        ));
    }
}
