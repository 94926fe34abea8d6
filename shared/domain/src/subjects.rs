//! NATS subject, stream, consumer and bucket names: the one place they are spelled.
//!
//! Jobs: `calls.dispatch.<campaign>`. Scheduled jobs wait on `calls.schedule.<call_id>`.
//! Events: `calls.events.<call_id>.<kind>`. Dead letters: `calls.dlq.<call_id>`.
//! Live-call control (core request/reply): `calls.control.<call_id>`.
//! Webhook deliveries: `webhooks.deliver.<webhook_id>`, waiting on `webhooks.schedule.<webhook_id>`.
//! Verified LiveKit webhooks: `livekit.events.<event>`; unreadable ones dead-lettered on
//! `livekit.dlq.<event>`.

pub const JOBS_STREAM: &str = "CALL_JOBS";
pub const EVENTS_STREAM: &str = "CALL_EVENTS";
pub const DLQ_STREAM: &str = "CALL_DLQ";
pub const WEBHOOKS_STREAM: &str = "WEBHOOKS";
/// Verified LiveKit webhooks, as LiveKit sent them.
pub const LIVEKIT_EVENTS_STREAM: &str = "LIVEKIT_EVENTS";

pub const AGENT_CONSUMER: &str = "agents";
/// The dispatchers' consumer of due busy checks (`calls.overflow.<call_id>`).
pub const OVERFLOW_CONSUMER: &str = "dispatcher-overflow";
pub const NOTIFIER_CONSUMER: &str = "notifier";
pub const DELIVERY_CONSUMER: &str = "notifier-deliveries";
/// The dispatcher's consumer of verified LiveKit webhooks.
pub const LIVEKIT_EVENTS_CONSUMER: &str = "livekit-events";

pub const CONTACTS_STREAM: &str = "CAMPAIGN_CONTACTS";
pub const TALLY_STREAM: &str = "CAMPAIGN_TALLY";

pub const CALLS_BUCKET: &str = "calls";
pub const CAMPAIGNS_BUCKET: &str = "campaigns";
pub const NUMBERS_BUCKET: &str = "number_locks";
pub const DNC_BUCKET: &str = "dnc";
/// Object store of call recordings.
pub const RECORDINGS_BUCKET: &str = "recordings";
pub const LEASES_BUCKET: &str = "call_leases";
/// LiveKit room → call id, for rooms callfleet did not name itself (inbound dispatch rules).
pub const LIVEKIT_ROOMS_BUCKET: &str = "livekit_rooms";

pub const DISPATCH_ALL: &str = "calls.dispatch.>";
pub const CAMPAIGN_JOBS_ALL: &str = "calls.campaign.>";
pub const CONTACTS_ALL: &str = "campaigns.contacts.>";
pub const CONTACT_SCHEDULE_ALL: &str = "campaigns.schedule.>";
pub const TALLY_ALL: &str = "campaigns.tally.>";
pub const CAMPAIGN_EVENTS_ALL: &str = "campaigns.events.>";
pub const SCHEDULE_ALL: &str = "calls.schedule.>";
pub const OVERFLOW_ALL: &str = "calls.overflow.>";
pub const EVENTS_ALL: &str = "calls.events.>";
pub const DLQ_ALL: &str = "calls.dlq.>";
pub const DELIVER_ALL: &str = "webhooks.deliver.>";
pub const WEBHOOK_SCHEDULE_ALL: &str = "webhooks.schedule.>";
pub const LIVEKIT_EVENTS_ALL: &str = "livekit.events.>";
pub const LIVEKIT_DLQ_ALL: &str = "livekit.dlq.>";

/// The campaign used when a request names none.
pub const DEFAULT_CAMPAIGN: &str = "default";

/// Header carrying the attempt number on a (re)scheduled job; absent means attempt 1.
pub const ATTEMPT_HEADER: &str = "Callfleet-Attempt";
/// Header counting infrastructure retries, which do not spend attempts.
pub const INFRA_RETRIES_HEADER: &str = "Callfleet-Infra-Retries";
/// Header set by `callfleet dlq replay`: the replay's generation (the dead letter's sequence).
/// Event ids of a replayed job carry it, so they are not deduplicated against the first run's.
pub const GENERATION_HEADER: &str = "Callfleet-Generation";
/// Header carrying a campaign contact's own IANA time zone (for its calling window).
pub const TIMEZONE_HEADER: &str = "Callfleet-Timezone";
/// Header carrying the dead-letter reason.
pub const DLQ_REASON_HEADER: &str = "Callfleet-Dlq-Reason";
/// Header carrying the subject a dead-lettered message was first published on.
pub const DLQ_SUBJECT_HEADER: &str = "Callfleet-Original-Subject";
/// Header carrying the publisher's `Nats-Msg-Id` on a dead-letter copy (the copy has its own).
pub const PUBLISHER_MSG_ID_HEADER: &str = "Callfleet-Publisher-Msg-Id";
/// Header set on a dead-letter copy whose payload was cut to fit `max_payload`: the original
/// payload's size in bytes.
pub const DLQ_TRUNCATED_HEADER: &str = "Callfleet-Dlq-Truncated";

pub fn dispatch(campaign: &str) -> String {
    format!("calls.dispatch.{campaign}")
}

/// A campaign's released jobs (its consumer's `max_ack_pending` caps its live calls).
pub fn campaign_jobs(campaign: &str) -> String {
    format!("calls.campaign.{campaign}")
}

/// A campaign's contacts waiting to be released by the campaigner.
pub fn contacts(campaign: &str) -> String {
    format!("campaigns.contacts.{campaign}")
}

/// A contact waiting for its calling window or its retry.
pub fn contact_schedule(campaign: &str, call_id: &str) -> String {
    format!("campaigns.schedule.{campaign}.{call_id}")
}

/// One message per finished contact (or dial), counted per subject by the server.
pub fn tally(campaign: &str, what: &str) -> String {
    format!("campaigns.tally.{campaign}.{what}")
}

/// The tally token of the first-agent-audio histogram: one message per answered voice call on
/// `campaigns.tally.<campaign>.first_audio.<bucket>` (`latency::bucket`). Two tokens after the
/// campaign, so the outcome counts' `campaigns.tally.<campaign>.*` never includes them.
pub const TALLY_FIRST_AUDIO: &str = "first_audio";

/// The filter counting one campaign's first-audio buckets.
pub fn first_audio_tallies(campaign: &str) -> String {
    format!("campaigns.tally.{campaign}.{TALLY_FIRST_AUDIO}.*")
}

pub fn campaign_event(campaign: &str, kind: &str) -> String {
    format!("campaigns.events.{campaign}.{kind}")
}

/// The start of every campaign's consumer name on `CALL_JOBS` ([`campaign_consumer`]).
pub const CAMPAIGN_CONSUMER_PREFIX: &str = "campaign-";
/// The start of every campaign's feeder consumer name on `CAMPAIGN_CONTACTS`.
pub const FEEDER_CONSUMER_PREFIX: &str = "feeder-";
/// The start of every campaign's waiting-contacts counter on `CAMPAIGN_CONTACTS`.
pub const WAITING_CONSUMER_PREFIX: &str = "waiting-";

/// The per-campaign consumer of released jobs on `CALL_JOBS`.
pub fn campaign_consumer(campaign: &str) -> String {
    format!("{CAMPAIGN_CONSUMER_PREFIX}{campaign}")
}

/// A consumer nobody pulls: its `num_pending` counts the campaign's contacts waiting for a
/// window or a retry, without listing their subjects.
pub fn waiting_consumer(campaign: &str) -> String {
    format!("{WAITING_CONSUMER_PREFIX}{campaign}")
}

/// The campaigner's consumer of a campaign's waiting contacts.
pub fn feeder_consumer(campaign: &str) -> String {
    format!("{FEEDER_CONSUMER_PREFIX}{campaign}")
}

pub fn schedule(call_id: &str) -> String {
    format!("calls.schedule.{call_id}")
}

/// An inbound call's busy check, waiting for its `answer_by` (a scheduled message).
pub fn busy_schedule(call_id: &str) -> String {
    format!("calls.schedule.{call_id}.busy")
}

/// An inbound call's busy check, due: a dispatcher plays the busy message if no worker took it.
pub fn overflow(call_id: &str) -> String {
    format!("calls.overflow.{call_id}")
}

pub fn event(call_id: &str, kind: &str) -> String {
    format!("calls.events.{call_id}.{kind}")
}

pub fn control(call_id: &str) -> String {
    format!("calls.control.{call_id}")
}

pub fn dlq(call_id: &str) -> String {
    format!("calls.dlq.{call_id}")
}

/// A verified LiveKit webhook (`event` is its `event` field, e.g. `participant_joined`).
pub fn livekit_event(event: &str) -> String {
    format!("livekit.events.{event}")
}

/// A LiveKit webhook the dispatcher could not read, with its reason.
pub fn livekit_dlq(event: &str) -> String {
    format!("livekit.dlq.{event}")
}

pub fn deliver(webhook_id: &str) -> String {
    format!("webhooks.deliver.{webhook_id}")
}

pub fn webhook_schedule(webhook_id: &str) -> String {
    format!("webhooks.schedule.{webhook_id}")
}

/// Whether `token` can be used as one subject token (and a KV key): ASCII letters, digits,
/// `-` and `_`, 1 to 64 characters.
pub fn is_token(token: &str) -> bool {
    (1..=64).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
