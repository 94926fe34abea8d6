//! Pause, resume and cancel: the record's status, and the campaign's job consumer paused too.

use axum::{Json, extract::State, http::StatusCode};
use callfleet_domain::campaign::CampaignStatus;
use serde::Serialize;

use super::modify;
use crate::{AppState, error::ApiError, ids::CampaignId};

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
    let paused = state
        .bus
        .pause_campaign_jobs(id, to == CampaignStatus::Paused)
        .await;
    if let Err(e) = paused {
        tracing::warn!(campaign = %id, error = %e, "cannot pause/resume the campaign consumer; the campaigner still stops releasing");
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
