//! One POST per delivery message; the retry schedule lives in JetStream, not in memory, and
//! what to do after a POST is [`crate::policy`]'s decision.

use std::time::Duration;

use callfleet_bus::{BusError, Delivery, Outcome, Outgoing, Slots, Sources, backoff, consume};
use callfleet_domain::subjects as s;
use jiff::Timestamp;
use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::{
    Ctx, Delivery as Webhook, NotifierError,
    policy::{self, Attempt, Decision, Policy},
};

/// How long one fetch waits for deliveries.
const FETCH_WAIT: Duration = Duration::from_secs(2);

/// A delivery as a message: on `webhooks.deliver.<id>` now, or waiting on
/// `webhooks.schedule.<id>` until `at`; deduplicated by webhook id and attempt.
fn message(d: &Webhook, at: Option<Timestamp>) -> Result<Outgoing, BusError> {
    let body = serde_json::to_vec(d).map_err(|e| BusError::JetStream {
        op: "encode delivery",
        source: Box::new(e),
    })?;
    let msg_id = format!("{}.{}", d.webhook_id, d.attempt);
    Ok(match at {
        None => Outgoing::new(s::deliver(&d.webhook_id), &msg_id, body),
        Some(at) => Outgoing::new(s::webhook_schedule(&d.webhook_id), &msg_id, body)
            .scheduled(at, &s::deliver(&d.webhook_id)),
    })
}

/// Put a delivery on `webhooks.deliver.<id>` now.
pub async fn enqueue(ctx: &Ctx, d: &Webhook) -> Result<(), BusError> {
    ctx.bus.publish(message(d, None)?).await?;
    Ok(())
}

pub async fn run(ctx: Ctx, shutdown: CancellationToken) -> Result<(), NotifierError> {
    let consumer = ctx
        .bus
        .consumer(s::WEBHOOKS_STREAM, s::DELIVERY_CONSUMER)
        .await
        .map_err(|e| NotifierError::Consumer(s::DELIVERY_CONSUMER, Box::new(e)))?;
    let mut sources = Sources::one(consumer, FETCH_WAIT);
    let slots = Slots::new(ctx.config.notifier.concurrency);
    let handler = {
        let ctx = ctx.clone();
        move |delivery| {
            let ctx = ctx.clone();
            async move { handle(&ctx, &delivery).await }
        }
    };
    let tracker = consume(&ctx.bus, &mut sources, &slots, &shutdown, handler).await;
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

async fn handle(ctx: &Ctx, msg: &Delivery) -> Outcome {
    let mut d: Webhook = match serde_json::from_slice(msg.payload()) {
        Ok(d) => d,
        Err(e) => {
            return Outcome::dead(
                "webhooks.dlq.unreadable",
                format!("unreadable delivery: {e}"),
            );
        }
    };
    let result = post(ctx, &d).await;
    let draw = rand::rng().random_range(0.0..=1.0);
    let decision = Policy::new(&ctx.config.notifier).decide(d.attempt, &result, draw);
    if let Attempt::Failed { error, .. } = result {
        d.last_error = Some(error);
    }
    match decision {
        Decision::Done => {
            tracing::info!(call.id = %d.call_id, webhook.id = %d.webhook_id, attempt = d.attempt, "webhook delivered");
            Outcome::Ack
        }
        Decision::GiveUp { reason } => {
            tracing::error!(call.id = %d.call_id, webhook.id = %d.webhook_id, reason, "webhook dead-lettered");
            Outcome::Dead {
                dlq_subject: format!("webhooks.dlq.{}", d.webhook_id),
                reason,
                payload: Some(serde_json::to_vec(&d).unwrap_or_default().into()),
            }
        }
        Decision::Retry { delay } => {
            tracing::warn!(
                call.id = %d.call_id, webhook.id = %d.webhook_id, attempt = d.attempt,
                error = d.last_error.as_deref().unwrap_or(""), retry_in_ms = delay.as_millis() as u64,
                "webhook failed; retrying"
            );
            d.attempt += 1;
            let at = Timestamp::now()
                .checked_add(jiff::SignedDuration::try_from(delay).unwrap_or_default())
                .ok();
            match message(&d, at) {
                // If the scheduled copy cannot be written, the POST is redelivered instead.
                Ok(next) => Outcome::schedule(next, delay.min(backoff::MAX)),
                Err(e) => Outcome::retry(delay.min(backoff::MAX), e.to_string()),
            }
        }
    }
}

async fn post(ctx: &Ctx, d: &Webhook) -> Attempt {
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
        Ok(resp) => {
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok());
            policy::classify(resp.status(), retry_after, Timestamp::now())
        }
        Err(e) => policy::network_error(e.is_timeout(), e.is_connect(), &e.to_string()),
    }
}
