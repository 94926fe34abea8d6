//! What one session runs with, built once by `Session::new` and borrowed by every run of it:
//! the resolved config, the timing knobs and the provider clients.

use crate::{
    config::SessionConfig,
    options::EngineOptions,
    providers::{llm::LlmClient, stt::SttClient, tts::TtsClient},
    vad,
};

#[derive(Debug, Clone)]
pub(crate) struct Parts {
    pub cfg: SessionConfig,
    pub opts: EngineOptions,
    pub llm: LlmClient,
    pub stt: SttClient,
    pub tts: TtsClient,
    /// The VAD choice with its model loaded; each run starts its own detector from it.
    pub vad: vad::Prepared,
}
