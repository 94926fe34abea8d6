//! Campaign storage on NATS: records in KV, per-campaign consumers (made, paused, deleted),
//! contacts enqueued in pipelined batches, tallies counted by the server per subject, and the
//! do-not-call list. Number locks and the feeder's lease are in [`crate::lease`].

use std::collections::BTreeMap;

use async_nats::{HeaderMap, jetstream::kv};
use callfleet_domain::{
    campaign::{CampaignRecord, Contact},
    subjects as s,
};

use crate::{
    Bus, BusError,
    consume::{Consumer, Delivery, Outgoing},
    topology,
};

/// How many contact publishes are in flight before their acks are awaited.
const PIPELINE: usize = 512;

/// The key of a number in `dnc` and `number_locks`: its E.164 digits.
pub fn number_key(e164: &str) -> String {
    e164.trim_start_matches('+').to_owned()
}

/// A waiting contact released to the workers on `calls.campaign.<id>`, keeping its call
/// headers; deduplicated by the contact message's sequence.
pub fn released_contact(campaign: &str, contact: &Delivery) -> Outgoing {
    let seq = contact.stream_sequence().unwrap_or(0);
    let mut message = Outgoing::new(
        s::campaign_jobs(campaign),
        &format!("{campaign}.rel.{seq}"),
        contact.payload().clone(),
    );
    for name in [
        s::ATTEMPT_HEADER,
        s::INFRA_RETRIES_HEADER,
        s::GENERATION_HEADER,
        s::TIMEZONE_HEADER,
    ] {
        if let Some(v) = contact.header(name) {
            message = message.header(name, v);
        }
    }
    message
}

impl Bus {
    pub async fn campaign(&self, id: &str) -> Result<Option<(CampaignRecord, u64)>, BusError> {
        match self
            .campaigns
            .entry(id)
            .await
            .map_err(|e| BusError::js("kv get campaign", e))?
        {
            Some(e) if e.operation == kv::Operation::Put => {
                let record =
                    serde_json::from_slice(&e.value).map_err(|source| BusError::Corrupt {
                        key: id.to_owned(),
                        source,
                    })?;
                Ok(Some((record, e.revision)))
            }
            _ => Ok(None),
        }
    }

    /// Create a campaign: its record (fails if the id exists) and its two consumers.
    pub async fn create_campaign(
        &self,
        record: &CampaignRecord,
        cfg: &callfleet_config::Config,
    ) -> Result<bool, BusError> {
        let body = serde_json::to_vec(record).map_err(|e| BusError::js("encode campaign", e))?;
        match self.campaigns.create(&record.spec.id, body.into()).await {
            Ok(_) => {}
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(BusError::js("kv create campaign", e)),
        }
        let id = &record.spec.id;
        for (stream, consumer) in [
            (
                s::JOBS_STREAM,
                topology::campaign_consumer(cfg, id, record.spec.max_concurrent_calls),
            ),
            (s::CONTACTS_STREAM, topology::feeder_consumer(id)),
            (s::CONTACTS_STREAM, topology::waiting_consumer(id)),
        ] {
            self.js
                .get_stream(stream)
                .await
                .map_err(|e| BusError::js("get stream", e))?
                .create_consumer(consumer)
                .await
                .map_err(|e| BusError::js("create campaign consumer", e))?;
        }
        Ok(true)
    }

    /// Write a campaign record at `revision` (optimistic concurrency).
    pub async fn update_campaign(
        &self,
        record: &CampaignRecord,
        revision: u64,
    ) -> Result<u64, BusError> {
        let body = serde_json::to_vec(record).map_err(|e| BusError::js("encode campaign", e))?;
        self.campaigns
            .update(&record.spec.id, body.into(), revision)
            .await
            .map_err(|e| BusError::js("kv update campaign", e))
    }

    /// Enqueue contacts for the campaigner, pipelined. Returns how many JetStream saw as
    /// duplicates (the same number already enqueued within the dedup window).
    pub async fn enqueue_contacts(
        &self,
        campaign: &str,
        contacts: &[Contact],
    ) -> Result<u64, BusError> {
        let mut duplicates = 0;
        for chunk in contacts.chunks(PIPELINE) {
            let mut acks = Vec::with_capacity(chunk.len());
            for c in chunk {
                let mut headers = HeaderMap::new();
                let key = number_key(&c.request.destination.to_string());
                headers.insert("Nats-Msg-Id", format!("{campaign}.n{key}").as_str());
                if let Some(tz) = &c.timezone {
                    headers.insert(s::TIMEZONE_HEADER, tz.as_str());
                }
                let body = serde_json::to_vec(&c.request)
                    .map_err(|e| BusError::js("encode contact", e))?;
                let ack = self
                    .js
                    .publish_with_headers(s::contacts(campaign), headers, body.into())
                    .await
                    .map_err(|e| BusError::js("publish contact", e))?;
                acks.push(ack);
            }
            for ack in acks {
                if ack
                    .await
                    .map_err(|e| BusError::js("contact ack", e))?
                    .duplicate
                {
                    duplicates += 1;
                }
            }
        }
        Ok(duplicates)
    }

    /// (messages not yet delivered, delivered and not acknowledged) of a consumer, in one
    /// request.
    async fn consumer_load(&self, stream: &str, consumer: &str) -> Result<(u64, u64), BusError> {
        let stream = self
            .js
            .get_stream_no_info(stream)
            .await
            .map_err(|e| BusError::js("get stream", e))?;
        let info = stream
            .consumer_info(consumer)
            .await
            .map_err(|e| BusError::js("consumer info", e))?;
        Ok((info.num_pending, info.num_ack_pending as u64))
    }

    /// Contacts of a campaign waiting: (not yet released, waiting for a window or a retry).
    /// Read from consumer counters, so it costs the same for ten contacts or a million.
    pub async fn waiting(&self, campaign: &str) -> Result<(u64, u64), BusError> {
        let (q, qa) = self
            .consumer_load(s::CONTACTS_STREAM, &s::feeder_consumer(campaign))
            .await?;
        let (w, wa) = self
            .consumer_load(s::CONTACTS_STREAM, &s::waiting_consumer(campaign))
            .await?;
        Ok((q + qa, w + wa))
    }

    /// A campaign's released jobs: (waiting for a worker, live calls).
    pub async fn released(&self, campaign: &str) -> Result<(u64, u64), BusError> {
        self.consumer_load(s::JOBS_STREAM, &s::campaign_consumer(campaign))
            .await
    }

    /// Publish a campaign event (`campaigns.events.<id>.<kind>`), once per `event_id`.
    pub async fn publish_campaign_event(
        &self,
        campaign: &str,
        kind: &str,
        event_id: &str,
        body: &serde_json::Value,
    ) -> Result<(), BusError> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event_id);
        self.publish_raw(
            s::campaign_event(campaign, kind),
            headers,
            body.to_string().into(),
        )
        .await?;
        Ok(())
    }

    /// Count one finished contact (or one dial) of a campaign, once per `msg_id`.
    pub async fn tally(&self, campaign: &str, what: &str, msg_id: &str) -> Result<(), BusError> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id);
        self.publish_raw(s::tally(campaign, what), headers, bytes::Bytes::new())
            .await?;
        Ok(())
    }

    /// Messages per subject under `filter` in `stream` (the server counts them).
    pub async fn subject_counts(
        &self,
        stream: &str,
        filter: &str,
    ) -> Result<BTreeMap<String, u64>, BusError> {
        use futures::TryStreamExt;
        let handle = self
            .js
            .get_stream(stream)
            .await
            .map_err(|e| BusError::js("get stream", e))?;
        let info = handle
            .info_with_subjects(filter)
            .await
            .map_err(|e| BusError::js("stream subjects", e))?;
        let counts: Vec<(String, usize)> = info
            .try_collect()
            .await
            .map_err(|e| BusError::js("stream subjects", e))?;
        Ok(counts.into_iter().map(|(k, v)| (k, v as u64)).collect())
    }

    pub async fn is_dnc(&self, e164: &str) -> Result<bool, BusError> {
        self.dnc
            .get(number_key(e164))
            .await
            .map(|v| v.is_some())
            .map_err(|e| BusError::js("kv get dnc", e))
    }

    pub async fn add_dnc(&self, e164: &str) -> Result<(), BusError> {
        let at = jiff::Timestamp::now().to_string();
        self.dnc
            .put(number_key(e164), at.into())
            .await
            .map(|_| ())
            .map_err(|e| BusError::js("kv put dnc", e))
    }

    pub async fn remove_dnc(&self, e164: &str) -> Result<(), BusError> {
        self.dnc
            .purge(number_key(e164))
            .await
            .map_err(|e| BusError::js("kv purge dnc", e))
    }

    /// The ids of every stored campaign.
    pub async fn campaign_ids(&self) -> Result<Vec<String>, BusError> {
        use futures::StreamExt;
        let mut keys = self
            .campaigns
            .keys()
            .await
            .map_err(|e| BusError::js("kv list campaigns", e))?;
        let mut ids = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| BusError::js("kv list campaigns", e))?;
            // `<id>.lease` and the like are not campaigns.
            if !key.contains('.') {
                ids.push(key);
            }
        }
        Ok(ids)
    }

    /// The campaigner's consumer of a campaign's waiting contacts.
    pub async fn feeder_consumer(&self, campaign: &str) -> Result<Consumer, BusError> {
        self.consumer(s::CONTACTS_STREAM, &s::feeder_consumer(campaign))
            .await
    }

    /// Pause (for a year, i.e. until resumed) or resume a campaign's `campaign-<id>` consumer,
    /// so jobs already released wait too.
    pub async fn pause_campaign_jobs(&self, campaign: &str, paused: bool) -> Result<(), BusError> {
        let stream = self
            .js
            .get_stream(s::JOBS_STREAM)
            .await
            .map_err(|e| BusError::js("get stream", e))?;
        let consumer = s::campaign_consumer(campaign);
        if paused {
            let until = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 365);
            let until = time::OffsetDateTime::from_unix_timestamp(until.as_second())
                .unwrap_or(time::OffsetDateTime::now_utc());
            stream
                .pause_consumer(&consumer, until)
                .await
                .map(|_| ())
                .map_err(|e| BusError::js("pause consumer", e))
        } else {
            stream
                .resume_consumer(&consumer)
                .await
                .map(|_| ())
                .map_err(|e| BusError::js("resume consumer", e))
        }
    }

    /// Drop every contact of a campaign waiting for a window or a retry.
    pub async fn purge_contact_schedules(&self, campaign: &str) -> Result<u64, BusError> {
        let stream = self
            .js
            .get_stream(s::CONTACTS_STREAM)
            .await
            .map_err(|e| BusError::js("get stream", e))?;
        stream
            .purge()
            .filter(format!("campaigns.schedule.{campaign}.>"))
            .await
            .map(|r| r.purged)
            .map_err(|e| BusError::js("purge contact schedules", e))
    }

    /// Delete a finished campaign's consumers (`campaign-<id>`, `feeder-<id>`, `waiting-<id>`).
    /// Best effort: a consumer already gone is fine.
    pub async fn delete_campaign_consumers(&self, campaign: &str) {
        for (stream, consumer) in [
            (s::JOBS_STREAM, s::campaign_consumer(campaign)),
            (s::CONTACTS_STREAM, s::feeder_consumer(campaign)),
            (s::CONTACTS_STREAM, s::waiting_consumer(campaign)),
        ] {
            if let Err(e) = self.js.delete_consumer_from_stream(&consumer, stream).await {
                tracing::debug!(campaign, consumer, error = %e, "consumer not deleted");
            }
        }
    }
}
