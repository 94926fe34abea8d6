//! The session loop. One task owns the audio, the STT stream, the committed reply (`speech`)
//! and at most one speculative reply, and reacts to whichever is ready first. All state changes
//! happen here, so there are no locks; provider I/O runs in the reply and STT tasks.
//!
//! A turn: callee audio -> VAD + STT -> [`UserTurn`] -> end of turn -> commit (reuse the
//! speculative reply or start one) -> playout paced by [`Playout`](crate::playout::Playout) ->
//! finalize (transcript, metrics, tools).
//!
//! Layers, each using only those below it: this module (the loop: `run`, `tick`, deadlines) ->
//! `input` (the callee's audio and transcripts, barge-in, keys) -> `answer` (answering-machine
//! detection: holds the greeting, carries out the class's policy) -> `speech` (the agent's
//! replies: commit, playout, tools, a fixed message) -> `state` (the [`Engine`] and the replies
//! it holds), `gate` (the classifier and where the call stands) and `report` (the [`Recorder`]).

mod answer;
mod gate;
mod input;
mod report;
mod speech;
mod state;

use jiff::Timestamp;
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::{
    audio::{AudioFrame, AudioIo, Input},
    event::SessionEvent,
    metrics::{EndReason, SessionReport},
    parts::Parts,
    providers::{llm::ChatContext, stt::STT_SAMPLE_RATE, stt::SttEvent},
    reply::ReplyEvent,
    resample::ToRate,
    tools,
    turn::UserTurn,
};

use report::Recorder;
pub(crate) use state::Engine;
use state::next_event;

enum Wake {
    Cancelled,
    Audio(Option<AudioFrame>),
    Stt(Option<SttEvent>),
    Speech(Option<ReplyEvent>),
    Speculative(Option<ReplyEvent>),
    Dtmf(char),
    Timer,
}

impl<'s, A: AudioIo> Engine<'s, A> {
    pub fn new(s: &'s Parts, io: A, events: Option<mpsc::UnboundedSender<SessionEvent>>) -> Self {
        let now = Instant::now();
        Self {
            s,
            io,
            stt: s.stt.start(),
            stt_open: true,
            resampler: ToRate::new(STT_SAMPLE_RATE),
            vad: s.vad.start(),
            user: UserTurn::default(),
            ctx: ChatContext::new(&s.cfg.prompt),
            tools: tools::specs(s.cfg.transfer_target.is_some()),
            speech: None,
            speculative: None,
            rec: Recorder::new(now, Timestamp::now()),
            events,
            started: now,
            last_activity: now,
            end: None,
            tool_rounds: 0,
            gate: s.cfg.answering.as_ref().map(|a| {
                let answered = now.checked_sub(s.opts.answered_ago).unwrap_or(now);
                gate::Gate::new(a, s.cfg.language.as_deref(), answered)
            }),
        }
    }

    pub async fn run(mut self, cancel: CancellationToken) -> SessionReport {
        self.s.tts.prewarm();
        // With answering-machine detection the gate releases the greeting.
        if let Some(greeting) = self.s.cfg.greeting.clone()
            && self.gate.is_none()
        {
            self.start_greeting(&greeting);
        }
        loop {
            if let Some(reason) = self.end.take() {
                return self.finish(reason);
            }
            let deadline = self.next_deadline();
            let wake = tokio::select! {
                biased;
                () = cancel.cancelled() => Wake::Cancelled,
                f = self.io.recv_input() => match f {
                    Some(Input::Audio(frame)) => Wake::Audio(Some(frame)),
                    Some(Input::Dtmf(d)) => Wake::Dtmf(d),
                    None => Wake::Audio(None),
                },
                e = self.stt.next(), if self.stt_open => Wake::Stt(e),
                e = next_event(self.speech.as_mut()) => Wake::Speech(e),
                e = next_event(self.speculative.as_mut().map(|s| &mut s.speech)) => Wake::Speculative(e),
                () = sleep_until(deadline) => Wake::Timer,
            };
            let now = Instant::now();
            match wake {
                Wake::Cancelled => self.end = Some(EndReason::Cancelled),
                Wake::Audio(None) => self.end = Some(EndReason::CalleeHungUp),
                Wake::Audio(Some(frame)) => self.on_audio(&frame, now),
                Wake::Stt(ev) => self.on_stt(ev, now),
                Wake::Speech(ev) => self.on_speech_event(ev, now),
                Wake::Speculative(ev) => self.on_speculative_event(ev),
                Wake::Dtmf(digit) => self.on_dtmf(digit, now),
                Wake::Timer => {}
            }
            if self.end.is_none() {
                self.tick(Instant::now()).await;
            }
        }
    }

    /// Time-driven decisions, then send whatever audio is due.
    async fn tick(&mut self, now: Instant) {
        self.gate_tick(now);
        if self.end.is_some() {
            return;
        }
        self.check_interruption(now);
        self.check_false_interruption(now);
        if let Some(at) = self.user.deadline(&self.s.opts.endpointing)
            && at <= now
        {
            if !self.held() {
                self.commit_turn(now);
            } else if !self.undecided() {
                self.hold_turn(now);
            }
        }
        if let Err(e) = self.pump_audio().await {
            self.end = Some(EndReason::Error {
                message: format!("audio: {e}"),
            });
            return;
        }
        self.check_speech_done(Instant::now());
        self.gate_message_done();
        let quiet = self.speech.is_none()
            && !self.user.speaking
            && !self.user.heard_words()
            && self.silence_may_end();
        if quiet && now.duration_since(self.last_activity) >= self.s.opts.silence_timeout {
            self.end = Some(EndReason::SilenceTimeout);
        }
        if now.duration_since(self.started) >= self.s.opts.max_duration {
            self.end = Some(EndReason::MaxDuration);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let o = &self.s.opts;
        // An undecided answer keeps the callee's turn waiting (its deadline has passed).
        let turn = (!self.undecided())
            .then(|| self.user.deadline(&o.endpointing))
            .flatten();
        let mut d = vec![turn, Some(self.started + o.max_duration)];
        if self.speech.is_none() && !self.user.speaking && self.silence_may_end() {
            d.push(Some(self.last_activity + o.silence_timeout));
        }
        d.push(self.gate_deadline());
        if let Some(sp) = &self.speech {
            match &sp.paused {
                None => {
                    d.push(sp.playout.wake_at(o.playout_lead));
                    if sp.done {
                        d.push(sp.playout.drained_at());
                    }
                    if self.user.speaking {
                        d.push(self.user.current_speech.map(|t| t + o.min_interruption));
                    }
                }
                Some(_) if !self.user.speaking => {
                    d.push(
                        self.user
                            .last_speech_end
                            .map(|t| t + o.false_interruption_timeout),
                    );
                }
                Some(_) => {}
            }
        }
        d.into_iter().flatten().min()
    }

    fn finish(mut self, reason: EndReason) -> SessionReport {
        let now = Instant::now();
        if let Some(sp) = self.speech.take() {
            self.record_cut_speech(sp, now);
        }
        if self.speculative.take().is_some() {
            self.rec.preemptive.discarded += 1;
        }
        if self.held() {
            // What a machine said before its policy ended the call.
            self.hold_turn(now);
        }
        self.stt.finish();
        if let Some(g) = self.gate.as_mut() {
            let at = g.since(now);
            g.classifier.finish(at);
        }
        let answer = self.gate.as_ref().and_then(gate::Gate::report);
        let mut report = self.rec.report(&self.s.cfg, reason, now);
        report.answer = answer;
        report
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
