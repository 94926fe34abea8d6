//! callfleet-media's transport alone against a real livekit-server (the `tests` crate's
//! launcher, rooms kept 300 s: `callfleet_tests::media::livekit`): tones both ways, mute, leave
//! and server loss, rejoin and resume, keepalive. Moved here from the media crate so that it
//! uses the one launcher without depending on this rig.

mod audio_roundtrip;
mod dtmf;
mod keepalive;
mod leave_events;
mod mute;
mod rejoin;
