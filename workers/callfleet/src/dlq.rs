//! `callfleet dlq list` and `callfleet dlq replay <seq>` (the bus does the JetStream side).

use callfleet_bus::Bus;
use callfleet_config::Config;
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
    match command {
        DlqCommand::List { limit } => {
            let (total, letters) = bus.dead_letters(limit).await?;
            println!("{total} dead letter(s)");
            for d in letters {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    d.seq, d.time, d.subject, d.original_subject, d.reason
                );
            }
        }
        DlqCommand::Replay { seq } => {
            let original = bus.replay_dead_letter(seq).await?;
            println!("replayed {seq} onto {original}");
        }
    }
    Ok(())
}
