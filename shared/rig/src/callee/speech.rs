//! The audio of the behaviours 207-212 (a person, voicemail, a call screener, an IVR, fax
//! tones): spoken words read from `.tools/audio/` (`tests/tools/callee_audio.sh`, run by
//! `make setup`, speaks them with flite and sox), tones made here. The files SIPp plays
//! once are padded with silence to a fixed length, because the scenario switches to looped
//! silence after a fixed time (`<recv request="BYE" timeout=...>`, which takes no variable);
//! a unit test keeps the scenario's timeouts and these lengths in step.

use std::{io, path::Path};

use super::{TONE_HZ, ulaw};

/// One spoken text: its file under the repository root and its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Speech {
    /// Relative to the repository root (raw G.711 mu-law, 8 kHz, mono).
    pub source: &'static str,
    /// What it says.
    pub text: &'static str,
}

/// `…207`: a person who answers.
pub const PERSON: Speech = Speech {
    source: ".tools/audio/person-8k.ulaw",
    text: "Hello?",
};
/// `…208`: a voicemail greeting.
pub const VOICEMAIL: Speech = Speech {
    source: ".tools/audio/voicemail-8k.ulaw",
    text: "Hi, you've reached Alex Morgan. I can't take your call right now. Please leave a message after the tone.",
};
/// `…209`: a call screener.
pub const SCREENER: Speech = Speech {
    source: ".tools/audio/screener-8k.ulaw",
    text: "Hi, the person you're calling is using a screening service. Please say your name and why you're calling.",
};
/// `…210`: the IVR's menu, played by the test's RTP tap (SIPp sends nothing on that number).
pub const IVR_MENU: Speech = Speech {
    source: ".tools/audio/ivr-menu-8k.ulaw",
    text: "Thank you for calling. For sales, press 1. For support, press 2.",
};
/// The IVR's answer to key 1.
pub const IVR_SALES: Speech = Speech {
    source: ".tools/audio/ivr-sales-8k.ulaw",
    text: "You pressed one. Connecting you to sales.",
};
/// The IVR's answer to key 2.
pub const IVR_SUPPORT: Speech = Speech {
    source: ".tools/audio/ivr-support-8k.ulaw",
    text: "You pressed two. Connecting you to support.",
};
/// Everything `tests/tools/callee_audio.sh` speaks.
pub const ALL: [Speech; 6] = [
    PERSON,
    VOICEMAIL,
    SCREENER,
    IVR_MENU,
    IVR_SALES,
    IVR_SUPPORT,
];

/// `…207`: [`PERSON_PAUSE_MS`] of silence, [`PERSON`], padded to [`PERSON_SECS`], played once.
pub const PERSON_FILE: &str = "person.ulaw";
/// How long the person takes to speak after picking up: a person brings the phone to the ear
/// first (the AMD bench's corpus uses 0.2-1.2 s). Words at the instant of the answer can miss
/// the agent: under load a "Hello?" there was lost whole (the first audio reaches a listener in
/// the room ~160 ms after the answer on the rig), and no detector hears what it never got.
pub const PERSON_PAUSE_MS: usize = 400;
/// The length of [`PERSON_FILE`]; then the scenario loops silence.
pub const PERSON_SECS: usize = 2;
/// `…208`: [`VOICEMAIL`], [`BEEP_GAP_MS`] of silence, the [`BEEP_HZ`] beep for [`BEEP_MS`],
/// padded to [`VOICEMAIL_SECS`], played once; then silence while it "records".
pub const VOICEMAIL_FILE: &str = "voicemail.ulaw";
/// The length of [`VOICEMAIL_FILE`].
pub const VOICEMAIL_SECS: usize = 10;
/// The pause between the greeting and the beep.
pub const BEEP_GAP_MS: usize = 400;
/// The voicemail's beep.
pub const BEEP_HZ: f64 = TONE_HZ;
/// The beep's length.
pub const BEEP_MS: usize = 500;
/// `…209`: [`SCREENER`] padded to [`SCREENER_SECS`], played once.
pub const SCREENER_FILE: &str = "screener.ulaw";
/// The length of [`SCREENER_FILE`].
pub const SCREENER_SECS: usize = 8;
/// `…211` (and `…212` after its CED): fax CNG, [`CNG_HZ`] for 0.5 s then 3 s of silence, looped.
pub const CNG_FILE: &str = "fax-cng.ulaw";
/// The calling fax's tone (ITU-T T.30 CNG).
pub const CNG_HZ: f64 = 1100.0;
/// `…212`: fax CED, [`CED_HZ`] for [`CED_SECS`], played once before the CNG loop.
pub const CED_FILE: &str = "fax-ced.ulaw";
/// The answering fax's tone (ITU-T T.30 CED).
pub const CED_HZ: f64 = 2100.0;
/// The length of [`CED_FILE`].
pub const CED_SECS: usize = 3;

const RATE: usize = 8000;

/// The spoken words of `speech` under `root`, or an error naming `make setup`.
pub fn read(root: &Path, speech: Speech) -> io::Result<Vec<u8>> {
    let path = root.join(speech.source);
    let bytes = std::fs::read(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "the callee's speech {} cannot be read ({e}): run `make setup`, which speaks \
                 it with tests/tools/callee_audio.sh (flite and sox; Debian: \
                 `apt-get install flite sox`)",
                path.display()
            ),
        )
    })?;
    if bytes.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is empty: delete it and run `make setup`",
                path.display()
            ),
        ));
    }
    Ok(bytes)
}

/// `ms` milliseconds of a sine at half of full scale.
pub fn tone(hz: f64, ms: usize) -> Vec<u8> {
    (0..RATE * ms / 1000)
        .map(|i| {
            let t = i as f64 / RATE as f64;
            ulaw(((t * hz * std::f64::consts::TAU).sin() * 0.5 * 32767.0) as i16)
        })
        .collect()
}

/// `ms` milliseconds of silence.
pub fn silence(ms: usize) -> Vec<u8> {
    vec![ulaw(0); RATE * ms / 1000]
}

/// `audio` padded with silence to `secs`; an error if it is longer.
fn padded(mut audio: Vec<u8>, secs: usize, name: &str) -> io::Result<Vec<u8>> {
    if audio.len() > RATE * secs {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{name} is {} ms of audio, longer than its {secs} s in the scenario",
                audio.len() * 1000 / RATE
            ),
        ));
    }
    audio.resize(RATE * secs, ulaw(0));
    Ok(audio)
}

/// The files of the behaviours 207-212, from the spoken words under `root`.
pub fn files(root: &Path) -> io::Result<Vec<(&'static str, Vec<u8>)>> {
    let mut voicemail = read(root, VOICEMAIL)?;
    voicemail.extend(silence(BEEP_GAP_MS));
    voicemail.extend(tone(BEEP_HZ, BEEP_MS));
    let mut person = silence(PERSON_PAUSE_MS);
    person.extend(read(root, PERSON)?);
    let mut cng = tone(CNG_HZ, 500);
    cng.extend(silence(3000));
    Ok(vec![
        (PERSON_FILE, padded(person, PERSON_SECS, PERSON_FILE)?),
        (
            VOICEMAIL_FILE,
            padded(voicemail, VOICEMAIL_SECS, VOICEMAIL_FILE)?,
        ),
        (
            SCREENER_FILE,
            padded(read(root, SCREENER)?, SCREENER_SECS, SCREENER_FILE)?,
        ),
        (CNG_FILE, cng),
        (CED_FILE, tone(CED_HZ, CED_SECS * 1000)),
    ])
}

/// The names [`files`] writes (for the scenario check).
pub const FILE_NAMES: [&str; 5] = [
    PERSON_FILE,
    VOICEMAIL_FILE,
    SCREENER_FILE,
    CNG_FILE,
    CED_FILE,
];
