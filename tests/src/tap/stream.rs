//! What the tap recorded of one source (livekit-sip uses one RTP port per call, so one source
//! is one call): every packet's arrival, the level of each PCMU frame, and the RFC 4733 keys,
//! with the questions tests ask of them ("speech between t1 and t2?").

use std::{net::SocketAddr, time::Instant};

use super::rtp::{self, Rtp, TelEvent};

/// A PCMU frame at least this loud is speech (or a tone); espeak-ng's words and the rig's
/// tones peak far above it, while livekit-sip's silence decodes to digital zero.
pub const SPEECH_DBFS: f64 = -40.0;
/// A PCMU frame quieter than this is silence (Opus' own artefacts on silence stay below it).
pub const SILENCE_DBFS: f64 = -55.0;
/// Speech needs this much loud audio in a span (a click is not speech).
pub const SPEECH_MIN_MS: u64 = 100;

/// One packet's arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub at: Instant,
    pub pt: u8,
    pub marker: bool,
    pub seq: u16,
    pub ts: u32,
    pub len: usize,
}

/// The level of one PCMU packet (20 ms as livekit-sip sends them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    pub at: Instant,
    /// RMS in dBFS.
    pub dbfs: f64,
    /// The audio's length in ms (payload bytes / 8).
    pub ms: u64,
}

/// One key received as RFC 4733 events: every packet with the same RTP timestamp is the same
/// key (the start, the updates and the retransmitted ends collapse into this one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digit {
    /// The RTP source that sent it.
    pub source: SocketAddr,
    /// The key (`0`-`9`, `*`, `#`, `A`-`D`), or `?` for an event code that is not a key.
    pub digit: char,
    /// The event code.
    pub code: u8,
    /// The first packet's arrival.
    pub at: Instant,
    /// The first end packet's arrival, if one came.
    pub ended_at: Option<Instant>,
    /// End packets received (RFC 4733 sends three).
    pub end_packets: u32,
    /// The longest duration announced, in ms.
    pub duration_ms: u32,
    /// Power level in -dBm0.
    pub volume: u8,
    /// The events' RTP timestamp.
    pub rtp_ts: u32,
}

/// Everything received from one source.
#[derive(Debug, Clone)]
pub struct Stream {
    pub source: SocketAddr,
    pub first_at: Instant,
    pub packets: Vec<Packet>,
    pub levels: Vec<Level>,
    pub digits: Vec<Digit>,
}

impl Stream {
    pub(crate) fn new(source: SocketAddr, at: Instant) -> Self {
        Self {
            source,
            first_at: at,
            packets: Vec::new(),
            levels: Vec::new(),
            digits: Vec::new(),
        }
    }

    /// Records one packet; returns the key it starts, if it is the first packet of one.
    pub(crate) fn record(&mut self, at: Instant, p: &Rtp<'_>) -> Option<Digit> {
        self.packets.push(Packet {
            at,
            pt: p.pt,
            marker: p.marker,
            seq: p.seq,
            ts: p.ts,
            len: p.payload.len(),
        });
        match p.pt {
            rtp::PCMU => {
                self.levels.push(Level {
                    at,
                    dbfs: rtp::ulaw_dbfs(p.payload),
                    ms: p.payload.len() as u64 / 8,
                });
                None
            }
            rtp::EVENT => self.event(at, p.ts, TelEvent::parse(p.payload)?),
            _ => None,
        }
    }

    fn event(&mut self, at: Instant, ts: u32, ev: TelEvent) -> Option<Digit> {
        let duration_ms = u32::from(ev.duration) / 8;
        if let Some(d) = self.digits.iter_mut().find(|d| d.rtp_ts == ts) {
            d.duration_ms = d.duration_ms.max(duration_ms);
            if ev.end {
                d.end_packets += 1;
                d.ended_at.get_or_insert(at);
            }
            return None;
        }
        let digit = callfleet_media::data::dtmf_digit(u32::from(ev.code)).unwrap_or('?');
        let d = Digit {
            source: self.source,
            digit,
            code: ev.code,
            at,
            ended_at: ev.end.then_some(at),
            end_packets: u32::from(ev.end),
            duration_ms,
            volume: ev.volume,
            rtp_ts: ts,
        };
        self.digits.push(d);
        Some(d)
    }

    /// The keys received, in order, as text.
    pub fn keys(&self) -> String {
        self.digits.iter().map(|d| d.digit).collect()
    }

    /// The PCMU frames that arrived in `[from, to)`.
    pub fn levels_between(&self, from: Instant, to: Instant) -> impl Iterator<Item = &Level> {
        self.levels
            .iter()
            .filter(move |l| l.at >= from && l.at < to)
    }

    /// The loudest frame in `[from, to)` in dBFS, or `None` if no PCMU arrived then.
    pub fn peak_between(&self, from: Instant, to: Instant) -> Option<f64> {
        self.levels_between(from, to)
            .map(|l| l.dbfs)
            .reduce(f64::max)
    }

    /// Milliseconds of audio at or above [`SPEECH_DBFS`] in `[from, to)`.
    pub fn loud_ms(&self, from: Instant, to: Instant) -> u64 {
        self.levels_between(from, to)
            .filter(|l| l.dbfs >= SPEECH_DBFS)
            .map(|l| l.ms)
            .sum()
    }

    /// Did the callee receive speech in `[from, to)`: at least [`SPEECH_MIN_MS`] of frames at
    /// or above [`SPEECH_DBFS`]?
    pub fn speech_between(&self, from: Instant, to: Instant) -> bool {
        self.loud_ms(from, to) >= SPEECH_MIN_MS
    }

    /// Was the callee sent silence in `[from, to)`: RTP kept coming (frames covering at least
    /// 80 % of the span) and every frame was below [`SILENCE_DBFS`]? No RTP at all is not
    /// silence but a dead line, and answers false.
    pub fn silent_between(&self, from: Instant, to: Instant) -> bool {
        let span = to.saturating_duration_since(from).as_millis() as u64;
        let (mut covered, mut quiet) = (0, true);
        for l in self.levels_between(from, to) {
            covered += l.ms;
            quiet &= l.dbfs < SILENCE_DBFS;
        }
        quiet && covered * 10 >= span * 8
    }

    /// The last packet's arrival.
    pub fn last_at(&self) -> Instant {
        self.packets.last().map_or(self.first_at, |p| p.at)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::tap::rtp::build;

    fn feed(s: &mut Stream, at: Instant, pt: u8, ts: u32, payload: &[u8]) -> Option<Digit> {
        let buf = build(pt, false, 0, ts, 1, payload);
        let p = rtp::parse(&buf).expect("rtp");
        s.record(at, &p)
    }

    #[test]
    fn retransmitted_ends_collapse_into_one_key() {
        let t0 = Instant::now();
        let mut s = Stream::new("127.0.0.1:9".parse().expect("addr"), t0);
        let ev = |end, duration| {
            TelEvent {
                code: 2,
                end,
                volume: 10,
                duration,
            }
            .bytes()
        };
        let first = feed(&mut s, t0, rtp::EVENT, 800, &ev(false, 160));
        assert_eq!(first.map(|d| d.digit), Some('2'));
        for i in 2..=12u16 {
            assert!(feed(&mut s, t0, rtp::EVENT, 800, &ev(false, 160 * i)).is_none());
        }
        let end = t0 + Duration::from_millis(240);
        for _ in 0..3 {
            feed(&mut s, end, rtp::EVENT, 800, &ev(true, 2000));
        }
        let next = feed(&mut s, end, rtp::EVENT, 4000, &ev(false, 160));
        assert!(next.is_some(), "a new timestamp is a new key");
        assert_eq!(s.keys(), "22");
        let d = s.digits[0];
        assert_eq!((d.end_packets, d.duration_ms, d.volume), (3, 250, 10));
        assert_eq!(d.ended_at, Some(end));
    }

    #[test]
    fn speech_and_silence_between() {
        let t0 = Instant::now();
        let mut s = Stream::new("127.0.0.1:9".parse().expect("addr"), t0);
        let loud = [0x90u8; 160];
        let quiet = [0xffu8; 160];
        for i in 0..100u32 {
            let at = t0 + Duration::from_millis(20 * u64::from(i));
            let frame = if (50..60).contains(&i) { &loud } else { &quiet };
            feed(&mut s, at, rtp::PCMU, i * 160, frame);
        }
        let ms = |m| t0 + Duration::from_millis(m);
        assert!(s.silent_between(ms(0), ms(1000)));
        assert!(!s.speech_between(ms(0), ms(1000)));
        assert!(s.speech_between(ms(900), ms(1300)));
        assert_eq!(s.loud_ms(ms(0), ms(2000)), 200);
        assert!(!s.silent_between(ms(900), ms(1300)));
        assert!(
            !s.silent_between(ms(2000), ms(3000)),
            "no RTP is not silence"
        );
        assert!(
            s.peak_between(ms(0), ms(900))
                .is_some_and(|p| p < SILENCE_DBFS)
        );
    }
}
