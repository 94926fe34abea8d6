//! `callfleet campaign …`: operators' commands, spoken to the ingress over HTTP (so they get
//! the same validation and API keys as every other client).

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use callfleet_config::Config;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

/// Rows per upload request.
const CHUNK: usize = 5_000;

#[derive(Subcommand)]
pub enum CampaignCommand {
    /// Create a campaign and upload its contacts from a CSV (header row with `destination`).
    Create {
        #[arg(long)]
        csv: PathBuf,
        #[arg(long)]
        name: String,
        /// The default account code (X-Account-Code) for every contact.
        #[arg(long)]
        account_code: String,
        #[arg(long)]
        id: Option<String>,
        #[arg(long, default_value_t = 5)]
        max_concurrent_calls: u32,
        #[arg(long, default_value_t = 1.0)]
        calls_per_second: f64,
        /// IANA time zone of the window (a contact's `timezone` column wins).
        #[arg(long)]
        timezone: Option<String>,
        /// Calling window, e.g. `mon-fri 09:00-17:00` or `09:00-17:00` (every day).
        #[arg(long)]
        window: Option<String>,
        /// More settings as a JSON file (session_options, caller_number, retry, start_at, …).
        #[arg(long)]
        settings: Option<PathBuf>,
    },
    /// Counts per state and outcome, dial rate and ETA; `--watch` follows it live.
    Status {
        id: String,
        #[arg(long)]
        watch: bool,
    },
    /// Stop new dials (live calls finish).
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    /// End every waiting contact as `cancelled`.
    Cancel {
        id: String,
    },
}

/// The ingress's HTTP API, as configured (also used by `callfleet recording`).
pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) key: Option<String>,
}

impl Api {
    pub(crate) fn new(config: &Config) -> Self {
        let base = config
            .ingress
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.ingress.bind));
        let key = std::env::var("CALLFLEET_API_KEY")
            .ok()
            .or_else(|| config.ingress.api_keys.first().cloned());
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            key,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let req = match &self.key {
            Some(k) => req.bearer_auth(k),
            None => req,
        };
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the ingress at {}", self.base))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "{status}: {}",
                body["message"].as_str().unwrap_or(&body.to_string())
            );
        }
        Ok(body)
    }

    async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }
}

/// `mon-fri 09:00-17:00`, `mon,wed 10:00-12:30`, or `09:00-17:00`.
fn parse_window(raw: &str) -> anyhow::Result<Value> {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let (days, hours) = match raw.trim().rsplit_once(' ') {
        Some((d, h)) => (Some(d.trim()), h),
        None => (None, raw.trim()),
    };
    let (start, end) = hours
        .split_once('-')
        .context("window hours must be START-END, e.g. 09:00-17:00")?;
    let mut list = Vec::new();
    if let Some(days) = days {
        for part in days.split(',') {
            if let Some((a, b)) = part.split_once('-') {
                let (i, j) = (
                    DAYS.iter()
                        .position(|d| d.eq_ignore_ascii_case(a))
                        .context("unknown day")?,
                    DAYS.iter()
                        .position(|d| d.eq_ignore_ascii_case(b))
                        .context("unknown day")?,
                );
                list.extend(DAYS[i..=j].iter().map(|d| (*d).to_owned()));
            } else {
                list.push(part.trim().to_ascii_lowercase());
            }
        }
    }
    Ok(json!({"days": list, "start": start, "end": end}))
}

pub async fn run(config: &Config, command: CampaignCommand) -> anyhow::Result<()> {
    let api = Api::new(config);
    match command {
        CampaignCommand::Create {
            csv,
            name,
            account_code,
            id,
            max_concurrent_calls,
            calls_per_second,
            timezone,
            window,
            settings,
        } => {
            let mut body = match settings {
                Some(path) => serde_json::from_str(
                    &std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?,
                )
                .with_context(|| format!("{} is not a JSON object", path.display()))?,
                None => json!({}),
            };
            let obj = body
                .as_object_mut()
                .context("--settings must hold a JSON object")?;
            obj.insert("name".into(), json!(name));
            obj.insert("account_code".into(), json!(account_code));
            obj.insert("max_concurrent_calls".into(), json!(max_concurrent_calls));
            obj.insert("calls_per_second".into(), json!(calls_per_second));
            obj.insert("more_contacts".into(), json!(true));
            if let Some(id) = id {
                obj.insert("id".into(), json!(id));
            }
            if let Some(tz) = timezone {
                obj.insert("timezone".into(), json!(tz));
            }
            if let Some(w) = window {
                obj.insert("window".into(), parse_window(&w)?);
            }
            let created = api.post_json("/campaigns", &body).await?;
            let id = created["campaign_id"]
                .as_str()
                .context("no campaign_id in the answer")?
                .to_owned();
            upload(&api, &id, &csv).await?;
            println!("status: callfleet campaign status {id} --watch");
        }
        CampaignCommand::Status { id, watch } => status(&api, &id, watch).await?,
        CampaignCommand::Pause { id } => change(&api, &id, "pause").await?,
        CampaignCommand::Resume { id } => change(&api, &id, "resume").await?,
        CampaignCommand::Cancel { id } => change(&api, &id, "cancel").await?,
    }
    Ok(())
}

async fn change(api: &Api, id: &str, action: &str) -> anyhow::Result<()> {
    let v = api
        .post_json(&format!("/campaigns/{id}/{action}"), &json!({}))
        .await?;
    println!("campaign {id}: {}", v["status"].as_str().unwrap_or("?"));
    Ok(())
}

/// Upload the CSV in chunks with a progress bar; print every refused row with its file line.
async fn upload(api: &Api, id: &str, path: &PathBuf) -> anyhow::Result<()> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(data.as_slice());
    let header = reader
        .headers()
        .context("reading the CSV header row")?
        .clone();
    let records: Vec<(u64, csv::StringRecord)> = reader
        .records()
        .enumerate()
        .map(|(i, r)| {
            let r = r.unwrap_or_default();
            let line = r.position().map_or(i as u64 + 2, |p| p.line());
            (line, r)
        })
        .collect();
    let bar = ProgressBar::new(records.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} uploading [{bar:40}] {pos}/{len} rows ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut accepted, mut dnc, mut refused, mut dups) = (0u64, 0u64, Vec::new(), 0u64);
    let chunks: Vec<_> = records.chunks(CHUNK).collect();
    let total = chunks.len().max(1);
    for (n, chunk) in chunks.iter().enumerate() {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&header)?;
        for (_, r) in chunk.iter() {
            w.write_record(r)?;
        }
        let body = w.into_inner().context("encoding a CSV chunk")?;
        let last = n + 1 == total;
        let url = format!("{}/campaigns/{id}/contacts?last={last}", api.base);
        let v = api
            .send(
                api.http
                    .post(url)
                    .header("content-type", "text/csv")
                    .body(body),
            )
            .await?;
        accepted += v["accepted"].as_u64().unwrap_or(0);
        dnc += v["dnc_skipped"].as_u64().unwrap_or(0);
        dups += v["duplicates"].as_array().map_or(0, |d| d.len() as u64);
        for r in v["rejected"].as_array().into_iter().flatten() {
            // The server numbers the chunk's lines (its header is line 1).
            let idx = r["line"].as_u64().unwrap_or(2).saturating_sub(2) as usize;
            let line = chunk.get(idx).map_or(0, |(l, _)| *l);
            refused.push(format!(
                "line {line}: {}",
                r["reason"].as_str().unwrap_or("")
            ));
        }
        bar.inc(chunk.len() as u64);
    }
    if records.is_empty() {
        let url = format!("{}/campaigns/{id}/contacts?last=true", api.base);
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&header)?;
        api.send(
            api.http
                .post(url)
                .header("content-type", "text/csv")
                .body(w.into_inner()?),
        )
        .await?;
    }
    bar.finish_and_clear();
    println!(
        "campaign {id}: {accepted} contacts enqueued, {} refused, {dups} duplicates collapsed, {dnc} on the do-not-call list",
        refused.len()
    );
    for r in &refused {
        println!("  {r}");
    }
    Ok(())
}

async fn status(api: &Api, id: &str, watch: bool) -> anyhow::Result<()> {
    let path = format!("/campaigns/{id}");
    if !watch {
        println!("{}", serde_json::to_string_pretty(&api.get(&path).await?)?);
        return Ok(());
    }
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("[{bar:40}] {pos}/{len} done · {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Bounded: a day of one-second polls at most.
    for _ in 0..86_400 {
        let v = api.get(&path).await?;
        bar.set_length(v["accepted"].as_u64().unwrap_or(0).max(1));
        bar.set_position(v["finished"].as_u64().unwrap_or(0));
        let eta = v["eta_seconds"]
            .as_f64()
            .map_or("-".to_owned(), |s| format!("{s:.0} s"));
        bar.set_message(format!(
            "{} · waiting {} · live {} · {:.2} dials/s · eta {eta} · {}",
            v["status"].as_str().unwrap_or("?"),
            v["waiting"],
            v["live"],
            v["dial_rate"].as_f64().unwrap_or(0.0),
            v["outcomes"]
        ));
        if v["completed_at"].is_string() {
            bar.finish();
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}
