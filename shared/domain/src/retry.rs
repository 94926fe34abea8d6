//! A request's override of the retry policy (the policy itself lives in the agent's config).

use serde::{Deserialize, Serialize};

/// `retry` on a request: overrides the fleet's retry policy for this call.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RetryOverride {
    /// Total dial attempts, 1 to 20 (1 means never retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Delay before the next attempt, in seconds, per retryable outcome.
    #[serde(default, skip_serializing_if = "RetryDelays::is_empty")]
    pub delay_seconds: RetryDelays,
}

/// Per-outcome retry delays in seconds; absent keys keep the fleet's defaults.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RetryDelays {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_answer: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_throttled: Option<u64>,
    /// After a voicemail (see `voicemail.retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voicemail: Option<u64>,
}

impl RetryDelays {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}
