//! Callee audio and STT events: VAD, transcripts, interruptions.

use tokio::time::Instant;

use super::state::Engine;
use crate::{
    audio::{AudioFrame, AudioIo},
    event::SessionEvent,
    metrics::{EndReason, SpeakerRole},
    providers::llm::{ChatMessage, Role},
    providers::stt::SttEvent,
    vad::VadEvent,
};

impl<A: AudioIo> Engine<'_, A> {
    pub(super) fn on_audio(&mut self, frame: &AudioFrame, now: Instant) {
        // When the callee said it: a frame from a backlog was heard before it is seen.
        let heard = now.checked_sub(frame.behind).unwrap_or(now);
        let mut pcm = Vec::with_capacity(frame.samples.len());
        self.resampler
            .push(&frame.samples, frame.sample_rate, &mut pcm);
        self.rec.stt_samples += pcm.len() as u64;
        if !self.stt.push(pcm) {
            tracing::debug!("stt.audio_dropped");
        }
        match self.vad.push(&frame.samples, frame.sample_rate) {
            Some(VadEvent::StartOfSpeech { ago }) => {
                let at = heard.checked_sub(ago).unwrap_or(heard);
                self.user.speech_started(at);
                self.last_activity = now;
            }
            Some(VadEvent::EndOfSpeech { ago }) => {
                let at = heard.checked_sub(ago).unwrap_or(heard);
                self.user.speech_ended(at);
                self.last_activity = now;
                self.maybe_preempt(now);
            }
            None => {}
        }
        self.gate_audio(frame, now);
    }

    /// A key the callee pressed: in the transcript and the context, as `[DTMF 2]`.
    pub(super) fn on_dtmf(&mut self, digit: char, now: Instant) {
        let text = super::speech::dtmf_text(&digit.to_string());
        self.rec.entry(SpeakerRole::User, &text, now, now, false);
        self.ctx.push(ChatMessage::new(Role::User, text));
        self.last_activity = now;
        self.emit(SessionEvent::CalleeDtmf { digit });
    }

    pub(super) fn on_stt(&mut self, ev: Option<SttEvent>, now: Instant) {
        let stt = self.s.stt.config().provider.name();
        let Some(ev) = ev else {
            self.stt_open = false;
            self.end = Some(EndReason::Error {
                message: format!("stt ({stt}): stream ended"),
            });
            return;
        };
        match ev {
            SttEvent::Interim { text } => {
                self.gate_transcript(&text, false, now);
                self.user.interim(&text);
                self.on_words(now);
                self.emit(SessionEvent::UserTranscript {
                    text,
                    is_final: false,
                });
            }
            SttEvent::Final { text } => {
                self.gate_transcript(&text, true, now);
                self.user.final_segment(&text, now);
                self.on_words(now);
                self.maybe_preempt(now);
                self.emit(SessionEvent::UserTranscript {
                    text,
                    is_final: true,
                });
            }
            SttEvent::TurnTranscript { text } => {
                self.gate_transcript(&text, true, now);
                self.user.replace_transcript(&text, now);
                self.on_words(now);
                self.maybe_preempt(now);
                self.emit(SessionEvent::UserTranscript {
                    text,
                    is_final: true,
                });
            }
            SttEvent::EndOfTurn => self.user.stt_end_of_turn(),
            SttEvent::SpeechStarted => {}
            SttEvent::Error(message) => {
                self.stt_open = false;
                self.end = Some(EndReason::Error {
                    message: format!("stt ({stt}): {message}"),
                });
            }
        }
    }

    /// Words while the agent has the floor: a real interruption.
    fn on_words(&mut self, now: Instant) {
        if self.user.heard_words() && self.speech.is_some() && !self.leaving_message() {
            self.interrupt(now);
        }
    }

    /// Long enough speech while the agent speaks stops playback (pending a transcript).
    pub(super) fn check_interruption(&mut self, now: Instant) {
        let Some(sp) = &self.speech else { return };
        if sp.paused.is_some() || !self.user.speaking || self.leaving_message() {
            return;
        }
        let Some(since) = self.user.current_speech else {
            return;
        };
        if now.duration_since(since) >= self.s.opts.min_interruption {
            self.pause(now);
        }
    }

    /// A pause with no words once the callee fell quiet again: resume the reply.
    pub(super) fn check_false_interruption(&mut self, now: Instant) {
        let o = &self.s.opts;
        let Some(sp) = &self.speech else { return };
        if sp.paused.is_none() || self.user.speaking || self.user.heard_words() {
            return;
        }
        let quiet_since = self.user.last_speech_end.unwrap_or(now);
        if now.duration_since(quiet_since) < o.false_interruption_timeout {
            return;
        }
        if o.resume_false_interruption {
            self.resume();
        } else {
            self.interrupt(now);
        }
    }
}
