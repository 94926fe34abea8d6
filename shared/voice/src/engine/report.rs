//! Collects usage, per-turn metrics and the transcript as the session runs.

use jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

use crate::{
    config::SessionConfig,
    metrics::{
        EndReason, LlmUsage, PreemptiveStats, SessionReport, SpeakerRole, SttUsage,
        TranscriptEntry, TtsUsage, TurnMetrics, Usage,
    },
    providers::stt::STT_SAMPLE_RATE,
};

#[derive(Debug)]
pub(super) struct Recorder {
    base: Instant,
    base_wall: Timestamp,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub tts_chars: u64,
    pub stt_samples: u64,
    pub turn_no: u32,
    pub turns: Vec<TurnMetrics>,
    pub transcript: Vec<TranscriptEntry>,
    pub preemptive: PreemptiveStats,
    pub false_interruptions: u32,
    /// The first agent audio frame handed to the transport.
    pub first_audio_at: Option<Instant>,
}

impl Recorder {
    pub fn new(base: Instant, base_wall: Timestamp) -> Self {
        Self {
            base,
            base_wall,
            prompt_tokens: 0,
            completion_tokens: 0,
            tts_chars: 0,
            stt_samples: 0,
            turn_no: 0,
            turns: Vec::new(),
            transcript: Vec::new(),
            preemptive: PreemptiveStats::default(),
            false_interruptions: 0,
            first_audio_at: None,
        }
    }

    /// The wall-clock time of a monotonic instant.
    pub fn wall(&self, at: Instant) -> Timestamp {
        let offset = SignedDuration::try_from(at.saturating_duration_since(self.base))
            .unwrap_or(SignedDuration::ZERO);
        self.base_wall.checked_add(offset).unwrap_or(self.base_wall)
    }

    pub fn entry(
        &mut self,
        role: SpeakerRole,
        text: &str,
        start: Instant,
        end: Instant,
        interrupted: bool,
    ) {
        self.transcript.push(TranscriptEntry {
            role,
            text: text.to_owned(),
            started_at: self.wall(start),
            ended_at: self.wall(end),
            interrupted,
        });
    }

    pub fn report(self, cfg: &SessionConfig, reason: EndReason, now: Instant) -> SessionReport {
        let end = self.wall(now);
        let name = |s: String| s.to_ascii_lowercase();
        let usage = Usage {
            llm: vec![LlmUsage {
                provider: name(format!("{:?}", cfg.llm.provider)),
                model: cfg.llm.model.clone(),
                prompt_tokens: self.prompt_tokens,
                completion_tokens: self.completion_tokens,
            }],
            tts: vec![TtsUsage {
                provider: name(format!("{:?}", cfg.tts.provider)),
                model: cfg.tts.model.clone(),
                characters: self.tts_chars,
            }],
            stt: vec![SttUsage {
                provider: name(format!("{:?}", cfg.stt.provider)),
                model: cfg.stt.model.clone(),
                audio_seconds: self.stt_samples as f64 / f64::from(STT_SAMPLE_RATE),
            }],
        };
        let first_audio_at = self.first_audio_at.map(|t| self.wall(t));
        SessionReport {
            first_audio_at,
            session_start: self.base_wall,
            session_end: end,
            session_duration_seconds: now.saturating_duration_since(self.base).as_secs_f64(),
            end_reason: reason,
            usage,
            turns: self.turns,
            transcript: self.transcript,
            preemptive: self.preemptive,
            false_interruptions: self.false_interruptions,
            answer: None,
            session_config: cfg.clone(),
        }
    }
}
