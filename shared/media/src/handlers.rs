//! Session handlers: what each server message, peer connection event and
//! user command does to the session.

use std::sync::Arc;

use livekit_protocol as proto;
use proto::signal_request::Message as Req;
use proto::signal_response::Message as Res;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

use crate::audio::Encoder;
use crate::command::{Command, Ending, Pending, add_track};
use crate::conn::{Conn, send_when_open};
use crate::data;
use crate::events::Event;
use crate::peer::{PeerEvent, Target, opus_capability};
use crate::roster::split_stream_id;
use crate::state::Session;
use crate::track::{LocalAudioTrack, pump_remote};

impl Session {
    pub(crate) async fn on_signal(&mut self, conn: &mut Conn, m: Res) -> Option<Ending> {
        match m {
            Res::Offer(sd) => {
                if let Err(e) = conn.answer_subscriber(sd).await {
                    return Some(Ending::lost(format!("subscriber negotiation failed: {e}")));
                }
            }
            Res::Answer(sd) => {
                if let Err(e) = conn.on_answer(sd).await {
                    return Some(Ending::lost(format!("publisher negotiation failed: {e}")));
                }
            }
            Res::Trickle(t) => {
                let peer = if t.target == Target::Publisher as i32 {
                    &mut conn.publisher
                } else {
                    &mut conn.subscriber
                };
                peer.add_candidate(&t.candidate_init).await;
            }
            Res::Update(u) => {
                let mut out = Vec::new();
                self.roster.update(&u.participants, &mut out);
                self.emit_all(out);
            }
            Res::TrackPublished(p) => self.on_track_published(conn, p).await,
            Res::Leave(l) => {
                let reason = proto::DisconnectReason::try_from(l.reason)
                    .map(|r| r.as_str_name().to_owned())
                    .unwrap_or_else(|_| l.reason.to_string());
                let retry = l.action != proto::leave_request::Action::Disconnect as i32;
                return Some(Ending {
                    resume: l.action == proto::leave_request::Action::Resume as i32,
                    reason: format!("server sent leave: {reason}"),
                    retry,
                    leave: None,
                });
            }
            Res::RequestResponse(r) if r.reason != 0 => {
                tracing::warn!(?r, "server rejected a request")
            }
            other => tracing::trace!(?other, "signal message ignored"),
        }
        None
    }

    async fn on_track_published(&mut self, conn: &mut Conn, p: proto::TrackPublishedResponse) {
        let Some(pending) = self.pending.remove(&p.cid) else {
            return tracing::warn!(cid = %p.cid, "track published for unknown cid");
        };
        let sid = p.track.map(|t| t.sid).unwrap_or_default();
        match pending {
            Pending::Again(track) => {
                if let Err(e) = conn.attach(track.rtc()).await {
                    return tracing::error!(error = %e, "re-attaching local track");
                }
                track.set_sid(sid.clone());
            }
            Pending::New {
                name,
                rate,
                rtc,
                reply,
            } => {
                let result = conn.attach(&rtc).await.and_then(|()| {
                    let encoder = Encoder::new(rate)?;
                    Ok(LocalAudioTrack::new(
                        sid.clone(),
                        name,
                        rate,
                        rtc,
                        encoder,
                        Box::new(self.cmd_tx.clone()),
                    ))
                });
                let ok = result.as_ref().ok().cloned();
                let _ = reply.send(result);
                let Some(track) = ok else { return };
                self.published.push(track);
            }
        }
        conn.negotiate_publisher().await;
        self.emit(Event::LocalTrackPublished { track_sid: sid });
    }

    pub(crate) fn on_peer(&mut self, conn: &Conn, ev: PeerEvent) -> Option<Ending> {
        match ev {
            PeerEvent::Candidate { target, json } => {
                conn.send(Req::Trickle(proto::TrickleRequest {
                    candidate_init: json,
                    target: target as i32,
                    ..Default::default()
                }));
            }
            PeerEvent::State { target, state } => {
                tracing::debug!(?target, %state, "peer connection state");
                if state == RTCPeerConnectionState::Failed {
                    return Some(Ending::lost(format!("{target:?} peer connection failed")));
                }
            }
            PeerEvent::Data(bytes) => {
                if let Some(e) = data::event(&bytes) {
                    self.emit(e);
                }
            }
            PeerEvent::Track(track) => {
                let stream_id = track.stream_id();
                let (participant_sid, packed_track) = split_stream_id(&stream_id);
                let track_sid = packed_track
                    .map(str::to_owned)
                    .unwrap_or_else(|| track.id());
                let identity = self.roster.identity_for(participant_sid, &track_sid);
                if let Some(e) = self.roster.subscribed(&track_sid, &identity) {
                    self.emit(e);
                }
                let (audio, ended) = (self.audio.clone(), self.ended_tx.clone());
                tokio::spawn(pump_remote(track, identity, track_sid, audio, ended));
            }
        }
        None
    }

    pub(crate) async fn on_command(&mut self, conn: &mut Conn, c: Command) {
        match c {
            Command::Publish {
                name,
                sample_rate,
                reply,
            } => {
                if let Err(e) = Encoder::new(sample_rate) {
                    let _ = reply.send(Err(e));
                    return;
                }
                self.next_cid += 1;
                let cid = format!("{}-audio-{}", conn.me().sid, self.next_cid);
                let rtc = Arc::new(TrackLocalStaticSample::new(
                    opus_capability(),
                    cid.clone(),
                    cid.clone(),
                ));
                conn.send(add_track(rtc.id().to_owned(), name.clone(), false));
                self.pending.insert(
                    cid,
                    Pending::New {
                        name,
                        rate: sample_rate,
                        rtc,
                        reply,
                    },
                );
            }
            Command::Mute { sid, muted } => {
                conn.send(Req::Mute(proto::MuteTrackRequest { sid, muted }))
            }
            Command::Dtmf { digit, reply } => {
                self.data_seq += 1;
                let bytes = match data::dtmf_packet(digit, self.data_seq) {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                };
                conn.ensure_publisher().await;
                // The channel opens once the publisher is connected; the loop goes on meanwhile.
                let (channel, timeout) = (conn.reliable.clone(), self.opts.timeout);
                tokio::spawn(async move {
                    let _ = reply.send(send_when_open(channel, bytes, timeout).await);
                });
            }
            Command::Leave { .. } => {}
        }
    }
}
