//! Slots in, segments out: each 20 ms slot is encoded as two uncoupled Opus streams and
//! written into the Ogg stream; a page ends every second, and every `segment` of audio the
//! complete pages so far are handed out as the next segment. Segment 0 starts with the headers;
//! segments joined in order are the file, and any prefix of them is a playable file. Pure: the
//! recorder does the storing.

use std::time::Duration;

use bytes::Bytes;

use crate::{
    Error,
    ogg_opus::{FRAME, OggOpusWriter, RATE},
    timeline::{CAPTURE_RATE, SLOT},
};

/// Slots per Ogg page: one second (a partial file loses at most the page being written).
const SLOTS_PER_PAGE: u64 = 50;
/// Largest packet the encoder may write (two streams at the highest bitrate, 20 ms).
const MAX_PACKET: usize = 4000;

/// A run of whole pages, stored as object `index` of the call's recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub index: u32,
    pub bytes: Bytes,
}

/// The encoder and the Ogg stream of one recording.
pub struct Segmenter {
    encoder: opus::MSEncoder,
    writer: OggOpusWriter,
    packet: Vec<u8>,
    /// Slots of call audio encoded.
    slots: u64,
    slots_per_segment: u64,
    next_index: u32,
}

impl Segmenter {
    /// A stream with serial number `serial`, `bitrate` bits/s per channel, cut every
    /// `segment` of audio (rounded to whole seconds, at least one).
    pub fn new(serial: u32, bitrate: u32, segment: Duration) -> Result<Self, Error> {
        let mut encoder =
            opus::MSEncoder::new(CAPTURE_RATE, 2, 0, &[0, 1], opus::Application::Voip)?;
        encoder.set_bitrate(opus::Bitrate::Bits(2 * bitrate as i32))?;
        // The encoder's delay at its own rate; the pre-skip counts 48 kHz samples.
        let lookahead = encoder.get_lookahead()? as u32 * (RATE / CAPTURE_RATE);
        let pre_skip = u16::try_from(lookahead).unwrap_or(312);
        let vendor = concat!("callfleet ", env!("CARGO_PKG_VERSION"), " (libopus)");
        let writer = OggOpusWriter::new(serial, pre_skip, vendor)?;
        Ok(Self {
            encoder,
            writer,
            packet: vec![0; MAX_PACKET],
            slots: 0,
            slots_per_segment: segment.as_secs().max(1) * SLOTS_PER_PAGE,
            next_index: 0,
        })
    }

    /// Encode one slot (interleaved callee/agent); a segment when one is due.
    pub fn push(&mut self, slot: &[i16; 2 * SLOT]) -> Result<Option<Segment>, Error> {
        self.slots += 1;
        let end_page = self.slots.is_multiple_of(SLOTS_PER_PAGE);
        let packet = self.encode(slot)?;
        self.writer.push(packet, end_page)?;
        Ok(self
            .slots
            .is_multiple_of(self.slots_per_segment)
            .then(|| self.cut()))
    }

    /// End the stream: one more packet of silence covers the encoder's delay, and the last
    /// granule trims the file to exactly the slots pushed. Returns the last segment.
    pub fn finish(mut self) -> Result<Segment, Error> {
        let packet = self.encode(&[0; 2 * SLOT])?;
        self.writer.finish(packet, self.slots * FRAME)?;
        Ok(self.cut())
    }

    /// End the page being written (with one slot of silence) and hand out the pages so far:
    /// what an abandoned recorder stores. The stream stays open.
    pub fn flush(&mut self) -> Result<Segment, Error> {
        self.slots += 1;
        let packet = self.encode(&[0; 2 * SLOT])?;
        self.writer.push(packet, true)?;
        Ok(self.cut())
    }

    /// Slots of call audio pushed.
    pub fn slots(&self) -> u64 {
        self.slots
    }

    /// Seconds of call audio pushed.
    pub fn duration_seconds(&self) -> f64 {
        self.slots as f64 * FRAME as f64 / f64::from(RATE)
    }

    /// Segments handed out so far.
    pub fn segments(&self) -> u32 {
        self.next_index
    }

    fn encode(&mut self, slot: &[i16; 2 * SLOT]) -> Result<Vec<u8>, Error> {
        let n = self.encoder.encode(slot, &mut self.packet)?;
        Ok(self.packet[..n].to_vec())
    }

    fn cut(&mut self) -> Segment {
        let index = self.next_index;
        self.next_index += 1;
        Segment {
            index,
            bytes: Bytes::from(self.writer.take()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ogg_opus::probe;

    fn tone(n: usize) -> [i16; 2 * SLOT] {
        let mut s = [0; 2 * SLOT];
        for i in 0..SLOT {
            let t = (n * SLOT + i) as f64 / f64::from(CAPTURE_RATE);
            s[2 * i] = (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16;
        }
        s
    }

    #[test]
    fn segments_join_into_a_file_of_the_pushed_length() {
        let mut seg = Segmenter::new(9, 24_000, Duration::from_secs(2)).expect("segmenter");
        let mut file = Vec::new();
        let mut indexes = Vec::new();
        for n in 0..260 {
            if let Some(s) = seg.push(&tone(n)).expect("push") {
                indexes.push(s.index);
                file.extend_from_slice(&s.bytes);
                // Each prefix of segments is a stream that plays up to its last page.
                let p = probe(&file).expect("prefix");
                assert!(!p.ended);
                assert!((p.duration_seconds() - (n + 1) as f64 * 0.02).abs() < 0.01);
            }
        }
        assert_eq!(indexes, [0, 1]);
        assert!((seg.duration_seconds() - 5.2).abs() < 1e-9);
        let last = seg.finish().expect("finish");
        assert_eq!(last.index, 2);
        file.extend_from_slice(&last.bytes);
        let p = probe(&file).expect("file");
        assert!(p.ended);
        assert!((p.duration_seconds() - 5.2).abs() < 1e-9, "{p:?}");
    }

    #[test]
    fn the_first_segment_starts_with_the_headers() {
        let mut seg = Segmenter::new(1, 24_000, Duration::from_secs(1)).expect("segmenter");
        let first = (0..50)
            .find_map(|n| seg.push(&tone(n)).expect("push"))
            .expect("a segment after one second");
        assert_eq!(&first.bytes[..4], b"OggS");
        assert!(first.bytes.windows(8).any(|w| w == b"OpusHead"));
        let second = (50..100)
            .find_map(|n| seg.push(&tone(n)).expect("push"))
            .expect("segment");
        assert!(!second.bytes.windows(8).any(|w| w == b"OpusHead"));
    }
}
