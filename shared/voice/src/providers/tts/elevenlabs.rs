//! ElevenLabs `stream-input` websocket: one connection per utterance. The first message carries
//! a single space and the voice settings, each text chunk is flushed, an empty text ends the
//! input; audio arrives base64 with a per-chunk character alignment, then `isFinal`, and the
//! server closes the connection. As in ElevenLabs' SDK (`convert_realtime`, the reference of
//! `tests/it/conformance/tts.rs`), a normal close (1000) after the end of input also ends the
//! utterance; any other close, or a close before the end of input, is an error.
//!
//! Where we differ from the SDK on purpose: it sends `try_trigger_generation` and a
//! `chunk_length_schedule` of 50 characters and lets the server's schedule cut the text; the
//! engine hands us whole phrases (the reply's chunker), so we send each with `flush` (as
//! LiveKit's plugin does per sentence), which generates it at once and leaves no schedule to
//! tune. We also ask for `sync_alignment`: the word timings an interruption cuts the
//! transcript by.

use std::{sync::Arc, time::Duration};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{
    Message,
    protocol::{CloseFrame, frame::coding::CloseCode},
};

use super::protocol::{TtsError, TtsEvent, WordTiming, pcm_from_bytes};
use crate::{config::TtsConfig, providers::ws};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Give up if the server sends nothing for this long while audio is owed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait to hand our close frame to the socket once the utterance is complete.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

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
    let mut u = url::Url::parse(&format!(
        "{root}/v1/text-to-speech/{}/stream-input",
        cfg.voice
    ))
    .map_err(|_| TtsError::Url(cfg.base_url.clone()))?;
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("model_id", &cfg.model)
            .append_pair("output_format", &format!("pcm_{}", cfg.sample_rate))
            .append_pair("sync_alignment", "true");
        if let Some(lang) = &cfg.language {
            q.append_pair("language_code", lang);
        }
    }
    Ok(u)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Incoming {
    #[serde(default)]
    audio: Option<String>,
    #[serde(default)]
    is_final: Option<bool>,
    #[serde(default)]
    alignment: Option<Alignment>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Alignment {
    #[serde(default)]
    chars: Vec<String>,
    #[serde(default)]
    char_start_times_ms: Vec<f64>,
}

async fn run(
    cfg: &TtsConfig,
    mut input: mpsc::UnboundedReceiver<Option<String>>,
    events: &mpsc::UnboundedSender<TtsEvent>,
) -> Result<(), TtsError> {
    let headers = [("xi-api-key", cfg.api_key.expose().to_owned())];
    let mut socket = ws::connect(&url(cfg)?, &headers, CONNECT_TIMEOUT).await?;
    let sock = |e| TtsError::Socket(Box::new(e));
    let init = json!({"text": " ", "voice_settings": {"stability": 0.5, "similarity_boost": 0.8}});
    socket
        .send(Message::text(init.to_string()))
        .await
        .map_err(sock)?;
    let mut input_open = true;
    let mut samples_so_far: u64 = 0;
    loop {
        tokio::select! {
            text = input.recv(), if input_open => {
                let msg = match text.flatten() {
                    Some(t) => json!({"text": ensure_trailing_space(&t), "flush": true}),
                    None => { input_open = false; json!({"text": ""}) }
                };
                socket.send(Message::text(msg.to_string())).await.map_err(sock)?;
            }
            msg = async {
                if input_open { Ok(socket.next().await) }
                else { tokio::time::timeout(IDLE_TIMEOUT, socket.next()).await }
            } => {
                let Ok(msg) = msg else { return Err(TtsError::Closed("idle timeout".into())) };
                if handle(msg, input_open, cfg, &mut samples_so_far, events)? {
                    // Done: a normal close, as the SDK's (bounded, best effort).
                    let normal = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.close(Some(normal))).await;
                    return Ok(());
                }
            }
        }
    }
}

/// Returns `true` when the utterance is complete (`Done` sent).
fn handle(
    msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    input_open: bool,
    cfg: &TtsConfig,
    samples_so_far: &mut u64,
    events: &mpsc::UnboundedSender<TtsEvent>,
) -> Result<bool, TtsError> {
    let text = match msg {
        None => return Err(TtsError::Closed("eof".into())),
        Some(Err(e)) => return Err(TtsError::Socket(Box::new(e))),
        Some(Ok(Message::Close(Some(f)))) if f.code == CloseCode::Normal && !input_open => {
            let _ = events.send(TtsEvent::Done);
            return Ok(true);
        }
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
    if let Some(e) = m.error.or(m
        .message
        .filter(|_| m.audio.is_none() && m.is_final.is_none()))
    {
        return Err(TtsError::Provider(e));
    }
    let offset = *samples_so_far as f64 / f64::from(cfg.sample_rate.max(1));
    if let Some(audio) = m.audio.filter(|a| !a.is_empty()) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(audio)
            .map_err(|e| TtsError::Malformed(format!("bad base64 audio: {e}")))?;
        let pcm = pcm_from_bytes(&bytes);
        *samples_so_far += pcm.len() as u64;
        let _ = events.send(TtsEvent::Audio(pcm));
    }
    if let Some(a) = m.alignment {
        let words = words_from_chars(&a.chars, &a.char_start_times_ms, offset);
        if !words.is_empty() {
            let _ = events.send(TtsEvent::Words(words));
        }
    }
    if m.is_final == Some(true) {
        let _ = events.send(TtsEvent::Done);
        return Ok(true);
    }
    Ok(false)
}

fn ensure_trailing_space(t: &str) -> String {
    if t.ends_with(' ') {
        t.to_owned()
    } else {
        format!("{t} ")
    }
}

/// Group per-character timings into words.
fn words_from_chars(chars: &[String], starts_ms: &[f64], offset_s: f64) -> Vec<WordTiming> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0.0;
    for (c, ms) in chars.iter().zip(starts_ms) {
        if c.trim().is_empty() {
            if !cur.is_empty() {
                out.push(WordTiming {
                    word: std::mem::take(&mut cur),
                    start,
                });
            }
            continue;
        }
        if cur.is_empty() {
            start = offset_s + ms / 1000.0;
        }
        cur.push_str(c);
    }
    if !cur.is_empty() {
        out.push(WordTiming { word: cur, start });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, TtsProvider};

    fn cfg() -> TtsConfig {
        TtsConfig {
            provider: TtsProvider::ElevenLabs,
            model: "eleven_flash_v2_5".into(),
            voice: "v".into(),
            language: None,
            base_url: "wss://api.elevenlabs.io".into(),
            sample_rate: 24_000,
            api_key: Secret::new("k"),
        }
    }

    fn close(code: CloseCode) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
        Some(Ok(Message::Close(Some(CloseFrame {
            code,
            reason: "".into(),
        }))))
    }

    /// The SDK reads a normal close after the end of input as the end of the audio.
    #[test]
    fn a_normal_close_after_the_input_ends_is_done() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let r = handle(close(CloseCode::Normal), false, &cfg(), &mut 0, &tx);
        assert!(matches!(r, Ok(true)), "{r:?}");
        assert_eq!(rx.try_recv().ok(), Some(TtsEvent::Done));
    }

    /// Text we sent would go unspoken; any other code is the server's failure.
    #[test]
    fn an_early_or_abnormal_close_is_an_error() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for (code, input_open) in [(CloseCode::Normal, true), (CloseCode::Policy, false)] {
            let r = handle(close(code), input_open, &cfg(), &mut 0, &tx);
            assert!(matches!(r, Err(TtsError::Closed(_))), "{code}: {r:?}");
        }
        assert!(rx.try_recv().is_err());
    }
}
