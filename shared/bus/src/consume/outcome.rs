//! What a handler decided about a delivery, and [`Bus::settle`], the one place that carries
//! it out on JetStream.

use std::{borrow::Cow, time::Duration};

use async_nats::{HeaderMap, jetstream::AckKind};
use bytes::Bytes;
use jiff::Timestamp;

use super::Delivery;
use crate::{Bus, BusError, publish::schedule_headers};

/// The short back-off delays of every role, named once.
pub mod backoff {
    use std::time::Duration;

    /// Hand the message straight back (shutting down, or another instance should take it).
    pub const NOW: Duration = Duration::ZERO;
    /// A pass over a batch could not tally a message: try it again in a moment.
    pub const MOMENT: Duration = Duration::from_secs(1);
    /// A read or a lease the handler needed failed (NATS restarting, a KV leader moving).
    pub const TRANSIENT: Duration = Duration::from_secs(2);
    /// A check says "not yet" (a paused campaign) or a store it needs cannot be read.
    pub const CHECK_AGAIN: Duration = Duration::from_secs(2);
    /// A peer the handler needs (LiveKit, while a lost call is reconciled) does not answer yet.
    pub const PEER_UNREACHABLE: Duration = Duration::from_secs(5);
    /// The follow-up write (scheduled copy, dead letter) failed: JetStream is struggling.
    pub const WRITE_FAILED: Duration = Duration::from_secs(5);
    /// A message that keeps failing to be dead-lettered after its delivery budget.
    pub const STUCK: Duration = Duration::from_secs(60);
    /// The longest NAK delay used when a computed schedule could not be written.
    pub const MAX: Duration = Duration::from_secs(30);
}

/// A message to publish as a follow-up of a delivery (a scheduled copy, a retry).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub(crate) subject: String,
    pub(crate) headers: HeaderMap,
    pub(crate) payload: Bytes,
}

impl Outgoing {
    /// A message on `subject`, deduplicated by `msg_id`.
    pub fn new(subject: impl Into<String>, msg_id: &str, payload: impl Into<Bytes>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id);
        Self {
            subject: subject.into(),
            headers,
            payload: payload.into(),
        }
    }

    /// Make it a JetStream scheduled message: it waits on its subject and moves onto `target`
    /// at `at` (rounded up to the second).
    #[must_use]
    pub fn scheduled(mut self, at: Timestamp, target: &str) -> Self {
        schedule_headers(&mut self.headers, at, target);
        self
    }

    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name, value);
        self
    }

    pub(crate) fn from_parts(subject: String, headers: HeaderMap, payload: Bytes) -> Self {
        Self {
            subject,
            headers,
            payload,
        }
    }
}

/// What to do with a delivery once its handler is done.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Done: acknowledge.
    Ack,
    /// Not now: NAK, redelivered after `after` (zero: at once). Spends a delivery.
    Retry {
        after: Duration,
        reason: Cow<'static, str>,
    },
    /// Publish `message` (a scheduled copy, a follow-up), then acknowledge. If the publish
    /// fails the delivery is NAKed with `retry_after` instead, so nothing is lost.
    Schedule {
        message: Box<Outgoing>,
        retry_after: Duration,
    },
    /// Copy to the dead-letter stream on `dlq_subject` with `reason` (original headers kept;
    /// `payload` replaces the original body when given), then terminate. If the copy cannot
    /// be written the delivery is NAKed after [`backoff::WRITE_FAILED`]: never dropped.
    Dead {
        dlq_subject: String,
        reason: String,
        payload: Option<Bytes>,
    },
    /// Do nothing: the message is someone else's now (its lease was taken over) and comes back
    /// after its ack_wait if nobody acks it.
    Leave,
}

impl Outcome {
    /// NAK with a delay.
    pub fn retry(after: Duration, reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Retry {
            after,
            reason: reason.into(),
        }
    }

    /// Dead-letter the delivery as it came.
    pub fn dead(dlq_subject: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Dead {
            dlq_subject: dlq_subject.into(),
            reason: reason.into(),
            payload: None,
        }
    }

    /// Publish `message`, then ack; NAK after `retry_after` if the publish fails.
    pub fn schedule(message: Outgoing, retry_after: Duration) -> Self {
        Self::Schedule {
            message: Box::new(message),
            retry_after,
        }
    }
}

impl Bus {
    /// The one mapping from an outcome onto JetStream. Returns whether the outcome was carried
    /// out as decided (false: a write failed and the delivery was NAKed, or an ack failed).
    pub async fn settle(&self, delivery: &Delivery, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Ack => delivery.ack_with(AckKind::Ack, "ack").await,
            Outcome::Retry { after, reason } => {
                tracing::debug!(subject = delivery.subject(), retry_in_ms = after.as_millis() as u64, %reason, "redelivering");
                nak(delivery, after).await
            }
            Outcome::Schedule {
                message,
                retry_after,
            } => {
                let Outgoing {
                    subject,
                    headers,
                    payload,
                } = *message;
                match self.publish_raw(subject, headers, payload).await {
                    Ok(_) => delivery.ack_with(AckKind::Ack, "ack").await,
                    Err(e) => {
                        tracing::warn!(subject = delivery.subject(), error = %e, retry_in_ms = retry_after.as_millis() as u64, "cannot publish the follow-up; redelivering");
                        nak(delivery, retry_after).await;
                        false
                    }
                }
            }
            Outcome::Dead {
                dlq_subject,
                reason,
                payload,
            } => {
                let copied = self
                    .dead_letter_delivery(delivery, dlq_subject, &reason, payload)
                    .await;
                match copied {
                    Ok(()) => delivery.ack_with(AckKind::Term, "term").await,
                    Err(e) => {
                        tracing::error!(subject = delivery.subject(), error = %e, "cannot dead-letter; redelivering");
                        nak(delivery, backoff::WRITE_FAILED).await;
                        false
                    }
                }
            }
            Outcome::Leave => true,
        }
    }

    /// Copy a delivery to the dead-letter stream (see [`Bus::dead_letter`]); `payload`
    /// replaces its body when given. The write [`Outcome::Dead`] makes; a handler that must
    /// publish something only once the copy exists calls it itself.
    pub async fn dead_letter_delivery(
        &self,
        delivery: &Delivery,
        dlq_subject: String,
        reason: &str,
        payload: Option<Bytes>,
    ) -> Result<(), BusError> {
        self.dead_letter(
            dlq_subject,
            delivery.subject(),
            reason,
            delivery.headers().cloned().unwrap_or_default(),
            payload.unwrap_or_else(|| delivery.payload().clone()),
        )
        .await
    }
}

async fn nak(delivery: &Delivery, after: Duration) -> bool {
    let delay = (!after.is_zero()).then_some(after);
    delivery.ack_with(AckKind::Nak(delay), "nak").await
}
