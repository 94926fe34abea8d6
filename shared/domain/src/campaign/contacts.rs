//! Contacts: one JSON object or CSV row merged over the campaign's defaults into a validated
//! [`CallRequest`]; CSV parsing and duplicate collapsing.

use std::collections::HashSet;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::CampaignSpec;
use crate::{
    CallRequest,
    request::{self, ValidateOptions},
};

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
