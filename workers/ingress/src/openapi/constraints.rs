//! What the generated document lacks: the constraints `request::validate` enforces (patterns,
//! lengths, formats, ranges), examples, the path parameters' patterns, and the answers every
//! guarded route shares (`401`, `503` with `Retry-After`). Each entry names a place in the
//! document; a test fails if a domain type renames a field and an entry no longer lands.

use serde_json::{Value, json};

use super::bodies::{NO_CONTROL_PATTERN, NOT_BLANK_PATTERN, PHONE_PATTERN, TRANSFER_PATTERN};
use crate::ids::{CALL_ID_PATTERN, CAMPAIGN_ID_PATTERN};

/// Add every constraint; returns the pointers that matched nothing (a test keeps it empty).
pub fn apply(doc: &mut Value) -> Vec<String> {
    let mut missing = Vec::new();
    for (pointer, patch) in schema_patches() {
        match doc.pointer_mut(&pointer) {
            Some(target) => merge(target, patch),
            None => missing.push(pointer),
        }
    }
    path_parameters(doc);
    shared_answers(doc);
    tags(doc);
    missing
}

/// Shallow merge: `patch`'s keys replace `target`'s.
fn merge(target: &mut Value, patch: Value) {
    if let (Some(t), Value::Object(p)) = (target.as_object_mut(), patch) {
        t.extend(p);
    }
}

fn schema_patches() -> Vec<(String, Value)> {
    let phone =
        |example: &str| json!({"pattern": PHONE_PATTERN, "maxLength": 20, "example": example});
    let optional_phone = json!({"pattern": format!("^({}|\\s*)$", &PHONE_PATTERN[1..PHONE_PATTERN.len() - 1]), "maxLength": 20});
    let text = |max: usize| json!({"pattern": NO_CONTROL_PATTERN, "maxLength": max});
    let token = |example: &str| json!({"pattern": CALL_ID_PATTERN, "minLength": 1, "maxLength": 64, "example": example});
    let date_time = json!({"format": "date-time"});
    let dispatch = "/components/schemas/DispatchPayload";
    let session = "/components/schemas/SessionOptionsPayload";
    let mut patches: Vec<(String, Value)> = vec![
        (
            dispatch.into(),
            json!({
                "required": ["destination", "account_code"],
                "additionalProperties": true,
                "example": {
                    "destination": "61402012298",
                    "account_code": "em-tech-01",
                    "transfer_target": "61731071901",
                    "caller_number": "+61123456789",
                    "caller_name": "LiveKit Nehos Hosted",
                    "session_options": {"llm": "openai/gpt-4o-mini", "stt": "assemblyai/universal-streaming:en", "tts": "cartesia", "preemptive_generation": false},
                    "metadata": {"ticket_id": "INC-1234"}
                }
            }),
        ),
        (format!("{dispatch}/properties/call_id"), token("crm-7")),
        (
            format!("{dispatch}/properties/destination"),
            phone("+61402012298"),
        ),
        (
            format!("{dispatch}/properties/account_code"),
            json!({"pattern": NOT_BLANK_PATTERN, "minLength": 1, "maxLength": 128, "example": "em-tech-01"}),
        ),
        (
            format!("{dispatch}/properties/transfer_target"),
            json!({"pattern": TRANSFER_PATTERN, "maxLength": 256, "example": "+61731071901"}),
        ),
        (format!("{dispatch}/properties/caller_id"), text(128)),
        (
            format!("{dispatch}/properties/caller_number"),
            optional_phone,
        ),
        (format!("{dispatch}/properties/caller_name"), text(128)),
        (format!("{dispatch}/properties/campaign"), token("default")),
        (
            format!("{dispatch}/properties/callback_url"),
            json!({"format": "uri", "pattern": "^https?://[^\\s/?#]+", "maxLength": 2048, "example": "https://example.com/hooks/calls"}),
        ),
        (
            format!("{dispatch}/properties/not_before"),
            json!({"format": "date-time", "example": "2026-11-21T09:00:00Z"}),
        ),
        (format!("{dispatch}/properties/room"), token("call-crm-7")),
        (
            "/components/schemas/RetryOverride/properties/max_attempts".into(),
            json!({"minimum": 1, "maximum": 20}),
        ),
    ];
    for key in ["llm", "stt", "cartesia_voice", "cartesia_model"] {
        patches.push((format!("{session}/properties/{key}"), text(200)));
    }
    patches.push((format!("{session}/properties/language"), text(32)));
    for key in ["prompt", "greeting"] {
        patches.push((
            format!("{session}/properties/{key}"),
            json!({"maxLength": 32 * 1024}),
        ));
    }
    // Boolish: the spellings `boolish::parse` reads.
    patches.push((
        "/components/schemas/Boolish/oneOf/1".into(),
        json!({"enum": [0, 1]}),
    ));
    patches.push((
        "/components/schemas/Boolish/oneOf/2".into(),
        json!({
            "pattern": "^\\s*(true|yes|y|on|1|enabled|false|no|n|off|0|disabled)?\\s*$",
            "description": "Case-insensitive; blank means false"
        }),
    ));
    // TTS as an object: provider and/or model, nothing else.
    patches.push(("/components/schemas/TtsOption/oneOf/0".into(), text(200)));
    patches.push((
        "/components/schemas/TtsOption/oneOf/1".into(),
        json!({
            "additionalProperties": false,
            "anyOf": [
                {"required": ["provider"], "properties": {"provider": {"type": "string", "pattern": "\\S"}}},
                {"required": ["model"], "properties": {"model": {"type": "string", "pattern": "\\S"}}}
            ]
        }),
    ));
    for key in ["provider", "model", "voice"] {
        patches.push((
            format!("/components/schemas/TtsOption/oneOf/1/properties/{key}"),
            text(200),
        ));
    }
    // A CSV upload needs a header row naming `destination`.
    patches.push((
        "/paths/~1campaigns~1{id}~1contacts/post/requestBody/content/text~1csv/schema".into(),
        json!({"pattern": "^[^\\r\\n]*destination"}),
    ));
    // An empty import is a no-op, not an error.
    patches.push((
        "/paths/~1dnc/post/requestBody".into(),
        json!({"required": false}),
    ));
    for (schema, fields) in [
        (
            "CallState",
            &[
                "answered_at",
                "next_attempt_at",
                "updated_at",
                "cancel_requested_at",
            ][..],
        ),
        (
            "CampaignRecord/allOf/1",
            &["created_at", "updated_at", "completed_at"][..],
        ),
        ("CampaignSpec", &["start_at"][..]),
    ] {
        for field in fields {
            patches.push((
                format!("/components/schemas/{schema}/properties/{field}"),
                date_time.clone(),
            ));
        }
    }
    // Links: what a stateful fuzzer (or a generated client) may do with a new id.
    let link = |op: &str, from: &str| json!({"operationId": op, "parameters": {"id": format!("$response.body#/{from}")}});
    patches.push((
        "/paths/~1dispatch/post/responses/202".into(),
        json!({"links": {
            "GetCall": link("get_call", "call_id"),
            "CancelCall": link("cancel_call", "call_id"),
            "TransferCall": link("transfer_call", "call_id"),
        }}),
    ));
    patches.push((
        "/paths/~1campaigns/post/responses/201".into(),
        json!({"links": {
            "GetCampaign": link("get_campaign", "campaign_id"),
            "AddContacts": link("add_contacts", "campaign_id"),
            "PauseCampaign": link("pause_campaign", "campaign_id"),
            "ResumeCampaign": link("resume_campaign", "campaign_id"),
            "CancelCampaign": link("cancel_campaign", "campaign_id"),
        }}),
    ));
    patches.push((
        "/components/schemas/ControlAccepted/properties/status".into(),
        json!({"enum": ["cancelling", "hanging_up", "transferred"]}),
    ));
    patches.push((
        "/components/schemas/ErrorBody/properties/error".into(),
        json!({"enum": [
            "invalid_request", "malformed_json", "unreadable_body", "body_too_large",
            "unsupported_media_type", "unauthorized", "not_found", "method_not_allowed",
            "conflict", "nats_unavailable", "timeout", "internal"
        ]}),
    ));
    patches
}

/// Path parameters get the pattern of what can exist: call ids, campaign ids, phone numbers.
fn path_parameters(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                continue;
            };
            for p in params.iter_mut().filter(|p| p["in"] == "path") {
                let schema = match (p["name"].as_str(), path.split('/').nth(1)) {
                    (Some("id"), Some("calls")) => {
                        json!({"type": "string", "pattern": CALL_ID_PATTERN, "example": "crm-7"})
                    }
                    (Some("id"), Some("campaigns")) => {
                        json!({"type": "string", "pattern": CAMPAIGN_ID_PATTERN, "example": "renewals-2026"})
                    }
                    (Some("number"), _) => {
                        json!({"type": "string", "pattern": PHONE_PATTERN, "example": "+61402012298"})
                    }
                    _ => continue,
                };
                p["schema"] = schema;
            }
        }
    }
}

/// utoipa tags operations with their module path (`crate::campaigns`); keep the last segment.
fn tags(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for op in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        for tag in op
            .get_mut("tags")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(t) = tag.as_str().and_then(|t| t.rsplit("::").next()) {
                *tag = Value::String(t.to_owned());
            }
        }
    }
}

/// Every route behind the API key answers `401` without it and `503` when NATS is away (or
/// the request timed out). (`POST /livekit/webhook` documents its own.)
fn shared_answers(doc: &mut Value) {
    let error = json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}});
    if let Some(components) = doc.get_mut("components").and_then(Value::as_object_mut) {
        components.insert(
            "responses".into(),
            json!({
                "Unauthorized": {
                    "description": "Missing or invalid API key (`error: unauthorized`)",
                    "content": error,
                },
                "Unavailable": {
                    "description": "NATS is unavailable (`nats_unavailable`) or the request timed out (`timeout`); retry after `Retry-After` seconds",
                    "headers": {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer", "minimum": 0}}},
                    "content": error,
                },
            }),
        );
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for op in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter(|op| {
            op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()))
        })
    {
        if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
            responses.insert(
                "401".into(),
                json!({"$ref": "#/components/responses/Unauthorized"}),
            );
            responses.insert(
                "503".into(),
                json!({"$ref": "#/components/responses/Unavailable"}),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated() -> Value {
        serde_json::to_value(<super::super::ApiDoc as utoipa::OpenApi>::openapi()).expect("json")
    }

    #[test]
    fn every_constraint_lands() {
        let mut doc = generated();
        assert_eq!(apply(&mut doc), Vec::<String>::new());
    }

    #[test]
    fn every_path_parameter_has_a_pattern() {
        let doc = super::super::document();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("item") {
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if p["in"] == "path" {
                        assert!(p["schema"]["pattern"].is_string(), "{method} {path}: {p}");
                    }
                }
            }
        }
    }

    #[test]
    fn guarded_routes_document_401_and_503() {
        let doc = super::super::document();
        let mut guarded = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("item") {
                if op.get("security").is_some() {
                    guarded += 1;
                    for status in ["401", "503"] {
                        assert!(
                            op["responses"][status].is_object(),
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
        assert_eq!(
            guarded, 16,
            "15 behind the API key, and the LiveKit webhook"
        );
    }
}
