//! Documentation-only types for the bodies handlers read by hand (to give field-level errors):
//! campaign settings, contacts, and the transfer body. Validation lives in the domain crate
//! (`CampaignSpec::validate`, `campaign::contact_request`, `normalise_transfer_target`); these
//! types only describe what it accepts.

#![expect(
    dead_code,
    reason = "documentation types: utoipa reads them, nothing constructs them"
)]

use callfleet_domain::retry::RetryOverride;
use serde_json::{Map, Value};

/// E.164, `tel:+E164`, or bare international digits (`61402012298`). The server also accepts
/// spaces, dots, dashes and parentheses between digits, a `00` prefix, and, when
/// `phone.default_country_code` is set, national numbers with a leading `0`.
pub const PHONE_PATTERN: &str = r"^(tel:)?\+?[1-9][0-9]{7,14}$";
/// A phone number as above, a `sip:`/`sips:` URI with `user@host`, or empty (none).
pub const TRANSFER_PATTERN: &str = r"^((tel:)?\+?[1-9][0-9]{7,14}|sips?:[^\s@\u0000-\u001f\u007f-\u009f]+@[^\s\u0000-\u001f\u007f-\u009f]+|\s*)$";
/// Text that ends up in SIP headers: no control characters.
pub const NO_CONTROL_PATTERN: &str = r"^[^\u0000-\u001f\u007f-\u009f]*$";
/// Required text: as above, and not blank.
pub const NOT_BLANK_PATTERN: &str = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";
/// `HH:MM` or `HH:MM:SS`, 24 h.
pub const TIME_PATTERN: &str = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$";

/// The body of `POST /calls/{id}/transfer` (optional).
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"transfer_target": "+61731071901"}))]
pub struct TransferBody {
    /// `tel:+E164`, a phone number (normalised like `destination`), or a `sip:` URI. Absent:
    /// the call's own `transfer_target`.
    #[schema(
        pattern = r"^((tel:)?\+?[1-9][0-9]{7,14}|sips?:[^\s@\u0000-\u001f\u007f-\u009f]+@[^\s\u0000-\u001f\u007f-\u009f]+)$",
        max_length = 256,
        example = "+61731071901"
    )]
    pub transfer_target: Option<String>,
}

/// A day a calling window is open.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// Days and local hours when a campaign may dial; `end` is exclusive and after `start`.
#[derive(utoipa::ToSchema)]
pub struct Window {
    /// Empty or absent: every day. Case-insensitive.
    #[schema(nullable = false)]
    pub days: Option<Vec<Weekday>>,
    #[schema(
        pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
        example = "09:00"
    )]
    pub start: String,
    #[schema(
        pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
        example = "17:00"
    )]
    pub end: String,
}

/// One contact: a `destination`, optional per-contact overrides, and any other key as a
/// variable (filled into `{{name}}` placeholders of `prompt`/`greeting`, kept in metadata).
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"destination": "+61402012298", "first_name": "Ada", "timezone": "Australia/Brisbane"}))]
pub struct Contact {
    #[schema(pattern = r"^(tel:)?\+?[1-9][0-9]{7,14}$", example = "+61402012298")]
    pub destination: String,
    /// IANA time zone of this contact's calling window.
    #[schema(max_length = 64, example = "Australia/Brisbane")]
    pub timezone: Option<String>,
    #[schema(min_length = 1, max_length = 128)]
    pub account_code: Option<String>,
    #[schema(pattern = r"^(tel:)?\+?[1-9][0-9]{7,14}$")]
    pub caller_number: Option<String>,
    #[schema(max_length = 128)]
    pub caller_id: Option<String>,
    #[schema(max_length = 128)]
    pub caller_name: Option<String>,
    #[schema(max_length = 256)]
    pub transfer_target: Option<String>,
}

/// `POST /campaigns`: settings, the defaults every contact is merged over, and optional contacts.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({
    "id": "renewals-2026",
    "name": "Renewals",
    "account_code": "em-tech-01",
    "timezone": "Australia/Brisbane",
    "window": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"},
    "max_concurrent_calls": 10,
    "calls_per_second": 2,
    "contacts": [{"destination": "+61402012298", "first_name": "Ada"}]
}))]
pub struct CampaignCreate {
    /// Generated (`cmp…`) when absent.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,40}$", example = "renewals-2026")]
    pub id: Option<String>,
    #[schema(min_length = 1, max_length = 200, example = "Renewals")]
    pub name: String,
    /// Default for every contact (the `X-Account-Code` SIP header).
    #[schema(min_length = 1, max_length = 128, example = "em-tech-01")]
    pub account_code: String,
    #[schema(pattern = r"^(tel:)?\+?[1-9][0-9]{7,14}$")]
    pub caller_number: Option<String>,
    #[schema(max_length = 128)]
    pub caller_id: Option<String>,
    #[schema(max_length = 128)]
    pub caller_name: Option<String>,
    #[schema(max_length = 256)]
    pub transfer_target: Option<String>,
    /// As in `POST /dispatch`; `prompt` and `greeting` may hold `{{variable}}` placeholders.
    #[schema(value_type = Option<Object>)]
    pub session_options: Option<Map<String, Value>>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    #[schema(format = "uri", max_length = 2048)]
    pub callback_url: Option<String>,
    /// IANA time zone of the window (a contact's own `timezone` wins). Default `UTC`.
    #[schema(max_length = 64, example = "Australia/Brisbane")]
    pub timezone: Option<String>,
    pub window: Option<Window>,
    /// RFC 3339; no dial before it.
    #[schema(format = DateTime)]
    pub start_at: Option<String>,
    /// Live calls of this campaign across the fleet. Default 5.
    #[schema(minimum = 1, maximum = 1000)]
    pub max_concurrent_calls: Option<u32>,
    /// New dials per second across the fleet (retries included), 0.001 to 100. Default 1.
    #[schema(minimum = 0.001, maximum = 100)]
    pub calls_per_second: Option<f64>,
    pub retry: Option<RetryOverride>,
    /// Contacts to enqueue now; the campaign is then sealed unless `more_contacts` is true.
    pub contacts: Option<Vec<Contact>>,
    /// More uploads follow (`POST /campaigns/{id}/contacts`). Default: true without
    /// `contacts`, false with them.
    pub more_contacts: Option<bool>,
}

/// `POST /campaigns/{id}/contacts` as JSON: an array of contacts, or `{contacts: [...]}`.
#[derive(utoipa::ToSchema)]
pub struct ContactList {
    pub contacts: Vec<Contact>,
}

/// `GET /healthz` (`status` only) and `GET /readyz`.
#[derive(utoipa::ToSchema)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    #[schema(example = "ok")]
    pub status: String,
    /// `connected` or `disconnected` (`/readyz` only).
    pub nats: Option<String>,
    /// `ok`, or why JetStream does not answer.
    pub jetstream: Option<String>,
}

/// A LiveKit `WebhookEvent` in protojson, as livekit-server POSTs it (only the fields the
/// ingress reads are listed; every other field LiveKit sends is kept as sent).
#[derive(utoipa::ToSchema)]
#[schema(example = json!({
    "event": "participant_joined",
    "id": "EV_3pXq8dJmT2aK",
    "createdAt": "1764579600",
    "room": {"sid": "RM_x4Gz", "name": "call-crm-7", "metadata": "{\"call_id\":\"crm-7\"}"},
    "participant": {"sid": "PA_9Yb2", "identity": "sip-crm-7", "kind": "SIP", "attributes": {"sip.callStatus": "active"}}
}))]
pub struct LiveKitWebhookEvent {
    /// `room_started`, `room_finished`, `participant_joined`, `participant_left`,
    /// `track_published`, `egress_ended`, …; becomes the subject's last token.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$", example = "participant_joined")]
    pub event: String,
    /// LiveKit's event id: the `Nats-Msg-Id`.
    #[schema(min_length = 1, max_length = 128, example = "EV_3pXq8dJmT2aK")]
    pub id: String,
    /// Unix seconds (protojson writes 64-bit integers as strings).
    #[schema(rename = "createdAt", value_type = String, example = "1764579600")]
    pub created_at: String,
    #[schema(value_type = Option<Object>)]
    pub room: Option<Map<String, Value>>,
    #[schema(value_type = Option<Object>)]
    pub participant: Option<Map<String, Value>>,
}
