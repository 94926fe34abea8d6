//! earshot 1.x: a small neural VAD in pure Rust whose weights ship inside the crate (no model
//! file to fetch). 16 ms windows at 16 kHz, a score in [0, 1].

use earshot::Detector;

use super::window::Windows;

/// 16 ms at 16 kHz, the only window earshot takes.
const WINDOW: usize = 256;

pub(crate) struct Earshot {
    detector: Box<Detector>,
    windows: Windows,
}

impl std::fmt::Debug for Earshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Earshot").finish_non_exhaustive()
    }
}

impl Earshot {
    pub fn new() -> Self {
        Self {
            detector: Detector::default_boxed(),
            windows: Windows::new(WINDOW),
        }
    }

    pub fn window(&self) -> std::time::Duration {
        self.windows.duration()
    }

    /// Each whole window's speech probability, in order.
    pub fn push(&mut self, samples: &[i16], rate: u32, mut each: impl FnMut(f32)) {
        let detector = &mut self.detector;
        self.windows
            .push(samples, rate, |w| each(detector.predict_i16(w)));
    }
}
