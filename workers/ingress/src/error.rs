//! JSON errors: `{"error": "<code>", "message": "...", "fields": [{"field", "problem"}]}`.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use callfleet_domain::FieldError;
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub error: &'static str,
    pub message: String,
    /// Each bad field and why (422; 400 on `POST /livekit/webhook`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error,
                message: message.into(),
                fields: Vec::new(),
            },
        }
    }

    pub fn invalid(fields: Vec<FieldError>) -> Self {
        let message = format!(
            "{} invalid field(s): {}",
            fields.len(),
            callfleet_domain::request::describe(&fields)
        );
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ErrorBody {
                error: "invalid_request",
                message,
                fields,
            },
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "nats_unavailable", message)
    }

    /// A NATS failure: `503` when NATS is unavailable (retry later), else `500`.
    pub fn bus(e: &callfleet_bus::BusError) -> Self {
        if e.is_unavailable() {
            Self::unavailable(format!("NATS is unavailable: {e}"))
        } else {
            Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.status == StatusCode::SERVICE_UNAVAILABLE;
        let mut response = (self.status, Json(self.body)).into_response();
        if retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method (see the Allow header)",
    )
}

/// The request timeout: `503 timeout` with `Retry-After` and the JSON error body.
pub async fn time_limit(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("no answer within {} s; retry later", limit.as_secs()),
        )
        .into_response(),
    }
}
