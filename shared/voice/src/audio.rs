//! The engine's view of the call's audio: frames in from the callee, frames out to the callee.

use std::{future::Future, time::Duration};

/// Mono signed 16-bit PCM at `sample_rate` Hz (10 or 20 ms frames are typical).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    pub samples: Vec<i16>,
    pub sample_rate: u32,
    /// How much of the callee's audio was already waiting behind this frame when it was taken:
    /// the frame was heard that long before the engine sees it. Zero for live audio; a backlog
    /// (the frames buffered between the answer and the session's start, or after a stall)
    /// keeps its own timing instead of arriving all at one instant, which would shrink a
    /// fax's 0.5 s tone or a person's "hello?" to a few milliseconds.
    pub behind: Duration,
}

impl AudioFrame {
    pub fn new(samples: Vec<i16>, sample_rate: u32) -> Self {
        Self {
            samples,
            sample_rate,
            behind: Duration::ZERO,
        }
    }

    /// This frame, with `behind` of audio queued after it.
    pub fn behind(mut self, behind: Duration) -> Self {
        self.behind = behind;
        self
    }

    pub fn duration(&self) -> Duration {
        samples_to_duration(self.samples.len(), self.sample_rate)
    }
}

pub fn samples_to_duration(samples: usize, rate: u32) -> Duration {
    if rate == 0 {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(samples as f64 / f64::from(rate))
}

pub fn duration_to_samples(d: Duration, rate: u32) -> usize {
    (d.as_secs_f64() * f64::from(rate)) as usize
}

/// Why audio could not be sent to the callee.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("the audio transport is closed")]
    Closed,
    #[error("audio transport failed: {0}")]
    Transport(String),
}

/// The call's audio, as the engine sees it. Implemented by the LiveKit media transport and by
/// an in-memory transport in tests.
///
/// `recv` must be cancel-safe (the engine polls it inside `select!`), like `mpsc::Receiver::recv`.
/// `send` may pace (block until there is room) or queue; the engine itself keeps at most
/// [`crate::EngineOptions::playout_lead`] of audio ahead of real time, so queues stay short.
pub trait AudioIo: Send {
    /// The next frame of callee audio; `None` when the callee left.
    fn recv(&mut self) -> impl Future<Output = Option<AudioFrame>> + Send;
    /// Queue one frame of agent audio for playback.
    fn send(&mut self, frame: AudioFrame) -> impl Future<Output = Result<(), AudioError>> + Send;
    /// Drop any queued, not yet played agent audio (barge-in).
    fn clear(&mut self);
    /// The next input from the callee: a frame, or a key pressed (SIP DTMF); `None` when the
    /// callee left. Cancel-safe like `recv`. The default has audio only; a transport that carries
    /// DTMF overrides it.
    fn recv_input(&mut self) -> impl Future<Output = Option<Input>> + Send {
        async { self.recv().await.map(Input::Audio) }
    }
}

/// What the callee sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Audio(AudioFrame),
    /// A key pressed on the callee's phone (`0-9`, `*`, `#`, `A-D`).
    Dtmf(char),
}
