//! `GET /calls/{id}`, `GET /healthz`, `GET /readyz`.

use axum::{Json, extract::State, http::StatusCode};
use callfleet_domain::CallState;
use serde_json::{Value, json};

use crate::{
    AppState,
    error::ApiError,
    ids::{CallId, call_not_found},
};

#[utoipa::path(
    get, path = "/calls/{id}",
    params(("id" = String, Path, description = "call_id returned by POST /dispatch")),
    responses(
        (status = 200, description = "Current state, attempts and last outcome", body = CallState),
        (status = 404, description = "Unknown call, or an id no call can have", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_call(
    State(state): State<AppState>,
    CallId(id): CallId,
) -> Result<Json<CallState>, ApiError> {
    match state.bus.call_state(&id).await {
        Ok(Some((call, _))) => Ok(Json(call)),
        Ok(None) => Err(call_not_found(&id)),
        Err(e) => Err(ApiError::bus(&e)),
    }
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "The process is up", body = crate::openapi::bodies::Readiness)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/readyz", responses(
    (status = 200, description = "NATS and JetStream reachable", body = crate::openapi::bodies::Readiness),
    (status = 503, description = "Not ready, with the reason", body = crate::openapi::bodies::Readiness),
))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if !state.bus.is_connected() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "nats": "disconnected" })),
        );
    }
    match state
        .bus
        .check_jetstream(std::time::Duration::from_secs(2))
        .await
    {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "nats": "connected", "jetstream": "ok" })),
        ),
        Err(callfleet_bus::BusError::Timeout(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "nats": "connected", "jetstream": "timed out" })),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "unavailable", "nats": "connected", "jetstream": error_chain(&e) }),
            ),
        ),
    }
}

/// An error and its causes, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
