//! The voice session on an answered call (`agent.voice_session`, on by default): the worker joins
//! the call's room as `agent-<call_id>` with the pure-Rust media transport, and the voice
//! engine talks with the SIP participant through it. Providers are resolved before dialing, so
//! an unknown provider or a missing key fails the call before anyone's phone rings.

use std::{collections::HashMap, time::Duration};

use std::path::PathBuf;

use callfleet_config::{AnsweringConfig, VadKind};
use callfleet_domain::{
    CallRequest, EndReason,
    answering::{AnswerAction, AnswerReport, ClassPolicy},
    control::ControlReply,
    outcome,
    summary::{SessionCloseReason, TranscriptEntry, TurnMetrics, Usage},
};
use callfleet_media::{Event, Options, Transport};
use callfleet_recording::{Side, Tap};
use callfleet_voice::vad::{Detector, VadOptions, WebRtcMode};
use callfleet_voice::{
    Answering, AudioError, AudioFrame, AudioIo, EngineOptions, Input, Session, SessionConfig,
    SessionEvent, SessionReport,
};
use jiff::Timestamp;
use livekit_api::access_token::{AccessToken, VideoGrants};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::{
    Worker,
    control::Control,
    job::Job,
    keepalive::Keepalive,
    leg::{Held, transfer},
    leg_watch::LegWatch,
};

/// The agent's audio rate handed to the transport.
const OUTPUT_RATE: u32 = 24_000;

/// Resolve the request's providers, or `None` when voice sessions are off.
pub fn prepare(w: &Worker, req: &CallRequest) -> Result<Option<SessionConfig>, String> {
    if !w.config.agent.voice_session {
        return Ok(None);
    }
    // The request's own transfer target; else one given inside `session_options` (kept in its
    // unknown keys, as the engine always read it).
    let transfer_target = req.transfer_target.as_deref().or_else(|| {
        req.session_options
            .extra
            .get("transfer_target")
            .and_then(serde_json::Value::as_str)
    });
    let mut cfg = callfleet_voice::resolve(&req.session_options, transfer_target, &w.provider_env)
        .map_err(|e| format!("voice session: {e}"))?;
    cfg.answering = answering(&w.config.answering, req)?;
    Ok(Some(cfg))
}

/// Answering-machine detection for this call: the request's (or its campaign's) policy over the
/// fleet's, the voicemail message's `{{variables}}` filled from the call's metadata. `None` when
/// detection is off.
fn answering(fleet: &AnsweringConfig, req: &CallRequest) -> Result<Option<Answering>, String> {
    let o = &req.session_options;
    if !o.answering_machine_detection.unwrap_or(fleet.enabled) {
        return Ok(None);
    }
    let vm = o.voicemail.as_ref();
    let voicemail = vm
        .and_then(|v| v.action)
        .or(fleet.voicemail.action)
        .unwrap_or_default();
    let message = vm
        .and_then(|v| v.message.as_deref())
        .or(fleet.voicemail.message.as_deref())
        .map(|m| fill(m, &req.metadata));
    if voicemail == AnswerAction::LeaveMessage && message.is_none() {
        return Err(
            "voice session: session_options.voicemail.message: is required when \
                    voicemail.action is \"leave_message\" (answering.voicemail.message is not \
                    configured either)"
                .into(),
        );
    }
    let class_action = |given: Option<&ClassPolicy>, fleet: &ClassPolicy| {
        given
            .and_then(|p| p.action)
            .or(fleet.action)
            .unwrap_or(AnswerAction::Continue)
    };
    Ok(Some(Answering {
        budget_ms: fleet.budget_ms,
        max_wait_ms: fleet.max_wait_secs.saturating_mul(1000),
        silence_ms: fleet.silence_secs.saturating_mul(1000),
        voicemail,
        voicemail_message: message,
        call_screening: class_action(o.call_screening.as_ref(), &fleet.call_screening),
        ivr: class_action(o.ivr.as_ref(), &fleet.ivr),
    }))
}

/// `{{name}}` → the metadata's `name` (strings as they are, other values as JSON); unknown
/// names become empty, so a message never reads a template aloud.
fn fill(template: &str, metadata: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        match metadata.get(after[..close].trim()) {
            Some(serde_json::Value::String(v)) => out.push_str(v),
            Some(serde_json::Value::Null) | None => {}
            Some(v) => out.push_str(&v.to_string()),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

/// What the session adds to the summary: the engine reports in the summary's own types.
#[derive(Default)]
pub struct Report {
    pub usage: Usage,
    pub turns: Vec<TurnMetrics>,
    pub transcript: Vec<TranscriptEntry>,
    pub error: Option<String>,
    pub close_reason: Option<SessionCloseReason>,
    /// When the first agent audio frame went to the transport; `None` if the agent never spoke.
    pub first_audio_at: Option<Timestamp>,
    /// What answered, when answering-machine detection ran.
    pub answer: Option<AnswerReport>,
}

impl From<SessionReport> for Report {
    fn from(r: SessionReport) -> Self {
        Self {
            error: match &r.end_reason {
                SessionCloseReason::Error { message } => Some(message.clone()),
                _ => None,
            },
            usage: r.usage,
            turns: r.turns,
            transcript: r.transcript,
            close_reason: Some(r.end_reason),
            first_audio_at: r.first_audio_at,
            answer: r.answer,
        }
    }
}

/// The call's room seen from the agent's side.
struct RoomIo {
    callee: String,
    audio: broadcast::Receiver<callfleet_media::AudioFrame>,
    events: broadcast::Receiver<Event>,
    track: callfleet_media::LocalAudioTrack,
    /// The call's recorder, when it records: both sides' frames as they pass.
    tap: Option<Tap>,
}

impl AudioIo for RoomIo {
    async fn recv(&mut self) -> Option<AudioFrame> {
        loop {
            match self.recv_input().await? {
                Input::Audio(frame) => return Some(frame),
                Input::Dtmf(_) => {}
            }
        }
    }

    async fn recv_input(&mut self) -> Option<Input> {
        loop {
            tokio::select! {
                f = self.audio.recv() => match f {
                    Ok(f) if f.identity == self.callee => {
                        if let Some(tap) = &self.tap {
                            tap.push(Side::Callee, &f.samples, f.sample_rate);
                        }
                        let frame = AudioFrame::new(f.samples, f.sample_rate);
                        // Frames still queued (the callee's only: nobody else speaks here).
                        let behind = frame.duration() * self.audio.len() as u32;
                        return Some(Input::Audio(frame.behind(behind)));
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                e = self.events.recv() => match e {
                    Ok(Event::Dtmf { identity, digit }) if identity == self.callee => {
                        return Some(Input::Dtmf(digit));
                    }
                    Ok(Event::ParticipantLeft { identity }) if identity == self.callee => return None,
                    Ok(Event::Disconnected { .. }) | Err(broadcast::error::RecvError::Closed) => return None,
                    _ => {}
                },
            }
        }
    }

    async fn send(&mut self, frame: AudioFrame) -> Result<(), AudioError> {
        // The engine paces its output (at most its playout lead ahead of real time).
        if let Some(tap) = &self.tap {
            tap.push(Side::Agent, &frame.samples, frame.sample_rate);
        }
        self.track
            .push(&frame.samples)
            .await
            .map_err(|e| AudioError::Transport(e.to_string()))
    }

    fn clear(&mut self) {
        // Frames already pushed are on the wire; the engine's lead bounds what is lost.
    }
}

pub(crate) fn token(w: &Worker, room: &str, who: &str) -> Result<String, String> {
    let (_, key, secret) = w
        .config
        .livekit
        .credentials()
        .ok_or("LiveKit credentials are not configured")?;
    AccessToken::with_api_key(key, secret)
        .with_identity(who)
        .with_name("callfleet agent")
        .with_grants(VideoGrants {
            room_join: true,
            room: room.to_owned(),
            can_publish: Some(true),
            can_subscribe: Some(true),
            ..Default::default()
        })
        .to_jwt()
        .map_err(|e| e.to_string())
}

/// Leave the room a voice session joined for a call that was never answered.
pub async fn leave(joined: Option<Result<Transport, String>>, call_id: &str) {
    if let Some(Ok(transport)) = joined
        && let Err(e) = transport.leave().await
    {
        tracing::debug!(call.id = %call_id, error = %e, "leaving the room");
    }
}

/// Join the call's room as `agent-<call_id>` (the voice session, or a held call's listener).
pub async fn join(w: &Worker, job: &Job) -> Result<Transport, String> {
    let req = &job.req;
    let url = w.config.livekit.url.clone().unwrap_or_default();
    let token = token(w, &req.room, &format!("agent-{}", req.call_id))?;
    let options = if w.config.agent.media_loopback {
        Options::loopback()
    } else {
        Options::default()
    };
    Transport::connect(&url, &token, options)
        .await
        .map_err(|e| format!("cannot join the call's room: {e}"))
}

/// Run the session in the room `joined` (while the phone rang) until it ends or the call is
/// taken away; returns how the call ended.
#[allow(clippy::too_many_arguments)]
pub async fn converse(
    w: &Worker,
    job: &Job,
    cfg: SessionConfig,
    joined: Result<Transport, String>,
    answered: Timestamp,
    keep: &Keepalive,
    control: &mut Control,
    tap: Option<Tap>,
) -> (Held, Report) {
    let req = &job.req;
    let failed = |error: String| {
        tracing::warn!(call.id = %req.call_id, %error, "voice session could not start; hanging up");
        (
            Held::Ended(EndReason::AgentHangup),
            Report {
                error: Some(error),
                ..Report::default()
            },
        )
    };
    let transport = match joined {
        Ok(t) => t,
        Err(e) => return failed(e),
    };
    let track = match transport.publish_audio("agent", OUTPUT_RATE).await {
        Ok(t) => t,
        Err(e) => return failed(format!("cannot publish the agent's audio: {e}")),
    };
    let mut watch = LegWatch::start(w, &req.room, &req.call_id, &job.callee());
    let io = RoomIo {
        callee: job.callee(),
        audio: transport.remote_audio(),
        events: transport.events(),
        track,
        tap,
    };
    let max = Duration::from_secs(w.config.agent.max_call_duration_secs);
    let elapsed = Timestamp::now().duration_since(answered).unsigned_abs();
    let opts = EngineOptions {
        max_duration: max.saturating_sub(elapsed),
        answered_ago: elapsed,
        vad: (*w.vad).clone(),
        ..EngineOptions::default()
    };
    let session = match Session::new(cfg, opts) {
        Ok(s) => s,
        Err(e) => return failed(format!("voice session: {e}")),
    };
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let run = session.run(io, cancel.clone(), Some(tx));
    tokio::pin!(run);
    let operator_hangup = control.hangup.clone();
    let mut stopped: Option<Held> = None;
    let mut transferred = false;
    let report = loop {
        tokio::select! {
            report = &mut run => break report,
            Some(event) = rx.recv() => match event {
                SessionEvent::Transfer { target, .. } => {
                    transferred |= transfer(w, job, &target).await.ok;
                }
                // Sent before the session is polled again: a tool runs after its reply has
                // played, so nothing the agent says is held up (a few keys take well under 1 s).
                SessionEvent::SendDtmf { digits } => {
                    if let Err(e) = transport.send_dtmf_digits(&digits).await {
                        tracing::warn!(call.id = %req.call_id, %digits, error = %e, "cannot send the agent's DTMF");
                    }
                }
                _ => {}
            },
            t = control.next_transfer() => {
                let reply: ControlReply = transfer(w, job, &t.to).await;
                transferred |= reply.ok;
                t.answer(reply);
            }
            () = operator_hangup.cancelled(), if stopped.is_none() => {
                stopped = Some(Held::Ended(EndReason::Cancelled));
                cancel.cancel();
            }
            () = w.hangup.cancelled(), if stopped.is_none() => {
                stopped = Some(Held::Ended(EndReason::Shutdown));
                cancel.cancel();
            }
            () = keep.lost.cancelled(), if stopped.is_none() => {
                stopped = Some(Held::Lost);
                cancel.cancel();
            }
        }
    };
    if let Err(e) = transport.leave().await {
        tracing::debug!(call.id = %req.call_id, error = %e, "leaving the room");
    }
    // The callee's leg left: on a BYE, or dropped by livekit-sip for lack of media.
    let left = match (&stopped, &report.end_reason) {
        (None, SessionCloseReason::CalleeHungUp) if !transferred => {
            let status = watch.final_status(Duration::from_secs(2)).await;
            outcome::leg_left(status.as_deref(), false)
        }
        _ => EndReason::CalleeHangup,
    };
    let held = stopped.unwrap_or_else(|| {
        Held::Ended(if transferred {
            EndReason::Transferred
        } else {
            call_end_reason(&report.end_reason, left)
        })
    });
    tracing::info!(call.id = %req.call_id, end = ?report.end_reason, turns = report.turns.len(), "voice session ended");
    (held, Report::from(report))
}

/// The call's end reason for how its voice session closed: the one mapping from the session's
/// close reason onto the summary's [`EndReason`]. `left` is why the callee's leg left, for a
/// session that ended with the callee's audio.
fn call_end_reason(close: &SessionCloseReason, left: EndReason) -> EndReason {
    match close {
        SessionCloseReason::CalleeHungUp => left,
        SessionCloseReason::Transferred { .. } => EndReason::Transferred,
        SessionCloseReason::MaxDuration => EndReason::MaxDuration,
        SessionCloseReason::Cancelled => EndReason::Shutdown,
        SessionCloseReason::AgentEnded { .. }
        | SessionCloseReason::SilenceTimeout
        | SessionCloseReason::AnswerPolicy { .. }
        | SessionCloseReason::Error { .. } => EndReason::AgentHangup,
    }
}

/// The speech detector `agent.vad` names.
pub fn vad_options(agent: &callfleet_config::AgentConfig) -> VadOptions {
    let detector = match agent.vad {
        VadKind::Silero => Detector::Silero {
            model: agent
                .vad_model
                .as_deref()
                .map_or_else(callfleet_voice::vad::dev_model_path, PathBuf::from),
            threshold: 0.5,
        },
        VadKind::Webrtc => Detector::WebRtc(WebRtcMode::Aggressive),
        VadKind::Energy => Detector::Energy,
    };
    VadOptions::default().with_detector(detector)
}

/// The provider keys and base URLs the engine may read, from the process environment.
pub fn provider_env() -> HashMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| {
            k.ends_with("_API_KEY")
                || k.ends_with("_BASE_URL")
                || k.ends_with("_VOICE_ID")
                || matches!(
                    k.as_str(),
                    "LLM_PROVIDER" | "LLM_MODEL" | "PREEMPTIVE_GENERATION"
                )
        })
        .collect()
}

/// A held call's recording (no voice session): join the call's room, publish nothing, and tap
/// the callee's audio until `stop`. The agent's channel stays silent: no agent speaks. Returns
/// why it could not hear the call, if it could not.
pub async fn listen(
    w: &Worker,
    job: &Job,
    tap: Tap,
    stop: CancellationToken,
) -> Result<(), String> {
    let req = &job.req;
    let transport = join(w, job).await?;
    let callee = job.callee();
    let mut audio = transport.remote_audio();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            f = audio.recv() => match f {
                Ok(f) if f.identity == callee => tap.push(Side::Callee, &f.samples, f.sample_rate),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    if let Err(e) = transport.leave().await {
        tracing::debug!(call.id = %req.call_id, error = %e, "leaving the room");
    }
    Ok(())
}
