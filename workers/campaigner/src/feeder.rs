//! One campaign's feeder: release contacts at the campaign's pace, inside its windows.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use callfleet_bus::{
    Bus, Consumer, Delivery, Outcome, Scheduled, backoff, released_contact, scheduled_job,
};
use callfleet_config::Config;
use callfleet_domain::{
    CallRequest,
    campaign::{CampaignRecord, CampaignStatus},
    subjects as s,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// How often the lease is renewed and the record re-read.
const RENEW_EVERY: Duration = Duration::from_secs(3);
const RECORD_EVERY: Duration = Duration::from_millis(500);
/// The idle pause between checks when nothing can be released.
const IDLE: Duration = Duration::from_millis(100);
/// How long a fetch of waiting contacts waits, and how many a bulk pass takes.
const FETCH_WAIT: Duration = Duration::from_millis(200);
const BULK: usize = 500;

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
    let Some(mut lease) = bus.take_campaign_lease(&id, &me).await else {
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
            if !bus.renew_campaign_lease(&mut lease).await {
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
    bus.release_campaign_lease(lease).await;
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
    contacts: Option<Consumer>,
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
            Released::Yes => {
                // Validated to 0.001..=100 per second; a stored record from before that bound
                // must not panic the campaigner, so an out-of-range gap becomes the slowest pace.
                let gap = Duration::try_from_secs_f64(1.0 / self.record.spec.calls_per_second)
                    .unwrap_or(Duration::from_secs(1000))
                    .min(Duration::from_secs(1000));
                self.next_release = Instant::now() + gap;
                Step::Again
            }
            Released::WindowClosed => {
                // Its window is closed: likely many more are; move them in bulk.
                self.sweep().await;
                Step::Again
            }
            Released::Failed => {
                tracing::warn!(campaign = %self.id, "cannot release a contact; it will come back");
                Step::Wait(Duration::from_secs(1))
            }
        }
    }

    /// (released jobs waiting for a worker, live calls); unknown counts as full.
    async fn released(&self) -> (u64, u64) {
        self.bus.released(&self.id).await.unwrap_or((1, 0))
    }

    async fn consumer(&mut self) -> Option<Consumer> {
        if self.contacts.is_none() {
            self.contacts = self.bus.feeder_consumer(&self.id).await.ok();
        }
        self.contacts.clone()
    }

    /// Up to `max` waiting contacts.
    async fn fetch(&mut self, max: usize) -> Option<Vec<Delivery>> {
        let consumer = self.consumer().await?;
        consumer.fetch(max, FETCH_WAIT).await.ok()
    }

    async fn next_contact(&mut self) -> Option<Delivery> {
        self.fetch(1).await?.pop()
    }

    /// Release a contact, or reschedule it for its window.
    async fn release(&self, msg: &Delivery) -> Released {
        let tz = msg.header(s::TIMEZONE_HEADER).map(str::to_owned);
        let zone = self.record.spec.zone_for(tz.as_deref());
        let open = self
            .record
            .spec
            .window
            .as_ref()
            .and_then(|w| w.next_open(&zone, jiff::Timestamp::now()));
        let (outcome, released) = match open {
            Some(open) => {
                let waiting = serde_json::from_slice::<CallRequest>(msg.payload())
                    .map_err(|e| e.to_string())
                    .and_then(|req| {
                        let when = waiting_until(msg, open, tz);
                        tracing::debug!(campaign = %self.id, call.id = %req.call_id, %open, "window closed; waiting for it");
                        scheduled_job(&req, &when).map_err(|e| e.to_string())
                    });
                match waiting {
                    Ok(message) => (
                        Outcome::schedule(message, backoff::TRANSIENT),
                        Released::WindowClosed,
                    ),
                    Err(e) => (
                        Outcome::retry(backoff::TRANSIENT, format!("unreadable contact: {e}")),
                        Released::Failed,
                    ),
                }
            }
            None => (
                Outcome::schedule(released_contact(&self.id, msg), backoff::TRANSIENT),
                Released::Yes,
            ),
        };
        if self.bus.settle(msg, outcome).await {
            released
        } else {
            Released::Failed
        }
    }

    /// Reschedule up to 500 waiting contacts whose window is closed; returns how many were
    /// handled. Contacts whose own zone is inside the window go back (after 2 s) for release.
    async fn sweep(&mut self) -> usize {
        let Some(batch) = self.fetch(BULK).await else {
            return 0;
        };
        let now = jiff::Timestamp::now();
        let mut outcomes = Vec::with_capacity(batch.len());
        for msg in &batch {
            let tz = msg.header(s::TIMEZONE_HEADER).map(str::to_owned);
            let zone = self.record.spec.zone_for(tz.as_deref());
            let open = self
                .record
                .spec
                .window
                .as_ref()
                .and_then(|w| w.next_open(&zone, now));
            let waiting = open.and_then(|open| {
                let req = serde_json::from_slice::<CallRequest>(msg.payload()).ok()?;
                scheduled_job(&req, &waiting_until(msg, open, tz)).ok()
            });
            outcomes.push(match waiting {
                Some(message) => (Outcome::schedule(message, backoff::TRANSIENT), true),
                // Its window is open: back to the queue for the paced release path.
                None => (Outcome::retry(backoff::NOW, "inside its window"), false),
            });
        }
        // Pipelined: each schedule is acknowledged by JetStream before its contact is acked.
        let settled = futures::future::join_all(
            batch
                .iter()
                .zip(&outcomes)
                .map(|(msg, (outcome, _))| self.bus.settle(msg, outcome.clone())),
        )
        .await;
        let rescheduled = settled
            .into_iter()
            .zip(&outcomes)
            .filter(|(ok, (_, scheduled))| *ok && *scheduled)
            .count();
        if rescheduled > 0 {
            tracing::debug!(campaign = %self.id, rescheduled, "window closed; contacts wait for it");
        }
        rescheduled
    }

    /// Cancelled: every contact still waiting (not released) is tallied as `cancelled`.
    async fn drain_cancelled(&mut self) {
        for _ in 0..1_000 {
            let Some(batch) = self.fetch(BULK).await else {
                return;
            };
            if batch.is_empty() {
                break;
            }
            for msg in batch {
                let tallied = match serde_json::from_slice::<CallRequest>(msg.payload()) {
                    Ok(req) => self
                        .bus
                        .tally(
                            &self.id,
                            "cancelled",
                            &format!("tally.{}.cancelled", req.call_id),
                        )
                        .await
                        .is_ok(),
                    Err(_) => true,
                };
                let outcome = if tallied {
                    Outcome::Ack
                } else {
                    Outcome::retry(backoff::MOMENT, "cannot tally a cancelled contact")
                };
                self.bus.settle(&msg, outcome).await;
            }
        }
        // Contacts waiting for a window or a retry: tally them, then drop the schedules.
        let filter = format!("campaigns.schedule.{}.>", self.id);
        if let Ok(waiting) = self.bus.subject_counts(s::CONTACTS_STREAM, &filter).await
            && !waiting.is_empty()
        {
            for subject in waiting.keys() {
                let call_id = subject.rsplit('.').next().unwrap_or_default();
                if let Err(e) = self
                    .bus
                    .tally(&self.id, "cancelled", &format!("tally.{call_id}.cancelled"))
                    .await
                {
                    tracing::warn!(campaign = %self.id, call.id = %call_id, error = %e, "cannot tally a waiting contact as cancelled");
                }
            }
            if let Err(e) = self.bus.purge_contact_schedules(&self.id).await {
                tracing::warn!(campaign = %self.id, error = %e, "cannot drop the waiting contacts");
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
        self.bus.delete_campaign_consumers(&self.id).await;
        tracing::info!(campaign = %self.id, finished, dials, "campaign completed");
        Step::Done
    }
}

/// What became of a contact the feeder took.
enum Released {
    Yes,
    /// Its window is closed: it waits for it as a scheduled message.
    WindowClosed,
    /// It could not be released or rescheduled; it comes back.
    Failed,
}

/// A contact put back to wait until `at`, keeping its attempt, retries, generation and zone.
fn waiting_until(msg: &Delivery, at: jiff::Timestamp, tz: Option<String>) -> Scheduled {
    let num = |name: &str, default: u32| {
        msg.header(name)
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
