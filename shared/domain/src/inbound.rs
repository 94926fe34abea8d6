//! Calls that LiveKit brings to callfleet: a caller who dialed in, or a session in a room that
//! LiveKit's own dispatch (`lk dispatch create`, CreateAgentDispatch, a SIP dispatch rule's
//! `room_config.agents`) sent to callfleet's agent name.
//!
//! A dispatch whose metadata names a `destination` is an outbound call like any other: the
//! dispatcher publishes it as a [`crate::CallRequest`] payload. One without is an
//! [`InboundJob`]: the worker joins the room (it does not dial), finds the caller's SIP
//! participant, and converses. It travels on `calls.dispatch.<campaign>` too (one queue, one
//! consumer, the same leases), told apart by its `"direction": "inbound"`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    field::FieldError,
    request::{SESSION_KEYS, kind, session_options_of},
    subjects,
};

/// Who called whom.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// callfleet dialed the callee.
    #[default]
    Outbound,
    /// The caller dialed in (or LiveKit dispatched a session to a room without a destination).
    Inbound,
}

impl Direction {
    pub fn is_outbound(&self) -> bool {
        matches!(self, Self::Outbound)
    }
}

/// The caller's SIP leg of an inbound call, as livekit-sip describes its participant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InboundLeg {
    /// The caller's number (`sip.phoneNumber`), as the trunk gave it.
    pub caller_number: Option<String>,
    /// The number the caller dialed (`sip.trunkPhoneNumber`).
    pub called_number: Option<String>,
    /// The LiveKit inbound trunk (`sip.trunkID`).
    pub trunk_id: Option<String>,
    /// The SIP Call-ID (`sip.callID`), for the carrier's logs.
    pub sip_call_id: Option<String>,
    /// The caller's SIP participant in the room.
    pub participant_identity: String,
    /// SIP headers livekit-sip passed on (`sip.h.<name>` attributes; the trunk's
    /// `headers_to_attributes` or `include_headers`), by header name.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// LiveKit attribute prefix of the SIP headers livekit-sip passes on.
pub const SIP_HEADER_ATTRIBUTE_PREFIX: &str = "sip.h.";

impl InboundLeg {
    /// The leg as livekit-sip's participant attributes describe it.
    pub fn from_attributes<'a>(
        identity: &str,
        attributes: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Self {
        let mut leg = Self {
            participant_identity: identity.to_owned(),
            ..Self::default()
        };
        for (key, value) in attributes {
            let value = value.clone();
            match key.as_str() {
                "sip.phoneNumber" => leg.caller_number = Some(value),
                "sip.trunkPhoneNumber" => leg.called_number = Some(value),
                "sip.trunkID" => leg.trunk_id = Some(value),
                "sip.callID" => leg.sip_call_id = Some(value),
                other => {
                    if let Some(name) = other.strip_prefix(SIP_HEADER_ATTRIBUTE_PREFIX) {
                        leg.headers.insert(name.to_owned(), value);
                    }
                }
            }
        }
        leg
    }
}

/// A session LiveKit dispatched to callfleet for a room, to be joined rather than dialed.
/// Published by `callfleet dispatcher` (an offered LiveKit job, or a SIP participant in a room
/// no agent was sent to) on `calls.dispatch.<campaign>`; any publisher may send one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InboundJob {
    /// Always `inbound`: what tells this job from a call request on the same subject.
    pub direction: Direction,
    /// The call id (a subject token): derived from LiveKit's job id by the dispatcher.
    pub call_id: String,
    /// The LiveKit room the caller is in.
    pub room: String,
    pub campaign: String,
    /// The caller's participant, when the publisher knows it; otherwise the worker takes the
    /// room's SIP participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_identity: Option<String>,
    /// The agent name LiveKit dispatched to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    /// LiveKit's job and dispatch ids, for its logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub livekit_job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_id: Option<String>,
    /// The dispatch's metadata (a JSON object; other text is kept under `text`). Its session
    /// keys (`prompt`, `greeting`, `llm`, …, or a `session_options` object) override the called
    /// number's.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// When LiveKit's offer was accepted (the caller was already in the room).
    pub accepted_at: Timestamp,
    /// When the caller gets the busy message if no worker has taken the call by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_by: Option<Timestamp>,
}

impl InboundJob {
    /// Whether a job payload is an inbound one (`"direction": "inbound"`).
    pub fn is_inbound(value: &Value) -> bool {
        value.get("direction").and_then(Value::as_str) == Some("inbound")
    }

    /// Validate an inbound job, every field problem at once.
    pub fn parse(value: &Value) -> Result<Self, Vec<FieldError>> {
        let Some(obj) = value.as_object() else {
            return Err(vec![FieldError::new(
                "(body)",
                format!("must be a JSON object, got {}", kind(value)),
            )]);
        };
        let mut errors = Vec::new();
        match obj.get("call_id").and_then(Value::as_str) {
            Some(id) if subjects::is_token(id) => {}
            Some(_) => errors.push(FieldError::new(
                "call_id",
                "must be 1 to 64 ASCII letters, digits, '-' or '_'",
            )),
            None => errors.push(FieldError::new("call_id", "is required (a string)")),
        }
        match obj.get("room").and_then(Value::as_str) {
            Some(room) if is_room_name(room) => {}
            Some(_) => errors.push(FieldError::new(
                "room",
                "must be 1 to 256 characters without control characters",
            )),
            None => errors.push(FieldError::new("room", "is required (a string)")),
        }
        if let Some(c) = obj.get("campaign")
            && !c.as_str().is_some_and(subjects::is_token)
        {
            errors.push(FieldError::new(
                "campaign",
                "must be 1 to 64 ASCII letters, digits, '-' or '_'",
            ));
        }
        if let Some(m) = obj.get("metadata")
            && !m.is_object()
            && !m.is_null()
        {
            errors.push(FieldError::new(
                "metadata",
                format!("must be an object, got {}", kind(m)),
            ));
        }
        let mut with_defaults = obj.clone();
        with_defaults
            .entry("campaign")
            .or_insert_with(|| subjects::DEFAULT_CAMPAIGN.into());
        with_defaults
            .entry("accepted_at")
            .or_insert_with(|| Timestamp::now().to_string().into());
        if let Some(Value::Null) = with_defaults.get("metadata") {
            with_defaults.remove("metadata");
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        serde_json::from_value(Value::Object(with_defaults))
            .map_err(|e| vec![FieldError::new("(body)", e.to_string())])
    }

    /// The dispatch's session options: its metadata's session keys (top level or under
    /// `session_options`), validated like a call request's.
    pub fn session_overrides(&self) -> Result<Map<String, Value>, Vec<FieldError>> {
        session_keys(&self.metadata)
    }
}

/// The session keys of a JSON object (top level, or inside `session_options`), checked by the
/// request validator so a bad one is a field error like on `POST /dispatch`.
pub fn session_keys(obj: &Map<String, Value>) -> Result<Map<String, Value>, Vec<FieldError>> {
    let mut keys = Map::new();
    for (key, value) in obj {
        if SESSION_KEYS.contains(&key.as_str()) {
            keys.insert(key.clone(), value.clone());
        }
    }
    if let Some(Value::Object(nested)) = obj.get("session_options") {
        for (key, value) in nested {
            keys.insert(key.clone(), value.clone());
        }
    }
    session_options_of(&keys)?;
    Ok(keys)
}

/// A LiveKit room name callfleet accepts from LiveKit: 1 to 256 characters, none of them
/// control characters (dispatch rules make names like `call-_+15550100_xYz`).
pub fn is_room_name(room: &str) -> bool {
    !room.is_empty() && room.len() <= 256 && !room.chars().any(char::is_control)
}

/// The call id of a LiveKit job: its id (`AJ_…`) when that is a subject token, else a UUIDv5
/// of it, so every offer of one job maps to one call.
pub fn call_id_for_job(job_id: &str) -> String {
    let plain = format!("lk-{job_id}");
    if subjects::is_token(&plain) {
        plain
    } else {
        format!(
            "lk-{}",
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, job_id.as_bytes()).simple()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_inbound_job_is_told_apart_and_parsed() {
        let v = json!({"direction": "inbound", "call_id": "lk-AJ_abc", "room": "call-_+3226010500_xYz",
            "metadata": {"prompt": "Be brief", "tenant": "acme"}});
        assert!(InboundJob::is_inbound(&v));
        assert!(!InboundJob::is_inbound(
            &json!({"destination": "+61400000000"})
        ));
        let job = InboundJob::parse(&v).expect("valid");
        assert_eq!(job.campaign, "default");
        assert_eq!(job.room, "call-_+3226010500_xYz");
        let keys = job.session_overrides().expect("valid session keys");
        assert_eq!(keys.get("prompt"), Some(&json!("Be brief")));
        assert!(!keys.contains_key("tenant"));
    }

    #[test]
    fn a_bad_inbound_job_names_every_field() {
        let v = json!({"direction": "inbound", "call_id": "a b", "room": "", "metadata": 3});
        let errors = InboundJob::parse(&v).expect_err("invalid");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["call_id", "room", "metadata"]);
        let bad_session = InboundJob::parse(
            &json!({"direction": "inbound", "call_id": "x", "room": "r", "metadata": {"preemptive_generation": "sometimes"}}),
        )
        .expect("parses");
        assert!(bad_session.session_overrides().is_err());
    }

    #[test]
    fn the_leg_comes_from_livekit_sip_attributes() {
        let attrs: BTreeMap<String, String> = [
            ("sip.phoneNumber", "+15550100"),
            ("sip.trunkPhoneNumber", "+3226010500"),
            ("sip.trunkID", "ST_1"),
            ("sip.callID", "SCL_x"),
            ("sip.h.X-Customer-Id", "42"),
            ("sip.callStatus", "active"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let leg = InboundLeg::from_attributes("sip_+15550100", &attrs);
        assert_eq!(leg.caller_number.as_deref(), Some("+15550100"));
        assert_eq!(leg.called_number.as_deref(), Some("+3226010500"));
        assert_eq!(
            leg.headers.get("X-Customer-Id").map(String::as_str),
            Some("42")
        );
        assert_eq!(leg.headers.len(), 1);
    }

    #[test]
    fn job_ids_map_to_call_ids() {
        assert_eq!(call_id_for_job("AJ_abc123"), "lk-AJ_abc123");
        let odd = call_id_for_job("AJ abc/1");
        assert!(subjects::is_token(&odd) && odd.starts_with("lk-"));
        assert_eq!(odd, call_id_for_job("AJ abc/1"));
    }
}
