//! One KV lease protocol for everything held by one process at a time: calls (`call_leases`),
//! campaign feeders (`<id>.lease` in `campaigns`) and phone numbers (`number_locks`).
//!
//! A [`KvLease`] is taken with KV `create` (fails if someone holds it), renewed with `update`
//! at the last seen revision (fails with [`LeaseError::Lost`] if someone else wrote it), and
//! released with a delete at that revision (only if still ours). Expiry differs per use:
//! - call leases and number locks: the bucket's `max_age` (the agent's lease TTL) removes a
//!   lease whose holder died;
//! - campaign leases: a lease not renewed for [`CAMPAIGN_LEASE_STALE`] (by its `renewed_at`)
//!   may be taken over at its revision.
//!
//! Number locks keep their original protocol on top: the value is the holding call's id, the
//! same call may lock again, and renewal and unlock are unconditional (`put`, `purge`).

use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{Bus, BusError, campaign::number_key};

/// A campaign lease not renewed for this long may be taken over.
pub const CAMPAIGN_LEASE_STALE: Duration = Duration::from_secs(15);

/// The buckets leases live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Calls,
    Campaigns,
    Numbers,
}

/// A lease this process holds: its bucket, key and last revision.
#[derive(Debug, Clone)]
pub struct KvLease {
    bucket: Bucket,
    key: String,
    revision: u64,
}

impl KvLease {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("call {call_id} is held by worker {holder}")]
    Held { call_id: String, holder: String },
    #[error("lease on call {call_id} was lost (taken over or expired)")]
    Lost { call_id: String },
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Someone else's lease, as found.
struct Current {
    value: Bytes,
    revision: u64,
    live: bool,
}

impl Bus {
    fn lease_store(&self, bucket: Bucket) -> &kv::Store {
        match bucket {
            Bucket::Calls => &self.leases,
            Bucket::Campaigns => &self.campaigns,
            Bucket::Numbers => &self.numbers,
        }
    }

    /// Create the lease; `Err(current)` if the key exists (current is `None` when it vanished
    /// meanwhile or cannot be read).
    async fn lease_create(
        &self,
        bucket: Bucket,
        key: &str,
        value: Bytes,
    ) -> Result<Result<KvLease, Option<Current>>, BusError> {
        let store = self.lease_store(bucket);
        match store.create(key, value).await {
            Ok(revision) => Ok(Ok(KvLease {
                bucket,
                key: key.to_owned(),
                revision,
            })),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let current = store.entry(key).await.ok().flatten().map(|e| Current {
                    live: e.operation == kv::Operation::Put,
                    value: e.value,
                    revision: e.revision,
                });
                Ok(Err(current))
            }
            Err(e) => Err(BusError::js("kv create lease", e)),
        }
    }

    /// Write the lease at `revision` (renewal, or takeover of a stale one). When the key moved
    /// on, it is still ours if its value is (`ours`): a write of ours was applied but its answer
    /// lost (a leader election, a dropped link), so the last seen revision is stale. Then that
    /// revision is taken, and the write is not reported as a loss.
    async fn lease_update(
        &self,
        lease: &mut KvLease,
        value: Bytes,
        ours: impl Fn(&[u8]) -> bool,
    ) -> Result<(), LeaseError> {
        let store = self.lease_store(lease.bucket);
        match store.update(&lease.key, value, lease.revision).await {
            Ok(revision) => {
                lease.revision = revision;
                Ok(())
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                match store.entry(&lease.key).await {
                    Ok(Some(entry))
                        if entry.operation == kv::Operation::Put && ours(&entry.value) =>
                    {
                        tracing::info!(key = %lease.key, revision = entry.revision, "lease write applied without its answer; still ours");
                        lease.revision = entry.revision;
                        Ok(())
                    }
                    Ok(_) => Err(LeaseError::Lost {
                        call_id: lease.key.clone(),
                    }),
                    Err(e) => Err(BusError::js("kv read lease", e).into()),
                }
            }
            Err(e) => Err(BusError::js("kv update lease", e).into()),
        }
    }

    /// Give a lease back (only if still ours).
    async fn lease_release(&self, lease: &KvLease) -> Result<(), BusError> {
        self.lease_store(lease.bucket)
            .delete_expect_revision(&lease.key, Some(lease.revision))
            .await
            .map_err(|e| BusError::js("kv delete lease", e))
    }
}

// --- Calls -----------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseValue {
    pub worker_id: String,
    pub attempt: u32,
    pub renewed_at: Timestamp,
}

impl LeaseValue {
    /// Whether `other` was written by the same holder: the same worker, for the same attempt
    /// (renewals differ only in `renewed_at`). Worker ids are unique per process.
    pub fn same_holder(&self, other: &LeaseValue) -> bool {
        self.worker_id == other.worker_id && self.attempt == other.attempt
    }
}

/// The lease on a call, held by the worker dialing it.
#[derive(Debug, Clone)]
pub struct Lease {
    pub call_id: String,
    pub value: LeaseValue,
    lease: KvLease,
}

impl Lease {
    pub fn revision(&self) -> u64 {
        self.lease.revision
    }
}

fn encode<T: Serialize>(value: &T, what: &'static str) -> Result<Bytes, BusError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| BusError::js(what, e))
}

impl Bus {
    /// Take the lease on a call, or learn who holds it.
    pub async fn take_lease(
        &self,
        call_id: &str,
        worker_id: &str,
        attempt: u32,
    ) -> Result<Lease, LeaseError> {
        let value = LeaseValue {
            worker_id: worker_id.to_owned(),
            attempt,
            renewed_at: Timestamp::now(),
        };
        let body = encode(&value, "encode lease")?;
        match self.lease_create(Bucket::Calls, call_id, body).await? {
            Ok(lease) => Ok(Lease {
                call_id: call_id.to_owned(),
                value,
                lease,
            }),
            Err(current) => Err(LeaseError::Held {
                call_id: call_id.to_owned(),
                holder: current
                    .and_then(|c| serde_json::from_slice::<LeaseValue>(&c.value).ok())
                    .map_or_else(|| "unknown".into(), |v| v.worker_id),
            }),
        }
    }

    /// Renew a lease at its last revision; fails with `Lost` if someone else wrote it.
    pub async fn renew_lease(&self, lease: &mut Lease) -> Result<(), LeaseError> {
        lease.value.renewed_at = Timestamp::now();
        let body = encode(&lease.value, "encode lease")?;
        let mine = lease.value.clone();
        let ours = move |v: &[u8]| {
            serde_json::from_slice::<LeaseValue>(v).is_ok_and(|held| held.same_holder(&mine))
        };
        self.lease_update(&mut lease.lease, body, ours)
            .await
            .map_err(|e| match e {
                LeaseError::Lost { .. } => LeaseError::Lost {
                    call_id: lease.call_id.clone(),
                },
                e => e,
            })
    }

    /// Give a lease back (only if still ours).
    pub async fn release_lease(&self, lease: &Lease) -> Result<(), BusError> {
        self.lease_release(&lease.lease).await
    }
}

// --- Campaign feeders ------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize)]
struct FeederValue {
    holder: String,
    renewed_at: Timestamp,
}

/// The lease of a campaign's feeder: one campaigner instance feeds a campaign at a time.
#[derive(Debug)]
pub struct CampaignLease {
    holder: String,
    lease: KvLease,
}

/// Whether a stored feeder lease is `holder`'s.
fn feeder_is(holder: &str) -> impl Fn(&[u8]) -> bool + '_ {
    move |v| serde_json::from_slice::<FeederValue>(v).is_ok_and(|f| f.holder == holder)
}

fn feeder_value(holder: &str) -> Bytes {
    encode(
        &FeederValue {
            holder: holder.to_owned(),
            renewed_at: Timestamp::now(),
        },
        "encode campaign lease",
    )
    .unwrap_or_default()
}

impl Bus {
    /// Take a campaign's feeder lease (`<campaign>.lease` in `campaigns`), taking over one
    /// that is ours, unreadable, deleted or stale; `None` if another live instance holds it
    /// (or the bucket cannot be reached).
    pub async fn take_campaign_lease(&self, campaign: &str, holder: &str) -> Option<CampaignLease> {
        let key = format!("{campaign}.lease");
        let current = match self
            .lease_create(Bucket::Campaigns, &key, feeder_value(holder))
            .await
        {
            Ok(Ok(lease)) => {
                return Some(CampaignLease {
                    holder: holder.to_owned(),
                    lease,
                });
            }
            Ok(Err(current)) => current?,
            Err(_) => return None,
        };
        let value: Option<FeederValue> = serde_json::from_slice(&current.value).ok();
        let stale = !current.live
            || value.is_none_or(|v| {
                v.holder == holder
                    || Timestamp::now().duration_since(v.renewed_at).unsigned_abs()
                        > CAMPAIGN_LEASE_STALE
            });
        if !stale {
            return None;
        }
        let mut lease = KvLease {
            bucket: Bucket::Campaigns,
            key,
            revision: current.revision,
        };
        self.lease_update(&mut lease, feeder_value(holder), feeder_is(holder))
            .await
            .ok()?;
        Some(CampaignLease {
            holder: holder.to_owned(),
            lease,
        })
    }

    /// Renew; `false` only if someone else took it over (other failures are retried later).
    pub async fn renew_campaign_lease(&self, lease: &mut CampaignLease) -> bool {
        let value = feeder_value(&lease.holder);
        let ours = feeder_is(&lease.holder);
        !matches!(
            self.lease_update(&mut lease.lease, value, ours).await,
            Err(LeaseError::Lost { .. })
        )
    }

    /// Give the lease back (only if still ours); it goes stale on its own otherwise.
    pub async fn release_campaign_lease(&self, lease: CampaignLease) {
        if let Err(e) = self.lease_release(&lease.lease).await {
            tracing::debug!(key = lease.lease.key(), error = %e, "campaign lease not released; it goes stale");
        }
    }
}

// --- Number locks ----------------------------------------------------------------------------

impl Bus {
    /// Lock a number for `call_id`: `Ok(None)` if locked (or already locked by this call),
    /// `Ok(Some(holder))` if another call holds it.
    pub async fn lock_number(&self, e164: &str, call_id: &str) -> Result<Option<String>, BusError> {
        let key = number_key(e164);
        let value = Bytes::from(call_id.to_owned());
        match self.lease_create(Bucket::Numbers, &key, value).await? {
            Ok(_) => Ok(None),
            Err(current) => {
                let holder = current
                    .map(|c| String::from_utf8_lossy(&c.value).into_owned())
                    .unwrap_or_default();
                Ok((holder != call_id).then_some(holder))
            }
        }
    }

    /// Refresh a number lock (its bucket's max_age is the lease TTL).
    pub async fn renew_number(&self, e164: &str, call_id: &str) -> Result<(), BusError> {
        self.numbers
            .put(number_key(e164), call_id.to_owned().into())
            .await
            .map(|_| ())
            .map_err(|e| BusError::js("kv put number lock", e))
    }

    pub async fn unlock_number(&self, e164: &str) -> Result<(), BusError> {
        self.numbers
            .purge(number_key(e164))
            .await
            .map_err(|e| BusError::js("kv purge number lock", e))
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::{FeederValue, LeaseValue, feeder_is};

    fn lease(worker: &str, attempt: u32) -> LeaseValue {
        LeaseValue {
            worker_id: worker.into(),
            attempt,
            renewed_at: Timestamp::now(),
        }
    }

    /// A renewal whose answer was lost leaves the key at a newer revision with our own value:
    /// that is still our lease. Another worker's value, or another attempt's, is a loss.
    #[test]
    fn a_lease_is_ours_by_worker_and_attempt_not_by_time() {
        let mine = lease("agent-a", 2);
        let mut renewed = mine.clone();
        renewed.renewed_at = Timestamp::now() + jiff::SignedDuration::from_secs(10);
        assert!(mine.same_holder(&renewed));
        assert!(!mine.same_holder(&lease("agent-b", 2)), "taken over");
        assert!(!mine.same_holder(&lease("agent-a", 3)), "a later attempt");
    }

    #[test]
    fn a_feeder_lease_is_ours_by_holder() {
        let stored = serde_json::to_vec(&FeederValue {
            holder: "campaigner-1".into(),
            renewed_at: Timestamp::now(),
        })
        .expect("json");
        assert!(feeder_is("campaigner-1")(&stored));
        assert!(!feeder_is("campaigner-2")(&stored));
        assert!(!feeder_is("campaigner-1")(b"not json"));
    }
}
