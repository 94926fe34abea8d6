//! Agent replies: speculative and committed, playout, interruption and resumption, and what a
//! finished reply leaves behind (transcript, metrics, tool actions).

use tokio::time::Instant;

use super::state::{Engine, Speculative, Speech, ms};
use crate::{
    audio::{AudioError, AudioIo},
    event::SessionEvent,
    metrics::{EndReason, SpeakerRole, TurnMetrics},
    playout::Playout,
    providers::llm::{ChatMessage, Role, ToolCall},
    reply::{Reply, ReplyEvent},
    tools::{self, ToolAction},
};

/// How pressed keys read in the transcript.
pub(super) fn dtmf_text(digits: &str) -> String {
    format!("[DTMF {digits}]")
}

impl<A: AudioIo> Engine<'_, A> {
    fn new_speech(&self, messages: Vec<ChatMessage>) -> Speech {
        self.speech_of(Reply::spawn(
            &self.s.llm,
            &self.s.tts,
            messages,
            &self.tools,
        ))
    }

    fn speech_of(&self, reply: Reply) -> Speech {
        let o = &self.s.opts;
        Speech {
            reply,
            text: String::new(),
            tools: Vec::new(),
            playout: Playout::new(self.s.tts.sample_rate(), o.output_frame),
            llm_ttft: None,
            tts_ttfb: None,
            first_audio_at: None,
            done: false,
            failed: None,
            paused: None,
            turn: None,
            eot_at: None,
            speech_end: None,
        }
    }

    fn account(&mut self, (p, c, chars): (u64, u64, u64)) {
        self.rec.prompt_tokens += p;
        self.rec.completion_tokens += c;
        self.rec.tts_chars += chars;
    }

    pub(super) fn start_greeting(&mut self, instructions: &str) {
        let mut messages = self.ctx.messages().to_vec();
        messages.push(ChatMessage::new(Role::System, instructions));
        self.speech = Some(self.new_speech(messages));
    }

    pub(super) fn on_speech_event(&mut self, ev: Option<ReplyEvent>, now: Instant) {
        let Some(sp) = self.speech.as_mut() else {
            return;
        };
        let acc = sp.apply(ev);
        self.account(acc);
        let failed = self.speech.as_ref().and_then(|s| s.failed.clone());
        if let Some(why) = failed {
            tracing::warn!(error = %why, "voice.reply_failed");
            if let Some(sp) = self.speech.take() {
                self.record_cut_speech(sp, now);
            }
            self.end = Some(EndReason::Error { message: why });
        }
    }

    pub(super) fn on_speculative_event(&mut self, ev: Option<ReplyEvent>) {
        let Some(spec) = self.speculative.as_mut() else {
            return;
        };
        let acc = spec.speech.apply(ev);
        let failed = spec.speech.failed.is_some();
        self.account(acc);
        if failed {
            self.speculative = None;
            self.rec.preemptive.discarded += 1;
        }
    }

    /// On a final transcript with the callee quiet (or already pausing: the VAD confirms the
    /// end of speech only after its minimum silence), start the reply on a copy of the context.
    pub(super) fn maybe_preempt(&mut self, now: Instant) {
        let pausing = !self.vad.silence_run().is_zero();
        if !self.s.cfg.preemptive_generation
            || self.held()
            || (self.user.speaking && !pausing)
            || self.speech.is_some()
        {
            return;
        }
        let text = self.user.transcript().to_owned();
        if text.is_empty() {
            return;
        }
        if let Some(spec) = &self.speculative
            && spec.transcript == text
            && spec.ctx_version == self.ctx.version()
        {
            return;
        }
        if self.speculative.take().is_some() {
            self.rec.preemptive.discarded += 1;
        }
        let messages = self.ctx.with(ChatMessage::new(Role::User, text.clone()));
        self.speculative = Some(Speculative {
            speech: self.new_speech(messages),
            transcript: text,
            ctx_version: self.ctx.version(),
            started: now,
        });
        self.rec.preemptive.started += 1;
    }

    /// End of the callee's turn: record it and start (or adopt) the reply.
    pub(super) fn commit_turn(&mut self, now: Instant) {
        let speech_end = self.user.last_speech_end;
        let last_final = self.user.last_final_at;
        let first_speech = self.user.first_speech;
        let text = self.user.take_text();
        self.user.reset();
        if text.is_empty() {
            return;
        }
        if self.speech.is_some() {
            self.interrupt(now);
        }
        self.rec.turn_no += 1;
        let mut m = TurnMetrics {
            turn: self.rec.turn_no,
            end_of_utterance_delay_ms: speech_end.map(|e| ms(now.saturating_duration_since(e))),
            transcription_delay_ms: match (last_final, speech_end) {
                (Some(f), Some(e)) => Some(ms(f.saturating_duration_since(e))),
                _ => None,
            },
            ..TurnMetrics::default()
        };
        let start = first_speech.unwrap_or(now);
        self.rec.entry(
            SpeakerRole::User,
            &text,
            start,
            speech_end.unwrap_or(now),
            false,
        );
        let adopted = match self.speculative.take() {
            Some(spec) if spec.transcript == text && spec.ctx_version == self.ctx.version() => {
                let until = spec.speech.first_audio_at.map_or(now, |a| a.min(now));
                let saved = until.saturating_duration_since(spec.started);
                m.preemptive = Some("reused".into());
                m.preemptive_saved_ms = Some(ms(saved));
                self.rec.preemptive.reused += 1;
                self.rec.preemptive.saved_ms += ms(saved);
                Some(spec.speech)
            }
            Some(_) => {
                m.preemptive = Some("discarded".into());
                self.rec.preemptive.discarded += 1;
                None
            }
            None => {
                m.preemptive = Some("none".into());
                None
            }
        };
        self.ctx.push(ChatMessage::new(Role::User, text));
        let mut sp = adopted.unwrap_or_else(|| self.new_speech(self.ctx.messages().to_vec()));
        sp.turn = Some(m);
        sp.eot_at = Some(now);
        sp.speech_end = speech_end;
        self.speech = Some(sp);
        self.tool_rounds = 0;
    }

    /// Send the frames that are due.
    pub(super) async fn pump_audio(&mut self) -> Result<(), AudioError> {
        let lead = self.s.opts.playout_lead;
        loop {
            let Some(sp) = self.speech.as_mut() else {
                return Ok(());
            };
            if sp.paused.is_some() {
                return Ok(());
            }
            let first = sp.playout.first_sent_at.is_none();
            let Some(frame) = sp.playout.next_frame(Instant::now(), lead) else {
                return Ok(());
            };
            self.io.send(frame).await?;
            if first {
                let t = Instant::now();
                self.rec.first_audio_at.get_or_insert(t);
                if let Some(m) = sp.turn.as_mut() {
                    m.e2e_latency_ms = sp.speech_end.map(|e| ms(t.saturating_duration_since(e)));
                    m.response_latency_ms = sp.eot_at.map(|e| ms(t.saturating_duration_since(e)));
                }
                self.emit(SessionEvent::AgentSpeaking);
            }
        }
    }

    /// Barge-in: stop playback now, keep the reply until we know whether it was real.
    pub(super) fn pause(&mut self, now: Instant) {
        let Some(sp) = self.speech.as_mut() else {
            return;
        };
        if sp.paused.is_some() {
            return;
        }
        self.io.clear();
        sp.playout.pause(now);
        sp.paused = Some(now);
        self.emit(SessionEvent::Interrupted);
    }

    /// False interruption: carry on from where playback stopped.
    pub(super) fn resume(&mut self) {
        let Some(sp) = self.speech.as_mut() else {
            return;
        };
        sp.paused = None;
        self.rec.false_interruptions += 1;
        self.user.reset();
        self.emit(SessionEvent::Resumed);
    }

    /// A confirmed interruption: the reply is cut to what was heard and dropped.
    pub(super) fn interrupt(&mut self, now: Instant) {
        self.pause(now);
        if let Some(sp) = self.speech.take() {
            self.record_cut_speech(sp, now);
        }
    }

    /// Record a reply that did not play to its end.
    pub(super) fn record_cut_speech(&mut self, sp: Speech, now: Instant) {
        let heard = sp.playout.heard_text(now, &sp.text);
        let complete = sp.done && sp.playout.finished(now);
        if !heard.is_empty() {
            let start = sp.playout.first_sent_at.unwrap_or(now);
            let end = sp.paused.unwrap_or(now);
            self.rec
                .entry(SpeakerRole::Assistant, &heard, start, end, !complete);
            self.ctx.push(ChatMessage::new(Role::Assistant, heard));
        }
        if let Some(mut m) = sp.turn {
            m.llm_ttft_ms = sp.llm_ttft.map(ms);
            m.tts_ttfb_ms = sp.tts_ttfb.map(ms);
            m.interrupted = !complete;
            self.emit(SessionEvent::TurnMetrics(m.clone()));
            self.rec.turns.push(m);
        }
        self.last_activity = now;
    }

    /// A reply that has fully played: record it, then act on its tool calls.
    pub(super) fn check_speech_done(&mut self, now: Instant) {
        let finished = self
            .speech
            .as_ref()
            .is_some_and(|sp| sp.done && sp.paused.is_none() && sp.playout.finished(now));
        if !finished {
            return;
        }
        let Some(mut sp) = self.speech.take() else {
            return;
        };
        let calls = std::mem::take(&mut sp.tools);
        let text = sp.text.trim().to_owned();
        if !text.is_empty() && sp.playout.has_audio() {
            let start = sp.playout.first_sent_at.unwrap_or(now);
            self.rec
                .entry(SpeakerRole::Assistant, &text, start, now, false);
        }
        let mut msg = ChatMessage::new(Role::Assistant, text);
        msg.tool_calls = calls.clone();
        if !msg.content.is_empty() || !msg.tool_calls.is_empty() {
            self.ctx.push(msg);
        }
        if let Some(mut m) = sp.turn.take() {
            m.llm_ttft_ms = sp.llm_ttft.map(ms);
            m.tts_ttfb_ms = sp.tts_ttfb.map(ms);
            self.emit(SessionEvent::TurnMetrics(m.clone()));
            self.rec.turns.push(m);
        }
        self.last_activity = now;
        self.run_tools(&calls);
    }

    /// A reply that only speaks `text` (a voicemail message): the TTS, no LLM.
    pub(super) fn say(&mut self, text: &str) {
        self.speech = Some(self.speech_of(Reply::say(&self.s.tts, text)));
    }

    fn run_tools(&mut self, calls: &[ToolCall]) {
        let mut follow_up = false;
        for call in calls {
            match tools::parse(call) {
                ToolAction::EndCall { reason } => {
                    self.emit(SessionEvent::EndCall {
                        reason: reason.clone(),
                    });
                    self.end = Some(EndReason::AgentEnded { reason });
                    return;
                }
                ToolAction::Transfer { reason } => match self.s.cfg.transfer_target.clone() {
                    Some(target) => {
                        self.emit(SessionEvent::Transfer {
                            target: target.clone(),
                            reason,
                        });
                        self.end = Some(EndReason::Transferred { target });
                        return;
                    }
                    None => {
                        self.ctx.push(ChatMessage::tool_result(
                            &call.id,
                            "No transfer target is configured for this call.",
                        ));
                        follow_up = true;
                    }
                },
                ToolAction::SendDtmf { call_id, digits } => {
                    let now = Instant::now();
                    self.rec
                        .entry(SpeakerRole::Assistant, &dtmf_text(&digits), now, now, false);
                    self.emit(SessionEvent::SendDtmf {
                        digits: digits.clone(),
                    });
                    self.ctx.push(ChatMessage::tool_result(
                        &call_id,
                        format!("Pressed {digits}. Wait for what the line says next."),
                    ));
                }
                ToolAction::Invalid { call_id, message } => {
                    self.ctx.push(ChatMessage::tool_result(&call_id, message));
                    follow_up = true;
                }
            }
        }
        if follow_up && self.tool_rounds < self.s.opts.max_tool_rounds {
            self.tool_rounds += 1;
            self.speech = Some(self.new_speech(self.ctx.messages().to_vec()));
        }
    }
}
