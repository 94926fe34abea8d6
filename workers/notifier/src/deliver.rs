//! One POST per delivery message; the retry schedule lives in JetStream, not in memory.

use std::{sync::Arc, time::Duration};

use async_nats::{HeaderMap, jetstream::AckKind};
use callfleet_bus::{BusError, async_nats};
use callfleet_domain::subjects as s;
use futures::StreamExt;
use jiff::Timestamp;
use rand::Rng;
use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{Ctx, Delivery, NotifierError};

/// Put a delivery on `webhooks.deliver.<id>` now, or on `webhooks.schedule.<id>` for later.
pub async fn enqueue(ctx: &Ctx, d: &Delivery, at: Option<Timestamp>) -> Result<(), BusError> {
    let mut headers = HeaderMap::new();
    let body = serde_json::to_vec(d).map_err(|e| BusError::JetStream {
        op: "encode delivery",
        source: Box::new(e),
    })?;
    headers.insert(
        "Nats-Msg-Id",
        format!("{}.{}", d.webhook_id, d.attempt).as_str(),
    );
    let subject = match at {
        None => s::deliver(&d.webhook_id),
        Some(at) => {
            callfleet_bus::schedule_headers(&mut headers, at, &s::deliver(&d.webhook_id));
            s::webhook_schedule(&d.webhook_id)
        }
    };
    if !ctx.bus.is_connected() {
        return Err(BusError::Disconnected);
    }
    let ack = ctx
        .bus
        .js
        .publish_with_headers(subject, headers, body.into())
        .await
        .map_err(|e| BusError::JetStream {
            op: "publish delivery",
            source: Box::new(e),
        })?;
    tokio::time::timeout(Duration::from_secs(5), ack)
        .await
        .map_err(|_| BusError::Timeout(Duration::from_secs(5)))?
        .map_err(|e| BusError::JetStream {
            op: "publish delivery ack",
            source: Box::new(e),
        })?;
    Ok(())
}

pub async fn run(ctx: Ctx, shutdown: CancellationToken) -> Result<(), NotifierError> {
    let consumer: async_nats::jetstream::consumer::PullConsumer = ctx
        .bus
        .js
        .get_consumer_from_stream(s::DELIVERY_CONSUMER, s::WEBHOOKS_STREAM)
        .await
        .map_err(|e| NotifierError::Consumer(s::DELIVERY_CONSUMER, Box::new(e)))?;
    let slots = Arc::new(Semaphore::new(ctx.config.notifier.concurrency));
    let tracker = TaskTracker::new();
    while !shutdown.is_cancelled() {
        let free = slots.available_permits().max(1);
        let batch = consumer
            .fetch()
            .max_messages(free)
            .expires(Duration::from_secs(2))
            .messages()
            .await;
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "delivery fetch failed; retrying");
                tokio::select! { () = tokio::time::sleep(Duration::from_secs(1)) => {}, () = shutdown.cancelled() => {} }
                continue;
            }
        };
        while let Some(Ok(msg)) =
            tokio::select! { m = batch.next() => m, () = shutdown.cancelled() => None }
        {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let ctx = ctx.clone();
            tracker.spawn(async move {
                let ack = handle(&ctx, &msg.payload, &msg.subject).await;
                if let Err(e) = msg.ack_with(ack).await {
                    tracing::warn!(error = %e, "delivery ack failed; it may be sent again (same webhook-id)");
                }
                drop(permit);
            });
        }
    }
    tracker.close();
    if tokio::time::timeout(
        Duration::from_secs(ctx.config.notifier.timeout_secs + 2),
        tracker.wait(),
    )
    .await
    .is_err()
    {
        tracing::warn!("deliveries still in flight at shutdown; they will be redelivered");
    }
    Ok(())
}

enum Attempt {
    Delivered,
    Gone(String),
    Failed {
        error: String,
        retry_after: Option<Duration>,
    },
}

async fn handle(ctx: &Ctx, payload: &[u8], subject: &str) -> AckKind {
    let mut d: Delivery = match serde_json::from_slice(payload) {
        Ok(d) => d,
        Err(e) => {
            let reason = format!("unreadable delivery: {e}");
            let dl = ctx
                .bus
                .dead_letter(
                    "webhooks.dlq.unreadable".into(),
                    subject,
                    &reason,
                    HeaderMap::new(),
                    payload.to_vec().into(),
                )
                .await;
            return if dl.is_ok() {
                AckKind::Term
            } else {
                AckKind::Nak(Some(Duration::from_secs(5)))
            };
        }
    };
    let result = post(ctx, &d).await;
    let cfg = &ctx.config.notifier;
    let (reason, retry_after) = match result {
        Attempt::Delivered => {
            tracing::info!(call.id = %d.call_id, webhook.id = %d.webhook_id, attempt = d.attempt, "webhook delivered");
            return AckKind::Ack;
        }
        Attempt::Gone(reason) => (Some(reason), None),
        Attempt::Failed { error, retry_after } => {
            d.last_error = Some(error);
            (None, retry_after)
        }
    };
    let next_delay = cfg.schedule_secs.get(d.attempt as usize).copied();
    let dead_reason = match (reason, next_delay) {
        (Some(gone), _) => Some(gone),
        (None, None) => Some(format!(
            "gave up after {} attempts; last error: {}",
            d.attempt,
            d.last_error.as_deref().unwrap_or("unknown")
        )),
        (None, Some(_)) => None,
    };
    if let Some(reason) = dead_reason {
        tracing::error!(call.id = %d.call_id, webhook.id = %d.webhook_id, reason, "webhook dead-lettered");
        let body = serde_json::to_vec(&d).unwrap_or_default();
        let dl = ctx
            .bus
            .dead_letter(
                format!("webhooks.dlq.{}", d.webhook_id),
                subject,
                &reason,
                HeaderMap::new(),
                body.into(),
            )
            .await;
        return if dl.is_ok() {
            AckKind::Ack
        } else {
            AckKind::Nak(Some(Duration::from_secs(5)))
        };
    }
    let base = Duration::from_secs(next_delay.unwrap_or(0));
    let delay = match retry_after {
        Some(ra) => ra.min(Duration::from_secs(cfg.max_retry_after_secs)),
        None => base.mul_f64(1.0 + rand::rng().random_range(0.0..=cfg.jitter)),
    };
    tracing::warn!(
        call.id = %d.call_id, webhook.id = %d.webhook_id, attempt = d.attempt,
        error = d.last_error.as_deref().unwrap_or(""), retry_in_ms = delay.as_millis() as u64,
        "webhook failed; retrying"
    );
    d.attempt += 1;
    let at = Timestamp::now()
        .checked_add(jiff::SignedDuration::try_from(delay).unwrap_or_default())
        .ok();
    match enqueue(ctx, &d, at).await {
        Ok(()) => AckKind::Ack,
        Err(e) => {
            tracing::warn!(error = %e, "cannot schedule the retry; redelivering");
            AckKind::Nak(Some(delay.min(Duration::from_secs(30))))
        }
    }
}

async fn post(ctx: &Ctx, d: &Delivery) -> Attempt {
    let ts = Timestamp::now().as_second();
    let mut req = ctx
        .http
        .post(&d.url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.webhook_id)
        .header("webhook-timestamp", ts.to_string());
    if let Some(signer) = &ctx.signer {
        req = req.header(
            "webhook-signature",
            signer.sign(&d.webhook_id, ts, d.body.as_bytes()),
        );
    }
    if let Some((name, value)) = &ctx.auth_header {
        req = req.header(name.as_str(), value.as_str());
    }
    match req.body(d.body.clone()).send().await {
        Ok(resp) if resp.status().is_success() => Attempt::Delivered,
        Ok(resp) if resp.status() == reqwest::StatusCode::GONE => {
            Attempt::Gone("receiver answered 410 Gone".into())
        }
        Ok(resp) => {
            let status = resp.status();
            let retry_after = if matches!(status.as_u16(), 429 | 503) {
                resp.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after)
            } else {
                None
            };
            Attempt::Failed {
                error: format!("HTTP {status}"),
                retry_after,
            }
        }
        Err(e) => {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            Attempt::Failed {
                error: format!("{what}: {e}"),
                retry_after: None,
            }
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(v.trim()).ok()?.timestamp();
    let d = at.duration_since(Timestamp::now());
    Some(Duration::from_secs_f64(d.as_secs_f64().max(0.0)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(
            super::parse_retry_after("7"),
            Some(std::time::Duration::from_secs(7))
        );
        assert_eq!(
            super::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(std::time::Duration::ZERO)
        );
        assert_eq!(super::parse_retry_after("soon"), None);
    }
}
