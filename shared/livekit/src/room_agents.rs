//! Whether an agent serves a LiveKit room: the verified-webhook path's check before it starts
//! a session for a SIP caller (seed 003's telephony mode), so a room LiveKit already
//! dispatched (a dispatch rule's `room_config.agents`, `lk dispatch create`) is not served twice.

use std::time::Duration;

use livekit_api::services::{agent_dispatch::AgentDispatchClient, room::RoomClient};
use livekit_protocol as proto;

use crate::LiveKitError;

/// ListParticipants and ListDispatch, nothing else.
#[derive(Clone)]
pub struct RoomAgents {
    rooms: std::sync::Arc<RoomClient>,
    dispatches: std::sync::Arc<AgentDispatchClient>,
}

/// Who serves a room, if anyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// An agent participant is in the room (kind `AGENT`, or callfleet's `agent-<call_id>`).
    AgentPresent(String),
    /// LiveKit has a dispatch for the agent name in the room (its worker gets the job).
    Dispatched(String),
    /// Nobody.
    Nobody,
}

impl RoomAgents {
    pub fn new(url: &str, api_key: &str, api_secret: &str, request_timeout: Duration) -> Self {
        Self {
            rooms: std::sync::Arc::new(
                RoomClient::with_api_key(url, api_key, api_secret)
                    .with_request_timeout(request_timeout),
            ),
            dispatches: std::sync::Arc::new(
                AgentDispatchClient::with_api_key(url, api_key, api_secret)
                    .with_request_timeout(request_timeout),
            ),
        }
    }

    /// Whether an agent is in `room` or LiveKit dispatched `agent_name` to it. A room that is
    /// gone has nobody.
    pub async fn served(&self, room: &str, agent_name: &str) -> Result<Served, LiveKitError> {
        let participants = match self.rooms.list_participants(room).await {
            Ok(list) => list,
            Err(e) => {
                let err = LiveKitError::new("ListParticipants", &e);
                if err.is_not_found() {
                    return Ok(Served::Nobody);
                }
                return Err(err);
            }
        };
        if let Some(agent) = participants.iter().find(|p| {
            p.kind == proto::participant_info::Kind::Agent as i32
                || p.identity.starts_with("agent-")
        }) {
            return Ok(Served::AgentPresent(agent.identity.clone()));
        }
        let dispatches = match self.dispatches.list_dispatch(room).await {
            Ok(list) => list,
            Err(e) => {
                let err = LiveKitError::new("ListDispatch", &e);
                if err.is_not_found() {
                    return Ok(Served::Nobody);
                }
                return Err(err);
            }
        };
        Ok(dispatches
            .into_iter()
            .find(|d| d.agent_name == agent_name)
            .map_or(Served::Nobody, |d| Served::Dispatched(d.id)))
    }
}
