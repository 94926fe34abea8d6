//! What the transport tells its user: room events and decoded remote audio.

/// A room event, delivered through [`crate::Transport::events`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Another participant is in the room (also sent for those already there at join).
    ParticipantJoined {
        /// The participant's identity (from its access token).
        identity: String,
    },
    /// Another participant left the room.
    ParticipantLeft {
        /// The participant's identity.
        identity: String,
    },
    /// A remote audio track is flowing into this transport; its frames
    /// arrive on [`crate::Transport::remote_audio`].
    TrackSubscribed {
        /// Identity of the publishing participant.
        identity: String,
        /// LiveKit track sid (`TR_...`).
        track_sid: String,
    },
    /// A remote track stopped (unpublished, or its participant left).
    TrackUnsubscribed {
        /// Identity of the publishing participant.
        identity: String,
        /// LiveKit track sid (`TR_...`).
        track_sid: String,
    },
    /// The server acknowledged a local track (`publish_audio` returned it too).
    LocalTrackPublished {
        /// LiveKit track sid assigned to the local track.
        track_sid: String,
    },
    /// The connection was lost; the transport is resuming it or, failing
    /// that, rejoining the room (same token, new participant session; then
    /// `TrackUnsubscribed` follows for every remote track).
    Reconnecting {
        /// What was lost (`signal connection lost`, `ping timeout`, ...).
        reason: String,
    },
    /// Back after [`Event::Reconnecting`]. After a resume nothing else
    /// changed; after a rejoin local tracks are being published again (new
    /// sids) and remote tracks come back with `TrackSubscribed`.
    Reconnected,
    /// A participant pressed a key: a `SipDtmf` data packet arrived (livekit-sip sends one
    /// when the callee's phone sends an RFC 4733 event).
    Dtmf {
        /// Identity of the sender (the SIP participant, for a callee's key).
        identity: String,
        /// The key: `0`-`9`, `*`, `#` or `A`-`D` (upper case).
        digit: char,
    },
    /// The transport is gone: left on purpose, removed by the server, or the
    /// connection was lost. No event follows this one.
    Disconnected {
        /// Why, in words (`client left`, `ping timeout`, `signal closed`, a server reason, ...).
        reason: String,
    },
}

/// 48 kHz mono PCM decoded from one remote track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// Identity of the publishing participant.
    pub identity: String,
    /// LiveKit track sid of the remote track.
    pub track_sid: String,
    /// Always 48000.
    pub sample_rate: u32,
    /// Mono samples; 960 (20 ms) or 480 (10 ms) of them.
    pub samples: Vec<i16>,
}
