//! Recording without an egress service, on real calls through livekit-sip: the worker records
//! the callee (channel 1) and the agent (channel 2) into the NATS object store, the ingress
//! serves it (`GET /calls/{id}/recording`, ranges), and an independent decoder (ffmpeg) reads
//! it. A worker killed mid-call leaves a playable partial recording; `recording.backend =
//! "egress"` without an Egress service records nothing and says why, and the call goes on. A
//! held call (no voice session) is recorded by a receive-only listener.

use callfleet_standins as support;

use std::{path::Path, process::Command, time::Duration};

use callfleet_tests::{Behaviour, Role, TempDir, wait_for};
use serde_json::{Value, json};
use sha2::Digest as _;
use support::Rig as Providers;

use crate::rig::{Peers, Rig};

/// The TTS stand-in's voice: a sine of 0.07 rad per sample at 24 kHz.
const AGENT_HZ: f64 = 0.07 * 24_000.0 / (2.0 * std::f64::consts::PI);

/// Stand-in providers whose agent says two sentences and ends the call.
async fn providers() -> Providers {
    Providers::hello_then_reply(
        &[
            "Hi, this is callfleet calling about your order, thanks for your time today. ",
            "Goodbye!",
        ],
        20,
    )
    .await
}

/// A telephony rig whose agents run the voice session with the stand-in providers.
async fn voice_rig(providers: &Providers, fast_takeover: bool) -> Rig {
    let mut rig = if fast_takeover {
        Rig::fast_takeover().await
    } else {
        let mut rig = Rig::with(Peers::Telephony).await;
        rig.start_ingress().await;
        rig.fleet.start(Role::Notifier);
        rig
    };
    rig.fleet.set("CALLFLEET_AGENT__VOICE_SESSION", "true");
    rig.fleet.set("CALLFLEET_AGENT__MEDIA_LOOPBACK", "true");
    rig.fleet.set("CALLFLEET_RECORDING__SEGMENT_SECS", "1");
    for (k, v) in &providers.env {
        rig.fleet.set(k, v.clone());
    }
    rig
}

fn voice_call(to: &str, account: &str) -> Value {
    json!({
        "destination": to, "account_code": account, "record_call": true,
        "llm": "openai/gpt-4o-mini", "stt": "deepgram/nova-3:en", "tts": "cartesia/sonic-3:voice-abc",
        "preemptive_generation": false, "prompt": "You call about an order. Be brief."
    })
}

/// `GET /calls/{id}/recording`, with an optional `Range`: (status, headers, body).
async fn fetch(
    rig: &Rig,
    call_id: &str,
    range: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = rig
        .http
        .get(rig.url(&format!("/calls/{call_id}/recording")));
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let resp = req.send().await.expect("GET recording");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.expect("body").to_vec())
}

/// Decode with ffmpeg (an independent decoder): per-channel 48 kHz PCM.
fn decode(file: &Path) -> (Vec<i16>, Vec<i16>) {
    let ffmpeg = which("ffmpeg");
    let out = Command::new(ffmpeg)
        .args(["-v", "error", "-i"])
        .arg(file)
        .args([
            "-f",
            "s16le",
            "-acodec",
            "pcm_s16le",
            "-ar",
            "48000",
            "-ac",
            "2",
            "-",
        ])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg cannot decode the recording: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pcm: Vec<i16> = out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    (
        pcm.iter().step_by(2).copied().collect(),
        pcm.iter().skip(1).step_by(2).copied().collect(),
    )
}

/// ffprobe's view: (duration in seconds, channels, codec).
fn ffprobe(file: &Path) -> (f64, u64, String) {
    let out = Command::new(which("ffprobe"))
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=channels,codec_name",
            "-of",
            "json",
        ])
        .arg(file)
        .output()
        .expect("run ffprobe");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let duration = v["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(f64::NAN);
    let stream = &v["streams"][0];
    (
        duration,
        stream["channels"].as_u64().unwrap_or(0),
        stream["codec_name"].as_str().unwrap_or("").to_owned(),
    )
}

fn which(bin: &str) -> &str {
    let found = Command::new(bin).arg("-version").output().is_ok();
    assert!(
        found,
        "{bin} is missing: install it with `sudo apt-get install ffmpeg` (or `make setup`)"
    );
    bin
}

/// Power of `hz` in `s` (Goertzel), normalised by the number of samples.
fn goertzel(s: &[i16], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / 48_000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in s {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / s.len().max(1) as f64
}

fn energy(s: &[i16]) -> f64 {
    s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>()
}

/// The share of `s`'s energy at `hz` (1.0: a pure tone), over its loud 20 ms blocks.
fn share_at(s: &[i16], hz: f64) -> f64 {
    let (mut tone, mut total) = (0.0, 0.0);
    for block in s.chunks(960) {
        let e = energy(block);
        if e / block.len() as f64 > 200.0 * 200.0 {
            tone += goertzel(block, hz) * 2.0 / block.len() as f64;
            total += e / block.len() as f64;
        }
    }
    if total == 0.0 { 0.0 } else { tone / total }
}

#[tokio::test(flavor = "multi_thread")]
async fn recording_of_a_real_call_is_served_and_decodes() {
    let providers = providers().await;
    let mut rig = voice_rig(&providers, false).await;
    rig.fleet.start(Role::Agent);
    let to = Behaviour::SpeakOnce.number(71);
    let call_id = rig.dispatch(&voice_call(&to, "acct-rec-1")).await;
    let hook = rig.summary_of(&call_id, 90).await;
    let s = &hook["data"];
    assert_eq!(s["outcome"], "answered", "{s}");
    let rec = &s["recording"];
    assert_eq!(rec["requested"], true, "{s}");
    assert_eq!(rec["backend"], "nats", "{rec}");
    assert_eq!(rec["format"], "ogg/opus", "{rec}");
    assert_eq!(rec["channels"], json!(["callee", "agent"]), "{rec}");
    assert_eq!(rec["partial"], false, "{rec}");
    assert!(rec["error"].is_null(), "{rec}");

    let (status, headers, file) = fetch(&rig, &call_id, None).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "audio/ogg");
    assert_eq!(rec["bytes"].as_u64(), Some(file.len() as u64), "{rec}");
    let sha = hex(&sha2::Sha256::digest(&file));
    assert_eq!(rec["sha256"].as_str(), Some(sha.as_str()), "{rec}");

    let dir = TempDir::new("rec");
    let path = dir.0.join("call.ogg");
    std::fs::write(&path, &file).expect("write");
    let (duration, channels, codec) = ffprobe(&path);
    assert_eq!((channels, codec.as_str()), (2, "opus"));
    let call = s["call_duration_seconds"].as_f64().expect("call duration");
    println!(
        "recording: {duration:.3} s for a {call:.3} s call, {} bytes",
        file.len()
    );
    assert!(
        (duration - call).abs() <= 0.3,
        "the recording lasts {duration} s, the call {call} s"
    );
    let (callee, agent) = decode(&path);
    let decoded = callee.len() as f64 / 48_000.0;
    assert!((decoded - call).abs() <= 0.3, "decoded {decoded} s");
    let callee_tone = share_at(&callee, Behaviour::TONE_HZ);
    let agent_tone = share_at(&agent, Behaviour::TONE_HZ);
    let agent_voice = share_at(&agent, AGENT_HZ);
    println!(
        "channel 1: {callee_tone:.2} of its energy at 1 kHz; channel 2: {agent_voice:.2} at {AGENT_HZ:.0} Hz, {agent_tone:.3} at 1 kHz"
    );
    assert!(
        callee_tone > 0.5,
        "channel 1 is the callee's 1 kHz tone: {callee_tone}"
    );
    assert!(
        energy(&agent) > 0.0 && agent_voice > 0.5,
        "channel 2 is the agent's voice: {agent_voice}"
    );
    assert!(
        agent_tone < 0.05,
        "no callee in the agent's channel: {agent_tone}"
    );

    // Byte ranges.
    let (status, headers, part) = fetch(&rig, &call_id, Some("bytes=100-1099")).await;
    assert_eq!(status, 206);
    assert_eq!(part, file[100..1100]);
    let total = file.len();
    assert_eq!(
        headers["content-range"],
        format!("bytes 100-1099/{total}").as_str()
    );
    let (status, _, tail) = fetch(&rig, &call_id, Some("bytes=-10")).await;
    assert_eq!((status, tail.as_slice()), (206, &file[total - 10..]));
    let (status, headers, _) = fetch(&rig, &call_id, Some(&format!("bytes={total}-"))).await;
    assert_eq!(status, 416);
    assert_eq!(
        headers["content-range"],
        format!("bytes */{total}").as_str()
    );
    let (status, _, _) = fetch(&rig, "no-such-call", None).await;
    assert_eq!(status, 404);

    // The CLI saves the same bytes.
    let saved = dir.0.join("saved.ogg");
    let port = rig.ingress_port.to_string();
    let bind = format!("127.0.0.1:{port}");
    let (code, out, err) = rig.fleet.run(
        &[
            "recording",
            "get",
            &call_id,
            "-o",
            saved.to_str().expect("path"),
        ],
        &[("CALLFLEET_INGRESS__BIND", bind.as_str())],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(std::fs::read(&saved).expect("saved"), file);
}

/// kill -9 of the worker mid-call: the worker that takes the call over joins the segments the
/// lost one stored into a playable recording marked `partial`.
#[tokio::test(flavor = "multi_thread")]
async fn recording_survives_a_killed_worker_as_a_playable_partial() {
    let providers = providers().await;
    let mut rig = voice_rig(&providers, true).await;
    rig.start_agent("agent-a");
    let to = Behaviour::AnswerThenHangUp(12).number(72);
    let call_id = rig.dispatch(&voice_call(&to, "acct-rec-2")).await;
    rig.wait_event(&call_id, "answered", 30).await;
    // Let the recorder store a few one-second segments.
    let js = async_nats::jetstream::new(rig.nats.client().await);
    let store = js
        .get_object_store("recordings")
        .await
        .expect("recordings bucket");
    let segment = format!("{call_id}/000002");
    wait_for("three stored segments", Duration::from_secs(30), || async {
        store.info(&segment).await.ok().map(|_| ())
    })
    .await;
    rig.fleet.kill9(Role::Agent);
    rig.start_agent("agent-b");

    let hook = rig.summary_of(&call_id, 90).await;
    let s = &hook["data"];
    let rec = &s["recording"];
    assert_eq!(rec["backend"], "nats", "{s}");
    assert_eq!(rec["partial"], true, "{s}");
    assert!(rec["error"].is_null(), "{rec}");
    let (status, _, file) = fetch(&rig, &call_id, None).await;
    assert_eq!(status, 200);
    assert_eq!(rec["bytes"].as_u64(), Some(file.len() as u64));
    let dir = TempDir::new("rec-partial");
    let path = dir.0.join("partial.ogg");
    std::fs::write(&path, &file).expect("write");
    let (callee, _) = decode(&path);
    let decoded = callee.len() as f64 / 48_000.0;
    let stored = rec["duration_seconds"].as_f64().unwrap_or(f64::NAN);
    println!("partial recording: {decoded:.2} s decoded, {stored:.2} s in the summary");
    assert!(
        decoded >= 2.9,
        "at least the three one-second segments (less the pre-skip): {decoded} s"
    );
    assert!((decoded - stored).abs() <= 0.1, "{decoded} vs {stored}");
    let call = s["call_duration_seconds"].as_f64().unwrap_or(f64::NAN);
    assert!(
        decoded < call,
        "it ends before the call: {decoded} < {call}"
    );
}

/// `recording.backend = "egress"` with no Egress service: the call is answered and ends
/// normally, and the summary says why nothing was recorded.
#[tokio::test(flavor = "multi_thread")]
async fn recording_egress_without_an_egress_service_says_why() {
    let mut rig = Rig::with(Peers::Telephony).await;
    rig.fleet.set("CALLFLEET_RECORDING__BACKEND", "egress");
    rig.start_ingress().await;
    rig.fleet.start(Role::Notifier);
    rig.fleet.start(Role::Agent);
    let to = Behaviour::AnswerThenHangUp(2).number(73);
    let call_id = rig
        .dispatch(&json!({"destination": to, "account_code": "acct-rec-3", "record_call": true}))
        .await;
    let hook = rig.summary_of(&call_id, 60).await;
    let s = &hook["data"];
    assert_eq!(s["outcome"], "answered", "{s}");
    assert_eq!(s["end_reason"], "callee_hangup", "{s}");
    let rec = &s["recording"];
    assert_eq!(rec["requested"], true, "{rec}");
    assert_eq!(rec["backend"], "egress", "{rec}");
    let error = rec["error"].as_str().unwrap_or_default();
    assert!(error.contains("Egress"), "the summary says why: {rec}");
    assert!(rec["key"].is_null() && rec["egress_id"].is_null(), "{rec}");
    let (status, _, _) = fetch(&rig, &call_id, None).await;
    assert_eq!(status, 404, "nothing recorded");
}

/// A held call (voice session off) records too: a receive-only listener taps the callee, so
/// channel 1 carries the callee's 1 kHz and channel 2, where nobody spoke, is silence.
#[tokio::test(flavor = "multi_thread")]
async fn recording_of_a_held_call_has_the_callee_and_a_silent_agent() {
    let mut rig = Rig::with(Peers::Telephony).await;
    rig.fleet.set("CALLFLEET_AGENT__VOICE_SESSION", "false");
    rig.fleet.set("CALLFLEET_AGENT__MEDIA_LOOPBACK", "true");
    rig.fleet
        .set("CALLFLEET_AGENT__MAX_CALL_DURATION_SECS", "5");
    rig.fleet.set("CALLFLEET_RECORDING__SEGMENT_SECS", "1");
    rig.start_ingress().await;
    rig.fleet.start(Role::Notifier);
    rig.fleet.start(Role::Agent);
    // 2 s of the tone, then silence as RTP, until the caller hangs up (at max_duration).
    let to = Behaviour::SpeakOnce.number(74);
    let call_id = rig
        .dispatch(&json!({"destination": to, "account_code": "acct-rec-4", "record_call": true}))
        .await;
    let hook = rig.summary_of(&call_id, 60).await;
    let s = &hook["data"];
    assert_eq!(s["outcome"], "answered", "{s}");
    assert_eq!(s["end_reason"], "max_duration", "{s}");
    assert!(
        s["transcript"].as_array().is_none_or(Vec::is_empty),
        "no voice session: {s}"
    );
    let rec = &s["recording"];
    assert_eq!(rec["backend"], "nats", "{rec}");
    assert!(rec["error"].is_null(), "{rec}");
    assert_eq!(rec["partial"], false, "{rec}");

    let (status, _, file) = fetch(&rig, &call_id, None).await;
    assert_eq!(status, 200);
    let dir = TempDir::new("rec-held");
    let path = dir.0.join("held.ogg");
    std::fs::write(&path, &file).expect("write");
    let call = s["call_duration_seconds"].as_f64().expect("call duration");
    let (duration, channels, _) = ffprobe(&path);
    assert_eq!(channels, 2);
    assert!(
        (duration - call).abs() <= 0.3,
        "the recording lasts {duration} s, the call {call} s"
    );
    let (callee, agent) = decode(&path);
    let callee_tone = share_at(&callee, Behaviour::TONE_HZ);
    let loudest_agent = agent.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0);
    println!(
        "held call: {duration:.3} s for a {call:.3} s call; channel 1 {callee_tone:.2} at 1 kHz, channel 2 peak {loudest_agent}"
    );
    assert!(
        callee_tone > 0.5,
        "channel 1 is the callee's tone: {callee_tone}"
    );
    assert!(
        loudest_agent < 100,
        "channel 2 is silence (nobody spoke for the agent): peak {loudest_agent}"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
