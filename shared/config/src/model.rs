//! The configuration model. Every key is documented in `config/default.toml`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::lenient;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub nats: NatsConfig,
    pub livekit: LiveKitConfig,
    pub sip: SipConfig,
    pub phone: PhoneConfig,
    pub ingress: IngressConfig,
    pub agent: AgentConfig,
    pub retry: RetryConfig,
    pub notifier: NotifierConfig,
    pub campaigner: CampaignerConfig,
    pub dispatcher: DispatcherConfig,
    pub recording: RecordingConfig,
    pub answering: AnsweringConfig,
    pub inbound: InboundConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    #[serde(deserialize_with = "lenient::string")]
    pub url: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub creds_file: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub nkey_seed_file: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub token: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub tls_ca_file: Option<String>,
    pub require_tls: bool,
    /// Stream replicas: 1 for one server, 3 for a cluster.
    pub replicas: usize,
    /// How long JetStream remembers a `Nats-Msg-Id` for deduplication.
    pub duplicate_window_secs: u64,
    /// How long to wait for a publish acknowledgement before answering 503.
    pub publish_timeout_ms: u64,
    /// How often the client pings its server; after two unanswered pings it takes the link
    /// for dead and reconnects (to another node of a cluster).
    pub ping_interval_secs: u64,
    /// How long one connection attempt (TCP, TLS, the server's INFO) may take before the
    /// client tries another server.
    pub connect_timeout_ms: u64,
    /// How long call events are kept.
    pub events_max_age_hours: u64,
    /// How long verified LiveKit webhooks are kept (`LIVEKIT_EVENTS`).
    pub livekit_events_max_age_hours: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LiveKitConfig {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub api_key: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub api_secret: Option<String>,
    pub request_timeout_secs: u64,
    /// Room settings for call rooms.
    pub room_empty_timeout_secs: u32,
    pub room_departure_timeout_secs: u32,
    /// Egress file path template for recordings (`{room}`, `{call_id}` are replaced).
    pub recording_filepath: String,
    /// The agent name callfleet registers with LiveKit's dispatch (`lk dispatch create
    /// --agent-name`, CreateAgentDispatch, a dispatch rule's `room_config.agents`).
    #[serde(deserialize_with = "lenient::string")]
    pub agent_name: String,
    /// `POST /livekit/webhook` ignores events LiveKit created longer ago than this.
    pub webhook_max_age_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub trunk_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub from_number: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub from_identity: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub display_name: Option<String>,
    /// Ring time before giving up; at most 75 s (livekit-server allows 80 s with wait_until_answered).
    pub ringing_timeout_secs: u64,
    /// How long a transfer's target may ring (REFER, then the target answering); at most 75 s.
    /// Its own setting: a dial's ring time is not a transfer's.
    pub transfer_timeout_secs: u64,
    /// SIP header carrying the account code.
    pub account_code_header: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneConfig {
    /// Country calling code completing national numbers with a leading 0 (e.g. "61").
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub default_country_code: Option<String>,
    /// Mask phone numbers in logs.
    pub mask_in_logs: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IngressConfig {
    #[serde(deserialize_with = "lenient::string")]
    pub bind: String,
    /// Bearer API keys; empty disables auth (a warning is logged).
    #[serde(default, deserialize_with = "lenient::list")]
    pub api_keys: Vec<String>,
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    /// Largest campaign-contacts or do-not-call upload.
    pub upload_limit_bytes: usize,
    /// Uploads taking longer are answered 503.
    pub upload_timeout_secs: u64,
    /// Base URL used for `status_url` in answers; derived from `bind` when empty.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub public_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Agent name echoed in answers and summaries (the seed's `agent_name`).
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Call slots per worker; the worker never pulls more jobs than free slots.
    pub max_concurrent_calls: usize,
    /// Hard cap on an answered call; the worker hangs up when it is reached.
    pub max_call_duration_secs: u64,
    /// On SIGTERM, live calls get this long to finish before they are ended.
    pub drain_grace_secs: u64,
    /// Consumer ack_wait; in-progress acks go out every ack_wait/3.
    pub ack_wait_secs: u64,
    /// Lease TTL in the `call_leases` bucket; renewed every lease_ttl/3.
    pub lease_ttl_secs: u64,
    /// How often a held call checks that the callee is still in the room.
    pub hold_poll_ms: u64,
    /// Run the voice session (STT → LLM → TTS) on answered calls (the default). Off: the call
    /// is held silently until the callee hangs up, an operator hangs up, or max_call_duration.
    pub voice_session: bool,
    /// Gather only loopback ICE candidates when joining rooms (LiveKit on this machine).
    pub media_loopback: bool,
    /// The voice session's speech detector: `silero`, `webrtc` or `energy`.
    pub vad: VadKind,
    /// Silero's ONNX model; empty: `.tools/models/silero_vad.onnx` of the checkout the binary was
    /// built in (where `make setup` puts it).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub vad_model: Option<String>,
    /// A message delivered this many times is dead-lettered (poison or crash loop).
    pub max_deliveries: i64,
    /// Worker id; a random one is generated when empty.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub worker_id: Option<String>,
    /// Where `/healthz`, `/readyz` and `/metrics` listen (`host:port`).
    #[serde(deserialize_with = "lenient::string")]
    pub metrics_listen: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Total dial attempts per call, first included.
    pub max_attempts: u32,
    pub busy_delay_secs: u64,
    pub unavailable_delay_secs: u64,
    pub no_answer_delay_secs: u64,
    pub carrier_throttled_delay_secs: u64,
    /// Infrastructure errors (LiveKit unreachable) retry without spending an attempt,
    /// this many times, with exponential backoff from `infra_delay_secs`.
    pub max_infra_retries: u32,
    pub infra_delay_secs: u64,
    /// A voicemail (hung up without a message, or with `retry: true`) is called again after
    /// this long, inside its campaign's window; it spends an attempt.
    pub voicemail_delay_secs: u64,
}

/// The speech detector under barge-in, endpointing and answering-machine detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VadKind {
    Silero,
    Webrtc,
    Energy,
}

/// Answering-machine detection on outbound voice calls, and the fleet's default policy per
/// class. A request's (or its campaign's) `session_options` override the policy.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnsweringConfig {
    pub enabled: bool,
    /// The agent's greeting is never held longer than this after the answer.
    pub budget_ms: u64,
    /// How long a voicemail decision may wait for its beep before giving up.
    pub max_wait_secs: u64,
    /// No speech for this long: `silence`.
    pub silence_secs: u64,
    pub voicemail: callfleet_domain::answering::VoicemailPolicy,
    pub call_screening: callfleet_domain::answering::ClassPolicy,
    pub ivr: callfleet_domain::answering::ClassPolicy,
}

/// Calls LiveKit brings in: inbound SIP callers, and sessions LiveKit's dispatch sends to
/// `livekit.agent_name` (the `callfleet dispatcher` role).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InboundConfig {
    /// A caller whom no worker has taken this long after LiveKit offered the call hears
    /// `busy_message` and the call is ended.
    pub max_wait_secs: u64,
    /// Spoken by the TTS to a caller no worker could take.
    #[serde(deserialize_with = "lenient::string")]
    pub busy_message: String,
    /// The `campaign` label (a subject token) of inbound calls and LiveKit dispatches whose
    /// metadata names none.
    #[serde(deserialize_with = "lenient::string")]
    pub campaign: String,
    /// Start an inbound session when a verified LiveKit webhook reports a SIP participant
    /// joining a room no agent was dispatched to (seed 003's telephony mode).
    pub sessions_from_webhooks: bool,
    /// Session options per called number (E.164), e.g.
    /// `[inbound.numbers."+3226010500"] prompt = "..."`; the dispatch's metadata overrides them.
    #[serde(default)]
    pub numbers: std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    /// Session options for a called number not in `numbers`.
    #[serde(default)]
    pub default: serde_json::Map<String, serde_json::Value>,
}

impl InboundConfig {
    pub fn max_wait(&self) -> Duration {
        Duration::from_secs(self.max_wait_secs)
    }

    /// The session options configured for a called number: `default`, with the number's own
    /// over it key by key (a number is matched on its digits: `+3226010500` = `3226010500`).
    pub fn options_for(&self, called: Option<&str>) -> serde_json::Map<String, serde_json::Value> {
        let digits = |n: &str| n.chars().filter(char::is_ascii_digit).collect::<String>();
        let own = called.and_then(|n| {
            self.numbers.get(n).or_else(|| {
                self.numbers
                    .iter()
                    .find_map(|(k, v)| (digits(k) == digits(n)).then_some(v))
            })
        });
        let mut options = self.default.clone();
        if let Some(own) = own {
            options.extend(own.clone());
        }
        options
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierConfig {
    /// Where every call summary goes (the seed's `N8N_WEBHOOK_URL`).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub webhook_url: Option<String>,
    /// Standard Webhooks secret, `whsec_<base64>`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub webhook_secret: Option<String>,
    /// Extra static header sent with every webhook, `Name: value` (header-token auth for n8n).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub auth_header: Option<String>,
    pub timeout_secs: u64,
    /// Delays between attempts, in seconds: the first is the initial attempt.
    pub schedule_secs: Vec<u64>,
    /// Random jitter added to each delay, as a fraction of it.
    pub jitter: f64,
    /// Longest `Retry-After` honoured, in seconds.
    pub max_retry_after_secs: u64,
    /// Deliveries in flight per notifier.
    pub concurrency: usize,
    /// Also send the non-final events (queued, dialing, answered, ...).
    pub include_progress_events: bool,
    /// Where `/healthz`, `/readyz` and `/metrics` listen (`host:port`).
    #[serde(deserialize_with = "lenient::string")]
    pub metrics_listen: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DispatcherConfig {
    /// Where `/healthz`, `/readyz` (ready: registered with LiveKit, NATS connected) and
    /// `/metrics` listen (`host:port`).
    #[serde(deserialize_with = "lenient::string")]
    pub metrics_listen: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignerConfig {
    /// Where `/healthz`, `/readyz` and `/metrics` listen (`host:port`).
    #[serde(deserialize_with = "lenient::string")]
    pub metrics_listen: String,
}

/// Where `record_call` recordings go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingBackend {
    /// The worker records the call's audio itself into the NATS object store.
    Nats,
    /// A LiveKit Egress service records the room (needs the Egress service running).
    Egress,
}

impl RecordingBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nats => "nats",
            Self::Egress => "egress",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingConfig {
    pub backend: RecordingBackend,
    /// How long recordings are kept in the `recordings` object store.
    pub max_age_hours: u64,
    /// Replicas of the `recordings` object store: 1 for one server, 3 for a cluster.
    pub replicas: usize,
    /// Seconds of audio per stored segment: at most this much is lost if the worker dies.
    pub segment_secs: u64,
    /// Opus bitrate per channel, bits per second.
    pub bitrate_bps: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(deserialize_with = "lenient::string")]
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl AgentConfig {
    pub fn ack_wait(&self) -> Duration {
        Duration::from_secs(self.ack_wait_secs)
    }
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.lease_ttl_secs)
    }
}

impl LiveKitConfig {
    /// URL, key and secret, when all three are set.
    pub fn credentials(&self) -> Option<(&str, &str, &str)> {
        Some((
            self.url.as_deref()?,
            self.api_key.as_deref()?,
            self.api_secret.as_deref()?,
        ))
    }
}
