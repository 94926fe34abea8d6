//! Provider clients, each speaking its provider's documented wire protocol.

pub mod llm;
pub mod stt;
pub mod tts;
mod ws;

pub use ws::WsStream;
