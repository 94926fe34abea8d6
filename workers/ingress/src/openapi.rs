//! The OpenAPI document served at `/openapi.json`.

use axum::Json;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

#[derive(OpenApi)]
#[openapi(
    info(title = "callfleet ingress", description = "Enqueue AI voice calls onto NATS JetStream and read their state."),
    paths(
        crate::dispatch::dispatch,
        crate::calls::get_call,
        crate::control::cancel_call,
        crate::control::transfer_call,
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
        crate::calls::healthz,
        crate::calls::readyz,
        crate::metrics::render,
    ),
    components(schemas(callfleet_domain::FieldError)),
    modifiers(&Bearer)
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
