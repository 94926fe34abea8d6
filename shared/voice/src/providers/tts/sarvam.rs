//! Sarvam streaming TTS (Bulbul): `wss://api.sarvam.ai/text-to-speech/ws?model=…&
//! send_completion_event=true`, authenticated with the `api-subscription-key` header, one
//! connection per utterance. The client sends `{"type": "config", "data": {…}}` first, then
//! `{"type": "text", "data": {"text": …}}` as the LLM produces it and `{"type": "flush"}` once
//! the text is complete (the config's language field is `language_code`); the server answers with `{"type": "audio", "data": {"audio": <base64>,
//! "content_type": …}}` chunks and, after the flush, `{"type": "event", "data": {"event_type":
//! "final"}}`. Errors arrive as `{"type": "error", "data": {"message": …, "code": …}}`.
//! Output is `linear16` (s16le) at the configured rate; Sarvam sends no word timings.

use std::{sync::Arc, time::Duration};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::protocol::{TtsError, TtsEvent, pcm_from_bytes};
use crate::{config::TtsConfig, providers::ws};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Characters Sarvam buffers before it starts synthesising (its range is 30-200; the lowest
/// gives the earliest first audio). The final flush sends whatever is left.
const MIN_BUFFER_SIZE: u32 = 30;
const MAX_CHUNK_LENGTH: u32 = 150;

/// Spawn the connection; returns the text input (`None` = end of input).
pub fn spawn(
    cfg: Arc<TtsConfig>,
    events: mpsc::UnboundedSender<TtsEvent>,
) -> mpsc::UnboundedSender<Option<String>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let closed = events.clone();
        tokio::select! {
            () = closed.closed() => {}
            r = run(&cfg, rx, &events) => {
                if let Err(e) = r {
                    let _ = events.send(TtsEvent::Error(crate::error_chain(&e)));
                }
            }
        }
    });
    tx
}

fn url(cfg: &TtsConfig) -> Result<url::Url, TtsError> {
    let root = cfg.base_url.trim_end_matches('/');
    let mut u = url::Url::parse(&format!("{root}/text-to-speech/ws"))
        .map_err(|_| TtsError::Url(cfg.base_url.clone()))?;
    u.query_pairs_mut()
        .append_pair("model", &cfg.model)
        .append_pair("send_completion_event", "true");
    Ok(u)
}

/// The `config` message: voice, language and output format for this connection.
fn config_message(cfg: &TtsConfig) -> Value {
    let mut data = json!({
        // `language_code`, as Sarvam's SDK sends it (its `configure(target_language_code=…)`
        // argument is renamed on the wire).
        "language_code": cfg.language.as_deref().unwrap_or("en-IN"),
        "speaker": cfg.voice,
        "model": cfg.model,
        "pace": 1.0,
        "speech_sample_rate": cfg.sample_rate,
        "output_audio_codec": "linear16",
        "min_buffer_size": MIN_BUFFER_SIZE,
        "max_chunk_length": MAX_CHUNK_LENGTH,
    });
    if cfg.model == "bulbul:v2" {
        // Numbers, dates and code-mixed text read naturally (v3 always preprocesses).
        data["enable_preprocessing"] = json!(true);
    }
    json!({"type": "config", "data": data})
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    data: Option<Value>,
}

async fn run(
    cfg: &TtsConfig,
    mut input: mpsc::UnboundedReceiver<Option<String>>,
    events: &mpsc::UnboundedSender<TtsEvent>,
) -> Result<(), TtsError> {
    let headers = [("api-subscription-key", cfg.api_key.expose().to_owned())];
    let mut socket = ws::connect(&url(cfg)?, &headers, CONNECT_TIMEOUT).await?;
    let sock = |e| TtsError::Socket(Box::new(e));
    socket
        .send(Message::text(config_message(cfg).to_string()))
        .await
        .map_err(sock)?;
    let mut input_open = true;
    let mut decoder = Linear16::default();
    loop {
        tokio::select! {
            text = input.recv(), if input_open => {
                let msg = match text.flatten() {
                    Some(t) if t.trim().is_empty() => continue,
                    Some(t) => json!({"type": "text", "data": {"text": t}}),
                    None => { input_open = false; json!({"type": "flush"}) }
                };
                socket.send(Message::text(msg.to_string())).await.map_err(sock)?;
            }
            msg = socket.next() => {
                if handle(msg, &mut decoder, events)? { return Ok(()) }
            }
        }
    }
}

/// Returns `true` when the utterance is complete.
fn handle(
    msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    decoder: &mut Linear16,
    events: &mpsc::UnboundedSender<TtsEvent>,
) -> Result<bool, TtsError> {
    let text = match msg {
        None => return Err(TtsError::Closed("eof".into())),
        Some(Err(e)) => return Err(TtsError::Socket(Box::new(e))),
        Some(Ok(Message::Close(f))) => {
            return Err(TtsError::Closed(
                f.map(|f| format!("{} {}", f.code, f.reason))
                    .unwrap_or_default(),
            ));
        }
        Some(Ok(Message::Text(t))) => t,
        Some(Ok(_)) => return Ok(false),
    };
    let m: Incoming = serde_json::from_str(text.as_str()).map_err(|e| {
        let preview: String = text.chars().take(80).collect();
        TtsError::Malformed(format!("{e} in {preview:?}"))
    })?;
    let field = |k: &str| m.data.as_ref().and_then(|d| d.get(k));
    match m.kind.as_str() {
        "audio" => {
            let audio = field("audio").and_then(Value::as_str).unwrap_or_default();
            if !audio.is_empty() {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(audio)
                    .map_err(|e| TtsError::Malformed(format!("bad base64 audio: {e}")))?;
                let pcm = decoder.push(&bytes);
                if !pcm.is_empty() {
                    let _ = events.send(TtsEvent::Audio(pcm));
                }
            }
            Ok(false)
        }
        "event" => {
            if field("event_type").and_then(Value::as_str) == Some("final") {
                let _ = events.send(TtsEvent::Done);
                return Ok(true);
            }
            Ok(false)
        }
        "error" => {
            let as_text = |v: Option<&Value>| match v {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Null) | None => None,
                Some(other) => Some(other.to_string()),
            };
            let why = as_text(field("message"))
                .or_else(|| as_text(field("error")))
                .unwrap_or_else(|| "unspecified".into());
            let why = match as_text(field("code")) {
                Some(code) => format!("{why} (code {code})"),
                None => why,
            };
            Err(TtsError::Provider(why))
        }
        _ => Ok(false),
    }
}

/// Base64-decoded `linear16` chunks to samples: skips a RIFF/WAVE header if a chunk carries
/// one, and keeps an odd trailing byte for the next chunk.
#[derive(Default)]
struct Linear16 {
    carry: Option<u8>,
}

impl Linear16 {
    fn push(&mut self, bytes: &[u8]) -> Vec<i16> {
        let body = strip_wav_header(bytes);
        let mut joined = Vec::with_capacity(body.len() + 1);
        joined.extend(self.carry.take());
        joined.extend_from_slice(body);
        if joined.len() % 2 == 1 {
            self.carry = joined.pop();
        }
        pcm_from_bytes(&joined)
    }
}

/// The samples of a WAV chunk (after its `data` sub-chunk header), or `bytes` unchanged.
fn strip_wav_header(bytes: &[u8]) -> &[u8] {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return bytes;
    }
    let mut pos = 12;
    // Bounded: each step moves past one sub-chunk header.
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        if id == b"data" {
            return &bytes[pos + 8..];
        }
        pos = pos
            .saturating_add(8)
            .saturating_add(size.saturating_add(size & 1));
    }
    &[]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_header_is_skipped_and_odd_bytes_carried() {
        let mut wav = b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0".to_vec();
        wav.extend_from_slice(&[0u8; 16]);
        wav.extend_from_slice(b"data\x04\0\0\0");
        wav.extend_from_slice(&[1, 0, 2, 0]);
        let mut d = Linear16::default();
        assert_eq!(d.push(&wav), vec![1, 2]);
        assert_eq!(d.push(&[3, 0, 4]), vec![3]);
        assert_eq!(d.push(&[0]), vec![4]);
        assert!(strip_wav_header(b"RIFF\0\0\0\0WAVEjunk\xff\xff\xff\xff").is_empty());
    }
}
