//! The busy message: an inbound caller whom no worker took by the job's `answer_by`
//! (`inbound.max_wait_secs` after LiveKit's offer) hears `inbound.busy_message`, and the call
//! is ended. A caller is never left waiting in silence.
//!
//! `callfleet dispatcher` runs this at `answer_by` for every inbound job it accepted. It is
//! fenced like any attempt: it takes the call's lease first, so it never speaks over a worker
//! that took the call (that worker holds the lease), and a worker that gets the job afterwards
//! finds the call over and skips it. It costs no worker slot: one TTS synthesis per message
//! text, cached, and a short stay in the room.

use std::{sync::Arc, time::Duration};

use callfleet_bus::LeaseError;
use callfleet_domain::{
    CallOutcome, CallStatus, EndReason,
    inbound::{InboundJob, InboundLeg},
    summary::{AttemptRecord, Recording},
};
use callfleet_media::{Options, Transport};
use callfleet_voice::providers::tts::{TtsClient, TtsEvent};
use jiff::Timestamp;
use tokio::sync::Mutex;

use crate::{
    Worker,
    job::{Job, provisional},
    summary::{self, Parts},
};

/// How long the busy message waits for livekit-sip to answer the caller.
const ANSWER_WAIT: Duration = Duration::from_secs(10);
/// How often it looks.
const ANSWER_POLL: Duration = Duration::from_millis(300);

/// What the busy check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overflow {
    /// A worker holds or finished the call: nothing to do.
    Served,
    /// The caller heard the busy message and the call was ended.
    BusyMessage { first_audio_ms: u64 },
    /// The caller had already hung up; the call was closed as abandoned.
    CallerGone,
}

/// One synthesis of the busy message: its text, sample rate and samples.
struct Synthesised {
    text: String,
    rate: u32,
    pcm: Arc<Vec<i16>>,
}

/// The busy message's audio, synthesised once per text.
#[derive(Default, Clone)]
pub struct BusyAudio {
    cached: Arc<Mutex<Option<Synthesised>>>,
}

impl BusyAudio {
    async fn get(&self, w: &Worker) -> Result<(u32, Arc<Vec<i16>>), String> {
        let text = w.config.inbound.busy_message.clone();
        let mut cached = self.cached.lock().await;
        if let Some(s) = cached.as_ref()
            && s.text == text
        {
            return Ok((s.rate, s.pcm.clone()));
        }
        let cfg = callfleet_voice::resolve(&Default::default(), None, &w.provider_env)
            .map_err(|e| format!("busy message: the TTS cannot be resolved: {e}"))?;
        let client = TtsClient::new(cfg.tts);
        let rate = client.sample_rate();
        let mut stream = client.start();
        stream.push_text(&text);
        stream.end_input();
        let mut pcm = Vec::new();
        while let Some(event) = stream.next().await {
            match event {
                TtsEvent::Audio(samples) => pcm.extend(samples),
                TtsEvent::Done => break,
                TtsEvent::Error(e) => return Err(format!("busy message: TTS failed: {e}")),
                TtsEvent::Words(_) => {}
            }
        }
        if pcm.is_empty() {
            return Err("busy message: the TTS returned no audio".into());
        }
        let pcm = Arc::new(pcm);
        *cached = Some(Synthesised {
            text,
            rate,
            pcm: pcm.clone(),
        });
        Ok((rate, pcm))
    }
}

impl Worker {
    /// Synthesise the busy message now (the dispatcher does at start), so the first caller who
    /// needs it does not wait for the TTS.
    pub async fn prepare_busy_message(&self) -> Result<(), String> {
        self.busy_audio.get(self).await.map(|_| ())
    }

    /// At an inbound job's `answer_by`: if no worker took the call, the caller hears the busy
    /// message and the call ends with `agents_busy`.
    pub async fn busy_if_unserved(&self, job: &InboundJob) -> Result<Overflow, String> {
        let call_id = &job.call_id;
        let lease = match self.bus.take_lease(call_id, &self.worker_id, 1).await {
            Ok(lease) => lease,
            Err(LeaseError::Held { .. }) => return Ok(Overflow::Served),
            Err(e) => return Err(format!("cannot take the call's lease: {e}")),
        };
        let result = self.busy_under_lease(job).await;
        if let Err(e) = self.bus.release_lease(&lease).await {
            tracing::warn!(call.id = %call_id, error = %e, "cannot release the lease; it expires on its own");
        }
        result
    }

    /// The busy message, the lease held by the caller.
    pub(crate) async fn busy_under_lease(&self, job: &InboundJob) -> Result<Overflow, String> {
        let call_id = &job.call_id;
        match self.bus.call_state(call_id).await {
            Ok(Some((state, _)))
                if state.status.is_terminal()
                    || matches!(
                        state.status,
                        CallStatus::Dialing | CallStatus::Ringing | CallStatus::InCall
                    ) =>
            {
                return Ok(Overflow::Served);
            }
            Ok(_) => {}
            Err(e) => return Err(format!("cannot read the call's state: {e}")),
        }
        let callers = self
            .livekit
            .sip_callers(&job.room)
            .await
            .map_err(|e| e.to_string())?;
        let caller = match &job.participant_identity {
            Some(who) => callers.into_iter().find(|c| &c.identity == who),
            None => callers.into_iter().next(),
        };
        let started = Timestamp::now();
        let Some(caller) = caller else {
            self.close(job, None, CallOutcome::Abandoned, started, (None, None))
                .await;
            return Ok(Overflow::CallerGone);
        };
        let leg = InboundLeg::from_attributes(&caller.identity, &caller.attributes);
        let played = self.play_busy(job, &leg.participant_identity).await;
        if let Err(e) = self
            .livekit
            .remove_participant(&job.room, &leg.participant_identity)
            .await
        {
            tracing::warn!(call.id = %call_id, error = %e, "cannot hang up the caller after the busy message");
        }
        let first_audio_ms = match &played {
            Ok(at) => Some(
                u64::try_from(at.duration_since(job.accepted_at).as_millis().max(0))
                    .unwrap_or(u64::MAX),
            ),
            Err(_) => None,
        };
        let error = played.as_ref().err().cloned();
        self.close(
            job,
            Some(leg),
            CallOutcome::AgentsBusy,
            started,
            (error, first_audio_ms),
        )
        .await;
        tracing::info!(call.id = %call_id, first_audio_ms, "no worker took the inbound call: busy message played");
        played.map(|_| Overflow::BusyMessage {
            first_audio_ms: first_audio_ms.unwrap_or_default(),
        })
    }

    /// Join the caller's room, speak the busy message in real time, leave. Returns when the
    /// first audio went out.
    async fn play_busy(&self, job: &InboundJob, caller: &str) -> Result<Timestamp, String> {
        let (rate, pcm) = self.busy_audio.get(self).await?;
        let url = self.config.livekit.url.clone().unwrap_or_default();
        let token = crate::voice::token(self, &job.room, &format!("agent-{}", job.call_id))?;
        let options = if self.config.agent.media_loopback {
            Options::loopback()
        } else {
            Options::default()
        };
        let transport = Transport::connect(&url, &token, options)
            .await
            .map_err(|e| format!("cannot join the caller's room: {e}"))?;
        let track = transport
            .publish_audio("agent", rate)
            .await
            .map_err(|e| format!("cannot publish the busy message: {e}"))?;
        // livekit-sip answers the caller once it has subscribed to this track; audio pushed
        // before that is lost. Wait for the leg to be `active` (bounded: play regardless after).
        let answered = tokio::time::Instant::now() + ANSWER_WAIT;
        while tokio::time::Instant::now() < answered {
            let active = self
                .livekit
                .sip_callers(&job.room)
                .await
                .ok()
                .and_then(|c| c.into_iter().find(|c| c.identity == caller))
                .is_some_and(|c| {
                    c.attributes
                        .get(callfleet_livekit::SIP_CALL_STATUS)
                        .map(String::as_str)
                        == Some("active")
                });
            if active {
                break;
            }
            // Every busy caller of a burst polls: keep LiveKit's API load low.
            tokio::time::sleep(ANSWER_POLL).await;
        }
        let frame = (rate / 50) as usize;
        let mut first = None;
        // Paced at real time, a few frames ahead (livekit-sip keeps a short jitter buffer).
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for chunk in pcm.chunks(frame) {
            tick.tick().await;
            track.push(chunk).await.map_err(|e| e.to_string())?;
            first.get_or_insert_with(Timestamp::now);
        }
        // Let the last frames play out before the caller is hung up.
        tokio::time::sleep(Duration::from_millis(400)).await;
        if let Err(e) = transport.leave().await {
            tracing::debug!(call.id = %job.call_id, error = %e, "leaving the room");
        }
        first.ok_or_else(|| "the busy message had no audio".into())
    }

    /// The call's final summary and state, as the worker's `settle` would write them.
    async fn close(
        &self,
        inbound: &InboundJob,
        leg: Option<InboundLeg>,
        outcome: CallOutcome,
        started: Timestamp,
        (error, first_audio_ms): (Option<String>, Option<u64>),
    ) {
        let mut req = provisional(inbound);
        if let Some(leg) = &leg {
            req.destination = callfleet_domain::PhoneNumber::as_reported(
                leg.called_number.as_deref().unwrap_or_default(),
            );
            req.caller_number = leg
                .caller_number
                .as_deref()
                .map(callfleet_domain::PhoneNumber::as_reported);
        }
        req.inbound = leg;
        let now = Timestamp::now();
        let error = error.or_else(|| {
            Some(match outcome {
                CallOutcome::AgentsBusy => format!(
                    "no worker was free within inbound.max_wait_secs ({} s): the caller heard the busy message",
                    self.config.inbound.max_wait_secs
                ),
                _ => "the caller hung up before an agent took the call".to_owned(),
            })
        });
        let record = AttemptRecord {
            attempt: 1,
            outcome,
            started_at: inbound.accepted_at,
            ended_at: now,
            sip: None,
            error: error.clone(),
        };
        let answered = outcome == CallOutcome::AgentsBusy;
        let mut summary = summary::build(
            self,
            &req,
            Parts {
                attempt: 1,
                attempts: vec![record],
                outcome,
                end_reason: if answered {
                    EndReason::AgentHangup
                } else {
                    EndReason::CalleeHangup
                },
                sip: None,
                session_start: started,
                call_start: answered.then_some(inbound.accepted_at),
                call_end: answered.then_some(now),
                recording: Recording::default(),
                error,
                estimate: None,
            },
        );
        // From LiveKit's offer (the caller was in the room) to the busy message's first audio.
        summary.first_agent_audio_ms = first_audio_ms;
        let job = Job {
            req,
            attempt: 1,
            infra_retries: 0,
            delivered: 0,
            generation: 0,
            campaign_job: false,
            timezone: None,
            inbound: None,
        };
        crate::settle::finalize(self, &job, summary).await;
    }
}
