//! The JetStream side of callfleet: connecting, the topology (streams, consumers, KV buckets),
//! typed publishing of jobs and events, call state and leases in KV, and the dead-letter stream.
//!
//! Every role calls [`Bus::connect`], which creates or updates the topology idempotently, so any
//! role can start first. The definitions are mirrored under `nats/` (see [`topology::export`]).

mod campaign;
mod connect;
mod control;
mod error;
mod publish;
mod state;
pub mod topology;

pub use async_nats;
pub use campaign::number_key;
pub use connect::connect;
pub use control::{ControlError, WaitingJob};
pub use error::BusError;
pub use publish::{Scheduled, schedule_headers};
pub use state::{Lease, LeaseError};

use async_nats::jetstream::{self, kv};
use callfleet_config::Config;

/// A connected client with the topology in place.
#[derive(Clone)]
pub struct Bus {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub calls: kv::Store,
    pub leases: kv::Store,
    pub campaigns: kv::Store,
    pub numbers: kv::Store,
    pub dnc: kv::Store,
    publish_timeout: std::time::Duration,
}

impl Bus {
    /// Connect with `config.nats`, then create or update the topology.
    pub async fn connect(config: &Config, role: &str) -> Result<Self, BusError> {
        let client = connect(&config.nats, role).await?;
        Self::with_client(client, config).await
    }

    /// Ensure the topology on an existing client.
    pub async fn with_client(
        client: async_nats::Client,
        config: &Config,
    ) -> Result<Self, BusError> {
        let js = jetstream::new(client.clone());
        let b = topology::ensure(&js, config).await?;
        Ok(Self {
            client,
            js,
            calls: b.calls,
            leases: b.leases,
            campaigns: b.campaigns,
            numbers: b.numbers,
            dnc: b.dnc,
            publish_timeout: std::time::Duration::from_millis(config.nats.publish_timeout_ms),
        })
    }

    /// Whether the client is connected right now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}
