//! One feeder per campaign across the fleet: a lease at `<campaign>.lease` in the `campaigns`
//! bucket, taken with create, renewed with update-at-revision, taken over when stale.

use std::time::Duration;

use async_nats::jetstream::kv;
use callfleet_bus::{Bus, async_nats};
use serde::{Deserialize, Serialize};

/// A lease not renewed for this long may be taken over.
pub const STALE: Duration = Duration::from_secs(15);

#[derive(Debug, Serialize, Deserialize)]
struct Value {
    holder: String,
    renewed_at: jiff::Timestamp,
}

pub struct CampaignLease {
    key: String,
    holder: String,
    revision: u64,
}

fn encode(holder: &str) -> bytes::Bytes {
    serde_json::to_vec(&Value {
        holder: holder.to_owned(),
        renewed_at: jiff::Timestamp::now(),
    })
    .unwrap_or_default()
    .into()
}

impl CampaignLease {
    /// Take the lease, or `None` if another live instance holds it.
    pub async fn take(bus: &Bus, campaign: &str, holder: &str) -> Option<Self> {
        let key = format!("{campaign}.lease");
        if let Ok(revision) = bus.campaigns.create(&key, encode(holder)).await {
            return Some(Self {
                key,
                holder: holder.to_owned(),
                revision,
            });
        }
        let entry = bus.campaigns.entry(&key).await.ok().flatten()?;
        let current: Option<Value> = serde_json::from_slice(&entry.value).ok();
        let stale = current.as_ref().is_none_or(|v| {
            v.holder == holder
                || jiff::Timestamp::now()
                    .duration_since(v.renewed_at)
                    .unsigned_abs()
                    > STALE
        }) || entry.operation != kv::Operation::Put;
        if !stale {
            return None;
        }
        let revision = bus
            .campaigns
            .update(&key, encode(holder), entry.revision)
            .await
            .ok()?;
        Some(Self {
            key,
            holder: holder.to_owned(),
            revision,
        })
    }

    /// Renew; `false` if someone else took it.
    pub async fn renew(&mut self, bus: &Bus) -> bool {
        match bus
            .campaigns
            .update(&self.key, encode(&self.holder), self.revision)
            .await
        {
            Ok(r) => {
                self.revision = r;
                true
            }
            Err(e) => e.kind() != kv::UpdateErrorKind::WrongLastRevision,
        }
    }

    pub async fn release(self, bus: &Bus) {
        let _ = bus
            .campaigns
            .delete_expect_revision(&self.key, Some(self.revision))
            .await;
    }
}
