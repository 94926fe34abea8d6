//! # callfleet-media: a pure-Rust LiveKit room participant (audio only)
//!
//! LiveKit's own Rust SDK needs a prebuilt libwebrtc; this crate speaks the
//! same protocol with [`webrtc`] (webrtc-rs), libopus (through the `opus`
//! crate) and `rubato` for resampling.
//!
//! ## Message flow (LiveKit signal protocol 16, dual peer connection mode)
//!
//! 1. WebSocket to `ws://host:port/rtc?access_token=<jwt>&auto_subscribe=1&sdk=rust
//!    &version=<crate>&protocol=16` (see [`signal::join_url`]). Binary frames carry
//!    protobuf `SignalRequest` (client -> server) and `SignalResponse` (server -> client).
//! 2. The first response is `JoinResponse`: our participant, the others in the
//!    room, ICE servers, `subscriber_primary`, `ping_interval` / `ping_timeout`.
//!    We create two peer connections: *subscriber* and *publisher*.
//! 3. Subscriber: the server sends `offer` (target SUBSCRIBER, with an `id`);
//!    we set it, answer, and send `answer` with the same `id`. Remote tracks
//!    then arrive on it; LiveKit packs their stream id as `PA_sid|TR_sid`.
//! 4. Publisher (only once something is published, as the JS SDK does when
//!    `subscriber_primary`): `AddTrackRequest{cid, name, AUDIO, MICROPHONE}` ->
//!    `TrackPublishedResponse{cid, track.sid}` -> we add a send-only Opus
//!    transceiver whose track id is the `cid`, send `offer`, get `answer`.
//! 5. Both sides trickle ICE: `TrickleRequest{candidate_init: <RTCIceCandidateInit
//!    JSON>, target}`; candidates arriving before a remote description are queued.
//! 6. `ParticipantUpdate`s drive [`Event::ParticipantJoined`] / [`Event::ParticipantLeft`]
//!    and track removal ([`Event::TrackUnsubscribed`]).
//! 7. Keepalive: every `ping_interval` s we send `ping` (int64 ms) and `ping_req`;
//!    any server message resets a `ping_timeout` s deadline; expiry, a closed
//!    socket, a failed peer connection or a server `leave` end the session with
//!    [`Event::Disconnected`].
//! 8. [`Transport::leave`] sends `LeaveRequest{CLIENT_INITIATED, DISCONNECT}`,
//!    closes the socket and both peer connections.
//!
//! ## Implemented
//! Join, auto-subscribe, Opus decode to 48 kHz mono i16 20 ms frames (with
//! packet-loss concealment for small gaps), publishing any number of mono
//! audio tracks from PCM at 8-192 kHz (resampled to 48 kHz, 20 ms Opus at
//! 32 kbit/s, in-band FEC), mute, participant and track events, keepalive
//! and loss detection, clean leave.
//!
//! ## Not implemented
//! * **Reconnect**: neither ICE-restart resume (`reconnect=1&sid=..`) nor full
//!   rejoin. A lost connection ends the transport with `Disconnected`; the
//!   caller must `connect` again (a new participant session).
//! * Video, data channels / data packets (the server's subscriber data
//!   channels are accepted but ignored), simulcast, E2EE, RED, DTX, selective
//!   subscription, `wss://` (TLS) URLs, region failover, the `/rtc/v1` single
//!   PC path, jitter buffering (packets are decoded in arrival order; late ones
//!   are dropped).
//! * `LocalAudioTrack::push` does not pace; feed it in real time.
#![forbid(unsafe_code)]

pub mod audio;
mod error;
mod events;
mod peer;
mod roster;
mod session;
pub mod signal;
mod track;
mod transport;

pub use error::{Error, Result};
pub use events::{AudioFrame, Event};
pub use track::LocalAudioTrack;
pub use transport::{Options, Transport};
