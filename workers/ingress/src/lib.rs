//! The HTTP ingress. It owns no state: it validates a request, publishes it onto JetStream, and
//! answers `202` only once JetStream acknowledged the publish (`503` when NATS is unavailable).
//!
//! Routes: `POST /dispatch`, `GET`/`DELETE /calls/{id}`, `POST /calls/{id}/transfer`,
//! `/campaigns…`, `/dnc…` (all behind bearer API keys), and `GET /healthz`, `GET /readyz`,
//! `GET /openapi.json`, `GET /metrics`; and `POST /livekit/webhook`, which LiveKit signs
//! itself (`livekit_webhook.rs`: verified, then put on `LIVEKIT_EVENTS`). Ids in paths are checked by the extractors in `ids.rs`
//! (an id that cannot exist is a `404`, never a NATS error); bodies are read by `body.rs`, so
//! every error, axum's rejections included, answers the JSON `ErrorBody` the document promises.

mod auth;
mod body;
mod calls;
mod campaigns;
mod control;
mod dispatch;
mod dnc;
mod error;
mod ids;
mod livekit_webhook;
mod metrics;
mod openapi;
mod recording;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    middleware,
    routing::{get, post},
};
use callfleet_bus::Bus;
use callfleet_config::Config;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;
pub use openapi::ApiDoc;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub bus: Bus,
    pub config: Arc<Config>,
    pub metrics: metrics::Metrics,
    public_url: Arc<str>,
    livekit_webhooks: livekit_webhook::LiveKitWebhooks,
}

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("cannot bind {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP server failed")]
    Serve(#[source] std::io::Error),
    #[error(transparent)]
    Bus(#[from] callfleet_bus::BusError),
}

/// Bind `ingress.bind` and serve until `shutdown` is cancelled.
pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> Result<(), IngressError> {
    let bus = Bus::connect(&config, "ingress").await?;
    let listener = TcpListener::bind(&config.ingress.bind)
        .await
        .map_err(|source| IngressError::Bind {
            addr: config.ingress.bind.clone(),
            source,
        })?;
    serve(config, bus, listener, shutdown).await
}

/// Serve on an already bound listener (tests bind port 0).
pub async fn serve(
    config: Arc<Config>,
    bus: Bus,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), IngressError> {
    let addr = listener.local_addr().map_err(IngressError::Serve)?;
    if config.ingress.api_keys.is_empty() {
        tracing::warn!(
            "ingress.api_keys is empty: /dispatch and /calls accept unauthenticated requests"
        );
    }
    let public_url = config
        .ingress
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let state = AppState {
        bus,
        metrics: metrics::Metrics::new(),
        public_url: public_url.into(),
        livekit_webhooks: livekit_webhook::LiveKitWebhooks::new(&config),
        config,
    };
    tracing::info!(%addr, "ingress listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(IngressError::Serve)
}

pub fn router(state: AppState) -> Router {
    let openapi = openapi::Served::new();
    let limit = state.config.ingress.body_limit_bytes;
    let timeout = Duration::from_secs(state.config.ingress.request_timeout_secs);
    let upload_timeout = Duration::from_secs(state.config.ingress.upload_timeout_secs);
    // Uploads get their own body limit and timeout.
    let uploads = Router::new()
        .route("/campaigns", post(campaigns::create))
        .route("/campaigns/{id}/contacts", post(campaigns::add_contacts))
        .route("/dnc", post(dnc::import))
        .layer(DefaultBodyLimit::max(
            state.config.ingress.upload_limit_bytes,
        ))
        .layer(middleware::from_fn_with_state(
            upload_timeout,
            error::time_limit,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ));
    let guarded = Router::new()
        .route("/dispatch", post(dispatch::dispatch))
        .route(
            "/calls/{id}",
            get(calls::get_call).delete(control::cancel_call),
        )
        .route("/calls/{id}/transfer", post(control::transfer_call))
        .route("/calls/{id}/recording", get(recording::get_recording))
        .route("/campaigns/{id}", get(campaigns::get))
        .route("/campaigns/{id}/pause", post(campaigns::pause))
        .route("/campaigns/{id}/resume", post(campaigns::resume))
        .route("/campaigns/{id}/cancel", post(campaigns::cancel))
        .route(
            "/dnc/{number}",
            get(dnc::check).post(dnc::add).delete(dnc::remove),
        )
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(timeout, error::time_limit))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ));
    // LiveKit signs its webhooks itself: not behind the API keys.
    let livekit = Router::new()
        .route("/livekit/webhook", post(livekit_webhook::receive))
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(timeout, error::time_limit));
    Router::new()
        .merge(guarded)
        .merge(uploads)
        .merge(livekit)
        .route("/healthz", get(calls::healthz))
        .route("/readyz", get(calls::readyz))
        .route(
            "/openapi.json",
            get(move || std::future::ready(openapi.respond())),
        )
        .route("/metrics", get(metrics::render))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}
