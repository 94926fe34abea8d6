//! Small sample-rate conversion for the STT path: an exact 3:1 decimator (48 kHz -> 16 kHz) with
//! a short low-pass, and a linear fallback for any other pair of rates.

/// Converts a stream of frames to `target` Hz, keeping filter state across frames.
#[derive(Debug)]
pub struct ToRate {
    target: u32,
    /// Samples left over from the previous frame (decimation works in groups).
    carry: Vec<i16>,
    /// Fractional read position for the linear path.
    pos: f64,
    last: i16,
}

impl ToRate {
    pub fn new(target: u32) -> Self {
        Self {
            target,
            carry: Vec::new(),
            pos: 0.0,
            last: 0,
        }
    }

    /// Convert one frame, appending the output to `out`.
    pub fn push(&mut self, input: &[i16], rate: u32, out: &mut Vec<i16>) {
        if rate == self.target || rate == 0 || self.target == 0 {
            out.extend_from_slice(input);
        } else if rate == self.target * 3 {
            self.decimate3(input, out);
        } else {
            self.linear(input, rate, out);
        }
    }

    fn decimate3(&mut self, input: &[i16], out: &mut Vec<i16>) {
        self.carry.extend_from_slice(input);
        let groups = self.carry.len() / 3;
        for g in 0..groups {
            let i = g * 3;
            // A 5-tap smoothing filter centred on the group keeps aliasing low enough for STT.
            let prev = if i == 0 { self.last } else { self.carry[i - 1] };
            let next = self.carry.get(i + 3).copied().unwrap_or(self.carry[i + 2]);
            let acc = i32::from(prev)
                + 2 * i32::from(self.carry[i])
                + 2 * i32::from(self.carry[i + 1])
                + 2 * i32::from(self.carry[i + 2])
                + i32::from(next);
            out.push((acc / 8).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16);
        }
        if groups > 0 {
            self.last = self.carry[groups * 3 - 1];
        }
        self.carry.drain(..groups * 3);
    }

    fn linear(&mut self, input: &[i16], rate: u32, out: &mut Vec<i16>) {
        let step = f64::from(rate) / f64::from(self.target);
        // Output at position p interpolates between s(i-1) and s(i), i = floor(p), where
        // s(-1) is the last sample of the previous frame (a one-sample delay).
        while self.pos < input.len() as f64 {
            let i = self.pos.floor() as usize;
            let frac = self.pos - self.pos.floor();
            let prev = if i == 0 { self.last } else { input[i - 1] };
            let v = f64::from(prev) * (1.0 - frac) + f64::from(input[i]) * frac;
            out.push(v as i16);
            self.pos += step;
        }
        self.pos -= input.len() as f64;
        if let Some(l) = input.last() {
            self.last = *l;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimates_48k_to_16k_across_frames() {
        let mut r = ToRate::new(16_000);
        let mut out = Vec::new();
        for _ in 0..10 {
            r.push(&[1000; 480], 48_000, &mut out);
        }
        assert_eq!(out.len(), 1600);
        assert!(out[10..].iter().all(|&s| s == 1000));
    }

    #[test]
    fn linear_keeps_duration() {
        let mut r = ToRate::new(16_000);
        let mut out = Vec::new();
        for _ in 0..50 {
            r.push(&[500; 441], 44_100, &mut out);
        }
        assert!((out.len() as i64 - 8000).abs() <= 2, "{}", out.len());
    }
}
