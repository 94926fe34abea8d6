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

mod feeder;
mod lease;

use std::{collections::HashMap, sync::Arc, time::Duration};

use callfleet_bus::Bus;
use callfleet_config::Config;
use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum CampaignerError {
    #[error(transparent)]
    Bus(#[from] callfleet_bus::BusError),
}

/// Run until `shutdown`: look for campaigns every second and feed those whose lease we hold.
pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> Result<(), CampaignerError> {
    let bus = Bus::connect(&config, "campaigner").await?;
    let me: Arc<str> = format!(
        "campaigner-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
    .into();
    tracing::info!(instance = %me, "campaigner started");
    let mut feeders: HashMap<String, JoinHandle<()>> = HashMap::new();
    while !shutdown.is_cancelled() {
        feeders.retain(|_, task| !task.is_finished());
        match bus.campaigns.keys().await {
            Ok(mut keys) => {
                while let Some(Ok(key)) = keys.next().await {
                    if key.contains('.') || feeders.contains_key(&key) {
                        continue;
                    }
                    let task = tokio::spawn(feeder::feed(
                        bus.clone(),
                        config.clone(),
                        key.clone(),
                        me.clone(),
                        shutdown.clone(),
                    ));
                    feeders.insert(key, task);
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot list campaigns"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = shutdown.cancelled() => {}
        }
    }
    for (_, task) in feeders {
        let _ = task.await;
    }
    let drained = tokio::time::timeout(Duration::from_secs(10), bus.client.drain()).await;
    if let Ok(Err(e)) = drained {
        tracing::warn!(error = %e, "nats drain failed");
    }
    tracing::info!("campaigner stopped");
    Ok(())
}
