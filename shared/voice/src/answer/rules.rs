//! The decision rules (listed in the module doc), evaluated after every input and tick.

use std::time::Duration;

use callfleet_domain::answering::{AnswerClass, SignalKind};

use super::{AnswerEvent, Classifier, cadence::JOIN, tones::Tone};

/// A person's "hello?" is at most this long (rule 5).
const HUMAN_MAX: Duration = Duration::from_millis(1800);
/// An utterance this long is a greeting (rule 4).
const GREETING: Duration = Duration::from_millis(2400);
/// Quiet that ends any utterance shorter than a greeting as a person's (rule 5).
const LONG_QUIET: Duration = Duration::from_millis(1500);
/// How long a greeting's decision waits for a phrase when transcripts flow (rule 4): a menu
/// names its first digit in its second sentence, 4-5 s in, and the recogniser lags the speech.
const PHRASE_GRACE: Duration = Duration::from_millis(2500);
/// While the greeting is still talking, its decision waits for a phrase up to this long: a
/// screener asks for the name in its last sentence ("... please say your name and why you're
/// calling"), 4-6 s in, and a voicemail's words only cost the wait.
const PHRASE_MAX: Duration = Duration::from_secs(5);
/// Quiet after a voicemail greeting that means the box records without a beep.
const AFTER_GREETING: Duration = Duration::from_millis(1800);
/// Vowels can be sine-like for 120 ms; beeps last 200 ms and more.
const BEEP_MIN: Duration = Duration::from_millis(150);
const BEEP_MAX: Duration = Duration::from_secs(3);
/// A tone with no greeting before it is a beep only if it stops by then (a test tone does not).
const LONE_BEEP_MAX: Duration = Duration::from_secs(2);
const CNG_HZ: f32 = 1100.0;
/// Of CNG's 0.5 s: the start of the first burst may not reach the worker (on the rig it got
/// 18-20 of its 25 frames, which a 400 ms rule missed, deciding on the second burst 3.5 s on).
const CNG_MIN: Duration = Duration::from_millis(300);
const CED_HZ: f32 = 2100.0;
const CED_MIN: Duration = Duration::from_secs(1);
const FAX_TOLERANCE_HZ: f32 = 50.0;
const BEEP_LOW_HZ: f32 = 400.0;
const BEEP_HIGH_HZ: f32 = 2500.0;
/// Every call is classified by then (rule 7).
const DECIDE_BY: Duration = Duration::from_secs(10);

type Verdict = (AnswerClass, SignalKind, String);

impl Classifier {
    /// The one place events come from: at most one per call, the next (if any) at the next
    /// input or [`Classifier::next_deadline`].
    pub(super) fn step(&mut self, at: Duration) -> Option<AnswerEvent> {
        let event = self.next_event(at);
        self.pending = event.is_some();
        event
    }

    fn next_event(&mut self, at: Duration) -> Option<AnswerEvent> {
        self.cadence.close_if_quiet(at);
        match self.class {
            None => {
                if let Some((class, kind, detail)) = self.decide(at) {
                    self.signal(kind, class, at, detail);
                    self.class = Some((class, at));
                    return Some(AnswerEvent::Classified(class));
                }
                // Never over the callee's words: mid-utterance (a pause shorter than a person's
                // wait), the release waits for it to end or to become a greeting.
                if self.released.is_none()
                    && at >= self.opts.budget
                    && !self.lone_tone()
                    && self.cadence.current().is_none()
                {
                    self.released = Some(at);
                    return Some(AnswerEvent::Release);
                }
                None
            }
            Some((AnswerClass::Machine, _)) if !self.recording => {
                let (beep, kind, class, detail) = if let Some(t) = self.beep() {
                    (true, SignalKind::Beep, AnswerClass::Beep, describe(&t))
                } else if self.quiet(at)? >= AFTER_GREETING {
                    let quiet = self.quiet(at)?.as_secs_f32();
                    let detail = format!("greeting ended, {quiet:.1} s quiet");
                    (false, SignalKind::Cadence, AnswerClass::Machine, detail)
                } else if at >= self.opts.max_wait {
                    let detail = format!("no beep by {:.0} s", at.as_secs_f32());
                    (false, SignalKind::Cadence, AnswerClass::Machine, detail)
                } else {
                    return None;
                };
                self.signal(kind, class, at, detail);
                self.recording = true;
                Some(AnswerEvent::Recording { beep })
            }
            Some(_) => None,
        }
    }

    fn decide(&mut self, at: Duration) -> Option<Verdict> {
        if let Some(v) = self.fax().or_else(|| self.beep_verdict()) {
            return Some(v);
        }
        if let Some(m) = &self.phrase {
            let keys: Vec<String> = m.keys.iter().map(|k| format!("\"{k}\"")).collect();
            return Some((m.class, SignalKind::Phrase, keys.join(", ")));
        }
        if let Some(v) = self.greeting(at) {
            return Some(v);
        }
        if let Some(v) = self.person(at) {
            return Some(v);
        }
        let silence = self.opts.silence;
        if self.cadence.first_speech().is_none() && at >= silence {
            let detail = match self.tones.sounding().or(self.tones.last()) {
                Some(t) => format!("no speech in {:.1} s ({})", at.as_secs_f32(), describe(&t)),
                None => format!("no speech in {:.1} s", at.as_secs_f32()),
            };
            return Some((AnswerClass::Silence, SignalKind::Silence, detail));
        }
        (at >= self.decide_by()).then(|| {
            let detail = format!("nothing decisive by {:.0} s", at.as_secs_f32());
            (AnswerClass::Human, SignalKind::Cadence, detail)
        })
    }

    /// Rule 1: a fax tone with no speech before it.
    fn fax(&self) -> Option<Verdict> {
        let t = self.tones.sounding().or(self.tones.last())?;
        if !self.before_any_speech(&t) {
            return None;
        }
        let cng = t.near(CNG_HZ, FAX_TOLERANCE_HZ) && t.len() >= CNG_MIN;
        let ced = t.near(CED_HZ, FAX_TOLERANCE_HZ) && t.len() >= CED_MIN;
        let name = if cng { "CNG" } else { "CED" };
        (cng || ced).then(|| {
            (
                AnswerClass::Fax,
                SignalKind::FaxTone,
                format!("{name}: {}", describe(&t)),
            )
        })
    }

    /// Rule 2 before any decision.
    fn beep_verdict(&self) -> Option<Verdict> {
        if let Some(t) = self.beep() {
            return Some((AnswerClass::Beep, SignalKind::Beep, describe(&t)));
        }
        let t = self.tones.last()?;
        let fax = t.near(CNG_HZ, FAX_TOLERANCE_HZ) || t.near(CED_HZ, FAX_TOLERANCE_HZ);
        (self.before_any_speech(&t) && !fax && beep_like(&t) && t.len() <= LONE_BEEP_MAX).then(
            || {
                (
                    AnswerClass::Beep,
                    SignalKind::Beep,
                    format!("{} with no greeting", describe(&t)),
                )
            },
        )
    }

    /// A beep-like tone that ended after speech.
    fn beep(&self) -> Option<Tone> {
        let t = self.tones.last()?;
        let after = self.cadence.first_speech().is_some_and(|s| s < t.start);
        (after && beep_like(&t)).then_some(t)
    }

    /// Rule 4. Once an utterance reached greeting length it stays a greeting, even if it ends
    /// while a phrase is awaited. With transcripts it waits [`PHRASE_GRACE`] for a phrase, and
    /// on while the greeting talks, up to [`PHRASE_MAX`].
    fn greeting(&mut self, at: Duration) -> Option<Verdict> {
        let (since, len) = match self.greeting_at {
            Some(g) => g,
            None => {
                let u = self.cadence.current()?;
                if u.len() < GREETING {
                    return None;
                }
                *self.greeting_at.insert((at, u.len()))
            }
        };
        let talking = self.cadence.current().is_some();
        if self.transcripts && (at < since + PHRASE_GRACE || (talking && at < since + PHRASE_MAX)) {
            return None;
        }
        let detail = format!("greeting {:.1} s", len.as_secs_f32());
        Some((AnswerClass::Machine, SignalKind::Cadence, detail))
    }

    /// Rule 5.
    fn person(&self, at: Duration) -> Option<Verdict> {
        if self.cadence.current().is_some() || self.tones.sounding().is_some() {
            return None;
        }
        let u = self.cadence.last_ended()?;
        let quiet = self.quiet(at)?;
        let short = u.len() <= HUMAN_MAX && quiet >= JOIN;
        let shorter_than_greeting = u.len() < GREETING && quiet >= LONG_QUIET;
        (short || shorter_than_greeting).then(|| {
            let detail = format!(
                "{:.1} s of speech, then {:.1} s quiet",
                u.len().as_secs_f32(),
                quiet.as_secs_f32()
            );
            (AnswerClass::Human, SignalKind::Cadence, detail)
        })
    }

    /// Quiet since the last speech or tone; `None` before any speech.
    fn quiet(&self, at: Duration) -> Option<Duration> {
        let last = self
            .cadence
            .last_speech()?
            .max(self.last_tonal.unwrap_or_default());
        Some(at.saturating_sub(last))
    }

    fn before_any_speech(&self, t: &Tone) -> bool {
        self.cadence.first_speech().is_none_or(|s| s > t.start)
    }

    /// A tone sounding with no speech before it: not something to greet.
    fn lone_tone(&self) -> bool {
        self.tones
            .sounding()
            .is_some_and(|t| self.before_any_speech(&t))
    }

    /// The call ended before a decision: decide now as the deadline would (a person if anyone
    /// spoke, else silence), so every call the session ran on reports a class.
    pub(super) fn conclude(&mut self, at: Duration) {
        if self.class.is_some() {
            return;
        }
        let (class, kind) = if self.cadence.first_speech().is_some() {
            (AnswerClass::Human, SignalKind::Cadence)
        } else {
            (AnswerClass::Silence, SignalKind::Silence)
        };
        let detail = format!(
            "the call ended at {:.1} s, before a decision",
            at.as_secs_f32()
        );
        self.signal(kind, class, at, detail);
        self.class = Some((class, at));
    }

    fn decide_by(&self) -> Duration {
        DECIDE_BY.max(self.opts.silence + Duration::from_secs(1))
    }

    /// The earliest time a tick could change something.
    pub(super) fn deadline(&self) -> Option<Duration> {
        let quiet_from = self
            .cadence
            .last_speech()
            .map(|s| s.max(self.last_tonal.unwrap_or_default()));
        let candidates = match self.class {
            None => {
                // The earliest a greeting may decide; while it talks on, its frames drive it.
                let greeting = self.greeting_at.map(|(g, _)| g + PHRASE_GRACE);
                let person = quiet_from.map(|q| q + JOIN);
                let long = quiet_from.map(|q| q + LONG_QUIET);
                let silence = self
                    .cadence
                    .first_speech()
                    .is_none()
                    .then_some(self.opts.silence);
                let release = self.released.is_none().then_some(self.opts.budget);
                [
                    Some(self.decide_by()),
                    greeting,
                    person,
                    long,
                    silence,
                    release,
                ]
            }
            Some((AnswerClass::Machine, _)) if !self.recording => {
                let after = quiet_from.map(|q| q + AFTER_GREETING);
                [Some(self.opts.max_wait), after, None, None, None, None]
            }
            Some(_) => return None,
        };
        if self.pending {
            // The last step gave an event; another may be due at once.
            return Some(self.now);
        }
        candidates
            .into_iter()
            .flatten()
            .filter(|d| *d > self.now)
            .min()
    }
}

fn beep_like(t: &Tone) -> bool {
    t.ended
        && t.len() >= BEEP_MIN
        && t.len() <= BEEP_MAX
        && (BEEP_LOW_HZ..=BEEP_HIGH_HZ).contains(&t.freq_hz)
}

fn describe(t: &Tone) -> String {
    format!("{:.0} Hz for {} ms", t.freq_hz, t.len().as_millis())
}
