//! Streaming STT: Deepgram (`/v1/listen`), AssemblyAI Universal Streaming v3 and Sarvam
//! (`/speech-to-text/ws`). All run over one websocket driven by [`driver`]; each provider module
//! only knows its URL, headers and message formats (the [`protocol`] they all implement).
//!
//! Layers: this module (the client) -> the providers -> `driver` -> `protocol`.

mod assemblyai;
mod deepgram;
mod driver;
mod protocol;
mod sarvam;

pub use driver::SttStream;
pub use protocol::{STT_SAMPLE_RATE, SttError, SttEvent};

use crate::config::{SttConfig, SttProvider};

/// A configured STT; `start` opens one stream per call.
#[derive(Debug, Clone)]
pub struct SttClient {
    cfg: SttConfig,
}

impl SttClient {
    pub fn new(cfg: SttConfig) -> Self {
        Self { cfg }
    }

    pub fn config(&self) -> &SttConfig {
        &self.cfg
    }

    /// Open a stream. Connection happens in the background; failures arrive as
    /// [`SttEvent::Error`] after retries.
    pub fn start(&self) -> SttStream {
        match self.cfg.provider {
            SttProvider::Deepgram => driver::spawn(deepgram::Deepgram::new(self.cfg.clone())),
            SttProvider::AssemblyAi => driver::spawn(assemblyai::AssemblyAi::new(self.cfg.clone())),
            SttProvider::Sarvam => driver::spawn(sarvam::Sarvam::new(self.cfg.clone())),
        }
    }
}
