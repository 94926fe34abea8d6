//! The LiveKit server-API adapter: one place that knows LiveKit's calls and errors.
//!
//! A call's life on LiveKit: [`LiveKit::create_room`] (call metadata attached) →
//! [`LiveKit::start_recording`] when asked → [`LiveKit::dial`] (`CreateSIPParticipant`, waiting
//! until answered, explicit ring timeout) → [`LiveKit::sip_leg`] while held →
//! [`LiveKit::delete_room`] (hangs up) and [`LiveKit::stop_recording`].
//! Dial errors are classified per DESIGN.md §5 by [`callfleet_domain::outcome::classify`].
//! [`agent_worker`] is the other direction: callfleet registered with LiveKit as an agent worker,
//! offered jobs by dispatches ([`LiveKit::create_agent_dispatch`]).

pub mod agent_worker;

use std::{collections::HashMap, time::Duration};

use callfleet_domain::{
    CallOutcome,
    outcome::{DialError, classify},
    summary::SipStatus,
};
use livekit_api::services::{
    ServiceError, SipCallError, TwirpError,
    agent_dispatch::AgentDispatchClient,
    egress::{EgressClient, EgressOutput, RoomCompositeOptions},
    room::{CreateRoomOptions, RoomClient},
    sip::{
        CreateSIPOutboundTrunkOptions, CreateSIPParticipantOptions, SIPClient,
        TransferSIPParticipantOptions,
    },
};
use livekit_protocol as proto;

pub mod room_agents;

/// A LiveKit API error that is not a dial outcome.
#[derive(Debug, thiserror::Error)]
#[error("LiveKit {op} failed: {message}")]
pub struct LiveKitError {
    pub op: &'static str,
    pub message: String,
    /// Twirp code, empty when LiveKit could not be reached.
    pub code: String,
}

impl LiveKitError {
    fn new(op: &'static str, err: &ServiceError) -> Self {
        let (code, message) = twirp_parts(err);
        Self { op, message, code }
    }

    /// LiveKit unreachable or failing internally (worth retrying later).
    pub fn is_infrastructure(&self) -> bool {
        matches!(
            self.code.as_str(),
            "" | "unavailable" | "internal" | "unknown" | "deadline_exceeded"
        )
    }

    pub fn is_not_found(&self) -> bool {
        self.code == "not_found"
    }
}

/// livekit-sip's participant attribute with the SIP call's status.
pub const SIP_CALL_STATUS: &str = "sip.callStatus";

/// A SIP participant's state, as LiveKit reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipLeg {
    /// Not in the room (hung up, never joined, or the room is gone).
    Absent,
    /// The INVITE is out and no provisional response 180–199 came back yet (`dialing`): the
    /// callee may not even have been reached.
    Dialing,
    /// livekit-sip saw a provisional response 180–199 (`ringing`); not answered yet.
    Ringing,
    /// Answered.
    Active,
}

impl SipLeg {
    /// Dialing or ringing: a live leg that has not been answered yet.
    pub fn is_unanswered(self) -> bool {
        matches!(self, Self::Dialing | Self::Ringing)
    }
}

/// The SIP participant as LiveKit lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipParticipant {
    pub leg: SipLeg,
    /// `sip.callStatus` as livekit-sip last set it.
    pub call_status: Option<String>,
    /// When it joined the room (livekit-sip joins at the dial, before any ring), in Unix ms.
    pub joined_at_ms: i64,
}

/// A caller's SIP participant, as LiveKit lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipCaller {
    pub identity: String,
    /// livekit-sip's attributes: `sip.phoneNumber`, `sip.trunkPhoneNumber`, `sip.trunkID`,
    /// `sip.callID`, `sip.callStatus`, `sip.h.<header>`.
    pub attributes: std::collections::BTreeMap<String, String>,
    /// When it joined the room, in Unix ms.
    pub joined_at_ms: i64,
}

/// A failed dial, classified.
#[derive(Debug, Clone)]
pub struct DialFailure {
    pub outcome: CallOutcome,
    pub sip: Option<SipStatus>,
    /// Twirp code (empty if LiveKit was unreachable).
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for DialFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.outcome.as_str())?;
        if let Some(SipStatus {
            code: Some(code),
            reason,
        }) = &self.sip
        {
            write!(f, "SIP {code} {} ", reason.as_deref().unwrap_or(""))?;
        }
        if self.code.is_empty() {
            write!(f, "({})", self.message)
        } else {
            write!(f, "({}: {})", self.code, self.message)
        }
    }
}

/// What to dial.
#[derive(Debug, Clone)]
pub struct Dial {
    pub trunk_id: String,
    pub to: String,
    pub room: String,
    pub identity: String,
    pub name: String,
    pub from_number: Option<String>,
    pub display_name: Option<String>,
    pub headers: HashMap<String, String>,
    pub attributes: HashMap<String, String>,
    pub metadata: String,
    pub ringing_timeout: Duration,
    pub max_call_duration: Duration,
    /// DTMF digits livekit-sip sends once the callee answers (`w`: a 0.5 s pause).
    pub dtmf: Option<String>,
}

#[derive(Clone)]
pub struct LiveKit {
    rooms: std::sync::Arc<RoomClient>,
    sip: std::sync::Arc<SIPClient>,
    egress: std::sync::Arc<EgressClient>,
    dispatch: std::sync::Arc<AgentDispatchClient>,
}

impl LiveKit {
    pub fn new(url: &str, api_key: &str, api_secret: &str, request_timeout: Duration) -> Self {
        Self {
            rooms: std::sync::Arc::new(
                RoomClient::with_api_key(url, api_key, api_secret)
                    .with_request_timeout(request_timeout),
            ),
            sip: std::sync::Arc::new(
                SIPClient::with_api_key(url, api_key, api_secret)
                    .with_request_timeout(request_timeout),
            ),
            egress: std::sync::Arc::new(
                EgressClient::with_api_key(url, api_key, api_secret)
                    .with_request_timeout(request_timeout),
            ),
            dispatch: std::sync::Arc::new(
                AgentDispatchClient::with_api_key(url, api_key, api_secret)
                    .with_request_timeout(request_timeout),
            ),
        }
    }

    /// `CreateAgentDispatch`: offer `agent_name` a job in `room` (created if it does not
    /// exist), with `metadata` as the job's metadata.
    pub async fn create_agent_dispatch(
        &self,
        room: &str,
        agent_name: &str,
        metadata: String,
    ) -> Result<proto::AgentDispatch, LiveKitError> {
        self.dispatch
            .create_dispatch(proto::CreateAgentDispatchRequest {
                agent_name: agent_name.to_owned(),
                room: room.to_owned(),
                metadata,
                ..Default::default()
            })
            .await
            .map_err(|e| LiveKitError::new("CreateAgentDispatch", &e))
    }

    /// `ListDispatch`: the room's agent dispatches, each with its jobs' states.
    pub async fn list_agent_dispatches(
        &self,
        room: &str,
    ) -> Result<Vec<proto::AgentDispatch>, LiveKitError> {
        self.dispatch
            .list_dispatch(room)
            .await
            .map_err(|e| LiveKitError::new("ListDispatch", &e))
    }

    pub async fn create_room(
        &self,
        name: &str,
        metadata: String,
        empty_timeout: u32,
        departure_timeout: u32,
    ) -> Result<(), LiveKitError> {
        let opts = CreateRoomOptions {
            metadata,
            empty_timeout,
            departure_timeout,
            max_participants: 8,
            ..Default::default()
        };
        self.rooms
            .create_room(name, opts)
            .await
            .map(|_| ())
            .map_err(|e| LiveKitError::new("CreateRoom", &e))
    }

    /// Delete the room, which hangs up every participant. A room already gone is fine.
    pub async fn delete_room(&self, name: &str) -> Result<(), LiveKitError> {
        match self.rooms.delete_room(name).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = LiveKitError::new("DeleteRoom", &e);
                if err.is_not_found() { Ok(()) } else { Err(err) }
            }
        }
    }

    /// Where the SIP leg `identity` in `room` stands, from livekit-sip's `sip.callStatus`
    /// participant attribute. A missing room or participant means absent. The SIP participant
    /// is in the room while it still rings, so presence alone does not mean answered.
    pub async fn sip_leg(&self, room: &str, identity: &str) -> Result<SipLeg, LiveKitError> {
        Ok(self
            .sip_participant(room, identity)
            .await?
            .map_or(SipLeg::Absent, |p| p.leg))
    }

    /// The SIP participant `identity` in `room`, if it is there.
    pub async fn sip_participant(
        &self,
        room: &str,
        identity: &str,
    ) -> Result<Option<SipParticipant>, LiveKitError> {
        match self.rooms.list_participants(room).await {
            Ok(list) => Ok(list
                .iter()
                .find(|p| {
                    p.identity == identity
                        && p.state != proto::participant_info::State::Disconnected as i32
                })
                .map(|p| {
                    let call_status = p.attributes.get(SIP_CALL_STATUS).cloned();
                    let leg = match call_status.as_deref() {
                        Some("dialing") => SipLeg::Dialing,
                        Some("ringing") => SipLeg::Ringing,
                        Some("hangup") => SipLeg::Absent,
                        // "active", "automation", or a participant without the attribute.
                        _ => SipLeg::Active,
                    };
                    let joined_at_ms = if p.joined_at_ms > 0 {
                        p.joined_at_ms
                    } else {
                        p.joined_at * 1000
                    };
                    SipParticipant {
                        leg,
                        call_status,
                        joined_at_ms,
                    }
                })),
            Err(e) => {
                let err = LiveKitError::new("ListParticipants", &e);
                if err.is_not_found() {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Whether the room exists.
    pub async fn room_exists(&self, room: &str) -> Result<bool, LiveKitError> {
        self.rooms
            .list_rooms(vec![room.to_owned()])
            .await
            .map(|rooms| rooms.iter().any(|r| r.name == room))
            .map_err(|e| LiveKitError::new("ListRooms", &e))
    }

    /// The SIP participants in `room` still connected (callers who dialed in), oldest first.
    /// A missing room has none.
    pub async fn sip_callers(&self, room: &str) -> Result<Vec<SipCaller>, LiveKitError> {
        match self.rooms.list_participants(room).await {
            Ok(list) => {
                let mut callers: Vec<SipCaller> = list
                    .into_iter()
                    .filter(|p| {
                        p.kind == proto::participant_info::Kind::Sip as i32
                            && p.state != proto::participant_info::State::Disconnected as i32
                            && p.attributes.get(SIP_CALL_STATUS).map(String::as_str)
                                != Some("hangup")
                    })
                    .map(|p| SipCaller {
                        joined_at_ms: if p.joined_at_ms > 0 {
                            p.joined_at_ms
                        } else {
                            p.joined_at * 1000
                        },
                        identity: p.identity,
                        attributes: p.attributes.into_iter().collect(),
                    })
                    .collect();
                callers.sort_by_key(|c| c.joined_at_ms);
                Ok(callers)
            }
            Err(e) => {
                let err = LiveKitError::new("ListParticipants", &e);
                if err.is_not_found() {
                    Ok(Vec::new())
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Remove `identity` from `room`: for a SIP participant, livekit-sip hangs its call up
    /// (a BYE). Already gone is fine. Other participants in the room stay (a dispatch rule's
    /// shared room may hold other callers).
    pub async fn remove_participant(&self, room: &str, identity: &str) -> Result<(), LiveKitError> {
        match self.rooms.remove_participant(room, identity).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = LiveKitError::new("RemoveParticipant", &e);
                if err.is_not_found() { Ok(()) } else { Err(err) }
            }
        }
    }

    /// Start an audio-only room-composite egress to a file; returns the egress id.
    pub async fn start_recording(
        &self,
        room: &str,
        filepath: &str,
    ) -> Result<String, LiveKitError> {
        let output = proto::EncodedFileOutput {
            file_type: proto::EncodedFileType::Ogg as i32,
            filepath: filepath.to_owned(),
            ..Default::default()
        };
        let opts = RoomCompositeOptions {
            audio_only: true,
            layout: "speaker-dark".into(),
            ..Default::default()
        };
        self.egress
            .start_room_composite_egress(room, vec![EgressOutput::File(output)], opts)
            .await
            .map(|info| info.egress_id)
            .map_err(|e| LiveKitError::new("StartRoomCompositeEgress", &e))
    }

    pub async fn stop_recording(&self, egress_id: &str) -> Result<(), LiveKitError> {
        self.egress
            .stop_egress(egress_id)
            .await
            .map(|_| ())
            .map_err(|e| LiveKitError::new("StopEgress", &e))
    }

    /// `CreateSIPParticipant`, waiting until answered. `Ok` means the callee answered.
    pub async fn dial(&self, dial: Dial) -> Result<proto::SipParticipantInfo, DialFailure> {
        let opts = CreateSIPParticipantOptions {
            participant_identity: dial.identity,
            participant_name: Some(dial.name),
            participant_metadata: Some(dial.metadata),
            participant_attributes: Some(dial.attributes),
            display_name: dial.display_name,
            sip_number: dial.from_number,
            dtmf: dial.dtmf,
            wait_until_answered: Some(true),
            ringing_timeout: Some(dial.ringing_timeout),
            max_call_duration: Some(dial.max_call_duration),
            headers: Some(dial.headers),
            // The request lasts as long as the ringing: give it the ring timeout plus margin,
            // not the client's default request timeout.
            timeout: Some(dial.ringing_timeout + Duration::from_secs(15)),
            ..Default::default()
        };
        self.sip
            .create_sip_participant(dial.trunk_id, dial.to, dial.room, opts, None)
            .await
            .map_err(|e| classify_error(&e))
    }

    /// `CreateSIPOutboundTrunk` over UDP without auth (a local PBX or a test callee); returns
    /// the trunk id.
    pub async fn create_outbound_trunk(
        &self,
        name: &str,
        address: &str,
        numbers: Vec<String>,
    ) -> Result<String, LiveKitError> {
        let opts = CreateSIPOutboundTrunkOptions {
            transport: proto::SipTransport::Udp,
            metadata: String::new(),
            auth_username: String::new(),
            auth_password: String::new(),
            headers: None,
            headers_to_attributes: None,
            attributes_to_headers: None,
        };
        self.sip
            .create_sip_outbound_trunk(name.to_owned(), address.to_owned(), numbers, opts)
            .await
            .map(|t| t.sip_trunk_id)
            .map_err(|e| LiveKitError::new("CreateSIPOutboundTrunk", &e))
    }

    /// `TransferSIPParticipant` (SIP REFER) to `tel:+E164` or a `sip:` URI.
    pub async fn transfer(
        &self,
        room: &str,
        identity: &str,
        to: &str,
        ringing_timeout: Duration,
    ) -> Result<(), DialFailure> {
        let opts = TransferSIPParticipantOptions {
            ringing_timeout: Some(ringing_timeout),
            ..Default::default()
        };
        self.sip
            .transfer_sip_participant(room.to_owned(), identity.to_owned(), to.to_owned(), opts)
            .await
            .map_err(|e| classify_error(&e))
    }
}

fn twirp_parts(err: &ServiceError) -> (String, String) {
    match err {
        ServiceError::Twirp(TwirpError::Twirp(code)) => (code.code.clone(), code.msg.clone()),
        ServiceError::Twirp(TwirpError::Request(e)) => (String::new(), error_chain(e)),
        other => (String::new(), other.to_string()),
    }
}

/// An error with its sources, `a: b: c` (a connection refused says why).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Classify a dial error from the real error LiveKit returned.
pub fn classify_error(err: &ServiceError) -> DialFailure {
    let (code, message) = twirp_parts(err);
    let sip = SipCallError::from_error(err).map(|s| SipStatus {
        code: s.sip_status_code(),
        reason: s.sip_status().map(str::to_owned),
    });
    let outcome = classify(&DialError {
        code: &code,
        message: &message,
        sip_status: sip.as_ref().and_then(|s| s.code),
    });
    DialFailure {
        outcome,
        sip,
        code,
        message,
    }
}
