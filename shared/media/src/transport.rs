//! The user-facing handle: connect, events, remote audio, publish, leave.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::command::Command;
use crate::conn::Conn;
use crate::error::{Error, Result};
use crate::events::{AudioFrame, Event};
use crate::options::Options;
use crate::state::Session;
use crate::track::LocalAudioTrack;

/// The pace of [`Transport::send_dtmf_digits`]: one key per livekit-sip key length.
pub const DTMF_INTERVAL: Duration = Duration::from_millis(500);

/// One participant in one LiveKit room.
///
/// Dropping it leaves the room (like [`Transport::leave`], without waiting).
#[derive(Debug)]
pub struct Transport {
    cmd: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<Event>,
    audio: broadcast::Sender<AudioFrame>,
    first_events: Mutex<Option<broadcast::Receiver<Event>>>,
    first_audio: Mutex<Option<broadcast::Receiver<AudioFrame>>>,
    identity: String,
    participant_sid: String,
    room: String,
    timeout: Duration,
}

impl Transport {
    /// Joins the room the `token` grants (`url`: `ws://host:port` or `http://host:port`).
    pub async fn connect(url: &str, token: &str, opts: Options) -> Result<Self> {
        let join_url = crate::signal::join_url(url, token, opts.auto_subscribe)?;
        let conn = Conn::open(&join_url, &opts).await?;
        let join = &conn.signal.join;
        let me = conn.me();
        let room = join
            .room
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default();
        tracing::info!(identity = %me.identity, %room, server = %join.server_version, "joined");

        let (events, first_events) = broadcast::channel(opts.event_capacity.max(1));
        let (audio, first_audio) = broadcast::channel(opts.audio_capacity.max(1));
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let timeout = opts.timeout;
        let session = Session::new(
            join_url,
            opts,
            (cmd_tx.clone(), cmd_rx),
            events.clone(),
            audio.clone(),
        );
        tokio::spawn(session.run(conn));
        Ok(Self {
            cmd: cmd_tx,
            events,
            audio,
            first_events: Mutex::new(Some(first_events)),
            first_audio: Mutex::new(Some(first_audio)),
            identity: me.identity,
            participant_sid: me.sid,
            room,
            timeout,
        })
    }

    /// Room events. The first call also gets everything since the join;
    /// later calls get events from the moment of the call.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        take_or_subscribe(&self.first_events, &self.events)
    }

    /// Decoded remote audio, every subscribed track interleaved (tell them
    /// apart by `track_sid`). First call as for [`Self::events`]: until it is
    /// made, up to `audio_capacity` frames are kept for it.
    pub fn remote_audio(&self) -> broadcast::Receiver<AudioFrame> {
        take_or_subscribe(&self.first_audio, &self.audio)
    }

    /// Publishes a mono microphone track named `name` that takes PCM at
    /// `sample_rate` Hz; returns once the server has accepted it.
    pub async fn publish_audio(&self, name: &str, sample_rate: u32) -> Result<LocalAudioTrack> {
        if name.is_empty() {
            return Err(Error::InvalidArgument("track name is empty".into()));
        }
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Publish {
            name: name.to_owned(),
            sample_rate,
            reply,
        };
        self.cmd.send(cmd).map_err(|_| Error::Closed)?;
        match tokio::time::timeout(self.timeout, rx).await {
            Err(_) => Err(Error::Timeout("track published response")),
            Ok(Err(_)) => Err(Error::Closed),
            Ok(Ok(r)) => r,
        }
    }

    /// Presses one DTMF key (`0`-`9`, `*`, `#`, `A`-`D`): a `SipDtmf` data packet to the
    /// room, which livekit-sip turns into RFC 4733 events toward its callee. Returns once the
    /// packet is on the reliable data channel; the first one negotiates the publisher
    /// connection if nothing was published yet. Calls from one task keep their order.
    pub async fn send_dtmf(&self, digit: char) -> Result<()> {
        let digit = crate::data::validate(digit.encode_utf8(&mut [0; 4]))?[0];
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Command::Dtmf { digit, reply })
            .map_err(|_| Error::Closed)?;
        // The session waits for the channel to open within `timeout`; this waits a little more.
        match tokio::time::timeout(self.timeout * 2, rx).await {
            Err(_) => Err(Error::Timeout("the DTMF packet to be sent")),
            Ok(Err(_)) => Err(Error::Closed),
            Ok(Ok(r)) => r,
        }
    }

    /// Presses each key of `digits` in turn, [`DTMF_INTERVAL`] apart: livekit-sip plays one
    /// key as 250 ms of RFC 4733 events and 250 ms of pause, and reads the room's data in
    /// order, so keys faster than that would only queue up there. Every key is checked before
    /// the first is sent.
    pub async fn send_dtmf_digits(&self, digits: &str) -> Result<()> {
        let keys = crate::data::validate(digits)?;
        for (i, key) in keys.into_iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(DTMF_INTERVAL).await;
            }
            self.send_dtmf(key).await?;
        }
        Ok(())
    }

    /// Leaves the room: tells the server, closes everything, and returns
    /// when done. `Disconnected` is the last event. Calling it twice is fine.
    pub async fn leave(&self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        if self.cmd.send(Command::Leave { reply }).is_err() {
            return Ok(());
        }
        let _ = tokio::time::timeout(self.timeout, rx).await;
        Ok(())
    }

    /// True once the session has ended (left, removed, or lost).
    pub fn is_closed(&self) -> bool {
        self.cmd.is_closed()
    }

    /// Our identity (from the token).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Our participant sid (`PA_...`) at the first join (a rejoin gets a new one).
    pub fn participant_sid(&self) -> &str {
        &self.participant_sid
    }

    /// The room name.
    pub fn room(&self) -> &str {
        &self.room
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        let (reply, _) = oneshot::channel();
        let _ = self.cmd.send(Command::Leave { reply });
    }
}

fn take_or_subscribe<T: Clone>(
    first: &Mutex<Option<broadcast::Receiver<T>>>,
    tx: &broadcast::Sender<T>,
) -> broadcast::Receiver<T> {
    let taken = first.lock().ok().and_then(|mut g| g.take());
    taken.unwrap_or_else(|| tx.subscribe())
}
