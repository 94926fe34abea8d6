//! Integration tests against real servers: nats-server and livekit-server from `.tools/bin`
//! (`make setup`), the real `callfleet` binary, and an in-test webhook receiver.
//!
//! Prefixes: `bus_` the JetStream layer alone, `e2e_` whole-fleet flows, `ingress_` HTTP contract, `notifier_` delivery,
//! `contract_` generated files and config, `lk_webhook_` verified LiveKit webhooks (real livekit-server signing them), `conformance_` our provider clients
//! and stand-ins checked against the providers' official SDKs, `fault_` kills and restarts, `cluster_` the fleet on a 3-node NATS cluster under kills and
//! partitions, `inbound_rig_` the inbound caller rig (SIPp calling in through livekit-sip), `newcomer_` `make run`
//! as a new user runs it, `peer_` LiveKit Agents (the density bench's peer) on the real rig,
//! `agent_worker_` callfleet's own agent-worker client registered with a real livekit-server,
//! `sip_cli_` `callfleet sip` (LiveKit SIP provisioning from seed 004's files) against
//! livekit-server and LiveKit's `lk`, `dispatch_` LiveKit's dispatch reaching the queue through
//! `callfleet dispatcher`, `inbound_` inbound SIP callers (SIPp as a UAC) served or told busy.
//!
//! Modules: `media` is the media transport on a real call (through livekit-sip), while
//! `media_transport` is the transport alone against a livekit-server (tones, mute, leaving,
//! rejoin, keepalive); `voice_e2e` is the voice engine in the real worker on a real call, with
//! the provider stand-ins of `callfleet-standins`; `recording` is the worker's own recording
//! of such calls (served by the ingress, decoded by ffmpeg, salvaged after a kill -9);
//! `sphinx` is real speech recognition (pocketsphinx) behind the Deepgram protocol, through our
//! Deepgram client and Deepgram's SDK.
//!
//! `TEST_LOG` turns logs on (see `callfleet_standins::test_log`); `KEEP_TEMP=1` keeps every
//! server's logs and stores.

mod agent_worker;
mod answering;
mod bus;
mod campaigns;
mod cluster;
mod conformance;
mod contracts;
mod defects;
mod dispatch;
mod dtmf;
mod e2e;
mod fuzz;
mod inbound;
mod inbound_rig;
mod ingress;
mod livekit_events;
mod livekit_webhook;
mod media;
mod media_transport;
mod newcomer;
mod notifier;
mod peer;
mod recording;
mod rig;
mod scale;
mod sip_cli;
mod sphinx;
mod tel_faults;
mod telephony;
mod voice_e2e;
