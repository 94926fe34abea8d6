//! The agent's tools. The engine never runs them itself: `end_call` and `transfer_call` become
//! session outcomes the worker carries out; they only run once a reply is committed.

use serde_json::{Value, json};

use crate::providers::llm::{ToolCall, ToolSpec};

pub const END_CALL: &str = "end_call";
pub const TRANSFER_CALL: &str = "transfer_call";
pub const SEND_DTMF: &str = "send_dtmf";
/// Longest key sequence one `send_dtmf` call may press.
const MAX_DTMF: usize = 32;

/// The tools offered to the LLM (`transfer_call` only when a target is configured).
pub fn specs(transfer_enabled: bool) -> Vec<ToolSpec> {
    let mut v = vec![ToolSpec {
        name: END_CALL.into(),
        description: "End the phone call, after saying goodbye. Use when the conversation is \
                      finished or the callee asks to hang up."
            .into(),
        parameters: json!({"type": "object", "properties": {
            "reason": {"type": "string", "description": "Why the call ends."}}, "required": []}),
    }];
    v.push(ToolSpec {
        name: SEND_DTMF.into(),
        description: "Press keys on the phone keypad (DTMF tones), for example to choose an \
                      option in an automated phone menu or to dial an extension. Only when a \
                      menu asks for a key."
            .into(),
        parameters: json!({"type": "object", "properties": {
            "digits": {"type": "string", "description": "The keys to press, in order: 0-9, * and #."}},
            "required": ["digits"]}),
    });
    if transfer_enabled {
        v.push(ToolSpec {
            name: TRANSFER_CALL.into(),
            description: "Transfer the callee to a human colleague. Tell them you are \
                          transferring first."
                .into(),
            parameters: json!({"type": "object", "properties": {
                "reason": {"type": "string", "description": "Why the call is transferred."}},
                "required": []}),
        });
    }
    v
}

/// What a committed tool call asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolAction {
    EndCall {
        reason: String,
    },
    Transfer {
        reason: String,
    },
    SendDtmf {
        call_id: String,
        digits: String,
    },
    /// Unknown tool or bad arguments: the text goes back to the LLM as the tool result.
    Invalid {
        call_id: String,
        message: String,
    },
}

/// `send_dtmf`'s digits, checked: the LLM gets the problem back as the tool result.
fn dtmf(call: &ToolCall, args: &Value) -> ToolAction {
    let invalid = |message: String| ToolAction::Invalid {
        call_id: call.id.clone(),
        message,
    };
    let Some(digits) = args.get("digits").and_then(Value::as_str) else {
        return invalid("`digits` is required: a string of 0-9, * and #".into());
    };
    let digits: String = digits.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.is_empty() || digits.chars().count() > MAX_DTMF {
        return invalid(format!("`digits` must hold 1 to {MAX_DTMF} keys"));
    }
    if let Some(bad) = digits
        .chars()
        .find(|c| !(c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')))
    {
        return invalid(format!("`{bad}` is not a phone key (0-9, *, #, A-D)"));
    }
    ToolAction::SendDtmf {
        call_id: call.id.clone(),
        digits,
    }
}

pub fn parse(call: &ToolCall) -> ToolAction {
    let args: Value = if call.arguments.trim().is_empty() {
        json!({})
    } else {
        match serde_json::from_str(&call.arguments) {
            Ok(v) => v,
            Err(e) => {
                return ToolAction::Invalid {
                    call_id: call.id.clone(),
                    message: format!("arguments are not valid JSON: {e}"),
                };
            }
        }
    };
    let reason = args
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    match call.name.as_str() {
        END_CALL => ToolAction::EndCall { reason },
        TRANSFER_CALL => ToolAction::Transfer { reason },
        SEND_DTMF => dtmf(call, &args),
        other => ToolAction::Invalid {
            call_id: call.id.clone(),
            message: format!("unknown tool `{other}`"),
        },
    }
}
