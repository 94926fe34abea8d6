//! The ids in request paths, checked in one place before anything reaches NATS.
//!
//! Call and campaign ids are NATS subject tokens and KV keys. An id that cannot exist (a space,
//! a dot, non-ASCII, too long) answers the same `404 not_found` as an unknown one, on every
//! route, and never reaches NATS (where it used to come back as a `503`). A do-not-call number
//! is a value rather than a resource: one that does not parse answers `422` on `number`.

use axum::{
    extract::{FromRequestParts, Path},
    http::{StatusCode, request::Parts},
};
use callfleet_domain::{FieldError, PhoneNumber, subjects};

use crate::{AppState, error::ApiError};

/// Call ids: `call_id` in `POST /dispatch`.
pub const CALL_ID_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";
/// Campaign ids: `id` in `POST /campaigns` (at most 40, as `CampaignSpec::validate` allows).
pub const CAMPAIGN_ID_PATTERN: &str = "^[A-Za-z0-9_-]{1,40}$";
const CAMPAIGN_ID_MAX: usize = 40;

/// A call id that can exist (`GET`/`DELETE /calls/{id}`, `POST /calls/{id}/transfer`).
#[derive(Debug, Clone)]
pub struct CallId(pub String);

/// A campaign id that can exist (every `/campaigns/{id}…` route).
#[derive(Debug, Clone)]
pub struct CampaignId(pub String);

/// A do-not-call number from the path, normalised to E.164.
#[derive(Debug, Clone)]
pub struct DncNumber(pub PhoneNumber);

impl CallId {
    pub fn is_valid(id: &str) -> bool {
        subjects::is_token(id)
    }
}

impl CampaignId {
    pub fn is_valid(id: &str) -> bool {
        subjects::is_token(id) && id.len() <= CAMPAIGN_ID_MAX
    }
}

/// The route's single path parameter; `None` when it is not valid UTF-8 once decoded.
async fn param<S: Send + Sync>(parts: &mut Parts, state: &S) -> Option<String> {
    Path::<String>::from_request_parts(parts, state)
        .await
        .ok()
        .map(|Path(p)| p)
}

/// The id as shown in a message: quoted, and cut short if it is long.
fn shown(raw: Option<&str>) -> String {
    match raw {
        Some(id) if id.chars().count() > 80 => {
            format!("{:?}…", id.chars().take(80).collect::<String>())
        }
        Some(id) => format!("{id:?}"),
        None => "(not UTF-8)".to_owned(),
    }
}

pub fn call_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no call {}", shown(Some(id))),
    )
}

pub fn campaign_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no campaign {}", shown(Some(id))),
    )
}

impl<S: Send + Sync> FromRequestParts<S> for CallId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match param(parts, state).await {
            Some(id) if Self::is_valid(&id) => Ok(Self(id)),
            raw => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "no call {}: call ids are 1 to 64 ASCII letters, digits, '-' or '_'",
                    shown(raw.as_deref())
                ),
            )),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CampaignId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match param(parts, state).await {
            Some(id) if Self::is_valid(&id) => Ok(Self(id)),
            raw => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "no campaign {}: campaign ids are 1 to 40 ASCII letters, digits, '-' or '_'",
                    shown(raw.as_deref())
                ),
            )),
        }
    }
}

impl FromRequestParts<AppState> for DncNumber {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(raw) = param(parts, state).await else {
            return Err(ApiError::invalid(vec![FieldError::new(
                "number",
                "is not valid UTF-8",
            )]));
        };
        PhoneNumber::parse(&raw, state.config.phone.default_country_code.as_deref())
            .map(Self)
            .map_err(|e| ApiError::invalid(vec![FieldError::new("number", e.to_string())]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_agree_with_the_checks() {
        for (id, call, campaign) in [
            ("a", true, true),
            ("crm-7_X", true, true),
            (&"x".repeat(40), true, true),
            (&"x".repeat(41), true, false),
            (&"x".repeat(64), true, false),
            (&"x".repeat(65), false, false),
            ("", false, false),
            ("a b", false, false),
            ("a.b", false, false),
            ("é", false, false),
            ("a*", false, false),
        ] {
            assert_eq!(CallId::is_valid(id), call, "{id:?}");
            assert_eq!(CampaignId::is_valid(id), campaign, "{id:?}");
        }
        assert!(CALL_ID_PATTERN.contains("{1,64}"));
        assert!(CAMPAIGN_ID_PATTERN.contains(&format!("{{1,{CAMPAIGN_ID_MAX}}}")));
    }

    #[test]
    fn long_ids_are_cut_short_in_messages() {
        let msg = call_not_found(&"x".repeat(500)).body.message;
        assert!(msg.len() < 120, "{msg}");
        assert_eq!(shown(None), "(not UTF-8)");
    }
}
