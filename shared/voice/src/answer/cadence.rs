//! Speech segments from the caller's per-frame VAD flag: when speech began, when it last
//! sounded, and the *utterance* it belongs to (speech joined over pauses shorter than
//! [`JOIN`], so a greeting's breaths between sentences do not end it).
//!
//! The VAD's flag alone is not trusted: a frame only counts as speech when it is also not a
//! tone (a line test tone or a beep is loud, and an energy VAD calls it speech), stands
//! [`OVER_FLOOR_DB`] above the line's noise floor, and is part of a run of such frames at least
//! [`ACTIVATION`] long. The floor is the quietest 100 ms stretch (its mean power) of the last
//! 3 s: the project's energy VAD freezes its own floor while it thinks someone speaks, so line
//! noise at -45 dBFS and up from the first frame reads to it as endless speech. A 100 ms mean
//! sits about 4.5 dB under the loudest 20 ms frames of pink line noise, so noise alone rarely
//! passes, and never for 60 ms running.

use std::{collections::VecDeque, time::Duration};

/// Pauses shorter than this do not end an utterance; one this long after a short utterance is
/// a person listening.
pub(crate) const JOIN: Duration = Duration::from_millis(700);
/// A frame must be this far above the noise floor to count as speech (dB).
const OVER_FLOOR_DB: f32 = 6.0;
/// Speech frames must run this long to count (a click, a noise burst do not).
const ACTIVATION: Duration = Duration::from_millis(60);
const FLOOR_WINDOW: usize = 30;
const FLOOR_CHUNK: Duration = Duration::from_millis(100);

/// A stretch of speech whose pauses were all shorter than [`JOIN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Utterance {
    pub start: Duration,
    /// The end of its last speech frame.
    pub end: Duration,
}

impl Utterance {
    pub fn len(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Cadence {
    /// Per-100 ms mean levels (dBFS), newest last.
    chunks: VecDeque<f32>,
    /// The chunk being filled: sum of power x seconds, and its length.
    chunk_energy: f64,
    chunk_len: Duration,
    /// How long frames above the floor have run.
    run: Duration,
    current: Option<Utterance>,
    last_ended: Option<Utterance>,
    first_speech: Option<Duration>,
}

impl Cadence {
    /// One frame: `speech` is the VAD's flag, `tonal` whether the frame was a tone, `level` its
    /// level (dBFS), `at` its end. Returns whether the frame counted as speech.
    pub fn push(
        &mut self,
        speech: bool,
        tonal: bool,
        level: f32,
        dur: Duration,
        at: Duration,
    ) -> bool {
        let floor = self.floor();
        self.track_floor(level, dur);
        let loud = speech && !tonal && floor.is_some_and(|f| level >= f + OVER_FLOOR_DB);
        self.run = if loud { self.run + dur } else { Duration::ZERO };
        let is_speech = self.run >= ACTIVATION;
        if is_speech {
            let start = at.saturating_sub(self.run);
            self.first_speech.get_or_insert(start);
            match &mut self.current {
                Some(u) => u.end = at,
                None => self.current = Some(Utterance { start, end: at }),
            }
        }
        self.close_if_quiet(at);
        is_speech
    }

    /// Time passing (a frame or a tick): an utterance quiet for [`JOIN`] has ended.
    pub fn close_if_quiet(&mut self, at: Duration) {
        if let Some(u) = self.current
            && at.saturating_sub(u.end) >= JOIN
        {
            self.current = None;
            self.last_ended = Some(u);
        }
    }

    fn floor(&self) -> Option<f32> {
        self.chunks.iter().copied().reduce(f32::min)
    }

    fn track_floor(&mut self, level: f32, dur: Duration) {
        self.chunk_energy += 10f64.powf(f64::from(level) / 10.0) * dur.as_secs_f64();
        self.chunk_len += dur;
        if self.chunk_len >= FLOOR_CHUNK {
            let mean = self.chunk_energy / self.chunk_len.as_secs_f64();
            self.chunks
                .push_back((10.0 * mean.max(1e-10).log10()) as f32);
            self.chunk_energy = 0.0;
            if self.chunks.len() > FLOOR_WINDOW {
                self.chunks.pop_front();
            }
            self.chunk_len = Duration::ZERO;
        }
    }

    /// The utterance still going (its last pause shorter than [`JOIN`]).
    pub fn current(&self) -> Option<Utterance> {
        self.current
    }

    /// The last utterance that ended.
    pub fn last_ended(&self) -> Option<Utterance> {
        self.last_ended
    }

    pub fn first_speech(&self) -> Option<Duration> {
        self.first_speech
    }

    /// The end of the last speech frame.
    pub fn last_speech(&self) -> Option<Duration> {
        self.current.or(self.last_ended).map(|u| u.end)
    }
}
