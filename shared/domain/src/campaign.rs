//! Campaigns: many contacts dialed under one set of defaults, paced, inside calling windows.
//!
//! [`CampaignSpec::validate`] checks a campaign's settings field by field; [`contact_request`]
//! turns one contact (a JSON object or a CSV row) into a validated [`CallRequest`] by merging it
//! over the campaign's defaults and running the same validation as `POST /dispatch`.

mod contacts;
mod window;

use jiff::{Timestamp, tz::TimeZone};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use contacts::{Contact, Parsed, RowError, collapse_duplicates, contact_request, parse_csv};
pub use window::CallingWindow;

use crate::{FieldError, retry::RetryOverride, subjects};

/// The slowest pace a campaign may have: one dial every 1000 s. (Any positive number used to be
/// accepted, and a pace of 1e-20 overflowed the campaigner's gap between dials.)
pub const MIN_CALLS_PER_SECOND: f64 = 0.001;

/// A campaign's settings as created. Contacts travel separately.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema,
)]
pub struct CampaignSpec {
    pub id: String,
    pub name: String,
    /// Defaults merged under every contact: `account_code`, `caller_number`, `caller_id`,
    /// `caller_name`, `transfer_target`, `session_options`, `metadata`, `callback_url`.
    #[schema(value_type = Object)]
    pub defaults: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryOverride>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub start_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<CallingWindow>,
    /// IANA time zone of the window (a contact's own `timezone` wins).
    pub timezone: String,
    /// Live calls of this campaign across the whole fleet.
    pub max_concurrent_calls: u32,
    /// New dials per second across the whole fleet (retries included).
    pub calls_per_second: f64,
}

const DEFAULT_KEYS: [&str; 8] = [
    "account_code",
    "caller_number",
    "caller_id",
    "caller_name",
    "transfer_target",
    "session_options",
    "metadata",
    "callback_url",
];

impl CampaignSpec {
    /// Validate a `POST /campaigns` body (without its `contacts`).
    pub fn validate(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::trim);
        let id = match body.get("id") {
            None | Some(Value::Null) => {
                format!("cmp{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
            }
            Some(Value::String(s)) if subjects::is_token(s) && s.len() <= 40 => s.clone(),
            Some(_) => {
                errors.push(FieldError::new(
                    "id",
                    "must be 1-40 ASCII letters, digits, - or _",
                ));
                String::new()
            }
        };
        let name = match text("name") {
            Some(n) if !n.is_empty() && n.len() <= 200 => n.to_owned(),
            _ => {
                errors.push(FieldError::new("name", "is required (1-200 characters)"));
                String::new()
            }
        };
        let mut defaults = Map::new();
        for k in DEFAULT_KEYS {
            if let Some(v) = body.get(k).filter(|v| !v.is_null()) {
                defaults.insert(k.to_owned(), v.clone());
            }
        }
        if !matches!(defaults.get("account_code"), Some(Value::String(s)) if !s.trim().is_empty()) {
            errors.push(FieldError::new(
                "account_code",
                "is required: the default for every contact",
            ));
        }
        let retry = match body.get("retry") {
            None | Some(Value::Null) => None,
            Some(v) => match serde_json::from_value::<RetryOverride>(v.clone()) {
                Ok(r) => Some(r),
                Err(e) => {
                    errors.push(FieldError::new("retry", e.to_string()));
                    None
                }
            },
        };
        let start_at = match body.get("start_at") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match s.parse::<Timestamp>() {
                Ok(t) => Some(t),
                Err(_) => {
                    errors.push(FieldError::new("start_at", "must be an RFC 3339 timestamp"));
                    None
                }
            },
            Some(_) => {
                errors.push(FieldError::new("start_at", "must be an RFC 3339 timestamp"));
                None
            }
        };
        let window = match body.get("window") {
            None | Some(Value::Null) => None,
            Some(v) => match serde_json::from_value::<CallingWindow>(v.clone()) {
                Ok(w) => {
                    w.check("window", &mut errors);
                    Some(w)
                }
                Err(e) => {
                    errors.push(FieldError::new(
                        "window",
                        format!("{e}: expected {{days, start, end}}"),
                    ));
                    None
                }
            },
        };
        let timezone = text("timezone").unwrap_or("UTC").to_owned();
        if TimeZone::get(&timezone).is_err() {
            errors.push(FieldError::new(
                "timezone",
                format!("{timezone:?} is not an IANA time zone"),
            ));
        }
        let max_concurrent_calls = match body.get("max_concurrent_calls") {
            None | Some(Value::Null) => 5,
            Some(v) => match v.as_u64() {
                Some(n @ 1..=1000) => n as u32,
                _ => {
                    errors.push(FieldError::new(
                        "max_concurrent_calls",
                        "must be an integer from 1 to 1000",
                    ));
                    0
                }
            },
        };
        let calls_per_second = match body.get("calls_per_second") {
            None | Some(Value::Null) => 1.0,
            Some(v) => match v.as_f64() {
                Some(n) if (MIN_CALLS_PER_SECOND..=100.0).contains(&n) => n,
                _ => {
                    errors.push(FieldError::new(
                        "calls_per_second",
                        "must be a number from 0.001 (one dial every 1000 s) to 100",
                    ));
                    0.0
                }
            },
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            id,
            name,
            defaults,
            retry,
            start_at,
            window,
            timezone,
            max_concurrent_calls,
            calls_per_second,
        })
    }

    /// The time zone a contact's window is judged in.
    pub fn zone_for(&self, contact_tz: Option<&str>) -> TimeZone {
        contact_tz
            .and_then(|t| TimeZone::get(t).ok())
            .or_else(|| TimeZone::get(&self.timezone).ok())
            .unwrap_or(TimeZone::UTC)
    }
}

#[cfg(test)]
mod tests;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Active,
    Paused,
    Cancelled,
    Completed,
}

/// What the `campaigns` KV bucket holds per campaign.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema,
)]
pub struct CampaignRecord {
    #[serde(flatten)]
    pub spec: CampaignSpec,
    pub status: CampaignStatus,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[schema(value_type = String)]
    pub updated_at: Timestamp,
    /// Rows received so far, accepted or not: contact call ids are `<campaign>-<row number>`.
    pub rows: u64,
    /// Contacts enqueued so far.
    pub accepted: u64,
    pub rejected: u64,
    pub duplicates: u64,
    /// Skipped at enqueue: on the do-not-call list.
    pub dnc_skipped: u64,
    /// No more contacts will be uploaded: the campaign completes once every contact is done.
    pub sealed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub completed_at: Option<Timestamp>,
}
