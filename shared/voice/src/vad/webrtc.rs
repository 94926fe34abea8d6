//! WebRTC's VAD (the GMM over six sub-band energies that libwebrtc and libfvad ship), as
//! earshot 0.1's fixed-point port to Rust. The C crates were the first choice, but
//! `webrtc-vad`'s handle is a raw pointer (not `Send`, so the engine's future could not hold
//! it without an `unsafe impl`, which this crate forbids) and `fvad` generates its bindings
//! with bindgen, which needs libclang at build time.

use earshot_webrtc::{VoiceActivityDetector, VoiceActivityProfile};

use super::window::Windows;

/// WebRTC's aggressiveness: higher modes call less audio speech.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebRtcMode {
    Quality,
    LowBitrate,
    Aggressive,
    VeryAggressive,
}

impl WebRtcMode {
    fn profile(self) -> VoiceActivityProfile {
        match self {
            Self::Quality => VoiceActivityProfile::QUALITY,
            Self::LowBitrate => VoiceActivityProfile::LBR,
            Self::Aggressive => VoiceActivityProfile::AGGRESSIVE,
            Self::VeryAggressive => VoiceActivityProfile::VERY_AGGRESSIVE,
        }
    }
}

/// 20 ms at 16 kHz, one of the three frame lengths WebRTC's VAD takes.
const WINDOW: usize = 320;

pub(crate) struct WebRtc {
    vad: VoiceActivityDetector,
    windows: Windows,
}

impl std::fmt::Debug for WebRtc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtc").finish_non_exhaustive()
    }
}

impl WebRtc {
    pub fn new(mode: WebRtcMode) -> Self {
        Self {
            vad: VoiceActivityDetector::new(mode.profile()),
            windows: Windows::new(WINDOW),
        }
    }

    pub fn window(&self) -> std::time::Duration {
        self.windows.duration()
    }

    /// Each whole 20 ms window's decision as a score (1 speech, 0 not), in order.
    pub fn push(&mut self, samples: &[i16], rate: u32, mut each: impl FnMut(f32)) {
        let vad = &mut self.vad;
        self.windows.push(samples, rate, |w| {
            // The window is always 320 samples, so the only error (a bad length) cannot occur;
            // were it to, the window counts as silence rather than ending the call.
            each(if vad.predict_16khz(w).unwrap_or(false) {
                1.0
            } else {
                0.0
            });
        });
    }
}
