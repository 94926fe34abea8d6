//! An RTP tap: a UDP socket on 127.0.0.1 that the callee's SDP names as its media address
//! (`callfleet_rig::callee::Options::tap_port`, behaviours 207-212), so livekit-sip sends the
//! call's RTP here. SIPp 3.6 cannot log what it receives, so this shows what the callee got:
//! per source (livekit-sip uses one RTP port per call) every packet's arrival and payload
//! type, the level of each PCMU frame, and the RFC 4733 keys, collapsed into one [`Digit`]
//! each. It can also answer: as an [`Ivr`] it plays a menu to every new source and a prompt
//! for each key it receives, and [`Tap::send_key`] sends a key back as RFC 4733, all
//! symmetrically (to the address the source's packets come from).

mod ivr;
pub mod rtp;
mod stream;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{net::UdpSocket, sync::mpsc};

pub use ivr::Ivr;
pub use stream::{Digit, Level, Packet, SILENCE_DBFS, SPEECH_DBFS, SPEECH_MIN_MS, Stream};

use crate::wait_for;

/// What the tap played to a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// The IVR's menu.
    Menu,
    /// The answer to this key.
    Key(char),
}

/// One prompt played toward a source, from its first packet to its last (or to the next
/// prompt that cut it off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Played {
    pub source: SocketAddr,
    pub prompt: Prompt,
    pub started_at: Instant,
    pub ended_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    streams: Vec<Stream>,
    played: Vec<Played>,
    ivr: Option<Arc<Ivr>>,
    senders: HashMap<SocketAddr, mpsc::UnboundedSender<ivr::Out>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl State {
    fn idle_since(&self, source: SocketAddr) -> Duration {
        self.streams
            .iter()
            .find(|s| s.source == source)
            .map_or(Duration::ZERO, |s| s.last_at().elapsed())
    }
}

/// The tap's state, shared by its receive task and its senders.
#[derive(Clone, Default)]
pub(crate) struct Shared(Arc<Mutex<State>>);

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

/// The tap; its tasks stop on Drop.
pub struct Tap {
    port: u16,
    socket: Arc<UdpSocket>,
    shared: Shared,
    recv: tokio::task::JoinHandle<()>,
}

impl Tap {
    /// Binds a free UDP port on 127.0.0.1 and starts recording.
    pub async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("the RTP tap cannot bind 127.0.0.1: {e}"));
        let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        let socket = Arc::new(socket);
        let shared = Shared::default();
        let recv = tokio::spawn(receive(socket.clone(), shared.clone()));
        Self {
            port,
            socket,
            shared,
            recv,
        }
    }

    /// The port to name in the callee's SDP.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Answer every new source as `ivr` from now on (sources already seen are not answered
    /// until they press a key).
    pub fn set_ivr(&self, ivr: Ivr) {
        self.shared.with(|s| s.ivr = Some(Arc::new(ivr)));
    }

    /// Everything received so far, one [`Stream`] per source, in order of first arrival.
    pub fn streams(&self) -> Vec<Stream> {
        self.shared.with(|s| s.streams.clone())
    }

    /// How many sources have sent something (cheaper than [`Tap::streams`]).
    pub fn source_count(&self) -> usize {
        self.shared.with(|s| s.streams.len())
    }

    /// The stream from `source`, if any packet came from it.
    pub fn stream(&self, source: SocketAddr) -> Option<Stream> {
        self.shared
            .with(|s| s.streams.iter().find(|x| x.source == source).cloned())
    }

    /// Waits (bounded, scaled for load) until `n` sources have sent something; returns the
    /// `n`th (the first is `n = 1`).
    pub async fn wait_stream(&self, n: usize, within: Duration) -> Stream {
        wait_for(
            &format!("RTP from source #{n} at the tap (127.0.0.1:{})", self.port),
            within,
            || {
                let s = self.streams().into_iter().nth(n.saturating_sub(1));
                async move { s }
            },
        )
        .await
    }

    /// Every key received, of every source, in order of arrival.
    pub fn digits(&self) -> Vec<Digit> {
        let mut all: Vec<Digit> = self
            .shared
            .with(|s| s.streams.iter().flat_map(|x| x.digits.clone()).collect());
        all.sort_by_key(|d| d.at);
        all
    }

    /// Waits (bounded) until the keys received from `source` are `keys`, in order, each
    /// ended (its end packets arrived).
    pub async fn wait_keys(&self, source: SocketAddr, keys: &str, within: Duration) -> Stream {
        wait_for(
            &format!("the keys {keys:?}, each ended, from {source} at the tap"),
            within,
            || {
                let s = self
                    .stream(source)
                    .filter(|s| s.keys() == keys && s.digits.iter().all(|d| d.end_packets > 0));
                async move { s }
            },
        )
        .await
    }

    /// The level of every PCMU frame from `source`.
    pub fn levels(&self, source: SocketAddr) -> Vec<Level> {
        self.stream(source).map(|s| s.levels).unwrap_or_default()
    }

    /// The prompts played so far.
    pub fn played(&self) -> Vec<Played> {
        self.shared.with(|s| s.played.clone())
    }

    /// Sends `key` to `source` as RFC 4733 events (the key a callee presses).
    pub fn send_key(&self, source: SocketAddr, key: char) {
        let tx = self.sender(source);
        let _ = tx.send(ivr::Out::Key(key));
    }

    fn sender(&self, to: SocketAddr) -> mpsc::UnboundedSender<ivr::Out> {
        sender(&self.socket, &self.shared, to)
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.recv.abort();
        self.shared.with(|s| s.tasks.iter().for_each(|t| t.abort()));
    }
}

/// The sender toward `to`, started if there is none (or its task ended).
fn sender(
    socket: &Arc<UdpSocket>,
    shared: &Shared,
    to: SocketAddr,
) -> mpsc::UnboundedSender<ivr::Out> {
    if let Some(tx) = shared.with(|s| s.senders.get(&to).filter(|t| !t.is_closed()).cloned()) {
        return tx;
    }
    let (tx, task) = ivr::spawn(socket.clone(), to, shared.clone());
    shared.with(|s| {
        s.senders.insert(to, tx.clone());
        s.tasks.push(task);
    });
    tx
}

/// Records every packet; as an IVR, greets new sources and answers keys.
async fn receive(socket: Arc<UdpSocket>, shared: Shared) {
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let at = Instant::now();
        let Some(packet) = rtp::parse(&buf[..n]) else {
            continue;
        };
        let (new, key, ivr) = shared.with(|s| {
            let new = !s.streams.iter().any(|x| x.source == from);
            if new {
                s.streams.push(Stream::new(from, at));
            }
            let key = s
                .streams
                .iter_mut()
                .find(|x| x.source == from)
                .and_then(|x| x.record(at, &packet));
            (new, key, s.ivr.clone())
        });
        let Some(ivr) = ivr else { continue };
        if new {
            let _ =
                sender(&socket, &shared, from).send(ivr::Out::Play(Prompt::Menu, ivr.menu.clone()));
        }
        if let Some(d) = key
            && let Some(audio) = ivr.prompt(d.digit)
        {
            let _ = sender(&socket, &shared, from)
                .send(ivr::Out::Play(Prompt::Key(d.digit), audio.to_vec()));
        }
    }
}
