//! Local Deepgram (`/v1/listen`), AssemblyAI (`/v3/ws`) and Sarvam (`/speech-to-text/ws`, audio
//! as base64 in JSON text messages) websocket servers. Each connection counts the audio it
//! receives (16 kHz s16le) and sends its scripted messages when the audio clock passes their
//! time, so transcripts line up with what the callee "said". Options ([`SttOptions`]): a script
//! that repeats every so much audio (the bench's many turns), and not recording.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{
    Message,
    handshake::server::{ErrorResponse, Request, Response},
    http::StatusCode,
};

use super::{Record, callee::lock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Deepgram,
    AssemblyAi,
    Sarvam,
}

#[derive(Debug, Default, Clone)]
pub struct SttLog {
    pub uri: String,
    pub auth: Option<String>,
    /// The `api-subscription-key` header (Sarvam).
    pub api_key: Option<String>,
    /// The `AssemblyAI-Version` header (the API version an AssemblyAI client asks for).
    pub api_version: Option<String>,
    /// Audio messages received (Sarvam: the JSON envelope of the first one is kept in
    /// `first_audio`).
    pub audio_messages: usize,
    pub first_audio: Option<Value>,
    pub audio_bytes: usize,
    pub text_messages: Vec<String>,
}

#[derive(Clone)]
pub struct FakeStt {
    pub url: String,
    pub log: Arc<Mutex<Vec<SttLog>>>,
    /// TCP connections accepted (including refused upgrades).
    pub attempts: Arc<AtomicUsize>,
}

/// How a connection fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SttFail {
    /// Refuse the websocket upgrade with this HTTP status.
    Reject(u16),
    /// Answer the first audio with a text message that is not JSON.
    Garbage,
    /// Send the first scripted message (or, with an empty script, read the first audio), then
    /// drop the TCP connection without a close frame.
    DropAfterFirst,
}

/// How [`FakeStt::start_with`] runs its script.
#[derive(Debug, Clone, Copy, Default)]
pub struct SttOptions {
    /// [`Record::Off`]: keep no [`SttLog`] ([`FakeStt::connections`] stays empty).
    pub record: Record,
    /// Once the script is done, run it again shifted by this much audio, forever: with
    /// `[at(650, final)]` and 2 s, the final is sent at 0.65 s, 2.65 s, 4.65 s… of each
    /// connection's audio. `None`: the script runs once.
    pub repeat_every: Option<Duration>,
}

/// One scripted message, sent once `at` of audio has arrived.
#[derive(Debug, Clone)]
pub struct At {
    pub at: Duration,
    pub json: String,
}

pub fn at(ms: u64, json: serde_json::Value) -> At {
    At {
        at: Duration::from_millis(ms),
        json: json.to_string(),
    }
}

/// Deepgram `Results` (every field Deepgram's SDK requires).
pub fn dg_result(text: &str, is_final: bool, speech_final: bool) -> serde_json::Value {
    json!({"type": "Results", "channel_index": [0, 1], "duration": 0.5, "start": 0.0,
        "is_final": is_final, "speech_final": speech_final, "from_finalize": false,
        "channel": {"alternatives": [{"transcript": text, "confidence": 0.98, "words": []}]},
        "metadata": {"request_id": "r1", "model_uuid": "m1",
            "model_info": {"name": "general-nova-3", "version": "2025-01-01", "arch": "nova-3"}}})
}

/// Sarvam `data`: the final transcript of one utterance.
pub fn sarvam_data(transcript: &str) -> Value {
    json!({"type": "data", "data": {"request_id": "req-1", "transcript": transcript,
        "timestamps": null, "diarized_transcript": null, "language_code": "hi-IN",
        "metrics": {"audio_duration": 1.2, "processing_latency": 0.05}}})
}

/// Sarvam `events` (VAD): `START_SPEECH` or `END_SPEECH`.
pub fn sarvam_event(signal: &str) -> Value {
    json!({"type": "events", "data": {"signal_type": signal, "occured_at": 1.0}})
}

/// The decoded audio of a Sarvam audio message (`{"audio": {"data": <base64>, …}}`).
fn sarvam_audio(text: &str) -> Option<(usize, Value)> {
    let v: Value = serde_json::from_str(text).ok()?;
    let data = v.get("audio")?.get("data")?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    Some((bytes.len(), v))
}

/// AssemblyAI v3 `Turn`.
pub fn aai_turn(
    order: u32,
    transcript: &str,
    end_of_turn: bool,
    utterance: &str,
) -> serde_json::Value {
    let words: Vec<_> = transcript
        .split_whitespace()
        .map(|w| json!({"text": w, "start": 0, "end": 0, "confidence": 0.9, "word_is_final": true}))
        .collect();
    json!({"type": "Turn", "turn_order": order, "turn_is_formatted": false, "end_of_turn": end_of_turn,
        "transcript": transcript, "end_of_turn_confidence": if end_of_turn {0.9} else {0.1},
        "words": words, "utterance": utterance})
}

impl FakeStt {
    pub async fn start(flavor: Flavor, script: Vec<At>) -> Self {
        Self::failing(flavor, script, None, 0).await
    }

    /// As [`start`](Self::start), with options (repeat, record).
    pub async fn start_with(flavor: Flavor, script: Vec<At>, opts: SttOptions) -> Self {
        Self::launch(flavor, script, None, 0, opts).await
    }

    /// The first `connections` connections fail as `fail` says (`usize::MAX`: all of them);
    /// later ones follow the script.
    pub async fn failing(
        flavor: Flavor,
        script: Vec<At>,
        fail: Option<SttFail>,
        connections: usize,
    ) -> Self {
        Self::launch(flavor, script, fail, connections, SttOptions::default()).await
    }

    async fn launch(
        flavor: Flavor,
        script: Vec<At>,
        fail: Option<SttFail>,
        connections: usize,
        opts: SttOptions,
    ) -> Self {
        let attempts = Arc::new(AtomicUsize::new(0));
        let a = attempts.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let script = script.clone();
                let log = l.clone();
                let n = a.fetch_add(1, Ordering::SeqCst);
                let fail = fail.filter(|_| n < connections);
                tokio::spawn(serve(flavor, tcp, script, log, fail, opts));
            }
        });
        // Sarvam's base URL is the API root; the client adds `/speech-to-text/ws`.
        let path = match flavor {
            Flavor::Deepgram => "/v1/listen",
            Flavor::AssemblyAi => "/v3/ws",
            Flavor::Sarvam => "",
        };
        Self {
            url: format!("ws://{addr}{path}"),
            log,
            attempts,
        }
    }

    pub fn connections(&self) -> Vec<SttLog> {
        lock(&self.log).clone()
    }
}

async fn serve(
    flavor: Flavor,
    tcp: tokio::net::TcpStream,
    script: Vec<At>,
    log: Arc<Mutex<Vec<SttLog>>>,
    fail: Option<SttFail>,
    opts: SttOptions,
) {
    let mut entry = SttLog::default();
    #[expect(clippy::result_large_err, reason = "tungstenite's callback signature")]
    let cb = |req: &Request, resp: Response| {
        if let Some(SttFail::Reject(code)) = fail {
            let mut refused = ErrorResponse::new(Some("Invalid credentials".to_owned()));
            *refused.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::UNAUTHORIZED);
            return Err(refused);
        }
        entry.uri = req.uri().to_string();
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        entry.auth = header("authorization");
        entry.api_key = header("api-subscription-key");
        entry.api_version = header("assemblyai-version");
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, cb).await else {
        return;
    };
    // `None`: not recording (the log is left alone).
    let idx = (opts.record == Record::On).then(|| {
        let mut g = lock(&log);
        g.push(entry);
        g.len() - 1
    });
    if flavor == Flavor::AssemblyAi {
        let begin = json!({"type": "Begin", "id": "sess-1", "expires_at": 0});
        let _ = ws.send(Message::text(begin.to_string())).await;
    }
    let mut next = 0;
    // Audio time the script is shifted by (grows by `repeat_every` each time it starts over).
    let mut base = Duration::ZERO;
    let mut bytes = 0usize;
    while let Some(Ok(msg)) = ws.next().await {
        // Audio: binary (Deepgram, AssemblyAI) or a JSON text envelope (Sarvam).
        let audio_len = match &msg {
            Message::Binary(b) => Some(b.len()),
            Message::Text(t) if flavor == Flavor::Sarvam => {
                sarvam_audio(t.as_str()).map(|(n, envelope)| {
                    if let Some(i) = idx {
                        let mut g = lock(&log);
                        g[i].audio_messages += 1;
                        g[i].first_audio.get_or_insert(envelope);
                    }
                    n
                })
            }
            _ => None,
        };
        match (msg, audio_len) {
            (_, Some(len)) => {
                if fail == Some(SttFail::Garbage) && bytes == 0 {
                    let garbage = "<html><body>502 Bad Gateway</body></html>";
                    if ws.send(Message::text(garbage)).await.is_err() {
                        return;
                    }
                }
                if fail == Some(SttFail::DropAfterFirst) && script.is_empty() {
                    return;
                }
                bytes += len;
                if let Some(i) = idx {
                    lock(&log)[i].audio_bytes = bytes;
                }
                let audio = Duration::from_secs_f64(bytes as f64 / 32_000.0);
                loop {
                    if next == script.len() {
                        match opts.repeat_every {
                            Some(every) if !every.is_zero() && !script.is_empty() => {
                                next = 0;
                                base += every;
                            }
                            _ => break,
                        }
                    }
                    if base + script[next].at > audio {
                        break;
                    }
                    if ws
                        .send(Message::text(script[next].json.clone()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    next += 1;
                    if fail == Some(SttFail::DropAfterFirst) {
                        return; // drops the socket: no close frame
                    }
                }
            }
            (Message::Text(t), None) => {
                let t = t.to_string();
                if let Some(i) = idx {
                    lock(&log)[i].text_messages.push(t.clone());
                }
                let closing = t.contains("CloseStream")
                    || t.contains("Terminate")
                    || (flavor == Flavor::Sarvam && t.contains("flush"));
                if closing {
                    let last = match flavor {
                        Flavor::Deepgram => Some(json!({"type": "Metadata",
                            "transaction_key": "deprecated", "request_id": "r1", "sha256": "0",
                            "created": "2025-01-01T00:00:00.000Z",
                            "duration": bytes as f64 / 32_000.0, "channels": 1})),
                        Flavor::AssemblyAi => {
                            Some(json!({"type": "Termination", "audio_duration_seconds": 1,
                            "session_duration_seconds": 1}))
                        }
                        Flavor::Sarvam => None,
                    };
                    if let Some(last) = last {
                        let _ = ws.send(Message::text(last.to_string())).await;
                    }
                    let _ = ws.close(None).await;
                    return;
                }
            }
            (Message::Close(_), None) => return,
            _ => {}
        }
    }
}
