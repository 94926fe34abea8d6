//! The telephony rig: redis-server, livekit-server with Redis, livekit-sip, and a SIPp callee
//! standing in for the PSTN. Everything binds free loopback ports and dies on Drop.
//!
//! The callee runs `tests/sipp/callee.xml`; the dialed number picks its behaviour (see
//! [`Behaviour`]), so one callee serves every scenario of a test. Every SIP message it sees is
//! logged, and [`Callee::requests`] parses them back so tests can assert on headers.

use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use callfleet_media::{Options, Transport};
use livekit_api::{
    access_token::{AccessToken, VideoGrants},
    services::{room::RoomClient, sip::SIPClient},
};

use crate::{
    LiveKitOptions, LiveKitServer, TempDir, free_port, log_tail, scaled, tap::Tap, tool,
    wait_for_logged, wait_port_logged, workspace_root,
};

use crate::servers::BIND_ATTEMPTS;

/// A process killed on Drop.
pub(crate) struct Owned(pub(crate) Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn spawn(mut cmd: Command, what: &str, log: Option<PathBuf>) -> Owned {
    let (out, err) = match log.and_then(|p| std::fs::File::create(p).ok()) {
        Some(f) => (
            f.try_clone()
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
            Stdio::from(f),
        ),
        None => (Stdio::null(), Stdio::null()),
    };
    Owned(
        cmd.stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}")),
    )
}

/// The rig's livekit-server `agents.target_load` (0.7 by default): the server offers a job
/// only to an agent worker whose reported load (a LiveKit Agents worker reports the machine's
/// CPU) is below it, and tests share two cores, so the default would dispatch nothing (as
/// livekit-sip's `max_cpu_utilization` is lifted to 1.0 below, for the same reason).
pub const AGENT_TARGET_LOAD: f32 = 1000.0;

/// LiveKit with its SIP service: what `CreateSIPParticipant` needs to place real calls.
pub struct Telephony {
    pub livekit: LiveKitServer,
    pub sip_port: u16,
    health_port: u16,
    rtp: String,
    redis_addr: String,
    dir: TempDir,
    sip: Option<Owned>,
    _redis: Owned,
    /// This rig's share of the machine's media capacity (see [`crate::media_share`]).
    _share: crate::MediaShare,
}

impl Telephony {
    /// livekit-server's agent `target_load` is raised (see [`AGENT_TARGET_LOAD`]).
    pub async fn start() -> Self {
        Self::start_with(LiveKitOptions {
            agent_target_load: Some(AGENT_TARGET_LOAD),
            ..LiveKitOptions::default()
        })
        .await
    }

    /// The same, with livekit-server configured by `options` (its `redis` is the rig's).
    pub async fn start_with(options: LiveKitOptions) -> Self {
        let share = crate::media_share();
        let dir = TempDir::new("telephony");
        let redis_port = free_port();
        let mut redis = Command::new(tool("redis-server"));
        redis.args([
            "--port",
            &redis_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]);
        let redis_log = dir.0.join("redis.log");
        let redis = spawn(redis, "redis-server", Some(redis_log.clone()));
        wait_port_logged(redis_port, "redis-server", &[&redis_log]).await;
        let redis_addr = format!("127.0.0.1:{redis_port}");

        let livekit = LiveKitServer::start_with(LiveKitOptions {
            redis: Some(redis_addr.clone()),
            ..options
        })
        .await;

        let mut tel = Self {
            livekit,
            sip_port: 0,
            health_port: 0,
            rtp: rtp_range(),
            redis_addr,
            dir,
            sip: None,
            _redis: redis,
            _share: share,
        };
        // A port checked free can be taken before livekit-sip binds it (suites run side by side
        // in one process): then it exits at once, and it is started again on other ports.
        for attempt in 1..=BIND_ATTEMPTS {
            (tel.sip_port, tel.health_port) = (free_udp_port(0), free_port());
            tel.write_sip_config();
            match tel.launch_sip().await {
                Ok(()) => return tel,
                Err(e) if e.contains("address already in use") && attempt < BIND_ATTEMPTS => {
                    eprintln!(
                        "livekit-sip lost a port race (attempt {attempt}); trying other ports"
                    );
                }
                Err(e) => panic!("{e}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn write_sip_config(&self) {
        // max_cpu_utilization 1.0: livekit-sip refuses calls while the machine is busy (default
        // 90 %), and a test machine running suites side by side is busy.
        let config = format!(
            "api_key: {key}\napi_secret: {secret}\nws_url: {ws}\nredis:\n  address: {redis}\n\
             sip_port: {sip_port}\nrtp_port: {rtp}\nhealth_port: {health_port}\n\
             use_external_ip: false\nlisten_ip: 127.0.0.1\nnat_1_to_1_ip: 127.0.0.1\n\
             max_cpu_utilization: 1.0\n\
             logging:\n  level: info\n",
            key = self.livekit.key,
            secret = self.livekit.secret,
            ws = self.livekit.url(),
            redis = self.redis_addr,
            sip_port = self.sip_port,
            rtp = self.rtp,
            health_port = self.health_port,
        );
        let path = self.dir.0.join("sip.yaml");
        std::fs::write(&path, config).unwrap_or_else(|e| panic!("cannot write sip config: {e}"));
    }

    /// Start livekit-sip (again) with the rig's config, and wait until it is healthy.
    pub async fn start_sip(&mut self) {
        if let Err(e) = self.launch_sip().await {
            panic!("{e}");
        }
    }

    /// Start livekit-sip and wait (sized for the machine's load) until its health endpoint
    /// answers 200; an error, with its log's tail, if it exits first or the wait runs out.
    async fn launch_sip(&mut self) -> Result<(), String> {
        let mut sip = Command::new(tool("livekit-sip"));
        sip.arg("--config").arg(self.dir.0.join("sip.yaml"));
        let log = self
            .dir
            .0
            .join(format!("livekit-sip-{}.log", uuid::Uuid::new_v4().simple()));
        self.sip = Some(spawn(sip, "livekit-sip", Some(log.clone())));
        let health = format!("http://127.0.0.1:{}/", self.health_port);
        let limit = scaled(Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        loop {
            if reqwest::get(&health)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            if let Some(status) = self
                .sip
                .as_mut()
                .and_then(|o| o.0.try_wait().ok().flatten())
            {
                self.sip = None;
                return Err(format!(
                    "livekit-sip exited ({status}) before it was healthy\n--- last 30 lines of {} ---\n{}",
                    log.display(),
                    log_tail(&log, 30)
                ));
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "timed out after {limit:?} (load factor {:.1}) waiting for livekit-sip healthy (GET {health} answering 200)\n--- last 30 lines of {} ---\n{}",
                    crate::load_factor(),
                    log.display(),
                    log_tail(&log, 30)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// livekit-sip's logs (one per start), for failure messages.
    pub fn sip_logs(&self) -> Vec<PathBuf> {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(&self.dir.0)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        logs.retain(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("livekit-sip-"))
        });
        logs.sort();
        logs
    }

    /// Kill livekit-sip: LiveKit then has no SIP service to dial with.
    pub fn stop_sip(&mut self) {
        self.sip = None;
    }

    /// livekit-sip's pid while it runs (the density bench measures its CPU).
    pub fn sip_pid(&self) -> Option<u32> {
        self.sip.as_ref().map(|o| o.0.id())
    }

    pub fn sip_client(&self) -> SIPClient {
        SIPClient::with_api_key(
            &self.livekit.http_url(),
            &self.livekit.key,
            &self.livekit.secret,
        )
    }

    pub fn rooms(&self) -> RoomClient {
        RoomClient::with_api_key(
            &self.livekit.http_url(),
            &self.livekit.key,
            &self.livekit.secret,
        )
    }

    /// Join `room` as `identity` with a loopback-only transport (a join creates a missing room).
    pub async fn join(&self, room: &str, identity: &str) -> Transport {
        let token = AccessToken::with_api_key(&self.livekit.key, &self.livekit.secret)
            .with_identity(identity)
            .with_grants(VideoGrants {
                room_join: true,
                room: room.to_owned(),
                ..Default::default()
            })
            .to_jwt()
            .unwrap_or_else(|e| panic!("token: {e}"));
        Transport::connect(&self.livekit.url(), &token, Options::loopback())
            .await
            .unwrap_or_else(|e| panic!("{identity} joins {room}: {e}"))
    }

    /// An outbound trunk (UDP, no auth) to 127.0.0.1:`port`, created through the API with the
    /// fleet's own adapter (`callfleet_livekit`, as `callfleet dev` does); its id.
    pub async fn outbound_trunk(&self, name: &str, port: u16, from_numbers: &[&str]) -> String {
        let numbers = from_numbers.iter().map(|n| (*n).to_owned()).collect();
        callfleet_livekit::LiveKit::new(
            &self.livekit.url(),
            &self.livekit.key,
            &self.livekit.secret,
            Duration::from_secs(10),
        )
        .create_outbound_trunk(name, &format!("127.0.0.1:{port}"), numbers)
        .await
        .unwrap_or_else(|e| panic!("CreateSIPOutboundTrunk: {e}"))
    }

    /// A SIPp callee and an outbound trunk (created through the API) pointing at it.
    pub async fn callee(&self, from_numbers: &[&str]) -> Callee {
        Callee::start(self, from_numbers, false).await
    }

    /// The same, run with SIPp's `-rtp_echo`: every RTP packet reaching its media port is sent
    /// back to its sender (so a call's audio toward the callee comes back from it).
    pub async fn echo_callee(&self, from_numbers: &[&str]) -> Callee {
        Callee::start(self, from_numbers, true).await
    }
}

/// A distinct RTP port range per rig in this process (rigs run side by side). livekit-sip
/// keeps a closed call's port draining for up to 30 s, so a range must outlast a test's calls.
/// (When it runs out, livekit-sip v1.8.0 crashes on a nil media port, so be generous.)
fn rtp_range() -> String {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let slot = NEXT.fetch_add(1, Ordering::Relaxed) % 10;
    // Below the ephemeral range (32768+), where free_port() picks the other servers' ports.
    let base = 10_000 + (std::process::id() % 2) as u16 * 10_000 + slot * 1_000;
    format!("{base}-{}", base + 999)
}

/// What the callee does, chosen by the dialed number (`tests/sipp/callee.xml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answer, then hang up after this many seconds (0-99).
    AnswerThenHangUp(u8),
    /// Answer and stay until the caller hangs up.
    AnswerAndStay,
    /// Answer and stay, sending no RTP at all: a dead line, which livekit-sip's media timeout
    /// ends (or, on an [`Telephony::echo_callee`], only the echoed audio).
    AnswerSilent,
    /// Answer, accept a REFER (202, then NOTIFY 200), wait for the caller's BYE.
    AcceptRefer,
    /// Answer, stream a [`Self::TONE_HZ`] tone as PCMU RTP in a loop, wait for the caller's BYE.
    PlayTone,
    /// Answer, stream 2 s of the tone (the callee speaks), then 20 s of silence as RTP (it
    /// listens), then wait for the caller's BYE.
    SpeakOnce,
    /// Answer, say [`Self::HELLO_TEXT`] (speech spoken by espeak-ng at `make setup`), then
    /// listen, sending silence as RTP like a phone; the words again every
    /// `HELLO_PERIOD_SECS`; wait for the caller's BYE. `make run`'s demo number.
    SayHello,
    /// Answer (media toward the callee's [`Callee::tap`], as for every behaviour below), say
    /// "Hello?" once, then silence as RTP until the caller's BYE: a person.
    Person,
    /// Answer with a voicemail greeting, a 0.4 s pause and a 1 kHz beep of 0.5 s (all within
    /// `callfleet_rig::callee::speech::VOICEMAIL_SECS`), then silence as RTP (recording)
    /// until the caller's BYE; with `n > 0`, hang up `n` s (0-99) after those seconds.
    Voicemail(u8),
    /// Answer as a call screener ("… Please say your name and why you're calling."), then
    /// silence until the caller's BYE.
    Screener,
    /// Answer and send no RTP: the tap plays the IVR (see [`crate::tap::Tap::set_ivr`]).
    Ivr,
    /// Answer with a calling fax's CNG (1100 Hz 0.5 s on, 3 s off) until the caller's BYE.
    FaxCng,
    /// Answer with an answering fax's CED (2100 Hz for 3 s), then CNG until the caller's BYE.
    FaxCed,
    /// Answer (media toward the tap) and talk: say [`Self::HELLO_TEXT`] every
    /// `callfleet_rig::callee::TALK_PERIOD_SECS` and listen in between (a turn per period, the
    /// density bench's callee); with `n > 0` hang up after about `n` s (0-99), else wait for
    /// the caller's BYE.
    Talker(u8),
    /// Ring until the caller cancels.
    Ring,
    /// Reject with this final status: 486 600 480 408 503 603 404 484 403.
    Reject(u16),
}

impl Behaviour {
    /// The tone [`Behaviour::PlayTone`] streams: a sine at half of full scale.
    pub const TONE_HZ: f64 = callfleet_rig::callee::TONE_HZ;
    /// What [`Behaviour::SayHello`] says.
    pub const HELLO_TEXT: &str = callfleet_rig::callee::HELLO_TEXT;

    /// A destination number (E.164) that makes the callee behave so. `tag` (0-999) keeps
    /// numbers of one test apart.
    pub fn number(self, tag: u16) -> String {
        let (hold, code) = match self {
            Self::AnswerThenHangUp(s) => (s, 200),
            Self::AnswerAndStay => (0, 201),
            Self::AnswerSilent => (0, 205),
            Self::AcceptRefer => (0, 202),
            Self::PlayTone => (0, 203),
            Self::SpeakOnce => (0, 204),
            Self::SayHello => (0, 206),
            Self::Person => (0, 207),
            Self::Voicemail(s) => (s, 208),
            Self::Screener => (0, 209),
            Self::Ivr => (0, 210),
            Self::FaxCng => (0, 211),
            Self::FaxCed => (0, 212),
            Self::Talker(s) => (s, 213),
            Self::Ring => (0, 180),
            Self::Reject(code) => (0, code),
        };
        format!("+6140{:03}{hold:02}{code:03}", tag % 1000)
    }
}

/// One SIP request the callee received.
#[derive(Debug, Clone)]
pub struct SipRequest {
    pub method: String,
    pub uri: String,
    /// When SIPp received it (its log's wall-clock time, read in the system time zone).
    pub at: Option<jiff::Timestamp>,
    headers: Vec<(String, String)>,
}

impl SipRequest {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The user part of the request URI (the dialed number).
    pub fn user(&self) -> &str {
        let rest = self.uri.split_once(':').map_or("", |(_, r)| r);
        rest.split(['@', ';']).next().unwrap_or("")
    }
}

/// SIPp as the PSTN callee on a free loopback port, with a trunk pointing at it, and the RTP
/// tap its behaviours 207-212 name as their media address.
pub struct Callee {
    pub port: u16,
    pub trunk_id: String,
    tap: Tap,
    dir: TempDir,
    _child: Owned,
}

impl Callee {
    async fn start(tel: &Telephony, from_numbers: &[&str], rtp_echo: bool) -> Self {
        let dir = TempDir::new("callee");
        let tap = Tap::start().await;
        let scenario = callfleet_rig::callee::scenario(&workspace_root())
            .unwrap_or_else(|e| panic!("the callee's scenario: {e}"));
        callfleet_rig::callee::write_audio(&dir.0, &workspace_root())
            .unwrap_or_else(|e| panic!("cannot write the callee's audio: {e}"));
        let logs = [dir.0.join("stdout.log"), dir.0.join("errors.log")];
        let logs: Vec<&std::path::Path> = logs.iter().map(PathBuf::as_path).collect();
        // SIPp binds UDP for SIP, and for RTP at the media port and the two above it (audio,
        // then video). Free ports can be taken between the check and SIPp's bind (WebRTC
        // peers open ephemeral UDP sockets all the time); SIPp then exits at once, and it is
        // started again on other ports.
        for _ in 0..5 {
            let (port, media) = (free_udp_port(0), free_udp_port(2));
            let mut cmd = Command::new(tool("sipp"));
            cmd.current_dir(&dir.0).args(callfleet_rig::callee::args(
                &callfleet_rig::callee::Options {
                    scenario: &scenario,
                    port,
                    media_port: media,
                    log_dir: &dir.0,
                    rtp_echo,
                    tap_port: Some(tap.port()),
                },
            ));
            let mut child = spawn(cmd, "sipp", Some(dir.0.join("stdout.log")));
            let ready = wait_for_logged(
                "the sipp callee to answer OPTIONS (or exit)",
                Duration::from_secs(10),
                &logs,
                || {
                    let exited = child.0.try_wait().ok().flatten().is_some();
                    async move {
                        if exited {
                            return Some(false);
                        }
                        tokio::task::spawn_blocking(move || {
                            callfleet_rig::callee::options_ping(port, Duration::from_millis(500))
                        })
                        .await
                        .ok()?
                        .ok()
                        .map(|()| true)
                    }
                },
            )
            .await;
            if !ready {
                continue;
            }
            let mut callee = Self {
                port,
                trunk_id: String::new(),
                tap,
                dir,
                _child: child,
            };
            callee.trunk_id = tel
                .outbound_trunk(&format!("callee-{port}"), port, from_numbers)
                .await;
            return callee;
        }
        let tails: String = logs.iter().map(|p| crate::log_tail(p, 30)).collect();
        panic!("sipp exited at start five times (ports taken?){tails}");
    }

    /// What livekit-sip sent to the behaviours 207-212 (and what the tap answers, as an IVR).
    pub fn tap(&self) -> &Tap {
        &self.tap
    }

    /// Every SIP request the callee has received so far, in order (the rig's own readiness
    /// probes left out).
    pub fn requests(&self) -> Vec<SipRequest> {
        let log = std::fs::read_to_string(self.dir.0.join("messages.log")).unwrap_or_default();
        parse_received(&log)
            .into_iter()
            .filter(|r| {
                !r.header("Call-ID")
                    .is_some_and(|id| id.starts_with(callfleet_rig::callee::PROBE_CALL_ID_PREFIX))
            })
            .collect()
    }

    /// The INVITEs received for `number`.
    pub fn invites_to(&self, number: &str) -> Vec<SipRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "INVITE" && r.user() == number)
            .collect()
    }

    /// The requests of `method` received, of any number.
    pub fn received(&self, method: &str) -> Vec<SipRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method)
            .collect()
    }

    /// The callee's scenario log (one line per INVITE and REFER), for failure messages.
    pub fn log_path(&self) -> PathBuf {
        self.dir.0.join("callee.log")
    }

    /// The callee's own log and errors, for failure messages.
    pub fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.0.join(f)).unwrap_or_default();
        format!("{}\n{}", read("callee.log"), read("errors.log"))
    }
}

/// A UDP port on 127.0.0.1 that is free, with the `above` ports after it free too.
pub(crate) fn free_udp_port(above: u16) -> u16 {
    let free = |p: u16| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok();
    for _ in 0..100 {
        let port = free_port();
        if port != 0 && port < u16::MAX - above && (0..=above).all(|i| free(port + i)) {
            return port;
        }
    }
    panic!("no free UDP port run of {} on 127.0.0.1", above + 1)
}

/// Parse SIPp's `-trace_msg` log: blocks introduced by "... message received ...".
fn parse_received(log: &str) -> Vec<SipRequest> {
    let mut out = Vec::new();
    for block in log.split("----------------------------------------------- ") {
        let Some((intro, body)) = block.split_once('\n') else {
            continue;
        };
        let at = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S%.f", intro.trim())
            .ok()
            .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::system()).ok())
            .map(|z| z.timestamp());
        let body = if intro.contains("message received") {
            body
        } else if let Some((line, rest)) = body.split_once('\n')
            && line.contains("message received")
        {
            rest
        } else {
            continue;
        };
        let mut lines = body.lines().skip_while(|l| l.trim().is_empty());
        let Some(first) = lines.next() else { continue };
        let mut parts = first.split_whitespace();
        let (Some(method), Some(uri), Some("SIP/2.0")) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let headers = lines
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        out.push(SipRequest {
            method: method.to_owned(),
            uri: uri.to_owned(),
            at,
            headers,
        });
    }
    out
}

/// Count of requests per method, for failure messages.
pub fn summarize(requests: &[SipRequest]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in requests {
        *counts
            .entry(format!("{} {}", r.method, r.user()))
            .or_insert(0) += 1;
    }
    counts
}
