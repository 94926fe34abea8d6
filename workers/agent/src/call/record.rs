//! The call's recording, by `recording.backend`: `egress` asks LiveKit Egress to record the
//! room when it is created; `nats` records the voice session's audio in this worker
//! (`callfleet-recording`) from the answer to the hang-up, and a worker that takes a call over
//! joins what its lost worker stored into a partial recording.
//!
//! The `nats` backend records what the voice session hears and says. A held call (no voice
//! session) is recorded too: a receive-only listener joins the room and taps the callee
//! (`voice::listen`), and the agent's channel is silence, as nobody spoke for the agent.

use std::time::Duration;

use callfleet_config::RecordingBackend;
use callfleet_domain::summary::Recording;
use callfleet_recording::{Recorder, Settings, Tap, recorder::base};
use jiff::Timestamp;
use tokio::time::Instant;

use super::attempt::Attempt;
use crate::Worker;

fn settings(w: &Worker) -> Settings {
    Settings::new(
        &w.config.recording,
        Duration::from_secs(w.config.agent.max_call_duration_secs),
    )
}

/// Once the room exists: request the recording (`egress`), or prepare for it (`nats`).
pub(super) async fn request(a: &mut Attempt<'_>) {
    let (w, req) = (a.w, &a.job.req);
    if !req.session_options.record_call {
        a.recording = Recording::default();
        return;
    }
    a.recording = match w.config.recording.backend {
        RecordingBackend::Nats => base(),
        RecordingBackend::Egress => start_egress(w, &req.room, &req.call_id).await,
    };
}

/// Start a LiveKit room-composite egress; a failure is noted and the call goes on.
async fn start_egress(w: &Worker, room: &str, call_id: &str) -> Recording {
    let mut recording = Recording {
        requested: true,
        backend: Some(RecordingBackend::Egress.as_str().into()),
        ..Recording::default()
    };
    let path = w
        .config
        .livekit
        .recording_filepath
        .replace("{room}", room)
        .replace("{call_id}", call_id);
    match w.livekit.start_recording(room, &path).await {
        Ok(id) => {
            recording.egress_id = Some(id);
            recording.location = Some(path);
        }
        Err(e) => {
            tracing::warn!(call.id = %call_id, error = %e, "recording (egress) failed; the call goes on");
            recording.error = Some(format!(
                "LiveKit Egress did not start (is the Egress service running?): {e}"
            ));
        }
    }
    recording
}

/// At the answer: start the worker's recorder if this call records with `nats`; its tap goes
/// to the voice session's room audio, or to a held call's listener.
pub(super) fn start(a: &mut Attempt<'_>, answered: Timestamp) -> Option<Tap> {
    let w = a.w;
    let wanted = a.recording.requested
        && a.recording.backend.as_deref() == Some("nats")
        && a.recording.error.is_none();
    if !wanted {
        return None;
    }
    // The recording's clock starts at the answer, even if the room is joined a little later.
    let since = Timestamp::now().duration_since(answered).unsigned_abs();
    let start = Instant::now()
        .checked_sub(since)
        .unwrap_or_else(Instant::now);
    match Recorder::start(w.bus.clone(), &settings(w), &a.job.req.call_id, start) {
        Ok(r) => {
            let tap = r.tap();
            a.recorder = Some(r);
            Some(tap)
        }
        Err(e) => {
            tracing::warn!(call.id = %a.job.req.call_id, error = %e, "recording could not start; the call goes on");
            a.recording.error = Some(format!("recording could not start: {e}"));
            None
        }
    }
}

/// At the hang-up (also after `max_duration` and at shutdown): end the recording now.
pub(super) async fn finish(a: &mut Attempt<'_>) {
    if let Some(r) = a.recorder.take() {
        a.recording = r.finish(Instant::now()).await;
        if let Some(problem) = a.recording_problem.take() {
            a.recording.error = Some(format!("the callee could not be heard: {problem}"));
        }
    }
}

/// Taking over a call whose worker was lost: join what it recorded (`nats`).
pub(super) async fn salvage(a: &mut Attempt<'_>) {
    let (w, req) = (a.w, &a.job.req);
    a.recording.requested = req.session_options.record_call;
    if !a.recording.requested {
        return;
    }
    a.recording = match w.config.recording.backend {
        RecordingBackend::Nats => {
            callfleet_recording::salvage(&w.bus, &settings(w), &req.call_id).await
        }
        RecordingBackend::Egress => Recording {
            requested: true,
            backend: Some(RecordingBackend::Egress.as_str().into()),
            ..Recording::default()
        },
    };
}
