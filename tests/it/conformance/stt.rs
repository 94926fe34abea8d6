//! STT: Deepgram (`deepgram-sdk`), AssemblyAI (`assemblyai`), Sarvam (`sarvamai`).

use std::time::Duration;

use callfleet_standins::stt::{
    self, At, FakeStt, SttFail, aai_turn, at, dg_result, sarvam_data, sarvam_event,
};
use callfleet_tests::scaled;
use callfleet_voice::providers::stt::{SttClient, SttEvent};
use serde_json::{Value, json};

use super::{clean, driver, resolve, root, same_params, split_uri};

/// 2 s of a 440 Hz tone, 16 kHz mono (the drivers send the same).
fn tone() -> Vec<i16> {
    (0..32_000)
        .map(|i| {
            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / 16_000.0).sin()) as i16
        })
        .collect()
}

/// Our client: `options.stt` resolved against `base` (every STT env var points at it), 2 s
/// of audio in 20 ms frames, end of input, every event until the stream ends.
async fn ours(stt: &str, base: &str) -> Vec<SttEvent> {
    let mut env = callfleet_standins::env(
        "http://127.0.0.1:9/v1",
        base,
        base,
        "ws://127.0.0.1:9",
        "ws://127.0.0.1:9",
    );
    env.insert("SARVAM_STT_BASE_URL".into(), base.into());
    let cfg = resolve(&json!({"stt": stt}), &env);
    let mut s = SttClient::new(cfg.stt).start();
    for frame in tone().chunks(320) {
        assert!(s.push(frame.to_vec()), "audio queue full");
    }
    s.finish();
    let mut events = Vec::new();
    let limit = scaled(Duration::from_secs(15));
    tokio::time::timeout(limit, async {
        while let Some(e) = s.next().await {
            events.push(e);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("our {stt} stream did not end within {limit:?}: {events:?}"));
    events
}

/// The SDK's and our connection to two stand-ins running the same script.
async fn both(
    flavor: stt::Flavor,
    script: Vec<At>,
    sdk: &str,
    args: Value,
    ours_stt: &str,
) -> (Value, stt::SttLog, Vec<SttEvent>, stt::SttLog) {
    let a = FakeStt::start(flavor, script.clone()).await;
    let b = FakeStt::start(flavor, script).await;
    let mut args = args;
    args["ws"] = json!(root(&a.url));
    let out = driver(sdk, &args).await;
    let events = ours(ours_stt, &b.url).await;
    let (sa, sb) = (a.connections(), b.connections());
    assert_eq!(sa.len(), 1, "{sdk}: SDK connections {sa:?}");
    assert_eq!(sb.len(), 1, "{sdk}: our connections {sb:?}");
    (out, sa[0].clone(), events, sb[0].clone())
}

fn texts(msgs: &[String]) -> Vec<Value> {
    msgs.iter()
        .map(|m| serde_json::from_str(m).unwrap_or(Value::Null))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_deepgram_sdk_and_our_client_agree() {
    let script = vec![
        at(
            300,
            json!({"type": "SpeechStarted", "channel": [0], "timestamp": 0.3}),
        ),
        at(600, dg_result("hello", false, false)),
        at(1200, dg_result("hello there", true, true)),
        at(
            1500,
            json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 1.2}),
        ),
    ];
    let (sdk, sdk_log, events, our_log) = both(
        stt::Flavor::Deepgram,
        script,
        "deepgram",
        json!({"key": "dg-test"}),
        "deepgram/nova-3",
    )
    .await;
    clean("deepgram", &sdk);
    let kinds: Vec<&str> = sdk["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "SpeechStarted",
            "Results",
            "Results",
            "UtteranceEnd",
            "Metadata"
        ],
        "{sdk}"
    );
    assert_eq!(
        sdk["messages"][2],
        json!({"type": "Results", "transcript": "hello there", "is_final": true, "speech_final": true})
    );
    assert_eq!(
        events,
        [
            SttEvent::SpeechStarted,
            SttEvent::Interim {
                text: "hello".into()
            },
            SttEvent::Final {
                text: "hello there".into()
            },
            SttEvent::EndOfTurn,
            SttEvent::EndOfTurn,
        ]
    );
    let (path_s, q_s) = split_uri(&sdk_log.uri);
    let (path_o, q_o) = split_uri(&our_log.uri);
    assert_eq!(path_s, "/v1/listen");
    assert_eq!(path_o, path_s);
    same_params(
        "deepgram",
        &q_s,
        &q_o,
        &[
            "model",
            "encoding",
            "sample_rate",
            "channels",
            "interim_results",
            "endpointing",
            "utterance_end_ms",
            "vad_events",
        ],
    );
    assert_eq!(sdk_log.auth.as_deref(), Some("Token dg-test"));
    assert_eq!(our_log.auth, sdk_log.auth);
    assert_eq!(
        our_log.audio_bytes, sdk_log.audio_bytes,
        "both send the 2 s as binary s16le"
    );
    assert_eq!(
        texts(&sdk_log.text_messages),
        [json!({"type": "CloseStream"})]
    );
    assert_eq!(texts(&our_log.text_messages), texts(&sdk_log.text_messages));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_assemblyai_sdk_and_our_client_agree() {
    let script = vec![
        at(800, aai_turn(0, "hello there", false, "")),
        at(
            1400,
            aai_turn(
                0,
                "hello there how are you",
                true,
                "hello there how are you",
            ),
        ),
    ];
    let (sdk, sdk_log, events, our_log) = both(
        stt::Flavor::AssemblyAi,
        script,
        "assemblyai",
        json!({"key": "aai-test"}),
        "assemblyai/universal-streaming:en",
    )
    .await;
    clean("assemblyai", &sdk);
    assert_eq!(
        sdk["messages"],
        json!([
            {"type": "Begin"},
            {"type": "Turn", "transcript": "hello there", "end_of_turn": false, "turn_order": 0},
            {"type": "Turn", "transcript": "hello there how are you", "end_of_turn": true, "turn_order": 0},
            {"type": "Termination"},
        ])
    );
    assert_eq!(
        events,
        [
            SttEvent::Interim {
                text: "hello there".into()
            },
            SttEvent::TurnTranscript {
                text: "hello there how are you".into()
            },
            SttEvent::EndOfTurn,
        ]
    );
    let (path_s, q_s) = split_uri(&sdk_log.uri);
    let (path_o, q_o) = split_uri(&our_log.uri);
    assert_eq!(path_s, "/v3/ws");
    assert_eq!(path_o, path_s);
    same_params(
        "assemblyai",
        &q_s,
        &q_o,
        &["sample_rate", "encoding", "speech_model", "format_turns"],
    );
    assert_eq!(
        sdk_log.auth.as_deref(),
        Some("aai-test"),
        "the raw key, no scheme"
    );
    assert_eq!(our_log.auth, sdk_log.auth);
    assert_eq!(
        sdk_log.api_version.as_deref(),
        Some("2025-05-12"),
        "the SDK pins the API version (`AssemblyAI-Version`)"
    );
    assert_eq!(our_log.api_version, sdk_log.api_version);
    assert_eq!(our_log.audio_bytes, sdk_log.audio_bytes);
    assert_eq!(
        texts(&sdk_log.text_messages),
        [json!({"type": "Terminate"})]
    );
    assert_eq!(texts(&our_log.text_messages), texts(&sdk_log.text_messages));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_sarvam_stt_sdk_and_our_client_agree() {
    let script = vec![
        at(300, sarvam_event("START_SPEECH")),
        at(1200, sarvam_data("नमस्ते")),
        at(1300, sarvam_event("END_SPEECH")),
    ];
    let (sdk, sdk_log, events, our_log) = both(
        stt::Flavor::Sarvam,
        script,
        "sarvam_stt",
        json!({"key": "sarvam-test"}),
        "sarvam/saarika:v2.5:hi-IN",
    )
    .await;
    clean("sarvam_stt", &sdk);
    assert_eq!(
        sdk["messages"],
        json!([
            {"type": "events", "signal": "START_SPEECH"},
            {"type": "data", "transcript": "नमस्ते"},
            {"type": "events", "signal": "END_SPEECH"},
        ])
    );
    assert_eq!(
        events,
        [
            SttEvent::SpeechStarted,
            SttEvent::Final {
                text: "नमस्ते".into()
            },
            SttEvent::EndOfTurn
        ]
    );
    let (path_s, q_s) = split_uri(&sdk_log.uri);
    let (path_o, q_o) = split_uri(&our_log.uri);
    assert_eq!(path_s, "/speech-to-text/ws");
    assert_eq!(path_o, path_s);
    same_params(
        "sarvam stt",
        &q_s,
        &q_o,
        &[
            "language-code",
            "model",
            "sample_rate",
            "input_audio_codec",
            "high_vad_sensitivity",
            "vad_signals",
            "flush_signal",
        ],
    );
    assert_eq!(sdk_log.api_key.as_deref(), Some("sarvam-test"));
    assert_eq!(our_log.api_key, sdk_log.api_key);
    assert_eq!(our_log.audio_bytes, sdk_log.audio_bytes);
    let (fs, fo) = (
        sdk_log.first_audio.expect("SDK audio"),
        our_log.first_audio.expect("our audio"),
    );
    for k in ["encoding", "sample_rate"] {
        assert_eq!(
            fo["audio"][k], fs["audio"][k],
            "audio message field {k}: SDK {fs}, ours {fo}"
        );
    }
    assert_eq!(texts(&sdk_log.text_messages), [json!({"type": "flush"})]);
    assert_eq!(texts(&our_log.text_messages), texts(&sdk_log.text_messages));
}

/// A refused upgrade (401): each SDK reports it, and so does our client, with the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_stt_401_is_an_error_to_every_client() {
    for (flavor, sdk, key, ours_stt) in [
        (
            stt::Flavor::Deepgram,
            "deepgram",
            "dg-bad",
            "deepgram/nova-3",
        ),
        (
            stt::Flavor::AssemblyAi,
            "assemblyai",
            "aai-bad",
            "assemblyai/universal-streaming:en",
        ),
        (
            stt::Flavor::Sarvam,
            "sarvam_stt",
            "sv-bad",
            "sarvam/saarika:v2.5:hi-IN",
        ),
    ] {
        let fake =
            FakeStt::failing(flavor, Vec::new(), Some(SttFail::Reject(401)), usize::MAX).await;
        let out = driver(sdk, &json!({"ws": root(&fake.url), "key": key})).await;
        let status = &out["errors"][0]["status"];
        let text = out["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            status == &json!(401) || text.contains("401"),
            "{sdk}: SDK did not report the 401: {out}"
        );
        let events = ours(ours_stt, &fake.url).await;
        match events.as_slice() {
            [SttEvent::Error(e)] => {
                assert!(e.contains("401"), "{sdk}: our error lacks the status: {e}")
            }
            other => panic!("{sdk}: our client saw {other:?}"),
        }
    }
}
