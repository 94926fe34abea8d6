//! The call's first seconds (answering-machine detection): the gate (`gate.rs`) holds the agent
//! back while the classifier (`crate::answer`) listens, releases it for a person (or when the budget runs out), and
//! carries out the policy for anything else: hang up, or wait for the beep, speak the
//! voicemail message once and hang up, or let the agent carry on.
//!
//! While the gate holds, the callee's turns are written to the transcript and the context but
//! get no reply, no speculative LLM request is made, and the silence timeout waits: a voicemail
//! greeting is heard, never answered. While the message plays, barge-in is off (the box is
//! recording, not talking).

use std::time::Duration;

use callfleet_domain::answering::{AnswerAction, AnswerClass};
use tokio::time::Instant;

use super::{gate::Phase, state::Engine};
use crate::{
    answer::AnswerEvent,
    audio::{AudioFrame, AudioIo},
    event::SessionEvent,
    metrics::{EndReason, SpeakerRole},
    providers::llm::{ChatMessage, Role},
};

impl<A: AudioIo> Engine<'_, A> {
    /// The agent may not take a turn: the answer is still being classified, or the call is a
    /// voicemail whose message is pending or playing.
    pub(super) fn held(&self) -> bool {
        self.gate
            .as_ref()
            .is_some_and(|g| g.released.is_none() || g.phase != Phase::Listening)
    }

    /// Nothing is decided yet and the agent is not released: the callee's words wait as they
    /// are (a person's first turn is answered once released; a machine's is only written down).
    pub(super) fn undecided(&self) -> bool {
        self.gate
            .as_ref()
            .is_some_and(|g| g.released.is_none() && g.action.is_none())
    }

    /// The voicemail message is playing: nothing the line does interrupts it.
    pub(super) fn leaving_message(&self) -> bool {
        self.gate
            .as_ref()
            .is_some_and(|g| g.phase == Phase::Message)
    }

    /// Whether the silence timeout may end the call now (not while the gate decides or waits).
    pub(super) fn silence_may_end(&self) -> bool {
        self.gate.as_ref().is_none_or(|g| {
            g.phase == Phase::Listening && g.released.is_some() && g.classifier.class().is_some()
        })
    }

    pub(super) fn gate_deadline(&self) -> Option<Instant> {
        let g = self.gate.as_ref()?;
        let classifier = g.classifier.next_deadline().map(|d| g.answered + d + g.lag);
        let beep = (g.phase == Phase::AwaitingBeep)
            .then(|| g.answered + Duration::from_millis(g.policy.max_wait_ms));
        [classifier, beep].into_iter().flatten().min()
    }

    /// One frame of the callee's audio, with the VAD's verdict on it.
    pub(super) fn gate_audio(&mut self, frame: &AudioFrame, now: Instant) {
        let speech = self.vad.speaking();
        let Some(g) = self.gate.as_mut() else { return };
        g.lag = frame.behind;
        let at = g.at(now);
        let ev = g
            .classifier
            .push_audio(&frame.samples, frame.sample_rate, speech, at);
        self.on_answer_event(ev, now);
    }

    pub(super) fn gate_transcript(&mut self, text: &str, is_final: bool, now: Instant) {
        let Some(g) = self.gate.as_mut() else { return };
        let at = g.at(now);
        let ev = g.classifier.push_transcript(text, is_final, at);
        self.on_answer_event(ev, now);
    }

    /// Time-driven decisions: the budget, silence, the classifier's own limits, and a beep that
    /// never came.
    pub(super) fn gate_tick(&mut self, now: Instant) {
        let Some(g) = self.gate.as_mut() else { return };
        let at = g.at(now);
        let ev = g.classifier.tick(at);
        let beep_overdue =
            g.phase == Phase::AwaitingBeep && at >= Duration::from_millis(g.policy.max_wait_ms);
        let class = g.classifier.class();
        self.on_answer_event(ev, now);
        if beep_overdue && self.end.is_none() {
            tracing::info!("voice.answer: no beep within the wait; hanging up without a message");
            self.end = Some(EndReason::AnswerPolicy {
                class: class.unwrap_or(AnswerClass::Machine),
                message_left: false,
            });
        }
    }

    /// The voicemail message has played to its end: hang up.
    pub(super) fn gate_message_done(&mut self) {
        if self.leaving_message() && self.speech.is_none() && self.end.is_none() {
            let class = self.gate.as_ref().and_then(|g| g.classifier.class());
            self.end = Some(EndReason::AnswerPolicy {
                class: class.unwrap_or(AnswerClass::Machine),
                message_left: true,
            });
        }
    }

    fn on_answer_event(&mut self, ev: Option<AnswerEvent>, now: Instant) {
        let Some(ev) = ev else { return };
        match ev {
            AnswerEvent::Release => self.release(now),
            AnswerEvent::Classified(class) => self.classified(class, now),
            AnswerEvent::Recording { beep } => {
                if self
                    .gate
                    .as_ref()
                    .is_some_and(|g| g.phase == Phase::AwaitingBeep)
                {
                    tracing::info!(beep, "voice.answer: the box records; leaving the message");
                    self.leave_message();
                }
            }
        }
    }

    fn classified(&mut self, class: AnswerClass, now: Instant) {
        let Some(g) = self.gate.as_mut() else { return };
        let action = g.policy.action(class);
        g.action = Some(action);
        tracing::info!(
            class = class.as_str(),
            action = action.as_str(),
            after_ms = g.since(now).as_millis() as u64,
            "voice.answer: classified"
        );
        self.emit(SessionEvent::Classified { class });
        match action {
            AnswerAction::Continue => self.release(now),
            AnswerAction::Hangup => {
                self.end = Some(EndReason::AnswerPolicy {
                    class,
                    message_left: false,
                });
            }
            AnswerAction::LeaveMessage => {
                self.silence_agent(now);
                if let Some(g) = self.gate.as_mut() {
                    g.phase = Phase::AwaitingBeep;
                }
                if class == AnswerClass::Beep {
                    self.leave_message();
                }
            }
        }
    }

    /// Let the agent speak: its greeting, or its answer to what the callee already said.
    fn release(&mut self, now: Instant) {
        let Some(g) = self.gate.as_mut() else { return };
        if g.released.is_some() {
            return;
        }
        g.released = Some(now);
        match self.s.cfg.greeting.clone() {
            Some(greeting) => {
                // The greeting answers the callee's "hello?": no second reply to it.
                self.hold_turn(now);
                if self.speech.is_none() {
                    self.start_greeting(&greeting);
                }
            }
            // No greeting: the callee's words so far are the first turn, answered as usual (now,
            // if its end of turn has passed while the gate held it; else when it comes).
            None => {
                if self
                    .user
                    .deadline(&self.s.opts.endpointing)
                    .is_some_and(|d| d <= now)
                {
                    self.commit_turn(now);
                }
            }
        }
    }

    /// A turn heard while the gate holds: into the transcript and the context, unanswered.
    pub(super) fn hold_turn(&mut self, now: Instant) {
        let speech_end = self.user.last_speech_end;
        let start = self.user.first_speech.unwrap_or(now);
        let text = self.user.take_text();
        self.user.reset();
        if text.is_empty() {
            return;
        }
        self.rec.entry(
            SpeakerRole::User,
            &text,
            start,
            speech_end.unwrap_or(now),
            false,
        );
        self.ctx.push(ChatMessage::new(Role::User, text));
    }

    /// Stop whatever the agent was saying or preparing (a tentative release met a machine).
    fn silence_agent(&mut self, now: Instant) {
        if self.speech.is_some() {
            self.interrupt(now);
        }
        if self.speculative.take().is_some() {
            self.rec.preemptive.discarded += 1;
        }
    }

    fn leave_message(&mut self) {
        // The greeting heard so far goes into the transcript before the message.
        self.hold_turn(Instant::now());
        let Some(g) = self.gate.as_mut() else { return };
        g.phase = Phase::Message;
        match g.policy.voicemail_message.clone() {
            Some(text) => self.say(&text),
            // Resolution refuses leave_message without a message; never leave silence.
            None => {
                self.end = Some(EndReason::AnswerPolicy {
                    class: AnswerClass::Machine,
                    message_left: false,
                });
            }
        }
    }
}
