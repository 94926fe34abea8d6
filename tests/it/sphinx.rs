//! Real speech recognition behind the Deepgram protocol (`callfleet_tests::SphinxStt`): what
//! answering-machine detection will read from a call's first transcripts.
//!
//! Speech is synthesised (flite's `rms` voice, and espeak-ng's en-us for comparison), put
//! through an 8 kHz mu-law round trip (what a phone line carries) and back to 16 kHz linear16,
//! with 0.5 s of silence before and 1.5 s after. It is streamed in 20 ms frames, in real time,
//! through our Deepgram client (`callfleet-voice`'s `SttClient`, resolved from session options
//! as the engine resolves them), one call after another. The test asserts each phrase's key word in
//! its finals (the words flite's voice is recognised by reliably; espeak-ng's robotic voice is
//! mostly not, so its run asserts only that every phrase was heard and finalised) and prints
//! word accuracy, the latency from the end of speech to the last final, and the server's CPU
//! per second of audio. Deepgram's official SDK and a raw client with bad input are run
//! against the same server by drivers in `tests/standins/sphinx/`.

use std::{path::Path, process::Stdio, time::Duration};

use callfleet_tests::{SphinxStt, TempDir, scaled, sphinx::SPHINX_KEY};
use callfleet_voice::providers::stt::{SttClient, SttEvent};
use serde_json::{Value, json};
use tokio::time::{Instant, MissedTickBehavior};

const RATE: usize = 16_000;
const LEAD_S: f64 = 0.5;
const TAIL_S: f64 = 1.5;

/// The phrases, and the word each must be recognised by (in flite's voice).
const PHRASES: [(&str, &str); 4] = [
    ("Please leave a message after the tone.", "message"),
    ("For sales, press one. For support, press two.", "press"),
    ("Please say your name and why you are calling.", "name"),
    ("Hello?", "hello"),
];

#[derive(Debug, Clone, Copy)]
enum Voice {
    FliteRms,
    EspeakUs,
}

/// Where an external program is, or a failure naming how to install it.
fn need(tool: &str) -> &str {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()));
    assert!(
        found,
        "{tool} is not installed: run `make setup` (apt-get install flite espeak-ng sox)"
    );
    tool
}

async fn run(cmd: &mut tokio::process::Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `text` spoken, through an 8 kHz mu-law round trip, as 16 kHz mono samples with silence
/// around it; and the time (s) at which its speech ends.
async fn speak(dir: &Path, text: &str, voice: Voice, n: usize) -> (Vec<i16>, f64) {
    let wav = dir.join(format!("{n}-{voice:?}.wav"));
    let ulaw = dir.join(format!("{n}-{voice:?}.ul"));
    let raw = dir.join(format!("{n}-{voice:?}.raw"));
    match voice {
        Voice::FliteRms => {
            run(tokio::process::Command::new(need("flite"))
                .args(["-voice", "rms", "-t", text, "-o"])
                .arg(&wav))
            .await;
        }
        Voice::EspeakUs => {
            run(tokio::process::Command::new(need("espeak-ng"))
                .args(["-v", "en-us", "-s", "150", "-w"])
                .arg(&wav)
                .arg(text))
            .await;
        }
    }
    run(tokio::process::Command::new(need("sox"))
        .arg(&wav)
        .args(["-r", "8000", "-c", "1", "-e", "mu-law", "-t", "raw"])
        .arg(&ulaw))
    .await;
    run(tokio::process::Command::new("sox")
        .args(["-t", "raw", "-r", "8000", "-e", "mu-law", "-c", "1"])
        .arg(&ulaw)
        .args([
            "-r", "16000", "-e", "signed", "-b", "16", "-c", "1", "-t", "raw",
        ])
        .arg(&raw))
    .await;
    let bytes = std::fs::read(&raw).unwrap_or_else(|e| panic!("read {}: {e}", raw.display()));
    let speech: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let last_loud = speech
        .iter()
        .rposition(|s| s.unsigned_abs() > 300)
        .unwrap_or(0);
    let lead = vec![0i16; (LEAD_S * RATE as f64) as usize];
    let tail = vec![0i16; (TAIL_S * RATE as f64) as usize];
    let end_s = LEAD_S + last_loud as f64 / RATE as f64;
    ([lead, speech, tail].concat(), end_s)
}

/// What one streamed phrase produced.
#[derive(Debug)]
struct Heard {
    finals: Vec<String>,
    interims: usize,
    /// From the end of speech (on the streaming clock) to the last final.
    latency: Option<Duration>,
}

/// Stream `audio` through our Deepgram client at real time; every event until the stream ends.
async fn stream(server: &SphinxStt, audio: &[i16], speech_end_s: f64) -> Heard {
    let mut env = callfleet_standins::env(
        "http://127.0.0.1:9/v1",
        "ws://127.0.0.1:9",
        "ws://127.0.0.1:9",
        "ws://127.0.0.1:9",
        "ws://127.0.0.1:9",
    );
    env.extend(server.env());
    let cfg = callfleet_voice::resolve_json(&json!({"stt": "deepgram/nova-3"}), &env)
        .expect("options resolve");
    let mut s = SttClient::new(cfg.stt).start();
    let mut frames = audio.chunks(RATE / 50);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let start = Instant::now();
    let speech_end = start + Duration::from_secs_f64(speech_end_s);
    let mut heard = Heard {
        finals: Vec::new(),
        interims: 0,
        latency: None,
    };
    let mut sending = true;
    let limit = scaled(Duration::from_secs(30));
    let all = async {
        loop {
            tokio::select! {
                _ = tick.tick(), if sending => match frames.next() {
                    Some(f) => assert!(s.push(f.to_vec()), "audio queue full"),
                    None => {
                        s.finish();
                        sending = false;
                    }
                },
                ev = s.next() => match ev {
                    None => break,
                    Some(SttEvent::Final { text }) => {
                        let now = Instant::now();
                        if now > speech_end {
                            heard.latency = Some(now - speech_end);
                        }
                        heard.finals.push(text);
                    }
                    Some(SttEvent::Interim { .. }) => heard.interims += 1,
                    Some(SttEvent::Error(e)) => panic!("the STT stream failed: {e}"),
                    Some(_) => {}
                },
            }
        }
    };
    tokio::time::timeout(limit, all)
        .await
        .unwrap_or_else(|_| panic!("the stream did not end within {limit:?}"));
    heard
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// 1 − word error rate (Levenshtein over words), at least 0.
fn word_accuracy(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (words(reference), words(hypothesis));
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(rw != hw))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    let errors = prev[h.len()] as f64;
    (1.0 - errors / r.len().max(1) as f64).max(0.0)
}

/// The four phrases in `voice`, streamed at once; prints the measurements, returns what was
/// heard per phrase.
async fn measure(voice: Voice) -> Vec<Heard> {
    let dir = TempDir::new("sphinx-audio");
    let server = SphinxStt::start().await;
    let mut spoken = Vec::new();
    for (n, (text, _)) in PHRASES.iter().enumerate() {
        spoken.push(speak(&dir.0, text, voice, n).await);
    }
    let cpu_before = server.cpu_secs();
    // One call at a time: on two shared cores, four at once fell seconds behind real time
    // (pocketsphinx decodes at about 0.3 CPU s per audio s), and our client waits 2 s for the
    // last results after it closes.
    let mut heard = Vec::new();
    for (audio, end) in &spoken {
        heard.push(stream(&server, audio, *end).await);
    }
    // The recognisers' CPU counts once the server has reaped them (each exits at its close,
    // and only the spare for the next connection stays).
    let audio_s: f64 = spoken
        .iter()
        .map(|(a, _)| a.len() as f64 / RATE as f64)
        .sum();
    callfleet_tests::wait_for(
        "the streams' recogniser processes to exit and be reaped",
        Duration::from_secs(10),
        || {
            let n = server.recognisers();
            async move { (n <= 1).then_some(()) }
        },
    )
    .await;
    let cpu = server.cpu_secs() - cpu_before;
    eprintln!(
        "sphinx {voice:?}: {} streams one after another, CPU {cpu:.2} s for {audio_s:.1} s of \
         audio ({:.2} CPU s per audio s)",
        heard.len(),
        cpu / audio_s
    );
    for ((text, _), h) in PHRASES.iter().zip(&heard) {
        let hyp = h.finals.join(" ");
        eprintln!(
            "  {text:50} -> {hyp:?}: word accuracy {:.2}, last final {} ms after speech, {} interims",
            word_accuracy(text, &hyp),
            h.latency.map_or("-".into(), |l| l.as_millis().to_string()),
            h.interims
        );
    }
    heard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sphinx_recognises_answering_machine_phrases_through_our_deepgram_client() {
    let heard = measure(Voice::FliteRms).await;
    for ((text, key), h) in PHRASES.iter().zip(&heard) {
        assert!(
            words(&h.finals.join(" ")).iter().any(|w| w == key),
            "{text:?}: no {key:?} in the finals {:?}",
            h.finals
        );
        assert!(
            h.latency.is_some(),
            "{text:?}: no final after the speech ended: {h:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sphinx_hears_and_finalises_espeak_speech() {
    // espeak-ng's formant voice is far from the speech pocketsphinx's model was trained on
    // (word accuracy near 0.15): measured, and only detection and finalisation asserted.
    let heard = measure(Voice::EspeakUs).await;
    for ((text, _), h) in PHRASES.iter().zip(&heard) {
        assert!(
            h.finals.iter().any(|f| !f.is_empty()) && h.latency.is_some(),
            "{text:?}: no final with words after the speech ended: {h:?}"
        );
    }
}

/// Run `tests/standins/sphinx/<name>_driver.py` with `args`; its one JSON line of output.
async fn driver(name: &str, args: &Value) -> Value {
    let script =
        callfleet_tests::workspace_root().join(format!("tests/standins/sphinx/{name}_driver.py"));
    crate::conformance::run_driver(&script, args, Duration::from_secs(60)).await
}

/// "Please leave a message after the tone." in flite's voice, as a raw 16 kHz s16le file.
async fn message_file(dir: &TempDir) -> String {
    let (audio, _) = speak(&dir.0, PHRASES[0].0, Voice::FliteRms, 0).await;
    let path = dir.0.join("message.s16le");
    let bytes: Vec<u8> = audio.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sphinx_speaks_deepgram_as_the_official_sdk_parses_it() {
    let dir = TempDir::new("sphinx-sdk");
    let server = SphinxStt::start().await;
    let pcm = message_file(&dir).await;
    let out = driver(
        "sdk",
        &json!({"ws": server.base_url(), "key": SPHINX_KEY, "pcm": pcm}),
    )
    .await;
    assert_eq!(out["errors"], json!([]), "the SDK raised: {out}");
    assert_eq!(
        out["schema_errors"],
        json!([]),
        "messages the SDK's models reject: {out}"
    );
    let msgs = out["messages"].as_array().expect("messages");
    let kinds: Vec<&str> = msgs.iter().filter_map(|m| m["type"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"SpeechStarted"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"Metadata"), "{kinds:?}");
    assert!(kinds.contains(&"UtteranceEnd"), "{kinds:?}");
    let interims = msgs
        .iter()
        .filter(|m| m["type"] == "Results" && m["is_final"] == false)
        .count();
    assert!(interims > 0, "no interim results: {out}");
    let last_final = msgs
        .iter()
        .rev()
        .find(|m| m["type"] == "Results" && m["is_final"] == true && m["transcript"] != "")
        .unwrap_or_else(|| panic!("no final with words: {out}"));
    assert_eq!(last_final["speech_final"], true, "{last_final}");
    assert!(
        words(last_final["transcript"].as_str().unwrap_or_default()).contains(&"message".into()),
        "{last_final}"
    );
    // Word times are on the stream's clock, inside the result's window.
    let (start, dur) = (
        last_final["start"].as_f64().unwrap_or(-1.0),
        last_final["duration"].as_f64().unwrap_or(-1.0),
    );
    for w in last_final["words"].as_array().expect("words") {
        let (ws, we) = (w[1].as_f64().unwrap_or(-1.0), w[2].as_f64().unwrap_or(-1.0));
        assert!(
            start <= ws && ws < we && we <= start + dur + 0.01,
            "{w} outside {start}+{dur}"
        );
    }
    let audio_s = msgs
        .last()
        .map_or(0.0, |m| m["duration"].as_f64().unwrap_or(0.0));
    assert!((audio_s - 5.45).abs() < 1.0, "Metadata duration {audio_s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sphinx_refuses_bad_upgrades_and_survives_bad_input() {
    let dir = TempDir::new("sphinx-probe");
    let server = SphinxStt::start().await;
    let pcm = message_file(&dir).await;
    let out = driver(
        "probe",
        &json!({"ws": server.base_url(), "key": SPHINX_KEY, "pcm": pcm}),
    )
    .await;
    assert_eq!(
        out["refusals"],
        json!({"no_key": 401, "wrong_path": 404, "mulaw": 400}),
        "{out}"
    );
    assert_eq!(out["errors"], json!([]), "{out}");
    assert_eq!(out["close"], 1000, "{out}");
    assert_eq!(
        out["types"].as_array().and_then(|t| t.last()),
        Some(&json!("Metadata")),
        "{out}"
    );
    let finals: Vec<String> = out["finals"]
        .as_array()
        .expect("finals")
        .iter()
        .flat_map(|f| words(f.as_str().unwrap_or_default()))
        .collect();
    assert!(
        finals.contains(&"message".into()),
        "odd-sized audio after garbage was not recognised: {out}"
    );
    let log = std::fs::read_to_string(server.log_path()).unwrap_or_default();
    assert!(
        log.contains("ignored text message: '{not json'"),
        "the server's log: {log}"
    );
}
