//! Call recording from the media the worker already handles, with no egress service: the
//! callee's frames (as the agent receives them) and the agent's frames (as it sends them) are
//! two channels on the call's clock (channel 1 callee, channel 2 agent), encoded as two
//! uncoupled Opus streams in one Ogg stream, and stored while the call runs as page-aligned
//! segments in the NATS object store (through `callfleet-bus`).
//!
//! Codemap, one way: [`recorder`] (the task: [`Tap`] in, [`Recorder::finish`] or [`salvage`]
//! out) → [`segment`] (encoder and segmenting, pure) → [`ogg_opus`] (the container, pure), and
//! [`timeline`] (the two channels on the clock, pure).
//!
//! Life of a recording: the worker starts a [`Recorder`] at the answer and taps its room audio;
//! every `recording.segment_secs` the complete pages so far are stored as the next segment; at
//! hang-up, `max_duration` or shutdown the recorder pads the channels to the call's end, ends the
//! stream, stores the last segment and joins the segments into `<call_id>.ogg`. If the worker is
//! killed, the segments stored so far remain; the worker that takes the call over
//! ([`salvage`]) joins them into a playable recording marked `partial`.

pub mod ogg_opus;
pub mod recorder;
pub mod segment;
pub mod timeline;

pub use recorder::{Recorder, Settings, Tap, salvage};
pub use timeline::Side;

/// What the summary's recording says for this backend.
pub const FORMAT: &str = "ogg/opus";
/// The channel layout, in order.
pub const CHANNELS: [&str; 2] = ["callee", "agent"];

/// Errors of the recorder.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("opus encoder")]
    Opus(#[from] opus::Error),
    #[error("ogg writer")]
    Ogg(#[from] std::io::Error),
    #[error("storing the recording")]
    Bus(#[from] callfleet_bus::BusError),
}
