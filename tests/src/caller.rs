//! The inbound caller rig: phones calling IN through livekit-sip. [`Telephony::inbound_trunk`]
//! and [`Telephony::dispatch_rule`] make the LiveKit side (through the API, `SIPClient`), and
//! [`Caller`] runs SIPp as a UAC (`tests/sipp/caller.xml`) placing N calls to a number of the
//! trunk, each from its own caller number and with its own `X-Customer-Id` header. The offer's
//! media address is the caller's RTP [`Tap`], so the tap records what every caller heard (one
//! source per call: livekit-sip's RTP port, which its 200 OK's SDP names), while SIPp streams
//! the caller's speech to livekit-sip. [`Caller::calls`] reads SIPp's message trace back into
//! one [`InboundCall`] per call: Call-ID, status, answer, downlink, what was heard, who hung up.
//!
//! livekit-sip v1.8.0 does not answer an inbound INVITE when it has put the caller in the room:
//! it sends 180 Ringing (again every second) until it has subscribed to an audio track someone
//! else published in the room (or a second SIP participant joins it), and only then 200 OK. With
//! nothing published, it rejects with 486 when the trunk's `ringing_timeout` (default 3 min)
//! runs out, or when the room is closed while ringing.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use jiff::Timestamp;
use livekit_api::services::sip::{CreateSIPDispatchRuleOptions, CreateSIPInboundTrunkOptions};
use livekit_protocol as proto;

use crate::{
    Telephony, TempDir,
    tap::{SPEECH_DBFS, Stream, Tap},
    telephony::{Owned, free_udp_port, spawn},
    tool, wait_for_logged, workspace_root,
};

/// The scenario, relative to the repository root.
pub const SCENARIO: &str = "tests/sipp/caller.xml";
/// The custom header every call carries (its value: [`CallerOptions::customer_ids`]).
pub const CUSTOMER_HEADER: &str = "X-Customer-Id";
/// The attribute livekit-sip makes of [`CUSTOMER_HEADER`] on a trunk that includes X- headers
/// (`include_headers: SIP_X_HEADERS`, as [`InboundTrunk::new`] sets): `sip.h.` and the
/// header's name in lower case.
pub const CUSTOMER_ATTR: &str = "sip.h.x-customer-id";
/// The caller's number, as livekit-sip puts it on the SIP participant.
pub const ATTR_PHONE_NUMBER: &str = "sip.phoneNumber";
/// The called number (the trunk's), as livekit-sip puts it on the SIP participant.
pub const ATTR_TRUNK_NUMBER: &str = "sip.trunkPhoneNumber";
/// The SIP Call-ID of the caller's INVITE, as livekit-sip puts it on the SIP participant.
pub const ATTR_CALL_ID_FULL: &str = "sip.callIDFull";
/// The audio file SIPp streams (written into its working directory by [`Caller::start`]).
const AUDIO_FILE: &str = "caller.ulaw";
/// How often (at most) SIPp may start again on fresh ports after losing a port race.
const START_ATTEMPTS: usize = 5;

/// An inbound trunk: the numbers it answers for and what it passes into the room.
#[derive(Debug, Clone)]
pub struct InboundTrunk {
    pub numbers: Vec<String>,
    /// Which of the INVITE's headers become `sip.h.<name in lower case>` attributes.
    pub include_headers: proto::SipHeaderOptions,
    /// Header name → attribute name, for single headers.
    pub headers_to_attributes: HashMap<String, String>,
    /// How long livekit-sip rings before it rejects (486) a call nobody answered; `None`: its
    /// default, 3 minutes.
    pub ringing_timeout: Option<Duration>,
    pub max_call_duration: Option<Duration>,
}

impl InboundTrunk {
    /// For `numbers`, passing every X- header as `sip.h.x-…` (so [`CUSTOMER_ATTR`]).
    pub fn new(numbers: &[&str]) -> Self {
        Self {
            numbers: numbers.iter().map(|n| (*n).to_owned()).collect(),
            include_headers: proto::SipHeaderOptions::SipXHeaders,
            headers_to_attributes: HashMap::new(),
            ringing_timeout: None,
            max_call_duration: None,
        }
    }
}

/// How a dispatch rule picks the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatch {
    /// A room per caller: `<prefix>_<caller number>_<random>`.
    Individual { room_prefix: String },
    /// Every caller into one room.
    Direct { room: String },
}

/// An agent the room's configuration dispatches when the rule creates the room
/// (`room_config.agents`, LiveKit's `RoomAgentDispatch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentDispatch {
    pub agent_name: String,
    pub metadata: String,
}

/// A dispatch rule: [`DispatchRule::individual`] or [`DispatchRule::direct`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchRule {
    pub name: String,
    pub dispatch: Dispatch,
    /// The trunks it applies to (empty: every trunk).
    pub trunk_ids: Vec<String>,
    pub agent: Option<AgentDispatch>,
    /// Added to every SIP participant's attributes.
    pub attributes: HashMap<String, String>,
}

impl DispatchRule {
    /// A room per caller, named `<room_prefix>_<caller number>_<random>`.
    pub fn individual(room_prefix: &str) -> Self {
        Self::new(Dispatch::Individual {
            room_prefix: room_prefix.to_owned(),
        })
    }

    /// Every caller into `room`.
    pub fn direct(room: &str) -> Self {
        Self::new(Dispatch::Direct {
            room: room.to_owned(),
        })
    }

    fn new(dispatch: Dispatch) -> Self {
        Self {
            name: format!("rule-{}", uuid::Uuid::new_v4().simple()),
            dispatch,
            trunk_ids: Vec::new(),
            agent: None,
            attributes: HashMap::new(),
        }
    }

    /// Only for these trunks.
    pub fn trunks(mut self, ids: &[&str]) -> Self {
        self.trunk_ids = ids.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    /// Dispatch `agent_name` with `metadata` into every room the rule creates.
    pub fn agent(mut self, agent_name: &str, metadata: &str) -> Self {
        self.agent = Some(AgentDispatch {
            agent_name: agent_name.to_owned(),
            metadata: metadata.to_owned(),
        });
        self
    }
}

impl Telephony {
    /// An inbound trunk for `numbers` (X- headers passed as attributes, livekit-sip's default
    /// ringing timeout); its id.
    pub async fn inbound_trunk(&self, name: &str, numbers: &[&str]) -> String {
        self.inbound_trunk_with(name, InboundTrunk::new(numbers))
            .await
    }

    /// An inbound trunk as `trunk` says; its id. livekit-api 0.10 cannot create one with
    /// `include_headers`, so that is set by replacing the trunk just created.
    pub async fn inbound_trunk_with(&self, name: &str, trunk: InboundTrunk) -> String {
        let client = self.sip_client();
        let options = CreateSIPInboundTrunkOptions {
            headers_to_attributes: Some(trunk.headers_to_attributes.clone()),
            ringing_timeout: trunk.ringing_timeout,
            max_call_duration: trunk.max_call_duration,
            ..Default::default()
        };
        let created = client
            .create_sip_inbound_trunk(name.to_owned(), trunk.numbers.clone(), options)
            .await
            .unwrap_or_else(|e| panic!("CreateSIPInboundTrunk {name}: {e}"));
        if trunk.include_headers == proto::SipHeaderOptions::SipNoHeaders {
            return created.sip_trunk_id;
        }
        let id = created.sip_trunk_id.clone();
        let replaced = client
            .update_sip_inbound_trunk_replace(
                id.clone(),
                proto::SipInboundTrunkInfo {
                    include_headers: trunk.include_headers as i32,
                    ..created
                },
            )
            .await
            .unwrap_or_else(|e| panic!("UpdateSIPInboundTrunk {name} (include_headers): {e}"));
        assert_eq!(
            replaced.include_headers, trunk.include_headers as i32,
            "the trunk keeps include_headers"
        );
        id
    }

    /// A dispatch rule; its id.
    pub async fn dispatch_rule(&self, rule: &DispatchRule) -> String {
        let inner = match &rule.dispatch {
            Dispatch::Individual { room_prefix } => {
                proto::sip_dispatch_rule::Rule::DispatchRuleIndividual(
                    proto::SipDispatchRuleIndividual {
                        room_prefix: room_prefix.clone(),
                        ..Default::default()
                    },
                )
            }
            Dispatch::Direct { room } => {
                proto::sip_dispatch_rule::Rule::DispatchRuleDirect(proto::SipDispatchRuleDirect {
                    room_name: room.clone(),
                    ..Default::default()
                })
            }
        };
        let room_config = rule.agent.as_ref().map(|a| proto::RoomConfiguration {
            agents: vec![proto::RoomAgentDispatch {
                agent_name: a.agent_name.clone(),
                metadata: a.metadata.clone(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let options = CreateSIPDispatchRuleOptions {
            name: rule.name.clone(),
            trunk_ids: rule.trunk_ids.clone(),
            attributes: rule.attributes.clone(),
            room_config,
            ..Default::default()
        };
        self.sip_client()
            .create_sip_dispatch_rule(inner, options)
            .await
            .unwrap_or_else(|e| panic!("CreateSIPDispatchRule {}: {e}", rule.name))
            .sip_dispatch_rule_id
    }

    /// Start a [`Caller`] dialing `called` (a number of an inbound trunk) on this livekit-sip.
    pub async fn caller(&self, called: &str, options: CallerOptions) -> Caller {
        Caller::start(self.sip_port, called, options).await
    }
}

/// What each caller says: SIPp streams it, looped, from the answer to the hang-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerAudio {
    /// "Hello, who is this?" (`.tools/audio/hello-8k.ulaw`), then silence, every
    /// `callfleet_rig::callee::TALK_PERIOD_SECS` (6 s): a person who talks and listens.
    Talk,
    /// A 1 kHz tone at half of full scale, without a pause.
    Tone,
    /// Digital silence (RTP keeps flowing, as from a muted phone).
    Silence,
}

/// How the [`Caller`] places its calls.
#[derive(Debug, Clone)]
pub struct CallerOptions {
    /// How many calls in all (SIPp's `-m`); SIPp exits when the last has ended.
    pub calls: usize,
    /// At most this many at once (`-l`).
    pub concurrency: usize,
    /// New calls per second (`-r 1 -rp 1000/rate`).
    pub rate_per_sec: f64,
    /// Call `i` hangs up `talk[i]` after the answer (the last entry for calls past the list's
    /// end); zero, or an empty list, stays until the far end hangs up. In steps of 200 ms.
    pub talk: Vec<Duration>,
    /// Call `i`'s caller number is `<number_prefix><i, 4 digits>`.
    pub number_prefix: String,
    /// Call `i`'s `X-Customer-Id` is `<customer_prefix><i>`.
    pub customer_prefix: String,
    pub audio: CallerAudio,
    /// SIPp's global timeout (`-timeout`, scaled for the machine's load): the bound on the
    /// whole run, ringing and talking included. Calls still up then are left unfinished.
    pub limit: Duration,
}

impl Default for CallerOptions {
    fn default() -> Self {
        Self {
            calls: 1,
            concurrency: 10,
            rate_per_sec: 10.0,
            talk: Vec::new(),
            number_prefix: format!("+1555{:03}", std::process::id() % 1000),
            customer_prefix: "cust-".to_owned(),
            audio: CallerAudio::Talk,
            limit: Duration::from_secs(120),
        }
    }
}

impl CallerOptions {
    /// `calls` calls, all at once, each staying until the far end hangs up.
    pub fn calls(calls: usize) -> Self {
        Self {
            calls,
            concurrency: calls.max(1),
            ..Self::default()
        }
    }

    /// Call `i`'s caller number.
    pub fn number(&self, i: usize) -> String {
        format!("{}{i:04}", self.number_prefix)
    }

    /// Call `i`'s `X-Customer-Id`.
    pub fn customer_id(&self, i: usize) -> String {
        format!("{}{i}", self.customer_prefix)
    }

    fn talk_ms(&self, i: usize) -> u128 {
        self.talk
            .get(i)
            .or(self.talk.last())
            .map_or(0, Duration::as_millis)
    }

    /// SIPp's injection file: one line per call (see `tests/sipp/caller.xml`).
    fn injection(&self) -> String {
        let mut out = String::from("SEQUENTIAL\n");
        for i in 0..self.calls {
            out.push_str(&format!(
                "{};{};{};\n",
                self.number(i),
                self.customer_id(i),
                self.talk_ms(i)
            ));
        }
        out
    }
}

/// Who ended an answered call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The caller sent BYE (its talk time ran out).
    Caller,
    /// The far end (livekit-sip: the room closed, the participant was removed, an agent hung
    /// up) sent BYE.
    FarEnd,
}

/// One BYE: who sent it, when, and whether it was answered 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hangup {
    pub by: Side,
    pub at: Timestamp,
    pub confirmed: bool,
}

/// One inbound call, as the caller saw it.
#[derive(Debug, Clone)]
pub struct InboundCall {
    /// The SIP Call-ID of the INVITE.
    pub call_id: String,
    /// The From user.
    pub caller_number: String,
    /// The call's index in the injection file (from the caller number), if it is one of ours.
    pub index: Option<usize>,
    pub invited_at: Timestamp,
    /// The first 180 Ringing.
    pub ringing_at: Option<Timestamp>,
    /// How many 180s arrived (livekit-sip repeats it every second while ringing).
    pub ringing_count: usize,
    /// The final answer to the INVITE, if one arrived.
    pub status: Option<u16>,
    /// When the final answer arrived.
    pub final_at: Option<Timestamp>,
    /// When the 200 OK arrived.
    pub answered_at: Option<Timestamp>,
    /// livekit-sip's RTP address for the call (the 200 OK's SDP): the tap's source of this
    /// call's downlink, and where SIPp sent the caller's speech.
    pub downlink: Option<SocketAddr>,
    /// RTP packets of the downlink that reached the tap.
    pub downlink_packets: usize,
    /// The first downlink frame at or above [`SPEECH_DBFS`].
    pub first_heard_at: Option<Timestamp>,
    /// Milliseconds of downlink audio at or above [`SPEECH_DBFS`] in all.
    pub heard_ms: u64,
    /// The first BYE of the call, if any.
    pub hangup: Option<Hangup>,
}

impl InboundCall {
    /// From the INVITE to the 200 OK.
    pub fn ring_time(&self) -> Option<Duration> {
        span(self.invited_at, self.answered_at?)
    }

    /// From the 200 OK to the hang-up.
    pub fn talk_time(&self) -> Option<Duration> {
        span(self.answered_at?, self.hangup?.at)
    }

    /// From the 200 OK to the first non-silent downlink frame.
    pub fn time_to_audio(&self) -> Option<Duration> {
        span(self.answered_at?, self.first_heard_at?)
    }

    /// Over: rejected, or hung up (with the BYE answered).
    pub fn is_over(&self) -> bool {
        self.status.is_some_and(|s| s >= 300) || self.hangup.is_some_and(|h| h.confirmed)
    }

    /// One line for logs and failure messages.
    pub fn line(&self) -> String {
        let ms = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{}", d.as_millis()));
        format!(
            "{} from {} status {} ring {} ms, audio after {} ms, heard {} ms of {} packets, hangup {:?} after {} ms",
            self.call_id,
            self.caller_number,
            self.status.map_or("-".to_owned(), |s| s.to_string()),
            ms(self.ring_time()),
            ms(self.time_to_audio()),
            self.heard_ms,
            self.downlink_packets,
            self.hangup.map(|h| h.by),
            ms(self.talk_time()),
        )
    }
}

fn span(from: Timestamp, to: Timestamp) -> Option<Duration> {
    Duration::try_from(to.duration_since(from)).ok()
}

/// SIPp placing inbound calls, with the tap its offers name; killed on Drop.
pub struct Caller {
    pub options: CallerOptions,
    pub called: String,
    /// SIPp's SIP port (UDP, 127.0.0.1).
    pub port: u16,
    tap: Tap,
    dir: TempDir,
    child: Owned,
    /// The same moment on both clocks: the tap's `Instant`s become timestamps through it.
    epoch: (Instant, Timestamp),
}

impl Caller {
    /// Start SIPp dialing `called` at livekit-sip on `sip_port`. Returns once it sent its
    /// first INVITE.
    pub async fn start(sip_port: u16, called: &str, options: CallerOptions) -> Self {
        let dir = TempDir::new("caller");
        let tap = Tap::start().await;
        let root = workspace_root();
        let scenario = root.join(SCENARIO);
        assert!(
            scenario.exists(),
            "{} is missing (run from the repository root)",
            scenario.display()
        );
        std::fs::write(dir.0.join(AUDIO_FILE), audio(options.audio, &root))
            .unwrap_or_else(|e| panic!("cannot write the caller's audio: {e}"));
        std::fs::write(dir.0.join("callers.csv"), options.injection())
            .unwrap_or_else(|e| panic!("cannot write the caller's injection file: {e}"));
        let logs = [dir.0.join("stdout.log"), dir.0.join("errors.log")];
        let logs: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();
        // SIPp binds UDP for SIP and for RTP at the media port and the two above it. A port
        // checked free can be taken before SIPp binds it; SIPp then exits at once, and it is
        // started again on other ports.
        for _ in 0..START_ATTEMPTS {
            let (port, media) = (free_udp_port(0), free_udp_port(2));
            let mut cmd = Command::new(tool("sipp"));
            let launch = Launch {
                scenario: &scenario,
                called,
                sip_port,
                port,
                media,
                tap_port: tap.port(),
                log_dir: &dir.0,
            };
            cmd.current_dir(&dir.0).args(args(&options, &launch));
            let epoch = (Instant::now(), Timestamp::now());
            let mut child = spawn(cmd, "sipp (caller)", Some(dir.0.join("stdout.log")));
            let messages = dir.0.join("messages.log");
            let started = wait_for_logged(
                "the sipp caller's first INVITE (or its exit)",
                Duration::from_secs(10),
                &logs,
                || {
                    let exited = child.0.try_wait().ok().flatten().is_some();
                    let sent = std::fs::read_to_string(&messages)
                        .is_ok_and(|m| m.contains("message sent"));
                    async move {
                        if sent {
                            Some(true)
                        } else if exited {
                            Some(false)
                        } else {
                            None
                        }
                    }
                },
            )
            .await;
            if started {
                return Self {
                    options,
                    called: called.to_owned(),
                    port,
                    tap,
                    dir,
                    child,
                    epoch,
                };
            }
            eprintln!("the sipp caller exited at start (ports taken?); trying other ports");
        }
        let tails: String = logs.iter().map(|p| crate::log_tail(p, 30)).collect();
        panic!("the sipp caller exited at start {START_ATTEMPTS} times{tails}");
    }

    /// What the callers heard: one stream per call's downlink.
    pub fn tap(&self) -> &Tap {
        &self.tap
    }

    /// Has SIPp exited (every call over, or its global timeout)?
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.0.try_wait().ok().flatten()
    }

    /// Every call placed so far, in the order of their INVITEs.
    pub fn calls(&self) -> Vec<InboundCall> {
        let log = std::fs::read_to_string(self.dir.0.join("messages.log")).unwrap_or_default();
        let streams = self.tap.streams();
        let mut calls = assemble(&parse_trace(&log));
        for call in &mut calls {
            call.index = self.index_of(&call.caller_number);
            let Some(stream) = call
                .downlink
                .and_then(|d| streams.iter().find(|s| s.source == d))
            else {
                continue;
            };
            self.hear(call, stream);
        }
        calls
    }

    /// The call from caller number `i`'s, if it was placed.
    pub fn call(&self, i: usize) -> Option<InboundCall> {
        self.calls().into_iter().find(|c| c.index == Some(i))
    }

    fn index_of(&self, number: &str) -> Option<usize> {
        let rest = number.strip_prefix(&self.options.number_prefix)?;
        let i = rest.parse::<usize>().ok()?;
        (i < self.options.calls && self.options.number(i) == number).then_some(i)
    }

    fn hear(&self, call: &mut InboundCall, stream: &Stream) {
        call.downlink_packets = stream.packets.len();
        call.heard_ms = stream
            .levels
            .iter()
            .filter(|l| l.dbfs >= SPEECH_DBFS)
            .map(|l| l.ms)
            .sum();
        call.first_heard_at = stream
            .levels
            .iter()
            .find(|l| l.dbfs >= SPEECH_DBFS)
            .map(|l| self.timestamp(l.at));
    }

    /// An `Instant` (the tap's clock) as a timestamp.
    pub fn timestamp(&self, at: Instant) -> Timestamp {
        let (i0, t0) = self.epoch;
        let offset = if at >= i0 {
            jiff::SignedDuration::try_from(at - i0).unwrap_or_default()
        } else {
            -jiff::SignedDuration::try_from(i0 - at).unwrap_or_default()
        };
        t0.checked_add(offset).unwrap_or(t0)
    }

    /// The downlink stream of `call` (what that caller heard), once RTP came from it.
    pub fn downlink(&self, call: &InboundCall) -> Option<Stream> {
        self.tap.stream(call.downlink?)
    }

    /// Waits (bounded, scaled for load) until `check` holds for the calls so far; returns them.
    pub async fn wait_calls(
        &self,
        what: &str,
        within: Duration,
        mut check: impl FnMut(&[InboundCall]) -> bool,
    ) -> Vec<InboundCall> {
        let logs = self.log_paths();
        let logs: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();
        wait_for_logged(what, within, &logs, || {
            let calls = self.calls();
            let ok = check(&calls);
            async move { ok.then_some(calls) }
        })
        .await
    }

    /// Waits (bounded) until `n` calls have a final answer to their INVITE.
    pub async fn wait_final(&self, n: usize, within: Duration) -> Vec<InboundCall> {
        self.wait_calls(
            &format!("{n} calls with a final answer to their INVITE"),
            within,
            |c| c.iter().filter(|c| c.status.is_some()).count() >= n,
        )
        .await
    }

    /// Waits (bounded) until `n` calls were answered 200.
    pub async fn wait_answered(&self, n: usize, within: Duration) -> Vec<InboundCall> {
        self.wait_calls(&format!("{n} calls answered 200"), within, |c| {
            c.iter().filter(|c| c.status == Some(200)).count() >= n
        })
        .await
    }

    /// Waits (bounded) until every call was placed and is over, and SIPp has exited; returns
    /// the calls.
    pub async fn wait_done(&mut self, within: Duration) -> Vec<InboundCall> {
        let calls = self
            .wait_calls(
                &format!("all {} calls over", self.options.calls),
                within,
                |c| c.len() >= self.options.calls && c.iter().all(InboundCall::is_over),
            )
            .await;
        let logs = self.log_paths();
        let logs: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();
        let child = &mut self.child;
        wait_for_logged(
            "the sipp caller to exit after its last call",
            Duration::from_secs(10),
            &logs,
            || {
                let exited = child.0.try_wait().ok().flatten();
                async move { exited }
            },
        )
        .await;
        calls
    }

    /// SIPp's stdout (with its final statistics), errors and scenario log, for failure
    /// messages.
    pub fn log_paths(&self) -> Vec<PathBuf> {
        ["stdout.log", "errors.log", "caller.log"]
            .iter()
            .map(|f| self.dir.0.join(f))
            .collect()
    }

    /// The scenario's `<log>` lines (ANSWERED, BYE_SENT, BYE_RECEIVED, REJECTED, ENDED, each
    /// with the Call-ID and the caller number).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("caller.log")).unwrap_or_default()
    }

    /// SIPp's errors, without the scenario's own talk-time ticks (each wait for a BYE that
    /// timed out is logged as an event).
    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("errors.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.contains("receive timeout on message"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Where one start of SIPp runs.
struct Launch<'a> {
    scenario: &'a Path,
    /// The number dialed (`-s`).
    called: &'a str,
    /// livekit-sip's SIP port.
    sip_port: u16,
    /// SIPp's SIP port.
    port: u16,
    /// SIPp's media port (it binds the two above it too).
    media: u16,
    tap_port: u16,
    log_dir: &'a Path,
}

/// SIPp's arguments for the caller.
fn args(o: &CallerOptions, l: &Launch<'_>) -> Vec<String> {
    let Launch {
        scenario,
        called,
        sip_port,
        port,
        media,
        tap_port,
        log_dir,
    } = *l;
    let period_ms = (1000.0 / o.rate_per_sec.max(0.001)).round().max(1.0) as u64;
    let limit = crate::scaled(o.limit).as_secs().max(1);
    let mut a: Vec<String> = [
        "-sf",
        &scenario.to_string_lossy(),
        &format!("127.0.0.1:{sip_port}"),
        "-s",
        called,
        "-inf",
        "callers.csv",
        "-m",
        &o.calls.to_string(),
        "-l",
        &o.concurrency.max(1).to_string(),
        "-r",
        "1",
        "-rp",
        &period_ms.to_string(),
        "-i",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-mi",
        "127.0.0.1",
        "-mp",
        &media.to_string(),
        "-key",
        "tap_port",
        &tap_port.to_string(),
        "-timeout",
        &format!("{limit}s"),
        // -aa answers in-dialog INFO, NOTIFY, OPTIONS and UPDATE with 200.
        "-nostdin",
        "-aa",
        // The same relaxed watchdog as the callee (callfleet_rig::callee::args): a busy
        // machine must not end the caller.
        "-watchdog_major_maxtriggers",
        "1000000000",
        "-watchdog_minor_maxtriggers",
        "1000000000",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for (flags, file) in [
        (["-trace_msg", "-message_file"], "messages.log"),
        (["-trace_logs", "-log_file"], "caller.log"),
        (["-trace_err", "-error_file"], "errors.log"),
    ] {
        a.extend(flags.iter().map(|f| (*f).to_owned()));
        a.push(log_dir.join(file).to_string_lossy().into_owned());
    }
    a
}

/// The bytes SIPp streams: raw G.711 mu-law at 8 kHz.
fn audio(kind: CallerAudio, root: &Path) -> Vec<u8> {
    use callfleet_rig::callee::{TALK_FILE, TONE_FILE, audio_files, ulaw};
    match kind {
        CallerAudio::Silence => vec![ulaw(0); 8000],
        CallerAudio::Talk | CallerAudio::Tone => {
            let hello = match kind {
                CallerAudio::Talk => {
                    let source = root.join(callfleet_rig::callee::HELLO_SOURCE);
                    std::fs::read(&source).unwrap_or_else(|e| {
                        panic!(
                            "the caller's speech {} cannot be read ({e}): run `make setup`",
                            source.display()
                        )
                    })
                }
                _ => vec![ulaw(0); 8000],
            };
            let want = if kind == CallerAudio::Talk {
                TALK_FILE
            } else {
                TONE_FILE
            };
            audio_files(&hello)
                .into_iter()
                .find(|(name, _)| *name == want)
                .map(|(_, bytes)| bytes)
                .unwrap_or_default()
        }
    }
}

/// One SIP message of SIPp's `-trace_msg` log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traced {
    /// Its wall-clock time (the log's, read in the system time zone).
    pub at: Option<Timestamp>,
    /// Sent by SIPp (else received).
    pub sent: bool,
    /// The request's method, or `None` for a response.
    pub method: Option<String>,
    /// The response's status, or `None` for a request.
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Traced {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The CSeq's method.
    pub fn cseq_method(&self) -> Option<&str> {
        self.header("CSeq")?.split_whitespace().nth(1)
    }

    /// The SDP's audio address (`c=` and `m=audio`), if the body has one.
    pub fn sdp_audio(&self) -> Option<SocketAddr> {
        let mut ip = None;
        let mut port = None;
        for line in self.body.lines().map(str::trim) {
            if let Some(c) = line.strip_prefix("c=IN IP4 ") {
                ip = c.trim().parse::<std::net::Ipv4Addr>().ok();
            } else if let Some(m) = line.strip_prefix("m=audio ") {
                port = m.split_whitespace().next()?.parse::<u16>().ok();
            }
        }
        Some(SocketAddr::from((ip?, port?)))
    }
}

/// Parses SIPp's `-trace_msg` log: blocks introduced by a line of dashes and a time, then
/// "... message sent ..." or "... message received ...", then the message.
pub fn parse_trace(log: &str) -> Vec<Traced> {
    let mut out = Vec::new();
    for block in log.split("----------------------------------------------- ") {
        let Some((intro, rest)) = block.split_once('\n') else {
            continue;
        };
        let at = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S%.f", intro.trim())
            .ok()
            .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::system()).ok())
            .map(|z| z.timestamp());
        let Some((kind, message)) = rest.split_once('\n') else {
            continue;
        };
        let sent = kind.contains("message sent");
        if !sent && !kind.contains("message received") {
            continue;
        }
        let message = message.trim_start_matches(['\r', '\n']);
        // The blank line ending the headers: CRLF CRLF from livekit-sip, LF LF as SIPp logs
        // its own messages (and a CRLF message ends with CRLF LF in the log).
        let end = [("\r\n\r\n", 4), ("\n\n", 2)]
            .iter()
            .filter_map(|(sep, len)| message.find(sep).map(|at| (at, at + len)))
            .min();
        let (head, body) = end.map_or((message, ""), |(at, from)| {
            (&message[..at], &message[from..])
        });
        let mut lines = head.lines();
        let Some(first) = lines.next() else { continue };
        let mut parts = first.split_whitespace();
        let (method, status) = match (parts.next(), parts.next()) {
            (Some("SIP/2.0"), Some(code)) => (None, code.parse::<u16>().ok()),
            (Some(m), Some(_)) => (Some(m.to_owned()), None),
            _ => continue,
        };
        if method.is_none() && status.is_none() {
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        out.push(Traced {
            at,
            sent,
            method,
            status,
            headers,
            body: body.to_owned(),
        });
    }
    out
}

/// The user part of a From/To value (`"x" <sip:user@host>;tag=…`).
fn user_of(value: &str) -> String {
    let uri = value
        .split_once('<')
        .map_or(value, |(_, r)| r.split('>').next().unwrap_or(""));
    let rest = uri.split_once(':').map_or(uri, |(_, r)| r);
    rest.split(['@', ';']).next().unwrap_or("").to_owned()
}

/// The calls of a trace, in the order of their first INVITE.
fn assemble(trace: &[Traced]) -> Vec<InboundCall> {
    let mut calls: Vec<InboundCall> = Vec::new();
    for m in trace {
        let Some(call_id) = m.header("Call-ID") else {
            continue;
        };
        let at = m.at.unwrap_or_else(Timestamp::now);
        if m.sent && m.method.as_deref() == Some("INVITE") {
            if !calls.iter().any(|c| c.call_id == call_id) {
                calls.push(InboundCall {
                    call_id: call_id.to_owned(),
                    caller_number: user_of(m.header("From").unwrap_or("")),
                    index: None,
                    invited_at: at,
                    ringing_at: None,
                    ringing_count: 0,
                    status: None,
                    final_at: None,
                    answered_at: None,
                    downlink: None,
                    downlink_packets: 0,
                    first_heard_at: None,
                    heard_ms: 0,
                    hangup: None,
                });
            }
            continue;
        }
        let Some(call) = calls.iter_mut().find(|c| c.call_id == call_id) else {
            continue;
        };
        match (m.sent, m.method.as_deref(), m.status, m.cseq_method()) {
            (false, None, Some(180), Some("INVITE")) => {
                call.ringing_count += 1;
                call.ringing_at.get_or_insert(at);
            }
            (false, None, Some(code), Some("INVITE")) if code >= 200 && call.status.is_none() => {
                call.status = Some(code);
                call.final_at = Some(at);
                if (200..300).contains(&code) {
                    call.answered_at = Some(at);
                    call.downlink = m.sdp_audio();
                }
            }
            (sent, Some("BYE"), None, _) if call.hangup.is_none() => {
                call.hangup = Some(Hangup {
                    by: if sent { Side::Caller } else { Side::FarEnd },
                    at,
                    confirmed: false,
                });
            }
            (_, None, Some(200), Some("BYE")) => {
                if let Some(h) = &mut call.hangup {
                    h.confirmed = true;
                }
            }
            _ => {}
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "----------------------------------------------- 2026-12-01 08:48:56.164255
UDP message sent (511 bytes):

INVITE sip:+15550100@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:15061;branch=z9hG4bK-7254-1-0
From: \"Caller +15551230001\" <sip:+15551230001@127.0.0.1:15061>;tag=7254SIPpTag001
To: <sip:+15550100@127.0.0.1:5060>
Call-ID: 1-7254@127.0.0.1
CSeq: 1 INVITE
Content-Type: application/sdp
Content-Length:   129

v=0
c=IN IP4 127.0.0.1
m=audio 40000 RTP/AVP 0 101

----------------------------------------------- 2026-12-01 08:48:56.264487
UDP message received [309] bytes :

SIP/2.0 180 Ringing
From: <sip:+15551230001@127.0.0.1:15061>;tag=7254SIPpTag001
Call-ID: 1-7254@127.0.0.1
CSeq: 1 INVITE
Content-Length: 0


----------------------------------------------- 2026-12-01 08:48:57.264487
UDP message received [309] bytes :

SIP/2.0 180 Ringing
Call-ID: 1-7254@127.0.0.1
CSeq: 1 INVITE
Content-Length: 0


----------------------------------------------- 2026-12-01 08:48:58.165579
UDP message received [468] bytes :

SIP/2.0 200 OK
Call-ID: 1-7254@127.0.0.1
CSeq: 1 INVITE
Content-Type: application/sdp
Content-Length:   129

v=0
o=- 1 1 IN IP4 127.0.0.1
c=IN IP4 127.0.0.1
t=0 0
m=audio 10042 RTP/AVP 0 101

----------------------------------------------- 2026-12-01 08:49:00.000000
UDP message received [380] bytes :

BYE sip:+15551230001@127.0.0.1:15061 SIP/2.0
Call-ID: 1-7254@127.0.0.1
CSeq: 2 BYE
Content-Length: 0


----------------------------------------------- 2026-12-01 08:49:00.000300
UDP message sent (321 bytes):

SIP/2.0 200 OK
Call-ID: 1-7254@127.0.0.1
CSeq: 2 BYE
Content-Length: 0


----------------------------------------------- 2026-12-01 08:49:01.000000
UDP message sent (511 bytes):

INVITE sip:+15550100@127.0.0.1:5060 SIP/2.0
From: <sip:+15551230002@127.0.0.1:15061>;tag=x
Call-ID: 2-7254@127.0.0.1
CSeq: 1 INVITE
Content-Length: 0


----------------------------------------------- 2026-12-01 08:49:03.000000
UDP message received [309] bytes :

SIP/2.0 486 Busy Here
Call-ID: 2-7254@127.0.0.1
CSeq: 1 INVITE
Content-Length: 0

";

    #[test]
    fn a_trace_becomes_calls() {
        let calls = assemble(&parse_trace(TRACE));
        assert_eq!(calls.len(), 2);
        let a = &calls[0];
        assert_eq!(a.call_id, "1-7254@127.0.0.1");
        assert_eq!(a.caller_number, "+15551230001");
        assert_eq!((a.status, a.ringing_count), (Some(200), 2));
        assert_eq!(a.downlink, Some("127.0.0.1:10042".parse().expect("addr")));
        assert_eq!(a.ring_time(), Some(Duration::from_micros(2_001_324)));
        let h = a.hangup.expect("hung up");
        assert_eq!((h.by, h.confirmed), (Side::FarEnd, true));
        assert_eq!(a.talk_time(), Some(Duration::from_micros(1_834_421)));
        assert!(a.is_over());
        let b = &calls[1];
        assert_eq!(
            (b.caller_number.as_str(), b.status),
            ("+15551230002", Some(486))
        );
        assert!(b.answered_at.is_none() && b.hangup.is_none() && b.is_over());
    }

    #[test]
    fn a_crlf_message_keeps_its_sdp() {
        let log = "----------------------------------------------- 2026-12-01 08:54:41.559000\nUDP message received [500] bytes :\n\nSIP/2.0 200 OK\r\nCall-ID: 2-1@127.0.0.1\r\nCSeq: 1 INVITE\r\n\r\nv=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 18080 RTP/AVP 0 101\r\na=sendrecv\r\n\n";
        let trace = parse_trace(log);
        assert_eq!(trace.len(), 1);
        assert_eq!(trace[0].header("CSeq"), Some("1 INVITE"));
        assert_eq!(
            trace[0].sdp_audio(),
            Some("127.0.0.1:18080".parse().expect("addr"))
        );
    }

    #[test]
    fn injection_lines_carry_number_customer_and_talk() {
        let o = CallerOptions {
            calls: 3,
            number_prefix: "+1555000".to_owned(),
            talk: vec![Duration::from_millis(1500), Duration::ZERO],
            ..CallerOptions::default()
        };
        assert_eq!(
            o.injection(),
            "SEQUENTIAL\n+15550000000;cust-0;1500;\n+15550000001;cust-1;0;\n+15550000002;cust-2;0;\n"
        );
    }

    #[test]
    fn users_of_from_values() {
        assert_eq!(user_of("\"Caller\" <sip:+1555@127.0.0.1:5>;tag=a"), "+1555");
        assert_eq!(user_of("sip:bob@host;tag=1"), "bob");
    }
}
