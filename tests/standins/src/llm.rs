//! A local OpenAI-compatible `/v1/chat/completions` server streaming SSE, scripted per request
//! (the last script repeats). It records every request unless started with [`Record::Off`].

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router, body::Body, extract::State, http::HeaderMap, response::Response, routing::post,
};
use serde_json::{Value, json};
use tokio::{sync::mpsc, time::Instant};

use super::{Record, callee::lock};

#[derive(Debug, Clone)]
pub struct LlmScript {
    /// Delay before the first token.
    pub ttft: Duration,
    pub chunks: Vec<String>,
    pub chunk_delay: Duration,
    /// `(name, arguments JSON)` tool calls, streamed after the text.
    pub tool_calls: Vec<(String, String)>,
    /// Misbehave instead of (or part-way through) streaming the script.
    pub fail: Option<LlmFail>,
}

/// How the server fails a request.
#[derive(Debug, Clone)]
pub enum LlmFail {
    /// Answer with this status and an OpenAI-style JSON error body.
    Status(u16),
    /// Answer 200 `text/event-stream` with this body verbatim, then end the response cleanly.
    Raw(String),
    /// Stream the first chunk, then drop the connection mid-response (no terminating chunk).
    DisconnectAfterFirst,
}

impl LlmScript {
    pub fn text(ttft_ms: u64, chunks: &[&str]) -> Self {
        Self {
            ttft: Duration::from_millis(ttft_ms),
            chunks: chunks.iter().map(|s| (*s).to_owned()).collect(),
            chunk_delay: Duration::ZERO,
            tool_calls: Vec::new(),
            fail: None,
        }
    }

    /// A request that fails as `fail` says.
    pub fn failing(fail: LlmFail) -> Self {
        Self {
            fail: Some(fail),
            ..Self::text(0, &["We are open ", "nine to five. ", "See you soon."])
        }
    }

    pub fn with_tool(mut self, name: &str, args: &str) -> Self {
        self.tool_calls.push((name.into(), args.into()));
        self
    }
}

#[derive(Debug, Clone)]
pub struct LlmRequest {
    pub at: Instant,
    pub body: Value,
    pub auth: Option<String>,
    /// The client went away before the stream finished.
    pub cancelled: bool,
    pub completed: bool,
}

impl LlmRequest {
    /// The content of the last user message.
    pub fn last_user(&self) -> String {
        last_user(&self.body)
    }
}

fn last_user(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_owned()
}

#[derive(Default)]
struct Inner {
    /// Replies chosen by what the callee said last (case-insensitive substring), before the
    /// scripts in order.
    rules: Vec<(String, LlmScript)>,
    scripts: VecDeque<LlmScript>,
    fallback: Option<LlmScript>,
    requests: Vec<LlmRequest>,
    record: Record,
}

#[derive(Clone)]
pub struct FakeLlm {
    pub base_url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeLlm {
    /// Start on 127.0.0.1; `scripts` answer requests in order, the last one repeats.
    pub async fn start(scripts: Vec<LlmScript>) -> Self {
        Self::start_with(scripts, Record::On).await
    }

    /// As [`start`](Self::start); with [`Record::Off`] nothing is kept and
    /// [`requests`](Self::requests) stays empty.
    pub async fn start_with(scripts: Vec<LlmScript>, record: Record) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            rules: Vec::new(),
            fallback: scripts.last().cloned(),
            scripts: scripts.into(),
            requests: Vec::new(),
            record,
        }));
        let app = Router::new()
            .route("/v1/chat/completions", post(handle))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base_url: format!("http://{addr}/v1"),
            inner,
        }
    }

    pub fn requests(&self) -> Vec<LlmRequest> {
        lock(&self.inner).requests.clone()
    }

    /// Answer every request whose last user message contains `heard` (any case) with
    /// `script`, instead of the next script in order; the first matching rule wins. Lets one
    /// stand-in serve calls that run in any order.
    pub fn on_hearing(&self, heard: &str, script: LlmScript) {
        lock(&self.inner).rules.push((heard.to_lowercase(), script));
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let (idx, script) = {
        let mut g = lock(&inner);
        let heard = last_user(&body).to_lowercase();
        let ruled = g
            .rules
            .iter()
            .find(|(k, _)| heard.contains(k.as_str()))
            .map(|(_, s)| s.clone());
        let script = ruled
            .or_else(|| g.scripts.pop_front())
            .or_else(|| g.fallback.clone())
            .unwrap_or_else(|| LlmScript::text(0, &["OK."]));
        if g.record == Record::Off {
            (None, script)
        } else {
            g.requests.push(LlmRequest {
                at: Instant::now(),
                body,
                auth: headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                cancelled: false,
                completed: false,
            });
            (Some(g.requests.len() - 1), script)
        }
    };
    match &script.fail {
        Some(LlmFail::Status(code)) => {
            let body = json!({"error": {"message": "Incorrect API key provided: sk-te***nai.",
                "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
            return Response::builder()
                .status(*code)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap_or_default();
        }
        Some(LlmFail::Raw(raw)) => {
            if let Some(i) = idx {
                lock(&inner).requests[i].completed = true;
            }
            return Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from(raw.clone()))
                .unwrap_or_default();
        }
        Some(LlmFail::DisconnectAfterFirst) | None => {}
    }
    let (tx, rx) = mpsc::channel::<Result<String, std::io::Error>>(1);
    tokio::spawn(async move {
        let ok = stream(&script, &tx).await;
        if let Some(i) = idx {
            let mut g = lock(&inner);
            if ok {
                g.requests[i].completed = true
            } else {
                g.requests[i].cancelled = true
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(body)
        .unwrap_or_default()
}

/// Write the script; `false` if the client went away first.
async fn stream(s: &LlmScript, tx: &mpsc::Sender<Result<String, std::io::Error>>) -> bool {
    // SSE comments while "thinking" let the server notice a client that left.
    let start = Instant::now();
    while start.elapsed() < s.ttft {
        let left = s
            .ttft
            .saturating_sub(start.elapsed())
            .min(Duration::from_millis(10));
        tokio::time::sleep(left).await;
        if tx.send(Ok(": thinking\n\n".into())).await.is_err() {
            return false;
        }
    }
    let chunk = |delta: Value, usage: Value| {
        let mut c = json!({"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0,
            "model": "test", "choices": [{"index": 0, "delta": delta, "finish_reason": null}]});
        if !usage.is_null() {
            c["choices"] = json!([]);
            c["usage"] = usage;
        }
        Ok(format!("data: {c}\n\n"))
    };
    for (i, text) in s.chunks.iter().enumerate() {
        if i > 0 && !s.chunk_delay.is_zero() {
            tokio::time::sleep(s.chunk_delay).await;
        }
        let delta = if i == 0 {
            json!({"role": "assistant", "content": text})
        } else {
            json!({"content": text})
        };
        if tx.send(chunk(delta, Value::Null)).await.is_err() {
            return false;
        }
        if matches!(s.fail, Some(LlmFail::DisconnectAfterFirst)) {
            // An error in the body stream makes hyper abort the connection.
            let _ = tx
                .send(Err(std::io::Error::other("server went away")))
                .await;
            return false;
        }
    }
    for (i, (name, args)) in s.tool_calls.iter().enumerate() {
        let (a, b) = args.split_at(args.len() / 2);
        let first = json!({"tool_calls": [{"index": i, "id": format!("call_{i}"), "type": "function",
            "function": {"name": name, "arguments": a}}]});
        let second = json!({"tool_calls": [{"index": i, "function": {"arguments": b}}]});
        for d in [first, second] {
            if tx.send(chunk(d, Value::Null)).await.is_err() {
                return false;
            }
        }
    }
    // As OpenAI ends a stream: a last choice with an empty delta and why it stopped.
    let reason = if s.tool_calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    let mut last = chunk(json!({}), Value::Null);
    if let Ok(line) = &mut last {
        *line = line.replacen(
            r#""finish_reason":null"#,
            &format!(r#""finish_reason":"{reason}""#),
            1,
        );
    }
    if tx.send(last).await.is_err() {
        return false;
    }
    let words: usize = s.chunks.iter().map(|c| c.split_whitespace().count()).sum();
    let usage = json!({"prompt_tokens": 42, "completion_tokens": words + s.tool_calls.len(), "total_tokens": 0});
    for item in [chunk(json!({}), usage), Ok("data: [DONE]\n\n".to_owned())] {
        if tx.send(item).await.is_err() {
            return false;
        }
    }
    true
}
