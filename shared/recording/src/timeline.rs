//! The call's clock for two channels: each side's audio queues at [`CAPTURE_RATE`] as it
//! arrives, and
//! every 20 ms slot of the call takes one frame from each queue, silence where a side had
//! nothing. Slots are counted by the clock, not by the audio, so the channels stay aligned with
//! each other and with the call however either side's audio comes (or does not).

use std::collections::VecDeque;

use callfleet_media::audio::Resampler;

/// The rate the recording is encoded from: wideband, 16 kHz. A phone callee is 8 kHz G.711
/// at best, and the agent's voice stays clear. Two channels from 16 kHz took about a quarter
/// less libopus time than from 48 kHz here (0.52-0.63 against 0.72-0.76 CPU s per call-minute,
/// release build), for audio the call never carried; resampling costs about 0.02. (Ogg Opus
/// granules still count 48 kHz.)
pub const CAPTURE_RATE: u32 = 16_000;
/// Samples per channel in one 20 ms slot.
pub const SLOT: usize = CAPTURE_RATE as usize / 50;
/// Most audio a side may queue ahead of the clock (the agent sends up to its playout lead
/// early); beyond it the oldest is dropped, so a stalled clock cannot grow memory.
const MAX_QUEUED: usize = 2 * CAPTURE_RATE as usize;

/// Which side of the call a frame is from; also its channel index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Callee = 0,
    Agent = 1,
}

#[derive(Default)]
struct Channel {
    /// The rate the resampler converts from, if the side's audio is not at [`CAPTURE_RATE`].
    resampler: Option<(u32, Resampler)>,
    queued: VecDeque<i16>,
    scratch: Vec<i16>,
    dropped: u64,
}

impl Channel {
    fn push(&mut self, pcm: &[i16], rate: u32) {
        if rate == CAPTURE_RATE {
            self.queued.extend(pcm);
        } else {
            if self.resampler.as_ref().is_none_or(|(r, _)| *r != rate) {
                match Resampler::new(rate, CAPTURE_RATE) {
                    Ok(r) => self.resampler = Some((rate, r)),
                    Err(e) => {
                        tracing::debug!(rate, error = %e, "recording: audio at an unusable rate dropped");
                        return;
                    }
                }
            }
            self.scratch.clear();
            if let Some((_, r)) = &mut self.resampler
                && r.process(pcm, &mut self.scratch).is_ok()
            {
                self.queued.extend(&self.scratch);
            }
        }
        if self.queued.len() > MAX_QUEUED {
            let excess = self.queued.len() - MAX_QUEUED;
            self.queued.drain(..excess);
            self.dropped += excess as u64;
        }
    }
}

/// Both sides' queues; [`Timeline::slot`] takes the next 20 ms of each, interleaved.
#[derive(Default)]
pub struct Timeline {
    channels: [Channel; 2],
}

impl Timeline {
    /// Queue a side's mono audio at `rate` Hz.
    pub fn push(&mut self, side: Side, pcm: &[i16], rate: u32) {
        self.channels[side as usize].push(pcm, rate);
    }

    /// The next slot, interleaved callee/agent, silence where a side has too little.
    pub fn slot(&mut self, out: &mut [i16; 2 * SLOT]) {
        for (c, channel) in self.channels.iter_mut().enumerate() {
            let n = channel.queued.len().min(SLOT);
            for (i, s) in channel.queued.drain(..n).enumerate() {
                out[2 * i + c] = s;
            }
            for i in n..SLOT {
                out[2 * i + c] = 0;
            }
        }
    }

    /// Samples dropped because a side ran too far ahead of the clock.
    pub fn dropped(&self) -> u64 {
        self.channels.iter().map(|c| c.dropped).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_side_is_silence_and_the_other_keeps_its_place() {
        let mut t = Timeline::default();
        t.push(Side::Callee, &[7; SLOT], CAPTURE_RATE);
        let mut out = [1; 2 * SLOT];
        t.slot(&mut out);
        assert!(out.iter().step_by(2).all(|&s| s == 7));
        assert!(out.iter().skip(1).step_by(2).all(|&s| s == 0));
        // Nothing queued: the slot is silence on both channels.
        t.slot(&mut out);
        assert!(out.iter().all(|&s| s == 0));
    }

    #[test]
    fn a_short_side_is_padded_and_keeps_the_rest_for_the_next_slot() {
        let mut t = Timeline::default();
        t.push(Side::Agent, &[3; SLOT + 100], CAPTURE_RATE);
        let mut out = [0; 2 * SLOT];
        t.slot(&mut out);
        assert!(out.iter().skip(1).step_by(2).all(|&s| s == 3));
        t.slot(&mut out);
        let agent: Vec<i16> = out.iter().skip(1).step_by(2).copied().collect();
        assert!(agent[..100].iter().all(|&s| s == 3));
        assert!(agent[100..].iter().all(|&s| s == 0));
    }

    #[test]
    fn other_rates_are_resampled_to_the_capture_rate() {
        let mut t = Timeline::default();
        // One second at 24 kHz (the agent) or 48 kHz (room audio) is about one second at
        // 16 kHz (less the resampler's delay).
        for _ in 0..50 {
            t.push(Side::Agent, &[1000; 480], 24_000);
            t.push(Side::Callee, &[1000; 960], 48_000);
        }
        for c in 0..2 {
            let queued = t.channels[c].queued.len();
            assert!((15_000..=16_000).contains(&queued), "{c}: {queued}");
        }
    }

    #[test]
    fn a_side_far_ahead_of_the_clock_is_bounded() {
        let mut t = Timeline::default();
        for _ in 0..200 {
            t.push(Side::Callee, &[1; SLOT], CAPTURE_RATE);
        }
        assert_eq!(t.channels[0].queued.len(), MAX_QUEUED);
        assert_eq!(t.dropped(), 200 * SLOT as u64 - MAX_QUEUED as u64);
    }
}
