//! The campaigner: for every campaign, one instance (holding the campaign's lease in KV)
//! releases waiting contacts to the workers.
//!
//! Design note. Contacts wait on `campaigns.contacts.<id>` (work queue). The feeder takes one
//! at a time and releases it onto `calls.campaign.<id>` only when
//! - the campaign is active and its `start_at` has passed;
//! - the contact's calling window is open in its time zone (else it is rescheduled as a
//!   JetStream scheduled message for the window's next opening, holding nothing meanwhile);
//! - nothing released is still waiting for a worker and the campaign's live calls are under
//!   its cap (the `campaign-<id>` consumer's `max_ack_pending` enforces the cap fleet-wide
//!   too);
//! - the calls-per-second token bucket allows it (no burst: one release per 1/cps).
//!
//! Retries come back through `campaigns.contacts.<id>` (the worker schedules them there), so
//! they respect the pace and the windows too. Pause stops releasing (and pauses the campaign's
//! consumer); cancel tallies every waiting contact as `cancelled`. A sealed campaign whose
//! contacts are all finished completes: `campaigns.events.<id>.completed` with the totals,
//! which the notifier delivers as a `campaign.completed` webhook.
//!
//! One campaigner feeds a campaign at a time: it holds the campaign's feeder lease
//! (`callfleet_bus::CampaignLease`, the bus's KV lease, stale after 15 s without renewal).
//! Contacts are pulled and settled through the bus ([`callfleet_bus::Delivery`],
//! [`callfleet_bus::Outcome`]): a release or a reschedule is a scheduled follow-up that is
//! published before the contact is acknowledged.
//!
//! `campaigner.metrics_listen` serves `/healthz`, `/readyz` (503 while draining) and `/metrics`
//! through [`callfleet_ops`]: every campaign's `campaign-*` (released jobs: what the agents'
//! autoscaler adds to the `agents` backlog), `feeder-*` and `waiting-*` consumer counts.

mod feeder;

use std::{collections::HashMap, sync::Arc, time::Duration};

use callfleet_bus::{Bus, Watch};
use callfleet_config::Config;
use callfleet_domain::subjects as s;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum CampaignerError {
    #[error(transparent)]
    Bus(#[from] callfleet_bus::BusError),
    #[error(transparent)]
    Ops(#[from] callfleet_ops::OpsError),
}

/// The consumers the campaigner reports on `/metrics`: every campaign's.
pub const WATCHED: [Watch; 3] = [
    Watch::Prefix {
        stream: s::JOBS_STREAM,
        prefix: s::CAMPAIGN_CONSUMER_PREFIX,
    },
    Watch::Prefix {
        stream: s::CONTACTS_STREAM,
        prefix: s::FEEDER_CONSUMER_PREFIX,
    },
    Watch::Prefix {
        stream: s::CONTACTS_STREAM,
        prefix: s::WAITING_CONSUMER_PREFIX,
    },
];

/// Run until `shutdown`: look for campaigns every second and feed those whose lease we hold.
pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> Result<(), CampaignerError> {
    let bus = Bus::connect(&config, "campaigner").await?;
    let ops = callfleet_ops::Ops::new(
        "campaigner",
        bus.clone(),
        WATCHED.to_vec(),
        shutdown.clone(),
        Vec::new(),
        Vec::new(),
    )?;
    let probes = ops.serve(&config.campaigner.metrics_listen).await?;
    ops.consuming();
    let me: Arc<str> = format!(
        "campaigner-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
    .into();
    tracing::info!(instance = %me, "campaigner started");
    let mut feeders: HashMap<String, JoinHandle<()>> = HashMap::new();
    while !shutdown.is_cancelled() {
        feeders.retain(|_, task| !task.is_finished());
        match bus.campaign_ids().await {
            Ok(ids) => {
                for id in ids {
                    if feeders.contains_key(&id) {
                        continue;
                    }
                    let task = tokio::spawn(feeder::feed(
                        bus.clone(),
                        config.clone(),
                        id.clone(),
                        me.clone(),
                        shutdown.clone(),
                    ));
                    feeders.insert(id, task);
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot list campaigns"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = shutdown.cancelled() => {}
        }
    }
    for (id, task) in feeders {
        if let Err(e) = task.await {
            tracing::error!(campaign = %id, error = %e, "feeder task failed");
        }
    }
    bus.drain(Duration::from_secs(10)).await;
    probes.stop().await;
    tracing::info!("campaigner stopped");
    Ok(())
}
