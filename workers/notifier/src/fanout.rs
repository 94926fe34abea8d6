//! Final call events → one delivery per webhook target.

use std::time::Duration;

use async_nats::{HeaderMap, jetstream::AckKind};
use callfleet_bus::async_nats;
use callfleet_domain::{CallEvent, subjects as s};
use futures::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{Ctx, Delivery, NotifierError};

pub async fn run(ctx: Ctx, shutdown: CancellationToken) -> Result<(), NotifierError> {
    let consumer: async_nats::jetstream::consumer::PullConsumer = ctx
        .bus
        .js
        .get_consumer_from_stream(s::NOTIFIER_CONSUMER, s::EVENTS_STREAM)
        .await
        .map_err(|e| NotifierError::Consumer(s::NOTIFIER_CONSUMER, Box::new(e)))?;
    while !shutdown.is_cancelled() {
        let batch = consumer
            .fetch()
            .max_messages(256)
            .expires(Duration::from_secs(2))
            .messages()
            .await;
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "event fetch failed; retrying");
                tokio::select! { () = tokio::time::sleep(Duration::from_secs(1)) => {}, () = shutdown.cancelled() => {} }
                continue;
            }
        };
        while let Some(Ok(msg)) =
            tokio::select! { m = batch.next() => m, () = shutdown.cancelled() => None }
        {
            let fanned = if msg.subject.starts_with("campaigns.events.") {
                fan_out_campaign(&ctx, &msg.payload).await
            } else {
                fan_out(&ctx, &msg.payload).await
            };
            let ack = match fanned {
                Ok(()) => AckKind::Ack,
                Err(FanOutError::Poison(reason)) => {
                    tracing::error!(subject = %msg.subject, reason, "unreadable event; dead-lettering");
                    let dl = ctx
                        .bus
                        .dead_letter(
                            "webhooks.dlq.unreadable".into(),
                            &msg.subject,
                            &reason,
                            HeaderMap::new(),
                            msg.payload.clone(),
                        )
                        .await;
                    if dl.is_ok() {
                        AckKind::Term
                    } else {
                        AckKind::Nak(Some(Duration::from_secs(5)))
                    }
                }
                Err(FanOutError::Bus(e)) => {
                    tracing::warn!(error = %e, "cannot enqueue deliveries; will retry");
                    AckKind::Nak(Some(Duration::from_secs(2)))
                }
            };
            if let Err(e) = msg.ack_with(ack).await {
                tracing::warn!(error = %e, "event ack failed; it will be redelivered (deliveries are deduplicated)");
            }
        }
    }
    Ok(())
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
        let delivery = Delivery {
            webhook_id: webhook_id(event_id, i),
            url,
            event_type: event_type.clone(),
            call_id: campaign.to_owned(),
            body: body.clone(),
            attempt: 1,
            last_error: None,
        };
        crate::deliver::enqueue(ctx, &delivery, None)
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
        let delivery = Delivery {
            webhook_id: webhook_id(&event.event_id, i),
            url,
            event_type: event_type.clone(),
            call_id: event.call_id.clone(),
            body: body.clone(),
            attempt: 1,
            last_error: None,
        };
        crate::deliver::enqueue(ctx, &delivery, None)
            .await
            .map_err(FanOutError::Bus)?;
    }
    Ok(())
}
