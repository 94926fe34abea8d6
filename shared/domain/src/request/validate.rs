//! [`validate`]: any JSON value in, a [`CallRequest`] or every [`FieldError`] out.

use jiff::Timestamp;
use serde_json::{Map, Value};
use url::Url;

use super::{CallRequest, FieldError, SESSION_KEYS, SessionOptions, TtsOption};
use crate::{
    answering::{AnswerAction, ClassPolicy, VoicemailPolicy},
    boolish,
    phone::PhoneNumber,
    retry::RetryOverride,
    subjects,
};

const KNOWN_KEYS: &[&str] = &[
    "call_id",
    "destination",
    "account_code",
    "transfer_target",
    "caller_id",
    "caller_number",
    "caller_name",
    "session_options",
    "metadata",
    "campaign",
    "callback_url",
    "not_before",
    "retry",
    "room",
];

const MAX_TEXT: usize = 128;
const MAX_MODEL: usize = 200;
const MAX_PROMPT: usize = 32 * 1024;
const MAX_METADATA_BYTES: usize = 16 * 1024;
/// A voicemail message: about a minute of speech.
const MAX_MESSAGE: usize = 1000;
const MAX_DTMF: usize = 32;

/// What [`validate`] needs besides the body.
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Country calling code (digits) completing national numbers that start with `0`.
    pub default_country_code: Option<String>,
    /// Call id to use when the body carries none (derived from an idempotency key).
    pub fallback_call_id: Option<String>,
}

/// Validate a dispatch payload. Returns every field problem at once.
pub fn validate(body: &Value, opts: &ValidateOptions) -> Result<CallRequest, Vec<FieldError>> {
    let Some(obj) = body.as_object() else {
        return Err(vec![FieldError::new(
            "(body)",
            format!("must be a JSON object, got {}", kind(body)),
        )]);
    };
    let mut v = Validator {
        errors: Vec::new(),
        opts,
    };

    let call_id = match obj.get("call_id") {
        None | Some(Value::Null) => opts.fallback_call_id.clone(),
        Some(value) => v.token("call_id", value),
    };
    let destination = v.required_phone(obj, "destination");
    let account_code = v.required_text(obj, "account_code");
    let transfer_target = obj
        .get("transfer_target")
        .filter(|x| !x.is_null())
        .and_then(|x| v.transfer(x));
    let caller_id = v.optional_text(obj, "caller_id", MAX_TEXT);
    let caller_number = obj
        .get("caller_number")
        .filter(|x| !is_blank(x))
        .and_then(|x| v.phone("caller_number", x));
    let caller_name = v.optional_text(obj, "caller_name", MAX_TEXT);
    let session_options = v.session_options(obj);
    let campaign = match obj.get("campaign") {
        None | Some(Value::Null) => Some(subjects::DEFAULT_CAMPAIGN.to_owned()),
        Some(value) => v.token("campaign", value),
    };
    let callback_url = obj
        .get("callback_url")
        .filter(|x| !x.is_null())
        .and_then(|x| v.url("callback_url", x));
    let not_before = obj
        .get("not_before")
        .filter(|x| !x.is_null())
        .and_then(|x| v.timestamp("not_before", x));
    let retry = obj
        .get("retry")
        .filter(|x| !x.is_null())
        .and_then(|x| v.retry(x));
    let room = match obj.get("room") {
        None | Some(Value::Null) => None,
        Some(value) => v.room(value),
    };
    let mut metadata = match obj.get("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            v.err(
                "metadata",
                format!("must be an object, got {}", kind(other)),
            );
            Map::new()
        }
    };
    // Unknown top-level keys are kept in metadata, never dropped silently.
    for (key, value) in obj {
        if !KNOWN_KEYS.contains(&key.as_str()) && !SESSION_KEYS.contains(&key.as_str()) {
            metadata.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    if serde_json::to_vec(&metadata)
        .map(|b| b.len())
        .unwrap_or(usize::MAX)
        > MAX_METADATA_BYTES
    {
        v.err(
            "metadata",
            format!("is larger than {MAX_METADATA_BYTES} bytes once serialised"),
        );
    }
    if call_id.is_none() && v.errors.is_empty() && !obj.contains_key("call_id") {
        v.err(
            "call_id",
            "is missing and no Idempotency-Key was given to derive it from",
        );
    }

    if !v.errors.is_empty() {
        return Err(v.errors);
    }
    let (Some(call_id), Some(destination), Some(account_code), Some(campaign)) =
        (call_id, destination, account_code, campaign)
    else {
        return Err(vec![FieldError::new("(body)", "incomplete request")]);
    };
    // The call fields travel in metadata too, as the bridge did.
    let mut merged = Map::new();
    merged.insert("destination".into(), destination.as_str().into());
    merged.insert("account_code".into(), account_code.clone().into());
    for (key, value) in [
        ("transfer_target", transfer_target.clone()),
        ("caller_id", caller_id.clone()),
        (
            "caller_number",
            caller_number.as_ref().map(|p| p.as_str().to_owned()),
        ),
        ("caller_name", caller_name.clone()),
    ] {
        if let Some(value) = value {
            merged.insert(key.into(), value.into());
        }
    }
    for (key, value) in metadata {
        merged.entry(key).or_insert(value);
    }
    let room = room.unwrap_or_else(|| format!("call-{call_id}"));
    Ok(CallRequest {
        call_id,
        destination,
        account_code,
        transfer_target,
        caller_id,
        caller_number,
        caller_name,
        session_options,
        metadata: merged,
        campaign,
        callback_url,
        not_before,
        retry,
        room,
        direction: Default::default(),
        inbound: None,
    })
}

/// Session options alone (the keys at the top level or under `session_options`), validated as
/// in [`validate`]: an inbound call's options come from config and the dispatch's metadata.
pub fn session_options_of(obj: &Map<String, Value>) -> Result<SessionOptions, Vec<FieldError>> {
    let opts = ValidateOptions::default();
    let mut v = Validator {
        errors: Vec::new(),
        opts: &opts,
    };
    let out = v.session_options(obj);
    if v.errors.is_empty() {
        Ok(out)
    } else {
        Err(v.errors)
    }
}

/// Normalise a transfer target to `tel:+E164`, or keep a `sip:`/`sips:` URI.
pub fn normalise_transfer_target(
    raw: &str,
    default_country_code: Option<&str>,
) -> Result<String, String> {
    let raw = raw.trim();
    if raw.starts_with("sip:") || raw.starts_with("sips:") {
        if raw.len() > 5 && raw.contains('@') && !raw.chars().any(|c| c.is_control() || c == ' ') {
            return Ok(raw.to_owned());
        }
        return Err("is a SIP URI without user@host".into());
    }
    PhoneNumber::parse(raw, default_country_code)
        .map(|p| format!("tel:{p}"))
        .map_err(|e| e.to_string())
}

struct Validator<'a> {
    errors: Vec<FieldError>,
    opts: &'a ValidateOptions,
}

impl Validator<'_> {
    fn err(&mut self, field: &str, problem: impl Into<String>) {
        self.errors.push(FieldError::new(field, problem));
    }

    fn required_text(&mut self, obj: &Map<String, Value>, field: &str) -> Option<String> {
        match obj.get(field) {
            None | Some(Value::Null) => {
                self.err(field, "is required");
                None
            }
            Some(value) => {
                let text = self.text(field, value, MAX_TEXT)?;
                if text.is_empty() {
                    self.err(field, "must not be empty");
                    return None;
                }
                Some(text)
            }
        }
    }

    fn optional_text(
        &mut self,
        obj: &Map<String, Value>,
        field: &str,
        max: usize,
    ) -> Option<String> {
        match obj.get(field) {
            None | Some(Value::Null) => None,
            Some(value) => self.text(field, value, max).filter(|s| !s.is_empty()),
        }
    }

    /// A string without control characters (values end up in SIP headers).
    fn text(&mut self, field: &str, value: &Value, max: usize) -> Option<String> {
        let text = match value {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            other => {
                self.err(field, format!("must be a string, got {}", kind(other)));
                return None;
            }
        };
        if text.chars().count() > max {
            self.err(field, format!("is longer than {max} characters"));
            return None;
        }
        if max <= MAX_MODEL && text.chars().any(char::is_control) {
            self.err(
                field,
                "must not contain control characters (CR, LF, tab, ...)",
            );
            return None;
        }
        Some(text)
    }

    fn room(&mut self, value: &Value) -> Option<String> {
        let text = self.text("room", value, 256)?;
        if !crate::inbound::is_room_name(&text) {
            self.err(
                "room",
                "must be 1 to 256 characters without control characters",
            );
            return None;
        }
        Some(text)
    }

    fn token(&mut self, field: &str, value: &Value) -> Option<String> {
        let text = self.text(field, value, 64)?;
        if !subjects::is_token(&text) {
            self.err(field, "must be 1 to 64 ASCII letters, digits, '-' or '_'");
            return None;
        }
        Some(text)
    }

    fn required_phone(&mut self, obj: &Map<String, Value>, field: &str) -> Option<PhoneNumber> {
        match obj.get(field) {
            None | Some(Value::Null) => {
                self.err(field, "is required");
                None
            }
            Some(value) => self.phone(field, value),
        }
    }

    fn phone(&mut self, field: &str, value: &Value) -> Option<PhoneNumber> {
        let raw = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                self.err(
                    field,
                    format!("must be a phone number string, got {}", kind(other)),
                );
                return None;
            }
        };
        match PhoneNumber::parse(&raw, self.opts.default_country_code.as_deref()) {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(field, format!("is not a valid phone number: {e}"));
                None
            }
        }
    }

    fn transfer(&mut self, value: &Value) -> Option<String> {
        let raw = self.text("transfer_target", value, 256)?;
        if raw.is_empty() {
            return None;
        }
        match normalise_transfer_target(&raw, self.opts.default_country_code.as_deref()) {
            Ok(t) => Some(t),
            Err(e) => {
                self.err(
                    "transfer_target",
                    format!("is neither a phone number nor a SIP URI: {e}"),
                );
                None
            }
        }
    }

    fn url(&mut self, field: &str, value: &Value) -> Option<Url> {
        let raw = self.text(field, value, 2048)?;
        match Url::parse(&raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
            Ok(_) => {
                self.err(field, "must be an http or https URL with a host");
                None
            }
            Err(e) => {
                self.err(field, format!("is not a URL: {e}"));
                None
            }
        }
    }

    fn timestamp(&mut self, field: &str, value: &Value) -> Option<Timestamp> {
        let raw = self.text(field, value, 64)?;
        match raw.parse::<Timestamp>() {
            Ok(t) => Some(t),
            Err(_) => {
                self.err(
                    field,
                    "must be an RFC 3339 timestamp with an offset, e.g. 2026-11-21T09:00:00Z",
                );
                None
            }
        }
    }

    fn retry(&mut self, value: &Value) -> Option<RetryOverride> {
        match serde_json::from_value::<RetryOverride>(value.clone()) {
            Ok(r) => {
                if let Some(n) = r.max_attempts
                    && !(1..=20).contains(&n)
                {
                    self.err("retry.max_attempts", "must be between 1 and 20");
                    return None;
                }
                Some(r)
            }
            Err(e) => {
                self.err("retry", format!("is invalid: {e}"));
                None
            }
        }
    }

    fn session_options(&mut self, obj: &Map<String, Value>) -> SessionOptions {
        let nested = match obj.get("session_options") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                self.err(
                    "session_options",
                    format!("must be an object, got {}", kind(other)),
                );
                Map::new()
            }
        };
        // Nested keys win over top-level ones, as in the bridge.
        let get = |key: &str| -> Option<(String, &Value)> {
            if let Some(v) = nested.get(key).filter(|v| !v.is_null()) {
                return Some((format!("session_options.{key}"), v));
            }
            obj.get(key)
                .filter(|v| !v.is_null())
                .map(|v| (key.to_owned(), v))
        };
        let mut out = SessionOptions::default();
        if let Some((f, v)) = get("llm") {
            out.llm = self.text(&f, v, MAX_MODEL).filter(|s| !s.is_empty());
        }
        if let Some((f, v)) = get("stt") {
            out.stt = self.text(&f, v, MAX_MODEL).filter(|s| !s.is_empty());
        }
        if let Some((f, v)) = get("tts") {
            out.tts = self.tts(&f, v);
        }
        if let Some((f, v)) = get("cartesia_voice") {
            out.cartesia_voice = self.text(&f, v, MAX_MODEL).filter(|s| !s.is_empty());
        }
        if let Some((f, v)) = get("cartesia_model") {
            out.cartesia_model = self.text(&f, v, MAX_MODEL).filter(|s| !s.is_empty());
        }
        if let Some((f, v)) = get("preemptive_generation") {
            out.preemptive_generation = self.boolish(&f, v);
        }
        if let Some((f, v)) = get("record_call") {
            out.record_call = self.boolish(&f, v).unwrap_or(false);
        }
        if let Some((f, v)) = get("prompt") {
            out.prompt = self.text(&f, v, MAX_PROMPT).filter(|s| !s.is_empty());
        }
        if let Some((f, v)) = get("greeting") {
            out.greeting = self.text(&f, v, MAX_PROMPT).filter(|s| !s.is_empty());
        }
        if let Some((f, v)) = get("language") {
            out.language = self.text(&f, v, 32).filter(|s| !s.is_empty());
        }
        if let Some((f, v)) = get("answering_machine_detection") {
            out.answering_machine_detection = self.boolish(&f, v);
        }
        if let Some((f, v)) = get("voicemail") {
            out.voicemail = self.voicemail(&f, v);
        }
        if let Some((f, v)) = get("call_screening") {
            out.call_screening = self.class_policy(&f, v);
        }
        if let Some((f, v)) = get("ivr") {
            out.ivr = self.class_policy(&f, v);
        }
        if let Some((f, v)) = get("dtmf_on_answer") {
            out.dtmf_on_answer = self.dtmf(&f, v);
        }
        for (key, value) in nested {
            if !SESSION_KEYS.contains(&key.as_str()) {
                out.extra.insert(key, value);
            }
        }
        out
    }

    /// `voicemail: {action, message, retry}`; `leave_message` needs a message.
    fn voicemail(&mut self, field: &str, value: &Value) -> Option<VoicemailPolicy> {
        let policy: VoicemailPolicy = self.policy_object(field, value)?;
        if let Some(m) = &policy.message
            && (m.trim().is_empty() || m.len() > MAX_MESSAGE)
        {
            self.err(
                &format!("{field}.message"),
                format!("must be 1 to {MAX_MESSAGE} bytes of text"),
            );
            return None;
        }
        Some(policy)
    }

    /// `call_screening` / `ivr: {action: continue|hangup}`.
    fn class_policy(&mut self, field: &str, value: &Value) -> Option<ClassPolicy> {
        let policy: ClassPolicy = self.policy_object(field, value)?;
        if policy.action == Some(AnswerAction::LeaveMessage) {
            self.err(
                &format!("{field}.action"),
                "must be \"continue\" or \"hangup\" (leave_message is for voicemail)",
            );
            return None;
        }
        Some(policy)
    }

    fn policy_object<T: serde::de::DeserializeOwned>(
        &mut self,
        field: &str,
        value: &Value,
    ) -> Option<T> {
        if !value.is_object() {
            self.err(field, format!("must be an object, got {}", kind(value)));
            return None;
        }
        match serde_json::from_value(value.clone()) {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(field, format!("is invalid: {e}"));
                None
            }
        }
    }

    /// DTMF digits as LiveKit's `CreateSIPParticipant` takes them.
    fn dtmf(&mut self, field: &str, value: &Value) -> Option<String> {
        let digits = self.text(field, value, MAX_DTMF)?;
        if let Some(bad) = digits.chars().find(|c| !is_dtmf_char(*c)) {
            self.err(
                field,
                format!("has `{bad}`: only 0-9, *, #, A-D and w (a 0.5 s pause) are allowed"),
            );
            return None;
        }
        Some(digits).filter(|d| !d.is_empty())
    }

    fn boolish(&mut self, field: &str, value: &Value) -> Option<bool> {
        let parsed = boolish::parse(value);
        if parsed.is_none() {
            self.err(field, format!("must be boolean-ish (true/false, \"yes\"/\"no\", 1/0, \"on\"/\"off\"), got {value}"));
        }
        parsed
    }

    fn tts(&mut self, field: &str, value: &Value) -> Option<TtsOption> {
        match value {
            Value::String(_) => self
                .text(field, value, MAX_MODEL)
                .filter(|s| !s.is_empty())
                .map(TtsOption::Descriptor),
            Value::Object(m) => {
                let mut part = |key: &str| match m.get(key) {
                    None | Some(Value::Null) => None,
                    Some(v) => self
                        .text(&format!("{field}.{key}"), v, MAX_MODEL)
                        .filter(|s| !s.is_empty()),
                };
                let (provider, model, voice) = (part("provider"), part("model"), part("voice"));
                for key in m.keys() {
                    if !matches!(key.as_str(), "provider" | "model" | "voice") {
                        self.err(
                            &format!("{field}.{key}"),
                            "is not a TTS option (expected provider, model, voice)",
                        );
                    }
                }
                if provider.is_none() && model.is_none() {
                    self.err(field, "needs at least a provider or a model");
                    return None;
                }
                Some(TtsOption::Spec {
                    provider,
                    model,
                    voice,
                })
            }
            other => {
                self.err(
                    field,
                    format!(
                        "must be a string or an object {{provider, model, voice}}, got {}",
                        kind(other)
                    ),
                );
                None
            }
        }
    }
}

/// A DTMF digit (RFC 4733 events 0-15), or LiveKit's `w` pause.
pub fn is_dtmf_char(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D' | 'w')
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// The JSON type name of a value, for error messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
