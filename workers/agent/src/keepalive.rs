//! While an attempt lives: `+WPI` every ack_wait/3 and a lease renewal every lease_ttl/3.
//! A renewal that finds someone else's revision cancels `lost`: the call is no longer ours.

use std::sync::{Arc, Mutex};

use callfleet_bus::{Delivery, Lease, LeaseError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Worker;

pub struct Keepalive {
    pub lost: CancellationToken,
    stop: CancellationToken,
    task: JoinHandle<Option<Lease>>,
    /// The callee's number while this call holds its lock (renewed with the lease).
    number: Arc<Mutex<Option<(String, String)>>>,
}

impl Keepalive {
    pub fn start(worker: &Worker, msg: Delivery, mut lease: Lease) -> Self {
        let lost = CancellationToken::new();
        let stop = CancellationToken::new();
        let ack_every = worker.config.agent.ack_wait() / 3;
        let renew_every = worker.config.agent.lease_ttl() / 3;
        let bus = worker.bus.clone();
        let (lost2, stop2) = (lost.clone(), stop.clone());
        let number: Arc<Mutex<Option<(String, String)>>> = Arc::default();
        let number2 = number.clone();
        let task = tokio::spawn(async move {
            let mut ack_tick =
                tokio::time::interval_at(tokio::time::Instant::now() + ack_every, ack_every);
            let mut renew_tick =
                tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
            loop {
                tokio::select! {
                    () = stop2.cancelled() => return Some(lease),
                    // A failure is logged with the subject and counted by the bus.
                    _ = ack_tick.tick() => msg.in_progress().await,
                    _ = renew_tick.tick() => match bus.renew_lease(&mut lease).await {
                        Ok(()) => {
                            let held = number2.lock().ok().and_then(|n| n.clone());
                            if let Some((e164, call_id)) = held
                                && let Err(e) = bus.renew_number(&e164, &call_id).await
                            {
                                tracing::warn!(call.id = %call_id, error = %e, "number lock renewal failed; will retry");
                            }
                        }
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
        Self {
            lost,
            stop,
            task,
            number,
        }
    }

    /// Keep `e164` locked for `call_id` while the attempt lives.
    pub fn hold_number(&self, e164: String, call_id: String) {
        if let Ok(mut n) = self.number.lock() {
            *n = Some((e164, call_id));
        }
    }

    /// The number this attempt holds, if any.
    pub fn held_number(&self) -> Option<String> {
        self.number
            .lock()
            .ok()
            .and_then(|n| n.as_ref().map(|(e, _)| e.clone()))
    }

    /// Stop and hand back the lease, or `None` if it was lost.
    pub async fn stop(self) -> Option<Lease> {
        self.stop.cancel();
        self.task.await.ok().flatten()
    }
}
