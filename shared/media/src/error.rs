//! The crate's single error type.

/// Everything that can go wrong in the transport.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL given to [`crate::Transport::connect`] could not be used.
    #[error("invalid url: {0}")]
    InvalidUrl(String),
    /// The WebSocket to the signal server failed or closed.
    #[error("signal connection: {0}")]
    Signal(String),
    /// The server answered the join with an HTTP error (bad token, room full, ...).
    #[error("join refused by server (http {status}): {body}")]
    JoinRefused {
        /// HTTP status of the refused WebSocket upgrade.
        status: u16,
        /// Response body, usually the server's reason.
        body: String,
    },
    /// A step did not finish in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The server sent something that breaks the protocol as this crate knows it.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A peer connection operation failed.
    #[error("webrtc: {0}")]
    WebRtc(#[from] webrtc::Error),
    /// Opus encoder or decoder error.
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    /// Resampler error.
    #[error("resample: {0}")]
    Resample(String),
    /// An argument was out of range (sample rate, empty name, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The transport has already left or lost its connection.
    #[error("transport closed")]
    Closed,
}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, Error>;
