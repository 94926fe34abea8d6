//! `POST /dispatch`: the seed bridge's payload, validated, published, acknowledged.

use axum::{
    Json,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use callfleet_bus::Scheduled;
use callfleet_domain::{
    CallEvent, CallState, CallStatus, EventKind, FieldError,
    request::{self, ValidateOptions},
};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{AppState, error::ApiError};

/// Namespace of call ids derived from idempotency keys.
const IDEMPOTENCY_NS: uuid::Uuid = uuid::Uuid::from_u128(0x6a1c_7f0e_4b1d_4c8e_9a51_2f36_c0ff_ee01);

/// The answer to an accepted dispatch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DispatchAccepted {
    pub call_id: String,
    /// `queued`, or `scheduled` when `not_before` is in the future.
    pub status: CallStatus,
    pub status_url: String,
    pub room: String,
    pub agent_name: String,
    /// The request's metadata merged with its call fields.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// True when this call id was already enqueued; nothing new was enqueued.
    pub duplicate: bool,
}

#[utoipa::path(
    post, path = "/dispatch",
    request_body(content = callfleet_domain::request::DispatchPayload, content_type = "application/json", description = "Seed-000 compatible call request"),
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters. Repeats with the same key return the same call_id and enqueue nothing new", min_length = 1, max_length = 255, pattern = r"^[ -~]*[!-~][ -~]*$", example = "INC-1234")),
    responses(
        (status = 202, description = "Enqueued (JetStream acknowledged)", body = DispatchAccepted,
            headers(("Location" = String, description = "The call's status URL"))),
        (status = 400, description = "Malformed JSON or unreadable body", body = crate::error::ErrorBody),
        (status = 413, description = "Body larger than ingress.body_limit_bytes", body = crate::error::ErrorBody),
        (status = 415, description = "Not application/json", body = crate::error::ErrorBody),
        (status = 422, description = "Invalid fields, each with its problem (also a bad Idempotency-Key)", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn dispatch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = crate::body::json(&headers, body, state.config.ingress.body_limit_bytes)?;
    let (fallback_call_id, fresh) = idempotency_call_id(&headers)?;
    let opts = ValidateOptions {
        default_country_code: state.config.phone.default_country_code.clone(),
        fallback_call_id: Some(fallback_call_id),
    };
    let req = request::validate(&value, &opts).map_err(ApiError::invalid)?;
    // A random id this request was just given cannot have been enqueued before.
    let fresh = fresh && opts.fallback_call_id.as_deref() == Some(req.call_id.as_str());

    let accepted = |status: CallStatus, duplicate: bool| DispatchAccepted {
        call_id: req.call_id.clone(),
        status,
        status_url: format!("{}/calls/{}", state.public_url, req.call_id),
        room: req.room.clone(),
        agent_name: state.config.agent.name.clone(),
        metadata: req.metadata.clone(),
        duplicate,
    };

    // Beyond JetStream's dedup window, the call's KV record still makes a repeat a no-op. A
    // fresh id skips the read: it cannot be a repeat.
    let existing = if fresh {
        Ok(None)
    } else {
        state.bus.call_state(&req.call_id).await
    };
    match existing {
        Ok(Some((existing, _))) => {
            state.metrics.duplicates.inc();
            return Ok(respond(accepted(existing.status, true)));
        }
        Ok(None) => {}
        Err(e) if e.is_unavailable() => {
            return Err(ApiError::unavailable(format!("NATS is unavailable: {e}")));
        }
        Err(e) => tracing::warn!(error = %e, "call state unreadable; publishing anyway"),
    }

    let timer = state.metrics.publish_seconds.start_timer();
    let due_later = req.not_before.filter(|t| *t > Timestamp::now());
    let (status, duplicate) = match due_later {
        Some(at) => {
            let when = Scheduled {
                at,
                attempt: 1,
                infra_retries: 0,
                generation: 0,
                campaign_contact: None,
            };
            state
                .bus
                .schedule_job(&req, when)
                .await
                .map(|()| (CallStatus::Scheduled, false))
        }
        None => state
            .bus
            .publish_job(&req)
            .await
            .map(|dup| (CallStatus::Queued, dup)),
    }
    .map_err(|e| ApiError::unavailable(format!("the call was not enqueued: {e}")))?;
    timer.observe_duration();

    if duplicate {
        state.metrics.duplicates.inc();
    } else {
        record_queued(&state, &req, status, due_later).await;
        state.metrics.accepted.inc();
    }
    Ok(respond(accepted(status, duplicate)))
}

fn respond(body: DispatchAccepted) -> Response {
    let location = body.status_url.clone();
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(value) = location.parse() {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Best effort: the job is safely enqueued already; the worker creates the state if this fails.
async fn record_queued(
    state: &AppState,
    req: &request::CallRequest,
    status: CallStatus,
    at: Option<Timestamp>,
) {
    let mut call = CallState::queued(&req.call_id, &req.room, &req.campaign);
    call.status = status;
    call.next_attempt_at = at;
    let mut event = CallEvent::new(&req.call_id, EventKind::Queued, 0);
    event.detail = at.map(|t| serde_json::json!({ "not_before": t }));
    // Independent writes: one round trip, not two.
    let (created, published) = tokio::join!(
        state.bus.create_call_state(&call),
        state.bus.publish_event(&event)
    );
    if let Err(e) = created {
        tracing::warn!(call.id = %req.call_id, error = %e, "could not record the queued state");
    }
    if let Err(e) = published {
        tracing::warn!(call.id = %req.call_id, error = %e, "could not publish the queued event");
    }
}

/// A call id derived from `Idempotency-Key` (false), or a fresh random one (true).
fn idempotency_call_id(headers: &HeaderMap) -> Result<(String, bool), ApiError> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok((uuid::Uuid::new_v4().simple().to_string(), true));
    };
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| (1..=255).contains(&k.len()));
    match key {
        Some(key) => Ok((
            uuid::Uuid::new_v5(&IDEMPOTENCY_NS, key.as_bytes())
                .simple()
                .to_string(),
            false,
        )),
        None => Err(ApiError::invalid(vec![FieldError::new(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        )])),
    }
}
