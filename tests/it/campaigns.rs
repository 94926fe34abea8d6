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
        wait_for(
            &format!("campaign.completed for {id}"),
            Duration::from_secs(secs),
            || async {
                self.sink
                    .delivered()
                    .into_iter()
                    .map(|r| r.json())
                    .find(|j| j["type"] == "campaign.completed" && j["data"]["campaign_id"] == id)
            },
        )
        .await
    }

    /// (dial start, attempt end) per attempt of the campaign's calls, from the events (one
    /// pass over the event stream).
    async fn attempt_spans(&self, call_ids: &[String]) -> Vec<(Timestamp, Timestamp)> {
        let js = async_nats::jetstream::new(self.nats.client().await);
        let mut stream = js.get_stream("CALL_EVENTS").await.expect("events stream");
        let last = stream
            .info()
            .await
            .map(|i| i.state.last_sequence)
            .unwrap_or(0);
        let mut open: BTreeMap<String, Timestamp> = BTreeMap::new();
        let mut spans = Vec::new();
        for seq in 1..=last {
            let Ok(m) = stream.get_raw_message(seq).await else {
                continue;
            };
            let mut parts = m.subject.split('.');
            let (Some("calls"), Some("events"), Some(id), Some(kind)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if !call_ids.iter().any(|c| c == id) {
                continue;
            }
            let ev: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
            let Some(at) = ev["at"].as_str().and_then(|t| t.parse::<Timestamp>().ok()) else {
                continue;
            };
            match kind {
                "dialing" => {
                    open.insert(id.to_owned(), at);
                }
                "ended" | "failed" | "retry_scheduled" => {
                    if let Some(start) = open.remove(id) {
                        spans.push((start, at));
                    }
                }
                _ => {}
            }
        }
        spans
    }
}

fn max_overlap(spans: &[(Timestamp, Timestamp)]) -> usize {
    let mut points: Vec<(Timestamp, i32)> = spans
        .iter()
        .flat_map(|(a, b)| [(*a, 1), (*b, -1)])
        .collect();
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
    // A few hundred contacts: 50 per behaviour, 300 dials with the retries.
    let per = 50;
    let mut contacts = Vec::new();
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for (b, outcome) in behaviours {
        for i in 0..per {
            contacts.push(json!({"destination": b.number(100 + contacts.len() as u16), "variables": {"n": i}}));
            *expected.entry(outcome).or_default() += 1;
        }
    }
    let (cap, cps) = (12, 15.0);
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

    let hook = rig.campaign_webhook("mixed", 300).await;
    let totals = &hook["data"]["totals"];
    for (outcome, n) in &expected {
        assert_eq!(totals["outcomes"][outcome], *n, "{outcome}: {totals}");
    }
    assert_eq!(totals["finished"], contacts.len());
    // Retryable contacts were dialed twice (max_attempts 2), the others once.
    assert_eq!(totals["dials"], (per * 4 + per * 2) as u64, "{totals}");

    let (_, view) = rig
        .call_api(reqwest::Method::GET, "/campaigns/mixed", None)
        .await;
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(view["waiting"], 0);

    let ids: Vec<String> = (1..=contacts.len()).map(|i| format!("mixed-{i}")).collect();
    let spans = rig.attempt_spans(&ids).await;
    assert_eq!(spans.len(), per * 6, "every attempt seen in the events");
    let overlap = max_overlap(&spans);
    assert!(
        overlap <= cap,
        "at most {cap} live calls at once, saw {overlap}"
    );
    let mut starts: Vec<Timestamp> = spans.iter().map(|(a, _)| *a).collect();
    let busiest = max_in_window(&mut starts, Duration::from_secs(2));
    // At most 2 × cps dials in any 2 s, plus one for the worker's pick-up jitter.
    assert!(
        busiest <= 2 * cps as usize + 1,
        "dial rate over the cap: {busiest} in 2 s"
    );
}

/// HH:MM:SS of a UTC timestamp, clamped so a window never wraps past midnight.
fn clock(t: Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%H:%M:%S")
        .to_string()
}

/// A window that opens a few seconds into the test holds dials until it opens; a contact
/// whose own time zone puts it outside the window is not dialed.
#[tokio::test(flavor = "multi_thread")]
async fn campaign_window_holds_dials_and_respects_contact_time_zones() {
    let rig = campaign_rig(&[]).await;
    let now = Timestamp::now();
    // A whole second, so the window's HH:MM:SS start is exactly `opens`.
    let opens = (now + jiff::SignedDuration::from_secs(4))
        .round(
            jiff::TimestampRound::new()
                .smallest(jiff::Unit::Second)
                .mode(jiff::RoundMode::Ceil),
        )
        .expect("round");
    let midnight = now
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .at(23, 59, 59, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(now);
    let closes = (now + jiff::SignedDuration::from_secs(3600)).min(midnight);
    assert!(
        opens < closes,
        "too close to midnight UTC to build a one-day window; rerun"
    );
    let here = Behaviour::AnswerThenHangUp(1).number(200);
    let tokyo = Behaviour::AnswerThenHangUp(1).number(201);
    let (status, body) = rig
        .call_api(
            reqwest::Method::POST,
            "/campaigns",
            Some(json!({
                "id": "windowed", "name": "Window", "account_code": "acct-window",
                "timezone": "UTC", "calls_per_second": 5,
                "window": {"start": clock(opens), "end": clock(closes)},
                // Tokyo is 9 hours ahead: its local time is never inside this one-hour window.
                "contacts": [{"destination": here}, {"destination": tokyo, "timezone": "Asia/Tokyo"}],
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let dialing = rig.wait_event("windowed-1", "dialing", 30).await;
    let dialed_at: Timestamp = dialing["at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("at");
    assert!(
        dialed_at >= opens,
        "dialed at {dialed_at}, before the window opened at {opens}"
    );
    rig.summary_of("windowed-1", 30).await;
    // The Tokyo contact waits for its window, holding nothing: never dialed, still waiting.
    let (_, view) = rig
        .call_api(reqwest::Method::GET, "/campaigns/windowed", None)
        .await;
    assert_eq!(view["waiting"], 1, "{view}");
    assert_eq!(view["live"], 0, "{view}");
    assert!(
        rig.callee().invites_to(&tokyo).is_empty(),
        "Tokyo is outside its window"
    );
    assert_eq!(rig.callee().invites_to(&here).len(), 1);
}

/// The do-not-call list is checked at enqueue and again before dialing (a number added after
/// enqueue is never dialed); two campaigns sharing a number never call it at the same time.
#[tokio::test(flavor = "multi_thread")]
async fn campaign_dnc_and_shared_numbers() {
    let rig = campaign_rig(&[]).await;
    let listed_before = Behaviour::AnswerThenHangUp(1).number(300);
    let listed_after = Behaviour::AnswerThenHangUp(1).number(301);
    let fine = Behaviour::AnswerThenHangUp(1).number(302);
    let shared = Behaviour::AnswerThenHangUp(2).number(303);
    let (status, _) = rig
        .call_api(
            reqwest::Method::POST,
            &format!("/dnc/{listed_before}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let start = Timestamp::now() + jiff::SignedDuration::from_secs(3);
    let (status, body) = rig
        .call_api(
            reqwest::Method::POST,
            "/campaigns",
            Some(json!({
                "id": "dnc", "name": "DNC", "account_code": "acct-dnc", "start_at": start,
                "calls_per_second": 10,
                "contacts": [{"destination": listed_before}, {"destination": listed_after}, {"destination": fine}],
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["dnc_skipped"], 1, "{body}");
    assert_eq!(body["accepted"], 2, "{body}");
    let (status, _) = rig
        .call_api(reqwest::Method::POST, &format!("/dnc/{listed_after}"), None)
        .await;
    assert_eq!(status, 200);

    // Two campaigns, the same number, both with room for it at once.
    for id in ["share-a", "share-b"] {
        let (status, body) = rig
            .call_api(
                reqwest::Method::POST,
                "/campaigns",
                Some(json!({"id": id, "name": id, "account_code": "acct-share",
                    "max_concurrent_calls": 5, "calls_per_second": 10,
                    "contacts": [{"destination": shared}]})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    let hook = rig.campaign_webhook("dnc", 60).await;
    let totals = &hook["data"]["totals"];
    assert_eq!(totals["outcomes"]["do_not_call"], 1, "{totals}");
    assert_eq!(totals["outcomes"]["answered"], 1, "{totals}");
    assert_eq!(totals["dnc_skipped"], 1);
    assert!(rig.callee().invites_to(&listed_before).is_empty());
    assert!(
        rig.callee().invites_to(&listed_after).is_empty(),
        "added after enqueue, still never dialed"
    );

    rig.campaign_webhook("share-a", 60).await;
    rig.campaign_webhook("share-b", 60).await;
    let spans = rig
        .attempt_spans(&["share-a-1".to_owned(), "share-b-1".to_owned()])
        .await;
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert_eq!(
        max_overlap(&spans),
        1,
        "the shared number was never in two calls at once: {spans:?}"
    );
    assert_eq!(rig.callee().invites_to(&shared).len(), 2);
}

/// Pause stops new dials within seconds (live calls finish), resume continues, cancel ends
/// the waiting contacts as `cancelled`; meanwhile a single POST /dispatch is dialed promptly.
#[tokio::test(flavor = "multi_thread")]
async fn campaign_pause_resume_cancel_and_fairness() {
    let rig = campaign_rig(&[("CALLFLEET_AGENT__MAX_CONCURRENT_CALLS", "3")]).await;
    let contacts: Vec<Value> = (0..30)
        .map(|i| json!({"destination": Behaviour::AnswerThenHangUp(2).number(400 + i)}))
        .collect();
    let (status, body) = rig
        .call_api(
            reqwest::Method::POST,
            "/campaigns",
            Some(
                json!({"id": "big", "name": "Big", "account_code": "acct-big",
                "max_concurrent_calls": 3, "calls_per_second": 10, "contacts": contacts}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let dials = || async {
        let (_, v) = rig
            .call_api(reqwest::Method::GET, "/campaigns/big", None)
            .await;
        v
    };
    wait_for(
        "the campaign to fill its slots",
        Duration::from_secs(30),
        || async { (dials().await["live"] == 3).then_some(()) },
    )
    .await;

    // Every worker slot is the campaign's; a single dispatch still gets the next free one.
    let single = Behaviour::AnswerThenHangUp(1).number(499);
    let posted = Timestamp::now();
    let call_id = rig
        .dispatch(&json!({"destination": single, "account_code": "acct-single"}))
        .await;
    let dialing = rig.wait_event(&call_id, "dialing", 20).await;
    let dialed: Timestamp = dialing["at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("at");
    // Unfair would be behind the campaign's 30 contacts (about 20 s at 3 slots of 2 s calls);
    // fair is the next free slot. The bound allows for a loaded machine (load_factor).
    let waited = dialed.duration_since(posted).as_secs_f64();
    let bound = 4.0 * callfleet_tests::load_factor();
    assert!(
        waited < bound,
        "waited {waited} s (bound {bound:.1} s) behind a 30-contact campaign (calls last 2 s)"
    );

    let (status, body) = rig
        .call_api(reqwest::Method::POST, "/campaigns/big/pause", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "paused");
    // Live calls finish; then nothing new is dialed.
    wait_for(
        "live calls to finish after pause",
        Duration::from_secs(20),
        || async { (dials().await["live"] == 0).then_some(()) },
    )
    .await;
    let paused_at = dials().await["dials"].as_u64().unwrap_or(0);
    let watch_until = Timestamp::now() + jiff::SignedDuration::from_secs(3);
    wait_for(
        "the pause observation window",
        Duration::from_secs(10),
        || async { (Timestamp::now() > watch_until).then_some(()) },
    )
    .await;
    assert_eq!(dials().await["dials"], paused_at, "no dial while paused");

    let (status, _) = rig
        .call_api(reqwest::Method::POST, "/campaigns/big/resume", None)
        .await;
    assert_eq!(status, 200);
    wait_for("dials to resume", Duration::from_secs(20), || async {
        (dials().await["dials"].as_u64().unwrap_or(0) > paused_at).then_some(())
    })
    .await;

    let (status, body) = rig
        .call_api(reqwest::Method::POST, "/campaigns/big/cancel", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let hook = rig.campaign_webhook("big", 60).await;
    let totals = &hook["data"]["totals"];
    assert_eq!(hook["data"]["status"], "cancelled", "{hook}");
    let cancelled = totals["outcomes"]["cancelled"].as_u64().unwrap_or(0);
    let answered = totals["outcomes"]["answered"].as_u64().unwrap_or(0);
    assert!(cancelled > 0, "{totals}");
    assert_eq!(
        cancelled + answered,
        30,
        "every contact accounted for: {totals}"
    );
    assert_eq!(
        totals["dials"].as_u64(),
        Some(answered),
        "cancelled contacts were never dialed"
    );
    let (status, _) = rig
        .call_api(reqwest::Method::POST, "/campaigns/big/resume", None)
        .await;
    assert_eq!(status, 409, "a cancelled campaign cannot resume");
}

/// A CSV with malformed rows is accepted partially, with exact row-level errors.
#[tokio::test(flavor = "multi_thread")]
async fn campaign_csv_upload_reports_rows() {
    let rig = campaign_rig(&[]).await;
    let (status, body) = rig
        .call_api(
            reqwest::Method::POST,
            "/campaigns",
            Some(json!({"id": "csv", "name": "CSV", "account_code": "acct-csv", "start_at": "2099-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let csv = "destination,first_name,timezone\n\
               +61400100200,Ada,Australia/Sydney\n\
               not-a-number,Bob,\n\
               +61400100201,Cy\n\
               +61400100202,Di,Mars/Base\n\
               +61400100200,Ada again,\n\
               61400100203,Ed,\n";
    let resp = rig
        .http
        .post(rig.url("/campaigns/csv/contacts?last=true"))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("upload");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["accepted"], 2, "{body}");
    let rejected: Vec<(u64, String)> = body["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap_or(0),
                r["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rejected.iter().map(|r| r.0).collect::<Vec<_>>(),
        [3, 4, 5],
        "{body}"
    );
    assert!(rejected[0].1.contains("destination"), "{rejected:?}");
    assert!(rejected[1].1.contains("fields"), "{rejected:?}");
    assert!(rejected[2].1.contains("timezone"), "{rejected:?}");
    assert_eq!(body["duplicates"][0]["line"], 6, "{body}");
    let resp = rig
        .http
        .post(rig.url("/campaigns/csv/contacts"))
        .header("content-type", "text/csv")
        .body("destination\n+61400100204\n")
        .send()
        .await
        .expect("upload");
    assert_eq!(resp.status(), 409, "sealed by last=true");
    let (_, view) = rig
        .call_api(reqwest::Method::GET, "/campaigns/csv", None)
        .await;
    assert_eq!(view["accepted"], 2);
    assert_eq!(view["rejected"], 3);
    assert_eq!(view["waiting"], 2, "{view}");
}

/// The operator CLI: create from a CSV (refused rows printed with their file line), status,
/// and cancel, through the ingress.
#[tokio::test(flavor = "multi_thread")]
async fn campaign_cli_create_status_cancel() {
    let rig = campaign_rig(&[]).await;
    let dir = callfleet_tests::TempDir::new("cli");
    let csv = dir.0.join("contacts.csv");
    std::fs::write(
        &csv,
        "destination,first_name\n+61400100300,Ada\nnope,Bob\n+61400100301,Cy\n",
    )
    .expect("write csv");
    let csv = csv.to_string_lossy().into_owned();
    let (code, out, err) = rig.fleet.run(
        &[
            "campaign",
            "create",
            "--csv",
            &csv,
            "--name",
            "From the CLI",
            "--account-code",
            "acct-cli",
            "--id",
            "cli",
            "--window",
            "mon-sun 00:00-00:01",
            "--timezone",
            "UTC",
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("campaign cli: 2 contacts enqueued, 1 refused"),
        "{out}"
    );
    assert!(
        out.contains("line 3: "),
        "the refused row's file line: {out}"
    );

    let (code, out, err) = rig.fleet.run(&["campaign", "status", "cli"], &[]);
    assert_eq!(code, Some(0), "{err}");
    let view: Value = serde_json::from_str(&out).expect("status prints JSON");
    assert_eq!(view["accepted"], 2);
    assert_eq!(view["sealed"], true);

    let (code, out, err) = rig.fleet.run(&["campaign", "cancel", "cli"], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("cancelled"), "{out}");
    let (code, _, err) = rig.fleet.run(&["campaign", "pause", "no-such"], &[]);
    assert_ne!(code, Some(0));
    assert!(err.contains("404"), "{err}");
}
