//! The webhook retry policy, pure (as `retry::decide` is for dials): what a receiver's answer
//! means, and what to do next: done, try again after a delay, or give up (dead-letter).
//!
//! - 2xx: delivered. 410 Gone: give up at once (the receiver says it will never want it).
//! - Any other status (4xx and 5xx alike) or a network error (timeout, refused connection):
//!   retry at the next step of `notifier.schedule_secs` (step `attempt`, the first POST being
//!   attempt 1), stretched by up to `notifier.jitter` of itself; for 429 and 503 a
//!   `Retry-After` (seconds or an HTTP date) replaces the step, capped at
//!   `notifier.max_retry_after_secs`.
//! - No step left: give up with the last error.

use std::time::Duration;

use callfleet_config::NotifierConfig;
use jiff::Timestamp;

/// What one POST came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered,
    Gone(String),
    Failed {
        error: String,
        retry_after: Option<Duration>,
    },
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Done,
    /// POST again after `delay`.
    Retry {
        delay: Duration,
    },
    /// Dead-letter the delivery with `reason`.
    GiveUp {
        reason: String,
    },
}

/// The knobs of the policy (from `notifier.*`).
#[derive(Debug, Clone)]
pub struct Policy<'a> {
    pub schedule_secs: &'a [u64],
    /// Fraction of a step added at most as jitter (0..=1).
    pub jitter: f64,
    pub max_retry_after: Duration,
}

impl<'a> Policy<'a> {
    pub fn new(cfg: &'a NotifierConfig) -> Self {
        Self {
            schedule_secs: &cfg.schedule_secs,
            jitter: cfg.jitter,
            max_retry_after: Duration::from_secs(cfg.max_retry_after_secs),
        }
    }

    /// Decide after attempt number `attempt` (1-based). `jitter_draw` is a uniform draw in
    /// 0..=1 (the caller's random source): the delay is the step times `1 + draw × jitter`.
    pub fn decide(&self, attempt: u32, result: &Attempt, jitter_draw: f64) -> Decision {
        let (error, retry_after) = match result {
            Attempt::Delivered => return Decision::Done,
            Attempt::Gone(reason) => {
                return Decision::GiveUp {
                    reason: reason.clone(),
                };
            }
            Attempt::Failed { error, retry_after } => (error, retry_after),
        };
        let Some(step) = self.schedule_secs.get(attempt as usize).copied() else {
            return Decision::GiveUp {
                reason: format!("gave up after {attempt} attempts; last error: {error}"),
            };
        };
        let delay = match retry_after {
            Some(ra) => (*ra).min(self.max_retry_after),
            None => Duration::from_secs(step)
                .mul_f64(1.0 + jitter_draw.clamp(0.0, 1.0) * self.jitter.clamp(0.0, 1.0)),
        };
        Decision::Retry { delay }
    }
}

/// A receiver's HTTP answer. `retry_after` is the raw `Retry-After` header, honoured for 429
/// and 503 only.
pub fn classify(status: reqwest::StatusCode, retry_after: Option<&str>, now: Timestamp) -> Attempt {
    if status.is_success() {
        return Attempt::Delivered;
    }
    if status == reqwest::StatusCode::GONE {
        return Attempt::Gone("receiver answered 410 Gone".into());
    }
    let retry_after = if matches!(status.as_u16(), 429 | 503) {
        retry_after.and_then(|v| parse_retry_after(v, now))
    } else {
        None
    };
    Attempt::Failed {
        error: format!("HTTP {status}"),
        retry_after,
    }
}

/// A request that got no answer: timed out, could not connect, or failed otherwise.
pub fn network_error(timed_out: bool, connect: bool, error: &str) -> Attempt {
    let what = if timed_out {
        "timed out"
    } else if connect {
        "connection failed"
    } else {
        "request failed"
    };
    Attempt::Failed {
        error: format!("{what}: {error}"),
        retry_after: None,
    }
}

/// `Retry-After` as seconds or an HTTP date (a date in the past is zero).
pub fn parse_retry_after(v: &str, now: Timestamp) -> Option<Duration> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(v.trim()).ok()?.timestamp();
    let d = at.duration_since(now);
    Some(Duration::from_secs_f64(d.as_secs_f64().max(0.0)))
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;

    const SCHEDULE: &[u64] = &[0, 5, 30, 120];

    fn policy() -> Policy<'static> {
        Policy {
            schedule_secs: SCHEDULE,
            jitter: 0.5,
            max_retry_after: Duration::from_secs(600),
        }
    }

    fn failed(error: &str) -> Attempt {
        Attempt::Failed {
            error: error.into(),
            retry_after: None,
        }
    }

    fn now() -> Timestamp {
        "2030-01-01T00:00:00Z".parse().expect("timestamp")
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after("7", now()), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Tue, 01 Jan 2030 00:01:00 GMT", now()),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now()), None);
    }

    #[test]
    fn each_failure_waits_for_the_next_step_of_the_schedule() {
        let p = policy();
        for (attempt, step) in [(1, 5), (2, 30), (3, 120)] {
            assert_eq!(
                p.decide(attempt, &failed("HTTP 500"), 0.0),
                Decision::Retry {
                    delay: Duration::from_secs(step)
                },
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn jitter_stretches_a_step_by_at_most_its_fraction() {
        let p = policy();
        let d = |draw| match p.decide(2, &failed("HTTP 502"), draw) {
            Decision::Retry { delay } => delay,
            other => panic!("{other:?}"),
        };
        assert_eq!(d(0.0), Duration::from_secs(30));
        assert_eq!(d(0.5), Duration::from_millis(37_500));
        assert_eq!(d(1.0), Duration::from_secs(45));
        assert_eq!(
            d(7.0),
            Duration::from_secs(45),
            "a draw out of range is clamped"
        );
    }

    #[test]
    fn retry_after_is_honoured_for_429_and_503_and_capped() {
        let p = policy();
        for status in [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
        ] {
            let a = classify(status, Some("90"), now());
            assert_eq!(
                p.decide(1, &a, 1.0),
                Decision::Retry {
                    delay: Duration::from_secs(90)
                },
                "{status}: no jitter on Retry-After"
            );
            let a = classify(status, Some("86400"), now());
            assert_eq!(
                p.decide(1, &a, 0.0),
                Decision::Retry {
                    delay: Duration::from_secs(600)
                },
                "{status}: capped"
            );
        }
        // Other statuses ignore it.
        let a = classify(StatusCode::INTERNAL_SERVER_ERROR, Some("90"), now());
        assert_eq!(
            p.decide(1, &a, 0.0),
            Decision::Retry {
                delay: Duration::from_secs(5)
            }
        );
    }

    #[test]
    fn statuses_and_network_errors_are_classified_as_today() {
        assert_eq!(classify(StatusCode::OK, None, now()), Attempt::Delivered);
        assert_eq!(
            classify(StatusCode::NO_CONTENT, None, now()),
            Attempt::Delivered
        );
        assert!(matches!(
            classify(StatusCode::GONE, None, now()),
            Attempt::Gone(_)
        ));
        // 4xx other than 410 and every 5xx are retried, with the status as the error.
        for status in [
            StatusCode::BAD_REQUEST,
            StatusCode::UNAUTHORIZED,
            StatusCode::NOT_FOUND,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::BAD_GATEWAY,
        ] {
            match classify(status, None, now()) {
                Attempt::Failed {
                    error,
                    retry_after: None,
                } => assert_eq!(error, format!("HTTP {status}")),
                other => panic!("{status}: {other:?}"),
            }
        }
        assert_eq!(
            network_error(true, false, "deadline"),
            failed("timed out: deadline")
        );
        assert_eq!(
            network_error(false, true, "refused"),
            failed("connection failed: refused")
        );
        assert_eq!(
            network_error(false, false, "reset"),
            failed("request failed: reset")
        );
        assert_eq!(
            policy().decide(1, &network_error(true, false, "x"), 0.0),
            Decision::Retry {
                delay: Duration::from_secs(5)
            }
        );
    }

    #[test]
    fn gone_gives_up_at_once_and_success_is_done() {
        let p = policy();
        assert_eq!(p.decide(1, &Attempt::Delivered, 0.0), Decision::Done);
        assert_eq!(
            p.decide(1, &classify(StatusCode::GONE, None, now()), 0.0),
            Decision::GiveUp {
                reason: "receiver answered 410 Gone".into()
            }
        );
    }

    #[test]
    fn it_gives_up_once_the_schedule_is_spent() {
        let p = policy();
        assert!(matches!(
            p.decide(3, &failed("HTTP 500"), 0.0),
            Decision::Retry { .. }
        ));
        assert_eq!(
            p.decide(4, &failed("HTTP 500"), 0.0),
            Decision::GiveUp {
                reason: "gave up after 4 attempts; last error: HTTP 500".into()
            }
        );
        // Retry-After does not extend the budget.
        let a = classify(StatusCode::TOO_MANY_REQUESTS, Some("1"), now());
        assert!(matches!(p.decide(4, &a, 0.0), Decision::GiveUp { .. }));
    }
}
