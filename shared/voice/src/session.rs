//! The public face of the engine: build a [`Session`] from a resolved config, then `run` it over
//! the call's audio until the call ends. The run returns a [`SessionReport`].

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    audio::AudioIo,
    config::SessionConfig,
    engine::Engine,
    metrics::{SessionReport, TurnMetrics},
    providers::{
        llm::{LlmClient, LlmError},
        stt::SttClient,
        tts::TtsClient,
    },
    turn::Endpointing,
    vad::VadOptions,
};

/// Timing knobs. Defaults follow LiveKit Agents' where it has one.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub endpointing: Endpointing,
    /// Callee speech must last this long (while the agent speaks) to stop the agent.
    pub min_interruption: Duration,
    /// After an interruption with no words, resume the reply once the callee has been quiet
    /// this long.
    pub false_interruption_timeout: Duration,
    pub resume_false_interruption: bool,
    /// End the call when nobody has spoken for this long.
    pub silence_timeout: Duration,
    pub max_duration: Duration,
    /// Agent audio kept queued in the transport ahead of real time.
    pub playout_lead: Duration,
    /// Agent audio frame length.
    pub output_frame: Duration,
    pub vad: VadOptions,
    /// Follow-up LLM calls allowed after tool results, per turn.
    pub max_tool_rounds: u32,
    /// A reply whose text is complete fails if the TTS then sends nothing for this long
    /// (`tts (<provider>): no audio within …`) instead of waiting for `max_duration`.
    pub tts_idle_timeout: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            endpointing: Endpointing::default(),
            min_interruption: Duration::from_millis(300),
            false_interruption_timeout: Duration::from_millis(1000),
            resume_false_interruption: true,
            silence_timeout: Duration::from_secs(30),
            max_duration: Duration::from_secs(3600),
            playout_lead: Duration::from_millis(200),
            output_frame: Duration::from_millis(20),
            vad: VadOptions::default(),
            max_tool_rounds: 3,
            tts_idle_timeout: crate::providers::tts::DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// Things the worker may want as they happen (the report has them all at the end).
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    UserTranscript {
        text: String,
        is_final: bool,
    },
    /// The agent started playing a reply.
    AgentSpeaking,
    /// Barge-in: playback was stopped.
    Interrupted,
    /// A false interruption: the reply resumed.
    Resumed,
    /// The agent asked for a transfer; the worker should perform it (the session then ends).
    Transfer {
        target: String,
        reason: String,
    },
    /// The agent ended the call (the session ends after its last words).
    EndCall {
        reason: String,
    },
    TurnMetrics(TurnMetrics),
}

/// Why a session could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("could not set up the LLM client")]
    Llm(#[from] LlmError),
}

/// A voice session, ready to run over one call's audio.
#[derive(Debug, Clone)]
pub struct Session {
    pub(crate) cfg: SessionConfig,
    pub(crate) opts: EngineOptions,
    pub(crate) llm: LlmClient,
    pub(crate) stt: SttClient,
    pub(crate) tts: TtsClient,
}

impl Session {
    pub fn new(cfg: SessionConfig, opts: EngineOptions) -> Result<Self, SessionError> {
        Ok(Self {
            llm: LlmClient::new(cfg.llm.clone())?,
            stt: SttClient::new(cfg.stt.clone()),
            tts: TtsClient::new(cfg.tts.clone()).with_idle_timeout(opts.tts_idle_timeout),
            cfg,
            opts,
        })
    }

    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    /// Open provider connections that can be opened before the callee answers (TTS).
    pub fn prewarm(&self) {
        self.tts.prewarm();
    }

    /// Run the conversation until the callee leaves, the agent ends or transfers the call, a
    /// timeout hits, a provider fails for good, or `cancel` fires.
    pub async fn run<A: AudioIo>(
        &self,
        io: A,
        cancel: CancellationToken,
        events: Option<mpsc::UnboundedSender<SessionEvent>>,
    ) -> SessionReport {
        Engine::new(self, io, events).run(cancel).await
    }
}
