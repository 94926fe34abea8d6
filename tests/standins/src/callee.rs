//! The callee: a script of silence, speech-like audio and noise bursts, paced in real time at
//! 48 kHz / 20 ms, and an [`AudioIo`] that records what the agent sent and when it cleared.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use callfleet_voice::{AudioError, AudioFrame, AudioIo, Input};
use tokio::{sync::mpsc, time::Instant};

pub const RATE: u32 = 48_000;
pub const FRAME: usize = 960;

#[derive(Debug, Clone, Copy)]
pub enum Seg {
    Silence(u64),
    /// Voiced, speech-like audio (harmonics of ~140 Hz with a syllable envelope), in ms.
    Speech(u64),
    /// White noise burst, in ms.
    Noise(u64),
    /// A pure tone (a voicemail beep, a fax tone) at a third of full scale, in ms.
    Tone {
        hz: u32,
        ms: u64,
    },
}

#[derive(Debug, Default)]
pub struct IoLog {
    pub sent: Vec<(Instant, AudioFrame)>,
    pub clears: Vec<Instant>,
}

impl IoLog {
    pub fn sent_after(&self, t: Instant) -> usize {
        self.sent.iter().filter(|(at, _)| *at >= t).count()
    }
}

pub struct MemoryIo {
    rx: mpsc::Receiver<AudioFrame>,
    keys: mpsc::UnboundedReceiver<char>,
    log: Arc<Mutex<IoLog>>,
}

impl MemoryIo {
    /// Frames sent by the callee and not yet taken by the session.
    pub fn queued(&self) -> usize {
        self.rx.len()
    }

    /// A frame taken, with the audio still queued behind it (as the agent's `RoomIo` does).
    fn taken(&self, frame: Option<AudioFrame>) -> Option<AudioFrame> {
        frame.map(|f| {
            let behind = f.duration() * self.rx.len() as u32;
            f.behind(behind)
        })
    }
}

impl AudioIo for MemoryIo {
    async fn recv(&mut self) -> Option<AudioFrame> {
        let frame = self.rx.recv().await;
        self.taken(frame)
    }

    async fn recv_input(&mut self) -> Option<Input> {
        tokio::select! {
            biased;
            Some(key) = self.keys.recv() => Some(Input::Dtmf(key)),
            frame = self.rx.recv() => self.taken(frame).map(Input::Audio),
        }
    }

    async fn send(&mut self, frame: AudioFrame) -> Result<(), AudioError> {
        lock(&self.log).sent.push((Instant::now(), frame));
        Ok(())
    }

    fn clear(&mut self) {
        lock(&self.log).clears.push(Instant::now());
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Controls the callee side of the call.
pub struct Callee {
    pub log: Arc<Mutex<IoLog>>,
    hangup: Option<tokio::sync::oneshot::Sender<()>>,
    /// When the first frame of the script was sent.
    pub t0: Arc<Mutex<Option<Instant>>>,
    keys: mpsc::UnboundedSender<char>,
}

impl Callee {
    /// Start playing `script` (then silence, for at most `max` in total) into a new `MemoryIo`.
    pub fn start(script: Vec<Seg>, max: Duration) -> (Self, MemoryIo) {
        let (tx, rx) = mpsc::channel(64);
        let (keys, keys_rx) = mpsc::unbounded_channel();
        let (hangup_tx, mut hangup_rx) = tokio::sync::oneshot::channel();
        let log = Arc::new(Mutex::new(IoLog::default()));
        let t0 = Arc::new(Mutex::new(None));
        let t0c = t0.clone();
        tokio::spawn(async move {
            let mut samples = render(&script);
            let total = (max.as_millis() as usize / 20) * FRAME;
            samples.resize(total.max(samples.len()), 0);
            let mut rng = 7u32;
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for chunk in samples.chunks(FRAME) {
                tokio::select! {
                    _ = &mut hangup_rx => return,
                    _ = tick.tick() => {}
                }
                lock(&t0c).get_or_insert_with(Instant::now);
                // A faint noise floor, as on a real line.
                let frame: Vec<i16> = chunk
                    .iter()
                    .map(|&s| s.saturating_add(((lcg(&mut rng) % 41) as i16) - 20))
                    .collect();
                if tx.send(AudioFrame::new(frame, RATE)).await.is_err() {
                    return;
                }
            }
        });
        (
            Self {
                log: log.clone(),
                hangup: Some(hangup_tx),
                t0,
                keys,
            },
            MemoryIo {
                rx,
                keys: keys_rx,
                log,
            },
        )
    }

    /// Press a key on the callee's phone (SIP DTMF reaching the session).
    pub fn press(&self, key: char) {
        let _ = self.keys.send(key);
    }

    pub fn hangup(&mut self) {
        if let Some(h) = self.hangup.take() {
            let _ = h.send(());
        }
    }

    pub fn t0(&self) -> Instant {
        lock(&self.t0).unwrap_or_else(Instant::now)
    }
}

fn lcg(s: &mut u32) -> u32 {
    *s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
    *s >> 8
}

/// Render a script to 48 kHz samples.
pub fn render(script: &[Seg]) -> Vec<i16> {
    let mut out = Vec::new();
    let mut rng = 12345u32;
    for seg in script {
        match *seg {
            Seg::Silence(ms) => out.extend(std::iter::repeat_n(0i16, ms as usize * 48)),
            Seg::Speech(ms) => {
                let n = ms as usize * 48;
                for i in 0..n {
                    let t = i as f64 / f64::from(RATE);
                    let f0 = 140.0 + 15.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
                    let mut v = 0.0;
                    for k in 1..=8 {
                        v += (2.0 * std::f64::consts::PI * f0 * k as f64 * t).sin() / k as f64;
                    }
                    let syllable = 0.4 + 0.6 * (std::f64::consts::PI * 4.0 * t).sin().abs();
                    out.push((v * syllable * 0.12 * 32767.0) as i16);
                }
            }
            Seg::Noise(ms) => {
                for _ in 0..ms as usize * 48 {
                    out.push(((lcg(&mut rng) % 20_000) as i32 - 10_000) as i16);
                }
            }
            Seg::Tone { hz, ms } => {
                for i in 0..ms as usize * 48 {
                    let t = i as f64 / f64::from(RATE);
                    let v = (2.0 * std::f64::consts::PI * f64::from(hz) * t).sin();
                    out.push((v * 0.33 * 32767.0) as i16);
                }
            }
        }
    }
    out
}
