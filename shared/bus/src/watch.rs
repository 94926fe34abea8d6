//! Watching calls end, for a console: `callfleet dev` prints each call's conversation as it
//! ends, so a newcomer without a webhook receiver still sees what was said.
//!
//! A plain subscription on the events' subjects (the `CALL_EVENTS` stream stores the same
//! messages for the notifier): nothing is acked or kept, and a watcher that is not running
//! misses nothing that matters, because the summaries stay in the stream.

use callfleet_domain::{event::CallEvent, subjects, summary::CallSummary};
use futures::{Stream, StreamExt};

use crate::{Bus, BusError};

impl Bus {
    /// Every call summary published from now on (the `ended` and `failed` events).
    pub async fn watch_summaries(
        &self,
    ) -> Result<impl Stream<Item = CallSummary> + use<>, BusError> {
        let sub = self
            .client
            .subscribe(subjects::EVENTS_ALL)
            .await
            .map_err(|e| BusError::js("subscribe to call events", e))?;
        Ok(sub.filter_map(|m| async move {
            let event: CallEvent = serde_json::from_slice(&m.payload).ok()?;
            event.kind.is_final().then_some(event.summary).flatten()
        }))
    }
}
