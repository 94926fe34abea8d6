//! `callfleet dlq list` and `callfleet dlq replay <seq>`.

use anyhow::{Context, bail};
use callfleet_bus::{Bus, async_nats::HeaderMap};
use callfleet_config::Config;
use callfleet_domain::subjects as s;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum DlqCommand {
    /// List dead letters: sequence, time, subject, reason.
    List {
        /// At most this many, newest last.
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Put a dead-lettered job back on its original subject (and forget the call's failed state).
    Replay { seq: u64 },
}

pub async fn run(config: &Config, command: DlqCommand) -> anyhow::Result<()> {
    let bus = Bus::connect(config, "dlq").await?;
    let mut stream = bus
        .js
        .get_stream(s::DLQ_STREAM)
        .await
        .context("opening CALL_DLQ")?;
    let info = stream.info().await.context("reading CALL_DLQ")?.clone();
    match command {
        DlqCommand::List { limit } => {
            let first = info.state.first_sequence.max(
                info.state
                    .last_sequence
                    .saturating_sub(limit.saturating_sub(1)),
            );
            println!("{} dead letter(s)", info.state.messages);
            for seq in first..=info.state.last_sequence {
                let Ok(msg) = stream.get_raw_message(seq).await else {
                    continue;
                };
                let reason = header(&msg.headers, s::DLQ_REASON_HEADER);
                let original = header(&msg.headers, s::DLQ_SUBJECT_HEADER);
                println!("{seq}\t{}\t{}\t{original}\t{reason}", msg.time, msg.subject);
            }
        }
        DlqCommand::Replay { seq } => {
            let msg = stream
                .get_raw_message(seq)
                .await
                .with_context(|| format!("no dead letter {seq}"))?;
            let original = header(&msg.headers, s::DLQ_SUBJECT_HEADER);
            if !original.starts_with("calls.dispatch.")
                && !original.starts_with("webhooks.deliver.")
            {
                bail!(
                    "dead letter {seq} came from {original:?}; only jobs and webhook deliveries can be replayed"
                );
            }
            if let Some(call_id) = msg.subject.strip_prefix("calls.dlq.") {
                bus.calls.delete(call_id).await.ok();
            }
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("replay.{seq}").as_str());
            // A new generation: the replay's events are not deduplicated against the first run's.
            headers.insert(s::GENERATION_HEADER, seq.to_string().as_str());
            bus.js
                .publish_with_headers(original.clone(), headers, msg.payload.clone())
                .await?
                .await?;
            stream
                .delete_message(seq)
                .await
                .context("removing the replayed dead letter")?;
            println!("replayed {seq} onto {original}");
        }
    }
    Ok(())
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default()
}
