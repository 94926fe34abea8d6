//! The callee's SIP leg as both the plain hold and the voice session see it: its participant
//! identity, how holding it ended, and the transfer (SIP REFER) either can ask for.

use std::time::Duration;

use callfleet_domain::{EndReason, EventKind, control::ControlReply};

use crate::{Worker, job::Job};

/// How a held call ended, or that it is no longer ours.
pub(crate) enum Held {
    Ended(EndReason),
    Lost,
}

pub(crate) use crate::job::sip_identity as identity;

/// `TransferSIPParticipant` (SIP REFER): the callee is handed to `to`; LiveKit then drops the
/// SIP leg. Publishes `transferred` on success. The voice session's transfer tool calls this too.
pub(crate) async fn transfer(w: &Worker, job: &Job, to: &str) -> ControlReply {
    let req = &job.req;
    let ring = Duration::from_secs(w.config.sip.transfer_timeout_secs);
    tracing::info!(call.id = %req.call_id, "transferring");
    match w.livekit.transfer(&req.room, &job.callee(), to, ring).await {
        Ok(()) => {
            let mut event = job.event(EventKind::Transferred, job.attempt);
            event.detail = Some(serde_json::json!({ "to": to }));
            w.publish_until_done(&event).await;
            ControlReply::ok(format!("transferred to {to}"))
        }
        Err(failure) => {
            tracing::warn!(call.id = %req.call_id, error = %failure, "transfer failed");
            ControlReply::err(format!("transfer failed: {failure}"))
        }
    }
}
