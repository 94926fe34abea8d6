//! `POST /livekit/webhook`: LiveKit's webhooks (livekit-server's `webhook.urls`), verified and
//! put on JetStream, nothing else. Not behind the API keys (LiveKit cannot send them): LiveKit
//! signs each request. Its `Authorization` header is a JWT signed with the API secret (HS256,
//! issuer = the API key) whose `sha256` claim is the base64 SHA-256 of the raw body; the check is
//! livekit-api's own [`WebhookReceiver`].
//!
//! - not configured (`livekit.api_key`/`api_secret` unset), no or a bad token, a body whose
//!   hash is not the token's → `401`, with the reason, nothing published;
//! - a signed body that is not a LiveKit event → `400` with field-level errors;
//! - an event created longer than `livekit.webhook_max_age_secs` ago → `200 ignored` (a replay
//!   older than the stream's dedup window);
//! - else published on `livekit.events.<event>` with `Nats-Msg-Id` = the event's id, and `200`
//!   only once JetStream acknowledged it: `accepted`, or `duplicate` for an id it already has.
//!   NATS unavailable → `503`.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    Json,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header},
};
use callfleet_config::Config;
use callfleet_domain::{FieldError, subjects as s};
use jiff::Timestamp;
use livekit_api::{
    access_token::{AccessTokenError, TokenVerifier},
    webhooks::{WebhookError, WebhookReceiver},
};
use livekit_protocol as proto;
use serde::Serialize;

use crate::{AppState, error::ApiError};

/// What the route needs to verify LiveKit's signature, built once at start-up.
#[derive(Clone)]
pub struct LiveKitWebhooks {
    /// `None` when `livekit.api_key` or `livekit.api_secret` is unset.
    verify: Option<(WebhookReceiver, TokenVerifier)>,
    /// Whether "not configured" was logged already (it is logged once).
    warned: Arc<AtomicBool>,
}

impl LiveKitWebhooks {
    pub fn new(config: &Config) -> Self {
        let verify = match (&config.livekit.api_key, &config.livekit.api_secret) {
            (Some(key), Some(secret)) => {
                let tokens = TokenVerifier::with_api_key(key, secret);
                Some((WebhookReceiver::new(tokens.clone()), tokens))
            }
            _ => None,
        };
        Self {
            verify,
            warned: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// The answer to a verified webhook.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"status": "accepted", "event": "participant_joined", "id": "EV_3pXq8dJmT2aK"}))]
pub struct WebhookAnswer {
    /// `accepted` (on `LIVEKIT_EVENTS` now), `duplicate` (JetStream had this id already; nothing
    /// new was published) or `ignored` (see `reason`).
    #[schema(example = "accepted")]
    pub status: &'static str,
    /// LiveKit's event name (`room_started`, `participant_joined`, …).
    pub event: String,
    /// LiveKit's event id (`EV_…`).
    pub id: String,
    /// Why an event was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A refusal, logged with its reason (never the token or the secret).
fn unauthorized(message: impl Into<String>) -> ApiError {
    let message = message.into();
    tracing::info!(reason = %message, "LiveKit webhook refused (401)");
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

fn bad_event(fields: Vec<FieldError>) -> ApiError {
    let mut error = ApiError::invalid(fields);
    error.status = StatusCode::BAD_REQUEST;
    error.body.message = format!("not a LiveKit webhook event: {}", error.body.message);
    tracing::info!(reason = %error.body.message, "signed LiveKit webhook refused (400)");
    error
}

#[utoipa::path(
    post, path = "/livekit/webhook",
    request_body(content = crate::openapi::bodies::LiveKitWebhookEvent, content_type = "application/webhook+json", description = "A LiveKit `WebhookEvent` (protojson), exactly as livekit-server sends it"),
    responses(
        (status = 200, description = "Verified and on JetStream (`accepted`), already there (`duplicate`), or older than `livekit.webhook_max_age_secs` (`ignored`)", body = WebhookAnswer),
        (status = 400, description = "Signed, but not a LiveKit event: each bad field and why", body = crate::error::ErrorBody),
        (status = 401, description = "Not verified: LiveKit webhooks not configured, no or an invalid token (wrong key or secret, expired), or a body that is not the one signed (`error: unauthorized`)", body = crate::error::ErrorBody),
        (status = 413, description = "Body larger than ingress.body_limit_bytes", body = crate::error::ErrorBody),
        (status = 503, description = "NATS is unavailable (`nats_unavailable`) or the request timed out (`timeout`); LiveKit retries", body = crate::error::ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    ),
    security(("livekit_webhook" = []))
)]
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<WebhookAnswer>, ApiError> {
    let body = crate::body::bytes(body, state.config.ingress.body_limit_bytes)?;
    let hooks = &state.livekit_webhooks;
    let Some((receiver, tokens)) = &hooks.verify else {
        if !hooks.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "a LiveKit webhook arrived but livekit.api_key/livekit.api_secret are not set: answering 401"
            );
        }
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "LiveKit webhooks are not configured (livekit.api_key, livekit.api_secret)",
        ));
    };
    let token = bearer(&headers)?;
    let Ok(text) = std::str::from_utf8(&body) else {
        // LiveKit sends protojson: never anything but UTF-8. Still, a stranger gets a 401.
        tokens
            .verify(token)
            .map_err(|e| unauthorized(token_problem(&e)))?;
        return Err(bad_event(vec![FieldError::new(
            "(body)",
            "is not UTF-8 text",
        )]));
    };
    let event = receiver.receive(text, token).map_err(|e| match e {
        WebhookError::InvalidData(e) => bad_event(vec![FieldError::new("(body)", e.to_string())]),
        other => unauthorized(rejection(&other)),
    })?;
    check(&event).map_err(bad_event)?;
    let max_age = state.config.livekit.webhook_max_age_secs;
    let age = Timestamp::now().as_second() - event.created_at;
    if age > i64::try_from(max_age).unwrap_or(i64::MAX) {
        tracing::info!(livekit.event = %event.event, livekit.event_id = %event.id, age_secs = age, "stale LiveKit webhook ignored");
        return Ok(Json(WebhookAnswer {
            status: "ignored",
            reason: Some(format!(
                "created {age} s ago, more than livekit.webhook_max_age_secs ({max_age} s): a replay"
            )),
            event: event.event,
            id: event.id,
        }));
    }
    let duplicate = state
        .bus
        .publish_livekit_event(&event.event, &event.id, body)
        .await
        .map_err(|e| ApiError::bus(&e))?;
    tracing::debug!(livekit.event = %event.event, livekit.event_id = %event.id, duplicate, "LiveKit webhook on JetStream");
    Ok(Json(WebhookAnswer {
        status: if duplicate { "duplicate" } else { "accepted" },
        reason: None,
        event: event.event,
        id: event.id,
    }))
}

/// The token: the whole `Authorization` value (as LiveKit sends it), or after `Bearer `.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            unauthorized(
                "missing Authorization header: LiveKit signs each webhook with a JWT there",
            )
        })?
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not a JWT"))?
        .trim();
    let token = match value.split_once(char::is_whitespace) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ if value.eq_ignore_ascii_case("bearer") => "",
        _ => value,
    };
    if token.is_empty() {
        return Err(unauthorized("the Authorization header is empty"));
    }
    Ok(token)
}

/// Why a webhook was not verified, in words an operator can act on (never the secret).
fn rejection(e: &WebhookError) -> String {
    match e {
        WebhookError::InvalidAuth(e) => token_problem(e),
        WebhookError::InvalidSignature => {
            "the body's SHA-256 is not the token's sha256 claim: the body was altered, or the token is for another body".into()
        }
        WebhookError::InvalidBase64(_) => "the token's sha256 claim is not base64".into(),
        WebhookError::InvalidData(_) => "the body is not a LiveKit event".into(),
    }
}

fn token_problem(e: &AccessTokenError) -> String {
    use jsonwebtoken::errors::ErrorKind;
    let AccessTokenError::Encoding(e) = e else {
        return format!("the token was not verified: {e}");
    };
    match e.kind() {
        ErrorKind::InvalidSignature => {
            "the token's signature does not verify: it was not signed with livekit.api_secret".into()
        }
        ErrorKind::InvalidIssuer => {
            "the token's issuer is not livekit.api_key: livekit-server's webhook.api_key must be that key".into()
        }
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf): check the clocks".into(),
        ErrorKind::InvalidAlgorithm => "the token is not signed with HS256".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
        _ => "the Authorization header is not a valid JWT".into(),
    }
}

/// What a LiveKit event needs before it can go on a subject: an event name that is a subject
/// token, an id usable as `Nats-Msg-Id`, and its creation time.
fn check(event: &proto::WebhookEvent) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if event.event.is_empty() {
        errors.push(FieldError::new("event", "is required"));
    } else if !s::is_token(&event.event) {
        errors.push(FieldError::new(
            "event",
            "must be 1 to 64 ASCII letters, digits, '-' or '_'",
        ));
    }
    if event.id.is_empty() {
        errors.push(FieldError::new("id", "is required"));
    } else if event.id.len() > 128 || !event.id.bytes().all(|b| b.is_ascii_graphic()) {
        errors.push(FieldError::new(
            "id",
            "must be 1 to 128 visible ASCII characters",
        ));
    }
    if event.created_at <= 0 {
        errors.push(FieldError::new(
            "createdAt",
            "is required (Unix seconds, as LiveKit sends it)",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, id: &str, created_at: i64) -> proto::WebhookEvent {
        proto::WebhookEvent {
            event: name.into(),
            id: id.into(),
            created_at,
            ..Default::default()
        }
    }

    #[test]
    fn an_event_needs_a_name_an_id_and_a_time() {
        assert!(check(&event("participant_joined", "EV_abc", 1_700_000_000)).is_ok());
        let errors = check(&event("room.started", "EV a", 0)).expect_err("invalid");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["event", "id", "createdAt"]);
        let errors = check(&event("", "", 5)).expect_err("invalid");
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn the_token_may_come_bare_or_as_bearer() {
        let mut h = HeaderMap::new();
        assert!(bearer(&h).is_err());
        h.insert(
            header::AUTHORIZATION,
            "abc.def.ghi".parse().expect("header"),
        );
        assert_eq!(bearer(&h).ok(), Some("abc.def.ghi"));
        h.insert(
            header::AUTHORIZATION,
            "Bearer abc.def.ghi".parse().expect("header"),
        );
        assert_eq!(bearer(&h).ok(), Some("abc.def.ghi"));
        h.insert(header::AUTHORIZATION, "Bearer ".parse().expect("header"));
        assert!(bearer(&h).is_err());
    }

    fn signed(key: &str, secret: &str, body: &str) -> String {
        use base64::Engine;
        use sha2::Digest;
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body));
        livekit_api::access_token::AccessToken::with_api_key(key, secret)
            .with_sha256(&hash)
            .to_jwt()
            .expect("jwt")
    }

    #[test]
    fn rejections_say_what_is_wrong() {
        let body = r#"{"event":"room_started","id":"EV_1","createdAt":"1700000000"}"#;
        let receiver = WebhookReceiver::new(TokenVerifier::with_api_key("k", "s3cret"));
        assert!(receiver.receive(body, &signed("k", "s3cret", body)).is_ok());
        let reason = |token: &str, body: &str| {
            rejection(&receiver.receive(body, token).expect_err("rejected"))
        };
        assert!(reason(&signed("k", "other", body), body).contains("livekit.api_secret"));
        assert!(reason(&signed("other", "s3cret", body), body).contains("issuer"));
        let tampered = body.replace("EV_1", "EV_2");
        assert!(reason(&signed("k", "s3cret", body), &tampered).contains("altered"));
        assert!(reason("not-a-jwt", body).contains("not a valid JWT"));
        let no_secret = reason(&signed("k", "other", body), body);
        assert!(!no_secret.contains("s3cret"), "{no_secret}");
    }
}
