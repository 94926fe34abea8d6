//! Hysteresis shared by every detector: per-window speech decisions in, `StartOfSpeech` /
//! `EndOfSpeech` out. A detector only says "this window is speech"; how long speech must last to
//! count (`activation`, rejecting clicks) and how long silence must last to end it
//! (`min_silence`) are the same whichever detector decides, so the bench compares detectors and
//! not their smoothing.

use std::time::Duration;

use super::options::VadEvent;

#[derive(Debug, Clone)]
pub(crate) struct Gate {
    activation: Duration,
    min_silence: Duration,
    speaking: bool,
    speech_run: Duration,
    silence_run: Duration,
    last: bool,
}

impl Gate {
    pub fn new(activation: Duration, min_silence: Duration) -> Self {
        Self {
            activation,
            min_silence,
            speaking: false,
            speech_run: Duration::ZERO,
            silence_run: Duration::ZERO,
            last: false,
        }
    }

    pub fn speaking(&self) -> bool {
        self.speaking
    }

    pub fn silence_run(&self) -> Duration {
        self.silence_run
    }

    /// The decision of the last window seen.
    pub fn last(&self) -> bool {
        self.last
    }

    /// One window of `dur` that the detector called speech or not.
    pub fn update(&mut self, is_speech: bool, dur: Duration) -> Option<VadEvent> {
        self.last = is_speech;
        if is_speech {
            self.speech_run += dur;
            self.silence_run = Duration::ZERO;
            if !self.speaking && self.speech_run >= self.activation {
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
            if self.speaking && self.silence_run >= self.min_silence {
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
