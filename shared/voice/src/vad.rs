//! A pure-Rust energy VAD with an adaptive noise floor and hysteresis. Cheap enough for
//! hundreds of sessions per core; good enough for phone audio, where the callee's leg carries
//! no echo of the agent.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct VadOptions {
    /// Speech must last this long before `StartOfSpeech` (rejects clicks).
    pub activation: Duration,
    /// Silence must last this long before `EndOfSpeech`.
    pub min_silence: Duration,
    /// How far above the noise floor a frame must be to count as speech (dB).
    pub threshold_db: f32,
    /// Frames quieter than this are never speech (dBFS).
    pub min_level_dbfs: f32,
}

impl Default for VadOptions {
    fn default() -> Self {
        Self {
            activation: Duration::from_millis(60),
            min_silence: Duration::from_millis(250),
            threshold_db: 12.0,
            min_level_dbfs: -45.0,
        }
    }
}

/// A transition, with how long ago (relative to the end of the frame just pushed) it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    StartOfSpeech { ago: Duration },
    EndOfSpeech { ago: Duration },
}

#[derive(Debug)]
pub struct Vad {
    opts: VadOptions,
    floor_db: f32,
    speaking: bool,
    speech_run: Duration,
    silence_run: Duration,
}

impl Vad {
    pub fn new(opts: VadOptions) -> Self {
        Self {
            opts,
            floor_db: -70.0,
            speaking: false,
            speech_run: Duration::ZERO,
            silence_run: Duration::ZERO,
        }
    }

    pub fn speaking(&self) -> bool {
        self.speaking
    }

    /// How long the input has been quiet (zero while a frame is speech), even before the
    /// silence is long enough to end the speech.
    pub fn silence_run(&self) -> Duration {
        self.silence_run
    }

    /// Feed one frame; returns a transition if this frame completed one.
    pub fn push(&mut self, samples: &[i16], rate: u32) -> Option<VadEvent> {
        if samples.is_empty() || rate == 0 {
            return None;
        }
        let dur = crate::audio::samples_to_duration(samples.len(), rate);
        let db = level_dbfs(samples);
        let slack = if self.speaking { 6.0 } else { 0.0 };
        let gate =
            (self.floor_db + self.opts.threshold_db - slack).max(self.opts.min_level_dbfs - slack);
        let is_speech = db > gate;
        if !self.speaking {
            // Track the floor: fast down, slow up, frozen during speech.
            if db < self.floor_db {
                self.floor_db = db.max(-90.0);
            } else if !is_speech {
                self.floor_db += 0.05 * (db - self.floor_db);
            }
        }
        if is_speech {
            self.speech_run += dur;
            self.silence_run = Duration::ZERO;
            if !self.speaking && self.speech_run >= self.opts.activation {
                self.speaking = true;
                return Some(VadEvent::StartOfSpeech {
                    ago: self.speech_run,
                });
            }
        } else {
            self.silence_run += dur;
            if !self.speaking {
                self.speech_run = Duration::ZERO;
            }
            if self.speaking && self.silence_run >= self.opts.min_silence {
                self.speaking = false;
                self.speech_run = Duration::ZERO;
                return Some(VadEvent::EndOfSpeech {
                    ago: self.silence_run,
                });
            }
        }
        None
    }
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
        let mut vad = Vad::new(VadOptions::default());
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
        let mut vad = Vad::new(VadOptions::default());
        let mut n = 0;
        for s in [tone(300, 0.001), tone(20, 0.8), tone(300, 0.001)] {
            for f in s.chunks(320) {
                n += usize::from(vad.push(f, 16_000).is_some());
            }
        }
        assert_eq!(n, 0);
    }
}
