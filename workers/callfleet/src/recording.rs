//! `callfleet recording get <call_id> -o FILE`: save a call's recording, fetched from the
//! ingress's `GET /calls/{id}/recording` (same API key as every other client).

use std::path::PathBuf;

use anyhow::{Context, bail};
use callfleet_config::Config;
use clap::Subcommand;
use tokio::io::AsyncWriteExt as _;

use crate::campaign::Api;

#[derive(Subcommand)]
pub enum RecordingCommand {
    /// Save the call's recording (Ogg Opus; channel 1 the callee, channel 2 the agent).
    Get {
        call_id: String,
        /// Where to write it.
        #[arg(short, long)]
        output: PathBuf,
    },
}

pub async fn run(config: &Config, command: RecordingCommand) -> anyhow::Result<()> {
    let RecordingCommand::Get { call_id, output } = command;
    let api = Api::new(config);
    let url = format!("{}/calls/{call_id}/recording", api.base);
    let mut req = api.http.get(&url);
    if let Some(k) = &api.key {
        req = req.bearer_auth(k);
    }
    let mut resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach the ingress at {}", api.base))?;
    let status = resp.status();
    if !status.is_success() {
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        bail!(
            "{status}: {}",
            body["message"].as_str().unwrap_or("no recording")
        );
    }
    // Written beside the target, then renamed: an interrupted download leaves no half file.
    let partial = output.with_extension("part");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut bytes = 0u64;
    while let Some(chunk) = resp.chunk().await.context("download interrupted")? {
        file.write_all(&chunk)
            .await
            .context("cannot write the file")?;
        bytes += chunk.len() as u64;
    }
    file.flush().await?;
    tokio::fs::rename(&partial, &output)
        .await
        .with_context(|| format!("cannot write {}", output.display()))?;
    println!("{} bytes written to {}", bytes, output.display());
    Ok(())
}
