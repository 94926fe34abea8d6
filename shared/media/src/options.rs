//! Connection options ([`Options`]), read by every layer from the signal connection up.

use std::time::Duration;

/// Connection options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Subscribe to every published track automatically (`auto_subscribe=1`).
    pub auto_subscribe: bool,
    /// Deadline for the WebSocket, the join response, and `publish_audio`.
    pub timeout: Duration,
    /// Use the ICE (STUN/TURN) servers the join response lists.
    pub use_server_ice_servers: bool,
    /// Gather only loopback UDP candidates and allow them (tests and local
    /// benchmarks against a server on 127.0.0.1).
    pub loopback_only: bool,
    /// Rejoin attempts after a lost connection (0: report `Disconnected` at once).
    pub reconnect_attempts: u32,
    /// Events buffered per receiver before the oldest are dropped.
    pub event_capacity: usize,
    /// Audio frames (20 ms each) buffered per receiver before the oldest are dropped.
    pub audio_capacity: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            auto_subscribe: true,
            timeout: Duration::from_secs(10),
            use_server_ice_servers: true,
            loopback_only: false,
            reconnect_attempts: 5,
            event_capacity: 256,
            audio_capacity: 500,
        }
    }
}

impl Options {
    /// Defaults for a server on this machine: loopback ICE only, no STUN/TURN.
    pub fn loopback() -> Self {
        Self {
            loopback_only: true,
            use_server_ice_servers: false,
            ..Self::default()
        }
    }
}
