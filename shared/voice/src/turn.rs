//! The callee's turn: what they said so far and when the turn ends. Endpointing waits at least
//! `min_delay` after the end of speech, and commits then if the STT signalled end of turn or the
//! text ends a sentence; otherwise it waits up to `max_delay`.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Endpointing {
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Endpointing {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_millis(3000),
        }
    }
}

#[derive(Debug, Default)]
pub struct UserTurn {
    pub speaking: bool,
    /// Start of the first speech in this turn.
    pub first_speech: Option<Instant>,
    /// Start of the current speech run (for interruption duration).
    pub current_speech: Option<Instant>,
    pub last_speech_end: Option<Instant>,
    finals: String,
    interim: String,
    pub last_final_at: Option<Instant>,
    stt_end_of_turn: bool,
}

impl UserTurn {
    pub fn speech_started(&mut self, at: Instant) {
        self.speaking = true;
        self.current_speech = Some(at);
        self.first_speech.get_or_insert(at);
        // New speech after an STT end-of-turn means the turn goes on.
        self.stt_end_of_turn = false;
    }

    pub fn speech_ended(&mut self, at: Instant) {
        self.speaking = false;
        self.current_speech = None;
        self.last_speech_end = Some(at);
    }

    pub fn interim(&mut self, text: &str) {
        self.interim = text.trim().to_owned();
    }

    pub fn final_segment(&mut self, text: &str, now: Instant) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        if !self.finals.is_empty() {
            self.finals.push(' ');
        }
        self.finals.push_str(text);
        self.interim.clear();
        self.last_final_at = Some(now);
    }

    pub fn replace_transcript(&mut self, text: &str, now: Instant) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        self.finals = text.to_owned();
        self.interim.clear();
        self.last_final_at = Some(now);
    }

    pub fn stt_end_of_turn(&mut self) {
        self.stt_end_of_turn = true;
    }

    /// The final transcript so far.
    pub fn transcript(&self) -> &str {
        &self.finals
    }

    /// Any words heard at all (finals or interim).
    pub fn heard_words(&self) -> bool {
        !self.finals.is_empty() || !self.interim.is_empty()
    }

    /// When the turn should be committed, if it can be.
    pub fn deadline(&self, ep: &Endpointing) -> Option<Instant> {
        if self.speaking && !self.stt_end_of_turn {
            return None;
        }
        // A transcript the VAD never heard (a quiet speaker) still ends a turn.
        let end = self
            .last_speech_end
            .or(self.current_speech)
            .or(self.last_final_at)?;
        if self.finals.is_empty() {
            // No final yet: an interim alone is used only after the longest wait.
            return (!self.interim.is_empty()).then_some(end + ep.max_delay);
        }
        let confident = self.stt_end_of_turn || ends_sentence(&self.finals);
        if self.speaking {
            // The STT says the turn ended although the VAD still hears something (noise).
            return Some(end + ep.max_delay);
        }
        Some(
            end + if confident {
                ep.min_delay
            } else {
                ep.max_delay
            },
        )
    }

    /// The text to commit: the finals, or the interim if nothing was finalised.
    pub fn take_text(&mut self) -> String {
        let t = if self.finals.is_empty() {
            std::mem::take(&mut self.interim)
        } else {
            std::mem::take(&mut self.finals)
        };
        t.trim().to_owned()
    }

    /// Start a new turn, keeping whether the callee is still speaking.
    pub fn reset(&mut self) {
        let speaking = self.speaking;
        let current = self.current_speech;
        *self = Self::default();
        if speaking {
            self.speaking = true;
            self.current_speech = current;
            self.first_speech = current;
        }
    }
}

fn ends_sentence(s: &str) -> bool {
    s.trim_end().ends_with(['.', '?', '!'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_delay_with_stt_signal_max_without() {
        let ep = Endpointing::default();
        let t0 = Instant::now();
        let mut u = UserTurn::default();
        u.speech_started(t0);
        u.final_segment("what are your opening hours", t0);
        assert_eq!(u.deadline(&ep), None, "still speaking");
        u.speech_ended(t0 + Duration::from_secs(1));
        assert_eq!(u.deadline(&ep), Some(t0 + Duration::from_millis(4000)));
        u.stt_end_of_turn();
        assert_eq!(u.deadline(&ep), Some(t0 + Duration::from_millis(1500)));
    }

    #[test]
    fn punctuation_counts_as_confident() {
        let ep = Endpointing::default();
        let t0 = Instant::now();
        let mut u = UserTurn::default();
        u.speech_started(t0);
        u.speech_ended(t0);
        assert_eq!(u.deadline(&ep), None, "nothing heard");
        u.final_segment("Hello?", t0);
        assert_eq!(u.deadline(&ep), Some(t0 + ep.min_delay));
    }
}
