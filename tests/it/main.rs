//! Integration tests against real servers: nats-server and livekit-server from `.tools/bin`
//! (`make setup`), the real `callfleet` binary, and an in-test webhook receiver.
//!
//! Prefixes: `bus_` the JetStream layer alone, `e2e_` whole-fleet flows, `ingress_` HTTP contract, `notifier_` delivery,
//! `contract_` generated files and config, `fault_` kills and restarts, `newcomer_` `make run`
//! as a new user runs it.

mod bus;
mod campaigns;
mod contracts;
mod defects;
mod e2e;
mod fuzz;
mod ingress;
mod media;
mod newcomer;
mod notifier;
mod rig;
mod tel_faults;
mod telephony;
