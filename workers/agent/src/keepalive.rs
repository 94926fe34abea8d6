//! While an attempt lives: `+WPI` every ack_wait/3 and a lease renewal every lease_ttl/3.
//! A renewal that finds someone else's revision cancels `lost`: the call is no longer ours.

use std::sync::Arc;

use async_nats::jetstream::{AckKind, Message};
use callfleet_bus::{Lease, LeaseError, async_nats};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Worker;

pub struct Keepalive {
    pub lost: CancellationToken,
    stop: CancellationToken,
    task: JoinHandle<Option<Lease>>,
}

impl Keepalive {
    pub fn start(worker: &Worker, msg: Arc<Message>, mut lease: Lease) -> Self {
        let lost = CancellationToken::new();
        let stop = CancellationToken::new();
        let ack_every = worker.config.agent.ack_wait() / 3;
        let renew_every = worker.config.agent.lease_ttl() / 3;
        let bus = worker.bus.clone();
        let (lost2, stop2) = (lost.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut ack_tick =
                tokio::time::interval_at(tokio::time::Instant::now() + ack_every, ack_every);
            let mut renew_tick =
                tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
            loop {
                tokio::select! {
                    () = stop2.cancelled() => return Some(lease),
                    _ = ack_tick.tick() => {
                        if let Err(e) = msg.ack_with(AckKind::Progress).await {
                            tracing::warn!(call.id = %lease.call_id, error = %e, "in-progress ack failed");
                        }
                    }
                    _ = renew_tick.tick() => match bus.renew_lease(&mut lease).await {
                        Ok(()) => {}
                        Err(LeaseError::Lost { .. }) => {
                            tracing::error!(call.id = %lease.call_id, "lease lost to another worker; letting go of the call");
                            lost2.cancel();
                            return None;
                        }
                        Err(e) => tracing::warn!(call.id = %lease.call_id, error = %e, "lease renewal failed; will retry"),
                    },
                }
            }
        });
        Self { lost, stop, task }
    }

    /// Stop and hand back the lease, or `None` if it was lost.
    pub async fn stop(self) -> Option<Lease> {
        self.stop.cancel();
        self.task.await.ok().flatten()
    }
}
