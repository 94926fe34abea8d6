//! Answering a source symmetrically: one RTP sender per source (the address its packets come
//! from: livekit-sip receives on the port it sends from), 20 ms apart, playing prompts as
//! PCMU, silence between them (an answering phone keeps sending), and RFC 4733 keys.

use std::{collections::VecDeque, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{net::UdpSocket, sync::mpsc};

use super::rtp::{self, FRAME, TelEvent};
use super::{Played, Prompt, Shared};

/// The IVR: its menu, played to every new source, and the prompt that answers each key.
#[derive(Debug, Clone)]
pub struct Ivr {
    /// Raw G.711 mu-law, 8 kHz.
    pub menu: Vec<u8>,
    /// The answer to a key (raw mu-law); a key without one is recorded and not answered.
    pub prompts: Vec<(char, Vec<u8>)>,
}

impl Ivr {
    /// The rig's IVR (`…210`): the menu "For sales, press 1. For support, press 2." and the
    /// answers to 1 and 2, from the speech `make setup` writes under `root`.
    pub fn from_rig(root: &std::path::Path) -> std::io::Result<Self> {
        use callfleet_rig::callee::speech;
        Ok(Self {
            menu: speech::read(root, speech::IVR_MENU)?,
            prompts: vec![
                ('1', speech::read(root, speech::IVR_SALES)?),
                ('2', speech::read(root, speech::IVR_SUPPORT)?),
            ],
        })
    }

    /// The prompt that answers `key`.
    pub(crate) fn prompt(&self, key: char) -> Option<&[u8]> {
        self.prompts
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, a)| a.as_slice())
    }
}

/// What a source's sender is asked to do.
pub(crate) enum Out {
    /// Stop what is playing and play this (an IVR stops its menu when a key is pressed).
    Play(Prompt, Vec<u8>),
    /// Send one key as RFC 4733 events.
    Key(char),
}

/// A key lasts this long (then three end packets), as livekit-sip plays them.
const KEY_MS: u16 = 250;
/// The telephone-event power level sent, -dBm0.
const KEY_VOLUME: u8 = 10;
/// A sender stops when its source has sent nothing for this long (the call is over).
const IDLE: Duration = Duration::from_secs(5);

enum Frame {
    Audio([u8; FRAME]),
    Event(TelEvent, bool),
}

/// Starts a sender toward `to`; its queue is the returned channel.
pub(crate) fn spawn(
    socket: Arc<UdpSocket>,
    to: SocketAddr,
    shared: Shared,
) -> (mpsc::UnboundedSender<Out>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let ssrc = 0x7a70_0000 | u32::from(to.port());
        let (mut seq, mut ts, mut first) = (0u16, 0u32, true);
        let mut frames: VecDeque<Frame> = VecDeque::new();
        let mut playing: Option<usize> = None; // index into `played`
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            loop {
                match rx.try_recv() {
                    Ok(Out::Play(prompt, audio)) => {
                        frames.retain(|f| matches!(f, Frame::Event(..)));
                        frames.extend(audio.chunks(FRAME).map(|c| {
                            let mut f = [rtp::SILENCE; FRAME];
                            f[..c.len()].copy_from_slice(c);
                            Frame::Audio(f)
                        }));
                        let now = std::time::Instant::now();
                        playing = Some(shared.with(|s| {
                            if let Some(p) = playing.and_then(|i| s.played.get_mut(i)) {
                                p.ended_at.get_or_insert(now);
                            }
                            s.played.push(Played {
                                source: to,
                                prompt,
                                started_at: now,
                                ended_at: None,
                            });
                            s.played.len() - 1
                        }));
                    }
                    Ok(Out::Key(key)) => frames.extend(key_frames(key)),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            }
            if shared.with(|s| s.idle_since(to) > IDLE) {
                return;
            }
            let packet = match frames.pop_front() {
                Some(Frame::Event(ev, start)) => {
                    let p = rtp::build(rtp::EVENT, start, seq, ts, ssrc, &ev.bytes());
                    if ev.end && !matches!(frames.front(), Some(Frame::Event(e, _)) if e.end) {
                        ts = ts.wrapping_add(u32::from(ev.duration)); // audio resumes after it
                    }
                    p
                }
                other => {
                    let audio = match other {
                        Some(Frame::Audio(a)) => a,
                        _ => {
                            if let Some(i) = playing.take() {
                                let now = std::time::Instant::now();
                                shared.with(|s| {
                                    if let Some(p) = s.played.get_mut(i) {
                                        p.ended_at.get_or_insert(now);
                                    }
                                });
                            }
                            [rtp::SILENCE; FRAME]
                        }
                    };
                    let p = rtp::build(rtp::PCMU, first, seq, ts, ssrc, &audio);
                    ts = ts.wrapping_add(FRAME as u32);
                    first = false;
                    p
                }
            };
            seq = seq.wrapping_add(1);
            let _ = socket.send_to(&packet, to).await;
        }
    });
    (tx, task)
}

/// One key as RFC 4733 packets 20 ms apart: the first marked, the duration growing by a
/// frame each, then the end three times with the final duration; all share one timestamp.
fn key_frames(key: char) -> Vec<Frame> {
    let Some(code) = callfleet_media::data::dtmf_code(key).and_then(|c| u8::try_from(c).ok())
    else {
        return Vec::new();
    };
    let step = FRAME as u16;
    let n = KEY_MS / 20;
    let ev = |end, duration| TelEvent {
        code,
        end,
        volume: KEY_VOLUME,
        duration,
    };
    let mut out: Vec<Frame> = (1..n)
        .map(|i| Frame::Event(ev(false, step * i), i == 1))
        .collect();
    out.extend((0..3).map(|_| Frame::Event(ev(true, step * n), false)));
    out
}
