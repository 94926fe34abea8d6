//! The engine's state: the [`Engine`] every part of the loop works on, and the replies it holds
//! ([`Speech`], [`Speculative`]). Behaviour lives in the modules above it: `input` (the callee's
//! side), `speech` (the agent's replies) and the loop in `engine`.

use std::time::Duration;

use tokio::{sync::mpsc, time::Instant};

use super::report::Recorder;
use crate::{
    audio::AudioIo,
    event::SessionEvent,
    metrics::{EndReason, TurnMetrics},
    parts::Parts,
    playout::Playout,
    providers::{
        llm::{ChatContext, ToolCall, ToolSpec},
        stt::SttStream,
    },
    reply::{Reply, ReplyEvent},
    resample::ToRate,
    turn::UserTurn,
    vad::Vad,
};

pub(crate) struct Engine<'s, A: AudioIo> {
    pub(super) s: &'s Parts,
    pub(super) io: A,
    pub(super) stt: SttStream,
    pub(super) stt_open: bool,
    pub(super) resampler: ToRate,
    pub(super) vad: Vad,
    pub(super) user: UserTurn,
    pub(super) ctx: ChatContext,
    pub(super) tools: Vec<ToolSpec>,
    pub(super) speech: Option<Speech>,
    pub(super) speculative: Option<Speculative>,
    pub(super) rec: Recorder,
    pub(super) events: Option<mpsc::UnboundedSender<SessionEvent>>,
    pub(super) started: Instant,
    pub(super) last_activity: Instant,
    pub(super) end: Option<EndReason>,
    pub(super) tool_rounds: u32,
    /// Answering-machine detection, when the session runs it.
    pub(super) gate: Option<super::gate::Gate>,
}

impl<A: AudioIo> Engine<'_, A> {
    pub(super) fn emit(&self, ev: SessionEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(ev);
        }
    }
}

/// A reply and everything known about it so far.
#[derive(Debug)]
pub(super) struct Speech {
    pub reply: Reply,
    pub text: String,
    pub tools: Vec<ToolCall>,
    pub playout: Playout,
    pub llm_ttft: Option<Duration>,
    pub tts_ttfb: Option<Duration>,
    pub first_audio_at: Option<Instant>,
    pub done: bool,
    pub failed: Option<String>,
    /// Barge-in pending a transcript.
    pub paused: Option<Instant>,
    /// Metrics of the user turn this answers (`None` for a greeting or a tool follow-up).
    pub turn: Option<TurnMetrics>,
    pub eot_at: Option<Instant>,
    pub speech_end: Option<Instant>,
}

#[derive(Debug)]
pub(super) struct Speculative {
    pub speech: Speech,
    pub transcript: String,
    pub ctx_version: u64,
    pub started: Instant,
}

pub(super) async fn next_event(sp: Option<&mut Speech>) -> Option<ReplyEvent> {
    match sp {
        Some(sp) if !sp.done && sp.failed.is_none() => sp.reply.next().await,
        _ => std::future::pending().await,
    }
}

impl Speech {
    /// Record one event; returns the accounting the engine keeps (tokens, characters).
    pub(super) fn apply(&mut self, ev: Option<ReplyEvent>) -> (u64, u64, u64) {
        let Some(ev) = ev else {
            self.failed.get_or_insert_with(|| "reply task ended".into());
            return (0, 0, 0);
        };
        match ev {
            ReplyEvent::LlmFirstToken(at) => self.llm_ttft = Some(at - self.reply.started),
            ReplyEvent::Text(t) => self.text.push_str(&t),
            ReplyEvent::TtsChars(n) => return (0, 0, n as u64),
            ReplyEvent::TtsFirstAudio { sent_at, at } => {
                self.tts_ttfb = Some(at.saturating_duration_since(sent_at));
                self.first_audio_at = Some(at);
            }
            ReplyEvent::Audio(pcm) => self.playout.push_audio(&pcm),
            ReplyEvent::Words(w) => self.playout.push_words(w),
            ReplyEvent::ToolCall(c) => self.tools.push(c),
            ReplyEvent::Usage {
                prompt_tokens,
                completion_tokens,
            } => return (prompt_tokens, completion_tokens, 0),
            ReplyEvent::Done => {
                self.done = true;
                self.playout.input_done();
            }
            ReplyEvent::Failed(why) => self.failed = Some(why),
        }
        (0, 0, 0)
    }
}

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
