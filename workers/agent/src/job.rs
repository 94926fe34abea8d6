//! A job: one message parsed into one attempt of one call ([`Job`]), and what became of the
//! attempt ([`Disposition`]). Plain data; [`crate::handle`] runs the attempt and
//! [`crate::settle`] maps its disposition onto the bus.

use std::time::Duration;

use callfleet_bus::Delivery;
use callfleet_domain::{
    CallEvent, CallRequest, EventKind, FieldError, PhoneNumber,
    inbound::{Direction, InboundJob},
    request::{self, SessionOptions, ValidateOptions},
    subjects as s,
    summary::{AttemptRecord, CallSummary},
};
use jiff::Timestamp;
use serde_json::Value;

/// A parsed job.
pub struct Job {
    pub req: CallRequest,
    pub attempt: u32,
    pub infra_retries: u32,
    pub delivered: i64,
    /// Non-zero for a job replayed from the dead-letter stream.
    pub generation: u32,
    /// Released by the campaigner (`calls.campaign.<id>`): tallied, retried through it.
    pub campaign_job: bool,
    /// A campaign contact's own time zone.
    pub timezone: Option<String>,
    /// A session LiveKit dispatched to a room (an inbound caller): joined, never dialed. Its
    /// `req` is provisional (no caller leg yet) until [`crate::call`] finds the caller.
    pub inbound: Option<InboundJob>,
}

/// What became of an attempt.
pub enum Disposition {
    /// Finished for good: publish the final event (with its summary), record the state, ack.
    Final(Box<CallSummary>),
    /// Final because its retries ran out: as `Final`, and a copy of the job goes to the
    /// dead-letter stream with `reason`, so an operator can `callfleet dlq replay` it.
    Exhausted {
        summary: Box<CallSummary>,
        reason: String,
    },
    /// Dial again later: schedule the job, record the state, publish `retry_scheduled`, ack.
    Retry {
        at: Timestamp,
        attempt: u32,
        infra_retries: u32,
        record: AttemptRecord,
        reason: String,
    },
    /// The number is in another live call: wait as a scheduled message (no delivery spent, no
    /// attempt spent), then check again.
    WaitForNumber { at: Timestamp, holder: String },
    /// Someone else holds the call: redeliver after this long.
    Backoff(Duration),
    /// Nothing to do (the call already ended): ack.
    Skip,
    /// The worker lost the call (lease taken over); leave the message alone.
    Abandon,
}

/// The SIP participant's identity in an outbound call's room (the dial names it so).
pub(crate) fn sip_identity(call_id: &str) -> String {
    format!("sip-{call_id}")
}

/// An inbound job's request before its caller is found: what the fence and a dead letter need
/// (call id, room, campaign, metadata); the worker completes it from the caller's SIP leg.
pub fn provisional(inbound: &InboundJob) -> CallRequest {
    CallRequest {
        call_id: inbound.call_id.clone(),
        destination: PhoneNumber::as_reported(""),
        account_code: String::new(),
        transfer_target: None,
        caller_id: None,
        caller_number: None,
        caller_name: None,
        session_options: SessionOptions::default(),
        metadata: inbound.metadata.clone(),
        campaign: inbound.campaign.clone(),
        callback_url: None,
        not_before: None,
        retry: None,
        room: inbound.room.clone(),
        direction: Direction::Inbound,
        inbound: None,
    }
}

impl Job {
    pub(crate) fn header(msg: &Delivery, name: &str) -> Option<u32> {
        msg.header(name)?.parse().ok()
    }

    /// Validate a message exactly like the ingress validates a POST body.
    pub fn parse(msg: &Delivery) -> Result<Self, (Option<String>, Vec<FieldError>)> {
        let delivered = msg.delivered();
        // A publisher that gave no call id (or no JSON at all) gets one derived from the stream
        // sequence, `js<seq>`, so every redelivery of the message maps to the same call.
        let fallback = msg.stream_sequence().map(|seq| format!("js{seq}"));
        let value: Value = serde_json::from_slice(msg.payload()).map_err(|e| {
            (
                fallback.clone(),
                vec![FieldError::new("(body)", format!("is not valid JSON: {e}"))],
            )
        })?;
        let call_id_hint = value
            .get("call_id")
            .and_then(Value::as_str)
            .filter(|id| s::is_token(id))
            .map(str::to_owned);
        if InboundJob::is_inbound(&value) {
            let inbound = InboundJob::parse(&value)
                .map_err(|errors| (call_id_hint.clone().or(fallback.clone()), errors))?;
            return Ok(Self::of(
                msg,
                delivered,
                provisional(&inbound),
                Some(inbound),
            ));
        }
        let req = request::validate(
            &value,
            &ValidateOptions {
                default_country_code: None,
                fallback_call_id: fallback.clone(),
            },
        )
        .map_err(|errors| (call_id_hint.or(fallback), errors))?;
        Ok(Self::of(msg, delivered, req, None))
    }

    /// A job of `req`, with what the message's headers and delivery say.
    fn of(msg: &Delivery, delivered: i64, req: CallRequest, inbound: Option<InboundJob>) -> Self {
        Self {
            req,
            attempt: Self::header(msg, s::ATTEMPT_HEADER).unwrap_or(1).max(1),
            infra_retries: Self::header(msg, s::INFRA_RETRIES_HEADER).unwrap_or(0),
            delivered,
            generation: Self::header(msg, s::GENERATION_HEADER).unwrap_or(0),
            campaign_job: msg.subject().starts_with("calls.campaign."),
            timezone: msg.header(s::TIMEZONE_HEADER).map(str::to_owned),
            inbound,
        }
    }

    /// The callee's (or for an inbound call the caller's) SIP participant in the room.
    pub fn callee(&self) -> String {
        match &self.req.inbound {
            Some(leg) => leg.participant_identity.clone(),
            None => sip_identity(&self.req.call_id),
        }
    }

    /// An event of this job. A replayed job's event ids carry its generation.
    pub fn event(&self, kind: EventKind, attempt: u32) -> CallEvent {
        let mut event = CallEvent::new(&self.req.call_id, kind, attempt);
        if self.generation > 0 {
            event.event_id = format!("{}.g{}", event.event_id, self.generation);
        }
        event
    }
}
