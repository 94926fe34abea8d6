//! Final call events → one delivery per webhook target.

use std::time::Duration;

use callfleet_bus::{Delivery, Outcome, Slots, Sources, backoff, consume};
use callfleet_domain::{CallEvent, subjects as s};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{Ctx, Delivery as Webhook, NotifierError};

/// Events fanned out at once, and how long one fetch waits for them.
const BATCH: usize = 256;
const FETCH_WAIT: Duration = Duration::from_secs(2);

pub async fn run(ctx: Ctx, shutdown: CancellationToken) -> Result<(), NotifierError> {
    let consumer = ctx
        .bus
        .consumer(s::EVENTS_STREAM, s::NOTIFIER_CONSUMER)
        .await
        .map_err(|e| NotifierError::Consumer(s::NOTIFIER_CONSUMER, Box::new(e)))?;
    let mut sources = Sources::one(consumer, FETCH_WAIT);
    let handler = {
        let ctx = ctx.clone();
        move |event| {
            let ctx = ctx.clone();
            async move { handle(&ctx, &event).await }
        }
    };
    let tracker = consume(
        &ctx.bus,
        &mut sources,
        &Slots::new(BATCH),
        &shutdown,
        handler,
    )
    .await;
    if tokio::time::timeout(Duration::from_secs(10), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "events still being fanned out at shutdown; they will be redelivered (deliveries are deduplicated)"
        );
    }
    Ok(())
}

async fn handle(ctx: &Ctx, msg: &Delivery) -> Outcome {
    let fanned = if msg.subject().starts_with("campaigns.events.") {
        fan_out_campaign(ctx, msg.payload()).await
    } else {
        fan_out(ctx, msg.payload()).await
    };
    match fanned {
        Ok(()) => Outcome::Ack,
        Err(FanOutError::Poison(reason)) => {
            tracing::error!(subject = %msg.subject(), reason, "unreadable event; dead-lettering");
            Outcome::dead("webhooks.dlq.unreadable", reason)
        }
        Err(FanOutError::Bus(e)) => {
            tracing::warn!(error = %e, "cannot enqueue deliveries; will retry");
            Outcome::retry(backoff::TRANSIENT, "cannot enqueue deliveries")
        }
    }
}

enum FanOutError {
    Poison(String),
    Bus(callfleet_bus::BusError),
}

/// A webhook id that is stable for (event, target) and usable as a subject token.
pub fn webhook_id(event_id: &str, target_index: usize) -> String {
    let clean: String = event_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("msg_{clean}_{target_index}")
}

/// A campaign event (`completed`): `{"type": "campaign.completed", "data": <totals>}` to
/// `notifier.webhook_url` and the campaign's `callback_url`.
async fn fan_out_campaign(ctx: &Ctx, payload: &[u8]) -> Result<(), FanOutError> {
    let event: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| FanOutError::Poison(format!("not a campaign event: {e}")))?;
    let (Some(event_id), Some(kind), Some(campaign)) = (
        event["event_id"].as_str(),
        event["kind"].as_str(),
        event["campaign_id"].as_str(),
    ) else {
        return Err(FanOutError::Poison(
            "a campaign event needs event_id, kind and campaign_id".into(),
        ));
    };
    let mut targets: Vec<String> = ctx.config.notifier.webhook_url.iter().cloned().collect();
    if let Some(url) = event["callback_url"].as_str()
        && !targets.iter().any(|t| t == url)
    {
        targets.push(url.to_owned());
    }
    let event_type = format!("campaign.{kind}");
    let body = json!({ "type": event_type, "timestamp": event["at"], "data": event }).to_string();
    for (i, url) in targets.into_iter().enumerate() {
        let delivery = Webhook {
            webhook_id: webhook_id(event_id, i),
            url,
            event_type: event_type.clone(),
            call_id: campaign.to_owned(),
            body: body.clone(),
            attempt: 1,
            last_error: None,
        };
        crate::deliver::enqueue(ctx, &delivery)
            .await
            .map_err(FanOutError::Bus)?;
    }
    Ok(())
}

async fn fan_out(ctx: &Ctx, payload: &[u8]) -> Result<(), FanOutError> {
    let event: CallEvent = serde_json::from_slice(payload)
        .map_err(|e| FanOutError::Poison(format!("not a call event: {e}")))?;
    let mut targets: Vec<String> = ctx.config.notifier.webhook_url.iter().cloned().collect();
    if let Some(url) = event.summary.as_ref().and_then(|s| s.callback_url.clone())
        && !targets.contains(&url)
    {
        targets.push(url);
    }
    if targets.is_empty() {
        tracing::debug!(call.id = %event.call_id, "no webhook target for this call");
        return Ok(());
    }
    let event_type = format!("call.{}", event.kind.as_str());
    let data = match &event.summary {
        Some(summary) => serde_json::to_value(summary),
        None => serde_json::to_value(&event),
    }
    .map_err(|e| FanOutError::Poison(e.to_string()))?;
    let body = json!({ "type": event_type, "timestamp": event.at, "data": data }).to_string();
    for (i, url) in targets.into_iter().enumerate() {
        let delivery = Webhook {
            webhook_id: webhook_id(&event.event_id, i),
            url,
            event_type: event_type.clone(),
            call_id: event.call_id.clone(),
            body: body.clone(),
            attempt: 1,
            last_error: None,
        };
        crate::deliver::enqueue(ctx, &delivery)
            .await
            .map_err(FanOutError::Bus)?;
    }
    Ok(())
}
