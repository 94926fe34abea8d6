//! Streaming TTS: Cartesia (one websocket per session, one context per reply), ElevenLabs
//! (`stream-input`, one websocket per reply) and Sarvam (`/text-to-speech/ws`, one websocket per
//! reply). Text goes in as the LLM produces it; raw s16le PCM and word timings come out.
//!
//! Layers: this module (client and stream) -> the providers -> `protocol` (shared events, errors).

mod cartesia;
mod elevenlabs;
mod protocol;
mod sarvam;

pub use protocol::{TtsError, TtsEvent, WordTiming};

use std::{sync::Arc, time::Duration};

use tokio::{sync::mpsc, time::Instant};

/// Default for [`TtsClient::with_idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

use crate::config::{TtsConfig, TtsProvider};

/// Where a stream's text goes.
#[derive(Debug)]
enum Sink {
    Cartesia(cartesia::ContextSink),
    Channel(mpsc::UnboundedSender<Option<String>>),
}

/// One utterance being synthesised. Dropping it cancels the generation.
#[derive(Debug)]
pub struct TtsStream {
    sink: Sink,
    events: mpsc::UnboundedReceiver<TtsEvent>,
    ended: bool,
    /// Longest wait for the provider's next event once the text is complete.
    idle: Duration,
    /// Set by `end_input`, pushed back by every event: past it, the provider is silent.
    deadline: Option<Instant>,
}

impl TtsStream {
    /// Send more text (concatenated verbatim; include spaces).
    pub fn push_text(&mut self, text: &str) {
        if self.ended || text.is_empty() {
            return;
        }
        match &mut self.sink {
            Sink::Cartesia(s) => s.push(text, true),
            Sink::Channel(tx) => {
                let _ = tx.send(Some(text.to_owned()));
            }
        }
    }

    /// No more text will come; the provider finishes the audio and sends `Done`.
    pub fn end_input(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.deadline = Some(Instant::now() + self.idle);
        match &mut self.sink {
            Sink::Cartesia(s) => s.push("", false),
            Sink::Channel(tx) => {
                let _ = tx.send(None);
            }
        }
    }

    /// The next event. Once the text is complete, a provider that sends nothing for the idle
    /// timeout yields an error (cancel-safe: the deadline lives in the stream, not the future).
    pub async fn next(&mut self) -> Option<TtsEvent> {
        let Some(deadline) = self.deadline else {
            return self.events.recv().await;
        };
        match tokio::time::timeout_at(deadline, self.events.recv()).await {
            Ok(ev) => {
                if ev.is_some() {
                    self.deadline = Some(Instant::now() + self.idle);
                }
                ev
            }
            Err(_) => {
                self.deadline = None;
                Some(TtsEvent::Error(format!(
                    "no audio within {:?} after the text was complete",
                    self.idle
                )))
            }
        }
    }
}

/// A configured TTS. Cheap to clone; clones share Cartesia's websocket.
#[derive(Debug, Clone)]
pub struct TtsClient {
    cfg: Arc<TtsConfig>,
    cartesia: Option<cartesia::Connection>,
    idle_timeout: Duration,
}

impl TtsClient {
    pub fn new(cfg: TtsConfig) -> Self {
        let cfg = Arc::new(cfg);
        let cartesia =
            (cfg.provider == TtsProvider::Cartesia).then(|| cartesia::Connection::new(cfg.clone()));
        Self {
            cfg,
            cartesia,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }

    /// How long a stream waits for the provider's next event once its text is complete before
    /// it fails with `no audio within …`.
    #[must_use]
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }

    pub fn config(&self) -> &TtsConfig {
        &self.cfg
    }

    pub fn sample_rate(&self) -> u32 {
        self.cfg.sample_rate
    }

    /// Open the provider connection ahead of the first utterance (Cartesia only).
    pub fn prewarm(&self) {
        if let Some(c) = &self.cartesia {
            c.prewarm();
        }
    }

    /// Start an utterance.
    pub fn start(&self) -> TtsStream {
        let (ev_tx, events) = mpsc::unbounded_channel();
        let sink = match (&self.cartesia, self.cfg.provider) {
            (Some(c), _) => Sink::Cartesia(c.open(ev_tx)),
            (None, TtsProvider::Sarvam) => Sink::Channel(sarvam::spawn(self.cfg.clone(), ev_tx)),
            (None, _) => Sink::Channel(elevenlabs::spawn(self.cfg.clone(), ev_tx)),
        };
        TtsStream {
            sink,
            events,
            ended: false,
            idle: self.idle_timeout,
            deadline: None,
        }
    }
}
