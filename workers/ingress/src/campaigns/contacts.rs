//! `POST /campaigns/{id}/contacts` and the contacts of `POST /campaigns`: rows judged one by
//! one, do-not-call numbers skipped, the rest enqueued and counted on the record.

use std::collections::HashSet;

use axum::{
    Json,
    body::Bytes,
    extract::{
        Query, State,
        rejection::{BytesRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode},
};
use callfleet_domain::campaign::{self, CampaignRecord, CampaignStatus, Contact, RowError};
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{invalid, modify};
use crate::{AppState, error::ApiError, ids::CampaignId};

/// The answer to a create or an upload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadResult {
    pub campaign_id: String,
    /// Contacts enqueued by this request.
    pub accepted: u64,
    /// Rows refused, each with its line and reason.
    pub rejected: Vec<RowError>,
    /// Rows collapsed because their number was already in the campaign.
    pub duplicates: Vec<RowError>,
    /// Contacts skipped because their number is on the do-not-call list.
    pub dnc_skipped: u64,
    pub status_url: String,
}

/// Contacts with their line (or 1-based index), as uploaded.
type Rows = Vec<(u64, Map<String, Value>)>;

/// Contacts from a JSON array: (1-based index, object), non-objects rejected.
pub(super) fn json_contacts(list: &[Value]) -> (Rows, Vec<RowError>) {
    let mut contacts = Vec::new();
    let mut rejected = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let line = i as u64 + 1;
        match v {
            Value::Object(o) => contacts.push((line, o.clone())),
            _ => rejected.push(RowError {
                line,
                reason: "must be an object with a destination".into(),
            }),
        }
    }
    (contacts, rejected)
}

#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    /// `true`: no more uploads follow (the campaign may complete).
    #[serde(default)]
    pub last: bool,
}

#[utoipa::path(
    post, path = "/campaigns/{id}/contacts", operation_id = "add_contacts",
    params(("id" = String, Path, description = "campaign_id"), ("last" = Option<bool>, Query, description = "No more uploads follow: the campaign is sealed")),
    request_body(
        description = "text/csv with a header row naming `destination` (other columns become variables), or a JSON array of contacts (or `{contacts: [...]}`)",
        content(
            (String = "text/csv", example = "destination,first_name\n+61402012298,Ada\n"),
            (Vec<crate::openapi::bodies::Contact> = "application/json"),
        ),
    ),
    responses(
        (status = 200, description = "Rows judged one by one", body = UploadResult),
        (status = 400, description = "Malformed JSON or unreadable body", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown campaign, or an id no campaign can have", body = crate::error::ErrorBody),
        (status = 409, description = "The campaign is over or sealed", body = crate::error::ErrorBody),
        (status = 413, description = "Body larger than ingress.upload_limit_bytes", body = crate::error::ErrorBody),
        (status = 415, description = "Neither text/csv nor application/json", body = crate::error::ErrorBody),
        (status = 422, description = "No header row with destination, not an array of contacts, or a bad `last`", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn add_contacts(
    State(state): State<AppState>,
    CampaignId(id): CampaignId,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<UploadResult>, ApiError> {
    let Query(q) = query.map_err(|_| invalid("last", "must be true or false"))?;
    let body = crate::body::bytes(body, state.config.ingress.upload_limit_bytes)?;
    let (rows, rejected) = if crate::body::media_type(&headers) == "text/csv" {
        let parsed = campaign::parse_csv(&body).map_err(|p| invalid("(body)", p))?;
        (parsed.contacts, parsed.rejected)
    } else if crate::body::is_json(&headers) {
        match crate::body::parse_json(&body)? {
            Value::Array(list) => json_contacts(&list),
            Value::Object(o) => match o.get("contacts") {
                Some(Value::Array(list)) => json_contacts(list),
                _ => return Err(invalid("contacts", "must be an array of contacts")),
            },
            _ => return Err(invalid("(body)", "must be an array of contacts")),
        }
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send text/csv (with a header row) or application/json",
        ));
    };
    Ok(Json(upload(&state, &id, rows, rejected, q.last).await?))
}

/// Judge rows, skip do-not-call numbers, enqueue the rest, and count it all on the record.
pub(super) async fn upload(
    state: &AppState,
    id: &str,
    rows: Rows,
    mut rejected: Vec<RowError>,
    seal: bool,
) -> Result<UploadResult, ApiError> {
    // Reserve call-id numbers for these rows (optimistic concurrency on the record).
    let (record, first) = reserve(state, id, rows.len() as u64 + rejected.len() as u64).await?;
    let cc = state.config.phone.default_country_code.as_deref();
    let mut contacts: Vec<(u64, Contact)> = Vec::with_capacity(rows.len());
    for (i, (line, row)) in rows.iter().enumerate() {
        match campaign::contact_request(&record.spec, row, first + i as u64, cc) {
            Ok(c) => contacts.push((*line, c)),
            Err(reason) => rejected.push(RowError {
                line: *line,
                reason,
            }),
        }
    }
    let duplicates = campaign::collapse_duplicates(&mut contacts, &mut HashSet::new());
    // The do-not-call list, checked at enqueue (and again by the worker before dialing).
    let mut keep = Vec::with_capacity(contacts.len());
    let mut dnc_skipped = 0;
    for chunk in contacts.chunks(256) {
        let numbers: Vec<String> = chunk
            .iter()
            .map(|(_, c)| c.request.destination.to_string())
            .collect();
        let checks = join_all(numbers.iter().map(|n| state.bus.is_dnc(n))).await;
        for ((_, c), listed) in chunk.iter().zip(checks) {
            if listed.map_err(|e| ApiError::bus(&e))? {
                dnc_skipped += 1;
            } else {
                keep.push(c.clone());
            }
        }
    }
    let server_duplicates = state
        .bus
        .enqueue_contacts(id, &keep)
        .await
        .map_err(|e| ApiError::bus(&e))?;
    let accepted = keep.len() as u64 - server_duplicates;
    rejected.sort_by_key(|r| r.line);
    let result = UploadResult {
        campaign_id: id.to_owned(),
        accepted,
        rejected,
        duplicates,
        dnc_skipped,
        status_url: format!("{}/campaigns/{id}", state.public_url),
    };
    let dup_total = result.duplicates.len() as u64 + server_duplicates;
    let rejected_total = result.rejected.len() as u64;
    modify(state, id, |r| {
        r.accepted += accepted;
        r.rejected += rejected_total;
        r.duplicates += dup_total;
        r.dnc_skipped += dnc_skipped;
        r.sealed |= seal;
        Ok(())
    })
    .await?;
    tracing::info!(campaign = %id, accepted, rejected = rejected_total, duplicates = dup_total, dnc_skipped, "contacts uploaded");
    Ok(result)
}

/// Reserve `n` call-id numbers: returns the record and the first number.
async fn reserve(state: &AppState, id: &str, n: u64) -> Result<(CampaignRecord, u64), ApiError> {
    let mut first = 0;
    let record = modify(state, id, |r| {
        if r.sealed
            || matches!(
                r.status,
                CampaignStatus::Cancelled | CampaignStatus::Completed
            )
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the campaign takes no more contacts (sealed or over)",
            ));
        }
        first = r.rows + 1;
        r.rows += n;
        Ok(())
    })
    .await?;
    Ok((record, first))
}
