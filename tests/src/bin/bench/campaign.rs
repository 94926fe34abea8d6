//! Campaigns at 100,000 contacts: the CLI uploads a CSV through the ingress (chunks of 5,000
//! rows), then the campaigner moves every contact to its calling window's opening; then the
//! fleet idles while 100,000 contacts wait.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use callfleet_tests::{Fleet, NatsServer, Role, TempDir, binary, free_port, wait_for};

pub const CONTACTS: usize = 100_000;
const IDLE_SECS: u64 = 10;

pub struct CampaignRun {
    pub upload_secs: f64,
    pub cli_peak_rss_mb: f64,
    pub ingress_peak_rss_mb: f64,
    pub sweep_secs: f64,
    pub idle_campaigner_cpu_pct: f64,
    pub idle_nats_cpu_pct: f64,
    pub campaigner_rss_mb: f64,
    pub accepted: u64,
}

/// (utime + stime) in clock ticks, from /proc/<pid>/stat.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let num = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    num(11) + num(12)
}

/// A `/proc/<pid>/status` field in MB (VmRSS, VmHWM).
fn status_mb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

pub async fn bench_campaign() -> CampaignRun {
    let nats = NatsServer::start().await;
    let port = free_port();
    let mut fleet = Fleet::new(&[
        ("NATS_URL", nats.url()),
        ("CALLFLEET_INGRESS__BIND", format!("127.0.0.1:{port}")),
        ("LOG_LEVEL", "warn".into()),
    ]);
    fleet.start(Role::Ingress);
    fleet.start(Role::Campaigner);
    callfleet_tests::wait_port(port, "ingress").await;
    callfleet_tests::wait_consumer(&nats.url(), "CALL_JOBS", "agents").await;

    let dir = TempDir::new("bench-campaign");
    let csv = dir.0.join("contacts.csv");
    let mut body = String::with_capacity(CONTACTS * 40);
    body.push_str("destination,first_name,plan\n");
    for i in 0..CONTACTS {
        body.push_str(&format!("+614{:08},name{i},gold\n", 10_000_000 + i));
    }
    std::fs::write(&csv, body).expect("write csv");

    // A window closed all day today: the day after tomorrow only.
    let day = jiff::Zoned::now()
        .date()
        .checked_add(jiff::Span::new().days(2))
        .map(|d| format!("{:?}", d.weekday()).to_ascii_lowercase()[..3].to_owned())
        .unwrap_or_else(|_| "sun".into());
    let started = Instant::now();
    let mut cli = Command::new(binary())
        .args(["campaign", "create", "--csv"])
        .arg(&csv)
        .args([
            "--name",
            "bench",
            "--account-code",
            "bench",
            "--id",
            "bench",
        ])
        .args([
            "--window",
            &format!("{day} 09:00-17:00"),
            "--timezone",
            "UTC",
        ])
        .args(["--calls-per-second", "10"])
        .env("CALLFLEET_INGRESS__BIND", format!("127.0.0.1:{port}"))
        .env("NATS_URL", nats.url())
        .env("LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run callfleet campaign create");
    let mut cli_peak: f64 = 0.0;
    let pid = cli.id();
    // Sample the CLI's memory while it runs (bounded: 10 minutes).
    for _ in 0..12_000 {
        if let Ok(Some(_)) = cli.try_wait() {
            break;
        }
        cli_peak = cli_peak.max(status_mb(pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = cli.wait_with_output().expect("cli output");
    let upload_secs = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    let accepted = text
        .split("campaign bench: ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let ingress_pid = fleet.pid(Role::Ingress).unwrap_or(0);
    let ingress_peak_rss_mb = status_mb(ingress_pid, "VmHWM:");

    // The campaigner moves every contact to the window's opening.
    let js = async_nats::jetstream::new(nats.client().await);
    wait_for(
        "every contact waiting for its window",
        Duration::from_secs(600),
        || {
            let js = js.clone();
            async move {
                let mut stream = js.get_stream("CAMPAIGN_CONTACTS").await.ok()?;
                let messages = stream.info().await.ok()?.state.messages;
                let consumer_info = stream
                    .get_consumer::<async_nats::jetstream::consumer::pull::Config>("feeder-bench")
                    .await
                    .ok()?
                    .info()
                    .await
                    .ok()?
                    .clone();
                (messages as usize >= CONTACTS
                    && consumer_info.num_pending == 0
                    && consumer_info.num_ack_pending == 0)
                    .then_some(())
            }
        },
    )
    .await;
    let sweep_secs = started.elapsed().as_secs_f64() - upload_secs;

    // Idle: 100,000 contacts wait for their window.
    let campaigner = fleet.pid(Role::Campaigner).unwrap_or(0);
    let nats_pid = nats.pid().unwrap_or(0);
    let (c0, n0) = (cpu_ticks(campaigner), cpu_ticks(nats_pid));
    let t0 = Instant::now();
    let idle_until = t0 + Duration::from_secs(IDLE_SECS);
    wait_for(
        "the idle measurement",
        Duration::from_secs(IDLE_SECS + 5),
        || async move { (Instant::now() >= idle_until).then_some(()) },
    )
    .await;
    let secs = t0.elapsed().as_secs_f64();
    let tick = 100.0; // USER_HZ on Linux
    let pct = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / tick / secs * 100.0;
    CampaignRun {
        upload_secs,
        cli_peak_rss_mb: cli_peak,
        ingress_peak_rss_mb,
        sweep_secs,
        idle_campaigner_cpu_pct: pct(c0, cpu_ticks(campaigner)),
        idle_nats_cpu_pct: pct(n0, cpu_ticks(nats_pid)),
        campaigner_rss_mb: status_mb(campaigner, "VmRSS:"),
        accepted,
    }
}
