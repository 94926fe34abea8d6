//! The OpenAPI document served at `/openapi.json`: the contract generated clients and fuzzers
//! work from (the fuzz test in `tests/it/fuzz.rs` checks every answer against it).
//!
//! utoipa generates it from the handlers' `#[utoipa::path]` attributes and the domain types;
//! [`constraints`] then adds what those types do not carry (patterns, lengths, formats,
//! examples, the answers every guarded route shares), and [`bodies`] documents the bodies
//! that handlers read by hand.

pub mod bodies;
mod constraints;

use std::sync::Arc;

use axum::{
    body::Bytes,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde_json::Value;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "callfleet ingress",
        description = "Enqueue AI voice calls onto NATS JetStream and read their state.\n\nEvery error answers `{error, message, fields?}` (`ErrorBody`). Ids in paths that cannot exist (not 1 to 64 ASCII letters, digits, `-`, `_` for calls; 1 to 40 for campaigns) answer `404 not_found` like unknown ones; a do-not-call number that does not parse answers `422` on `number`. A `503` means NATS is unavailable (or the request timed out): retry after `Retry-After` seconds, with the same `Idempotency-Key` for `/dispatch`."
    ),
    paths(
        crate::dispatch::dispatch,
        crate::calls::get_call,
        crate::control::cancel_call,
        crate::control::transfer_call,
        crate::recording::get_recording,
        crate::campaigns::create,
        crate::campaigns::add_contacts,
        crate::campaigns::get,
        crate::campaigns::pause,
        crate::campaigns::resume,
        crate::campaigns::cancel,
        crate::dnc::add,
        crate::dnc::remove,
        crate::dnc::check,
        crate::dnc::import,
        crate::livekit_webhook::receive,
        crate::calls::healthz,
        crate::calls::readyz,
        crate::metrics::render,
    ),
    components(schemas(callfleet_domain::FieldError, crate::error::ErrorBody)),
    modifiers(&Bearer)
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("API key")
                        .description(Some(
                            "`Authorization: Bearer <api key>`, one of `ingress.api_keys` (open when none is configured)",
                        ))
                        .build(),
                ),
            );
            components.add_security_scheme(
                "livekit_webhook",
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                    "Authorization",
                    "LiveKit's signature, as livekit-server sends it: a JWT signed with `livekit.api_secret` (HS256), issuer `livekit.api_key`, whose `sha256` claim is the base64 SHA-256 of the raw body (a `Bearer ` prefix is accepted). Not an API key: point livekit-server's `webhook.urls` here with `webhook.api_key` = `livekit.api_key`",
                ))),
            );
        }
    }
}

/// The complete document, as served.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    constraints::apply(&mut doc);
    doc
}

/// The served bytes, built once per router.
#[derive(Clone)]
pub struct Served(Arc<Bytes>);

impl Served {
    pub fn new() -> Self {
        Self(Arc::new(Bytes::from(document().to_string())))
    }

    pub fn respond(&self) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            Bytes::clone(&self.0),
        )
            .into_response()
    }
}
