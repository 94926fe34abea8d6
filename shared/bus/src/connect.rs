use std::time::Duration;

use callfleet_config::NatsConfig;

use crate::BusError;

/// Connect to NATS with the configured auth and TLS. Reconnects forever once connected, to any
/// server of `nats.url` (or one the cluster advertises). A link that goes silent (a partition
/// drops packets; the socket stays open) is taken for dead after two unanswered pings, every
/// `nats.ping_interval_secs`, and the client moves to another node.
pub async fn connect(cfg: &NatsConfig, role: &str) -> Result<async_nats::Client, BusError> {
    let fail = |source: Box<dyn std::error::Error + Send + Sync>| BusError::Connect {
        url: cfg.url.clone(),
        source,
    };
    let mut opts = async_nats::ConnectOptions::new()
        .name(format!("callfleet-{role}"))
        .connection_timeout(Duration::from_millis(cfg.connect_timeout_ms))
        .ping_interval(Duration::from_secs(cfg.ping_interval_secs))
        .max_reconnects(None)
        .reconnect_delay_callback(|attempt| {
            Duration::from_millis((100 * 2u64.pow(attempt.min(5) as u32)).min(2_000))
        })
        .require_tls(cfg.require_tls)
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Disconnected => tracing::warn!("nats disconnected"),
                async_nats::Event::Connected => tracing::info!("nats connected"),
                other => tracing::debug!(event = %other, "nats event"),
            }
        });
    if let Some(path) = &cfg.creds_file {
        opts = opts
            .credentials_file(path)
            .await
            .map_err(|e| fail(Box::new(e)))?;
    }
    if let Some(path) = &cfg.nkey_seed_file {
        let seed = std::fs::read_to_string(path).map_err(|e| fail(Box::new(e)))?;
        opts = opts.nkey(seed.trim().to_owned());
    }
    if let Some(token) = &cfg.token {
        opts = opts.token(token.clone());
    }
    if let Some(ca) = &cfg.tls_ca_file {
        opts = opts.add_root_certificates(ca.into());
    }
    let urls: Vec<async_nats::ServerAddr> = cfg
        .url
        .split(',')
        .map(|u| u.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<_, _>>()
        .map_err(|e| fail(Box::new(e)))?;
    opts.connect(urls).await.map_err(|e| fail(Box::new(e)))
}
