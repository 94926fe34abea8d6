//! Campaigns: create, upload contacts (JSON or CSV, row by row), status, pause/resume/cancel.
//!
//! Contacts are validated like `POST /dispatch` after merging over the campaign's defaults;
//! a bad row is reported with its line and reason and never sinks the upload. Accepted contacts
//! go onto `campaigns.contacts.<id>` for the campaigner, which releases them at the campaign's
//! pace inside its calling window.
//!
//! Here: creating a campaign and the record's read-modify-write; [`contacts`]: uploads;
//! [`view`]: `GET /campaigns/{id}` and its counts; [`status`]: pause, resume, cancel.

mod contacts;
mod status;
mod view;

use axum::{
    Json,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
};
use callfleet_domain::{
    FieldError,
    campaign::{CampaignRecord, CampaignSpec, CampaignStatus},
};
use serde_json::Value;

use crate::{AppState, error::ApiError, ids::campaign_not_found};

pub use contacts::*;
pub use status::*;
pub use view::*;

fn invalid(field: &str, problem: impl Into<String>) -> ApiError {
    ApiError::invalid(vec![FieldError::new(field, problem)])
}

#[utoipa::path(
    post, path = "/campaigns", operation_id = "create_campaign",
    request_body(content = crate::openapi::bodies::CampaignCreate, content_type = "application/json", description = "name, account_code and the other defaults, window, timezone, start_at, max_concurrent_calls, calls_per_second, retry; optional contacts[] (then sealed unless more_contacts is true)"),
    responses(
        (status = 201, description = "Created; contacts (if any) judged row by row", body = UploadResult),
        (status = 400, description = "Malformed JSON or unreadable body", body = crate::error::ErrorBody),
        (status = 409, description = "A campaign with this id exists", body = crate::error::ErrorBody),
        (status = 413, description = "Body larger than ingress.upload_limit_bytes", body = crate::error::ErrorBody),
        (status = 415, description = "Not application/json", body = crate::error::ErrorBody),
        (status = 422, description = "Invalid settings, each with its problem", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<UploadResult>), ApiError> {
    let value = crate::body::json(&headers, body, state.config.ingress.upload_limit_bytes)?;
    let Value::Object(obj) = value else {
        return Err(invalid("(body)", "must be a JSON object"));
    };
    let spec = CampaignSpec::validate(&obj).map_err(ApiError::invalid)?;
    let contacts = match obj.get("contacts") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => Some(list.clone()),
        Some(_) => return Err(invalid("contacts", "must be an array of contacts")),
    };
    let more = obj
        .get("more_contacts")
        .and_then(Value::as_bool)
        .unwrap_or(contacts.is_none());
    let now = jiff::Timestamp::now();
    let record = CampaignRecord {
        spec,
        status: CampaignStatus::Active,
        created_at: now,
        updated_at: now,
        rows: 0,
        accepted: 0,
        rejected: 0,
        duplicates: 0,
        dnc_skipped: 0,
        sealed: false,
        completed_at: None,
    };
    let id = record.spec.id.clone();
    let created = state
        .bus
        .create_campaign(&record, &state.config)
        .await
        .map_err(|e| ApiError::bus(&e))?;
    if !created {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("campaign {id} exists"),
        ));
    }
    tracing::info!(campaign = %id, "campaign created");
    let (rows, rejected) = json_contacts(contacts.as_deref().unwrap_or_default());
    let result = upload(&state, &id, rows, rejected, !more).await?;
    Ok((StatusCode::CREATED, Json(result)))
}

/// Read-modify-write a campaign record under optimistic concurrency (bounded retries).
pub(crate) async fn modify(
    state: &AppState,
    id: &str,
    mut change: impl FnMut(&mut CampaignRecord) -> Result<(), ApiError>,
) -> Result<CampaignRecord, ApiError> {
    for _ in 0..20 {
        let Some((mut record, rev)) = state
            .bus
            .campaign(id)
            .await
            .map_err(|e| ApiError::bus(&e))?
        else {
            return Err(campaign_not_found(id));
        };
        change(&mut record)?;
        record.updated_at = jiff::Timestamp::now();
        match state.bus.update_campaign(&record, rev).await {
            Ok(_) => return Ok(record),
            Err(e) if e.is_unavailable() && !state.bus.is_connected() => {
                return Err(ApiError::bus(&e));
            }
            Err(_) => continue,
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "conflict",
        "the campaign changed too often meanwhile; retry",
    ))
}
