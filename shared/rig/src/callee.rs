//! The SIPp callee: audio files, command line and readiness probe. [`speech`] holds the audio
//! of the behaviours 207-212.

pub mod speech;

use std::{
    ffi::OsString,
    io,
    net::UdpSocket,
    path::{Path, PathBuf},
    time::Duration,
};

/// The scenario, relative to the repository root.
pub const SCENARIO: &str = "tests/sipp/callee.xml";

/// The tone behaviour `…00203` streams and `…00204` speaks: a sine at half of full scale.
pub const TONE_HZ: f64 = 1000.0;

/// One second of [`TONE_HZ`], looped by `…00203`.
pub const TONE_FILE: &str = "tone-1khz.ulaw";
/// `…00204`: 2 s of the tone (the callee says "hello?"), then 20 s of silence (it listens).
pub const SPEAK_FILE: &str = "speak-then-listen.ulaw";
/// One second of silence, looped while `…200`, `…201` and `…202` are answered: a phone keeps
/// sending RTP while its user is quiet, and livekit-sip ends a call that sends none.
pub const SILENCE_FILE: &str = "silence.ulaw";
/// `…00206` (`make run`'s demo number): the spoken [`HELLO_TEXT`], then silence up to
/// [`HELLO_PERIOD_SECS`], looped: a person who says hello and listens (and says it again if
/// nobody answers for that long).
pub const HELLO_FILE: &str = "hello-then-listen.ulaw";
/// What the callee says on `…00206`.
pub const HELLO_TEXT: &str = "Hello, who is this?";
/// The length of one loop of [`HELLO_FILE`], speech included.
pub const HELLO_PERIOD_SECS: u64 = 20;
/// `…00213` (the density bench's talker): the spoken [`HELLO_TEXT`], then silence up to
/// [`TALK_PERIOD_SECS`], looped: a person who talks every few seconds and listens in between,
/// so a call has a turn every period.
pub const TALK_FILE: &str = "talk-then-listen.ulaw";
/// The length of one loop of [`TALK_FILE`], speech included.
pub const TALK_PERIOD_SECS: u64 = 6;
/// The spoken words, relative to the repository root: written by `make setup` with espeak-ng
/// and sox (raw G.711 mu-law, 8 kHz, mono).
pub const HELLO_SOURCE: &str = ".tools/audio/hello-8k.ulaw";

/// The files [`write_audio`] writes, with their bytes: raw, headerless G.711 mu-law at 8 kHz.
/// SIPp 3.6 sends a file's bytes as they are, 160 per 20 ms packet (a WAV header would go out
/// as audio). `hello` is the spoken [`HELLO_SOURCE`].
pub fn audio_files(hello: &[u8]) -> [(&'static str, Vec<u8>); 5] {
    let tone = tone_ulaw();
    let mut speak = tone.clone();
    speak.extend(&tone);
    speak.extend(std::iter::repeat_n(ulaw(0), 8000 * 20));
    let looped = |secs: u64| {
        let period = usize::try_from(8000 * secs).unwrap_or(usize::MAX);
        let mut words = hello.to_vec();
        words.truncate(period);
        words.resize(period, ulaw(0));
        words
    };
    [
        (TONE_FILE, tone),
        (SPEAK_FILE, speak),
        (SILENCE_FILE, vec![ulaw(0); 8000]),
        (HELLO_FILE, looped(HELLO_PERIOD_SECS)),
        (TALK_FILE, looped(TALK_PERIOD_SECS)),
    ]
}

/// Write the callee's audio files into `dir`, SIPp's working directory. The spoken words come
/// from `<root>/`[`HELLO_SOURCE`] and [`speech::ALL`]; without them this fails, naming
/// `make setup`.
pub fn write_audio(dir: &Path, root: &Path) -> io::Result<()> {
    let source = root.join(HELLO_SOURCE);
    let hello = std::fs::read(&source).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "the callee's speech {} cannot be read ({e}): run `make setup`, which speaks \
                 it with espeak-ng and sox (Debian: `apt-get install espeak-ng sox`)",
                source.display()
            ),
        )
    })?;
    if hello.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is empty: delete it and run `make setup`",
                source.display()
            ),
        ));
    }
    for (name, bytes) in audio_files(&hello).into_iter().chain(speech::files(root)?) {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

/// Where the callee runs and what it logs.
pub struct Options<'a> {
    /// The scenario file (see [`SCENARIO`]).
    pub scenario: &'a Path,
    /// SIP on UDP 127.0.0.1:`port`.
    pub port: u16,
    /// RTP on 127.0.0.1:`media_port`.
    pub media_port: u16,
    /// Its logs: `messages.log` (every SIP message, parsed by the tests), `callee.log`
    /// (the scenario's `<log>` lines) and `errors.log`.
    pub log_dir: &'a Path,
    /// Send back every RTP packet received (`-rtp_echo`).
    pub rtp_echo: bool,
    /// Where the behaviours 207-212 tell livekit-sip to send the call's audio (their SDP's
    /// port on 127.0.0.1): a test's RTP tap. `None`: SIPp's own media port, where the audio
    /// is dropped (`callfleet dev` has no tap). SIPp still sends from its media port.
    pub tap_port: Option<u16>,
}

/// SIPp's arguments. Run it with the audio files' folder as its working directory.
pub fn args(o: &Options<'_>) -> Vec<OsString> {
    let port = o.port.to_string();
    let media_port = o.media_port.to_string();
    let tap_port = o.tap_port.unwrap_or(o.media_port).to_string();
    let mut a: Vec<OsString> = Vec::new();
    if o.rtp_echo {
        a.push("-rtp_echo".into());
    }
    a.extend(["-sf".into(), o.scenario.into()]);
    let plain = [
        "-i",
        "127.0.0.1",
        "-p",
        &port,
        "-mi",
        "127.0.0.1",
        "-mp",
        &media_port,
        // `[tap_port]` in the scenario.
        "-key",
        "tap_port",
        &tap_port,
        // -aa answers OPTIONS (the readiness probe) and in-dialog INFO/NOTIFY/UPDATE with 200.
        "-nostdin",
        "-aa",
        // SIPp's watchdog ends the whole process when its timer loop is starved ("Overload
        // warning: the major watchdog timer ... has been triggered"): 10 major trips by
        // default, which a loaded 2-core machine reaches. A stand-in for the phone network
        // must not quit because the machine is busy, so the trip limits are practically
        // unbounded.
        "-watchdog_major_maxtriggers",
        "1000000000",
        "-watchdog_minor_maxtriggers",
        "1000000000",
    ];
    a.extend(plain.iter().map(OsString::from));
    for (flags, file) in [
        (["-trace_msg", "-message_file"], "messages.log"),
        (["-trace_logs", "-log_file"], "callee.log"),
        (["-trace_err", "-error_file"], "errors.log"),
    ] {
        a.extend(flags.iter().map(OsString::from));
        a.push(o.log_dir.join(file).into());
    }
    a
}

/// The scenario under a repository root, or an error naming what is missing.
pub fn scenario(root: &Path) -> io::Result<PathBuf> {
    let path = root.join(SCENARIO);
    if path.exists() {
        Ok(path)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} is missing (run from the repository root)",
                path.display()
            ),
        ))
    }
}

/// The Call-ID prefix of [`options_ping`]'s requests, so a reader of the callee's message log
/// can leave the probes out.
pub const PROBE_CALL_ID_PREFIX: &str = "callfleet-probe-";

/// Send one `OPTIONS` to the callee and wait up to `timeout` for its `200 OK`. Blocking: call
/// it from a blocking task.
pub fn options_ping(port: u16, timeout: Duration) -> io::Result<()> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(timeout))?;
    let local = socket.local_addr()?.port();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let call_id = format!("{PROBE_CALL_ID_PREFIX}{nonce}-{local}");
    let request = format!(
        "OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{nonce}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1>;tag={local}\r\n\
         To: <sip:ping@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    socket.send_to(request.as_bytes(), ("127.0.0.1", port))?;
    let mut buf = [0u8; 2048];
    loop {
        let n = socket.recv(&mut buf)?;
        let answer = String::from_utf8_lossy(&buf[..n]);
        if answer.contains(&call_id) {
            return if answer.starts_with("SIP/2.0 200") {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "OPTIONS answered {}",
                    answer.lines().next().unwrap_or_default()
                )))
            };
        }
    }
}

/// One second of [`TONE_HZ`] at 8 kHz, G.711 mu-law.
fn tone_ulaw() -> Vec<u8> {
    (0..8000)
        .map(|i| {
            let t = f64::from(i) / 8000.0;
            let x = (t * TONE_HZ * std::f64::consts::TAU).sin() * 0.5 * 32767.0;
            ulaw(x as i16)
        })
        .collect()
}

/// G.711 mu-law encoding of one sample.
pub fn ulaw(sample: i16) -> u8 {
    let mut s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    s = s.abs().min(32_635) + 0x84;
    let mut exponent = 7;
    while exponent > 0 && s & (0x80 << exponent) == 0 {
        exponent -= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mu_law_of_silence_and_extremes() {
        assert_eq!(ulaw(0), 0xFF);
        assert_eq!(ulaw(i16::MAX), 0x80);
        assert_eq!(ulaw(i16::MIN), 0x00);
    }

    #[test]
    fn audio_files_have_the_documented_lengths() {
        let files = audio_files(&[0x7f; 16_000]);
        let len = |name| files.iter().find(|(n, _)| *n == name).map(|(_, b)| b.len());
        assert_eq!(len(TONE_FILE), Some(8000));
        assert_eq!(len(SPEAK_FILE), Some(8000 * 22));
        assert_eq!(len(SILENCE_FILE), Some(8000));
        assert_eq!(len(HELLO_FILE), Some(8000 * 20));
        assert_eq!(len(TALK_FILE), Some(8000 * 6));
        for looped in [&files[3].1, &files[4].1] {
            assert_eq!(looped[..16_000], [0x7f; 16_000], "the words come first");
            assert!(
                looped[16_000..].iter().all(|&b| b == ulaw(0)),
                "then silence"
            );
        }
    }

    #[test]
    fn played_once_files_last_as_long_as_the_scenario_waits() {
        // `<recv request="BYE" timeout="N" ontimeout="…">` ends each file played once.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let xml = std::fs::read_to_string(root.join(SCENARIO)).unwrap_or_default();
        for (file, secs) in [
            (speech::PERSON_FILE, speech::PERSON_SECS),
            (speech::VOICEMAIL_FILE, speech::VOICEMAIL_SECS),
            (speech::SCREENER_FILE, speech::SCREENER_SECS),
            (speech::CED_FILE, speech::CED_SECS),
        ] {
            let after = xml
                .split(&format!("rtp_stream=\"{file},1,0\""))
                .nth(1)
                .unwrap_or_else(|| panic!("{SCENARIO} plays {file} once"));
            let timeout = after
                .split("timeout=\"")
                .nth(1)
                .and_then(|t| t.split('"').next())
                .and_then(|t| t.parse::<usize>().ok());
            assert_eq!(timeout, Some(secs * 1000), "{file}");
        }
    }

    #[test]
    fn tap_port_defaults_to_the_media_port() {
        let dir = Path::new("/tmp");
        let mut o = Options {
            scenario: dir,
            port: 5060,
            media_port: 6000,
            log_dir: dir,
            rtp_echo: false,
            tap_port: None,
        };
        let key = |o: &Options<'_>| {
            let a = args(o);
            let i = a.iter().position(|x| x == "tap_port").unwrap_or(0);
            a.get(i + 1).cloned()
        };
        assert_eq!(key(&o), Some("6000".into()));
        o.tap_port = Some(7000);
        assert_eq!(key(&o), Some("7000".into()));
    }

    #[test]
    fn missing_speech_names_make_setup() {
        let dir = std::env::temp_dir().join(format!("rig-no-audio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let err = write_audio(&dir, &dir).expect_err("no .tools/audio");
        let _ = std::fs::remove_dir_all(&dir);
        let message = err.to_string();
        assert!(message.contains("make setup"), "{message}");
        assert!(message.contains("espeak-ng sox"), "{message}");
        assert!(message.contains(HELLO_SOURCE), "{message}");
    }

    #[test]
    fn every_streamed_file_is_written() {
        // The scenario must stream only files write_audio produces, or SIPp exits at load.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let xml = std::fs::read_to_string(root.join(SCENARIO)).unwrap_or_default();
        let mut names: Vec<&str> = audio_files(&[]).iter().map(|(n, _)| *n).collect();
        names.extend(speech::FILE_NAMES);
        let streamed: Vec<&str> = xml
            .split("rtp_stream=\"")
            .skip(1)
            .filter_map(|rest| rest.split(',').next())
            .collect();
        assert!(!streamed.is_empty(), "no rtp_stream in {SCENARIO}");
        for file in streamed {
            assert!(
                names.contains(&file),
                "{SCENARIO} streams {file}, which write_audio does not write"
            );
        }
    }
}
