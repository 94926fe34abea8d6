//! Configuration, layered as in svix: the commented `config/default.toml` (embedded), then an
//! optional file (`--config` or `CALLFLEET_CONFIG`), then environment variables.
//!
//! Environment: the seed's names work as-is (`LIVEKIT_URL`, `SIP_TRUNK_ID`, `N8N_WEBHOOK_URL`,
//! ...; see [`SEED_ENV`]), and every key is reachable as `CALLFLEET_<SECTION>__<KEY>`.
//! `.env.local` is read when present (it never overrides the real environment).
//! Unknown keys are rejected; [`Config::validate`] checks everything in one place.

mod lenient;
mod model;
mod validate;

use std::path::Path;

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};

pub use model::*;

/// The commented defaults, embedded so a binary needs no file on disk.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// Seed env names and the keys they set.
pub const SEED_ENV: &[(&str, &str)] = &[
    ("NATS_URL", "nats.url"),
    ("NATS_CREDS", "nats.creds_file"),
    ("LIVEKIT_URL", "livekit.url"),
    ("LIVEKIT_API_KEY", "livekit.api_key"),
    ("LIVEKIT_API_SECRET", "livekit.api_secret"),
    ("LIVEKIT_AGENT_NAME", "livekit.agent_name"),
    ("SIP_TRUNK_ID", "sip.trunk_id"),
    ("SIP_FROM_NUMBER", "sip.from_number"),
    ("SIP_FROM_IDENTITY", "sip.from_identity"),
    ("SIP_DISPLAY_NAME", "sip.display_name"),
    ("N8N_WEBHOOK_URL", "notifier.webhook_url"),
    ("WEBHOOK_SECRET", "notifier.webhook_secret"),
    ("CALLFLEET_API_KEYS", "ingress.api_keys"),
    ("LOG_LEVEL", "log.level"),
];

/// A configuration problem: names the key and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Load(Box<figment::Error>),
    #[error("invalid configuration: `{key}` {problem}")]
    Invalid { key: String, problem: String },
    #[error("cannot read {path}: {source}")]
    EnvFile {
        path: String,
        #[source]
        source: dotenvy::Error,
    },
}

impl Config {
    /// Load defaults → optional file → `.env.local` → environment, then validate.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        load_env_file(Path::new(".env.local"))?;
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        Self::from_figment(figment.merge(env_provider()).merge(seed_env_provider()))
    }

    /// Extract and validate from any figment (tests use inline TOML).
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Defaults plus `toml` layered on top, validated. For tests and tools.
    pub fn from_toml(toml: &str) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(toml)))
    }
}

fn env_provider() -> Env {
    Env::prefixed("CALLFLEET_")
        .ignore(&["CONFIG", "API_KEYS", "BIN", "LOG"])
        .split("__")
}

/// The seed's env names, taken as raw strings: figment's `Env` would parse `+61123456789` into
/// a number and lose the `+`.
fn seed_env_provider() -> Figment {
    let mut figment = Figment::new();
    for (env, path) in SEED_ENV {
        if let Ok(value) = std::env::var(env) {
            figment = figment.merge(Serialized::default(path, value));
        }
    }
    figment
}

fn load_env_file(path: &Path) -> Result<(), ConfigError> {
    match dotenvy::from_path(path) {
        Ok(()) => Ok(()),
        Err(e) if e.not_found() => Ok(()),
        Err(source) => Err(ConfigError::EnvFile {
            path: path.display().to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests;
