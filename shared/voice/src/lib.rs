#![forbid(unsafe_code)]
#![doc = include_str!("../README.md")]
//!
//! ## Codemap
//!
//! Modules use only those below them (no import cycles):
//!
//! - [`Session`] (`session`): the public face; builds the provider clients, runs the `engine`.
//! - `engine`: the session loop (`engine/mod.rs`) over `input` (callee audio, transcripts,
//!   barge-in) -> `speech` (replies, playout, tools) -> `state` (the engine's data) + `report`.
//! - Shared leaves: `parts` (what a run borrows), [`EngineOptions`], [`SessionEvent`],
//!   [`metrics`] (the summary's types from `callfleet_domain`), [`config`], [`audio`].
//! - Building blocks: `reply` (one LLM -> TTS reply task), `playout`, [`turn`], [`vad`],
//!   `resample`, `chunker`, [`tools`], and [`providers`] (client -> provider modules -> shared
//!   protocol types, per stage).
//! - Before the call: [`resolve`](mod@resolve) (typed session options -> [`SessionConfig`]).
//! - After the answer: [`answer`] (answering-machine detection: `tones`, `cadence`, `phrases`
//!   -> `rules` -> the `Classifier`; pure, uses only [`vad::level_dbfs`]).

pub mod answer;
pub mod audio;
mod chunker;
pub mod config;
mod engine;
mod event;
pub mod metrics;
mod options;
mod parts;
mod playout;
pub mod providers;
mod reply;
mod resample;
pub mod resolve;
mod session;
pub mod tools;
pub mod turn;
pub mod vad;

pub use audio::{AudioError, AudioFrame, AudioIo, Input};
pub use config::{Answering, SessionConfig};
pub use event::SessionEvent;
pub use metrics::{
    EndReason, SessionCloseReason, SessionReport, SpeakerRole, TranscriptEntry, TurnMetrics, Usage,
};
pub use options::EngineOptions;
pub use resolve::{FieldError, ResolveError, resolve, resolve_json};
pub use session::{Session, SessionError};

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
