//! The do-not-call list: `POST`/`DELETE`/`GET /dnc/{number}` and a bulk CSV import. Numbers
//! are normalised like destinations. The list is checked when contacts are enqueued and again
//! by the worker right before it dials, so a number added after enqueue is never dialed.

use axum::{
    Json,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
};
use callfleet_domain::{PhoneNumber, campaign::RowError};
use serde::Serialize;

use crate::{AppState, error::ApiError, ids::DncNumber};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DncEntry {
    pub number: String,
    pub listed: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DncImport {
    pub added: u64,
    pub rejected: Vec<RowError>,
}

#[utoipa::path(post, path = "/dnc/{number}", operation_id = "dnc_add", params(("number" = String, Path, description = "A phone number, normalised like `destination`")),
    responses(
        (status = 200, description = "Added (idempotent); `number` is the E.164 form", body = DncEntry),
        (status = 422, description = "Not a phone number (`fields[0].field` is `number`)", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn add(
    State(state): State<AppState>,
    DncNumber(number): DncNumber,
) -> Result<Json<DncEntry>, ApiError> {
    state
        .bus
        .add_dnc(&number.to_string())
        .await
        .map_err(|e| ApiError::bus(&e))?;
    tracing::info!(number = %number.masked(), "added to the do-not-call list");
    Ok(Json(DncEntry {
        number: number.to_string(),
        listed: true,
    }))
}

#[utoipa::path(delete, path = "/dnc/{number}", operation_id = "dnc_remove", params(("number" = String, Path, description = "A phone number, normalised like `destination`")),
    responses(
        (status = 200, description = "Removed (idempotent); `number` is the E.164 form", body = DncEntry),
        (status = 422, description = "Not a phone number (`fields[0].field` is `number`)", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    DncNumber(number): DncNumber,
) -> Result<Json<DncEntry>, ApiError> {
    state
        .bus
        .remove_dnc(&number.to_string())
        .await
        .map_err(|e| ApiError::bus(&e))?;
    Ok(Json(DncEntry {
        number: number.to_string(),
        listed: false,
    }))
}

#[utoipa::path(get, path = "/dnc/{number}", operation_id = "dnc_check", params(("number" = String, Path, description = "A phone number, normalised like `destination`")),
    responses(
        (status = 200, description = "Whether the number is listed; `number` is the E.164 form", body = DncEntry),
        (status = 422, description = "Not a phone number (`fields[0].field` is `number`)", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn check(
    State(state): State<AppState>,
    DncNumber(number): DncNumber,
) -> Result<Json<DncEntry>, ApiError> {
    let listed = state
        .bus
        .is_dnc(&number.to_string())
        .await
        .map_err(|e| ApiError::bus(&e))?;
    Ok(Json(DncEntry {
        number: number.to_string(),
        listed,
    }))
}

#[utoipa::path(post, path = "/dnc", operation_id = "dnc_import",
    request_body(
        description = "text/csv: a header row with a `number` (or `destination`) column, or one number per line",
        content((String = "text/csv", example = "number\n+61402012298\n")),
    ),
    responses(
        (status = 200, description = "Imported; bad rows listed with their line", body = DncImport),
        (status = 400, description = "Unreadable body", body = crate::error::ErrorBody),
        (status = 413, description = "Body larger than ingress.upload_limit_bytes", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn import(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DncImport>, ApiError> {
    let body = crate::body::bytes(body, state.config.ingress.upload_limit_bytes)?;
    let text = String::from_utf8_lossy(&body);
    let mut lines = text.lines().enumerate().peekable();
    let mut column = 0;
    if let Some((_, first)) = lines.peek() {
        let cols: Vec<String> = first
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        if let Some(i) = cols
            .iter()
            .position(|c| c == "number" || c == "destination")
        {
            column = i;
            lines.next();
        }
    }
    let mut added = 0;
    let mut rejected = Vec::new();
    for (i, line) in lines {
        let raw = line.split(',').nth(column).unwrap_or_default().trim();
        if raw.is_empty() {
            continue;
        }
        match PhoneNumber::parse(raw, state.config.phone.default_country_code.as_deref()) {
            Ok(n) => {
                state
                    .bus
                    .add_dnc(&n.to_string())
                    .await
                    .map_err(|e| ApiError::bus(&e))?;
                added += 1;
            }
            Err(e) => rejected.push(RowError {
                line: i as u64 + 1,
                reason: e.to_string(),
            }),
        }
    }
    tracing::info!(added, rejected = rejected.len(), "do-not-call import");
    Ok(Json(DncImport { added, rejected }))
}
