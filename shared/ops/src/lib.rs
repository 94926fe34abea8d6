//! The operations listener of the roles that have no HTTP API of their own (agent, notifier,
//! campaigner), for Kubernetes' probes and Prometheus:
//!
//! - `GET /healthz`: `200` while the process runs (liveness);
//! - `GET /readyz`: `200` while the role consumes, NATS is connected and JetStream answers;
//!   `503` with the reason before the role consumes, while it drains (after SIGTERM) and while
//!   NATS is away (readiness: a draining pod leaves its Service's endpoints);
//! - `GET /metrics`: Prometheus text: each watched consumer's `num_pending` and
//!   `num_ack_pending` ([`lag`], read from the server at each scrape), the role's own metrics
//!   (the agent's slots), and the bus's counters.
//!
//! The listener outlives the role's shutdown token: it keeps answering (`/readyz` `503
//! draining`) through the drain, and stops when the role drops its [`Server`].

pub mod lag;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use callfleet_bus::{Bus, Watch};
use prometheus::{Encoder, Registry, TextEncoder};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long `/readyz` waits for JetStream, and `/metrics` for the consumers' info.
const SERVER_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("cannot listen on {addr} (the {role}'s metrics_listen)")]
    Bind {
        role: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot register a metric")]
    Metric(#[from] prometheus::Error),
}

/// A gauge refresher run before each scrape (the agent sets its slots' gauges from it).
pub type OnScrape = Box<dyn Fn() + Send + Sync>;

/// What the listener reports for one role.
#[derive(Clone)]
pub struct Ops {
    inner: Arc<Inner>,
}

struct Inner {
    role: &'static str,
    bus: Bus,
    registry: Registry,
    lag: lag::Lag,
    on_scrape: Vec<OnScrape>,
    consuming: AtomicBool,
    draining: CancellationToken,
    /// One scrape at a time: a refresh resets the per-consumer gauges before setting them.
    scrape: tokio::sync::Mutex<()>,
}

/// The operations listener of one role, answering until dropped or stopped.
pub struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Ops {
    /// A role's report: `watch` lists its consumers, `draining` is the role's shutdown token
    /// (cancelled: not ready), `collectors` its own metrics, `on_scrape` their refreshers.
    pub fn new(
        role: &'static str,
        bus: Bus,
        watch: Vec<Watch>,
        draining: CancellationToken,
        collectors: Vec<Box<dyn prometheus::core::Collector>>,
        on_scrape: Vec<OnScrape>,
    ) -> Result<Self, OpsError> {
        let registry = Registry::new();
        let lag = lag::Lag::new(watch)?;
        lag.register(&registry)?;
        for c in collectors {
            registry.register(c)?;
        }
        callfleet_bus::metrics::register(&registry)?;
        Ok(Self {
            inner: Arc::new(Inner {
                role,
                bus,
                registry,
                lag,
                on_scrape,
                consuming: AtomicBool::new(false),
                draining,
                scrape: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The role has opened its consumers and pulls: ready (unless draining or disconnected).
    pub fn consuming(&self) {
        self.inner.consuming.store(true, Ordering::Relaxed);
    }

    /// The role stopped consuming (the dispatcher lost LiveKit): not ready until
    /// [`Self::consuming`] again.
    pub fn not_consuming(&self) {
        self.inner.consuming.store(false, Ordering::Relaxed);
    }

    /// Bind `listen` and serve until the returned [`Server`] stops or drops.
    pub async fn serve(&self, listen: &str) -> Result<Server, OpsError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| OpsError::Bind {
                role: self.inner.role,
                addr: listen.to_owned(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| OpsError::Bind {
            role: self.inner.role,
            addr: listen.to_owned(),
            source,
        })?;
        let stop = CancellationToken::new();
        let app = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(self.clone());
        let until = stop.clone().cancelled_owned();
        let role = self.inner.role;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(until)
                .await
            {
                tracing::error!(role, error = %e, "the operations listener failed");
            }
        });
        tracing::info!(role, %addr, "probes and metrics listening");
        Ok(Server {
            addr,
            stop,
            task: Some(task),
        })
    }

    /// The Prometheus text of every metric, consumers refreshed from the server first.
    pub async fn render(&self) -> Result<String, prometheus::Error> {
        let _one = self.inner.scrape.lock().await;
        for refresh in &self.inner.on_scrape {
            refresh();
        }
        self.inner.lag.refresh(&self.inner.bus, SERVER_WAIT).await;
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.inner.registry.gather(), &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Ready, or the reason not to be.
    async fn readiness(&self) -> Result<(), &'static str> {
        let i = &self.inner;
        if i.draining.is_cancelled() {
            return Err("draining");
        }
        if !i.consuming.load(Ordering::Relaxed) {
            return Err("starting");
        }
        if !i.bus.is_connected() {
            return Err("nats disconnected");
        }
        i.bus
            .check_jetstream(SERVER_WAIT)
            .await
            .map_err(|_| "jetstream unavailable")
    }
}

impl Server {
    /// The address it listens on (port 0 resolved).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop answering and wait (a moment at most: a scraper's open connection must not hold
    /// the exit) for the listener to close.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take()
            && let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(2), task).await
        {
            tracing::error!(error = %e, "the operations listener panicked");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(ops): State<Ops>) -> (StatusCode, Json<Value>) {
    let role = ops.inner.role;
    match ops.readiness().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "role": role, "nats": "connected", "consuming": true })),
        ),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "role": role, "reason": reason })),
        ),
    }
}

async fn metrics(State(ops): State<Ops>) -> Response {
    match ops.render().await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
