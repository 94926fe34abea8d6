//! Campaigns: create, upload contacts (JSON or CSV, row by row), status, pause/resume/cancel.
//!
//! Contacts are validated like `POST /dispatch` after merging over the campaign's defaults;
//! a bad row is reported with its line and reason and never sinks the upload. Accepted contacts
//! go onto `campaigns.contacts.<id>` for the campaigner, which releases them at the campaign's
//! pace inside its calling window.

use std::collections::{BTreeMap, HashSet};

use axum::{
    Json,
    body::Bytes,
    extract::{
        Query, State,
        rejection::{BytesRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode},
};
use callfleet_domain::{
    FieldError,
    campaign::{self, CampaignRecord, CampaignSpec, CampaignStatus, Contact, RowError},
    subjects as s,
};
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    AppState,
    error::ApiError,
    ids::{CampaignId, campaign_not_found},
};

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

/// `GET /campaigns/{id}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignView {
    #[serde(flatten)]
    pub record: CampaignRecord,
    /// Contacts waiting for the campaigner (not yet released, or waiting for a window/retry).
    pub waiting: u64,
    /// Released to the workers and not finished: queued for a slot or live.
    pub in_progress: u64,
    /// Live calls right now (the campaign consumer's ack-pending count).
    pub live: u64,
    /// Finished contacts by final outcome.
    #[schema(value_type = Object)]
    pub outcomes: BTreeMap<String, u64>,
    pub finished: u64,
    /// Dials started so far (first attempts and retries).
    pub dials: u64,
    /// Dials per second since the campaign was created.
    pub dial_rate: f64,
    /// Seconds until every contact is done at the rate so far; null before any finished.
    pub eta_seconds: Option<f64>,
}

fn invalid(field: &str, problem: impl Into<String>) -> ApiError {
    ApiError::invalid(vec![FieldError::new(field, problem)])
}

/// Contacts with their line (or 1-based index), as uploaded.
type Rows = Vec<(u64, Map<String, Value>)>;

/// Contacts from a JSON array: (1-based index, object), non-objects rejected.
fn json_contacts(list: &[Value]) -> (Rows, Vec<RowError>) {
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
async fn upload(
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

#[utoipa::path(
    get, path = "/campaigns/{id}", operation_id = "get_campaign",
    params(("id" = String, Path, description = "campaign_id")),
    responses(
        (status = 200, description = "Settings, status, counts per state and outcome, dial rate, ETA", body = CampaignView),
        (status = 404, description = "Unknown campaign, or an id no campaign can have", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    CampaignId(id): CampaignId,
) -> Result<Json<CampaignView>, ApiError> {
    let Some((record, _)) = state
        .bus
        .campaign(&id)
        .await
        .map_err(|e| ApiError::bus(&e))?
    else {
        return Err(campaign_not_found(&id));
    };
    Ok(Json(view(&state, record).await?))
}

pub(crate) async fn view(
    state: &AppState,
    record: CampaignRecord,
) -> Result<CampaignView, ApiError> {
    let id = record.spec.id.clone();
    let bus = &state.bus;
    // After completion the counting consumers are gone: nothing waits then.
    let waiting = match bus.waiting(&id).await {
        Ok((queued, scheduled)) => queued + scheduled,
        Err(_) if record.completed_at.is_some() => 0,
        Err(e) => return Err(ApiError::bus(&e)),
    };
    let tallies = bus
        .subject_counts(s::TALLY_STREAM, &format!("campaigns.tally.{id}.*"))
        .await
        .map_err(|e| ApiError::bus(&e))?;
    let mut outcomes = BTreeMap::new();
    let mut dials = 0;
    for (subject, n) in tallies {
        let what = subject.rsplit('.').next().unwrap_or_default().to_owned();
        if what == "dialed" {
            dials = n;
        } else {
            outcomes.insert(what, n);
        }
    }
    let finished: u64 = outcomes.values().sum();
    // After completion the campaign's consumer is gone: nothing is in progress then.
    let (pending, live) = bus.released(&id).await.unwrap_or((0, 0));
    let in_progress = pending + live;
    let elapsed = jiff::Timestamp::now()
        .duration_since(record.created_at)
        .as_secs_f64()
        .max(0.001);
    let remaining = record.accepted.saturating_sub(finished);
    let eta_seconds = (finished > 0).then(|| remaining as f64 / (finished as f64 / elapsed));
    Ok(CampaignView {
        record,
        waiting,
        in_progress,
        live,
        outcomes,
        finished,
        dials,
        dial_rate: dials as f64 / elapsed,
        eta_seconds,
    })
}

/// The answer to pause, resume and cancel: the campaign's new status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusChanged {
    pub campaign_id: String,
    pub status: CampaignStatus,
}

async fn set_status(
    state: &AppState,
    id: &str,
    to: CampaignStatus,
) -> Result<Json<StatusChanged>, ApiError> {
    let record = modify(state, id, |r| {
        match (r.status, to) {
            (CampaignStatus::Cancelled | CampaignStatus::Completed, _) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("the campaign is already {:?}", r.status).to_lowercase(),
                ));
            }
            (CampaignStatus::Active, CampaignStatus::Active)
            | (CampaignStatus::Paused, CampaignStatus::Paused) => {}
            _ => r.status = to,
        }
        Ok(())
    })
    .await?;
    // Paused: also pause the campaign's consumer, so jobs already released wait too.
    if let Ok(stream) = state.bus.js.get_stream(s::JOBS_STREAM).await {
        let consumer = s::campaign_consumer(id);
        let paused = match to {
            CampaignStatus::Paused => {
                let until = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 365);
                let until = time::OffsetDateTime::from_unix_timestamp(until.as_second())
                    .unwrap_or(time::OffsetDateTime::now_utc());
                stream.pause_consumer(&consumer, until).await.map(|_| ())
            }
            _ => stream.resume_consumer(&consumer).await.map(|_| ()),
        };
        if let Err(e) = paused {
            tracing::warn!(campaign = %id, error = %e, "cannot pause/resume the campaign consumer; the campaigner still stops releasing");
        }
    }
    tracing::info!(campaign = %id, status = ?record.status, "campaign status changed");
    Ok(Json(StatusChanged {
        campaign_id: id.to_owned(),
        status: record.status,
    }))
}

macro_rules! status_route {
    ($name:ident, $op:literal, $path:literal, $to:expr, $doc:literal) => {
        #[utoipa::path(
            post, path = $path, operation_id = $op,
            params(("id" = String, Path, description = "campaign_id")),
            responses(
                (status = 200, description = $doc, body = StatusChanged),
                (status = 404, description = "Unknown campaign, or an id no campaign can have", body = crate::error::ErrorBody),
                (status = 409, description = "Already cancelled or completed (or changed too often meanwhile: retry)", body = crate::error::ErrorBody),
            ),
            security(("bearer" = []))
        )]
        pub async fn $name(State(state): State<AppState>, CampaignId(id): CampaignId) -> Result<Json<StatusChanged>, ApiError> {
            set_status(&state, &id, $to).await
        }
    };
}

status_route!(
    pause,
    "pause_campaign",
    "/campaigns/{id}/pause",
    CampaignStatus::Paused,
    "No new dials within seconds; live calls finish"
);
status_route!(
    resume,
    "resume_campaign",
    "/campaigns/{id}/resume",
    CampaignStatus::Active,
    "Dialing resumes"
);
status_route!(
    cancel,
    "cancel_campaign",
    "/campaigns/{id}/cancel",
    CampaignStatus::Cancelled,
    "Waiting contacts end as cancelled; live calls finish"
);
