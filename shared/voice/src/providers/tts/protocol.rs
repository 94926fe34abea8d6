//! What every TTS provider shares: the events a stream yields and how it fails.

/// Why a TTS stream failed.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("invalid TTS endpoint {0}")]
    Url(String),
    #[error("could not connect to the TTS")]
    Connect(#[from] crate::providers::ws::ConnectError),
    #[error("TTS websocket connection lost")]
    Socket(#[source] Box<tokio_tungstenite::tungstenite::Error>),
    #[error("TTS closed the stream: {0}")]
    Closed(String),
    #[error("TTS reported an error: {0}")]
    Provider(String),
    #[error("malformed TTS message: {0}")]
    Malformed(String),
}

/// A word and when its audio starts, in seconds from the start of the stream's audio.
#[derive(Debug, Clone, PartialEq)]
pub struct WordTiming {
    pub word: String,
    pub start: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TtsEvent {
    /// PCM s16le mono at the configured sample rate.
    Audio(Vec<i16>),
    Words(Vec<WordTiming>),
    Done,
    Error(String),
}

/// s16le bytes as samples.
pub(crate) fn pcm_from_bytes(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}
