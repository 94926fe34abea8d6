//! Cartesia TTS over one websocket (`/tts/websocket`): one context per utterance, text streamed
//! with `continue: true`, finished with an empty transcript and `continue: false`, cancelled with
//! `{context_id, cancel: true}`. Output is raw pcm_s16le with word timestamps.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::protocol::{TtsError, TtsEvent, WordTiming, pcm_from_bytes};
use crate::{
    config::TtsConfig,
    providers::ws::{self, WsStream},
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The API version Cartesia's own SDK (cartesia 4.2.0) sends; its message formats are the ones
/// this client speaks.
const API_VERSION: &str = "2026-08-14";

#[derive(Debug)]
enum Cmd {
    Prewarm,
    Open {
        ctx: String,
        events: mpsc::UnboundedSender<TtsEvent>,
    },
    Send {
        ctx: String,
        json: String,
    },
    Cancel(String),
}

/// The session's Cartesia websocket, (re)opened on demand by a background task.
#[derive(Debug, Clone)]
pub struct Connection {
    cfg: Arc<TtsConfig>,
    tx: Arc<Mutex<Option<mpsc::UnboundedSender<Cmd>>>>,
    next_id: Arc<AtomicU64>,
    prefix: String,
}

impl Connection {
    pub fn new(cfg: Arc<TtsConfig>) -> Self {
        static SESSIONS: AtomicU64 = AtomicU64::new(1);
        let n = SESSIONS.fetch_add(1, Ordering::Relaxed);
        Self {
            cfg,
            tx: Arc::new(Mutex::new(None)),
            next_id: Arc::new(AtomicU64::new(1)),
            prefix: format!("cf{}-{n}", std::process::id()),
        }
    }

    fn sender(&self) -> mpsc::UnboundedSender<Cmd> {
        let mut guard = match self.tx.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(tx) = guard.as_ref().filter(|t| !t.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(self.cfg.clone(), rx));
        *guard = Some(tx.clone());
        tx
    }

    pub fn prewarm(&self) {
        let _ = self.sender().send(Cmd::Prewarm);
    }

    pub fn open(&self, events: mpsc::UnboundedSender<TtsEvent>) -> ContextSink {
        let ctx = format!(
            "{}-{}",
            self.prefix,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let tx = self.sender();
        let _ = tx.send(Cmd::Open {
            ctx: ctx.clone(),
            events,
        });
        ContextSink {
            tx,
            ctx,
            cfg: self.cfg.clone(),
        }
    }
}

/// The text side of one context. Dropping it cancels the context if it is still running.
#[derive(Debug)]
pub struct ContextSink {
    tx: mpsc::UnboundedSender<Cmd>,
    ctx: String,
    cfg: Arc<TtsConfig>,
}

impl ContextSink {
    pub fn push(&mut self, transcript: &str, more: bool) {
        let mut msg = json!({
            "model_id": self.cfg.model,
            "transcript": transcript,
            "voice": {"mode": "id", "id": self.cfg.voice},
            "context_id": self.ctx,
            "output_format": {"container": "raw", "encoding": "pcm_s16le",
                              "sample_rate": self.cfg.sample_rate},
            "add_timestamps": true,
            "continue": more,
        });
        if let Some(lang) = &self.cfg.language {
            msg["language"] = json!(lang);
        }
        let _ = self.tx.send(Cmd::Send {
            ctx: self.ctx.clone(),
            json: msg.to_string(),
        });
    }
}

impl Drop for ContextSink {
    fn drop(&mut self) {
        let _ = self.tx.send(Cmd::Cancel(self.ctx.clone()));
    }
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    context_id: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    word_timestamps: Option<Words>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    done: bool,
}

#[derive(Deserialize)]
struct Words {
    #[serde(default)]
    words: Vec<String>,
    #[serde(default)]
    start: Vec<f64>,
}

type Contexts = HashMap<String, mpsc::UnboundedSender<TtsEvent>>;

async fn run(cfg: Arc<TtsConfig>, mut rx: mpsc::UnboundedReceiver<Cmd>) {
    let mut socket: Option<WsStream> = None;
    let mut contexts: Contexts = HashMap::new();
    loop {
        tokio::select! {
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { return };
                if let Err(e) = handle(&cfg, cmd, &mut socket, &mut contexts).await {
                    fail_all(&mut contexts, &e);
                    socket = None;
                }
            }
            msg = next(&mut socket) => match msg {
                Some(Ok(Message::Text(t))) => {
                    if let Err(e) = dispatch(t.as_str(), &mut contexts) {
                        // Not the protocol we speak: nothing more on this socket can be trusted.
                        tracing::warn!(error = %e, "tts.cartesia.unreadable_message");
                        fail_all(&mut contexts, &e);
                        socket = None;
                    }
                }
                Some(Ok(Message::Close(_))) | None => {
                    fail_all(&mut contexts, &TtsError::Closed("connection closed".into()));
                    socket = None;
                }
                Some(Err(e)) => {
                    fail_all(&mut contexts, &TtsError::Socket(Box::new(e)));
                    socket = None;
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn next(
    socket: &mut Option<WsStream>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match socket {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

async fn handle(
    cfg: &TtsConfig,
    cmd: Cmd,
    socket: &mut Option<WsStream>,
    contexts: &mut Contexts,
) -> Result<(), TtsError> {
    match cmd {
        Cmd::Open { ctx, events } => {
            contexts.insert(ctx, events);
            ensure(cfg, socket).await?;
        }
        Cmd::Prewarm => {
            ensure(cfg, socket).await?;
        }
        Cmd::Send { ctx, json } => {
            if contexts.contains_key(&ctx) {
                let s = ensure(cfg, socket).await?;
                s.send(Message::text(json))
                    .await
                    .map_err(|e| TtsError::Socket(Box::new(e)))?;
            }
        }
        Cmd::Cancel(ctx) => {
            if contexts.remove(&ctx).is_some()
                && let Some(s) = socket.as_mut()
            {
                let msg = json!({"context_id": ctx, "cancel": true}).to_string();
                s.send(Message::text(msg))
                    .await
                    .map_err(|e| TtsError::Socket(Box::new(e)))?;
            }
        }
    }
    Ok(())
}

async fn ensure<'a>(
    cfg: &TtsConfig,
    socket: &'a mut Option<WsStream>,
) -> Result<&'a mut WsStream, TtsError> {
    if socket.is_none() {
        let url =
            url::Url::parse(&cfg.base_url).map_err(|_| TtsError::Url(cfg.base_url.clone()))?;
        let headers = [
            // As Cartesia's SDK authenticates (`X-API-Key` is the older form).
            ("Authorization", format!("Bearer {}", cfg.api_key.expose())),
            ("Cartesia-Version", API_VERSION.to_owned()),
        ];
        *socket = Some(ws::connect(&url, &headers, CONNECT_TIMEOUT).await?);
    }
    socket
        .as_mut()
        .ok_or_else(|| TtsError::Closed("not connected".into()))
}

/// Route one message to its context; `Err` if it is not a Cartesia message at all.
fn dispatch(text: &str, contexts: &mut Contexts) -> Result<(), TtsError> {
    let msg: Incoming = serde_json::from_str(text).map_err(|e| {
        let preview: String = text.chars().take(80).collect();
        TtsError::Malformed(format!("{e} in {preview:?}"))
    })?;
    let Some(ctx) = msg.context_id.clone() else {
        if msg.kind == "error" {
            let e = TtsError::Provider(msg.error.or(msg.message).unwrap_or_default());
            fail_all(contexts, &e);
        }
        return Ok(());
    };
    let Some(tx) = contexts.get(&ctx) else {
        return Ok(());
    };
    match msg.kind.as_str() {
        "chunk" => {
            if let Some(data) = msg.data {
                match base64::engine::general_purpose::STANDARD.decode(data) {
                    Ok(bytes) => {
                        let _ = tx.send(TtsEvent::Audio(pcm_from_bytes(&bytes)));
                    }
                    Err(e) => {
                        let _ = tx.send(TtsEvent::Error(format!("bad base64 audio: {e}")));
                    }
                }
            }
        }
        "timestamps" => {
            if let Some(w) = msg.word_timestamps {
                let words = w
                    .words
                    .into_iter()
                    .zip(w.start)
                    .map(|(word, start)| WordTiming { word, start })
                    .collect();
                let _ = tx.send(TtsEvent::Words(words));
            }
        }
        "error" => {
            let why = msg
                .error
                .or(msg.message)
                .unwrap_or_else(|| "unknown".into());
            let _ = tx.send(TtsEvent::Error(why));
            contexts.remove(&ctx);
            return Ok(());
        }
        _ => {}
    }
    if msg.kind == "done" || (msg.done && msg.kind != "flush_done") {
        let _ = tx.send(TtsEvent::Done);
        contexts.remove(&ctx);
    }
    Ok(())
}

fn fail_all(contexts: &mut Contexts, e: &TtsError) {
    let why = crate::error_chain(e);
    for (_, tx) in contexts.drain() {
        let _ = tx.send(TtsEvent::Error(why.clone()));
    }
}
