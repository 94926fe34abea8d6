//! One attempt of one call on LiveKit: dial, hold, hang up; or reconcile a call whose worker died.

mod dial;
mod finish;
mod hold;
mod reconcile;

use callfleet_domain::{CallState, summary::Recording};

use crate::{
    Worker,
    control::Control,
    job::{Disposition, Job},
    keepalive::Keepalive,
};

/// Run one attempt: a fresh dial, or the reconciliation of an attempt whose worker died.
pub async fn run(
    w: &Worker,
    job: &Job,
    state: CallState,
    in_flight: bool,
    keep: &Keepalive,
    control: &mut Control,
) -> Disposition {
    if in_flight {
        reconcile::reconcile(w, job, state, keep, control).await
    } else {
        dial::dial(w, job, state, keep, control).await
    }
}

/// Delete the room (hangs up the SIP leg) and stop the recording.
async fn hang_up(w: &Worker, room: &str, recording: &Recording) {
    if let Some(id) = &recording.egress_id
        && let Err(e) = w.livekit.stop_recording(id).await
    {
        tracing::warn!(egress.id = %id, error = %e, "cannot stop the recording");
    }
    if let Err(e) = w.livekit.delete_room(room).await {
        tracing::warn!(room, error = %e, "cannot delete the room; LiveKit closes it when empty");
    }
}
