//! Call control: `DELETE /calls/{id}` (cancel a waiting call, hang up a live one) and
//! `POST /calls/{id}/transfer`.
//!
//! A waiting call (queued or scheduled) is cancelled under its KV lease, the same fence the
//! workers use: with the lease held, no worker can be dialing it. The cancel is recorded in the
//! call's state, a scheduled retry is purged and woken at once, and the next worker to see the
//! job closes the call as `cancelled` (with its summary and webhook) without dialing. A live
//! call is asked to hang up through `calls.control.<id>`, answered by the worker holding it.

use std::time::Duration;

use axum::{
    Json,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
};
use callfleet_bus::{ControlError, LeaseError};
use callfleet_domain::{
    CallState, FieldError,
    control::{ControlReply, ControlRequest},
    request::normalise_transfer_target,
};
use serde::Serialize;
use serde_json::Value;

use crate::{
    AppState,
    error::ApiError,
    ids::{CallId, call_not_found},
};

/// What happened to the call.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ControlAccepted {
    pub call_id: String,
    /// `cancelling` (it will not be dialed again), `hanging_up`, or `transferred`.
    pub status: &'static str,
    pub detail: String,
}

fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "conflict", message)
}

async fn load(state: &AppState, id: &str) -> Result<CallState, ApiError> {
    match state.bus.call_state(id).await {
        Ok(Some((call, _))) => Ok(call),
        Ok(None) => Err(call_not_found(id)),
        Err(e) => Err(ApiError::bus(&e)),
    }
}

fn control_error(e: ControlError, lease_ttl: Duration) -> ApiError {
    match e {
        ControlError::NoResponders(_) => conflict(format!(
            "a worker holds the call but is not answering (it may have stopped); its lease expires within {} s, retry then",
            lease_ttl.as_secs()
        )),
        ControlError::Timeout(..) => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", e.to_string())
        }
        ControlError::Bus(b) => ApiError::bus(&b),
    }
}

#[utoipa::path(
    delete, path = "/calls/{id}",
    params(("id" = String, Path, description = "call_id returned by POST /dispatch")),
    responses(
        (status = 202, description = "Cancelled (never dialed again) or hanging up", body = ControlAccepted),
        (status = 404, description = "Unknown call, or an id no call can have", body = crate::error::ErrorBody),
        (status = 409, description = "Already over, or its worker is not answering", body = crate::error::ErrorBody),
        (status = 504, description = "The worker holding the call did not answer the hang-up in time", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn cancel_call(
    State(state): State<AppState>,
    CallId(id): CallId,
) -> Result<(StatusCode, Json<ControlAccepted>), ApiError> {
    let call = load(&state, &id).await?;
    if call.status.is_terminal() {
        return Err(conflict(
            format!("call {id} is already {:?}", call.status).to_lowercase(),
        ));
    }
    let accepted = |status, detail: String| {
        Ok((
            StatusCode::ACCEPTED,
            Json(ControlAccepted {
                call_id: id.clone(),
                status,
                detail,
            }),
        ))
    };
    if call.cancel_requested_at.is_some() {
        return accepted(
            "cancelling",
            "already cancelled; it will not be dialed".into(),
        );
    }
    let lease_ttl = state.config.agent.lease_ttl();
    match state.bus.take_lease(&id, "ingress", call.attempts).await {
        Ok(lease) => {
            let result = cancel_waiting(&state, &id).await;
            if let Err(e) = state.bus.release_lease(&lease).await {
                tracing::warn!(call.id = %id, error = %e, "cannot release the cancel lease; it expires on its own");
            }
            match result? {
                Some(detail) => accepted("cancelling", detail),
                None => Err(conflict(format!("call {id} ended meanwhile"))),
            }
        }
        Err(LeaseError::Held { .. }) => {
            let reply = state
                .bus
                .control(&id, &ControlRequest::Hangup, Duration::from_secs(5))
                .await
                .map_err(|e| control_error(e, lease_ttl))?;
            if reply.ok {
                accepted("hanging_up", reply.detail)
            } else {
                Err(conflict(reply.detail))
            }
        }
        Err(LeaseError::Bus(e)) => Err(ApiError::bus(&e)),
        Err(e @ LeaseError::Lost { .. }) => Err(conflict(e.to_string())),
    }
}

/// Under the lease: record the cancel and wake a scheduled retry. `None` if the call ended.
async fn cancel_waiting(state: &AppState, id: &str) -> Result<Option<String>, ApiError> {
    let Some((mut call, _)) = state
        .bus
        .call_state(id)
        .await
        .map_err(|e| ApiError::bus(&e))?
    else {
        return Err(call_not_found(id));
    };
    if call.status.is_terminal() {
        return Ok(None);
    }
    call.cancel_requested_at = Some(jiff::Timestamp::now());
    call.updated_at = jiff::Timestamp::now();
    state
        .bus
        .put_call_state(&call)
        .await
        .map_err(|e| ApiError::bus(&e))?;
    // A scheduled retry: put it on the dispatch subject now (a worker closes the call and sends
    // its summary), then drop the scheduled copy. If the purge failed, the copy would fire
    // later and find the call over.
    if let Some(job) = state
        .bus
        .waiting_job(id)
        .await
        .map_err(|e| ApiError::bus(&e))?
    {
        state
            .bus
            .wake_job(&call.campaign, id, job)
            .await
            .map_err(|e| ApiError::bus(&e))?;
        state
            .bus
            .purge_schedule(id)
            .await
            .map_err(|e| ApiError::bus(&e))?;
    }
    tracing::info!(call.id = %id, "call cancelled before dialing");
    Ok(Some(
        "it will not be dialed; a worker closes it as cancelled and sends its summary".into(),
    ))
}

#[utoipa::path(
    post, path = "/calls/{id}/transfer",
    params(("id" = String, Path, description = "call_id returned by POST /dispatch")),
    request_body(content = Option<crate::openapi::bodies::TransferBody>, content_type = "application/json", description = "Optional (an empty body is fine): the target; the call's transfer_target otherwise"),
    responses(
        (status = 200, description = "Transferred (SIP REFER accepted)", body = ControlAccepted),
        (status = 400, description = "Malformed JSON or unreadable body", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown call, or an id no call can have", body = crate::error::ErrorBody),
        (status = 409, description = "Not answered, already over, or the transfer failed", body = crate::error::ErrorBody),
        (status = 413, description = "Body larger than ingress.body_limit_bytes", body = crate::error::ErrorBody),
        (status = 415, description = "A non-empty body that is not application/json", body = crate::error::ErrorBody),
        (status = 422, description = "Invalid transfer_target, or a body that is not an object", body = crate::error::ErrorBody),
        (status = 504, description = "The worker did not finish the transfer in time; watch for the transferred event", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn transfer_call(
    State(state): State<AppState>,
    CallId(id): CallId,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ControlAccepted>, ApiError> {
    let body = crate::body::optional_json(&headers, body, state.config.ingress.body_limit_bytes)?;
    let to = match body.as_ref() {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => match o.get("transfer_target") {
            None | Some(Value::Null) => None,
            Some(Value::String(raw)) => Some(
                normalise_transfer_target(raw, state.config.phone.default_country_code.as_deref())
                    .map_err(|p| ApiError::invalid(vec![FieldError::new("transfer_target", p)]))?,
            ),
            Some(_) => {
                return Err(ApiError::invalid(vec![FieldError::new(
                    "transfer_target",
                    "must be a string",
                )]));
            }
        },
        Some(_) => {
            return Err(ApiError::invalid(vec![FieldError::new(
                "(body)",
                "must be a JSON object",
            )]));
        }
    };
    let call = load(&state, &id).await?;
    if call.status.is_terminal() {
        return Err(conflict(format!("call {id} is already over")));
    }
    // Leave a second for the answer inside the request timeout.
    let wait = Duration::from_secs(
        state
            .config
            .ingress
            .request_timeout_secs
            .saturating_sub(1)
            .max(1),
    );
    let reply: ControlReply = state
        .bus
        .control(&id, &ControlRequest::Transfer { to }, wait)
        .await
        .map_err(|e| match e {
            ControlError::NoResponders(_) => {
                conflict(format!("call {id} is not live (status {:?})", call.status).to_lowercase())
            }
            other => control_error(other, state.config.agent.lease_ttl()),
        })?;
    if reply.ok {
        Ok(Json(ControlAccepted {
            call_id: id,
            status: "transferred",
            detail: reply.detail,
        }))
    } else {
        Err(conflict(reply.detail))
    }
}
