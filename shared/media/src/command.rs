//! What the user-facing handles ask of the session task ([`Command`]), what the session keeps
//! while the server answers ([`Pending`]), and why a connection's loop stopped ([`Ending`]).

use std::sync::Arc;

use livekit_protocol as proto;
use proto::signal_request::Message as Req;
use tokio::sync::{mpsc, oneshot};
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

use crate::error::{Error, Result};
use crate::track::{LocalAudioTrack, SessionLink};

/// What the user-facing handles ask of the session.
pub enum Command {
    Publish {
        name: String,
        sample_rate: u32,
        reply: oneshot::Sender<Result<LocalAudioTrack>>,
    },
    Mute {
        sid: String,
        muted: bool,
    },
    /// One DTMF key (already validated) as a `SipDtmf` data packet.
    Dtmf {
        digit: char,
        reply: oneshot::Sender<Result<()>>,
    },
    Leave {
        reply: oneshot::Sender<()>,
    },
}

/// An `AddTrackRequest` waiting for its `TrackPublishedResponse`.
pub(crate) enum Pending {
    New {
        name: String,
        rate: u32,
        rtc: Arc<TrackLocalStaticSample>,
        reply: oneshot::Sender<Result<LocalAudioTrack>>,
    },
    /// A track published before a rejoin, published again.
    Again(LocalAudioTrack),
}

/// Why a connection's loop stopped.
pub(crate) struct Ending {
    pub(crate) reason: String,
    /// Worth a rejoin (connection lost, not a decision by us or the server).
    pub(crate) retry: bool,
    /// Worth trying a resume (keep the peer connections) before a rejoin.
    pub(crate) resume: bool,
    /// Set when the user asked to leave (or dropped the transport).
    pub(crate) leave: Option<Option<oneshot::Sender<()>>>,
}

impl Ending {
    /// Lost in a way only a full rejoin can fix.
    pub(crate) fn lost(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            retry: true,
            resume: false,
            leave: None,
        }
    }

    /// Lost the signal connection only: the peer connections may be fine.
    pub(crate) fn signal_lost(reason: impl Into<String>) -> Self {
        Self {
            resume: true,
            ..Self::lost(reason)
        }
    }
}

/// A track reaches its session through the session's command channel.
impl SessionLink for mpsc::UnboundedSender<Command> {
    fn mute(&self, sid: String, muted: bool) -> Result<()> {
        self.send(Command::Mute { sid, muted })
            .map_err(|_| Error::Closed)
    }

    fn is_closed(&self) -> bool {
        mpsc::UnboundedSender::is_closed(self)
    }
}

/// An `AddTrackRequest` for a mono microphone track.
pub(crate) fn add_track(cid: String, name: String, muted: bool) -> Req {
    Req::AddTrack(proto::AddTrackRequest {
        cid,
        name,
        muted,
        r#type: proto::TrackType::Audio as i32,
        source: proto::TrackSource::Microphone as i32,
        ..Default::default()
    })
}
