//! Dead air, aggregated. One call's response latencies become p50/p95 ([`percentiles`]); a
//! campaign's first-agent-audio times are counted in fixed buckets ([`bucket`]): the agent
//! publishes one tally per answered voice call on `campaigns.tally.<id>.first_audio.<bucket>`
//! and the server counts messages per subject, so the counts are exact and nothing keeps every
//! call's value; [`FirstAudioStats::from_counts`] turns them into the share later than
//! [`LATE_FIRST_AUDIO_MS`] and bucketed p50/p95.

use serde::{Deserialize, Serialize};

use crate::summary::LatencyPercentiles;

/// First agent audio later than this (answer to the agent's first audio) is dead air callees
/// hang up on: regulators count an answered call with no agent within 2 s as abandoned.
pub const LATE_FIRST_AUDIO_MS: u64 = 2000;

/// Upper bounds of the first-audio buckets, in milliseconds (250 ms apart up to 2 s). A value
/// above the last bound is counted in the last bucket.
pub const BUCKETS_MS: [u64; 16] = [
    250, 500, 750, 1000, 1250, 1500, 1750, 2000, 2500, 3000, 4000, 5000, 7500, 10_000, 20_000,
    60_000,
];

/// The bucket of an answered voice call whose agent never spoke.
pub const NO_AUDIO: &str = "none";

/// The tally token of a call's first agent audio: `le_<bound>` (e.g. `le_2000`), or
/// [`NO_AUDIO`].
pub fn bucket(first_audio_ms: Option<u64>) -> String {
    match first_audio_ms {
        None => NO_AUDIO.to_owned(),
        Some(ms) => {
            let bound = BUCKETS_MS
                .iter()
                .copied()
                .find(|b| ms <= *b)
                .unwrap_or(BUCKETS_MS[BUCKETS_MS.len() - 1]);
            format!("le_{bound}")
        }
    }
}

/// p50 and p95 (nearest rank) of `samples`; `None` when there are none. NaN is ignored.
pub fn percentiles(samples: &[f64]) -> Option<LatencyPercentiles> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[nearest_rank(q, v.len() as u64) as usize - 1];
    Some(LatencyPercentiles {
        p50: at(0.50),
        p95: at(0.95),
    })
}

/// The 1-based nearest rank of quantile `q` among `n` values.
fn nearest_rank(q: f64, n: u64) -> u64 {
    ((q * n as f64).ceil() as u64).clamp(1, n)
}

/// First agent audio over a campaign's answered voice calls (`GET /campaigns/{id}`).
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema,
)]
pub struct FirstAudioStats {
    /// Answered calls with a voice session (counted when they ended).
    pub calls: u64,
    /// Of those, the calls whose first agent audio came later than 2 s after the answer, or
    /// never.
    pub later_than_2s: u64,
    /// `later_than_2s / calls`.
    pub later_than_2s_share: f64,
    /// p50 and p95 of first agent audio in milliseconds, over the calls where the agent spoke:
    /// each is the upper bound of its bucket (250 ms wide up to 2 s). Null when none spoke.
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
}

impl FirstAudioStats {
    /// From the per-bucket counts (`(bucket token, count)`; unknown tokens are ignored).
    /// `None` before any call was counted.
    pub fn from_counts<'a>(counts: impl IntoIterator<Item = (&'a str, u64)>) -> Option<Self> {
        let mut per_bucket = [0u64; BUCKETS_MS.len()];
        let mut silent = 0u64;
        for (token, n) in counts {
            if token == NO_AUDIO {
                silent += n;
            } else if let Some(i) = token
                .strip_prefix("le_")
                .and_then(|b| b.parse::<u64>().ok())
                .and_then(|b| BUCKETS_MS.iter().position(|x| *x == b))
            {
                per_bucket[i] += n;
            }
        }
        let spoke: u64 = per_bucket.iter().sum();
        let calls = spoke + silent;
        if calls == 0 {
            return None;
        }
        let late: u64 = BUCKETS_MS
            .iter()
            .zip(per_bucket)
            .filter(|(bound, _)| **bound > LATE_FIRST_AUDIO_MS)
            .map(|(_, n)| n)
            .sum::<u64>()
            + silent;
        let quantile = |q: f64| {
            if spoke == 0 {
                return None;
            }
            let rank = nearest_rank(q, spoke);
            let mut seen = 0;
            BUCKETS_MS.iter().zip(per_bucket).find_map(|(bound, n)| {
                seen += n;
                (seen >= rank).then_some(*bound)
            })
        };
        Some(Self {
            calls,
            later_than_2s: late,
            later_than_2s_share: late as f64 / calls as f64,
            p50_ms: quantile(0.50),
            p95_ms: quantile(0.95),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentiles(&[]), None);
        assert_eq!(
            percentiles(&[700.0]),
            Some(LatencyPercentiles {
                p50: 700.0,
                p95: 700.0
            })
        );
        let v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(
            percentiles(&v),
            Some(LatencyPercentiles {
                p50: 50.0,
                p95: 95.0
            })
        );
        let p = percentiles(&[300.0, f64::NAN, 900.0]).expect("two values");
        assert_eq!((p.p50, p.p95), (300.0, 900.0), "NaN is left out");
    }

    #[test]
    fn buckets_are_inclusive_upper_bounds() {
        assert_eq!(bucket(Some(0)), "le_250");
        assert_eq!(bucket(Some(250)), "le_250");
        assert_eq!(bucket(Some(251)), "le_500");
        assert_eq!(bucket(Some(2000)), "le_2000");
        assert_eq!(bucket(Some(2001)), "le_2500");
        assert_eq!(bucket(Some(3_600_000)), "le_60000", "clamped into the last");
        assert_eq!(bucket(None), NO_AUDIO);
    }

    #[test]
    fn campaign_stats_from_bucket_counts() {
        assert_eq!(FirstAudioStats::from_counts([]), None);
        // 10 calls: 6 by 750 ms, 2 by 2 s, 1 at 2.5 s, 1 where the agent never spoke.
        let stats = FirstAudioStats::from_counts([
            ("le_750", 6),
            ("le_2000", 2),
            ("le_2500", 1),
            ("none", 1),
            ("bogus", 7),
        ])
        .expect("counted");
        assert_eq!(stats.calls, 10);
        assert_eq!(stats.later_than_2s, 2, "2.5 s and never");
        assert!((stats.later_than_2s_share - 0.2).abs() < 1e-9);
        assert_eq!(stats.p50_ms, Some(750), "rank 5 of 9 that spoke");
        assert_eq!(stats.p95_ms, Some(2500), "rank 9 of 9");
        let silent = FirstAudioStats::from_counts([("none", 3)]).expect("counted");
        assert_eq!((silent.later_than_2s, silent.p50_ms), (3, None));
    }

    #[test]
    fn every_bucket_token_reads_back() {
        for ms in [1, 400, 1999, 2000, 2001, 59_999, 90_000] {
            let stats =
                FirstAudioStats::from_counts([(bucket(Some(ms)).as_str(), 1)]).expect("counted");
            assert_eq!(stats.calls, 1, "{ms} ms");
            assert_eq!(stats.later_than_2s, u64::from(ms > 2000), "{ms} ms");
            assert!(stats.p50_ms.is_some_and(|b| b >= ms.min(60_000)), "{ms} ms");
        }
    }
}
