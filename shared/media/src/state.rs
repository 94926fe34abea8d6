//! The session's state: what outlives any one connection (channels to the user's handles,
//! the roster, published tracks, pending publications). The loop (`session`) and the
//! reactions to each message (`handlers`) are methods on it.

use std::collections::HashMap;

use tokio::sync::{broadcast, mpsc};

use crate::command::{Command, Pending};
use crate::events::{AudioFrame, Event};
use crate::options::Options;
use crate::roster::Roster;
use crate::track::LocalAudioTrack;

/// State that outlives any one connection.
pub struct Session {
    pub url: url::Url,
    pub opts: Options,
    pub cmd_tx: mpsc::UnboundedSender<Command>,
    pub cmd_rx: mpsc::UnboundedReceiver<Command>,
    pub events: broadcast::Sender<Event>,
    pub audio: broadcast::Sender<AudioFrame>,
    pub roster: Roster,
    pub published: Vec<LocalAudioTrack>,
    pub(crate) pending: HashMap<String, Pending>,
    pub(crate) next_cid: u32,
    /// The sequence number of our last reliable data packet.
    pub(crate) data_seq: u32,
    pub(crate) ended_tx: mpsc::UnboundedSender<String>,
    pub(crate) ended_rx: mpsc::UnboundedReceiver<String>,
}

impl Session {
    pub fn new(
        url: url::Url,
        opts: Options,
        cmd: (
            mpsc::UnboundedSender<Command>,
            mpsc::UnboundedReceiver<Command>,
        ),
        events: broadcast::Sender<Event>,
        audio: broadcast::Sender<AudioFrame>,
    ) -> Self {
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        Self {
            url,
            opts,
            cmd_tx: cmd.0,
            cmd_rx: cmd.1,
            events,
            audio,
            roster: Roster::default(),
            published: Vec::new(),
            pending: HashMap::new(),
            next_cid: 0,
            data_seq: 0,
            ended_tx,
            ended_rx,
        }
    }

    pub(crate) fn emit(&self, e: Event) {
        tracing::debug!(event = ?e, "event");
        let _ = self.events.send(e);
    }

    pub(crate) fn emit_all(&self, events: Vec<Event>) {
        events.into_iter().for_each(|e| self.emit(e));
    }
}
