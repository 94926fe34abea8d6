//! The dead-letter stream for operators: listing and replaying (`callfleet dlq`).

use async_nats::HeaderMap;
use bytes::Bytes;
use callfleet_domain::subjects as s;

use crate::{Bus, BusError};

/// One dead letter as stored.
pub struct DeadLetter {
    pub seq: u64,
    /// When it was dead-lettered, RFC 3339.
    pub time: String,
    /// Its subject in the dead-letter stream (`calls.dlq.<call_id>`, `webhooks.dlq.<id>`).
    pub subject: String,
    /// The subject it was first published on.
    pub original_subject: String,
    pub reason: String,
    pub payload: Bytes,
}

/// Why a dead letter was not replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no dead letter {0}")]
    NotFound(u64, #[source] BusError),
    #[error(
        "dead letter {seq} came from {original:?}; only jobs and webhook deliveries can be replayed"
    )]
    NotReplayable { seq: u64, original: String },
    #[error(transparent)]
    Bus(#[from] BusError),
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default()
}

impl Bus {
    /// How many dead letters there are, and the last `limit` of them (oldest first).
    pub async fn dead_letters(&self, limit: u64) -> Result<(u64, Vec<DeadLetter>), BusError> {
        let mut stream = self
            .js
            .get_stream(s::DLQ_STREAM)
            .await
            .map_err(|e| BusError::js("open CALL_DLQ", e))?;
        let info = stream
            .info()
            .await
            .map_err(|e| BusError::js("read CALL_DLQ", e))?
            .clone();
        let first = info.state.first_sequence.max(
            info.state
                .last_sequence
                .saturating_sub(limit.saturating_sub(1)),
        );
        let mut out = Vec::new();
        for seq in first..=info.state.last_sequence {
            if let Ok(letter) = self.dead_letter_at(seq).await {
                out.push(letter);
            }
        }
        Ok((info.state.messages, out))
    }

    /// The dead letter at `seq`.
    pub async fn dead_letter_at(&self, seq: u64) -> Result<DeadLetter, BusError> {
        let stream = self
            .js
            .get_stream_no_info(s::DLQ_STREAM)
            .await
            .map_err(|e| BusError::js("open CALL_DLQ", e))?;
        let msg = stream
            .get_raw_message(seq)
            .await
            .map_err(|e| BusError::js("get dead letter", e))?;
        Ok(DeadLetter {
            seq,
            time: msg.time.to_string(),
            original_subject: header(&msg.headers, s::DLQ_SUBJECT_HEADER),
            reason: header(&msg.headers, s::DLQ_REASON_HEADER),
            subject: msg.subject.to_string(),
            payload: msg.payload,
        })
    }

    /// Put a dead-lettered job or delivery back on its original subject as a new generation
    /// (forgetting a job's failed call state first), then remove the dead letter. Returns the
    /// subject it went back onto.
    pub async fn replay_dead_letter(&self, seq: u64) -> Result<String, ReplayError> {
        let letter = self
            .dead_letter_at(seq)
            .await
            .map_err(|e| ReplayError::NotFound(seq, e))?;
        let original = letter.original_subject;
        if !original.starts_with("calls.dispatch.") && !original.starts_with("webhooks.deliver.") {
            return Err(ReplayError::NotReplayable { seq, original });
        }
        if let Some(call_id) = letter.subject.strip_prefix("calls.dlq.") {
            self.calls.delete(call_id).await.ok();
        }
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("replay.{seq}").as_str());
        // A new generation: the replay's events are not deduplicated against the first run's.
        headers.insert(s::GENERATION_HEADER, seq.to_string().as_str());
        self.js
            .publish_with_headers(original.clone(), headers, letter.payload)
            .await
            .map_err(|e| BusError::js("replay publish", e))?
            .await
            .map_err(|e| BusError::js("replay publish ack", e))?;
        let stream = self
            .js
            .get_stream_no_info(s::DLQ_STREAM)
            .await
            .map_err(|e| BusError::js("open CALL_DLQ", e))?;
        stream
            .delete_message(seq)
            .await
            .map_err(|e| BusError::js("remove the replayed dead letter", e))?;
        Ok(original)
    }
}
