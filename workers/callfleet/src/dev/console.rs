//! What each call said, on dev's console as it ends: a newcomer sees the conversation without
//! a webhook receiver (the summary still goes to `N8N_WEBHOOK_URL` when one is set).

use std::sync::Arc;

use callfleet_bus::Bus;
use callfleet_config::Config;
use callfleet_domain::summary::{CallSummary, SpeakerRole};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// Print every call summary until shutdown. A console that cannot watch says so and stops;
/// the fleet runs on without it.
pub async fn print_calls(config: Arc<Config>, shutdown: CancellationToken) {
    let watch = async {
        let bus = Bus::connect(&config, "dev-console").await?;
        bus.watch_summaries().await
    };
    let summaries = match watch.await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dev: cannot show calls as they end ({e}); the fleet runs on");
            return;
        }
    };
    let mut summaries = std::pin::pin!(summaries);
    loop {
        tokio::select! {
            s = summaries.next() => match s {
                Some(s) => println!("{}", render(&s)),
                None => return,
            },
            () = shutdown.cancelled() => return,
        }
    }
}

/// `dev: call <id> to <number>: <outcome>, <end reason>, <duration>; <what answered>; <dead
/// air>`, then what each side said, one line per transcript entry.
fn render(s: &CallSummary) -> String {
    let whom = match &s.inbound {
        Some(leg) => format!(
            "from {} (inbound) to",
            leg.caller_number.as_deref().unwrap_or("an unknown caller")
        ),
        None => "to".to_owned(),
    };
    let mut head = format!(
        "dev: call {} {whom} {}: {}, {}",
        s.call_id,
        s.destination,
        s.outcome.as_str(),
        label(&s.end_reason)
    );
    if let Some(d) = s.call_duration_seconds {
        head.push_str(&format!(", {d:.1} s"));
    }
    if let Some(a) = &s.answer {
        head.push_str(&format!(
            "; answered by: {} (decided after {} ms, {})",
            a.class.as_str(),
            a.decided_ms,
            a.action.as_str()
        ));
    }
    if let Some(ms) = s.first_agent_audio_ms {
        head.push_str(&format!("; first agent audio after {ms} ms"));
    }
    if let Some(l) = s.response_latency_ms {
        head.push_str(&format!(
            "; response latency p50 {:.0} ms, p95 {:.0} ms",
            l.p50, l.p95
        ));
    }
    if let Some(e) = &s.error {
        head.push_str(&format!("; error: {e}"));
    }
    for t in &s.transcript {
        let who = match t.role {
            SpeakerRole::User => "callee",
            SpeakerRole::Assistant => "agent ",
        };
        head.push_str(&format!("\n  {who}: {}", t.text));
    }
    head
}

/// The end reason's JSON name (`agent_hangup`).
fn label(v: &callfleet_domain::EndReason) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}
