//! Answering-machine detection: what answered an outbound call (a person, a voicemail greeting
//! and its beep, a call screener, a menu, a fax, nobody), told from the callee's audio, the
//! caller's VAD and, when there is one, the callee's transcript. Pure: no I/O, no clock; time is
//! what the caller says it is (`at`, from the answer), so the bench runs it in simulated time.
//!
//! A person must not wait: the agent is let speak ([`AnswerEvent::Release`]) at the latest at
//! [`AnswerOptions::budget`] unless something decisive came first, and classification goes on
//! behind it. Waiting for a voicemail's beep may take up to [`AnswerOptions::max_wait`].
//!
//! ## The rules (`rules.rs`), in the order they are tried
//!
//! Speech below is the VAD's flag minus tones and minus frames near the line's noise floor
//! (`cadence.rs`); an *utterance* is speech whose pauses are all shorter than 0.7 s.
//!
//! 1. **Fax**: with no speech before it, 1100 Hz (±50) for 300 ms (of CNG's 0.5 s burst: on
//!    real calls the worker got 18-20 frames of the first burst, 360-400 ms) or
//!    2100 Hz (±50) for 1 s (CED) (`tones.rs`).
//! 2. **Beep**: a narrowband tone of 150 ms to 3 s, 400-2500 Hz, that ended after speech (or,
//!    with no speech at all, one of at most 2 s that is not a fax tone: a box with no greeting).
//! 3. **Phrase**: the transcript so far matches a phrase set (`phrases.rs`): voicemail,
//!    screener, menu. It may overturn a tentative release; it never overturns a decision.
//! 4. **Greeting** (machine): an utterance has run 2.4 s. When the callee is transcribed the
//!    decision waits 2.5 s more for a phrase that names a screener or a menu (both speak like
//!    greetings), and on while the greeting still talks, up to 5 s (a screener asks for the
//!    name in its last sentence); a phrase naming a voicemail decides at once.
//! 5. **Person**: an utterance of at most 1.8 s followed by 0.7 s of quiet (no speech, no tone);
//!    or one shorter than a greeting followed by 1.5 s of quiet.
//! 6. **Silence**: no speech for [`AnswerOptions::silence`]. A tone with no speech (a line test
//!    tone) is not speech, so it ends here and is never called a person.
//! 7. **Deadline**: at 10 s (or just after `silence`, if longer) anything undecided is a person.
//!
//! At the budget with nothing decided, [`AnswerEvent::Release`], unless a tone is sounding with
//! no speech before it (a fax or a test tone is not greeted) or an utterance is under way (the
//! agent never starts over the callee's words: the release waits for the utterance to end, and
//! one that runs on becomes a greeting first). After `Classified(Machine)`:
//! [`AnswerEvent::Recording`] when a beep ends (rule 2's tone), when 1.8 s of quiet follow the
//! greeting, or at `max_wait`.
//!
//! The thresholds were tuned on the bench's corpus (`tests/benches/amd_bench.rs`, seed 1) and are
//! reported on another seed; `bench/amd.md` has the numbers.

mod cadence;
mod phrases;
mod rules;
#[cfg(test)]
mod tests;
mod tones;

use std::time::Duration;

use callfleet_domain::answering::{
    AnswerAction, AnswerClass, AnswerReport, AnswerSignal, SignalKind,
};

use cadence::Cadence;
use phrases::PhraseMatch;
use tones::{ToneDetector, ToneTracker};

/// How long the classifier may take, and the callee's language for phrases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerOptions {
    /// The longest a person waits for the agent's greeting (default 2.5 s).
    pub budget: Duration,
    /// How long a voicemail decision may wait for its beep (default 30 s).
    pub max_wait: Duration,
    /// No speech at all for this long is [`AnswerClass::Silence`] (default 5 s).
    pub silence: Duration,
    /// The callee's language (`"en"`, `"es-ES"`); picks the phrase sets.
    pub language: String,
    /// An STT transcribes the callee, so a greeting waits for its phrase (rule 4) from the
    /// start, not only once the first transcript has arrived: a slow recogniser on a busy
    /// machine must not turn a screener into a plain machine (default false: audio only).
    pub transcribed: bool,
}

impl Default for AnswerOptions {
    fn default() -> Self {
        Self {
            budget: Duration::from_millis(2500),
            max_wait: Duration::from_secs(30),
            silence: Duration::from_secs(5),
            language: "en".to_owned(),
            transcribed: false,
        }
    }
}

/// What the engine should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerEvent {
    /// The agent may speak now: nothing decisive by the budget (tentative; classification
    /// goes on).
    Release,
    /// The answer is classified (once). May follow a `Release` when later evidence (a phrase,
    /// a beep, a greeting running long) shows a machine, IVR or screener. `Classified(Human)`
    /// also releases.
    Classified(AnswerClass),
    /// After `Classified(Machine)`: the box records now — its beep was heard (`beep: true`),
    /// or the greeting ended and nothing followed (`beep: false`). Emitted once.
    Recording { beep: bool },
}

/// One call's answering-machine detection, fed from the answer on.
#[derive(Debug)]
pub struct Classifier {
    opts: AnswerOptions,
    detector: ToneDetector,
    tones: ToneTracker,
    cadence: Cadence,
    /// Whether the last analysed block was tonal.
    tonal: bool,
    /// The end of the last tonal block.
    last_tonal: Option<Duration>,
    finals: String,
    interim: String,
    phrase: Option<PhraseMatch>,
    transcripts: bool,
    /// When an utterance reached greeting length, and its length then (rule 4).
    greeting_at: Option<(Duration, Duration)>,
    class: Option<(AnswerClass, Duration)>,
    released: Option<Duration>,
    recording: bool,
    /// The last step gave an event (another may be due at once).
    pending: bool,
    signals: Vec<AnswerSignal>,
    now: Duration,
}

impl Classifier {
    pub fn new(opts: AnswerOptions) -> Self {
        let transcripts = opts.transcribed;
        Self {
            opts,
            detector: ToneDetector::new(),
            tones: ToneTracker::default(),
            cadence: Cadence::default(),
            tonal: false,
            last_tonal: None,
            finals: String::new(),
            interim: String::new(),
            phrase: None,
            transcripts,
            greeting_at: None,
            class: None,
            released: None,
            recording: false,
            pending: false,
            signals: Vec::new(),
            now: Duration::ZERO,
        }
    }

    /// One frame of the callee's audio (mono i16, any of 8/16/24/48 kHz, typically 10-20 ms),
    /// with the caller's VAD decision for this frame, `at` = time since the answer at the
    /// frame's end.
    pub fn push_audio(
        &mut self,
        samples: &[i16],
        rate: u32,
        speech: bool,
        at: Duration,
    ) -> Option<AnswerEvent> {
        let at = self.advance(at);
        if rate == 0 || samples.is_empty() {
            return self.step(at);
        }
        let (tones, last_tonal, tonal) = (&mut self.tones, &mut self.last_tonal, &mut self.tonal);
        self.detector.push(samples, rate, at, &mut |block| {
            *tonal = block.tonal;
            if block.tonal {
                *last_tonal = Some(block.end);
            }
            tones.push(block);
        });
        let dur = Duration::from_nanos(samples.len() as u64 * 1_000_000_000 / u64::from(rate));
        let level = crate::vad::level_dbfs(samples);
        self.cadence.push(speech, self.tonal, level, dur, at);
        self.step(at)
    }

    /// A transcript of the callee (interim or final) as the STT produced it.
    pub fn push_transcript(
        &mut self,
        text: &str,
        is_final: bool,
        at: Duration,
    ) -> Option<AnswerEvent> {
        let at = self.advance(at);
        self.transcripts = true;
        if is_final {
            self.finals.push_str(text);
            self.finals.push(' ');
            self.interim.clear();
        } else {
            self.interim = text.to_owned();
        }
        let heard = format!("{}{}", self.finals, self.interim);
        self.phrase = phrases::classify(&heard, &self.opts.language);
        self.step(at)
    }

    /// Time passing with no input (the engine calls it on its timers).
    pub fn tick(&mut self, at: Duration) -> Option<AnswerEvent> {
        let at = self.advance(at);
        self.tones.idle(at);
        self.step(at)
    }

    /// When the classifier next needs a tick (a deadline), if any.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.deadline()
    }

    /// The call is over: an undecided answer gets the deadline's verdict now (a person if anyone
    /// spoke, else silence), so the report always names a class.
    pub fn finish(&mut self, at: Duration) {
        self.conclude(at);
    }

    pub fn class(&self) -> Option<AnswerClass> {
        self.class.map(|(c, _)| c)
    }

    /// The evidence so far, in the order it was seen.
    pub fn signals(&self) -> &[AnswerSignal] {
        &self.signals
    }

    /// The summary's account of the answer, once it is classified. `released` is when the
    /// engine let the agent speak (it knows whether it acted on a [`AnswerEvent::Release`]).
    /// The signals run in the order seen; a `Recording`'s (the beep, the greeting's end) come
    /// after the deciding one.
    pub fn report(&self, action: AnswerAction, released: Option<Duration>) -> Option<AnswerReport> {
        let (class, at) = self.class?;
        Some(AnswerReport {
            class,
            decided_ms: millis(at),
            released_ms: released.map(millis),
            action,
            signals: self.signals.clone(),
        })
    }

    /// Time never runs backwards here: an `at` older than one already seen is taken as now.
    fn advance(&mut self, at: Duration) -> Duration {
        self.now = self.now.max(at);
        self.now
    }

    fn signal(&mut self, kind: SignalKind, class: AnswerClass, at: Duration, detail: String) {
        self.signals.push(AnswerSignal {
            kind,
            class,
            at_ms: millis(at),
            detail,
        });
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
