//! The websocket loop shared by the STT providers: batch audio into binary messages, parse
//! text messages into events, reconnect a bounded number of times, flush on close.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::protocol::{STT_SAMPLE_RATE, SttError, SttEvent, SttProtocol};
use crate::providers::ws;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_ATTEMPTS: u32 = 3;
const KEEPALIVE_EVERY: Duration = Duration::from_secs(5);
/// How long to wait for the server's last results after asking it to close.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);
/// Audio buffered while (re)connecting: 10 s of 20 ms frames.
const AUDIO_QUEUE: usize = 500;

/// A running STT stream. Push 16 kHz mono PCM; read events. Dropping it closes the socket.
#[derive(Debug)]
pub struct SttStream {
    audio: Option<mpsc::Sender<Vec<i16>>>,
    events: mpsc::Receiver<SttEvent>,
    _guard: DropGuard,
}

impl SttStream {
    /// Queue audio for the STT. Returns `false` if it was dropped (queue full or stream gone).
    pub fn push(&self, samples: Vec<i16>) -> bool {
        self.audio
            .as_ref()
            .is_some_and(|tx| tx.try_send(samples).is_ok())
    }

    /// Ask the provider to flush its last results and close.
    pub fn finish(&mut self) {
        self.audio = None;
    }

    /// The next event; `None` once the stream ended.
    pub async fn next(&mut self) -> Option<SttEvent> {
        self.events.recv().await
    }
}

pub(crate) fn spawn<P: SttProtocol>(protocol: P) -> SttStream {
    let (audio_tx, audio_rx) = mpsc::channel(AUDIO_QUEUE);
    let (ev_tx, events) = mpsc::channel(256);
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = token.cancelled() => {}
            () = run(protocol, audio_rx, ev_tx) => {}
        }
    });
    SttStream {
        audio: Some(audio_tx),
        events,
        _guard: cancel.drop_guard(),
    }
}

async fn run<P: SttProtocol>(
    mut p: P,
    mut audio: mpsc::Receiver<Vec<i16>>,
    events: mpsc::Sender<SttEvent>,
) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match session(&mut p, &mut audio, &events).await {
            Ok(()) => return,
            Err(e) if attempt >= MAX_ATTEMPTS => {
                tracing::warn!(error = %crate::error_chain(&e), "stt.failed");
                let _ = events.send(SttEvent::Error(crate::error_chain(&e))).await;
                return;
            }
            Err(e) => {
                tracing::info!(error = %crate::error_chain(&e), attempt, "stt.reconnecting");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
        }
    }
}

/// One websocket connection. `Ok` when the audio input ended and the server closed.
async fn session<P: SttProtocol>(
    p: &mut P,
    audio: &mut mpsc::Receiver<Vec<i16>>,
    events: &mpsc::Sender<SttEvent>,
) -> Result<(), SttError> {
    let url = p.url()?;
    let mut socket = ws::connect(&url, &p.headers(), CONNECT_TIMEOUT).await?;
    let batch = crate::audio::duration_to_samples(p.batch(), STT_SAMPLE_RATE).max(1);
    let mut pending: Vec<i16> = Vec::with_capacity(batch * 2);
    let mut keepalive = tokio::time::interval(KEEPALIVE_EVERY);
    keepalive.reset();
    let mut input_open = true;
    let flush_deadline = tokio::time::sleep(Duration::from_secs(86_400));
    tokio::pin!(flush_deadline);
    loop {
        tokio::select! {
            frame = audio.recv(), if input_open => match frame {
                Some(samples) => {
                    pending.extend_from_slice(&samples);
                    if pending.len() >= batch {
                        let msg = p.audio_message(&pending);
                        pending.clear();
                        socket.send(msg).await.map_err(sock)?;
                        keepalive.reset();
                    }
                }
                None => {
                    if !pending.is_empty() {
                        socket.send(p.audio_message(&pending)).await.map_err(sock)?;
                        pending.clear();
                    }
                    socket.send(Message::text(p.close_message())).await.map_err(sock)?;
                    input_open = false;
                    flush_deadline.as_mut().reset(tokio::time::Instant::now() + FLUSH_TIMEOUT);
                }
            },
            _ = keepalive.tick(), if input_open => {
                if let Some(k) = p.keepalive() {
                    socket.send(Message::text(k)).await.map_err(sock)?;
                }
            }
            () = &mut flush_deadline, if !input_open => return Ok(()),
            msg = socket.next() => match msg {
                None => return if input_open { Err(SttError::Closed("eof".into())) } else { Ok(()) },
                Some(Err(e)) => return if input_open { Err(sock(e)) } else { Ok(()) },
                Some(Ok(Message::Text(t))) => {
                    for ev in p.parse(t.as_str())? {
                        if events.send(ev).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    if input_open {
                        let why = frame.map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_default();
                        return Err(SttError::Closed(why));
                    }
                    return Ok(());
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

fn sock(e: tokio_tungstenite::tungstenite::Error) -> SttError {
    SttError::Socket(Box::new(e))
}
