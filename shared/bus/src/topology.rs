//! Streams, consumers and KV buckets, created or updated idempotently at start-up.
//!
//! | name | kind | subjects | why |
//! |---|---|---|---|
//! | `CALL_JOBS` | stream, work queue, schedules allowed | `calls.dispatch.>`, `calls.schedule.>`, `calls.campaign.>` | jobs; retries and `not_before` wait as scheduled messages; campaign jobs once released |
//! | `CALL_EVENTS` | stream, limits | `calls.events.>`, `campaigns.events.>` | every state change, summaries on `ended`/`failed`; campaign events |
//! | `CAMPAIGN_CONTACTS` | stream, work queue, schedules allowed | `campaigns.contacts.>`, `campaigns.schedule.>` | contacts waiting for the campaigner (pace, window, retry) |
//! | `CAMPAIGN_TALLY` | stream, limits | `campaigns.tally.<campaign>.<outcome>`, `campaigns.tally.<campaign>.first_audio.<bucket>` | one message per finished contact (and per answered voice call's first-audio bucket); the server counts them per subject |
//! | `CALL_DLQ` | stream, limits | `calls.dlq.>`, `webhooks.dlq.>` | poison jobs and undeliverable webhooks, with reasons |
//! | `WEBHOOKS` | stream, work queue, schedules allowed | `webhooks.deliver.>`, `webhooks.schedule.>` | webhook deliveries and their scheduled retries |
//! | `LIVEKIT_EVENTS` | stream, limits, dedup by LiveKit's event id | `livekit.events.<event>` | verified LiveKit webhooks, as LiveKit sent them |
//! | `agents` | pull consumer on `CALL_JOBS` | `calls.dispatch.>` | the agent workers |
//! | `notifier` | pull consumer on `CALL_EVENTS` | `calls.events.*.ended`, `calls.events.*.failed` | fan-out to webhook targets |
//! | `notifier-deliveries` | pull consumer on `WEBHOOKS` | `webhooks.deliver.>` | one POST per message |
//! | `livekit-events` | pull consumer on `LIVEKIT_EVENTS` | `livekit.events.>` | the dispatcher: LiveKit events → call events, telephony-mode sessions |
//! | `calls` | KV | | call state for `GET /calls/{id}` and the worker's checks |
//! | `call_leases` | KV, max_age = lease TTL | | at most one live dial per call |
//! | `number_locks` | KV, max_age = lease TTL | | at most one live call per phone number, across campaigns |
//! | `campaigns` | KV | | campaign settings and status |
//! | `dnc` | KV | | the do-not-call list |
//! | `livekit_rooms` | KV, 1 day | | LiveKit room → call id, for rooms callfleet did not name |
//! | `campaign-<id>`, `feeder-<id>` | pull consumers, made per campaign | `calls.campaign.<id>`, `campaigns.contacts.<id>` | the campaign's concurrency cap (`max_ack_pending`) and its feeder |
//!
//! The same definitions are exported to `nats/` by `callfleet topology export` (and a test
//! fails when the files drift from the code).

use std::time::Duration;

use async_nats::jetstream::{
    self, consumer, kv, object_store,
    stream::{self, RetentionPolicy, StorageType},
};
use callfleet_config::Config;
use callfleet_domain::subjects as s;
use serde_json::Value;

use crate::BusError;

pub fn jobs_stream(cfg: &Config) -> stream::Config {
    stream::Config {
        name: s::JOBS_STREAM.into(),
        description: Some(
            "Call jobs (calls.dispatch.<campaign>) and scheduled jobs (calls.schedule.<call_id>)"
                .into(),
        ),
        subjects: vec![
            s::DISPATCH_ALL.into(),
            s::SCHEDULE_ALL.into(),
            s::CAMPAIGN_JOBS_ALL.into(),
            s::OVERFLOW_ALL.into(),
        ],
        retention: RetentionPolicy::WorkQueue,
        storage: StorageType::File,
        num_replicas: cfg.nats.replicas,
        duplicate_window: Duration::from_secs(cfg.nats.duplicate_window_secs),
        allow_message_schedules: true,
        max_message_size: 1024 * 1024,
        ..Default::default()
    }
}

pub fn events_stream(cfg: &Config) -> stream::Config {
    stream::Config {
        name: s::EVENTS_STREAM.into(),
        description: Some(
            "Call events: calls.events.<call_id>.<kind>; campaign events: campaigns.events.<id>.<kind>"
                .into(),
        ),
        subjects: vec![s::EVENTS_ALL.into(), s::CAMPAIGN_EVENTS_ALL.into()],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        num_replicas: cfg.nats.replicas,
        duplicate_window: Duration::from_secs(cfg.nats.duplicate_window_secs),
        max_age: Duration::from_secs(cfg.nats.events_max_age_hours * 3600),
        max_message_size: 4 * 1024 * 1024,
        ..Default::default()
    }
}

pub fn dlq_stream(cfg: &Config) -> stream::Config {
    stream::Config {
        name: s::DLQ_STREAM.into(),
        description: Some(
            "Dead letters: poison jobs and undeliverable webhooks, with reasons".into(),
        ),
        subjects: vec![
            s::DLQ_ALL.into(),
            "webhooks.dlq.>".into(),
            s::LIVEKIT_DLQ_ALL.into(),
        ],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        num_replicas: cfg.nats.replicas,
        max_age: Duration::from_secs(30 * 24 * 3600),
        ..Default::default()
    }
}

pub fn webhooks_stream(cfg: &Config) -> stream::Config {
    stream::Config {
        name: s::WEBHOOKS_STREAM.into(),
        description: Some("Webhook deliveries and their scheduled retries".into()),
        subjects: vec![s::DELIVER_ALL.into(), s::WEBHOOK_SCHEDULE_ALL.into()],
        retention: RetentionPolicy::WorkQueue,
        storage: StorageType::File,
        num_replicas: cfg.nats.replicas,
        duplicate_window: Duration::from_secs(cfg.nats.duplicate_window_secs),
        allow_message_schedules: true,
        max_message_size: 4 * 1024 * 1024,
        ..Default::default()
    }
}

/// Verified LiveKit webhooks, deduplicated by LiveKit's event id (`Nats-Msg-Id`): 1 h or
/// `nats.duplicate_window_secs`, whichever is larger, and never beyond the stream's max age.
pub fn livekit_events_stream(cfg: &Config) -> stream::Config {
    let max_age = Duration::from_secs(cfg.nats.livekit_events_max_age_hours * 3600);
    let window = Duration::from_secs(cfg.nats.duplicate_window_secs.max(3600)).min(max_age);
    stream::Config {
        name: s::LIVEKIT_EVENTS_STREAM.into(),
        description: Some(
            "Verified LiveKit webhooks as LiveKit sent them: livekit.events.<event>".into(),
        ),
        subjects: vec![s::LIVEKIT_EVENTS_ALL.into()],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        num_replicas: cfg.nats.replicas,
        duplicate_window: window,
        max_age,
        max_message_size: 1024 * 1024,
        ..Default::default()
    }
}

pub fn contacts_stream(cfg: &Config) -> stream::Config {
    stream::Config {
        name: s::CONTACTS_STREAM.into(),
        description: Some(
            "Campaign contacts waiting for the campaigner: campaigns.contacts.<id>, and for a window or retry: campaigns.schedule.<id>.<call_id>"
                .into(),
        ),
        subjects: vec![s::CONTACTS_ALL.into(), s::CONTACT_SCHEDULE_ALL.into()],
        retention: RetentionPolicy::WorkQueue,
        storage: StorageType::File,
        num_replicas: cfg.nats.replicas,
        duplicate_window: Duration::from_secs(cfg.nats.duplicate_window_secs),
        allow_message_schedules: true,
        max_message_size: 1024 * 1024,
        ..Default::default()
    }
}

pub fn tally_stream(cfg: &Config) -> stream::Config {
    stream::Config {
        name: s::TALLY_STREAM.into(),
        description: Some(
            "One message per finished campaign contact (and per dial): campaigns.tally.<id>.<outcome>; per answered voice call: campaigns.tally.<id>.first_audio.<bucket>; counted per subject"
                .into(),
        ),
        subjects: vec![s::TALLY_ALL.into()],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        num_replicas: cfg.nats.replicas,
        duplicate_window: Duration::from_secs(cfg.nats.duplicate_window_secs),
        max_age: Duration::from_secs(90 * 24 * 3600),
        max_message_size: 1024,
        ..Default::default()
    }
}

/// A campaign's released jobs: `max_ack_pending` is its fleet-wide live-call cap.
pub fn campaign_consumer(cfg: &Config, campaign: &str, cap: u32) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(s::campaign_consumer(campaign)),
        description: Some(format!(
            "Agent workers: released jobs of campaign {campaign}"
        )),
        filter_subject: s::campaign_jobs(campaign),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: cfg.agent.ack_wait(),
        max_deliver: -1,
        max_ack_pending: i64::from(cap),
        ..Default::default()
    }
}

/// The campaigner's view of a campaign's waiting contacts.
pub fn feeder_consumer(campaign: &str) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(s::feeder_consumer(campaign)),
        description: Some(format!(
            "Campaigner: waiting contacts of campaign {campaign}"
        )),
        filter_subject: s::contacts(campaign),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(30),
        max_deliver: -1,
        max_ack_pending: 1_000,
        ..Default::default()
    }
}

/// Counts a campaign's scheduled contacts (never pulled).
pub fn waiting_consumer(campaign: &str) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(s::waiting_consumer(campaign)),
        description: Some(format!(
            "Counter: contacts of campaign {campaign} waiting for a window or a retry (never pulled)"
        )),
        filter_subject: format!("campaigns.schedule.{campaign}.>"),
        ack_policy: consumer::AckPolicy::Explicit,
        ..Default::default()
    }
}

pub fn agent_consumer(cfg: &Config) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(s::AGENT_CONSUMER.into()),
        description: Some("Agent workers: one message per call attempt".into()),
        filter_subject: s::DISPATCH_ALL.into(),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: cfg.agent.ack_wait(),
        // Redelivery is bounded by the worker itself (agent.max_deliveries), which dead-letters
        // the job with its reason instead of leaving it stuck in the work queue.
        max_deliver: -1,
        max_ack_pending: 10_000,
        max_waiting: 512,
        ..Default::default()
    }
}

pub fn notifier_consumer(cfg: &Config) -> consumer::pull::Config {
    let filter_subjects = if cfg.notifier.include_progress_events {
        vec![s::EVENTS_ALL.into(), "campaigns.events.*.completed".into()]
    } else {
        vec![
            "calls.events.*.ended".into(),
            "calls.events.*.failed".into(),
            "campaigns.events.*.completed".into(),
        ]
    };
    consumer::pull::Config {
        durable_name: Some(s::NOTIFIER_CONSUMER.into()),
        description: Some("Notifier: fans final call events out to webhook deliveries".into()),
        filter_subjects,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(30),
        max_deliver: -1,
        max_ack_pending: 10_000,
        ..Default::default()
    }
}

pub fn delivery_consumer(cfg: &Config) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(s::DELIVERY_CONSUMER.into()),
        description: Some("Notifier: one webhook POST per message".into()),
        filter_subject: s::DELIVER_ALL.into(),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(cfg.notifier.timeout_secs + 20),
        max_deliver: -1,
        max_ack_pending: 10_000,
        ..Default::default()
    }
}

/// The dispatcher: LiveKit events into call events (and telephony-mode sessions).
/// Due busy checks of inbound calls, for any dispatcher: the timer survives the one that
/// accepted the call.
pub fn overflow_consumer() -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(s::OVERFLOW_CONSUMER.into()),
        description: Some(
            "Dispatchers: an inbound caller no worker took by answer_by hears the busy message"
                .into(),
        ),
        filter_subject: s::OVERFLOW_ALL.into(),
        ack_policy: consumer::AckPolicy::Explicit,
        // A busy message is a room join and a few seconds of speech.
        ack_wait: Duration::from_secs(60),
        max_deliver: 5,
        max_ack_pending: 1_000,
        ..Default::default()
    }
}

pub fn livekit_events_consumer() -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(s::LIVEKIT_EVENTS_CONSUMER.into()),
        description: Some(
            "Dispatcher: verified LiveKit webhooks into call events and inbound sessions".into(),
        ),
        filter_subject: s::LIVEKIT_EVENTS_ALL.into(),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(30),
        max_deliver: -1,
        max_ack_pending: 1_000,
        ..Default::default()
    }
}

pub fn calls_kv(cfg: &Config) -> kv::Config {
    kv::Config {
        bucket: s::CALLS_BUCKET.into(),
        description: "Call state: GET /calls/{id} and the worker's checks".into(),
        history: 1,
        max_age: Duration::from_secs(30 * 24 * 3600),
        storage: StorageType::File,
        num_replicas: cfg.nats.replicas,
        ..Default::default()
    }
}

pub fn leases_kv(cfg: &Config) -> kv::Config {
    kv::Config {
        bucket: s::LEASES_BUCKET.into(),
        description: "Call leases: at most one live dial per call".into(),
        history: 1,
        max_age: cfg.agent.lease_ttl(),
        storage: StorageType::File,
        num_replicas: cfg.nats.replicas,
        ..Default::default()
    }
}

pub fn campaigns_kv(cfg: &Config) -> kv::Config {
    kv::Config {
        bucket: s::CAMPAIGNS_BUCKET.into(),
        description: "Campaign settings and status".into(),
        history: 1,
        storage: StorageType::File,
        num_replicas: cfg.nats.replicas,
        ..Default::default()
    }
}

pub fn numbers_kv(cfg: &Config) -> kv::Config {
    kv::Config {
        bucket: s::NUMBERS_BUCKET.into(),
        description: "Number locks: at most one live call per phone number".into(),
        history: 1,
        max_age: cfg.agent.lease_ttl(),
        storage: StorageType::File,
        num_replicas: cfg.nats.replicas,
        ..Default::default()
    }
}

pub fn dnc_kv(cfg: &Config) -> kv::Config {
    kv::Config {
        bucket: s::DNC_BUCKET.into(),
        description: "Do-not-call list: E.164 digits".into(),
        history: 1,
        storage: StorageType::File,
        num_replicas: cfg.nats.replicas,
        ..Default::default()
    }
}

/// LiveKit room → call id for rooms callfleet did not name (a dispatch rule's), kept a day.
pub fn livekit_rooms_kv(cfg: &Config) -> kv::Config {
    kv::Config {
        bucket: s::LIVEKIT_ROOMS_BUCKET.into(),
        description: "LiveKit room -> call id, for rooms made by dispatch rules".into(),
        history: 1,
        max_age: Duration::from_secs(24 * 3600),
        storage: StorageType::File,
        num_replicas: cfg.nats.replicas,
        ..Default::default()
    }
}

/// The `recordings` object store: call recordings, kept `recording.max_age_hours`.
pub fn recordings_store(cfg: &Config) -> object_store::Config {
    object_store::Config {
        bucket: s::RECORDINGS_BUCKET.into(),
        description: Some(
            "Call recordings (Ogg Opus, callee and agent): segments while a call runs, then <call_id>.ogg".into(),
        ),
        max_age: Duration::from_secs(cfg.recording.max_age_hours * 3600),
        storage: StorageType::File,
        num_replicas: cfg.recording.replicas,
        ..Default::default()
    }
}

/// The object store's stream, for updating it when its settings changed (the client's
/// `create_object_store` only creates).
fn recordings_stream(cfg: &Config) -> stream::Config {
    let store = recordings_store(cfg);
    let b = &store.bucket;
    stream::Config {
        name: format!("OBJ_{b}"),
        description: store.description,
        subjects: vec![format!("$O.{b}.C.>"), format!("$O.{b}.M.>")],
        max_age: store.max_age,
        storage: store.storage,
        num_replicas: store.num_replicas,
        discard: stream::DiscardPolicy::New,
        allow_rollup: true,
        allow_direct: true,
        ..Default::default()
    }
}

/// The KV buckets every role opens.
pub struct Buckets {
    pub calls: kv::Store,
    pub leases: kv::Store,
    pub campaigns: kv::Store,
    pub numbers: kv::Store,
    pub dnc: kv::Store,
    pub livekit_rooms: kv::Store,
    pub recordings: object_store::ObjectStore,
}

fn topo(what: impl Into<String>, e: impl std::error::Error + Send + Sync + 'static) -> BusError {
    BusError::Topology {
        what: what.into(),
        source: Box::new(e),
    }
}

/// How long a starting process keeps trying to set the topology up while JetStream is only
/// unavailable (see [`ensure_patiently`]).
const ENSURE_PATIENCE: Duration = Duration::from_secs(60);

/// [`ensure`], tried again while JetStream does not answer in time or answers 503 (a cluster
/// electing leaders after losing a node, or too busy to answer within the client's request
/// timeout while several processes start at once), for up to [`ENSURE_PATIENCE`], backing off
/// up to 5 s. A refusal (`replicas > 1 not supported in non-clustered mode`, a bad config)
/// fails at once.
pub async fn ensure_patiently(js: &jetstream::Context, cfg: &Config) -> Result<Buckets, BusError> {
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        match ensure(js, cfg).await {
            Ok(buckets) => return Ok(buckets),
            Err(e) if e.is_transient() && started.elapsed() + delay < ENSURE_PATIENCE => {
                tracing::warn!(error = %e, source = ?std::error::Error::source(&e).map(ToString::to_string), retry_ms = delay.as_millis() as u64, "JetStream topology not set up yet; trying again");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Create or update everything. Safe to run from every process at every start.
pub async fn ensure(js: &jetstream::Context, cfg: &Config) -> Result<Buckets, BusError> {
    for stream in [
        jobs_stream(cfg),
        events_stream(cfg),
        dlq_stream(cfg),
        webhooks_stream(cfg),
        contacts_stream(cfg),
        tally_stream(cfg),
        livekit_events_stream(cfg),
    ] {
        let name = stream.name.clone();
        js.create_or_update_stream(stream)
            .await
            .map_err(|e| topo(format!("stream {name}"), e))?;
    }
    for (stream, consumer) in [
        (s::JOBS_STREAM, agent_consumer(cfg)),
        (s::EVENTS_STREAM, notifier_consumer(cfg)),
        (s::WEBHOOKS_STREAM, delivery_consumer(cfg)),
        (s::LIVEKIT_EVENTS_STREAM, livekit_events_consumer()),
        (s::JOBS_STREAM, overflow_consumer()),
    ] {
        let name = consumer.durable_name.clone().unwrap_or_default();
        let handle = js
            .get_stream(stream)
            .await
            .map_err(|e| topo(format!("stream {stream}"), e))?;
        if handle.create_consumer(consumer.clone()).await.is_err() {
            handle
                .update_consumer(consumer)
                .await
                .map_err(|e| topo(format!("consumer {stream}/{name}"), e))?;
        }
    }
    let calls = js
        .create_or_update_key_value(calls_kv(cfg))
        .await
        .map_err(|e| topo("kv calls", e))?;
    let leases = js
        .create_or_update_key_value(leases_kv(cfg))
        .await
        .map_err(|e| topo("kv call_leases", e))?;
    let campaigns = js
        .create_or_update_key_value(campaigns_kv(cfg))
        .await
        .map_err(|e| topo("kv campaigns", e))?;
    let numbers = js
        .create_or_update_key_value(numbers_kv(cfg))
        .await
        .map_err(|e| topo("kv number_locks", e))?;
    let dnc = js
        .create_or_update_key_value(dnc_kv(cfg))
        .await
        .map_err(|e| topo("kv dnc", e))?;
    let livekit_rooms = js
        .create_or_update_key_value(livekit_rooms_kv(cfg))
        .await
        .map_err(|e| topo("kv livekit_rooms", e))?;
    let recordings = match js.create_object_store(recordings_store(cfg)).await {
        Ok(store) => store,
        Err(_) => {
            js.update_stream(recordings_stream(cfg))
                .await
                .map_err(|e| topo("object store recordings", e))?;
            js.get_object_store(s::RECORDINGS_BUCKET)
                .await
                .map_err(|e| topo("object store recordings", e))?
        }
    };
    Ok(Buckets {
        recordings,
        calls,
        leases,
        campaigns,
        numbers,
        dnc,
        livekit_rooms,
    })
}

/// The definitions as the `nats` CLI reads them, keyed by their path under `nats/`.
pub fn export(cfg: &Config) -> Vec<(String, Value)> {
    fn json<T: serde::Serialize>(v: &T) -> Value {
        serde_json::to_value(v).unwrap_or(Value::Null)
    }
    let kv_as_stream = |kv: kv::Config| {
        serde_json::json!({
            "bucket": kv.bucket,
            "description": kv.description,
            "history": kv.history,
            "max_age_secs": kv.max_age.as_secs(),
            "storage": json(&kv.storage),
            "replicas": kv.num_replicas,
        })
    };
    let consumer = |stream: &str, c: consumer::pull::Config| {
        let mut v = json(&c);
        if let Value::Object(m) = &mut v {
            m.insert("stream_name".into(), stream.into());
        }
        v
    };
    vec![
        ("streams/CALL_JOBS.json".into(), json(&jobs_stream(cfg))),
        ("streams/CALL_EVENTS.json".into(), json(&events_stream(cfg))),
        ("streams/CALL_DLQ.json".into(), json(&dlq_stream(cfg))),
        ("streams/WEBHOOKS.json".into(), json(&webhooks_stream(cfg))),
        (
            "streams/CAMPAIGN_CONTACTS.json".into(),
            json(&contacts_stream(cfg)),
        ),
        (
            "streams/CAMPAIGN_TALLY.json".into(),
            json(&tally_stream(cfg)),
        ),
        (
            "streams/LIVEKIT_EVENTS.json".into(),
            json(&livekit_events_stream(cfg)),
        ),
        (
            "consumers/CALL_JOBS.agents.json".into(),
            consumer(s::JOBS_STREAM, agent_consumer(cfg)),
        ),
        (
            "consumers/CALL_EVENTS.notifier.json".into(),
            consumer(s::EVENTS_STREAM, notifier_consumer(cfg)),
        ),
        (
            "consumers/WEBHOOKS.notifier-deliveries.json".into(),
            consumer(s::WEBHOOKS_STREAM, delivery_consumer(cfg)),
        ),
        (
            "consumers/LIVEKIT_EVENTS.livekit-events.json".into(),
            consumer(s::LIVEKIT_EVENTS_STREAM, livekit_events_consumer()),
        ),
        (
            "consumers/CALL_JOBS.dispatcher-overflow.json".into(),
            consumer(s::JOBS_STREAM, overflow_consumer()),
        ),
        ("kv/calls.json".into(), kv_as_stream(calls_kv(cfg))),
        ("kv/call_leases.json".into(), kv_as_stream(leases_kv(cfg))),
        ("kv/campaigns.json".into(), kv_as_stream(campaigns_kv(cfg))),
        ("kv/number_locks.json".into(), kv_as_stream(numbers_kv(cfg))),
        ("kv/dnc.json".into(), kv_as_stream(dnc_kv(cfg))),
        (
            "kv/livekit_rooms.json".into(),
            kv_as_stream(livekit_rooms_kv(cfg)),
        ),
        (
            "object_stores/recordings.json".into(),
            serde_json::json!({
                "bucket": s::RECORDINGS_BUCKET,
                "description": recordings_store(cfg).description,
                "max_age_secs": recordings_store(cfg).max_age.as_secs(),
                "storage": json(&StorageType::File),
                "replicas": recordings_store(cfg).num_replicas,
                "stream": json(&recordings_stream(cfg)),
            }),
        ),
        (
            "consumers/CALL_JOBS.campaign-EXAMPLE.json".into(),
            consumer(s::JOBS_STREAM, campaign_consumer(cfg, "EXAMPLE", 5)),
        ),
        (
            "consumers/CAMPAIGN_CONTACTS.feeder-EXAMPLE.json".into(),
            consumer(s::CONTACTS_STREAM, feeder_consumer("EXAMPLE")),
        ),
        (
            "consumers/CAMPAIGN_CONTACTS.waiting-EXAMPLE.json".into(),
            consumer(s::CONTACTS_STREAM, waiting_consumer("EXAMPLE")),
        ),
    ]
}
