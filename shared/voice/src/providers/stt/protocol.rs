//! What every STT provider shares: the events it reports, how it fails, and the wire format
//! ([`SttProtocol`]) each provider module implements for the driver.

use std::time::Duration;

use tokio_tungstenite::tungstenite::Message;

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
        Message::binary(pcm_bytes(samples))
    }
    /// Parse one text message into events (errors are reported as `Err`).
    fn parse(&mut self, text: &str) -> Result<Vec<SttEvent>, SttError>;
    /// The message that asks the server to flush and close.
    fn close_message(&self) -> String;
    /// A keep-alive message, if the protocol has one.
    fn keepalive(&self) -> Option<String>;
}

/// Samples as s16le bytes.
pub(crate) fn pcm_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}
