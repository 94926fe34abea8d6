//! Typed publishing: jobs, scheduled jobs, events and dead letters. Every publish waits for the
//! JetStream acknowledgement under `nats.publish_timeout_ms`; a disconnected client gets that long
//! to reconnect (to another node of a cluster) before the publish is refused, and nothing is
//! handed to it before it is connected (so nothing is buffered behind an answer of 503).

use async_nats::{HeaderMap, jetstream::context::PublishAckFuture, jetstream::publish::PublishAck};
use bytes::Bytes;
use callfleet_domain::{CallEvent, CallRequest, inbound::InboundJob, subjects as s};
use jiff::Timestamp;

use crate::{Bus, BusError, Outgoing};

/// Where a job waits when it is not due yet.
#[derive(Debug, Clone)]
pub struct Scheduled {
    pub at: Timestamp,
    pub attempt: u32,
    pub infra_retries: u32,
    /// Non-zero for a job replayed from the dead-letter stream (`Callfleet-Generation`).
    pub generation: u32,
    /// A campaign contact: it waits in `CAMPAIGN_CONTACTS` and goes back through the
    /// campaigner (pace, calling window), with its time zone.
    pub campaign_contact: Option<Option<String>>,
}

/// Headers that make a message a JetStream scheduled message: moved onto `target` at `at`
/// (rounded up to the second, so it never fires early).
pub(crate) fn schedule_headers(headers: &mut HeaderMap, at: Timestamp, target: &str) {
    let at = at
        .round(
            jiff::TimestampRound::new()
                .smallest(jiff::Unit::Second)
                .mode(jiff::RoundMode::Ceil),
        )
        .unwrap_or(at);
    headers.insert("Nats-Schedule", format!("@at {at}").as_str());
    headers.insert("Nats-Schedule-Target", target);
}

impl Bus {
    pub(crate) async fn publish_raw(
        &self,
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<PublishAck, BusError> {
        let deadline = tokio::time::Instant::now() + self.publish_timeout;
        if !self.connected_by(deadline).await {
            return Err(BusError::Disconnected);
        }
        let fut = async {
            let ack: PublishAckFuture = self
                .js
                .publish_with_headers(subject, headers, payload)
                .await
                .map_err(|e| BusError::js("publish", e))?;
            ack.await.map_err(|e| BusError::js("publish ack", e))
        };
        tokio::time::timeout_at(deadline, fut)
            .await
            .map_err(|_| BusError::Timeout(self.publish_timeout))?
    }

    /// Whether the client is connected, or gets connected before `deadline`: a client whose
    /// node died or went silent reconnects to another node of the cluster within moments, and
    /// a publish waits for that rather than fail while the cluster has a quorum. Nothing is
    /// handed to the client before it is connected, so nothing is buffered behind a refusal.
    pub(crate) async fn connected_by(&self, deadline: tokio::time::Instant) -> bool {
        const POLL: std::time::Duration = std::time::Duration::from_millis(20);
        loop {
            if self.is_connected() {
                return true;
            }
            if tokio::time::Instant::now() + POLL > deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Publish a message built by a role (a webhook delivery, say). Returns whether JetStream
    /// saw it as a duplicate.
    pub async fn publish(&self, message: Outgoing) -> Result<bool, BusError> {
        let Outgoing {
            subject,
            headers,
            payload,
        } = message;
        Ok(self.publish_raw(subject, headers, payload).await?.duplicate)
    }

    /// Publish a validated request on `calls.dispatch.<campaign>`, deduplicated by call id.
    /// Returns whether JetStream saw it as a duplicate.
    pub async fn publish_job(&self, req: &CallRequest) -> Result<bool, BusError> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", req.call_id.as_str());
        let body = serde_json::to_vec(req).map_err(|e| BusError::js("encode job", e))?;
        let ack = self
            .publish_raw(s::dispatch(&req.campaign), headers, body.into())
            .await?;
        Ok(ack.duplicate)
    }

    /// Publish an inbound job (a LiveKit dispatch without a destination) on
    /// `calls.dispatch.<campaign>`, deduplicated by call id. Returns whether it was a duplicate.
    pub async fn publish_inbound(&self, job: &InboundJob) -> Result<bool, BusError> {
        let body = serde_json::to_vec(job).map_err(|e| BusError::js("encode job", e))?;
        self.publish_dispatch_payload(&job.campaign, &job.call_id, body)
            .await
    }

    /// Schedule an inbound job's busy check for its `answer_by`: JetStream moves it onto
    /// `calls.overflow.<call_id>` then, for whichever dispatcher pulls it.
    pub async fn schedule_busy_check(&self, job: &InboundJob) -> Result<(), BusError> {
        let Some(at) = job.answer_by else {
            return Ok(());
        };
        let mut headers = HeaderMap::new();
        schedule_headers(&mut headers, at, &s::overflow(&job.call_id));
        headers.insert("Nats-Msg-Id", format!("{}.busy", job.call_id).as_str());
        let body = serde_json::to_vec(job).map_err(|e| BusError::js("encode job", e))?;
        self.publish_raw(s::busy_schedule(&job.call_id), headers, body.into())
            .await?;
        Ok(())
    }

    /// Publish a dispatch payload as given (a LiveKit dispatch's metadata, unvalidated: the
    /// worker validates it and dead-letters it with its reasons, so nothing is lost) on
    /// `calls.dispatch.<campaign>`, deduplicated by `call_id`.
    pub async fn publish_dispatch_payload(
        &self,
        campaign: &str,
        call_id: &str,
        body: Vec<u8>,
    ) -> Result<bool, BusError> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", call_id);
        let ack = self
            .publish_raw(s::dispatch(campaign), headers, body.into())
            .await?;
        Ok(ack.duplicate)
    }

    /// Put a job on `calls.schedule.<call_id>`; JetStream moves it to the dispatch subject at
    /// `when.at` (nats-server ≥ 2.12 message scheduling). It holds no worker or ack slot meanwhile.
    pub async fn schedule_job(&self, req: &CallRequest, when: Scheduled) -> Result<(), BusError> {
        self.publish(scheduled_job(req, &when)?).await?;
        Ok(())
    }

    /// Publish an event on `calls.events.<call_id>.<kind>`, deduplicated by its event id.
    pub async fn publish_event(&self, event: &CallEvent) -> Result<(), BusError> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.event_id.as_str());
        let body = serde_json::to_vec(event).map_err(|e| BusError::js("encode event", e))?;
        self.publish_raw(
            s::event(&event.call_id, event.kind.as_str()),
            headers,
            body.into(),
        )
        .await?;
        Ok(())
    }

    /// Move a message to the dead-letter stream with its reason and original subject. The
    /// publisher's `Nats-Msg-Id` is kept in `Callfleet-Publisher-Msg-Id`. A payload too large to
    /// fit beside the headers under the server's `max_payload` is cut to fit, and
    /// `Callfleet-Dlq-Truncated` gives its original size: a poison message always gets in.
    pub async fn dead_letter(
        &self,
        dlq_subject: String,
        original_subject: &str,
        reason: &str,
        original: HeaderMap,
        payload: Bytes,
    ) -> Result<(), BusError> {
        let max_payload = self.client.server_info().max_payload;
        let (headers, payload) = dead_letter_message(
            &dlq_subject,
            original_subject,
            reason,
            &original,
            payload,
            max_payload,
        );
        self.publish_raw(dlq_subject, headers, payload).await?;
        Ok(())
    }
}

/// A job waiting until `when.at`: on `calls.schedule.<call_id>` (moved onto its dispatch
/// subject), or for a campaign contact on `campaigns.schedule.<id>.<call_id>` (moved back to
/// the campaigner), deduplicated by attempt, retries and due time.
pub fn scheduled_job(req: &CallRequest, when: &Scheduled) -> Result<Outgoing, BusError> {
    let mut headers = HeaderMap::new();
    let (subject, target) = match &when.campaign_contact {
        Some(tz) => {
            if let Some(tz) = tz {
                headers.insert(s::TIMEZONE_HEADER, tz.as_str());
            }
            (
                s::contact_schedule(&req.campaign, &req.call_id),
                s::contacts(&req.campaign),
            )
        }
        None => (s::schedule(&req.call_id), s::dispatch(&req.campaign)),
    };
    schedule_headers(&mut headers, when.at, &target);
    // The due time is part of the id: a contact rescheduled for its window after a retry
    // of the same attempt must not be deduplicated away.
    let mut msg_id = format!(
        "{}.sched.{}.{}.{}",
        req.call_id,
        when.attempt,
        when.infra_retries,
        when.at.as_second()
    );
    if when.generation > 0 {
        msg_id = format!("{msg_id}.g{}", when.generation);
        headers.insert(s::GENERATION_HEADER, when.generation.to_string().as_str());
    }
    headers.insert("Nats-Msg-Id", msg_id.as_str());
    headers.insert(s::ATTEMPT_HEADER, when.attempt.to_string().as_str());
    headers.insert(
        s::INFRA_RETRIES_HEADER,
        when.infra_retries.to_string().as_str(),
    );
    let body = serde_json::to_vec(req).map_err(|e| BusError::js("encode job", e))?;
    Ok(Outgoing::from_parts(subject, headers, body.into()))
}

/// Room left for the protocol line and header framing under `max_payload`.
const FRAMING_MARGIN: usize = 1024;

/// The dead-letter copy of a message: its headers (the publisher's and callfleet's, not the
/// server's), the reason and original subject, and its payload, cut to fit `max_payload`.
pub fn dead_letter_message(
    dlq_subject: &str,
    original_subject: &str,
    reason: &str,
    original: &HeaderMap,
    payload: Bytes,
    max_payload: usize,
) -> (HeaderMap, Bytes) {
    // Keep the publisher's and callfleet's headers, not the server's: a job that waited as
    // a scheduled message still carries `Nats-Schedule*`, which the DLQ stream refuses.
    let mut headers = HeaderMap::new();
    for (name, values) in original.iter() {
        let lower = AsRef::<str>::as_ref(name).to_ascii_lowercase();
        if lower == "nats-msg-id" {
            if let Some(id) = values.first() {
                headers.insert(s::PUBLISHER_MSG_ID_HEADER, id.as_str());
            }
            continue;
        }
        if lower.starts_with("nats-") {
            continue;
        }
        for value in values {
            headers.append(name.clone(), value.clone());
        }
    }
    // Header values cannot hold newlines; the reason is one line.
    let reason: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(1024)
        .collect();
    headers.insert(s::DLQ_REASON_HEADER, reason.as_str());
    headers.insert(s::DLQ_SUBJECT_HEADER, original_subject);
    headers.insert(
        "Nats-Msg-Id",
        format!("dlq.{}.{}", dlq_subject, Timestamp::now().as_nanosecond()).as_str(),
    );
    let room = max_payload.saturating_sub(header_bytes(&headers) + 64 + FRAMING_MARGIN);
    if payload.len() <= room {
        return (headers, payload);
    }
    headers.insert(s::DLQ_TRUNCATED_HEADER, payload.len().to_string().as_str());
    let room = max_payload.saturating_sub(header_bytes(&headers) + FRAMING_MARGIN);
    (headers, payload.slice(..room.min(payload.len())))
}

/// The size of a header block on the wire (`NATS/1.0\r\n`, `name: value\r\n` each, `\r\n`).
fn header_bytes(headers: &HeaderMap) -> usize {
    let mut n = "NATS/1.0\r\n\r\n".len();
    for (name, values) in headers.iter() {
        let name: &str = name.as_ref();
        for v in values {
            n += name.len() + 2 + v.as_str().len() + 2;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use callfleet_domain::request;

    use super::*;

    fn request(campaign: &str, call_id: &str) -> CallRequest {
        let body = serde_json::json!({
            "call_id": call_id, "campaign": campaign,
            "destination": "+61402012298", "account_code": "acct-1",
        });
        request::validate(&body, &request::ValidateOptions::default()).expect("valid request")
    }

    fn header<'a>(m: &'a Outgoing, name: &str) -> Option<&'a str> {
        m.headers.get(name).map(|v| v.as_str())
    }

    #[test]
    fn a_retry_waits_on_its_schedule_subject_for_its_dispatch_subject() {
        let at: Timestamp = "2030-01-01T00:00:00.2Z".parse().expect("timestamp");
        let when = Scheduled {
            at,
            attempt: 2,
            infra_retries: 1,
            generation: 0,
            campaign_contact: None,
        };
        let m = scheduled_job(&request("c1", "call-1"), &when).expect("message");
        assert_eq!(m.subject, "calls.schedule.call-1");
        assert_eq!(
            header(&m, "Nats-Schedule-Target"),
            Some("calls.dispatch.c1")
        );
        assert_eq!(
            header(&m, "Nats-Schedule"),
            Some("@at 2030-01-01T00:00:01Z"),
            "rounded up, never early"
        );
        assert_eq!(header(&m, s::ATTEMPT_HEADER), Some("2"));
        assert_eq!(header(&m, s::INFRA_RETRIES_HEADER), Some("1"));
        assert_eq!(header(&m, s::GENERATION_HEADER), None);
    }

    #[test]
    fn a_campaign_contact_waits_for_the_campaigner_with_its_zone_and_generation() {
        let at: Timestamp = "2030-01-01T00:00:00Z".parse().expect("timestamp");
        let when = Scheduled {
            at,
            attempt: 1,
            infra_retries: 0,
            generation: 7,
            campaign_contact: Some(Some("Australia/Sydney".into())),
        };
        let m = scheduled_job(&request("c1", "call-1"), &when).expect("message");
        assert_eq!(m.subject, "campaigns.schedule.c1.call-1");
        assert_eq!(
            header(&m, "Nats-Schedule-Target"),
            Some("campaigns.contacts.c1")
        );
        assert_eq!(header(&m, s::TIMEZONE_HEADER), Some("Australia/Sydney"));
        assert_eq!(header(&m, s::GENERATION_HEADER), Some("7"));
        let id = header(&m, "Nats-Msg-Id").unwrap_or_default();
        assert!(id.ends_with(".g7"), "{id}");
    }

    #[test]
    fn a_dead_letter_keeps_the_publisher_id_and_drops_server_headers() {
        let mut original = HeaderMap::new();
        original.insert("Nats-Msg-Id", "pub-1");
        original.insert("Nats-Schedule", "@at 2030-01-01T00:00:00Z");
        original.insert("Callfleet-Attempt", "2");
        let (h, p) = dead_letter_message(
            "calls.dlq.x",
            "calls.dispatch.a",
            "bad\nthing",
            &original,
            Bytes::from_static(b"{}"),
            1 << 20,
        );
        assert_eq!(
            h.get(s::PUBLISHER_MSG_ID_HEADER).map(|v| v.as_str()),
            Some("pub-1")
        );
        assert!(h.get("Nats-Schedule").is_none());
        assert_eq!(h.get("Callfleet-Attempt").map(|v| v.as_str()), Some("2"));
        assert_eq!(
            h.get(s::DLQ_REASON_HEADER).map(|v| v.as_str()),
            Some("bad thing")
        );
        assert!(h.get(s::DLQ_TRUNCATED_HEADER).is_none());
        assert_eq!(&p[..], b"{}");
    }

    #[test]
    fn an_oversized_payload_is_cut_to_fit_and_says_so() {
        let max = 1 << 20;
        let payload = Bytes::from(vec![b'x'; max - 10]);
        let (h, p) = dead_letter_message(
            "calls.dlq.x",
            "calls.dispatch.a",
            "invalid",
            &HeaderMap::new(),
            payload,
            max,
        );
        let truncated = h
            .get(s::DLQ_TRUNCATED_HEADER)
            .map(|v| v.as_str().to_owned());
        assert_eq!(truncated.as_deref(), Some((max - 10).to_string().as_str()));
        assert!(
            p.len() + header_bytes(&h) + FRAMING_MARGIN <= max,
            "{}",
            p.len()
        );
        assert!(p.len() > max - 4096, "cut no more than needed: {}", p.len());
    }
}
