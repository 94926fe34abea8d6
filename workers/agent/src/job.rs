//! One message = one attempt of one call. Parsing, the checks before dialing, and
//! [`Worker::settle`], the one place that turns an attempt's result into JetStream operations.

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{AckKind, Message};
use callfleet_bus::{LeaseError, Scheduled, async_nats};
use callfleet_domain::{
    CallEvent, CallOutcome, CallRequest, CallState, CallStatus, EndReason, EventKind, FieldError,
    request::{self, ValidateOptions},
    subjects as s,
    summary::{AttemptRecord, CallSummary},
};
use jiff::Timestamp;
use serde_json::Value;

use crate::{Worker, control::Control, keepalive::Keepalive, summary};

/// A parsed job.
pub struct Job {
    pub req: CallRequest,
    pub attempt: u32,
    pub infra_retries: u32,
    pub delivered: i64,
    /// Non-zero for a job replayed from the dead-letter stream.
    pub generation: u32,
    /// Released by the campaigner (`calls.campaign.<id>`): tallied, retried through it.
    pub campaign_job: bool,
    /// A campaign contact's own time zone.
    pub timezone: Option<String>,
}

/// What became of an attempt.
pub enum Disposition {
    /// Finished for good: publish the final event (with its summary), record the state, ack.
    Final(Box<CallSummary>),
    /// Final because its retries ran out: as `Final`, and a copy of the job goes to the
    /// dead-letter stream with `reason`, so an operator can `callfleet dlq replay` it.
    Exhausted {
        summary: Box<CallSummary>,
        reason: String,
    },
    /// Dial again later: schedule the job, record the state, publish `retry_scheduled`, ack.
    Retry {
        at: Timestamp,
        attempt: u32,
        infra_retries: u32,
        record: AttemptRecord,
        reason: String,
    },
    /// The number is in another live call: wait as a scheduled message (no delivery spent, no
    /// attempt spent), then check again.
    WaitForNumber { at: Timestamp, holder: String },
    /// Someone else holds the call: redeliver after this long.
    Backoff(Duration),
    /// Nothing to do (the call already ended): ack.
    Skip,
    /// The worker lost the call (lease taken over); leave the message alone.
    Abandon,
}

impl Job {
    fn header(msg: &Message, name: &str) -> Option<u32> {
        msg.headers.as_ref()?.get(name)?.as_str().parse().ok()
    }

    /// Validate a message exactly like the ingress validates a POST body.
    pub fn parse(msg: &Message) -> Result<Self, (Option<String>, Vec<FieldError>)> {
        let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
        // A publisher that gave no call id (or no JSON at all) gets one derived from the stream
        // sequence, `js<seq>`, so every redelivery of the message maps to the same call.
        let fallback = msg.info().ok().map(|i| format!("js{}", i.stream_sequence));
        let value: Value = serde_json::from_slice(&msg.payload).map_err(|e| {
            (
                fallback.clone(),
                vec![FieldError::new("(body)", format!("is not valid JSON: {e}"))],
            )
        })?;
        let call_id_hint = value
            .get("call_id")
            .and_then(Value::as_str)
            .filter(|id| s::is_token(id))
            .map(str::to_owned);
        let req = request::validate(
            &value,
            &ValidateOptions {
                default_country_code: None,
                fallback_call_id: fallback.clone(),
            },
        )
        .map_err(|errors| (call_id_hint.or(fallback), errors))?;
        Ok(Self {
            req,
            attempt: Self::header(msg, s::ATTEMPT_HEADER).unwrap_or(1).max(1),
            infra_retries: Self::header(msg, s::INFRA_RETRIES_HEADER).unwrap_or(0),
            delivered,
            generation: Self::header(msg, s::GENERATION_HEADER).unwrap_or(0),
            campaign_job: msg.subject.starts_with("calls.campaign."),
            timezone: msg
                .headers
                .as_ref()
                .and_then(|h| h.get(s::TIMEZONE_HEADER))
                .map(|v| v.as_str().to_owned()),
        })
    }

    /// An event of this job. A replayed job's event ids carry its generation.
    pub fn event(&self, kind: EventKind, attempt: u32) -> CallEvent {
        let mut event = CallEvent::new(&self.req.call_id, kind, attempt);
        if self.generation > 0 {
            event.event_id = format!("{}.g{}", event.event_id, self.generation);
        }
        event
    }
}

impl Worker {
    /// Handle one message end to end. Never panics on input.
    pub(crate) async fn handle(&self, msg: Message) {
        let msg = Arc::new(msg);
        let job = match Job::parse(&msg) {
            Ok(job) => job,
            Err((call_id, errors)) => return self.reject(&msg, call_id, &errors).await,
        };
        let call_id = job.req.call_id.clone();
        if job.delivered > self.config.agent.max_deliveries {
            let reason = format!(
                "delivered {} times without completing (agent.max_deliveries)",
                job.delivered
            );
            return self.dead_letter(&msg, Some(&job.req), &reason).await;
        }
        let (disposition, keepalive) = self.attempt(&job, &msg).await;
        self.settle(&msg, &job, disposition).await;
        // The number and the lease are given back only once the outcome is recorded.
        if let Some(number) = keepalive.as_ref().and_then(Keepalive::held_number)
            && let Err(e) = self.bus.unlock_number(&number).await
        {
            tracing::warn!(call.id = %call_id, error = %e, "cannot unlock the number; it expires on its own");
        }
        if let Some(keepalive) = keepalive
            && let Some(lease) = keepalive.stop().await
            && let Err(e) = self.bus.release_lease(&lease).await
        {
            tracing::warn!(call.id = %call_id, error = %e, "cannot release the lease; it expires on its own");
        }
    }

    /// The checks before dialing, then the attempt itself.
    async fn attempt(&self, job: &Job, msg: &Arc<Message>) -> (Disposition, Option<Keepalive>) {
        let req = &job.req;
        match self.bus.call_state(&req.call_id).await {
            Ok(Some((state, _))) if state.status.is_terminal() => {
                tracing::info!(call.id = %req.call_id, status = ?state.status, "call already over; skipping");
                return (Disposition::Skip, None);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(call.id = %req.call_id, error = %e, "call state unreadable; backing off");
                return (Disposition::Backoff(Duration::from_secs(2)), None);
            }
        }
        // Answer control requests from before the lease, so a hang-up is never missed.
        let mut control = Control::listen(self, &req.call_id, req.transfer_target.clone()).await;
        let lease = match self
            .bus
            .take_lease(&req.call_id, &self.worker_id, job.attempt)
            .await
        {
            Ok(lease) => lease,
            Err(LeaseError::Held { holder, .. }) => {
                tracing::info!(call.id = %req.call_id, holder = %holder, "lease held elsewhere; backing off");
                return (
                    Disposition::Backoff(self.config.agent.lease_ttl() / 2),
                    None,
                );
            }
            Err(e) => {
                tracing::warn!(call.id = %req.call_id, error = %e, "cannot take lease; backing off");
                return (Disposition::Backoff(Duration::from_secs(2)), None);
            }
        };
        let keepalive = Keepalive::start(self, msg.clone(), lease);
        // Read the state again under the lease: a cancel may have landed in between.
        let state = match self.bus.call_state(&req.call_id).await {
            Ok(state) => state.map(|(s, _)| s),
            Err(e) => {
                tracing::warn!(call.id = %req.call_id, error = %e, "call state unreadable; backing off");
                return (
                    Disposition::Backoff(Duration::from_secs(2)),
                    Some(keepalive),
                );
            }
        };
        let state =
            state.unwrap_or_else(|| CallState::queued(&req.call_id, &req.room, &req.campaign));
        if state.status.is_terminal() {
            return (Disposition::Skip, Some(keepalive));
        }
        if state.cancel_requested_at.is_some() {
            tracing::info!(call.id = %req.call_id, "cancelled before dialing; closing");
            let summary = summary::closed_before_dial(
                self,
                req,
                &state,
                CallOutcome::Cancelled,
                "cancelled by request before it was dialed again",
            );
            return (Disposition::Final(Box::new(summary)), Some(keepalive));
        }
        let in_flight = matches!(
            state.status,
            CallStatus::Dialing | CallStatus::Ringing | CallStatus::InCall
        ) && state.attempts >= job.attempt;
        let disposition =
            crate::call::run(self, job, state, in_flight, &keepalive, &mut control).await;
        (disposition, Some(keepalive))
    }

    /// The one place that maps a disposition onto JetStream.
    pub(crate) async fn settle(&self, msg: &Message, job: &Job, disposition: Disposition) {
        let req = &job.req;
        match disposition {
            Disposition::Exhausted { summary, reason } => {
                let dlq = backon_retry(|| {
                    self.bus.dead_letter(
                        s::dlq(&req.call_id),
                        &msg.subject,
                        &reason,
                        msg.headers.clone().unwrap_or_default(),
                        msg.payload.clone(),
                    )
                })
                .await;
                if let Err(e) = dlq {
                    tracing::error!(call.id = %req.call_id, error = %e, "cannot dead-letter the exhausted job; its summary still goes out");
                }
                Box::pin(self.settle(msg, job, Disposition::Final(summary))).await;
            }
            Disposition::Final(summary) => {
                let kind = if summary.outcome == CallOutcome::Answered {
                    EventKind::Ended
                } else {
                    EventKind::Failed
                };
                let mut state = self.current_state(req).await;
                state.status = if kind == EventKind::Ended {
                    CallStatus::Ended
                } else {
                    CallStatus::Failed
                };
                state.last_outcome = Some(summary.outcome);
                state.history.clone_from(&summary.attempts);
                state.attempts = summary.attempt;
                state.next_attempt_at = None;
                state.error.clone_from(&summary.error);
                state.updated_at = Timestamp::now();
                let mut event = job.event(kind, summary.attempt);
                let outcome = summary.outcome;
                event.summary = Some(*summary);
                self.publish_until_done(&event).await;
                let tally_id = format!("tally.{}", event.event_id);
                if job.campaign_job
                    && let Err(e) =
                        backon_retry(|| self.bus.tally(&req.campaign, outcome.as_str(), &tally_id))
                            .await
                {
                    tracing::error!(call.id = %req.call_id, error = %e, "campaign tally not recorded");
                }
                self.put_state_until_done(&state).await;
                ack(msg, AckKind::Ack).await;
            }
            Disposition::Retry {
                at,
                attempt,
                infra_retries,
                record,
                reason,
            } => {
                let when = Scheduled {
                    at,
                    attempt,
                    infra_retries,
                    generation: job.generation,
                    campaign_contact: job.campaign_job.then(|| job.timezone.clone()),
                };
                let scheduled = backon_retry(|| self.bus.schedule_job(req, when.clone())).await;
                if let Err(e) = scheduled {
                    tracing::error!(call.id = %req.call_id, error = %e, "cannot schedule the retry; redelivering");
                    ack(msg, AckKind::Nak(Some(Duration::from_secs(5)))).await;
                    return;
                }
                let mut state = self.current_state(req).await;
                state.status = CallStatus::Scheduled;
                state.last_outcome = Some(record.outcome);
                state.history.push(record.clone());
                state.next_attempt_at = Some(at);
                state.error = Some(reason.clone());
                state.worker_id = None;
                state.updated_at = Timestamp::now();
                self.put_state_until_done(&state).await;
                let mut event = job.event(EventKind::RetryScheduled, record.attempt);
                event.event_id = format!("{}.{}", event.event_id, infra_retries);
                event.detail = Some(serde_json::json!({
                    "next_attempt": attempt, "next_attempt_at": at, "outcome": record.outcome,
                    "sip": record.sip, "reason": reason, "infra_retries": infra_retries,
                }));
                self.publish_until_done(&event).await;
                ack(msg, AckKind::Ack).await;
            }
            Disposition::WaitForNumber { at, holder } => {
                let when = Scheduled {
                    at,
                    attempt: job.attempt,
                    infra_retries: job.infra_retries,
                    generation: job.generation,
                    campaign_contact: job.campaign_job.then(|| job.timezone.clone()),
                };
                let scheduled = backon_retry(|| self.bus.schedule_job(req, when.clone())).await;
                if let Err(e) = scheduled {
                    tracing::error!(call.id = %req.call_id, error = %e, "cannot schedule the wait for the number; redelivering");
                    ack(msg, AckKind::Nak(Some(Duration::from_secs(5)))).await;
                    return;
                }
                let mut state = self.current_state(req).await;
                state.status = CallStatus::Scheduled;
                state.next_attempt_at = Some(at);
                state.error = Some(format!(
                    "waiting for the number: it is in another live call ({holder})"
                ));
                state.worker_id = None;
                state.updated_at = Timestamp::now();
                self.put_state_until_done(&state).await;
                ack(msg, AckKind::Ack).await;
            }
            Disposition::Backoff(delay) => ack(msg, AckKind::Nak(Some(delay))).await,
            Disposition::Skip => ack(msg, AckKind::Ack).await,
            Disposition::Abandon => {}
        }
    }

    /// The stored state, or a fresh one when there is none.
    pub(crate) async fn current_state(&self, req: &CallRequest) -> CallState {
        match self.bus.call_state(&req.call_id).await {
            Ok(Some((state, _))) => state,
            _ => CallState::queued(&req.call_id, &req.room, &req.campaign),
        }
    }

    /// Invalid message: dead-letter it and tell the world with a `failed` event. The copy is
    /// cut to fit when the message is close to `max_payload`; if it still cannot be written
    /// (JetStream unavailable), the message is redelivered, every 60 s once it has been tried
    /// `agent.max_deliveries` times, and never dropped.
    async fn reject(&self, msg: &Message, call_id: Option<String>, errors: &[FieldError]) {
        let mut reason = format!("invalid request: {}", request::describe(errors));
        if reason.len() > MAX_REASON {
            let cut = (0..=MAX_REASON)
                .rev()
                .find(|&i| reason.is_char_boundary(i))
                .unwrap_or(0);
            reason.truncate(cut);
            reason.push('…');
        }
        tracing::warn!(call.id = call_id.as_deref().unwrap_or("-"), reason = %reason, "dead-lettering invalid job");
        let key = call_id.clone().unwrap_or_else(|| "unknown".into());
        let dlq = self
            .bus
            .dead_letter(
                s::dlq(&key),
                &msg.subject,
                &reason,
                msg.headers.clone().unwrap_or_default(),
                msg.payload.clone(),
            )
            .await;
        if let Err(e) = dlq {
            // The copy is cut to fit, so a failure here is JetStream being unavailable, not the
            // message: keep it (nothing is lost), and back off harder once it has been tried
            // agent.max_deliveries times.
            let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
            let delay = if delivered < self.config.agent.max_deliveries {
                Duration::from_secs(5)
            } else {
                Duration::from_secs(60)
            };
            tracing::error!(error = %e, delivered, retry_in_s = delay.as_secs(), "cannot dead-letter an invalid job; redelivering");
            return ack(msg, AckKind::Nak(Some(delay))).await;
        }
        if let Some(call_id) = call_id {
            let summary = summary::invalid(self, &call_id, &msg.payload, &reason);
            let mut event = CallEvent::new(&call_id, EventKind::Failed, 0);
            event.summary = Some(summary);
            self.publish_until_done(&event).await;
            let mut state = CallState::queued(&call_id, "", "");
            state.status = CallStatus::Failed;
            state.last_outcome = Some(CallOutcome::InvalidRequest);
            state.error = Some(reason);
            self.put_state_until_done(&state).await;
        }
        ack(msg, AckKind::Term).await;
    }

    /// Poison or crash-looping job: dead-letter with the reason, publish `dead` and `failed`.
    async fn dead_letter(&self, msg: &Message, req: Option<&CallRequest>, reason: &str) {
        let key = req
            .map(|r| r.call_id.clone())
            .unwrap_or_else(|| "unknown".into());
        tracing::error!(call.id = %key, reason, "dead-lettering job");
        let dlq = self
            .bus
            .dead_letter(
                s::dlq(&key),
                &msg.subject,
                reason,
                msg.headers.clone().unwrap_or_default(),
                msg.payload.clone(),
            )
            .await;
        if dlq.is_err() {
            return ack(msg, AckKind::Nak(Some(Duration::from_secs(5)))).await;
        }
        if let Some(req) = req {
            let mut dead = CallEvent::new(&req.call_id, EventKind::Dead, 0);
            dead.event_id = format!(
                "{}.{}",
                dead.event_id,
                msg.info().map(|i| i.stream_sequence).unwrap_or(0)
            );
            dead.detail = Some(serde_json::json!({ "reason": reason }));
            self.publish_until_done(&dead).await;
            let summary = summary::never_dialed(
                self,
                req,
                CallOutcome::Failed,
                EndReason::DialFailed,
                reason,
            );
            self.settle(
                msg,
                &Job {
                    req: req.clone(),
                    attempt: summary.attempt,
                    infra_retries: 0,
                    delivered: 0,
                    generation: Job::header(msg, s::GENERATION_HEADER).unwrap_or(0),
                    campaign_job: msg.subject.starts_with("calls.campaign."),
                    timezone: None,
                },
                Disposition::Final(Box::new(summary)),
            )
            .await;
        } else {
            ack(msg, AckKind::Term).await;
        }
    }

    /// Events must not be lost: retry while NATS is away (bounded by the job's redelivery).
    pub(crate) async fn publish_until_done(&self, event: &CallEvent) {
        if let Err(e) = backon_retry(|| self.bus.publish_event(event)).await {
            tracing::error!(call.id = %event.call_id, kind = event.kind.as_str(), error = %e, "event not published");
        }
    }

    pub(crate) async fn put_state_until_done(&self, state: &CallState) {
        if let Err(e) = backon_retry(|| self.bus.put_call_state(state)).await {
            tracing::error!(call.id = %state.call_id, error = %e, "call state not recorded");
        }
    }
}

/// Longest dead-letter reason kept (a field error can echo a huge invalid value).
const MAX_REASON: usize = 2048;

/// Retry a NATS operation for up to about five minutes (NATS restarting, a cluster electing).
pub(crate) async fn backon_retry<T, E, F, Fut>(op: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    use backon::{ExponentialBuilder, Retryable};
    op.retry(
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(70),
    )
    .notify(|e: &E, after: Duration| tracing::warn!(error = %e, retry_in_ms = after.as_millis() as u64, "NATS operation failed"))
    .await
}

async fn ack(msg: &Message, kind: AckKind) {
    if let Err(e) = msg.ack_with(kind).await {
        tracing::warn!(error = %e, "ack failed; the job will be redelivered");
    }
}
