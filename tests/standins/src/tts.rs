//! Local Cartesia (`/tts/websocket`, contexts), ElevenLabs (`stream-input`: after the empty
//! text that ends the input, the last audio, `isFinal`, then a normal close, as the server does
//! and ElevenLabs' SDK waits for) and Sarvam (`/text-to-speech/ws`: config, text, flush; audio
//! and a `final` event) servers. Audio is a tone lasting `ms_per_char` per character of text,
//! sent as base64 s16le (with word timings where the provider has them). Every connection's
//! messages and upgrade headers are recorded unless started with [`Record::Off`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{
    Message,
    handshake::server::{ErrorResponse, Request, Response},
    http::StatusCode,
    protocol::{CloseFrame, frame::coding::CloseCode},
};

use super::{Record, callee::lock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Cartesia,
    ElevenLabs,
    Sarvam,
}

/// Characters the Sarvam fake buffers before synthesising (Sarvam's `min_buffer_size`).
pub const SARVAM_MIN_BUFFER: usize = 30;

#[derive(Debug, Clone, Copy)]
pub struct TtsScript {
    /// Delay before the first audio of an utterance.
    pub ttfb: Duration,
    pub ms_per_char: u64,
}

#[derive(Debug, Default, Clone)]
pub struct TtsLog {
    pub uri: String,
    pub headers: HashMap<String, String>,
    /// Every text message received.
    pub messages: Vec<Value>,
    /// Contexts cancelled by the client (Cartesia).
    pub cancelled: Vec<String>,
    /// The code of the close frame the client sent, if it sent one.
    pub client_close: Option<u16>,
}

#[derive(Clone)]
pub struct FakeTts {
    pub url: String,
    pub log: Arc<Mutex<Vec<TtsLog>>>,
}

/// How every connection fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtsFail {
    /// Refuse the websocket upgrade with this HTTP status.
    Reject(u16),
    /// Answer the first text with a message that is not JSON.
    Garbage,
    /// Answer the first text with one audio chunk, then drop the TCP connection without a
    /// close frame.
    DropAfterFirst,
    /// Accept every message and never answer.
    Silent,
}

impl FakeTts {
    pub async fn start(flavor: Flavor, script: TtsScript) -> Self {
        Self::launch(flavor, script, None, Record::On).await
    }

    /// As [`start`](Self::start); with [`Record::Off`] nothing is kept and
    /// [`connections`](Self::connections) stays empty.
    pub async fn start_with(flavor: Flavor, script: TtsScript, record: Record) -> Self {
        Self::launch(flavor, script, None, record).await
    }

    pub async fn failing(flavor: Flavor, fail: TtsFail) -> Self {
        let script = TtsScript {
            ttfb: Duration::ZERO,
            ms_per_char: 10,
        };
        Self::launch(flavor, script, Some(fail), Record::On).await
    }

    async fn launch(
        flavor: Flavor,
        script: TtsScript,
        fail: Option<TtsFail>,
        record: Record,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(flavor, script, tcp, l.clone(), fail, record));
            }
        });
        let url = match flavor {
            Flavor::Cartesia => format!("ws://{addr}/tts/websocket"),
            // Both take the API root; the client adds the path.
            Flavor::ElevenLabs | Flavor::Sarvam => format!("ws://{addr}"),
        };
        Self { url, log }
    }

    pub fn connections(&self) -> Vec<TtsLog> {
        lock(&self.log).clone()
    }

    /// Every transcript sent for synthesis, in order.
    pub fn texts(&self) -> Vec<String> {
        self.connections()
            .iter()
            .flat_map(|c| c.messages.iter())
            .filter_map(|m| {
                m.get("transcript")
                    .or_else(|| m.get("text"))
                    .or_else(|| m.pointer("/data/text"))
                    .and_then(Value::as_str)
            })
            .filter(|t| !t.trim().is_empty())
            .map(str::to_owned)
            .collect()
    }
}

pub const RATE: u32 = 24_000;

/// One utterance's text input and the task synthesising it.
type Generator = (
    mpsc::UnboundedSender<(String, bool)>,
    tokio::task::JoinHandle<()>,
);

/// `(pcm, words with start seconds relative to `offset`)`.
fn synth(text: &str, ms_per_char: u64, offset: f64) -> (Vec<i16>, Vec<(String, f64)>) {
    let n = text.chars().count() as u64 * ms_per_char * u64::from(RATE) / 1000;
    let pcm: Vec<i16> = (0..n)
        .map(|i| ((i as f64 * 0.07).sin() * 8000.0) as i16)
        .collect();
    let mut words = Vec::new();
    let mut pos = 0usize;
    for w in text.split_whitespace() {
        let idx = text[pos..].find(w).map_or(pos, |i| pos + i);
        let chars_before = text[..idx].chars().count() as f64;
        words.push((
            w.to_owned(),
            offset + chars_before * ms_per_char as f64 / 1000.0,
        ));
        pos = idx + w.len();
    }
    (pcm, words)
}

/// A Sarvam `audio` message (linear16).
fn sarvam_audio(pcm: &[i16]) -> Value {
    json!({"type": "audio", "data": {"audio": b64(pcm), "content_type": "audio/pcm",
        "request_id": "req-1"}})
}

fn b64(pcm: &[i16]) -> String {
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn serve(
    flavor: Flavor,
    script: TtsScript,
    tcp: tokio::net::TcpStream,
    log: Arc<Mutex<Vec<TtsLog>>>,
    fail: Option<TtsFail>,
    record: Record,
) {
    let mut entry = TtsLog::default();
    #[expect(clippy::result_large_err, reason = "tungstenite's callback signature")]
    let cb = |req: &Request, resp: Response| {
        if let Some(TtsFail::Reject(code)) = fail {
            let mut refused = ErrorResponse::new(Some("Invalid API key".to_owned()));
            *refused.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::UNAUTHORIZED);
            return Err(refused);
        }
        entry.uri = req.uri().to_string();
        for (k, v) in req.headers() {
            entry
                .headers
                .insert(k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned());
        }
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, cb).await else {
        return;
    };
    // `None`: not recording (the log is left alone).
    let idx = (record == Record::On).then(|| {
        let mut g = lock(&log);
        g.push(entry);
        g.len() - 1
    });
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
    tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
    });
    // Per context (Cartesia) or per connection (ElevenLabs): a generator task fed by a channel.
    let mut gens: HashMap<String, Generator> = HashMap::new();
    while let Some(Ok(msg)) = stream.next().await {
        if let (Message::Close(frame), Some(i)) = (&msg, idx) {
            lock(&log)[i].client_close = Some(frame.as_ref().map_or(1005, |f| f.code.into()));
        }
        let Message::Text(t) = msg else { continue };
        let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
            continue;
        };
        if let Some(i) = idx {
            lock(&log)[i].messages.push(v.clone());
        }
        let (ctx, text, more) = match flavor {
            Flavor::Cartesia => {
                let ctx = v["context_id"].as_str().unwrap_or("").to_owned();
                if v["cancel"] == json!(true) {
                    if let Some((_, h)) = gens.remove(&ctx) {
                        h.abort();
                    }
                    if let Some(i) = idx {
                        lock(&log)[i].cancelled.push(ctx);
                    }
                    continue;
                }
                (
                    ctx,
                    v["transcript"].as_str().unwrap_or("").to_owned(),
                    v["continue"] == json!(true),
                )
            }
            Flavor::ElevenLabs => {
                let text = v["text"].as_str().unwrap_or("").to_owned();
                if text == " " {
                    continue; // the opening message
                }
                let more = !text.is_empty();
                ("el".to_owned(), text, more)
            }
            Flavor::Sarvam => match v["type"].as_str() {
                Some("text") => (
                    "sv".to_owned(),
                    v["data"]["text"].as_str().unwrap_or("").to_owned(),
                    true,
                ),
                Some("flush") => ("sv".to_owned(), String::new(), false),
                _ => continue, // config, ping
            },
        };
        if fail == Some(TtsFail::Silent) {
            continue;
        }
        if !text.trim().is_empty() {
            match fail {
                Some(TtsFail::Garbage) => {
                    let _ = out_tx.send(Message::text("<html><body>502 Bad Gateway</body></html>"));
                    continue;
                }
                Some(TtsFail::DropAfterFirst) => {
                    let (pcm, _) = synth(&text, script.ms_per_char, 0.0);
                    let first = &pcm[..pcm.len().min(2400)];
                    let chunk = match flavor {
                        Flavor::Cartesia => json!({"type": "chunk", "data": b64(first),
                            "done": false, "status_code": 206, "step_time": 1.0, "context_id": ctx}),
                        Flavor::ElevenLabs => json!({"audio": b64(first), "isFinal": null,
                            "alignment": null, "normalizedAlignment": null}),
                        Flavor::Sarvam => sarvam_audio(first),
                    };
                    let _ = out_tx.send(Message::text(chunk.to_string()));
                    // The writer flushes the chunk and ends once every sender is gone; both
                    // halves dropped close the TCP connection without a close frame.
                    drop(out_tx);
                    for (_, (_, h)) in gens {
                        h.abort();
                    }
                    return;
                }
                Some(TtsFail::Reject(_) | TtsFail::Silent) | None => {}
            }
        }
        let entry = gens.entry(ctx.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let h = tokio::spawn(generate(flavor, script, ctx.clone(), rx, out_tx.clone()));
            (tx, h)
        });
        let _ = entry.0.send((text, more));
    }
    for (_, (_, h)) in gens {
        h.abort();
    }
}

async fn generate(
    flavor: Flavor,
    script: TtsScript,
    ctx: String,
    mut rx: mpsc::UnboundedReceiver<(String, bool)>,
    out: mpsc::UnboundedSender<Message>,
) {
    let send = |v: Value| {
        let _ = out.send(Message::text(v.to_string()));
    };
    let mut first = true;
    let mut offset = 0.0;
    // Sarvam synthesises once `SARVAM_MIN_BUFFER` characters are waiting, or on flush.
    let mut buffered = String::new();
    while let Some((text, more)) = rx.recv().await {
        let text = if flavor == Flavor::Sarvam {
            buffered.push_str(&text);
            if buffered.chars().count() >= SARVAM_MIN_BUFFER || !more {
                std::mem::take(&mut buffered)
            } else {
                String::new()
            }
        } else {
            text
        };
        if !text.is_empty() {
            if first {
                first = false;
                // Even a zero sleep waits for the timer (~1 ms): skip it.
                if !script.ttfb.is_zero() {
                    tokio::time::sleep(script.ttfb).await;
                }
            }
            let (pcm, words) = synth(&text, script.ms_per_char, offset);
            let dur = pcm.len() as f64 / f64::from(RATE);
            match flavor {
                Flavor::Cartesia => {
                    let (w, s): (Vec<_>, Vec<_>) = words.into_iter().unzip();
                    let e: Vec<f64> = s.iter().map(|x| x + 0.1).collect();
                    send(
                        json!({"type": "timestamps", "done": false, "status_code": 206,
                        "context_id": ctx, "word_timestamps": {"words": w, "start": s, "end": e}}),
                    );
                    for c in pcm.chunks(2400) {
                        send(json!({"type": "chunk", "data": b64(c), "done": false,
                            "status_code": 206, "step_time": 1.0, "context_id": ctx}));
                    }
                }
                Flavor::ElevenLabs => {
                    // Whole milliseconds, relative to this chunk (the SDK's `Alignment`).
                    let chars: Vec<String> = text.chars().map(String::from).collect();
                    let starts: Vec<u64> = (0..chars.len() as u64)
                        .map(|i| i * script.ms_per_char)
                        .collect();
                    let durs = vec![script.ms_per_char; chars.len()];
                    send(json!({"audio": b64(&pcm), "isFinal": null,
                        "alignment": {"chars": chars, "charStartTimesMs": starts, "charDurationsMs": durs},
                        "normalizedAlignment": null}));
                }
                Flavor::Sarvam => {
                    for c in pcm.chunks(2400) {
                        send(sarvam_audio(c));
                    }
                }
            }
            offset += dur;
        }
        if !more {
            let done = match flavor {
                Flavor::Cartesia => {
                    json!({"type": "done", "done": true, "status_code": 200, "context_id": ctx})
                }
                Flavor::ElevenLabs => json!({"isFinal": true}),
                Flavor::Sarvam => {
                    json!({"type": "event", "data": {"event_type": "final", "request_id": "req-1"}})
                }
            };
            send(done);
            if flavor == Flavor::ElevenLabs {
                // The input is over (`{"text": ""}`): the server closes the connection.
                let _ = out.send(Message::Close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                })));
            }
            return;
        }
    }
}
