//! `make bench`: ingress and notifier throughput and latency against a real nats-server, with
//! raw JetStream publish measured in the same run as the reference. Writes a Markdown report.
//!
//! Load generator and system under test share the machine's cores; numbers are conservative.
//! `--ingress-only` runs the ingress rows alone and prints them (for iterating on the ingress).

mod campaign;
mod dial;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use callfleet_tests::{Fleet, NatsServer, Role, free_port, wait_for};
use serde_json::json;

const REQUESTS: usize = 10_000;
const CONCURRENCY: usize = 64;
const WEBHOOKS: usize = 5_000;
const PACED: usize = 1_000;

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

struct Run {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

async fn concurrent<F, Fut>(total: usize, op: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let (op, latencies, errors) = (op.clone(), latencies.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while i < total {
                let t = Instant::now();
                let ok = op(i).await;
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                if ok {
                    if let Ok(mut l) = latencies.lock() {
                        l.push(ms);
                    }
                } else {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                i += CONCURRENCY;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut l = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    l.sort_by(f64::total_cmp);
    Run {
        rate: l.len() as f64 / elapsed,
        p50_ms: pct(&l, 0.5),
        p99_ms: pct(&l, 0.99),
        errors: errors.load(std::sync::atomic::Ordering::Relaxed),
    }
}

async fn bench_ingress() -> (Run, Run) {
    let nats = NatsServer::start().await;
    let port = free_port();
    let mut fleet = Fleet::new(&[
        ("NATS_URL", nats.url()),
        ("CALLFLEET_INGRESS__BIND", format!("127.0.0.1:{port}")),
        ("LOG_LEVEL", "warn".into()),
    ]);
    fleet.start(Role::Ingress);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");
    let ready = format!("http://127.0.0.1:{port}/readyz");
    wait_for("ingress", Duration::from_secs(30), || {
        let (http, ready) = (http.clone(), ready.clone());
        async move {
            http.get(&ready)
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
                .map(|_| ())
        }
    })
    .await;
    let url = format!("http://127.0.0.1:{port}/dispatch");
    let body = json!({"destination": "61402012298", "account_code": "bench", "session_options": {"llm": "openai/gpt-4o-mini"}}).to_string();
    // Warm-up.
    for _ in 0..200 {
        let _ = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
    }
    let ingress = concurrent(REQUESTS, move |_| {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        async move {
            matches!(http.post(&url).header("content-type", "application/json").body(body).send().await, Ok(r) if r.status() == 202)
        }
    })
    .await;

    let js = async_nats::jetstream::new(nats.client().await);
    let payload = bytes::Bytes::from(
        json!({"call_id": "x", "destination": "+61402012298", "account_code": "bench"}).to_string(),
    );
    let raw = concurrent(REQUESTS, move |i| {
        let (js, payload) = (js.clone(), payload.clone());
        async move {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("raw-{i}").as_str());
            match js
                .publish_with_headers("calls.dispatch.raw", headers, payload)
                .await
            {
                Ok(ack) => ack.await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;
    (ingress, raw)
}

async fn bench_notifier() -> (f64, f64, f64, usize) {
    use axum::{Router, body::Bytes, routing::post};
    let nats = NatsServer::start().await;
    let arrivals: Arc<Mutex<Vec<(jiff::Timestamp, Bytes)>>> = Arc::new(Mutex::new(Vec::new()));
    let sink = arrivals.clone();
    let app = Router::new().route(
        "/hook",
        post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                if let Ok(mut s) = sink.lock() {
                    s.push((jiff::Timestamp::now(), body));
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sink_port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let mut fleet = Fleet::new(&[
        ("NATS_URL", nats.url()),
        (
            "N8N_WEBHOOK_URL",
            format!("http://127.0.0.1:{sink_port}/hook"),
        ),
        (
            "WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        ),
        ("LOG_LEVEL", "warn".into()),
    ]);
    fleet.start(Role::Notifier);
    let js = async_nats::jetstream::new(nats.client().await);
    callfleet_tests::wait_consumer(&nats.url(), "CALL_EVENTS", "notifier").await;
    let start = Instant::now();
    for i in 0..WEBHOOKS {
        let event = json!({
            "schema_version": 1, "event_id": format!("b{i}.ended.1"), "call_id": format!("b{i}"),
            "kind": "ended", "at": jiff::Timestamp::now(), "attempt": 1
        });
        let _ = js
            .publish(format!("calls.events.b{i}.ended"), event.to_string().into())
            .await;
    }
    wait_for("all webhooks", Duration::from_secs(300), || {
        let arrivals = arrivals.clone();
        async move { (arrivals.lock().map(|a| a.len()).unwrap_or(0) >= WEBHOOKS).then_some(()) }
    })
    .await;
    let elapsed = start.elapsed().as_secs_f64();
    // Latency phase: paced events (200/s), so each delivery is measured without a backlog.
    let burst = arrivals.lock().map(|a| a.len()).unwrap_or(0);
    for i in 0..PACED {
        let event = json!({
            "schema_version": 1, "event_id": format!("p{i}.ended.1"), "call_id": format!("p{i}"),
            "kind": "ended", "at": jiff::Timestamp::now(), "attempt": 1
        });
        let _ = js
            .publish(format!("calls.events.p{i}.ended"), event.to_string().into())
            .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    wait_for("paced webhooks", Duration::from_secs(120), || {
        let arrivals = arrivals.clone();
        async move { (arrivals.lock().map(|a| a.len()).unwrap_or(0) >= burst + PACED).then_some(()) }
    })
    .await;
    let mut lat: Vec<f64> = arrivals
        .lock()
        .map(|a| {
            a.iter()
                .skip(burst)
                .filter_map(|(at, body)| {
                    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
                    let sent: jiff::Timestamp = v["timestamp"].as_str()?.parse().ok()?;
                    Some(at.duration_since(sent).as_secs_f64() * 1000.0)
                })
                .collect()
        })
        .unwrap_or_default();
    lat.sort_by(f64::total_cmp);
    drop(fleet);
    (
        WEBHOOKS as f64 / elapsed,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.len(),
    )
}

#[tokio::main]
async fn main() {
    let out = std::env::args()
        .skip_while(|a| a != "--out")
        .nth(1)
        .unwrap_or_else(|| "bench/REPORT.md".into());
    assert!(
        std::env::var_os("CALLFLEET_BIN").is_some(),
        "set CALLFLEET_BIN to the release callfleet binary (make bench does)"
    );
    eprintln!(
        "bench: ingress ({REQUESTS} requests, {CONCURRENCY} concurrent) and raw JetStream publish"
    );
    let (ingress, raw) = bench_ingress().await;
    if std::env::args().any(|a| a == "--ingress-only") {
        // For iterating on the ingress: print its two rows, write nothing.
        for (name, r) in [("ingress", &ingress), ("raw", &raw)] {
            println!(
                "{name}: {:.0}/s p50 {:.2} ms p99 {:.2} ms errors {}",
                r.rate, r.p50_ms, r.p99_ms, r.errors
            );
        }
        println!("ratio {:.3}", ingress.rate / raw.rate);
        return;
    }
    eprintln!("bench: notifier ({WEBHOOKS} webhooks)");
    let (wh_rate, wh_p50, wh_p99, wh_n) = bench_notifier().await;
    eprintln!(
        "bench: dispatch to dial ({} idle calls, then a burst of {} with {} slots)",
        dial::IDLE_CALLS,
        dial::BURST_CALLS,
        dial::SLOTS
    );
    let (idle, burst) = dial::bench_dispatch_to_dial().await;
    eprintln!("bench: campaign of {} contacts", campaign::CONTACTS);
    let cmp = campaign::bench_campaign().await;
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let report = format!(
        "# callfleet benchmarks\n\n\
Measured by `make bench` on {date}, {cpus} cores, loopback, release build, one nats-server {nats} (file storage).\n\
The load generator runs on the same cores as the system under test.\n\n\
## Ingress: `POST /dispatch` → JetStream-acknowledged publish\n\n\
{REQUESTS} requests, {CONCURRENCY} concurrent keep-alive clients.\n\n\
| path | req/s | p50 | p99 | errors |\n|---|---|---|---|---|\n\
| `POST /dispatch` (validate, publish, ack, then KV state and `queued` event together) | {ir:.0} | {ip50:.2} ms | {ip99:.2} ms | {ie} |\n\
| raw JetStream publish + ack, same server, same run | {rr:.0} | {rp50:.2} ms | {rp99:.2} ms | {re} |\n\n\
Ratio ingress / raw publish: **{ratio:.2}** of raw throughput. Target (issue 14; DESIGN.md §9 asked 5,000): ≥ 10,000 req/s, p99 ≤ 10 ms.\n\
A dispatch waits for two JetStream round trips: the job's publish and ack, then the KV create of the `queued`\n\
state and the `queued` event, sent together. A request with a fresh id skips the KV read for idempotency (an\n\
`Idempotency-Key` or a caller's `call_id` pays a third). The raw path is one publish and ack per request.\n\n\
## Notifier: final event → signed webhook delivered\n\n\
Throughput: {WEBHOOKS} `ended` events published back to back. Latency: then {PACED} events paced at 200/s\n\
(event timestamp to arrival at the receiver). A local receiver answers 200; every webhook is signed.\n\n\
| webhooks/s (burst) | event-to-delivery p50 (paced) | p99 (paced) | paced delivered |\n|---|---|---|---|\n\
| {wr:.0} | {wp50:.1} ms | {wp99:.1} ms | {wn} |\n\n\
Target (DESIGN.md §9): ≥ 1,000 webhooks/s, p99 ≤ 50 ms. Each delivery crosses two consumers (event → delivery\n\
message → POST), which keeps retries durable and out of ack-pending.\n\n\
## Dispatch to dial\n\n\
A job published on JetStream → the worker's first LiveKit call (its `dialing` event, stamped just before\n\
`CreateRoom` and `CreateSIPParticipant`) → the INVITE received by the SIPp callee, through the real\n\
livekit-server v1.13.5 and livekit-sip v1.8.0 on loopback. Every callee declines (603), so slots free at once.\n\
Idle: {idle_n} calls one at a time. Burst: {burst_n} calls published back to back onto one worker with {slots} slots.\n\n\
| load | publish → first LiveKit call p50 | p99 | publish → INVITE at callee p50 | p99 | calls/s |\n|---|---|---|---|---|---|\n\
| idle | {i_d50:.1} ms | {i_d99:.1} ms | {i_i50:.1} ms | {i_i99:.1} ms | {i_t:.1} (one at a time) |\n\
| burst of {burst_n}, {slots} slots | {b_d50:.1} ms | {b_d99:.1} ms | {b_i50:.1} ms | {b_i99:.1} ms | {b_t:.1} |\n\n\
Target (DESIGN.md §9): publish to the worker's first LiveKit call p50 ≤ 5 ms, p99 ≤ 25 ms with free capacity\n\
(the idle row). In the burst row, calls queue for a slot by design (pull only as many jobs as free slots),\n\
so its latency is mostly waiting for earlier calls to finish. The INVITE columns add room creation and\n\
livekit-server → livekit-sip (psrpc over Redis) → SIP. SIPp logs with microsecond wall-clock stamps.\n\n\
## Campaigns: 100,000 contacts\n\n\
`callfleet campaign create --csv` (release build) uploads a {contacts}-row CSV through the ingress in chunks of\n\
5,000 rows (each row validated like a dispatch, checked against the do-not-call list, enqueued with a pipelined\n\
JetStream publish). The campaign's window is closed all day, so the campaigner then moves every contact to the\n\
window's opening as a scheduled message; then it idles for {idle} s while they wait.\n\n\
| step | result |\n|---|---|\n\
| upload and enqueue ({accepted} accepted) | {up:.1} s ({up_rate:.0} contacts/s) |\n\
| peak RSS: CLI / ingress | {cli_rss:.0} MB / {ing_rss:.0} MB |\n\
| all contacts moved to their window (after the upload) | {sweep:.1} s |\n\
| idle CPU while {contacts} contacts wait: campaigner / nats-server | {c_cpu:.2} % / {n_cpu:.2} % of one core |\n\
| campaigner RSS while they wait | {c_rss:.0} MB |\n\n\
Targets (issue 6): at least 100,000 contacts per campaign; waiting contacts hold no worker or ack-pending slot\n\
(they are JetStream scheduled messages) and cost the fleet nothing while they wait.\n\n\
Worker density on real calls follows (`density_bench`, appended by `make bench`; also `bench/density.md`).\n",
        date = jiff::Timestamp::now().strftime("%Y-%m-%d"),
        nats = "v2.12.15",
        ir = ingress.rate,
        ip50 = ingress.p50_ms,
        ip99 = ingress.p99_ms,
        ie = ingress.errors,
        rr = raw.rate,
        rp50 = raw.p50_ms,
        rp99 = raw.p99_ms,
        re = raw.errors,
        ratio = ingress.rate / raw.rate,
        wr = wh_rate,
        wp50 = wh_p50,
        wp99 = wh_p99,
        wn = wh_n,
        idle_n = idle.calls,
        burst_n = burst.calls,
        slots = dial::SLOTS,
        i_d50 = idle.to_dialing.0,
        i_d99 = idle.to_dialing.1,
        i_i50 = idle.to_invite.0,
        i_i99 = idle.to_invite.1,
        b_d50 = burst.to_dialing.0,
        b_d99 = burst.to_dialing.1,
        b_i50 = burst.to_invite.0,
        b_i99 = burst.to_invite.1,
        i_t = idle.throughput,
        b_t = burst.throughput,
        contacts = campaign::CONTACTS,
        idle = 10,
        accepted = cmp.accepted,
        up = cmp.upload_secs,
        up_rate = cmp.accepted as f64 / cmp.upload_secs.max(0.001),
        cli_rss = cmp.cli_peak_rss_mb,
        ing_rss = cmp.ingress_peak_rss_mb,
        sweep = cmp.sweep_secs,
        c_cpu = cmp.idle_campaigner_cpu_pct,
        n_cpu = cmp.idle_nats_cpu_pct,
        c_rss = cmp.campaigner_rss_mb,
    );
    if let Some(parent) = std::path::Path::new(&out).parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&out, &report).unwrap_or_else(|e| panic!("cannot write {out}: {e}"));
    println!("{report}");
}
