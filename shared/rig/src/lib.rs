//! The local telephony rig's shared pieces. `callfleet dev` (`make run`) and the integration
//! tests start the same SIPp callee (`tests/sipp/callee.xml`) standing in for the phone
//! network; what it needs to run is defined once, here:
//!
//! - [`callee::write_audio`]: the raw G.711 files the scenario streams with `rtp_stream`
//!   (SIPp reads them when it loads the scenario and exits at once when one is missing), the
//!   spoken words among them copied from `.tools/audio/` (`make setup` speaks them);
//! - [`callee::args`]: its command line, with SIPp's overload watchdog relaxed so a busy
//!   machine doesn't end it;
//! - [`callee::options_ping`]: a readiness probe (SIPp answers `OPTIONS` with 200 under `-aa`),
//!   which proves the scenario loaded and the SIP socket is served, not just bound.
//!
//! No async runtime and no dependencies: the dev supervisor and the test rig each wrap these
//! in their own waiting.

pub mod callee;
