//! Narrowband tones in the callee's audio: a voicemail beep, fax CNG (1100 Hz) and CED
//! (2100 Hz), a line test tone.
//!
//! A Goertzel bank (375-2525 Hz every 25 Hz) over 20 ms blocks at 8 kHz (input at a multiple
//! of 8 kHz is first decimated by averaging; a phone line carries nothing above 4 kHz, and the
//! averaging's droop at 2.5 kHz is under 1 dB), so no FFT crate: 87 bins over 160 samples is
//! about 14k multiply-adds per block. A block is *tonal* when one bin holds most of its energy
//! (a sine does, speech spreads over harmonics and formants); the tracker joins tonal blocks of
//! one frequency into a [`Tone`], forgiving a single odd block (CED's phase reversals, a noise
//! burst).

use std::time::Duration;

/// The bank reaches a bin past the 400-2500 Hz the rules use: a block whose strongest bin is
/// at the bank's edge peaks outside it (a voice's low harmonic) and is not a tone.
const LOW_HZ: f32 = 375.0;
const HIGH_HZ: f32 = 2525.0;
const STEP_HZ: f32 = 25.0;
/// Share of a block's energy in its strongest bin for the block to count as a tone. An on-bin
/// sine gives 1.0, one a quarter bin off 0.81; G.711 and line noise at -30 dBFS under a
/// -20 dBFS beep still leave > 0.8; speech rarely passes 0.5.
const TONAL_SHARE: f32 = 0.6;
/// Blocks quieter than this are never a tone (dBFS).
const MIN_LEVEL_DBFS: f32 = -45.0;
/// How far a block's frequency may stray from the tone's and still extend it. A beep's sine
/// holds its pitch to a few hertz; a vowel's harmonic glides with the intonation (a "here"
/// falling 450 -> 400 Hz in 160 ms passed as a tone at 40 Hz).
const SAME_TONE_HZ: f32 = 20.0;
/// A tone shorter than this is not reported (vowels can be briefly sine-like).
pub(crate) const MIN_TONE: Duration = Duration::from_millis(100);
const BLOCK_RATE: u32 = 50;

/// One analysed 20 ms block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Block {
    /// The strongest bin, refined by parabolic interpolation.
    pub freq_hz: f32,
    pub tonal: bool,
    /// When the block ends, after the answer.
    pub end: Duration,
}

/// The callee's audio cut into 20 ms blocks at (about) 8 kHz, each run through the bank.
#[derive(Debug)]
pub(crate) struct ToneDetector {
    rate: u32,
    factor: u32,
    acc: f32,
    acc_n: u32,
    block: Vec<f32>,
    block_len: usize,
    bank: Vec<(f32, f32)>,
}

impl ToneDetector {
    pub fn new() -> Self {
        Self {
            rate: 0,
            factor: 1,
            acc: 0.0,
            acc_n: 0,
            block: Vec::new(),
            block_len: 0,
            bank: Vec::new(),
        }
    }

    fn set_rate(&mut self, rate: u32) {
        self.rate = rate;
        self.factor = if rate.is_multiple_of(8000) {
            rate / 8000
        } else {
            1
        };
        let analysis = (rate / self.factor) as f32;
        self.block_len = (rate / self.factor / BLOCK_RATE).max(1) as usize;
        self.block.clear();
        self.acc = 0.0;
        self.acc_n = 0;
        let top = HIGH_HZ.min(analysis / 2.0 - STEP_HZ);
        self.bank = (0..)
            .map(|i| LOW_HZ + i as f32 * STEP_HZ)
            .take_while(|f| *f <= top)
            .map(|f| (f, 2.0 * (std::f32::consts::TAU * f / analysis).cos()))
            .collect();
    }

    /// Feed a frame ending at `at`; `out` gets each block completed inside it.
    pub fn push(&mut self, samples: &[i16], rate: u32, at: Duration, out: &mut impl FnMut(Block)) {
        if rate == 0 {
            return;
        }
        if rate != self.rate {
            self.set_rate(rate);
        }
        let n = samples.len();
        for (i, &s) in samples.iter().enumerate() {
            self.acc += f32::from(s) / 32768.0;
            self.acc_n += 1;
            if self.acc_n < self.factor {
                continue;
            }
            self.block.push(self.acc / self.factor as f32);
            self.acc = 0.0;
            self.acc_n = 0;
            if self.block.len() == self.block_len {
                let left = (n - 1 - i) as u64;
                let end =
                    at.saturating_sub(Duration::from_nanos(left * 1_000_000_000 / u64::from(rate)));
                out(self.analyse(end));
                self.block.clear();
            }
        }
    }

    fn analyse(&self, end: Duration) -> Block {
        let x = &self.block;
        let energy: f32 = x.iter().map(|v| v * v).sum();
        let level_dbfs = 10.0 * (2.0 * energy / x.len() as f32).max(1e-10).log10();
        let mut shares = self.bank.iter().map(|&(_, coeff)| {
            let (mut s1, mut s2) = (0.0f32, 0.0f32);
            for &v in x {
                let s = v + coeff * s1 - s2;
                s2 = s1;
                s1 = s;
            }
            let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
            2.0 * power / (x.len() as f32 * energy.max(1e-12))
        });
        // Best bin and its neighbours, without collecting the bank's output.
        let (mut best, mut best_i, mut prev, mut left, mut right) = (0.0f32, 0, 0.0f32, 0.0, 0.0);
        let mut pending_right = false;
        for (i, share) in shares.by_ref().enumerate() {
            if pending_right {
                right = share;
                pending_right = false;
            }
            if share > best {
                best = share;
                best_i = i;
                left = prev;
                right = 0.0;
                pending_right = true;
            }
            prev = share;
        }
        let denom = left - 2.0 * best + right;
        let delta = if denom.abs() > 1e-9 {
            (0.5 * (left - right) / denom).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        let freq_hz = self.bank.get(best_i).map_or(0.0, |b| b.0) + delta * STEP_HZ;
        let inside = best_i > 0 && best_i + 1 < self.bank.len();
        Block {
            freq_hz,
            tonal: inside && best >= TONAL_SHARE && level_dbfs >= MIN_LEVEL_DBFS,
            end,
        }
    }
}

/// A run of tonal blocks at one frequency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tone {
    pub freq_hz: f32,
    pub start: Duration,
    pub end: Duration,
    /// False while it still sounds.
    pub ended: bool,
}

impl Tone {
    pub fn len(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }

    pub fn near(&self, hz: f32, tolerance: f32) -> bool {
        (self.freq_hz - hz).abs() <= tolerance
    }
}

/// Joins tonal blocks into tones; keeps the one sounding and the last one that ended.
#[derive(Debug, Default)]
pub(crate) struct ToneTracker {
    run: Option<(f32, u32, Duration, Duration)>,
    misses: u32,
    last: Option<Tone>,
}

impl ToneTracker {
    pub fn push(&mut self, b: Block) {
        let block = Duration::from_millis(1000 / u64::from(BLOCK_RATE));
        match &mut self.run {
            Some((sum, n, _, end))
                if b.tonal && (b.freq_hz - *sum / *n as f32).abs() <= SAME_TONE_HZ =>
            {
                *sum += b.freq_hz;
                *n += 1;
                *end = b.end;
                self.misses = 0;
            }
            Some(_) if self.misses == 0 && !b.tonal => self.misses = 1,
            _ => {
                self.close();
                if b.tonal {
                    self.run = Some((b.freq_hz, 1, b.end.saturating_sub(block), b.end));
                }
            }
        }
    }

    /// Time passing with no audio: a tone not heard for two blocks has ended.
    pub fn idle(&mut self, at: Duration) {
        if let Some((_, _, _, end)) = self.run
            && at.saturating_sub(end) > Duration::from_millis(40)
        {
            self.close();
        }
    }

    fn close(&mut self) {
        if let Some((sum, n, start, end)) = self.run.take()
            && end.saturating_sub(start) >= MIN_TONE
        {
            self.last = Some(Tone {
                freq_hz: sum / n as f32,
                start,
                end,
                ended: true,
            });
        }
        self.misses = 0;
    }

    /// The tone sounding now, once it is long enough to count.
    pub fn sounding(&self) -> Option<Tone> {
        let (sum, n, start, end) = self.run?;
        (end.saturating_sub(start) >= MIN_TONE).then(|| Tone {
            freq_hz: sum / n as f32,
            start,
            end,
            ended: false,
        })
    }

    /// The last tone that ended.
    pub fn last(&self) -> Option<Tone> {
        self.last
    }
}
