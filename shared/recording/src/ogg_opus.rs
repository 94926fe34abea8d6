//! Ogg Opus (RFC 7845) for two independent channels: an `OpusHead` with channel mapping
//! family 1 (two uncoupled streams, so the callee never bleeds into the agent's channel), an
//! `OpusTags`, then audio packets whose pages carry the granule position (48 kHz samples,
//! pre-skip included). The writer only ever hands out whole pages, so every prefix it hands
//! out is a playable file.

use std::io::Cursor;

use ogg::{PacketReader, PacketWriteEndInfo, PacketWriter};

/// The Ogg Opus granule clock.
pub const RATE: u32 = 48_000;
/// Samples per channel in one 20 ms packet.
pub const FRAME: u64 = 960;
/// Channels, in order: callee, agent.
pub const CHANNELS: u8 = 2;

/// Writes an Ogg Opus stream into memory; [`OggOpusWriter::take`] drains the complete pages.
pub struct OggOpusWriter {
    pages: PacketWriter<'static, Vec<u8>>,
    serial: u32,
    pre_skip: u16,
    /// Samples per channel in the packets written so far (pre-skip included).
    granule: u64,
}

impl OggOpusWriter {
    /// A stream with its two header pages written; `pre_skip` is the encoder's lookahead.
    pub fn new(serial: u32, pre_skip: u16, vendor: &str) -> std::io::Result<Self> {
        let mut pages = PacketWriter::new(Vec::new());
        pages.write_packet(opus_head(pre_skip), serial, PacketWriteEndInfo::EndPage, 0)?;
        pages.write_packet(opus_tags(vendor), serial, PacketWriteEndInfo::EndPage, 0)?;
        Ok(Self {
            pages,
            serial,
            pre_skip,
            granule: 0,
        })
    }

    /// Appends one 20 ms packet; `end_page` closes the page after it.
    pub fn push(&mut self, packet: Vec<u8>, end_page: bool) -> std::io::Result<()> {
        self.granule += FRAME;
        let end = if end_page {
            PacketWriteEndInfo::EndPage
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        self.pages
            .write_packet(packet, self.serial, end, self.granule)
    }

    /// Appends the last packet and ends the stream. `samples` is how many samples of the
    /// stream (pre-skip excluded) are audio; the decoder drops what the last packet holds
    /// beyond them (end trimming, RFC 7845 §4.4).
    pub fn finish(&mut self, packet: Vec<u8>, samples: u64) -> std::io::Result<()> {
        self.granule += FRAME;
        let end = (samples + u64::from(self.pre_skip)).min(self.granule);
        self.pages
            .write_packet(packet, self.serial, PacketWriteEndInfo::EndStream, end)
    }

    /// Samples per channel written so far, pre-skip included.
    pub fn granule(&self) -> u64 {
        self.granule
    }

    pub fn pre_skip(&self) -> u16 {
        self.pre_skip
    }

    /// The complete pages written since the last call.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(self.pages.inner_mut())
    }
}

/// The identification header: version 1, two channels, mapping family 1 (two uncoupled
/// streams, channel i = stream i).
fn opus_head(pre_skip: u16) -> Vec<u8> {
    let mut h = Vec::with_capacity(23);
    h.extend_from_slice(b"OpusHead");
    h.push(1);
    h.push(CHANNELS);
    h.extend_from_slice(&pre_skip.to_le_bytes());
    h.extend_from_slice(&RATE.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes());
    h.push(1); // channel mapping family
    h.push(2); // streams
    h.push(0); // coupled streams
    h.extend_from_slice(&[0, 1]);
    h
}

/// The comment header: the vendor and the channel layout.
fn opus_tags(vendor: &str) -> Vec<u8> {
    let comments = ["CHANNELS=callee,agent"];
    let mut t = Vec::new();
    t.extend_from_slice(b"OpusTags");
    t.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    t.extend_from_slice(vendor.as_bytes());
    t.extend_from_slice(&(comments.len() as u32).to_le_bytes());
    for c in comments {
        t.extend_from_slice(&(c.len() as u32).to_le_bytes());
        t.extend_from_slice(c.as_bytes());
    }
    t
}

/// What a stored Ogg Opus file says of itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probe {
    pub pre_skip: u16,
    /// The last page's granule position.
    pub granule: u64,
    pub ended: bool,
}

impl Probe {
    /// Playable duration: the last granule less the pre-skip.
    pub fn duration_seconds(&self) -> f64 {
        self.granule.saturating_sub(u64::from(self.pre_skip)) as f64 / f64::from(RATE)
    }
}

/// Read a file back: its pre-skip, last granule, and whether it has its end-of-stream page.
/// `None` when it is not an Ogg Opus stream this writer could have made.
pub fn probe(file: &[u8]) -> Option<Probe> {
    let mut reader = PacketReader::new(Cursor::new(file));
    let head = reader.read_packet().ok()??;
    if !head.data.starts_with(b"OpusHead") {
        return None;
    }
    let pre_skip = u16::from_le_bytes([*head.data.get(10)?, *head.data.get(11)?]);
    let mut probe = Probe {
        pre_skip,
        granule: 0,
        ended: false,
    };
    // Each read consumes at least one packet of a finite buffer, so this ends.
    while let Ok(Some(p)) = reader.read_packet() {
        if p.last_in_page() {
            probe.granule = p.absgp_page();
        }
        probe.ended |= p.last_in_stream();
    }
    Some(probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(i: u8) -> Vec<u8> {
        vec![i; 40]
    }

    #[test]
    fn headers_follow_rfc_7845() {
        let mut w = OggOpusWriter::new(7, 312, "callfleet").expect("writer");
        let bytes = w.take();
        let mut r = PacketReader::new(Cursor::new(&bytes));
        let head = r.read_packet().expect("read").expect("head");
        assert_eq!(&head.data[..8], b"OpusHead");
        assert_eq!(
            head.data.len(),
            23,
            "19 bytes, then streams, coupled and the 2-channel mapping"
        );
        assert_eq!(head.data[9], 2, "channels");
        assert_eq!(u16::from_le_bytes([head.data[10], head.data[11]]), 312);
        assert_eq!(
            head.data[18..],
            [1, 2, 0, 0, 1],
            "family 1, two uncoupled streams"
        );
        assert!(head.last_in_page(), "OpusHead alone on its page");
        assert_eq!(head.absgp_page(), 0);
        let tags = r.read_packet().expect("read").expect("tags");
        assert_eq!(&tags.data[..8], b"OpusTags");
        assert!(tags.last_in_page(), "OpusTags ends its page");
    }

    #[test]
    fn granules_count_samples_and_the_end_is_trimmed() {
        let mut w = OggOpusWriter::new(1, 312, "t").expect("writer");
        for i in 0..99 {
            w.push(packet(i), i % 50 == 49).expect("push");
        }
        // 100 packets hold 100 × 960 samples; the audio is 1.99 s: the rest is trimmed.
        w.finish(packet(99), 99 * 960).expect("finish");
        let file = w.take();
        let p = probe(&file).expect("probe");
        assert!(p.ended);
        assert_eq!(p.granule, 99 * 960 + 312);
        assert!((p.duration_seconds() - 1.98).abs() < 1e-9);
    }

    #[test]
    fn every_handed_out_prefix_is_whole_pages() {
        let mut w = OggOpusWriter::new(3, 312, "t").expect("writer");
        let mut file = w.take();
        for i in 0..120u8 {
            w.push(packet(i), i % 25 == 24).expect("push");
            if i % 50 == 49 {
                let mut chunk = w.take();
                // Forcing a page end before taking: nothing half-written is handed out.
                assert!(chunk.is_empty() || chunk.starts_with(b"OggS"));
                file.append(&mut chunk);
                let p = probe(&file).expect("a prefix is a valid stream");
                assert!(!p.ended);
                assert_eq!(p.granule, u64::from(i / 25 + 1) * 25 * 960);
            }
        }
    }

    #[test]
    fn probe_rejects_what_is_not_ogg_opus() {
        assert_eq!(probe(b"not ogg at all"), None);
        assert_eq!(probe(&[]), None);
    }
}
