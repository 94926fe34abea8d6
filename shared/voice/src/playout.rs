//! The agent's audio for one reply and its playout clock. The engine keeps at most `lead` of
//! audio ahead of real time in the transport, so "played" is known to within a frame:
//! `played = min(sent, samples since the clock was anchored)`. On barge-in the transport queue
//! is cleared and `sent` rewinds to `played`, so a resume continues from what was heard.

use std::time::Duration;

use tokio::time::Instant;

use crate::{
    audio::{AudioFrame, duration_to_samples, samples_to_duration},
    providers::tts::WordTiming,
};

#[derive(Debug)]
pub struct Playout {
    rate: u32,
    frame: usize,
    audio: Vec<i16>,
    sent: usize,
    /// At `.0`, `.1` samples had been played.
    anchor: Option<(Instant, usize)>,
    input_done: bool,
    words: Vec<WordTiming>,
    pub first_sent_at: Option<Instant>,
}

impl Playout {
    pub fn new(rate: u32, frame: Duration) -> Self {
        Self {
            rate,
            frame: duration_to_samples(frame, rate).max(1),
            audio: Vec::new(),
            sent: 0,
            anchor: None,
            input_done: false,
            words: Vec::new(),
            first_sent_at: None,
        }
    }

    pub fn push_audio(&mut self, pcm: &[i16]) {
        self.audio.extend_from_slice(pcm);
    }

    pub fn push_words(&mut self, words: Vec<WordTiming>) {
        self.words.extend(words);
    }

    pub fn input_done(&mut self) {
        self.input_done = true;
    }

    pub fn has_audio(&self) -> bool {
        !self.audio.is_empty()
    }

    pub fn played(&self, now: Instant) -> usize {
        match self.anchor {
            // Not anchored: idle, paused or never started; everything sent has played.
            None => self.sent,
            Some((t, base)) => {
                let run = duration_to_samples(now.saturating_duration_since(t), self.rate);
                (base + run).min(self.sent)
            }
        }
    }

    /// The next frame to send now, if the lead allows and audio is there.
    pub fn next_frame(&mut self, now: Instant, lead: Duration) -> Option<AudioFrame> {
        let available = self.audio.len() - self.sent;
        let take = if available >= self.frame {
            self.frame
        } else if self.input_done && available > 0 {
            available
        } else {
            return None;
        };
        let played = self.played(now);
        if self.anchor.is_none() || played >= self.sent {
            // Idle or underrun: the clock restarts with this frame.
            self.anchor = Some((now, self.sent));
        } else if self.sent - played >= duration_to_samples(lead, self.rate) {
            return None;
        }
        let mut samples = self.audio[self.sent..self.sent + take].to_vec();
        samples.resize(self.frame, 0);
        self.sent += take;
        self.first_sent_at.get_or_insert(now);
        Some(AudioFrame::new(samples, self.rate))
    }

    /// When the next frame may be sent, if audio is waiting only on the lead.
    pub fn wake_at(&self, lead: Duration) -> Option<Instant> {
        let (t, base) = self.anchor?;
        let available = self.audio.len() - self.sent;
        if available == 0 || (available < self.frame && !self.input_done) {
            return None;
        }
        let ahead = self
            .sent
            .saturating_sub(duration_to_samples(lead, self.rate));
        Some(t + samples_to_duration(ahead.saturating_sub(base), self.rate))
    }

    /// All audio received, sent and played.
    pub fn finished(&self, now: Instant) -> bool {
        self.input_done && self.sent == self.audio.len() && self.played(now) >= self.sent
    }

    /// When everything sent so far will have played.
    pub fn drained_at(&self) -> Option<Instant> {
        let (t, base) = self.anchor?;
        Some(t + samples_to_duration(self.sent.saturating_sub(base), self.rate))
    }

    /// Barge-in: the transport dropped what it had queued; rewind to what was played.
    pub fn pause(&mut self, now: Instant) -> Duration {
        let played = self.played(now);
        self.sent = played;
        self.anchor = None;
        samples_to_duration(played, self.rate)
    }

    /// The part of `text` that was heard: words that started before the played position, or,
    /// without word timings, a share of the text proportional to the audio played.
    pub fn heard_text(&self, now: Instant, text: &str) -> String {
        let played = self.played(now);
        if played == 0 {
            return String::new();
        }
        if self.input_done && played >= self.audio.len() {
            return text.trim().to_owned();
        }
        let secs = played as f64 / f64::from(self.rate.max(1));
        if !self.words.is_empty() {
            let n = self.words.iter().filter(|w| w.start < secs).count();
            return take_words(text, n);
        }
        let total = self.audio.len().max(1);
        let chars = text.chars().count() * played / total;
        let cut: String = text.chars().take(chars).collect();
        // End on a word boundary.
        match cut.rfind(char::is_whitespace) {
            Some(i) if chars < text.chars().count() => cut[..i].trim().to_owned(),
            _ => cut.trim().to_owned(),
        }
    }
}

/// The first `n` whitespace-separated words of `text`, with its original spacing.
fn take_words(text: &str, n: usize) -> String {
    if n == 0 {
        return String::new();
    }
    let mut count = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                count += 1;
                if count == n {
                    return text[..i].trim().to_owned();
                }
            }
            in_word = false;
        } else {
            in_word = true;
        }
    }
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_and_rewinds() {
        let t0 = Instant::now();
        let lead = Duration::from_millis(100);
        let mut p = Playout::new(1000, Duration::from_millis(20));
        p.push_audio(&[1; 1000]);
        let mut n = 0;
        while p.next_frame(t0, lead).is_some() {
            n += 1;
        }
        assert_eq!(n, 5, "lead of 100 ms = 5 frames");
        assert_eq!(p.wake_at(lead), Some(t0));
        let later = t0 + Duration::from_millis(60);
        assert_eq!(p.played(later), 60);
        assert_eq!(p.pause(later), Duration::from_millis(60));
        assert!(p.next_frame(later, lead).is_some());
        assert_eq!(p.played(later), 60);
    }

    #[test]
    fn heard_text_uses_word_timings() {
        let t0 = Instant::now();
        let mut p = Playout::new(1000, Duration::from_millis(20));
        p.push_audio(&[1; 3000]);
        p.push_words(
            ["One", "two", "three"]
                .iter()
                .enumerate()
                .map(|(i, w)| WordTiming {
                    word: (*w).into(),
                    start: i as f64,
                })
                .collect(),
        );
        while p.next_frame(t0, Duration::from_secs(10)).is_some() {}
        assert_eq!(
            p.heard_text(t0 + Duration::from_millis(1500), "One two, three."),
            "One two,"
        );
        assert_eq!(take_words("a b", 5), "a b");
    }
}
