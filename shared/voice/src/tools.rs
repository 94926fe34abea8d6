//! The agent's tools. The engine never runs them itself: `end_call` and `transfer_call` become
//! session outcomes the worker carries out; they only run once a reply is committed.

use serde_json::{Value, json};

use crate::providers::llm::{ToolCall, ToolSpec};

pub const END_CALL: &str = "end_call";
pub const TRANSFER_CALL: &str = "transfer_call";

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
    /// Unknown tool or bad arguments: the text goes back to the LLM as the tool result.
    Invalid {
        call_id: String,
        message: String,
    },
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
        other => ToolAction::Invalid {
            call_id: call.id.clone(),
            message: format!("unknown tool `{other}`"),
        },
    }
}
