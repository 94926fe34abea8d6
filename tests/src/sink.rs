//! A webhook receiver whose answer can be changed mid-test.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU16, Ordering},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// What the sink answered.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
    /// Whether its Standard Webhooks signature verifies with `secret` (checked with this
    /// crate's own HMAC, independently of the notifier's code).
    pub fn signed_with(&self, secret: &str) -> bool {
        crate::verify_signature(
            secret,
            &self.header("webhook-id"),
            &self.header("webhook-timestamp"),
            &self.body,
            &self.header("webhook-signature"),
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Clone, Default)]
struct Inner {
    status: Arc<AtomicU16>,
    received: Arc<Mutex<Vec<Received>>>,
}

pub struct WebhookSink {
    pub port: u16,
    inner: Inner,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookSink {
    pub async fn start() -> Self {
        let inner = Inner::default();
        inner.status.store(200, Ordering::SeqCst);
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind sink: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { port, inner, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Answer every following request with this status.
    pub fn set_status(&self, status: u16) {
        self.inner.status.store(status, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Requests answered with 2xx.
    pub fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(inner): State<Inner>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let status = inner.status.load(Ordering::SeqCst);
    if let Ok(mut r) = inner.received.lock() {
        r.push(Received {
            headers,
            body,
            status,
        });
    }
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
