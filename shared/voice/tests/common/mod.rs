//! What the engine tests share.

use callfleet_voice::{
    EngineOptions,
    vad::{Detector, VadOptions},
};

/// The engine's defaults with the energy VAD. These tests are about the engine (turns,
/// barge-in, metrics), and the stand-in callee's "speech" and "noise" are synthetic signals
/// that only a level detector takes for speech; the default detector, Silero, rightly ignores
/// both (bench/vad.md). The detectors themselves are tested on real speech in `src/vad/`.
pub fn engine_options() -> EngineOptions {
    EngineOptions {
        vad: VadOptions::default().with_detector(Detector::Energy),
        ..EngineOptions::default()
    }
}
