//! RTP as the tap reads and writes it (RFC 3550), G.711 mu-law levels, and RFC 4733
//! telephone-events. Pure.

/// PCMU's static payload type.
pub const PCMU: u8 = 0;
/// The telephone-event payload type the callee's SDP names (`a=rtpmap:101 telephone-event/8000`).
pub const EVENT: u8 = 101;
/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;
/// Mu-law silence (digital zero).
pub const SILENCE: u8 = 0xff;

/// One RTP packet's header fields and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtp<'a> {
    pub pt: u8,
    pub marker: bool,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

/// Parses an RTP packet (version 2; CSRCs, a header extension and padding skipped), or `None`.
pub fn parse(buf: &[u8]) -> Option<Rtp<'_>> {
    if buf.len() < 12 {
        return None;
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 >> 6 != 2 {
        return None;
    }
    let mut start = 12 + 4 * usize::from(b0 & 0x0f);
    if b0 & 0x10 != 0 {
        let words = u16::from_be_bytes([*buf.get(start + 2)?, *buf.get(start + 3)?]);
        start += 4 + 4 * usize::from(words);
    }
    let mut end = buf.len();
    if b0 & 0x20 != 0 {
        end = end.checked_sub(usize::from(*buf.last()?))?;
    }
    Some(Rtp {
        pt: b1 & 0x7f,
        marker: b1 & 0x80 != 0,
        seq: u16::from_be_bytes([buf[2], buf[3]]),
        ts: u32::from_be_bytes(buf.get(4..8)?.try_into().ok()?),
        ssrc: u32::from_be_bytes(buf.get(8..12)?.try_into().ok()?),
        payload: buf.get(start..end)?,
    })
}

/// An RTP packet (version 2, no CSRC, no extension).
pub fn build(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + payload.len());
    out.push(0x80);
    out.push(pt & 0x7f | if marker { 0x80 } else { 0 });
    out.extend(seq.to_be_bytes());
    out.extend(ts.to_be_bytes());
    out.extend(ssrc.to_be_bytes());
    out.extend(payload);
    out
}

/// G.711 mu-law decoding of one byte.
pub fn ulaw_decode(byte: u8) -> i16 {
    let b = !byte;
    let exponent = (b >> 4) & 0x07;
    let mantissa = i32::from(b & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    let s = if b & 0x80 != 0 { -magnitude } else { magnitude };
    i16::try_from(s).unwrap_or(if s < 0 { i16::MIN } else { i16::MAX })
}

/// The RMS level of mu-law samples in dBFS (-120 for digital silence or nothing).
pub fn ulaw_dbfs(payload: &[u8]) -> f64 {
    if payload.is_empty() {
        return -120.0;
    }
    let power: f64 = payload
        .iter()
        .map(|&b| (f64::from(ulaw_decode(b)) / 32768.0).powi(2))
        .sum::<f64>()
        / payload.len() as f64;
    (10.0 * power.max(1e-12).log10()).max(-120.0)
}

/// One RFC 4733 telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelEvent {
    /// The event (0-15 are the DTMF keys).
    pub code: u8,
    /// The E bit: the event is over (sent three times, RFC 4733 §2.5.1.4).
    pub end: bool,
    /// Power level in -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in timestamp units (8 kHz).
    pub duration: u16,
}

impl TelEvent {
    /// Reads a payload (its first four bytes), or `None` if it is shorter.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let b = payload.get(..4)?;
        Some(Self {
            code: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// The payload's four bytes.
    pub fn bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        let e = if self.end { 0x80 } else { 0 };
        [self.code, e | (self.volume & 0x3f), d[0], d[1]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_packet_parses_back() {
        let p = build(PCMU, true, 7, 1600, 42, &[1, 2, 3]);
        let r = parse(&p).expect("parses");
        assert_eq!(
            (r.pt, r.marker, r.seq, r.ts, r.ssrc),
            (0, true, 7, 1600, 42)
        );
        assert_eq!(r.payload, &[1, 2, 3]);
        assert!(parse(&p[..8]).is_none(), "short");
        assert!(parse(&[0x40; 20]).is_none(), "version 1");
    }

    #[test]
    fn mu_law_levels() {
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert!(ulaw_dbfs(&[0xff; 160]) <= -100.0, "silence");
        assert!(ulaw_dbfs(&[0x80; 160]) > -1.0, "full scale");
    }

    #[test]
    fn telephone_events_round_trip() {
        let ev = TelEvent {
            code: 11,
            end: true,
            volume: 10,
            duration: 2000,
        };
        assert_eq!(ev.bytes(), [11, 0x8a, 0x07, 0xd0]);
        assert_eq!(TelEvent::parse(&ev.bytes()), Some(ev));
        assert_eq!(TelEvent::parse(&[1, 2]), None);
    }
}
