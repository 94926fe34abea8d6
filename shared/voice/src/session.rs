//! The public face of the engine: build a [`Session`] from a resolved config, then `run` it over
//! the call's audio until the call ends. The run returns a [`SessionReport`].

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    audio::AudioIo,
    config::SessionConfig,
    engine::Engine,
    event::SessionEvent,
    metrics::SessionReport,
    options::EngineOptions,
    parts::Parts,
    providers::{
        llm::{LlmClient, LlmError},
        stt::SttClient,
        tts::TtsClient,
    },
};

/// Why a session could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("could not set up the LLM client")]
    Llm(#[from] LlmError),
    #[error("could not set up the VAD")]
    Vad(#[from] crate::vad::VadError),
}

/// A voice session, ready to run over one call's audio.
#[derive(Debug, Clone)]
pub struct Session {
    parts: Parts,
}

impl Session {
    pub fn new(cfg: SessionConfig, opts: EngineOptions) -> Result<Self, SessionError> {
        let parts = Parts {
            llm: LlmClient::new(cfg.llm.clone())?,
            stt: SttClient::new(cfg.stt.clone()),
            tts: TtsClient::new(cfg.tts.clone()).with_idle_timeout(opts.tts_idle_timeout),
            vad: crate::vad::Prepared::new(&opts.vad)?,
            cfg,
            opts,
        };
        Ok(Self { parts })
    }

    pub fn config(&self) -> &SessionConfig {
        &self.parts.cfg
    }

    /// Open provider connections that can be opened before the callee answers (TTS).
    pub fn prewarm(&self) {
        self.parts.tts.prewarm();
    }

    /// Run the conversation until the callee leaves, the agent ends or transfers the call, a
    /// timeout hits, a provider fails for good, or `cancel` fires.
    pub async fn run<A: AudioIo>(
        &self,
        io: A,
        cancel: CancellationToken,
        events: Option<mpsc::UnboundedSender<SessionEvent>>,
    ) -> SessionReport {
        Engine::new(&self.parts, io, events).run(cancel).await
    }
}
