//! The JetStream side of callfleet, and the only crate that touches it: connecting, the
//! topology (streams, consumers, KV buckets), typed publishing of jobs and events, the one
//! consume loop ([`consume`]: deliveries in, [`Outcome`]s out, [`Bus::settle`] the one mapping
//! onto acks, NAKs, scheduled follow-ups and dead letters), call state in KV, call recordings in the object store ([`recordings`]), the one
//! KV lease protocol ([`lease`]: calls, campaign feeders, number locks), call control, campaigns and the
//! dead-letter stream.
//!
//! Every role calls [`Bus::connect`], which creates or updates the topology idempotently, so any
//! role can start first. The definitions are mirrored under `nats/` (see [`topology::export`]).
//! The handles are private: roles get typed methods, never a JetStream context or a KV store.

mod campaign;
mod connect;
pub mod consume;
mod control;
mod dlq;
mod error;
pub mod lag;
pub mod lease;
mod livekit;
pub mod metrics;
mod publish;
mod recordings;
mod state;
pub mod topology;
mod watch;

use std::sync::Arc;
use std::time::Duration;

pub use async_nats::HeaderMap;
pub use campaign::{number_key, released_contact};
pub use consume::{Consumer, Delivery, Outcome, Outgoing, Slots, Sources, backoff, consume};
pub use control::{ControlError, ControlInbox, Responder, WaitingJob};
pub use dlq::{DeadLetter, ReplayError};
pub use error::BusError;
pub use lag::{ConsumerLag, Watch};
pub use lease::{CampaignLease, Lease, LeaseError, LeaseValue};
pub use publish::{Scheduled, scheduled_job};
pub use recordings::{RecordingBody, RecordingMeta, StoredRecording, recording_key};

use async_nats::jetstream::{self, kv, object_store::ObjectStore};
use callfleet_config::Config;

/// A connected client with the topology in place. Cheap to clone: the handles are shared
/// (each async-nats handle's own clone copies its cached stream info and channel senders, and
/// the ingress cloned a dozen of them per request: most of its CPU went there).
#[derive(Clone)]
pub struct Bus {
    client: Arc<async_nats::Client>,
    js: Arc<jetstream::Context>,
    calls: Arc<kv::Store>,
    leases: Arc<kv::Store>,
    campaigns: Arc<kv::Store>,
    numbers: Arc<kv::Store>,
    dnc: Arc<kv::Store>,
    livekit_rooms: Arc<kv::Store>,
    recordings: Arc<ObjectStore>,
    publish_timeout: Duration,
}

impl Bus {
    /// Connect with `config.nats`, then create or update the topology.
    pub async fn connect(config: &Config, role: &str) -> Result<Self, BusError> {
        let client = connect::connect(&config.nats, role).await?;
        let js = jetstream::new(client.clone());
        let b = topology::ensure_patiently(&js, config).await?;
        Ok(Self {
            client: Arc::new(client),
            js: Arc::new(js),
            calls: Arc::new(b.calls),
            leases: Arc::new(b.leases),
            campaigns: Arc::new(b.campaigns),
            numbers: Arc::new(b.numbers),
            dnc: Arc::new(b.dnc),
            livekit_rooms: Arc::new(b.livekit_rooms),
            recordings: Arc::new(b.recordings),
            publish_timeout: Duration::from_millis(config.nats.publish_timeout_ms),
        })
    }

    /// Whether the client is connected right now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Whether JetStream answers (an account info request) within `timeout`.
    pub async fn check_jetstream(&self, timeout: Duration) -> Result<(), BusError> {
        match tokio::time::timeout(timeout, self.js.query_account()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(BusError::js("account info", e)),
            Err(_) => Err(BusError::Timeout(timeout)),
        }
    }

    /// Flush and close the connection at shutdown, within `timeout` (with NATS gone there is
    /// nothing to flush to, and exiting beats hanging). A failure is logged.
    pub async fn drain(&self, timeout: Duration) {
        if let Ok(Err(e)) = tokio::time::timeout(timeout, self.client.drain()).await {
            tracing::warn!(error = %e, "nats drain failed");
        }
    }
}
