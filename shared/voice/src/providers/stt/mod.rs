//! Streaming STT: Deepgram (`/v1/listen`), AssemblyAI Universal Streaming v3 and Sarvam
//! (`/speech-to-text/ws`). All run over one websocket driven by [`driver`]; each provider module
//! only knows its URL, headers and message formats.

mod assemblyai;
mod deepgram;
mod driver;
mod sarvam;

use std::time::Duration;

pub use driver::SttStream;

use tokio_tungstenite::tungstenite::Message;

use crate::config::{SttConfig, SttProvider};

/// The sample rate the engine sends to every STT (mono s16le).
pub const STT_SAMPLE_RATE: u32 = 16_000;

/// What the STT reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SttEvent {
    /// The provider's VAD heard speech start.
    SpeechStarted,
    /// A not-yet-final hypothesis for the text after the last final.
    Interim { text: String },
    /// A finalised segment, to append to the user's turn.
    Final { text: String },
    /// The provider's own running transcript of the whole user turn (replaces the segments).
    TurnTranscript { text: String },
    /// The provider's end-of-turn / endpointing signal.
    EndOfTurn,
    /// The stream failed for good (after retries).
    Error(String),
}

/// Why an STT stream failed.
#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error("invalid STT endpoint {0}")]
    Url(String),
    #[error("could not connect to the STT")]
    Connect(#[from] crate::providers::ws::ConnectError),
    #[error("STT websocket connection lost")]
    Socket(#[source] Box<tokio_tungstenite::tungstenite::Error>),
    #[error("STT closed the stream: {0}")]
    Closed(String),
    #[error("STT reported an error: {0}")]
    Provider(String),
    #[error("malformed STT message: {0}")]
    Malformed(String),
}

/// The start of a message, for error messages.
pub(crate) fn preview(s: &str) -> String {
    s.chars().take(80).collect()
}

/// One provider's wire format.
pub(crate) trait SttProtocol: Send + 'static {
    fn url(&self) -> Result<url::Url, SttError>;
    fn headers(&self) -> Vec<(&'static str, String)>;
    /// Minimum audio per websocket message.
    fn batch(&self) -> Duration;
    /// One batch of 16 kHz mono audio as a websocket message (raw s16le binary by default).
    fn audio_message(&self, samples: &[i16]) -> Message {
        Message::binary(driver::pcm_bytes(samples))
    }
    /// Parse one text message into events (errors are reported as `Err`).
    fn parse(&mut self, text: &str) -> Result<Vec<SttEvent>, SttError>;
    /// The message that asks the server to flush and close.
    fn close_message(&self) -> String;
    /// A keep-alive message, if the protocol has one.
    fn keepalive(&self) -> Option<String>;
}

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
