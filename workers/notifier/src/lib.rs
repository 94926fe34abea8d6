//! The notifier: two durable consumers, so nothing is lost while a receiver is down or the
//! notifier restarts.
//!
//! 1. [`fanout`]: the `notifier` consumer reads final call events (`ended`, `failed`) and puts
//!    one delivery per target (`notifier.webhook_url` and the request's `callback_url`) on
//!    `webhooks.deliver.<webhook_id>`, deduplicated by the webhook id, then acks the event.
//! 2. [`deliver`]: the `notifier-deliveries` consumer POSTs each delivery, signed per Standard
//!    Webhooks ([`sign`]). 2xx: done. 410: dead-lettered at once. Anything else: the same
//!    delivery (same `webhook-id`, same body) is scheduled again on `webhooks.schedule.<id>` at
//!    the next step of `notifier.schedule_secs` (or `Retry-After` for 429/503), holding no
//!    consumer slot meanwhile; after the last step it is dead-lettered with the last error.
//!    Those rules are [`policy`], a pure function beside the I/O.
//!
//! Both run on the bus's consume loop ([`callfleet_bus::consume`]): their handlers return an
//! outcome (ack, retry later, scheduled copy, dead letter) and the bus carries it out.
//! `notifier.metrics_listen` serves `/healthz`, `/readyz` (503 while draining) and `/metrics`
//! (both consumers' `num_pending` and `num_ack_pending`) through [`callfleet_ops`].

mod deliver;
mod fanout;
pub mod policy;
pub mod sign;

use std::{sync::Arc, time::Duration};

use callfleet_bus::{Bus, Watch};
use callfleet_config::Config;
use callfleet_domain::subjects as s;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use sign::Signer;

#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error(transparent)]
    Bus(#[from] callfleet_bus::BusError),
    #[error("cannot open consumer {0}")]
    Consumer(
        &'static str,
        #[source] Box<dyn std::error::Error + Send + Sync>,
    ),
    #[error("invalid notifier configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Ops(#[from] callfleet_ops::OpsError),
}

/// One webhook to deliver: stable id, target, and the exact body to sign and send.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub webhook_id: String,
    pub url: String,
    pub event_type: String,
    pub call_id: String,
    pub body: String,
    /// 1-based attempt number of the next POST.
    pub attempt: u32,
    pub last_error: Option<String>,
}

#[derive(Clone)]
pub(crate) struct Ctx {
    pub bus: Bus,
    pub config: Arc<Config>,
    pub http: reqwest::Client,
    pub signer: Option<Signer>,
    pub auth_header: Option<(String, String)>,
}

/// Run both consumers until `shutdown`.
pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> Result<(), NotifierError> {
    let signer = match &config.notifier.webhook_secret {
        Some(secret) => Some(Signer::new(secret).map_err(NotifierError::Config)?),
        None => {
            tracing::warn!(
                "notifier.webhook_secret (WEBHOOK_SECRET) is not set: webhooks go out unsigned"
            );
            None
        }
    };
    if config.notifier.webhook_url.is_none() {
        tracing::warn!(
            "notifier.webhook_url (N8N_WEBHOOK_URL) is not set: only requests' callback_url receive summaries"
        );
    }
    let auth_header = config.notifier.auth_header.as_ref().and_then(|h| {
        let (name, value) = h.split_once(':')?;
        Some((name.trim().to_owned(), value.trim().to_owned()))
    });
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(config.notifier.timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("callfleet-notifier/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| NotifierError::Config(e.to_string()))?;
    let bus = Bus::connect(&config, "notifier").await?;
    let ops = callfleet_ops::Ops::new(
        "notifier",
        bus.clone(),
        vec![
            Watch::Consumer {
                stream: s::EVENTS_STREAM,
                name: s::NOTIFIER_CONSUMER,
            },
            Watch::Consumer {
                stream: s::WEBHOOKS_STREAM,
                name: s::DELIVERY_CONSUMER,
            },
        ],
        shutdown.clone(),
        Vec::new(),
        Vec::new(),
    )?;
    let probes = ops.serve(&config.notifier.metrics_listen).await?;
    let ctx = Ctx {
        bus: bus.clone(),
        config,
        http,
        signer,
        auth_header,
    };
    tracing::info!("notifier started");
    let fan = tokio::spawn(fanout::run(ctx.clone(), shutdown.clone()));
    let del = tokio::spawn(deliver::run(ctx, shutdown.clone()));
    ops.consuming();
    let (a, b) = tokio::join!(fan, del);
    for r in [a, b] {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => tracing::error!(error = %e, "notifier task panicked"),
        }
    }
    bus.drain(Duration::from_secs(10)).await;
    probes.stop().await;
    tracing::info!("notifier stopped");
    Ok(())
}
