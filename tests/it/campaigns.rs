//! Campaigns on the real rig: contacts mapped to callee behaviours, pacing, windows, DNC,
//! pause/resume/cancel, and CSV uploads.

use std::{collections::BTreeMap, time::Duration};

use callfleet_tests::{Behaviour, Role, wait_for};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::rig::{Peers, Rig};

async fn campaign_rig(extra: &[(&str, &str)]) -> Rig {
    let mut rig = Rig::with(Peers::Telephony).await;
    for (k, v) in [
        ("CALLFLEET_RETRY__BUSY_DELAY_SECS", "1"),
        ("CALLFLEET_RETRY__NO_ANSWER_DELAY_SECS", "1"),
        ("CALLFLEET_SIP__RINGING_TIMEOUT_SECS", "2"),
        ("CALLFLEET_AGENT__MAX_CONCURRENT_CALLS", "20"),
    ]
    .iter()
    .chain(extra)
    {
        rig.fleet.set(k, *v);
    }
    rig.start_ingress().await;
    rig.fleet.start(Role::Agent);
    rig.fleet.start(Role::Notifier);
    rig.fleet.start(Role::Campaigner);
    rig
}

impl Rig {
    async fn campaign_webhook(&self, id: &str, secs: u64) -> Value {
        wait_for(&format!("campaign.completed for {id}"), Duration::from_secs(secs), || async {
            self.sink
                .delivered()
                .into_iter()
                .map(|r| r.json())
                .find(|j| j["type"] == "campaign.completed" && j["data"]["campaign_id"] == id)
        })
        .await
    }

    /// (dial start, attempt end) per attempt of the campaign's calls, from the events.
    async fn attempt_spans(&self, call_ids: &[String]) -> Vec<(Timestamp, Timestamp)> {
        let mut spans = Vec::new();
        for id in call_ids {
            let mut open: Option<Timestamp> = None;
            for (kind, ev) in self.events(id).await {
                let at: Option<Timestamp> = ev["at"].as_str().and_then(|t| t.parse().ok());
                match (kind.as_str(), at) {
                    ("dialing", Some(t)) => open = Some(t),
                    ("ended" | "failed" | "retry_scheduled", Some(t)) => {
                        if let Some(start) = open.take() {
                            spans.push((start, t));
                        }
                    }
                    _ => {}
                }
            }
        }
        spans
    }
}

fn max_overlap(spans: &[(Timestamp, Timestamp)]) -> usize {
    let mut points: Vec<(Timestamp, i32)> = spans.iter().flat_map(|(a, b)| [(*a, 1), (*b, -1)]).collect();
    points.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.cmp(&y.1)));
    let (mut cur, mut max) = (0i32, 0i32);
    for (_, d) in points {
        cur += d;
        max = max.max(cur);
    }
    max as usize
}

/// Dials in the busiest sliding window of `window`.
fn max_in_window(starts: &mut [Timestamp], window: Duration) -> usize {
    starts.sort();
    let w = jiff::SignedDuration::try_from(window).unwrap_or_default();
    let mut best = 0;
    for (i, t) in starts.iter().enumerate() {
        let n = starts[i..].iter().take_while(|u| **u < *t + w).count();
        best = best.max(n);
    }
    best
}

/// A campaign whose contacts map to different callee behaviours completes with exactly the
/// expected counts; retryable contacts are retried within policy; concurrency and dial rate
/// stay under the caps throughout (measured from the calls' own events).
#[tokio::test(flavor = "multi_thread")]
async fn campaign_outcomes_caps_and_completion() {
    let rig = campaign_rig(&[]).await;
    let behaviours = [
        (Behaviour::AnswerThenHangUp(1), "answered"),
        (Behaviour::Reject(486), "busy"),
        (Behaviour::Ring, "no_answer"),
        (Behaviour::Reject(603), "declined"),
    ];
    let per = 6;
    let mut contacts = Vec::new();
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for (b, outcome) in behaviours {
        for i in 0..per {
            contacts.push(json!({"destination": b.number(100 + contacts.len() as u16), "variables": {"n": i}}));
            *expected.entry(outcome).or_default() += 1;
        }
    }
    let (cap, cps) = (3, 4.0);
    let (status, body) = rig
        .call_api(
            reqwest::Method::POST,
            "/campaigns",
            Some(json!({
                "id": "mixed", "name": "Mixed behaviours", "account_code": "acct-campaign",
                "max_concurrent_calls": cap, "calls_per_second": cps,
                "retry": {"max_attempts": 2}, "contacts": contacts,
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["accepted"], contacts.len(), "{body}");

    let hook = rig.campaign_webhook("mixed", 180).await;
    let totals = &hook["data"]["totals"];
    for (outcome, n) in &expected {
        assert_eq!(totals["outcomes"][outcome], *n, "{outcome}: {totals}");
    }
    assert_eq!(totals["finished"], contacts.len());
    // Retryable contacts were dialed twice (max_attempts 2), the others once.
    assert_eq!(totals["dials"], (per * 4 + per * 2) as u64, "{totals}");

    let (_, view) = rig.call_api(reqwest::Method::GET, "/campaigns/mixed", None).await;
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(view["waiting"], 0);

    let ids: Vec<String> = (1..=contacts.len()).map(|i| format!("mixed-{i}")).collect();
    let spans = rig.attempt_spans(&ids).await;
    assert_eq!(spans.len(), per * 6, "every attempt seen in the events");
    let overlap = max_overlap(&spans);
    assert!(overlap <= cap, "at most {cap} live calls at once, saw {overlap}");
    let mut starts: Vec<Timestamp> = spans.iter().map(|(a, _)| *a).collect();
    let busiest = max_in_window(&mut starts, Duration::from_secs(2));
    // 4 calls/s → at most 8 dials in any 2 s, plus one for the worker's pick-up jitter.
    assert!(busiest <= 2 * cps as usize + 1, "dial rate over the cap: {busiest} in 2 s");
}
