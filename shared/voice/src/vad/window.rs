//! 16 kHz windows of a fixed size for the model detectors: the engine pushes frames of any
//! length at 48 or 16 kHz, while WebRTC's VAD takes 20 ms, earshot 16 ms and Silero 32 ms at
//! 16 kHz. Resamples (the STT path's own converter) and cuts; a partial window waits for the
//! next frame, so decisions lag by less than one window.

use std::time::Duration;

use crate::{audio::samples_to_duration, resample::ToRate};

pub(crate) const RATE: u32 = 16_000;

#[derive(Debug)]
pub(crate) struct Windows {
    size: usize,
    resampler: ToRate,
    pending: Vec<i16>,
    scratch: Vec<i16>,
}

impl Windows {
    pub fn new(size: usize) -> Self {
        Self {
            size,
            resampler: ToRate::new(RATE),
            pending: Vec::with_capacity(size * 2),
            scratch: Vec::with_capacity(size * 2),
        }
    }

    pub fn duration(&self) -> Duration {
        samples_to_duration(self.size, RATE)
    }

    /// Append a frame at `rate`, then call `each` on every whole window now available.
    pub fn push(&mut self, samples: &[i16], rate: u32, mut each: impl FnMut(&[i16])) {
        self.scratch.clear();
        self.resampler.push(samples, rate, &mut self.scratch);
        self.pending.extend_from_slice(&self.scratch);
        let whole = self.pending.len() / self.size * self.size;
        for w in self.pending[..whole].chunks_exact(self.size) {
            each(w);
        }
        self.pending.drain(..whole);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_16k_and_48k_frames_into_whole_windows() {
        let mut w = Windows::new(512);
        let mut n = 0;
        for _ in 0..8 {
            w.push(&[0; 320], 16_000, |win| {
                assert_eq!(win.len(), 512);
                n += 1;
            });
        }
        assert_eq!(n, 5, "8 x 320 = 2560 samples = 5 windows of 512");
        let mut w = Windows::new(320);
        let mut n = 0;
        for _ in 0..3 {
            w.push(&[0; 960], 48_000, |_| n += 1);
        }
        assert_eq!(n, 3, "20 ms at 48 kHz is one 20 ms window at 16 kHz");
    }
}
