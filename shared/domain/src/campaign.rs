//! Campaigns: many contacts dialed under one set of defaults, paced, inside calling windows.
//!
//! [`CampaignSpec::validate`] checks a campaign's settings field by field; [`contact_request`]
//! turns one contact (a JSON object or a CSV row) into a validated [`CallRequest`] by merging it
//! over the campaign's defaults and running the same validation as `POST /dispatch`.

use std::collections::HashSet;

use jiff::{Timestamp, civil, tz::TimeZone};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    CallRequest, FieldError,
    request::{self, ValidateOptions},
    retry::RetryOverride,
    subjects,
};

/// The slowest pace a campaign may have: one dial every 1000 s. (Any positive number used to be
/// accepted, and a pace of 1e-20 overflowed the campaigner's gap between dials.)
pub const MIN_CALLS_PER_SECOND: f64 = 0.001;

/// Days and local hours when a campaign may dial. Times are `HH:MM` or `HH:MM:SS`, end exclusive; a window
/// whose end is not after its start is invalid (split overnight windows in two campaigns).
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema,
)]

pub struct CallingWindow {
    /// `mon` … `sun`; empty means every day.
    #[serde(default)]
    pub days: Vec<String>,
    pub start: String,
    pub end: String,
}

impl CallingWindow {
    fn parse_time(t: &str) -> Option<civil::Time> {
        civil::Time::strptime("%H:%M:%S", t)
            .or_else(|_| civil::Time::strptime("%H:%M", t))
            .ok()
    }

    fn day_allowed(&self, day: civil::Weekday) -> bool {
        let name = match day {
            civil::Weekday::Monday => "mon",
            civil::Weekday::Tuesday => "tue",
            civil::Weekday::Wednesday => "wed",
            civil::Weekday::Thursday => "thu",
            civil::Weekday::Friday => "fri",
            civil::Weekday::Saturday => "sat",
            civil::Weekday::Sunday => "sun",
        };
        self.days.is_empty() || self.days.iter().any(|d| d.eq_ignore_ascii_case(name))
    }

    fn check(&self, field: &str, errors: &mut Vec<FieldError>) {
        let (start, end) = (Self::parse_time(&self.start), Self::parse_time(&self.end));
        if start.is_none() {
            errors.push(FieldError::new(
                format!("{field}.start"),
                "must be HH:MM or HH:MM:SS (24 h)",
            ));
        }
        if end.is_none() {
            errors.push(FieldError::new(
                format!("{field}.end"),
                "must be HH:MM or HH:MM:SS (24 h)",
            ));
        }
        if let (Some(s), Some(e)) = (start, end)
            && e <= s
        {
            errors.push(FieldError::new(
                format!("{field}.end"),
                "must be after start",
            ));
        }
        const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        for d in &self.days {
            if !DAYS.iter().any(|x| x.eq_ignore_ascii_case(d)) {
                errors.push(FieldError::new(
                    format!("{field}.days"),
                    format!("{d:?} is not one of mon, tue, wed, thu, fri, sat, sun"),
                ));
            }
        }
    }

    /// `None` when the window is open at `now` in `tz`, else when it next opens (within two
    /// weeks; `None` also if it never does, which validation rules out).
    pub fn next_open(&self, tz: &TimeZone, now: Timestamp) -> Option<Timestamp> {
        let (start, end) = (Self::parse_time(&self.start)?, Self::parse_time(&self.end)?);
        let local = now.to_zoned(tz.clone());
        let today = local.date();
        if self.day_allowed(today.weekday()) && local.time() >= start && local.time() < end {
            return None;
        }
        for offset in 0..15 {
            let day = today.checked_add(jiff::Span::new().days(offset)).ok()?;
            if !self.day_allowed(day.weekday()) {
                continue;
            }
            let open = day
                .to_datetime(start)
                .to_zoned(tz.clone())
                .ok()?
                .timestamp();
            if open > now {
                return Some(open);
            }
        }
        None
    }
}

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

/// One contact, ready to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub request: CallRequest,
    pub timezone: Option<String>,
}

/// A rejected contact: where it was and why.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema,
)]
pub struct RowError {
    /// 1-based: the CSV line (the header is line 1), or the index in `contacts` plus one.
    pub line: u64,
    pub reason: String,
}

/// Substitute `{{name}}` placeholders with the contact's variables.
fn fill(template: &str, vars: &Map<String, Value>) -> String {
    let mut out = template.to_owned();
    for (k, v) in vars {
        let value = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        out = out.replace(&format!("{{{{{k}}}}}"), &value);
    }
    out
}

/// Merge a contact over the campaign's defaults and validate it like a dispatch request.
/// `contact` keys: `destination` (required), `timezone`, `variables`, `metadata`, and any
/// default to override (`account_code`, `caller_number`, …). `index` numbers the call id.
pub fn contact_request(
    spec: &CampaignSpec,
    contact: &Map<String, Value>,
    index: u64,
    default_country_code: Option<&str>,
) -> Result<Contact, String> {
    let mut payload = spec.defaults.clone();
    let variables = match contact.get("variables") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(v)) => v.clone(),
        Some(_) => return Err("variables: must be an object".into()),
    };
    for (k, v) in contact {
        if matches!(k.as_str(), "variables" | "timezone" | "metadata") {
            continue;
        }
        payload.insert(k.clone(), v.clone());
    }
    let mut metadata = match spec.defaults.get("metadata") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    if let Some(Value::Object(m)) = contact.get("metadata") {
        metadata.extend(m.clone());
    }
    metadata.extend(variables.clone());
    payload.insert("metadata".into(), Value::Object(metadata));
    if let Some(Value::Object(opts)) = payload.get_mut("session_options") {
        for key in ["prompt", "greeting"] {
            if let Some(Value::String(t)) = opts.get(key) {
                let filled = fill(t, &variables);
                opts.insert(key.into(), Value::String(filled));
            }
        }
    }
    payload.insert("campaign".into(), Value::String(spec.id.clone()));
    payload.insert(
        "call_id".into(),
        Value::String(format!("{}-{index}", spec.id)),
    );
    if let Some(retry) = &spec.retry {
        payload.insert(
            "retry".into(),
            serde_json::to_value(retry).unwrap_or(Value::Null),
        );
    }
    let timezone = match contact.get("timezone") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if t.trim().is_empty() => None,
        Some(Value::String(t)) if TimeZone::get(t.trim()).is_ok() => Some(t.trim().to_owned()),
        Some(t) => return Err(format!("timezone: {t} is not an IANA time zone")),
    };
    let opts = ValidateOptions {
        default_country_code: default_country_code.map(str::to_owned),
        fallback_call_id: None,
    };
    request::validate(&Value::Object(payload), &opts)
        .map(|request| Contact { request, timezone })
        .map_err(|errors| request::describe(&errors))
}

/// Parsed contacts: accepted ones, rejected rows, and duplicates collapsed.
#[derive(Debug, Default)]
pub struct Parsed {
    pub contacts: Vec<(u64, Map<String, Value>)>,
    pub rejected: Vec<RowError>,
}

/// Parse a CSV upload: a header row naming `destination` (required) and optionally
/// `timezone`, `account_code`, `caller_number`, `caller_id`, `caller_name`, `transfer_target`;
/// every other column becomes a variable. Rows that cannot be read are rejected with their line.
pub fn parse_csv(data: &[u8]) -> Result<Parsed, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data);
    let headers = reader
        .headers()
        .map_err(|e| format!("cannot read the header row: {e}"))?
        .clone();
    if !headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("destination"))
    {
        return Err("the header row must name a `destination` column".into());
    }
    const FIELDS: [&str; 7] = [
        "destination",
        "timezone",
        "account_code",
        "caller_number",
        "caller_id",
        "caller_name",
        "transfer_target",
    ];
    let mut parsed = Parsed::default();
    for (i, record) in reader.records().enumerate() {
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(i as u64 + 2, |p| p.line());
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                parsed.rejected.push(RowError {
                    line,
                    reason: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        if record.len() != headers.len() {
            parsed.rejected.push(RowError {
                line,
                reason: format!(
                    "has {} fields, the header has {}",
                    record.len(),
                    headers.len()
                ),
            });
            continue;
        }
        let mut contact = Map::new();
        let mut variables = Map::new();
        for (h, v) in headers.iter().zip(record.iter()) {
            let key = h.to_ascii_lowercase();
            if FIELDS.contains(&key.as_str()) {
                if !v.is_empty() {
                    contact.insert(key, Value::String(v.to_owned()));
                }
            } else if !h.is_empty() {
                variables.insert(h.to_owned(), Value::String(v.to_owned()));
            }
        }
        if !variables.is_empty() {
            contact.insert("variables".into(), Value::Object(variables));
        }
        parsed.contacts.push((line, contact));
    }
    Ok(parsed)
}

/// Drop contacts whose destination repeats an earlier one (by normalised number); returns the
/// duplicates as row errors.
pub fn collapse_duplicates(
    contacts: &mut Vec<(u64, Contact)>,
    seen: &mut HashSet<String>,
) -> Vec<RowError> {
    let mut dups = Vec::new();
    contacts.retain(|(line, c)| {
        let number = c.request.destination.to_string();
        if seen.insert(number.clone()) {
            true
        } else {
            dups.push(RowError {
                line: *line,
                reason: format!("duplicate of {number} earlier in the campaign; collapsed"),
            });
            false
        }
    });
    dups
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
