//! The gate's data (answering-machine detection): the classifier, the call's policy, and where
//! the call stands. A leaf below `state`; what the engine does with it is `answer`.

use std::time::Duration;

use callfleet_domain::answering::{AnswerAction, AnswerReport};
use tokio::time::Instant;

use crate::{
    answer::{AnswerOptions, Classifier},
    config::Answering,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Classifying; the agent speaks once released.
    Listening,
    /// A voicemail whose message waits for the beep (or the greeting's end).
    AwaitingBeep,
    /// The voicemail message is playing.
    Message,
}

pub(super) struct Gate {
    pub classifier: Classifier,
    pub policy: Answering,
    pub answered: Instant,
    pub released: Option<Instant>,
    pub action: Option<AnswerAction>,
    pub phase: Phase,
    /// How far the callee's audio runs behind the clock: the backlog behind the last frame
    /// taken. The classifier runs on the audio's time, so a backlog keeps its own timing.
    pub lag: Duration,
}

impl Gate {
    /// `answered`: when the callee picked up (the session starts a little later, once the
    /// worker has joined the room).
    pub(super) fn new(policy: &Answering, language: Option<&str>, answered: Instant) -> Self {
        let opts = AnswerOptions {
            budget: Duration::from_millis(policy.budget_ms),
            max_wait: Duration::from_millis(policy.max_wait_ms),
            silence: Duration::from_millis(policy.silence_ms),
            language: language.unwrap_or("en").to_owned(),
            transcribed: true,
        };
        Self {
            classifier: Classifier::new(opts),
            policy: policy.clone(),
            answered,
            released: None,
            action: None,
            phase: Phase::Listening,
            lag: Duration::ZERO,
        }
    }

    pub(super) fn since(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.answered)
    }

    /// The classifier's time at `now`: since the answer, on the audio's clock.
    pub(super) fn at(&self, now: Instant) -> Duration {
        self.since(now.checked_sub(self.lag).unwrap_or(now))
    }

    pub(super) fn report(&self) -> Option<AnswerReport> {
        let released = self.released.map(|r| self.since(r));
        self.classifier
            .report(self.action.unwrap_or(AnswerAction::Continue), released)
    }
}
