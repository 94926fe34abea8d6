//! OpenAI-compatible `POST {base}/chat/completions` with `stream: true` and
//! `stream_options.include_usage`, parsed from SSE. Tool-call deltas are assembled by index.

use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{
    chat::{ChatMessage, ToolCall, ToolSpec},
    error::LlmError,
    sse::SseParser,
};
use crate::config::LlmConfig;

/// How long to wait for response headers, and for each chunk after that.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(15);
const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// One piece of a streamed completion.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmEvent {
    Text(String),
    /// A complete tool call (emitted once its arguments are complete, at the end of the stream).
    ToolCall(ToolCall),
    Usage {
        prompt_tokens: u64,
        completion_tokens: u64,
    },
    Done,
}

/// A running completion; dropping it cancels the request.
#[derive(Debug)]
pub struct LlmStream {
    rx: mpsc::Receiver<Result<LlmEvent, LlmError>>,
    _guard: DropGuard,
}

impl LlmStream {
    /// The next event; `None` after `Done` or an error.
    pub async fn next(&mut self) -> Option<Result<LlmEvent, LlmError>> {
        self.rx.recv().await
    }
}

#[derive(Debug, Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    cfg: LlmConfig,
}

impl LlmClient {
    pub fn new(cfg: LlmConfig) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(LlmError::Client)?;
        Ok(Self { http, cfg })
    }

    pub fn config(&self) -> &LlmConfig {
        &self.cfg
    }

    /// Start a streamed completion.
    pub fn stream(&self, messages: &[ChatMessage], tools: &[ToolSpec]) -> LlmStream {
        let mut body = json!({
            "model": self.cfg.model,
            "messages": messages.iter().map(ChatMessage::to_json).collect::<Vec<_>>(),
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if !tools.is_empty() {
            body["tools"] = tools.iter().map(ToolSpec::to_json).collect();
            body["parallel_tool_calls"] = json!(false);
        }
        if let Some(t) = self.cfg.temperature {
            body["temperature"] = json!(t);
        }
        let (tx, rx) = mpsc::channel(256);
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let http = self.http.clone();
        let url = format!(
            "{}/chat/completions",
            self.cfg.base_url.trim_end_matches('/')
        );
        let key = self.cfg.api_key.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = token.cancelled() => {}
                r = run(http, url, key.expose().to_owned(), body, &tx) => {
                    if let Err(e) = r { let _ = tx.send(Err(e)).await; }
                }
            }
        });
        LlmStream {
            rx,
            _guard: cancel.drop_guard(),
        }
    }
}

async fn run(
    http: reqwest::Client,
    url: String,
    key: String,
    body: Value,
    tx: &mpsc::Sender<Result<LlmEvent, LlmError>>,
) -> Result<(), LlmError> {
    let request = http.post(&url).bearer_auth(key).json(&body).send();
    let response = tokio::time::timeout(RESPONSE_TIMEOUT, request)
        .await
        .map_err(|_| LlmError::Timeout {
            url: url.clone(),
            timeout: RESPONSE_TIMEOUT,
        })?
        .map_err(|source| LlmError::Request {
            url: url.clone(),
            source,
        })?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(LlmError::Status {
            url,
            status: status.as_u16(),
            body: text.chars().take(500).collect(),
        });
    }
    let mut bytes = response.bytes_stream();
    let mut parser = SseParser::default();
    let mut calls = ToolCalls::default();
    let mut events = 0usize;
    let mut preview_of_body = String::new();
    loop {
        let chunk = match tokio::time::timeout(IDLE_TIMEOUT, bytes.next()).await {
            Err(_) => return Err(LlmError::Idle(IDLE_TIMEOUT)),
            Ok(None) => break,
            Ok(Some(c)) => c.map_err(LlmError::Stream)?,
        };
        if events == 0 && preview_of_body.len() < 120 {
            preview_of_body.push_str(&String::from_utf8_lossy(&chunk));
        }
        for data in parser.push(&chunk) {
            events += 1;
            if data.trim() == "[DONE]" {
                return finish(calls, tx).await;
            }
            for ev in parse_chunk(&data, &mut calls)? {
                if tx.send(Ok(ev)).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
    if events == 0 {
        // Not an event stream at all (an HTML error page, a proxy's reply...).
        return Err(LlmError::Malformed(format!(
            "the stream ended without a data event: {}",
            preview(&preview_of_body)
        )));
    }
    // Some servers close without [DONE]; treat a clean close as the end.
    finish(calls, tx).await
}

async fn finish(
    calls: ToolCalls,
    tx: &mpsc::Sender<Result<LlmEvent, LlmError>>,
) -> Result<(), LlmError> {
    for c in calls.done() {
        let _ = tx.send(Ok(LlmEvent::ToolCall(c))).await;
    }
    let _ = tx.send(Ok(LlmEvent::Done)).await;
    Ok(())
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<Value>,
    /// Groq also reports usage here, on the last chunk.
    #[serde(default)]
    x_groq: Option<XGroq>,
}

#[derive(Deserialize)]
struct XGroq {
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Delta,
}

#[derive(Deserialize, Default)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCallDelta>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: usize,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

fn parse_chunk(data: &str, calls: &mut ToolCalls) -> Result<Vec<LlmEvent>, LlmError> {
    let chunk: Chunk = serde_json::from_str(data)
        .map_err(|e| LlmError::Malformed(format!("{e} in {}", preview(data))))?;
    if let Some(err) = chunk.error {
        let msg = err
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| err.to_string(), str::to_owned);
        return Err(LlmError::Provider(msg));
    }
    let mut out = Vec::new();
    for choice in chunk.choices {
        if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
            out.push(LlmEvent::Text(text));
        }
        for d in choice.delta.tool_calls {
            calls.apply(d);
        }
    }
    let groq = chunk.x_groq.and_then(|x| x.usage);
    if let Some(u) = chunk.usage.or(groq) {
        out.push(LlmEvent::Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        });
    }
    Ok(out)
}

fn preview(s: &str) -> String {
    s.chars().take(120).collect()
}

/// Tool calls being assembled from deltas, by index.
#[derive(Default)]
struct ToolCalls(Vec<ToolCall>);

impl ToolCalls {
    fn apply(&mut self, d: ToolCallDelta) {
        // Indexes come from the server; cap them so a bad one cannot allocate much.
        let i = d.index.min(16);
        while self.0.len() <= i {
            self.0.push(ToolCall {
                id: String::new(),
                name: String::new(),
                arguments: String::new(),
            });
        }
        let c = &mut self.0[i];
        if let Some(id) = d.id {
            c.id = id;
        }
        if let Some(f) = d.function {
            if let Some(n) = f.name {
                c.name.push_str(&n);
            }
            if let Some(a) = f.arguments {
                c.arguments.push_str(&a);
            }
        }
    }

    fn done(self) -> Vec<ToolCall> {
        self.0.into_iter().filter(|c| !c.name.is_empty()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_tool_calls_and_usage() {
        let mut calls = ToolCalls::default();
        let a = r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"end_call","arguments":""}}]}}]}"#;
        let b = r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"reason\":\"bye\"}"}}]}}]}"#;
        let u = r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#;
        assert!(parse_chunk(a, &mut calls).unwrap_or_default().is_empty());
        assert!(parse_chunk(b, &mut calls).unwrap_or_default().is_empty());
        let ev = parse_chunk(u, &mut calls).unwrap_or_default();
        assert_eq!(
            ev,
            vec![LlmEvent::Usage {
                prompt_tokens: 12,
                completion_tokens: 3
            }]
        );
        let done = calls.done();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].name, "end_call");
        assert_eq!(done[0].arguments, r#"{"reason":"bye"}"#);
    }

    #[test]
    fn groq_usage_is_read_once() {
        let mut calls = ToolCalls::default();
        let c = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"x_groq":{"id":"r","usage":{"prompt_tokens":5,"completion_tokens":2}},"usage":{"prompt_tokens":5,"completion_tokens":2}}"#;
        let ev = parse_chunk(c, &mut calls).unwrap_or_default();
        assert_eq!(ev.len(), 1);
    }

    #[test]
    fn malformed_chunk_is_an_error_not_a_panic() {
        let mut calls = ToolCalls::default();
        assert!(parse_chunk("{not json", &mut calls).is_err());
        assert!(parse_chunk(r#"{"error":{"message":"rate limited"}}"#, &mut calls).is_err());
    }
}
