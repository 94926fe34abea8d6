//! Call state (`calls` bucket). The call leases are in [`crate::lease`].

use async_nats::jetstream::kv;
use callfleet_domain::CallState;

use crate::{Bus, BusError};

impl Bus {
    /// Current state of a call, with its KV revision.
    pub async fn call_state(&self, call_id: &str) -> Result<Option<(CallState, u64)>, BusError> {
        let deadline = tokio::time::Instant::now() + self.publish_timeout;
        if !self.connected_by(deadline).await {
            return Err(BusError::Disconnected);
        }
        let entry = tokio::time::timeout_at(deadline, self.calls.entry(call_id))
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
}
