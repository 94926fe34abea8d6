//! Zero-latency local providers for the voice bench (the tests use the scripted ones beside
//! this module): an OpenAI-compatible SSE endpoint over raw HTTP/1.1, a Deepgram-style STT that
//! sends a final transcript at fixed points of its audio clock, and a Cartesia-style TTS. They
//! record nothing and answer at once, so what the bench measures is the engine, not them.

use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_tungstenite::tungstenite::Message;

async fn listener() -> std::io::Result<(TcpListener, String)> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?.to_string();
    Ok((l, addr))
}

/// `/v1/chat/completions`: waits `ttft`, then streams `reply` and usage.
pub async fn llm(ttft: Duration, reply: &'static str) -> std::io::Result<String> {
    let (l, addr) = listener().await?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(serve_llm(tcp, ttft, reply));
        }
    });
    Ok(format!("http://{addr}/v1"))
}

async fn serve_llm(mut tcp: TcpStream, ttft: Duration, reply: &str) {
    let _ = tcp.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    // Keep-alive: one request after another on the same connection, as a real API allows.
    loop {
        // Read headers and the body (Content-Length), bounded.
        let consumed = loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    break end + 4 + len;
                }
            }
            let Ok(n) = tcp.read(&mut chunk).await else {
                return;
            };
            if n == 0 || buf.len() > 1 << 20 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        buf.drain(..consumed);
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        if tcp.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        if !ttft.is_zero() {
            tokio::time::sleep(ttft).await;
        }
        let data = |v: Value| format!("data: {v}\n\n");
        let mut body = data(
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": reply}}]}),
        );
        body.push_str(&data(
            json!({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 2}}),
        ));
        body.push_str("data: [DONE]\n\n");
        let framed = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
        if tcp.write_all(framed.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Deepgram-style STT: a final + `speech_final` for `text` at `first + k * every` of audio.
pub async fn stt(first: Duration, every: Duration, text: &'static str) -> std::io::Result<String> {
    let (l, addr) = listener().await?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let mut bytes = 0usize;
                let mut next = first;
                let msg = json!({"type": "Results", "is_final": true, "speech_final": true,
                    "channel": {"alternatives": [{"transcript": text, "confidence": 0.99}]}})
                .to_string();
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Binary(b) = m {
                        bytes += b.len();
                        if Duration::from_secs_f64(bytes as f64 / 32_000.0) >= next {
                            next += every;
                            if ws.send(Message::text(msg.clone())).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    Ok(format!("ws://{addr}/v1/listen"))
}

/// Cartesia-style TTS: `audio_ms` of audio per input, immediately.
pub async fn tts(audio_ms: u64) -> std::io::Result<String> {
    let (l, addr) = listener().await?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let pcm = vec![0u8; (audio_ms * 48) as usize];
                let data = base64::engine::general_purpose::STANDARD.encode(pcm);
                while let Some(Ok(Message::Text(t))) = ws.next().await {
                    let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                        continue;
                    };
                    let ctx = v["context_id"].clone();
                    let mut out = Vec::new();
                    if v["transcript"].as_str().is_some_and(|s| !s.is_empty()) {
                        out.push(json!({"type": "chunk", "data": data, "done": false, "context_id": ctx}));
                    }
                    if v["continue"] == json!(false) {
                        out.push(json!({"type": "done", "done": true, "context_id": ctx}));
                    }
                    for m in out {
                        if ws.send(Message::text(m.to_string())).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok(format!("ws://{addr}/tts/websocket"))
}
