//! What the detectors share, below all of them: the choice of detector and its knobs, the
//! events, the errors, and the level measure.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use super::webrtc::WebRtcMode;

/// Which detector decides, with its own knobs.
#[derive(Debug, Clone, PartialEq)]
pub enum Detector {
    /// Level above an adaptive floor (`VadOptions::threshold_db`, `min_level_dbfs`).
    Energy,
    /// WebRTC's GMM VAD at this aggressiveness.
    WebRtc(WebRtcMode),
    /// earshot's neural VAD; a window is speech at `threshold` and stays speech down to
    /// `threshold - 0.15` while the callee speaks.
    Earshot { threshold: f32 },
    /// Silero VAD v6 from `model` (an ONNX file); thresholds as for earshot.
    Silero { model: PathBuf, threshold: f32 },
}

impl Detector {
    /// Silero with the model where `make setup` puts it (`.tools/models/silero_vad.onnx` in this
    /// checkout): for dev and tests. A deployment names its own path.
    pub fn silero_dev() -> Self {
        Self::Silero {
            model: dev_model_path(),
            threshold: 0.5,
        }
    }

    /// The name used in config, logs and the bench.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Energy => "energy",
            Self::WebRtc(_) => "webrtc",
            Self::Earshot { .. } => "earshot",
            Self::Silero { .. } => "silero",
        }
    }
}

/// `.tools/models/silero_vad.onnx` at the workspace root, where `make setup` unpacks it.
pub fn dev_model_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/models/silero_vad.onnx")
}

#[derive(Debug, Clone)]
pub struct VadOptions {
    pub detector: Detector,
    /// Speech must last this long before `StartOfSpeech` (rejects clicks).
    pub activation: Duration,
    /// Silence must last this long before `EndOfSpeech`.
    pub min_silence: Duration,
    /// Energy detector: how far above the noise floor a frame must be to count as speech (dB).
    pub threshold_db: f32,
    /// Energy detector: frames quieter than this are never speech (dBFS).
    pub min_level_dbfs: f32,
}

impl Default for VadOptions {
    /// Silero (from `.tools/models/silero_vad.onnx`): the only candidate with no false speech
    /// on line noise, music on hold and tones, and the fewest quiet-speech misses, at about
    /// 0.46 % of a core per session (bench/vad.md).
    fn default() -> Self {
        Self {
            detector: Detector::silero_dev(),
            activation: Duration::from_millis(60),
            min_silence: Duration::from_millis(250),
            threshold_db: 12.0,
            min_level_dbfs: -45.0,
        }
    }
}

impl VadOptions {
    /// These options with another detector.
    pub fn with_detector(mut self, detector: Detector) -> Self {
        self.detector = detector;
        self
    }
}

/// Why a detector could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum VadError {
    #[error("the Silero VAD model {} is missing or unreadable: run `make setup`", path.display())]
    ModelMissing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the Silero VAD model {} could not be loaded", path.display())]
    Model {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A transition, with how long ago (relative to the end of the frame just pushed) it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    StartOfSpeech { ago: Duration },
    EndOfSpeech { ago: Duration },
}

/// RMS level in dBFS (-100 for digital silence).
pub fn level_dbfs(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return -100.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / samples.len() as f64).sqrt() / 32768.0;
    if rms <= 1e-5 {
        -100.0
    } else {
        (20.0 * rms.log10()) as f32
    }
}
