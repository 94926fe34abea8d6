//! The one consume loop. Roles never see a JetStream message or an ack: they pull
//! [`Delivery`]s from a [`Consumer`] (or a [`Sources`] set of them), and their handler returns
//! an [`Outcome`]; [`Bus::settle`] is the one function that turns an outcome into an ack, a
//! NAK with delay, a scheduled follow-up or a dead letter. An ack that fails is logged with its
//! subject and counted (`callfleet_bus_ack_failures_total`, see [`crate::metrics`]).
//!
//! [`consume`] is the loop itself: it waits for a free slot, fetches at most the free slots,
//! runs the handler of each delivery in its own task and settles what it returns.

mod delivery;
mod outcome;
mod slots;
mod sources;

use std::future::Future;

use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use delivery::Delivery;
pub use outcome::{Outcome, Outgoing, backoff};
pub use slots::Slots;
pub use sources::{Consumer, Sources};

use crate::Bus;

/// Pull from `sources` until `shutdown`, never holding more than `slots.total()` deliveries at
/// once; each delivery's handler runs in its own task and its outcome is settled, and `slots`
/// counts it busy meanwhile. Returns the tracker of the handlers still running (closed), for
/// the role to drain as it sees fit.
pub async fn consume<H, Fut>(
    bus: &Bus,
    sources: &mut Sources,
    slots: &Slots,
    shutdown: &CancellationToken,
    handler: H,
) -> TaskTracker
where
    H: Fn(Delivery) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let permits_of = slots.permits.clone();
    let tracker = TaskTracker::new();
    while !shutdown.is_cancelled() {
        // Wait for one free slot, then take every other free one: that is the batch size.
        let first = tokio::select! {
            permit = permits_of.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
            () = shutdown.cancelled() => break,
        };
        let mut permits = vec![first];
        while let Ok(p) = permits_of.clone().try_acquire_owned() {
            permits.push(p);
        }
        sources.refresh(bus).await;
        let deliveries = tokio::select! {
            d = sources.fetch(permits.len()) => d,
            () = shutdown.cancelled() => Vec::new(),
        };
        if deliveries.is_empty() && sources.failed() {
            tokio::select! {
                () = tokio::time::sleep(backoff::MOMENT) => {}
                () = shutdown.cancelled() => {}
            }
        }
        for delivery in deliveries {
            let Some(permit) = permits.pop().filter(|_| !shutdown.is_cancelled()) else {
                // Shutting down (or, never, more messages than slots): hand it back.
                bus.settle(
                    &delivery,
                    Outcome::Retry {
                        after: backoff::NOW,
                        reason: "shutting down".into(),
                    },
                )
                .await;
                continue;
            };
            let (bus, handler) = (bus.clone(), handler.clone());
            let busy = slots.occupy();
            tracker.spawn(async move {
                let outcome = handler(delivery.clone()).await;
                bus.settle(&delivery, outcome).await;
                drop(busy);
                drop(permit);
            });
        }
        drop(permits);
    }
    tracker.close();
    tracker
}
