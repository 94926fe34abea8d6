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
//!    any server message resets a `ping_timeout` s deadline.
//! 8. [`Transport::leave`] sends `LeaveRequest{CLIENT_INITIATED, DISCONNECT}`,
//!    closes the socket and both peer connections.
//! 9. Loss: ping timeout, a closed socket, a failed peer connection, or a server
//!    `leave` whose action is not DISCONNECT. With `Options::reconnect_attempts > 0`
//!    the transport emits [`Event::Reconnecting`] and then:
//!    * **resume** (signal loss or ping timeout while the subscriber PC is still
//!      connected, or a server `leave` with action RESUME): new WebSocket with
//!      `&reconnect=1&sid=<PA_sid>&reconnect_reason=1`, first message
//!      `ReconnectResponse`; we send `SyncState{answer, offer (the subscriber's
//!      current local/remote SDP), subscription, publish_tracks}` and an
//!      ICE-restart offer on the publisher; the server ICE-restarts the
//!      subscriber with a new offer. Same participant, same tracks; other
//!      participants see nothing.
//!    * otherwise, or if the resume is refused or times out, a **full rejoin**
//!      (same URL and token, new WebSocket, new peer connections, backoff 0.25 s
//!      doubling to 5 s), publishing the local tracks again (same `cid` and
//!      WebRTC track, new sid; the [`LocalAudioTrack`] handle keeps working).
//!
//!    Either ends with [`Event::Reconnected`]. When attempts run out, or on a
//!    server `leave` with action DISCONNECT (removed, room deleted, duplicate
//!    identity), the transport ends with [`Event::Disconnected`].
//!
//! **DTMF.** Before its first offer the client creates `_reliable` (ordered) and `_lossy`
//! data channels on the publisher, as the SDKs do; [`Transport::send_dtmf`] sends a
//! `DataPacket{kind: RELIABLE, sequence, SipDtmf{code, digit}}` on `_reliable`
//! (negotiating the publisher first if nothing was published); livekit-sip turns it into
//! RFC 4733 toward its callee. The server forwards the room's data on channels it opens
//! on the subscriber; a `SipDtmf` there (livekit-sip's, when the callee pressed a key)
//! becomes [`Event::Dtmf`] with the sender's identity, which the server fills in.
//!
//! ## Implemented
//! Join, auto-subscribe, Opus decode to 48 kHz mono i16 20 ms frames (with
//! packet-loss concealment for small gaps), publishing any number of mono
//! audio tracks from PCM at 8-192 kHz (resampled to 48 kHz, 20 ms Opus at
//! 32 kbit/s, in-band FEC), mute, participant and track events, keepalive,
//! loss detection, resume and full rejoin, clean leave, DTMF both ways (`SipDtmf` data packets).
//!
//! ## Not implemented
//! * Resume is tried once per loss; it does not apply ICE servers from the
//!   `ReconnectResponse`, does not list our data channels in `SyncState`, and
//!   replays no data: a key sent while reconnecting fails rather than waits.
//!   A full rejoin changes the participant and track sids and loses a few
//!   hundred ms of audio.
//! * Video, data packets other than `SipDtmf` (user packets, RPC, streams; they are
//!   received and dropped), simulcast, E2EE, RED, DTX, selective
//!   subscription, `wss://` (TLS) URLs, region failover, the `/rtc/v1` single
//!   PC path, jitter buffering (packets are decoded in arrival order; late ones
//!   are dropped).
//! * `LocalAudioTrack::push` does not pace; feed it in real time.
//!
//! ## Behaviour worth knowing
//! * Presence is per identity: a participant that rejoins (same identity, new
//!   sid) replaces its old session without `ParticipantLeft`/`Joined`; only its
//!   old tracks are unsubscribed.
//! * livekit-server announces a participant that publishes nothing with a
//!   delay (~3 s seen with v1.13.5); one that publishes is announced with its track.
//! * While a remote track is muted the SFU may still send a few Opus silence
//!   frames; expect silent [`AudioFrame`]s, not necessarily none.
//! * Events and audio are `tokio::sync::broadcast` receivers: a receiver that
//!   falls behind by more than the capacity gets `Lagged` and loses the oldest.
//! * ICE: with [`Options::loopback`] only 127.0.0.1 UDP host candidates are
//!   gathered (the server must offer loopback candidates too; see the test
//!   harness config). Otherwise webrtc-rs gathers on all interfaces and uses
//!   the STUN/TURN servers from the join response.
//!
//! ## Codemap
//!
//! Modules use only those below them (no import cycles):
//!
//! - [`Transport`] (`transport`): the user-facing handle; joins, then spawns the session task.
//! - `session`: the task's loop (serve, resume, rejoin) -> `handlers`: what each signal
//!   message, peer event and `command::Command` does. Both are methods on
//!   `state::Session`, the state that outlives one connection.
//! - `conn`: one connection (signal socket + publisher/subscriber peers) over `signal`, `peer`.
//! - `command` (commands, pending publications, loop endings) -> `track` ([`LocalAudioTrack`],
//!   remote track pumps; reaches the session through `track::SessionLink`).
//! - Leaves: [`Options`], [`Event`]/[`AudioFrame`] (`events`), `roster`, [`audio`] (Opus,
//!   resampling), [`data`] (DTMF keys and their data packets), [`Error`], [`tone`].
#![forbid(unsafe_code)]

pub mod audio;
mod command;
mod conn;
pub mod data;
mod error;
mod events;
mod handlers;
mod options;
mod peer;
mod roster;
mod session;
pub mod signal;
mod state;
pub mod tone;
mod track;
mod transport;

pub use error::{Error, Result};
pub use events::{AudioFrame, Event};
pub use options::Options;
pub use track::LocalAudioTrack;
pub use transport::{DTMF_INTERVAL, Transport};
