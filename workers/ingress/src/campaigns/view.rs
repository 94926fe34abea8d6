//! `GET /campaigns/{id}`: the record with its counts, read from consumer counters and tallies.

use std::collections::BTreeMap;

use axum::{Json, extract::State};
use callfleet_domain::{campaign::CampaignRecord, latency::FirstAudioStats, subjects as s};
use serde::Serialize;

use crate::{
    AppState,
    error::ApiError,
    ids::{CampaignId, campaign_not_found},
};

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
    /// Dead air over the answered calls that ran a voice session: the share whose first agent
    /// audio came later than 2 s after the answer (or never), and its p50/p95. Counted in
    /// fixed buckets as calls end; null before the first such call ended.
    pub first_agent_audio: Option<FirstAudioStats>,
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
    let buckets = bus
        .subject_counts(s::TALLY_STREAM, &s::first_audio_tallies(&id))
        .await
        .map_err(|e| ApiError::bus(&e))?;
    let first_agent_audio = FirstAudioStats::from_counts(
        buckets
            .iter()
            .map(|(subject, n)| (subject.rsplit('.').next().unwrap_or_default(), *n)),
    );
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
        first_agent_audio,
    })
}
