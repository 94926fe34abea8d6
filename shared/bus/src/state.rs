//! Call state (`calls` bucket) and leases (`call_leases` bucket).
//!
//! A lease is the fence that keeps one call in one worker's hands: taken with `create` (fails if
//! someone holds it), renewed with `update` at the last seen revision (fails if someone else took
//! over), and gone after `lease_ttl` if its holder dies (the bucket's max_age).

use async_nats::jetstream::kv;
use callfleet_domain::CallState;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{Bus, BusError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseValue {
    pub worker_id: String,
    pub attempt: u32,
    pub renewed_at: Timestamp,
}

/// A lease this worker holds.
#[derive(Debug, Clone)]
pub struct Lease {
    pub call_id: String,
    pub value: LeaseValue,
    pub revision: u64,
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

impl Bus {
    /// Current state of a call, with its KV revision.
    pub async fn call_state(&self, call_id: &str) -> Result<Option<(CallState, u64)>, BusError> {
        if !self.is_connected() {
            return Err(BusError::Disconnected);
        }
        let entry = tokio::time::timeout(self.publish_timeout, self.calls.entry(call_id))
            .await
            .map_err(|_| BusError::Timeout(self.publish_timeout))?
            .map_err(|e| BusError::js("kv get", e))?;
        match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                let state =
                    serde_json::from_slice(&e.value).map_err(|source| BusError::Corrupt {
                        key: call_id.to_owned(),
                        source,
                    })?;
                Ok(Some((state, e.revision)))
            }
            _ => Ok(None),
        }
    }

    /// Record the first state of a call; a no-op (returning false) if the call already exists.
    pub async fn create_call_state(&self, state: &CallState) -> Result<bool, BusError> {
        let body = serde_json::to_vec(state).map_err(|e| BusError::js("encode state", e))?;
        match self.calls.create(&state.call_id, body.into()).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(BusError::js("kv create", e)),
        }
    }

    /// Write the state of a call. Only the lease holder writes, so last writer wins.
    pub async fn put_call_state(&self, state: &CallState) -> Result<(), BusError> {
        let body = serde_json::to_vec(state).map_err(|e| BusError::js("encode state", e))?;
        self.calls
            .put(&state.call_id, body.into())
            .await
            .map_err(|e| BusError::js("kv put", e))?;
        Ok(())
    }

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
        let body = serde_json::to_vec(&value).map_err(|e| BusError::js("encode lease", e))?;
        match self.leases.create(call_id, body.into()).await {
            Ok(revision) => Ok(Lease {
                call_id: call_id.to_owned(),
                value,
                revision,
            }),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let holder = match self.leases.entry(call_id).await {
                    Ok(Some(entry)) => serde_json::from_slice::<LeaseValue>(&entry.value)
                        .map(|v| v.worker_id)
                        .unwrap_or_else(|_| "unknown".into()),
                    _ => "unknown".into(),
                };
                Err(LeaseError::Held {
                    call_id: call_id.to_owned(),
                    holder,
                })
            }
            Err(e) => Err(BusError::js("kv create lease", e).into()),
        }
    }

    /// Renew a lease at its last revision; fails with `Lost` if someone else wrote it.
    pub async fn renew_lease(&self, lease: &mut Lease) -> Result<(), LeaseError> {
        lease.value.renewed_at = Timestamp::now();
        let body = serde_json::to_vec(&lease.value).map_err(|e| BusError::js("encode lease", e))?;
        match self
            .leases
            .update(&lease.call_id, body.into(), lease.revision)
            .await
        {
            Ok(revision) => {
                lease.revision = revision;
                Ok(())
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Err(LeaseError::Lost {
                call_id: lease.call_id.clone(),
            }),
            Err(e) => Err(BusError::js("kv update lease", e).into()),
        }
    }

    /// Give a lease back (only if still ours).
    pub async fn release_lease(&self, lease: &Lease) -> Result<(), BusError> {
        self.leases
            .delete_expect_revision(&lease.call_id, Some(lease.revision))
            .await
            .map_err(|e| BusError::js("kv delete lease", e))
    }
}
