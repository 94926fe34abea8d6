//! One campaign's feeder: release contacts at the campaign's pace, inside its windows.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use callfleet_bus::{Bus, Scheduled, async_nats};
use callfleet_config::Config;
use callfleet_domain::{
    CallRequest,
    campaign::{CampaignRecord, CampaignStatus},
    subjects as s,
};
use futures::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::lease::CampaignLease;

/// How often the lease is renewed and the record re-read.
const RENEW_EVERY: Duration = Duration::from_secs(3);
const RECORD_EVERY: Duration = Duration::from_millis(500);
/// The idle pause between checks when nothing can be released.
const IDLE: Duration = Duration::from_millis(100);

/// Feed one campaign while we hold its lease and it is not over.
pub async fn feed(
    bus: Bus,
    config: Arc<Config>,
    id: String,
    me: Arc<str>,
    shutdown: CancellationToken,
) {
    let Ok(Some((record, _))) = bus.campaign(&id).await else {
        return;
    };
    if record.completed_at.is_some() {
        return;
    }
    let Some(mut lease) = CampaignLease::take(&bus, &id, &me).await else {
        return;
    };
    tracing::info!(campaign = %id, instance = %me, "feeding campaign");
    let mut feeder = Feeder {
        bus: bus.clone(),
        id: id.clone(),
        record,
        read_at: Instant::now(),
        next_release: Instant::now(),
        contacts: None,
        _config: config,
    };
    let mut renewed = Instant::now();
    while !shutdown.is_cancelled() {
        if renewed.elapsed() >= RENEW_EVERY {
            if !lease.renew(&bus).await {
                tracing::warn!(campaign = %id, "campaign lease lost; another campaigner feeds it now");
                return;
            }
            renewed = Instant::now();
        }
        match feeder.step().await {
            Step::Again => {}
            Step::Wait(d) => {
                tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    () = shutdown.cancelled() => {}
                }
            }
            Step::Done => break,
        }
    }
    lease.release(&bus).await;
}

enum Step {
    Again,
    Wait(Duration),
    Done,
}

struct Feeder {
    bus: Bus,
    id: String,
    record: CampaignRecord,
    read_at: Instant,
    /// The token bucket, as the earliest time of the next release (no burst).
    next_release: Instant,
    contacts: Option<PullConsumer>,
    _config: Arc<Config>,
}

impl Feeder {
    async fn step(&mut self) -> Step {
        if self.read_at.elapsed() >= RECORD_EVERY {
            match self.bus.campaign(&self.id).await {
                Ok(Some((r, _))) => self.record = r,
                Ok(None) => return Step::Done,
                Err(e) => {
                    tracing::debug!(campaign = %self.id, error = %e, "campaign unreadable");
                    return Step::Wait(Duration::from_secs(1));
                }
            }
            self.read_at = Instant::now();
        }
        if self.record.completed_at.is_some() {
            return Step::Done;
        }
        match self.record.status {
            CampaignStatus::Completed => return Step::Done,
            CampaignStatus::Paused => return Step::Wait(IDLE),
            CampaignStatus::Cancelled => {
                self.drain_cancelled().await;
                return self.maybe_complete().await;
            }
            CampaignStatus::Active => {}
        }
        let now = jiff::Timestamp::now();
        if let Some(start) = self.record.spec.start_at
            && start > now
        {
            let wait = start.duration_since(now).unsigned_abs();
            return Step::Wait(wait.min(Duration::from_secs(1)));
        }
        // Full, or the token bucket empty: don't even fetch.
        let (pending, live) = self.released().await;
        let full = pending > 0 || live >= u64::from(self.record.spec.max_concurrent_calls);
        let until = self.next_release.saturating_duration_since(Instant::now());
        if full || !until.is_zero() {
            return Step::Wait(until.max(IDLE / 2));
        }
        let Some(msg) = self.next_contact().await else {
            return self.maybe_complete().await;
        };
        match self.release(&msg).await {
            Ok(true) => {
                // Validated to 0.001..=100 per second; a stored record from before that bound
                // must not panic the campaigner, so an out-of-range gap becomes the slowest pace.
                let gap = Duration::try_from_secs_f64(1.0 / self.record.spec.calls_per_second)
                    .unwrap_or(Duration::from_secs(1000))
                    .min(Duration::from_secs(1000));
                self.next_release = Instant::now() + gap;
                Step::Again
            }
            Ok(false) => {
                // Its window is closed: likely many more are; move them in bulk.
                self.sweep().await;
                Step::Again
            }
            Err(e) => {
                tracing::warn!(campaign = %self.id, error = %e, "cannot release a contact; it will come back");
                let _ = msg
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                    .await;
                Step::Wait(Duration::from_secs(1))
            }
        }
    }

    /// (released jobs waiting for a worker, live calls); unknown counts as full.
    async fn released(&self) -> (u64, u64) {
        self.bus.released(&self.id).await.unwrap_or((1, 0))
    }

    async fn consumer(&mut self) -> Option<PullConsumer> {
        if self.contacts.is_none() {
            let stream = self.bus.js.get_stream(s::CONTACTS_STREAM).await.ok()?;
            self.contacts = stream
                .get_consumer(&s::feeder_consumer(&self.id))
                .await
                .ok();
        }
        self.contacts.clone()
    }

    async fn next_contact(&mut self) -> Option<jetstream::Message> {
        let consumer = self.consumer().await?;
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_millis(200))
            .messages()
            .await
            .ok()?;
        batch.next().await.and_then(Result::ok)
    }

    /// Release a contact, or reschedule it for its window. `Ok(true)` if released.
    async fn release(&self, msg: &jetstream::Message) -> Result<bool, callfleet_bus::BusError> {
        let tz = header(msg, s::TIMEZONE_HEADER);
        let zone = self.record.spec.zone_for(tz.as_deref());
        if let Some(window) = &self.record.spec.window
            && let Some(open) = window.next_open(&zone, jiff::Timestamp::now())
        {
            let req: CallRequest = serde_json::from_slice(&msg.payload).map_err(|e| {
                callfleet_bus::BusError::Invalid(vec![callfleet_domain::FieldError::new(
                    "(contact)",
                    e.to_string(),
                )])
            })?;
            let when = waiting_until(msg, open, tz);
            self.bus.schedule_job(&req, when).await?;
            tracing::debug!(campaign = %self.id, call.id = %req.call_id, %open, "window closed; waiting for it");
            let _ = msg.ack_with(AckKind::Ack).await;
            return Ok(false);
        }
        let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
        self.bus
            .release_contact(&self.id, msg.headers.as_ref(), msg.payload.clone(), seq)
            .await?;
        let _ = msg.ack_with(AckKind::Ack).await;
        Ok(true)
    }

    /// Reschedule up to 500 waiting contacts whose window is closed; returns how many were
    /// handled. Contacts whose own zone is inside the window go back (after 2 s) for release.
    async fn sweep(&mut self) -> usize {
        let Some(consumer) = self.consumer().await else {
            return 0;
        };
        let Ok(mut batch) = consumer
            .fetch()
            .max_messages(500)
            .expires(Duration::from_millis(200))
            .messages()
            .await
        else {
            return 0;
        };
        let mut rescheduled = 0;
        let now = jiff::Timestamp::now();
        let mut pending = Vec::new();
        while let Some(Ok(msg)) = batch.next().await {
            let tz = header(&msg, s::TIMEZONE_HEADER);
            let zone = self.record.spec.zone_for(tz.as_deref());
            let open = self
                .record
                .spec
                .window
                .as_ref()
                .and_then(|w| w.next_open(&zone, now));
            let (Some(open), Ok(req)) = (open, serde_json::from_slice::<CallRequest>(&msg.payload))
            else {
                // Its window is open: back to the queue for the paced release path.
                let _ = msg.ack_with(AckKind::Nak(None)).await;
                continue;
            };
            let when = waiting_until(&msg, open, tz);
            pending.push((msg, req, when));
        }
        // Pipelined: each schedule is acknowledged by JetStream before its contact is acked.
        let results = futures::future::join_all(
            pending
                .iter()
                .map(|(_, req, when)| self.bus.schedule_job(req, when.clone())),
        )
        .await;
        for ((msg, _, _), result) in pending.iter().zip(results) {
            if result.is_ok() {
                let _ = msg.ack_with(AckKind::Ack).await;
                rescheduled += 1;
            } else {
                let _ = msg
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                    .await;
            }
        }
        if rescheduled > 0 {
            tracing::debug!(campaign = %self.id, rescheduled, "window closed; contacts wait for it");
        }
        rescheduled
    }

    /// Cancelled: every contact still waiting (not released) is tallied as `cancelled`.
    async fn drain_cancelled(&mut self) {
        let Some(consumer) = self.consumer().await else {
            return;
        };
        for _ in 0..1_000 {
            let Ok(mut batch) = consumer
                .fetch()
                .max_messages(500)
                .expires(Duration::from_millis(200))
                .messages()
                .await
            else {
                return;
            };
            let mut n = 0;
            while let Some(Ok(msg)) = batch.next().await {
                n += 1;
                if let Ok(req) = serde_json::from_slice::<CallRequest>(&msg.payload)
                    && self
                        .bus
                        .tally(
                            &self.id,
                            "cancelled",
                            &format!("tally.{}.cancelled", req.call_id),
                        )
                        .await
                        .is_err()
                {
                    let _ = msg
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                        .await;
                    continue;
                }
                let _ = msg.ack_with(AckKind::Ack).await;
            }
            if n == 0 {
                break;
            }
        }
        // Contacts waiting for a window or a retry: tally them, then drop the schedules.
        let filter = format!("campaigns.schedule.{}.>", self.id);
        if let Ok(waiting) = self.bus.subject_counts(s::CONTACTS_STREAM, &filter).await
            && !waiting.is_empty()
        {
            for subject in waiting.keys() {
                let call_id = subject.rsplit('.').next().unwrap_or_default();
                let _ = self
                    .bus
                    .tally(&self.id, "cancelled", &format!("tally.{call_id}.cancelled"))
                    .await;
            }
            if let Ok(stream) = self.bus.js.get_stream(s::CONTACTS_STREAM).await {
                let _ = stream.purge().filter(filter).await;
            }
        }
    }

    /// A sealed campaign with nothing waiting, nothing live and every contact tallied is over.
    async fn maybe_complete(&mut self) -> Step {
        if !self.record.sealed {
            return Step::Wait(Duration::from_millis(250));
        }
        let waiting = self.bus.waiting(&self.id).await.map_or(1, |(q, w)| q + w);
        let (pending, live) = self.released().await;
        let tallies = self
            .bus
            .subject_counts(s::TALLY_STREAM, &format!("campaigns.tally.{}.*", self.id))
            .await
            .unwrap_or_default();
        let mut outcomes = serde_json::Map::new();
        let mut finished = 0;
        let mut dials = 0;
        for (subject, n) in &tallies {
            let what = subject.rsplit('.').next().unwrap_or_default();
            if what == "dialed" {
                dials = *n;
            } else {
                finished += n;
                outcomes.insert(what.to_owned(), json!(n));
            }
        }
        if waiting > 0 || pending > 0 || live > 0 || finished < self.record.accepted {
            return Step::Wait(Duration::from_millis(250));
        }
        let now = jiff::Timestamp::now();
        let Ok(Some((mut record, rev))) = self.bus.campaign(&self.id).await else {
            return Step::Wait(Duration::from_secs(1));
        };
        if record.status == CampaignStatus::Active {
            record.status = CampaignStatus::Completed;
        }
        record.completed_at = Some(now);
        record.updated_at = now;
        if self.bus.update_campaign(&record, rev).await.is_err() {
            return Step::Again;
        }
        let event = json!({
            "event_id": format!("{}.completed", self.id),
            "kind": "completed",
            "at": now,
            "campaign_id": self.id,
            "name": record.spec.name,
            "status": record.status,
            "callback_url": record.spec.defaults.get("callback_url"),
            "totals": {
                "accepted": record.accepted, "rejected": record.rejected,
                "duplicates": record.duplicates, "dnc_skipped": record.dnc_skipped,
                "finished": finished, "dials": dials, "outcomes": outcomes,
            },
            "created_at": record.created_at,
            "completed_at": now,
        });
        let published = self
            .bus
            .publish_campaign_event(
                &self.id,
                "completed",
                &format!("{}.completed", self.id),
                &event,
            )
            .await;
        if let Err(e) = published {
            tracing::warn!(campaign = %self.id, error = %e, "campaign completion event not published");
        }
        // The campaign's consumers are no longer needed.
        if let Ok(stream) = self.bus.js.get_stream(s::JOBS_STREAM).await {
            let _ = stream
                .delete_consumer(&s::campaign_consumer(&self.id))
                .await;
        }
        if let Ok(stream) = self.bus.js.get_stream(s::CONTACTS_STREAM).await {
            let _ = stream.delete_consumer(&s::feeder_consumer(&self.id)).await;
            let _ = stream.delete_consumer(&s::waiting_consumer(&self.id)).await;
        }
        tracing::info!(campaign = %self.id, finished, dials, "campaign completed");
        Step::Done
    }
}

/// A contact put back to wait until `at`, keeping its attempt, retries, generation and zone.
fn waiting_until(msg: &jetstream::Message, at: jiff::Timestamp, tz: Option<String>) -> Scheduled {
    let num = |name: &str, default: u32| {
        header(msg, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    Scheduled {
        at,
        attempt: num(s::ATTEMPT_HEADER, 1),
        infra_retries: num(s::INFRA_RETRIES_HEADER, 0),
        generation: num(s::GENERATION_HEADER, 0),
        campaign_contact: Some(tz),
    }
}

fn header(msg: &jetstream::Message, name: &str) -> Option<String> {
    msg.headers
        .as_ref()?
        .get(name)
        .map(|v| v.as_str().to_owned())
}
