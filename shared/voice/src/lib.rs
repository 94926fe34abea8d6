#![forbid(unsafe_code)]
#![doc = include_str!("../README.md")]

pub mod audio;
mod chunker;
pub mod config;
mod engine;
pub mod metrics;
mod playout;
pub mod providers;
mod reply;
mod resample;
pub mod resolve;
mod session;
pub mod tools;
pub mod turn;
pub mod vad;

pub use audio::{AudioError, AudioFrame, AudioIo};
pub use config::SessionConfig;
pub use metrics::{
    EndReason, SessionCloseReason, SessionReport, SpeakerRole, TranscriptEntry, TurnMetrics, Usage,
};
pub use resolve::{FieldError, ResolveError, resolve, resolve_json};
pub use session::{EngineOptions, Session, SessionError, SessionEvent};

/// An error and its sources, `: `-joined, for logging once where it is handled.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        // Some errors already print their source (tungstenite's `IO error: ...`).
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}
