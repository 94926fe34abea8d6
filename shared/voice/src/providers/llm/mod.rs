//! LLM: OpenAI-compatible chat completions streamed over SSE (OpenAI, Groq, any base URL).

mod chat;
mod error;
mod openai;
mod sse;

pub use chat::{ChatContext, ChatMessage, Role, ToolCall, ToolSpec};
pub use error::LlmError;
pub use openai::{LlmClient, LlmEvent, LlmStream};
