//! The session task: owns the signal connection and both peer connections,
//! and serialises everything that happens to them (signal messages, ICE
//! candidates, user commands, keepalive) in one `select!` loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use livekit_protocol as proto;
use proto::signal_request::Message as Req;
use proto::signal_response::Message as Res;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::{Instant, sleep_until};
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

use crate::audio::Encoder;
use crate::error::{Error, Result};
use crate::events::{AudioFrame, Event};
use crate::peer::{Peer, PeerEvent, Target, opus_capability};
use crate::roster::{Roster, split_stream_id};
use crate::track::{LocalAudioTrack, pump_remote};

/// What the user-facing handles ask of the session.
pub enum Command {
    Publish { name: String, sample_rate: u32, reply: oneshot::Sender<Result<LocalAudioTrack>> },
    Mute { sid: String, muted: bool },
    Leave { reply: oneshot::Sender<()> },
}

struct PendingPublish {
    rate: u32,
    rtc: Arc<TrackLocalStaticSample>,
    reply: oneshot::Sender<Result<LocalAudioTrack>>,
}

/// Everything the session loop owns.
pub struct Session {
    pub signal: crate::signal::Signal,
    pub subscriber: Peer,
    pub publisher: Peer,
    pub peer_rx: mpsc::UnboundedReceiver<PeerEvent>,
    pub cmd_rx: mpsc::UnboundedReceiver<Command>,
    pub cmd_tx: mpsc::UnboundedSender<Command>,
    pub events: broadcast::Sender<Event>,
    pub audio: broadcast::Sender<AudioFrame>,
    pub roster: Roster,
    pending: HashMap<String, PendingPublish>,
    next_cid: u32,
    offer_in_flight: bool,
    offer_again: bool,
    offer_id: u32,
}

impl Session {
    pub fn new(
        signal: crate::signal::Signal,
        subscriber: Peer,
        publisher: Peer,
        peer_rx: mpsc::UnboundedReceiver<PeerEvent>,
        cmd: (mpsc::UnboundedSender<Command>, mpsc::UnboundedReceiver<Command>),
        events: broadcast::Sender<Event>,
        audio: broadcast::Sender<AudioFrame>,
    ) -> Self {
        let local_sid = signal.join.participant.as_ref().map(|p| p.sid.clone()).unwrap_or_default();
        Self {
            signal,
            subscriber,
            publisher,
            peer_rx,
            cmd_tx: cmd.0,
            cmd_rx: cmd.1,
            events,
            audio,
            roster: Roster::new(local_sid),
            pending: HashMap::new(),
            next_cid: 0,
            offer_in_flight: false,
            offer_again: false,
            offer_id: 0,
        }
    }

    fn emit(&self, e: Event) {
        tracing::debug!(event = ?e, "event");
        let _ = self.events.send(e);
    }

    fn send(&self, m: Req) {
        let _ = self.signal.tx.send(m);
    }

    /// Runs until leave, server leave, or connection loss; then tears down.
    pub async fn run(mut self) {
        let join = self.signal.join.clone();
        let mut out = Vec::new();
        self.roster.update(&join.other_participants, &mut out);
        out.into_iter().for_each(|e| self.emit(e));

        let ping_every = Duration::from_secs(u64::try_from(join.ping_interval.max(0)).unwrap_or(0));
        let ping_timeout = Duration::from_secs(u64::try_from(join.ping_timeout.max(0)).unwrap_or(0));
        let keepalive = !ping_every.is_zero() && !ping_timeout.is_zero();
        // Far future when the server asked for no keepalive.
        let idle = if keepalive { ping_timeout } else { Duration::from_secs(86_400 * 365) };
        let mut ping = tokio::time::interval(if keepalive { ping_every } else { idle });
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let dead_at = sleep_until(Instant::now() + idle);
        tokio::pin!(dead_at);
        let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<String>();
        let mut leave_reply = None;

        let reason = loop {
            tokio::select! {
                msg = self.signal.rx.recv() => match msg {
                    None => break "signal connection lost".to_owned(),
                    Some(m) => {
                        dead_at.as_mut().reset(Instant::now() + idle);
                        if let Some(reason) = self.on_signal(m).await {
                            break reason;
                        }
                    }
                },
                Some(ev) = self.peer_rx.recv() => {
                    if let Some(reason) = self.on_peer(ev, &ended_tx) {
                        break reason;
                    }
                }
                Some(sid) = ended_rx.recv() => {
                    if let Some(e) = self.roster.track_ended(&sid) { self.emit(e); }
                }
                cmd = self.cmd_rx.recv() => match cmd {
                    None => break "transport dropped".to_owned(),
                    Some(Command::Leave { reply }) => { leave_reply = Some(reply); break "client left".to_owned() }
                    Some(c) => self.on_command(c),
                },
                _ = ping.tick(), if keepalive => {
                    let now = unix_ms();
                    self.send(Req::Ping(now));
                    self.send(Req::PingReq(proto::Ping { timestamp: now, rtt: 0 }));
                }
                () = &mut dead_at, if keepalive => break "ping timeout".to_owned(),
            }
        };
        self.teardown(reason, leave_reply).await;
    }

    async fn teardown(mut self, reason: String, leave_reply: Option<oneshot::Sender<()>>) {
        tracing::info!(%reason, "session ending");
        let client_initiated = leave_reply.is_some() || reason == "transport dropped";
        if client_initiated {
            self.send(Req::Leave(proto::LeaveRequest {
                reason: proto::DisconnectReason::ClientInitiated as i32,
                action: proto::leave_request::Action::Disconnect as i32,
                ..Default::default()
            }));
        }
        // Dropping the sender lets the writer flush (Leave included) and close.
        let crate::signal::Signal { tx, mut writer, .. } = self.signal;
        drop(tx);
        if tokio::time::timeout(Duration::from_secs(2), &mut writer).await.is_err() {
            writer.abort();
        }
        let _ = self.publisher.pc.close().await;
        let _ = self.subscriber.pc.close().await;
        for (_, p) in self.pending.drain() {
            let _ = p.reply.send(Err(Error::Closed));
        }
        let mut out = Vec::new();
        self.roster.clear(&mut out);
        for e in out {
            let _ = self.events.send(e);
        }
        let _ = self.events.send(Event::Disconnected { reason });
        if let Some(r) = leave_reply {
            let _ = r.send(());
        }
    }

    /// Handles one server message; `Some(reason)` ends the session.
    async fn on_signal(&mut self, m: Res) -> Option<String> {
        match m {
            Res::Offer(sd) => {
                if let Err(e) = self.answer_subscriber(sd).await {
                    tracing::error!(error = %e, "subscriber negotiation failed");
                    return Some(format!("subscriber negotiation failed: {e}"));
                }
            }
            Res::Answer(sd) => {
                let result = match RTCSessionDescription::answer(sd.sdp) {
                    Ok(desc) => self.publisher.set_remote(desc).await,
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, "publisher answer rejected");
                    return Some(format!("publisher negotiation failed: {e}"));
                }
                self.offer_in_flight = false;
                if std::mem::take(&mut self.offer_again) {
                    self.negotiate_publisher().await;
                }
            }
            Res::Trickle(t) => {
                let peer = if t.target == Target::Publisher as i32 {
                    &mut self.publisher
                } else {
                    &mut self.subscriber
                };
                peer.add_candidate(&t.candidate_init).await;
            }
            Res::Update(u) => {
                let mut out = Vec::new();
                self.roster.update(&u.participants, &mut out);
                out.into_iter().for_each(|e| self.emit(e));
            }
            Res::TrackPublished(p) => self.on_track_published(p).await,
            Res::Leave(l) => {
                let reason = proto::DisconnectReason::try_from(l.reason)
                    .map(|r| r.as_str_name().to_owned())
                    .unwrap_or_else(|_| l.reason.to_string());
                return Some(format!("server sent leave: {reason}"));
            }
            Res::RequestResponse(r) if r.reason != 0 => {
                tracing::warn!(?r, "server rejected a request");
            }
            other => tracing::trace!(?other, "signal message ignored"),
        }
        None
    }

    async fn answer_subscriber(&mut self, sd: proto::SessionDescription) -> Result<()> {
        self.subscriber.set_remote(RTCSessionDescription::offer(sd.sdp)?).await?;
        let answer = self.subscriber.pc.create_answer(None).await?;
        self.subscriber.pc.set_local_description(answer.clone()).await?;
        self.send(Req::Answer(proto::SessionDescription {
            r#type: "answer".into(),
            sdp: answer.sdp,
            id: sd.id,
            ..Default::default()
        }));
        Ok(())
    }

    /// Offers on the publisher connection, or queues one more round if an
    /// offer is already waiting for its answer.
    async fn negotiate_publisher(&mut self) {
        if self.offer_in_flight {
            self.offer_again = true;
            return;
        }
        let pc = &self.publisher.pc;
        let offer = match pc.create_offer(None).await {
            Ok(o) => o,
            Err(e) => return tracing::error!(error = %e, "create offer"),
        };
        if let Err(e) = pc.set_local_description(offer.clone()).await {
            return tracing::error!(error = %e, "set local offer");
        }
        self.offer_in_flight = true;
        self.offer_id += 1;
        self.send(Req::Offer(proto::SessionDescription {
            r#type: "offer".into(),
            sdp: offer.sdp,
            id: self.offer_id,
            ..Default::default()
        }));
    }

    async fn on_track_published(&mut self, p: proto::TrackPublishedResponse) {
        let Some(pending) = self.pending.remove(&p.cid) else {
            return tracing::warn!(cid = %p.cid, "track published for unknown cid");
        };
        let sid = p.track.map(|t| t.sid).unwrap_or_default();
        let result = self.attach(&pending.rtc).await.and_then(|()| {
            let encoder = Encoder::new(pending.rate)?;
            Ok(LocalAudioTrack::new(sid.clone(), pending.rate, pending.rtc, encoder, self.cmd_tx.clone()))
        });
        if result.is_ok() {
            self.negotiate_publisher().await;
            self.emit(Event::LocalTrackPublished { track_sid: sid });
        }
        let _ = pending.reply.send(result);
    }

    /// Adds the track to the publisher as a send-only transceiver and drains
    /// its RTCP (webrtc-rs interceptors only run when RTCP is read).
    async fn attach(&self, rtc: &Arc<TrackLocalStaticSample>) -> Result<()> {
        let init = RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Sendonly, send_encodings: vec![] };
        let track: Arc<dyn TrackLocal + Send + Sync> = rtc.clone();
        let tr = self.publisher.pc.add_transceiver_from_track(track, Some(init)).await?;
        let sender = tr.sender().await;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1500];
            while sender.read(&mut buf).await.is_ok() {}
        });
        Ok(())
    }

    fn on_peer(&mut self, ev: PeerEvent, ended: &mpsc::UnboundedSender<String>) -> Option<String> {
        match ev {
            PeerEvent::Candidate { target, json } => {
                self.send(Req::Trickle(proto::TrickleRequest {
                    candidate_init: json,
                    target: target as i32,
                    ..Default::default()
                }));
            }
            PeerEvent::State { target, state } => {
                tracing::debug!(?target, %state, "peer connection state");
                if state == RTCPeerConnectionState::Failed {
                    return Some(format!("{target:?} peer connection failed"));
                }
            }
            PeerEvent::Track(track) => {
                let stream_id = track.stream_id();
                let (participant_sid, packed_track) = split_stream_id(&stream_id);
                let track_sid = packed_track.map(str::to_owned).unwrap_or_else(|| track.id());
                let identity = self.roster.identity_for(participant_sid, &track_sid);
                if let Some(e) = self.roster.subscribed(&track_sid, &identity) {
                    self.emit(e);
                }
                tokio::spawn(pump_remote(track, identity, track_sid, self.audio.clone(), ended.clone()));
            }
        }
        None
    }

    fn on_command(&mut self, c: Command) {
        match c {
            Command::Publish { name, sample_rate, reply } => {
                if let Err(e) = Encoder::new(sample_rate) {
                    let _ = reply.send(Err(e));
                    return;
                }
                self.next_cid += 1;
                let cid = format!("{}-audio-{}", self.roster_local_sid(), self.next_cid);
                let rtc = Arc::new(TrackLocalStaticSample::new(opus_capability(), cid.clone(), cid.clone()));
                self.send(Req::AddTrack(proto::AddTrackRequest {
                    cid: cid.clone(),
                    name,
                    r#type: proto::TrackType::Audio as i32,
                    source: proto::TrackSource::Microphone as i32,
                    ..Default::default()
                }));
                self.pending.insert(cid, PendingPublish { rate: sample_rate, rtc, reply });
            }
            Command::Mute { sid, muted } => self.send(Req::Mute(proto::MuteTrackRequest { sid, muted })),
            Command::Leave { .. } => {}
        }
    }

    fn roster_local_sid(&self) -> String {
        self.signal.join.participant.as_ref().map(|p| p.sid.clone()).unwrap_or_default()
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
