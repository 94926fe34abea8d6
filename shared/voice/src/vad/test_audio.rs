//! Real speech for the detectors' tests: the callee's words that `make setup` speaks with
//! espeak-ng (`.tools/audio/hello-8k.ulaw`, G.711 mu-law at 8 kHz), at 16 kHz.

use std::path::Path;

/// "Hello, who is this?" at 16 kHz. Panics naming `make setup` when the file is missing.
pub fn hello_16k() -> Vec<i16> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/audio/hello-8k.ulaw");
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}: run `make setup`", path.display()));
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        let s = ulaw(b);
        // Sample-and-hold to 16 kHz: enough for a VAD test.
        out.extend([s, s]);
    }
    out
}

/// G.711 mu-law to linear.
fn ulaw(b: u8) -> i16 {
    let b = !b;
    let sign = b & 0x80;
    let exp = (b >> 4) & 0x07;
    let mant = i32::from(b & 0x0f);
    let mag = (((mant << 3) + 0x84) << exp) - 0x84;
    (if sign != 0 { -mag } else { mag }) as i16
}
