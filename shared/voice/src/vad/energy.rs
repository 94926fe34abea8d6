//! The energy VAD: a frame is speech when its level is `threshold_db` above an adaptive noise
//! floor and above `min_level_dbfs`. Costs almost nothing and needs no model, but it cannot
//! tell speech from anything else loud enough: music on hold, tones and steps in line noise
//! all look like speech to it (bench/vad.md).

use super::options::{VadOptions, level_dbfs};

#[derive(Debug, Clone)]
pub(crate) struct Energy {
    threshold_db: f32,
    min_level_dbfs: f32,
    floor_db: f32,
}

impl Energy {
    pub fn new(opts: &VadOptions) -> Self {
        Self {
            threshold_db: opts.threshold_db,
            min_level_dbfs: opts.min_level_dbfs,
            floor_db: -70.0,
        }
    }

    /// Whether this frame is speech. `speaking` (the gate's state) lowers the gate by 6 dB, so
    /// the quiet ends of words do not cut an utterance, and freezes the floor.
    pub fn classify(&mut self, samples: &[i16], speaking: bool) -> bool {
        let db = level_dbfs(samples);
        let slack = if speaking { 6.0 } else { 0.0 };
        let gate = (self.floor_db + self.threshold_db - slack).max(self.min_level_dbfs - slack);
        let is_speech = db > gate;
        if !speaking {
            // Track the floor: fast down, slow up, frozen during speech.
            if db < self.floor_db {
                self.floor_db = db.max(-90.0);
            } else if !is_speech {
                self.floor_db += 0.05 * (db - self.floor_db);
            }
        }
        is_speech
    }
}
