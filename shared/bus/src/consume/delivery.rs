//! A message as a role sees it: read-only, plus the `+WPI` keepalive.

use std::sync::Arc;

use async_nats::{
    HeaderMap,
    jetstream::{AckKind, Message},
};
use bytes::Bytes;
use jiff::Timestamp;

use crate::metrics;

/// One message pulled from a consumer. Cheap to clone (shared); only [`crate::Bus::settle`]
/// acknowledges it.
#[derive(Clone)]
pub struct Delivery {
    msg: Arc<Message>,
}

impl Delivery {
    pub(crate) fn new(msg: Message) -> Self {
        Self { msg: Arc::new(msg) }
    }

    pub fn subject(&self) -> &str {
        &self.msg.subject
    }

    pub fn payload(&self) -> &Bytes {
        &self.msg.payload
    }

    pub fn headers(&self) -> Option<&HeaderMap> {
        self.msg.headers.as_ref()
    }

    /// One header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.msg.headers.as_ref()?.get(name).map(|v| v.as_str())
    }

    /// How many times this message was delivered, this time included (1 when unknown).
    pub fn delivered(&self) -> i64 {
        self.msg.info().map(|i| i.delivered).unwrap_or(1)
    }

    /// The message's sequence in its stream.
    pub fn stream_sequence(&self) -> Option<u64> {
        self.msg.info().ok().map(|i| i.stream_sequence)
    }

    /// When the message was stored in its stream.
    pub fn published(&self) -> Option<Timestamp> {
        let info = self.msg.info().ok()?;
        Timestamp::from_nanosecond(info.published.unix_timestamp_nanos()).ok()
    }

    /// Tell the server the message is still being worked on (`+WPI`): its ack_wait restarts.
    pub async fn in_progress(&self) {
        self.ack_with(AckKind::Progress, "in progress").await;
    }

    /// Send one acknowledgement; a failure is logged with the subject and counted.
    pub(crate) async fn ack_with(&self, kind: AckKind, what: &'static str) -> bool {
        match self.msg.ack_with(kind).await {
            Ok(()) => true,
            Err(e) => {
                metrics::ack_failed();
                tracing::warn!(subject = %self.msg.subject, ack = what, error = %e, "acknowledgement failed; the message will be redelivered");
                false
            }
        }
    }
}
