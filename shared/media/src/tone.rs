//! Small signal helpers for checking audio: a sine generator, level in dBFS, and the dominant
//! frequency (Goertzel scan). Used by the tests and benches of this crate and of the fleet, and
//! handy for a health check that a call carries audio.

/// Mono sine at `amp` (0..1 of full scale), starting at sample `start`.
pub fn sine(rate: u32, hz: f64, amp: f64, start: u64, n: usize) -> Vec<i16> {
    (0..n as u64)
        .map(|i| {
            let t = (start + i) as f64 / f64::from(rate);
            ((t * hz * std::f64::consts::TAU).sin() * amp * 32767.0) as i16
        })
        .collect()
}

/// RMS level in dBFS (−180 for silence).
pub fn rms_dbfs(s: &[i16]) -> f64 {
    let ms = s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len().max(1) as f64;
    20.0 * (ms.sqrt() / 32768.0).max(1e-9).log10()
}

/// Goertzel power of `hz` in `s`.
fn goertzel(s: &[i16], rate: f64, hz: f64) -> f64 {
    let w = std::f64::consts::TAU * hz / rate;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in s {
        let s0 = f64::from(x) + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - c * s1 * s2
}

/// The frequency with the most power between 50 Hz and 4 kHz (10 Hz scan, then 0.5 Hz
/// refinement), and that power's share of the scan's total (how pure the tone is).
pub fn dominant(s: &[i16], rate: u32) -> (f64, f64) {
    let rate = f64::from(rate);
    let scan = |lo: f64, hi: f64, step: f64| -> Vec<(f64, f64)> {
        let n = ((hi - lo) / step) as usize;
        (0..=n)
            .map(|i| lo + i as f64 * step)
            .map(|f| (f, goertzel(s, rate, f)))
            .collect()
    };
    let best = |v: &[(f64, f64)]| {
        v.iter()
            .copied()
            .fold((0.0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a })
    };
    let coarse = scan(50.0, 4000.0, 10.0);
    let total: f64 = coarse.iter().map(|(_, p)| p).sum();
    let (c, cp) = best(&coarse);
    let (f, _) = best(&scan(c - 10.0, c + 10.0, 0.5));
    (f, cp / total.max(f64::MIN_POSITIVE))
}

/// The dominant frequency alone.
pub fn dominant_hz(s: &[i16], rate: u32) -> f64 {
    dominant(s, rate).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_sine_and_its_level() {
        let s = sine(48_000, 440.0, 0.5, 0, 48_000);
        let (hz, share) = dominant(&s, 48_000);
        assert!((hz - 440.0).abs() <= 0.5, "{hz}");
        assert!(share > 0.5, "{share}");
        assert!((rms_dbfs(&s) - (-9.03)).abs() < 0.1, "{}", rms_dbfs(&s));
        assert!(rms_dbfs(&[0; 480]) < -170.0);
    }
}
