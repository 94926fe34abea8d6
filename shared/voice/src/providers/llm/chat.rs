//! The chat context in OpenAI's message format.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text, as the model produced it.
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    pub fn tool_result(call_id: &str, content: impl Into<String>) -> Self {
        Self {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.to_owned()),
        }
    }

    /// The wire form of one message.
    pub fn to_json(&self) -> Value {
        let mut m = json!({ "role": self.role, "content": self.content });
        if !self.tool_calls.is_empty() {
            m["tool_calls"] = self
                .tool_calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function",
                           "function": {"name": c.name, "arguments": c.arguments}})
                })
                .collect();
            if self.content.is_empty() {
                m["content"] = Value::Null;
            }
        }
        if let Some(id) = &self.tool_call_id {
            m["tool_call_id"] = json!(id);
        }
        m
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

impl ToolSpec {
    pub fn to_json(&self) -> Value {
        json!({"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.parameters}})
    }
}

/// The conversation so far, with a version that changes on every edit (preemptive generation
/// reuses a speculative reply only if the context it was made from is unchanged).
#[derive(Debug, Clone, Default)]
pub struct ChatContext {
    messages: Vec<ChatMessage>,
    version: u64,
}

impl ChatContext {
    pub fn new(system: &str) -> Self {
        let mut c = Self::default();
        if !system.is_empty() {
            c.push(ChatMessage::new(Role::System, system));
        }
        c
    }

    pub fn push(&mut self, m: ChatMessage) {
        self.messages.push(m);
        self.version += 1;
    }

    pub fn messages(&self) -> &[ChatMessage] {
        &self.messages
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// A copy with one more message (the speculative or final user turn).
    pub fn with(&self, m: ChatMessage) -> Vec<ChatMessage> {
        let mut v = self.messages.clone();
        v.push(m);
        v
    }
}
