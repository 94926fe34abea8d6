//! The state one attempt's steps share, and hanging up its room.

use callfleet_domain::{CallState, summary::Recording};
use jiff::Timestamp;

use crate::{Worker, control::Control, job::Job, keepalive::Keepalive};

/// One attempt in progress: what its steps read and update.
pub(super) struct Attempt<'a> {
    pub(super) w: &'a Worker,
    pub(super) job: &'a Job,
    /// The call's state as this attempt last wrote it (its `history` holds the past attempts).
    pub(super) state: CallState,
    pub(super) keep: &'a Keepalive,
    pub(super) control: &'a mut Control,
    /// When this worker took the attempt up.
    pub(super) session_start: Timestamp,
    /// The recording as far as it got; a fresh dial requests it once the room exists.
    pub(super) recording: Recording,
    /// The worker's own recorder (`recording.backend = "nats"`), from the answer to the hang-up.
    pub(super) recorder: Option<callfleet_recording::Recorder>,
    /// Why a held call's recording could not hear the callee (its room could not be joined).
    pub(super) recording_problem: Option<String>,
}

impl<'a> Attempt<'a> {
    pub(super) fn new(
        w: &'a Worker,
        job: &'a Job,
        state: CallState,
        keep: &'a Keepalive,
        control: &'a mut Control,
    ) -> Self {
        Self {
            w,
            job,
            state,
            keep,
            control,
            session_start: Timestamp::now(),
            recording: Recording::default(),
            recorder: None,
            recording_problem: None,
        }
    }
}

/// Delete the room (hangs up the SIP leg) and stop the egress recording.
pub(super) async fn hang_up(a: &Attempt<'_>) {
    let (w, room) = (a.w, a.job.req.room.as_str());
    if let Some(id) = &a.recording.egress_id
        && let Err(e) = w.livekit.stop_recording(id).await
    {
        tracing::warn!(egress.id = %id, error = %e, "cannot stop the recording");
    }
    if a.job.req.inbound.is_some() {
        // An inbound caller's room may be shared (a direct dispatch rule): hang up their leg.
        if let Err(e) = w.livekit.remove_participant(room, &a.job.callee()).await {
            tracing::warn!(room, error = %e, "cannot hang up the caller; livekit-sip ends the call when the room closes");
        }
        return;
    }
    if let Err(e) = w.livekit.delete_room(room).await {
        tracing::warn!(room, error = %e, "cannot delete the room; LiveKit closes it when empty");
    }
}
