//! The retry policy (DESIGN.md §5): which outcomes retry, after how long, within which budget.

use std::time::Duration;

use callfleet_config::RetryConfig;
use callfleet_domain::{CallOutcome, CallRequest};
use jiff::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Retry {
        after: Duration,
        attempt: u32,
        infra_retries: u32,
    },
    Final,
}

const MAX_INFRA_DELAY: Duration = Duration::from_secs(600);

/// Decide what follows `outcome` on `attempt` (1-based) after `infra_retries` infrastructure
/// retries of that attempt.
pub fn decide(
    cfg: &RetryConfig,
    req: &CallRequest,
    outcome: CallOutcome,
    attempt: u32,
    infra_retries: u32,
) -> Decision {
    if outcome == CallOutcome::Infrastructure {
        if infra_retries >= cfg.max_infra_retries {
            return Decision::Final;
        }
        let factor = 2u64.saturating_pow(infra_retries.min(16));
        let after =
            Duration::from_secs(cfg.infra_delay_secs.saturating_mul(factor)).min(MAX_INFRA_DELAY);
        return Decision::Retry {
            after,
            attempt,
            infra_retries: infra_retries + 1,
        };
    }
    if !outcome.is_retryable() {
        return Decision::Final;
    }
    let over = req.retry.as_ref();
    let max_attempts = over
        .and_then(|r| r.max_attempts)
        .unwrap_or(cfg.max_attempts);
    if attempt >= max_attempts {
        return Decision::Final;
    }
    let delays = over.map(|r| r.delay_seconds.clone()).unwrap_or_default();
    let secs = match outcome {
        CallOutcome::Busy => delays.busy.unwrap_or(cfg.busy_delay_secs),
        CallOutcome::Unavailable => delays.unavailable.unwrap_or(cfg.unavailable_delay_secs),
        CallOutcome::NoAnswer => delays.no_answer.unwrap_or(cfg.no_answer_delay_secs),
        _ => delays
            .carrier_throttled
            .unwrap_or(cfg.carrier_throttled_delay_secs),
    };
    Decision::Retry {
        after: Duration::from_secs(secs),
        attempt: attempt + 1,
        infra_retries: 0,
    }
}

/// What follows a call a voicemail box answered: called again after `voicemail_delay_secs` (or
/// the request's `retry.delay_seconds.voicemail`) while attempts remain, when its policy
/// retries (`retry`). It spends an attempt: a voicemail is a contact not reached.
pub fn after_voicemail(
    cfg: &RetryConfig,
    req: &CallRequest,
    retry: bool,
    attempt: u32,
) -> Decision {
    let over = req.retry.as_ref();
    let max_attempts = over
        .and_then(|r| r.max_attempts)
        .unwrap_or(cfg.max_attempts);
    if !retry || attempt >= max_attempts {
        return Decision::Final;
    }
    let secs = over
        .and_then(|r| r.delay_seconds.voicemail)
        .unwrap_or(cfg.voicemail_delay_secs);
    Decision::Retry {
        after: Duration::from_secs(secs),
        attempt: attempt + 1,
        infra_retries: 0,
    }
}

/// When a retry decided now is due.
pub fn due(after: Duration) -> Timestamp {
    let after = jiff::SignedDuration::try_from(after).unwrap_or(jiff::SignedDuration::ZERO);
    Timestamp::now()
        .checked_add(after)
        .unwrap_or_else(|_| Timestamp::now())
}

#[cfg(test)]
mod tests {
    use callfleet_domain::request::{ValidateOptions, validate};
    use serde_json::json;

    use super::*;

    fn cfg() -> RetryConfig {
        RetryConfig {
            max_attempts: 3,
            busy_delay_secs: 300,
            unavailable_delay_secs: 900,
            no_answer_delay_secs: 1800,
            carrier_throttled_delay_secs: 1200,
            max_infra_retries: 2,
            infra_delay_secs: 5,
            voicemail_delay_secs: 7200,
        }
    }

    fn req(extra: serde_json::Value) -> CallRequest {
        let mut body = json!({"call_id": "c1", "destination": "+61402012298", "account_code": "a"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        validate(&body, &ValidateOptions::default()).expect("valid")
    }

    #[test]
    fn retryable_outcomes_retry_within_the_budget() {
        let r = req(json!({}));
        assert_eq!(
            decide(&cfg(), &r, CallOutcome::Busy, 1, 0),
            Decision::Retry {
                after: Duration::from_secs(300),
                attempt: 2,
                infra_retries: 0
            }
        );
        assert_eq!(
            decide(&cfg(), &r, CallOutcome::NoAnswer, 3, 0),
            Decision::Final,
            "budget spent"
        );
        assert_eq!(
            decide(&cfg(), &r, CallOutcome::Declined, 1, 0),
            Decision::Final,
            "terminal outcome"
        );
        assert_eq!(
            decide(&cfg(), &r, CallOutcome::TrunkRejected, 1, 0),
            Decision::Final
        );
    }

    #[test]
    fn requests_override_attempts_and_delays() {
        let r = req(json!({"retry": {"max_attempts": 5, "delay_seconds": {"busy": 2}}}));
        assert_eq!(
            decide(&cfg(), &r, CallOutcome::Busy, 4, 0),
            Decision::Retry {
                after: Duration::from_secs(2),
                attempt: 5,
                infra_retries: 0
            }
        );
        assert_eq!(decide(&cfg(), &r, CallOutcome::Busy, 5, 0), Decision::Final);
    }

    #[test]
    fn a_voicemail_is_called_again_by_policy_within_the_budget() {
        let r = req(json!({}));
        assert_eq!(
            after_voicemail(&cfg(), &r, true, 1),
            Decision::Retry {
                after: Duration::from_secs(7200),
                attempt: 2,
                infra_retries: 0
            }
        );
        assert_eq!(after_voicemail(&cfg(), &r, false, 1), Decision::Final);
        assert_eq!(after_voicemail(&cfg(), &r, true, 3), Decision::Final);
        let r = req(json!({"retry": {"max_attempts": 2, "delay_seconds": {"voicemail": 60}}}));
        assert_eq!(
            after_voicemail(&cfg(), &r, true, 1),
            Decision::Retry {
                after: Duration::from_secs(60),
                attempt: 2,
                infra_retries: 0
            }
        );
        assert_eq!(after_voicemail(&cfg(), &r, true, 2), Decision::Final);
    }

    #[test]
    fn infrastructure_retries_do_not_spend_attempts() {
        let r = req(json!({}));
        assert_eq!(
            decide(&cfg(), &r, CallOutcome::Infrastructure, 1, 0),
            Decision::Retry {
                after: Duration::from_secs(5),
                attempt: 1,
                infra_retries: 1
            }
        );
        assert_eq!(
            decide(&cfg(), &r, CallOutcome::Infrastructure, 1, 1),
            Decision::Retry {
                after: Duration::from_secs(10),
                attempt: 1,
                infra_retries: 2
            }
        );
        assert_eq!(
            decide(&cfg(), &r, CallOutcome::Infrastructure, 1, 2),
            Decision::Final
        );
    }
}
