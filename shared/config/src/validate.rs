//! Semantic checks, in one place, each naming its key.

use callfleet_domain::answering::AnswerAction;

use crate::{Config, ConfigError};

fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        problem: problem.into(),
    }
}

fn check_url(key: &str, value: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let url = url::Url::parse(value)
        .map_err(|e| invalid(key, format!("is not a URL ({e}): {value:?}")))?;
    if !schemes.contains(&url.scheme()) {
        return Err(invalid(
            key,
            format!("must use one of {schemes:?}, got {:?}", url.scheme()),
        ));
    }
    Ok(())
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        // A cluster's URLs are comma-separated: each must be one.
        for url in self.nats.url.split(',') {
            check_url("nats.url", url.trim(), &["nats", "tls", "ws", "wss"])?;
        }
        if !(1..=120).contains(&self.nats.ping_interval_secs) {
            return Err(invalid(
                "nats.ping_interval_secs",
                "must be between 1 and 120",
            ));
        }
        if !(100..=60_000).contains(&self.nats.connect_timeout_ms) {
            return Err(invalid(
                "nats.connect_timeout_ms",
                "must be between 100 and 60000",
            ));
        }
        if !(1..=5).contains(&self.nats.replicas) {
            return Err(invalid("nats.replicas", "must be between 1 and 5"));
        }
        if self.nats.duplicate_window_secs == 0 {
            return Err(invalid("nats.duplicate_window_secs", "must be at least 1"));
        }
        if !(1..=24 * 365).contains(&self.nats.livekit_events_max_age_hours) {
            return Err(invalid(
                "nats.livekit_events_max_age_hours",
                "must be between 1 and 8760",
            ));
        }
        if !(10..=86_400).contains(&self.livekit.webhook_max_age_secs) {
            return Err(invalid(
                "livekit.webhook_max_age_secs",
                "must be between 10 and 86400",
            ));
        }
        if let Some(url) = &self.livekit.url {
            check_url("livekit.url", url, &["http", "https", "ws", "wss"])?;
        }
        let name = &self.livekit.agent_name;
        if name.trim().is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err(invalid(
                "livekit.agent_name",
                "must be 1 to 128 characters without control characters",
            ));
        }
        let inbound = &self.inbound;
        if !(1..=600).contains(&inbound.max_wait_secs) {
            return Err(invalid(
                "inbound.max_wait_secs",
                "must be between 1 and 600",
            ));
        }
        if inbound.busy_message.trim().is_empty() {
            return Err(invalid(
                "inbound.busy_message",
                "must not be empty: a caller no worker can take hears it",
            ));
        }
        if !callfleet_domain::subjects::is_token(&inbound.campaign) {
            return Err(invalid(
                "inbound.campaign",
                "must be 1 to 64 ASCII letters, digits, '-' or '_'",
            ));
        }
        let mut session_sets: Vec<(String, &serde_json::Map<String, serde_json::Value>)> = inbound
            .numbers
            .iter()
            .map(|(n, o)| (format!("inbound.numbers.\"{n}\""), o))
            .collect();
        session_sets.push(("inbound.default".to_owned(), &inbound.default));
        for (number, options) in session_sets {
            if let Err(errors) = callfleet_domain::request::session_options_of(options) {
                let problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
                return Err(invalid(&number, problems.join("; ")));
            }
        }
        let rec = &self.recording;
        if !(1..=5).contains(&rec.replicas) {
            return Err(invalid("recording.replicas", "must be between 1 and 5"));
        }
        if rec.max_age_hours == 0 {
            return Err(invalid("recording.max_age_hours", "must be at least 1"));
        }
        if !(1..=60).contains(&rec.segment_secs) {
            return Err(invalid(
                "recording.segment_secs",
                "must be between 1 and 60",
            ));
        }
        if !(6_000..=128_000).contains(&rec.bitrate_bps) {
            return Err(invalid(
                "recording.bitrate_bps",
                "must be between 6000 and 128000",
            ));
        }
        let ans = &self.answering;
        if !(100..=10_000).contains(&ans.budget_ms) {
            return Err(invalid(
                "answering.budget_ms",
                "must be between 100 and 10000",
            ));
        }
        if !(1..=120).contains(&ans.max_wait_secs) {
            return Err(invalid(
                "answering.max_wait_secs",
                "must be between 1 and 120",
            ));
        }
        if !(1..=60).contains(&ans.silence_secs) {
            return Err(invalid(
                "answering.silence_secs",
                "must be between 1 and 60",
            ));
        }
        if ans.voicemail.action == Some(AnswerAction::LeaveMessage)
            && ans
                .voicemail
                .message
                .as_deref()
                .is_none_or(|m| m.trim().is_empty())
        {
            return Err(invalid(
                "answering.voicemail.message",
                "is required when answering.voicemail.action is \"leave_message\"",
            ));
        }
        for (field, policy) in [
            ("answering.call_screening.action", &ans.call_screening),
            ("answering.ivr.action", &ans.ivr),
        ] {
            if policy.action == Some(AnswerAction::LeaveMessage) {
                return Err(invalid(
                    field,
                    "must be \"continue\" or \"hangup\" (leave_message is for voicemail)",
                ));
            }
        }
        if self.livekit.url.is_some() != self.livekit.api_key.is_some()
            || self.livekit.url.is_some() != self.livekit.api_secret.is_some()
        {
            return Err(invalid(
                "livekit",
                "needs url, api_key and api_secret together (LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET)",
            ));
        }
        if !(1..=75).contains(&self.sip.ringing_timeout_secs) {
            return Err(invalid(
                "sip.ringing_timeout_secs",
                "must be between 1 and 75 (livekit-server caps the dial at 80 s)",
            ));
        }
        if !(1..=75).contains(&self.sip.transfer_timeout_secs) {
            return Err(invalid(
                "sip.transfer_timeout_secs",
                "must be between 1 and 75 (as the dial's ring time)",
            ));
        }
        if let Some(cc) = &self.phone.default_country_code
            && (cc.is_empty()
                || cc.len() > 3
                || !cc.bytes().all(|b| b.is_ascii_digit())
                || cc.starts_with('0'))
        {
            return Err(invalid(
                "phone.default_country_code",
                "must be 1 to 3 digits, e.g. \"61\"",
            ));
        }
        self.ingress
            .bind
            .parse::<std::net::SocketAddr>()
            .map_err(|e| invalid("ingress.bind", format!("is not host:port ({e})")))?;
        for (key, listen) in [
            ("agent.metrics_listen", &self.agent.metrics_listen),
            ("notifier.metrics_listen", &self.notifier.metrics_listen),
            ("campaigner.metrics_listen", &self.campaigner.metrics_listen),
            ("dispatcher.metrics_listen", &self.dispatcher.metrics_listen),
        ] {
            listen
                .parse::<std::net::SocketAddr>()
                .map_err(|e| invalid(key, format!("is not host:port ({e})")))?;
        }
        if self.ingress.upload_limit_bytes < self.ingress.body_limit_bytes {
            return Err(invalid(
                "ingress.upload_limit_bytes",
                "must be at least ingress.body_limit_bytes",
            ));
        }
        if self.ingress.body_limit_bytes < 1024 {
            return Err(invalid("ingress.body_limit_bytes", "must be at least 1024"));
        }
        if let Some(url) = &self.ingress.public_url {
            check_url("ingress.public_url", url, &["http", "https"])?;
        }
        if self.ingress.api_keys.iter().any(|k| k.len() < 16) {
            return Err(invalid(
                "ingress.api_keys",
                "every key must be at least 16 characters",
            ));
        }
        if self.agent.max_concurrent_calls == 0 {
            return Err(invalid("agent.max_concurrent_calls", "must be at least 1"));
        }
        if self.agent.max_call_duration_secs == 0 {
            return Err(invalid(
                "agent.max_call_duration_secs",
                "must be at least 1",
            ));
        }
        if self.agent.ack_wait_secs < 3 {
            return Err(invalid("agent.ack_wait_secs", "must be at least 3"));
        }
        if self.agent.lease_ttl_secs < 3 {
            return Err(invalid("agent.lease_ttl_secs", "must be at least 3"));
        }
        if self.agent.max_deliveries < 2 {
            return Err(invalid("agent.max_deliveries", "must be at least 2"));
        }
        if !(1..=20).contains(&self.retry.max_attempts) {
            return Err(invalid("retry.max_attempts", "must be between 1 and 20"));
        }
        if let Some(url) = &self.notifier.webhook_url {
            check_url("notifier.webhook_url", url, &["http", "https"])?;
        }
        if let Some(secret) = &self.notifier.webhook_secret {
            let ok = secret.strip_prefix("whsec_").is_some_and(|b| b.len() >= 16);
            if !ok {
                return Err(invalid(
                    "notifier.webhook_secret",
                    "must look like whsec_<base64 of at least 12 bytes>",
                ));
            }
        }
        if let Some(h) = &self.notifier.auth_header
            && !h.contains(':')
        {
            return Err(invalid(
                "notifier.auth_header",
                "must be `Header-Name: value`",
            ));
        }
        if self.notifier.schedule_secs.is_empty() {
            return Err(invalid(
                "notifier.schedule_secs",
                "needs at least one entry (the first attempt)",
            ));
        }
        if !(0.0..=1.0).contains(&self.notifier.jitter) {
            return Err(invalid("notifier.jitter", "must be between 0 and 1"));
        }
        if self.notifier.concurrency == 0 {
            return Err(invalid("notifier.concurrency", "must be at least 1"));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(invalid("log.format", "must be \"text\" or \"json\""));
        }
        Ok(())
    }
}
