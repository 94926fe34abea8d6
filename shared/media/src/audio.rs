//! Audio plumbing: PCM at any common rate -> 48 kHz -> Opus packets, and
//! Opus packets -> 48 kHz mono PCM.
//!
//! Opus comes from libopus through the `opus` crate (the encoder is needed
//! anyway, and no pure-Rust Opus encoder is production grade). Resampling uses
//! `rubato`'s FFT resampler, fed in the exact chunk sizes it asks for.

use rubato::{FftFixedIn, Resampler as _};

use crate::error::{Error, Result};

/// LiveKit (WebRTC) Opus always runs at 48 kHz.
pub const OPUS_RATE: u32 = 48_000;
/// Samples in one 20 ms frame at 48 kHz, mono.
pub const FRAME_SAMPLES: usize = 960;
/// Largest Opus frame (120 ms at 48 kHz).
const MAX_FRAME: usize = 5760;
/// Packet gaps up to this size are concealed with Opus PLC; larger ones are skipped.
const MAX_CONCEALED: u16 = 5;

/// Sample rates accepted by [`Encoder::new`].
pub const MIN_RATE: u32 = 8_000;
/// Highest accepted input rate.
pub const MAX_RATE: u32 = 192_000;

/// Mono i16 -> mono i16 rate converter around rubato (also used by the call recorder).
pub struct Resampler {
    inner: FftFixedIn<f32>,
    input: Vec<f32>,
}

impl Resampler {
    /// A converter from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Result<Self> {
        let chunk = (from / 100).max(1) as usize; // ~10 ms chunks
        let inner = FftFixedIn::<f32>::new(from as usize, to as usize, chunk, 2, 1)
            .map_err(|e| Error::Resample(e.to_string()))?;
        Ok(Self {
            inner,
            input: Vec::with_capacity(chunk * 2),
        })
    }

    /// Adds `pcm`, appends every sample that can be produced so far to `out`.
    pub fn process(&mut self, pcm: &[i16], out: &mut Vec<i16>) -> Result<()> {
        self.input
            .extend(pcm.iter().map(|&s| f32::from(s) / 32768.0));
        let mut consumed = 0;
        // Each pass consumes at least one sample, so this ends.
        loop {
            let need = self.inner.input_frames_next();
            if need == 0 || self.input.len() - consumed < need {
                break;
            }
            let chunk = &self.input[consumed..consumed + need];
            let res = self
                .inner
                .process(&[chunk], None)
                .map_err(|e| Error::Resample(e.to_string()))?;
            consumed += need;
            if let Some(ch) = res.first() {
                out.extend(ch.iter().map(|&s| to_i16(s)));
            }
        }
        self.input.drain(..consumed);
        Ok(())
    }
}

fn to_i16(s: f32) -> i16 {
    // Float -> int `as` saturates, so out-of-range input clips instead of wrapping.
    (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// PCM in, 20 ms Opus packets out.
pub struct Encoder {
    resampler: Option<Resampler>,
    pending: Vec<i16>,
    scratch: Vec<i16>,
    opus: opus::Encoder,
    packet: Vec<u8>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Encoder {
    /// An encoder for mono PCM at `input_rate` Hz (8 kHz ..= 192 kHz).
    pub fn new(input_rate: u32) -> Result<Self> {
        if !(MIN_RATE..=MAX_RATE).contains(&input_rate) {
            return Err(Error::InvalidArgument(format!(
                "sample rate {input_rate} outside {MIN_RATE}..={MAX_RATE}"
            )));
        }
        let resampler = match input_rate {
            OPUS_RATE => None,
            r => Some(Resampler::new(r, OPUS_RATE)?),
        };
        let mut opus =
            opus::Encoder::new(OPUS_RATE, opus::Channels::Mono, opus::Application::Voip)?;
        opus.set_bitrate(opus::Bitrate::Bits(32_000))?;
        opus.set_inband_fec(true)?;
        Ok(Self {
            resampler,
            pending: Vec::with_capacity(FRAME_SAMPLES * 4),
            scratch: Vec::with_capacity(FRAME_SAMPLES * 4),
            opus,
            packet: vec![0; 1500],
        })
    }

    /// Feeds PCM; calls `sink` with each complete 20 ms Opus packet.
    pub fn push(&mut self, pcm: &[i16], mut sink: impl FnMut(&[u8])) -> Result<()> {
        match &mut self.resampler {
            Some(r) => r.process(pcm, &mut self.pending)?,
            None => self.pending.extend_from_slice(pcm),
        }
        let mut at = 0;
        while self.pending.len() - at >= FRAME_SAMPLES {
            let n = self
                .opus
                .encode(&self.pending[at..at + FRAME_SAMPLES], &mut self.packet)?;
            at += FRAME_SAMPLES;
            if let Some(p) = self.packet.get(..n) {
                sink(p);
            }
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.pending[at..]);
        std::mem::swap(&mut self.pending, &mut self.scratch);
        Ok(())
    }
}

/// Opus packets in (with RTP sequence numbers), 48 kHz mono PCM out.
pub struct Decoder {
    opus: opus::Decoder,
    buf: Vec<i16>,
    last_seq: Option<u16>,
    /// Samples in the last decoded frame: the size concealment produces.
    frame_len: usize,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("last_seq", &self.last_seq)
            .finish()
    }
}

impl Decoder {
    /// A mono 48 kHz decoder.
    pub fn new() -> Result<Self> {
        Ok(Self {
            opus: opus::Decoder::new(OPUS_RATE, opus::Channels::Mono)?,
            buf: vec![0; MAX_FRAME],
            last_seq: None,
            frame_len: FRAME_SAMPLES,
        })
    }

    /// Decodes one packet, appending PCM to `out`. Small sequence gaps are
    /// filled first: the frame right before this packet from its in-band FEC
    /// data, earlier ones by packet-loss concealment. Late (reordered or
    /// duplicate) packets are dropped. A packet libopus rejects is skipped.
    pub fn decode(&mut self, seq: u16, payload: &[u8], out: &mut Vec<i16>) {
        if let Some(last) = self.last_seq {
            let gap = seq.wrapping_sub(last);
            if gap == 0 || gap > u16::MAX / 2 {
                return; // duplicate or late
            }
            if gap > 1 && gap - 1 <= MAX_CONCEALED {
                let len = self.frame_len.min(MAX_FRAME);
                for missing in 1..gap {
                    // libopus conceals exactly as many samples as the buffer holds.
                    let fec = missing == gap - 1 && !payload.is_empty();
                    let input = if fec { payload } else { &[] };
                    if let Ok(n) = self.opus.decode(input, &mut self.buf[..len], fec) {
                        out.extend_from_slice(&self.buf[..n.min(len)]);
                    }
                }
            }
        }
        self.last_seq = Some(seq);
        if payload.is_empty() {
            return;
        }
        match self.opus.decode(payload, &mut self.buf, false) {
            Ok(n) => {
                let n = n.min(MAX_FRAME);
                self.frame_len = n.max(120);
                out.extend_from_slice(&self.buf[..n]);
            }
            Err(e) => tracing::debug!(error = %e, "dropping undecodable opus packet"),
        }
    }
}

/// Bare Opus cost reference for benchmarks: encodes then decodes `pcm`
/// (48 kHz mono, whole 20 ms frames) and returns the packet count.
pub fn encode_decode_roundtrip(pcm: &[i16]) -> Result<usize> {
    let mut enc = Encoder::new(OPUS_RATE)?;
    let mut dec = Decoder::new()?;
    let mut out = Vec::with_capacity(pcm.len());
    let mut seq = 0u16;
    let mut packets = 0;
    enc.push(pcm, |p| {
        dec.decode(seq, p, &mut out);
        seq = seq.wrapping_add(1);
        packets += 1;
    })?;
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| ((i as f32 * hz * std::f32::consts::TAU / rate as f32).sin() * 8000.0) as i16)
            .collect()
    }

    #[test]
    fn every_common_rate_encodes_to_20ms_packets() {
        for rate in [8_000, 16_000, 24_000, 44_100, 48_000] {
            let mut enc = Encoder::new(rate).expect("encoder");
            let mut packets = 0;
            // One second in 10 ms pushes.
            let pcm = sine(rate, 440.0, rate as usize);
            for chunk in pcm.chunks(rate as usize / 100) {
                enc.push(chunk, |_| packets += 1).expect("push");
            }
            assert!(
                (48..=50).contains(&packets),
                "rate {rate}: {packets} packets"
            );
        }
    }

    #[test]
    fn lost_packets_are_filled_with_one_frame_each() {
        let pcm = sine(48_000, 440.0, 48_000 / 5); // 10 packets
        let mut enc = Encoder::new(48_000).expect("encoder");
        let mut packets = Vec::new();
        enc.push(&pcm, |p| packets.push(p.to_vec())).expect("push");
        let mut dec = Decoder::new().expect("decoder");
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            if i == 3 || i == 6 || i == 7 {
                continue; // lost
            }
            dec.decode(i as u16, p, &mut out);
        }
        assert_eq!(out.len(), packets.len() * FRAME_SAMPLES);
    }

    #[test]
    fn rejects_silly_rates() {
        assert!(Encoder::new(0).is_err());
        assert!(Encoder::new(1_000_000).is_err());
    }

    #[test]
    fn decoder_survives_garbage_and_gaps() {
        let mut dec = Decoder::new().expect("decoder");
        let mut out = Vec::new();
        dec.decode(1, &[0xff, 0xff, 0xff], &mut out);
        dec.decode(3, &[], &mut out);
        dec.decode(2, &[1, 2, 3], &mut out); // late: dropped
        let n = encode_decode_roundtrip(&sine(48_000, 440.0, 48_000)).expect("roundtrip");
        assert_eq!(n, 50);
    }
}
