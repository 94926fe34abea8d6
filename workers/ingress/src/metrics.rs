//! Prometheus metrics, on an explicit registry (no global recorder), with the bus's own
//! counters (`callfleet_bus_ack_failures_total`) registered beside the ingress's.

use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::AppState;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub accepted: IntCounter,
    pub duplicates: IntCounter,
    pub publish_seconds: Histogram,
}

impl Metrics {
    #[expect(
        clippy::expect_used,
        reason = "metric definitions are static and valid"
    )]
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "callfleet_ingress_requests_total",
                "HTTP requests by route and status",
            ),
            &["route", "status"],
        )
        .expect("valid metric");
        let accepted = IntCounter::new(
            "callfleet_ingress_dispatch_accepted_total",
            "Calls enqueued",
        )
        .expect("valid metric");
        let duplicates = IntCounter::new(
            "callfleet_ingress_dispatch_duplicates_total",
            "Repeated dispatches (same call id)",
        )
        .expect("valid metric");
        let publish_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "callfleet_ingress_publish_seconds",
                "JetStream publish to acknowledgement",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0,
            ]),
        )
        .expect("valid metric");
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(accepted.clone()),
            Box::new(duplicates.clone()),
            Box::new(publish_seconds.clone()),
        ] {
            registry.register(m).expect("unique metric");
        }
        // The bus's counters (acknowledgements that failed), process-wide.
        callfleet_bus::metrics::register(&registry).expect("unique metric");
        Self {
            registry,
            requests,
            accepted,
            duplicates,
            publish_seconds,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "other".into());
    let response = next.run(request).await;
    state
        .metrics
        .requests
        .with_label_values(&[&route, response.status().as_str()])
        .inc();
    response
}

#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn render(State(state): State<AppState>) -> Response {
    let mut buf = Vec::new();
    let families = state.metrics.registry.gather();
    match TextEncoder::new().encode(&families, &mut buf) {
        Ok(()) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], buf).into_response(),
        Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
