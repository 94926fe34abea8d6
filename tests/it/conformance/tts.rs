//! TTS: Cartesia (`cartesia`) and Sarvam (`sarvamai`) against the TTS stand-ins (ElevenLabs: see
//! the parent module).

use std::time::Duration;

use callfleet_standins::tts::{self, FakeTts, TtsLog, TtsScript};
use callfleet_tests::scaled;
use callfleet_voice::providers::tts::{TtsClient, TtsEvent};
use serde_json::{Value, json};

use super::{clean, driver, resolve};

const SCRIPT: TtsScript = TtsScript {
    ttfb: Duration::ZERO,
    ms_per_char: 5,
};

/// Our client: `options.tts` resolved against `base`, the texts pushed, end of input, every
/// event until `Done` or an error.
async fn ours(tts: &Value, base: &str, texts: &[&str]) -> Vec<TtsEvent> {
    let mut env = callfleet_standins::env(
        "http://127.0.0.1:9/v1",
        "ws://127.0.0.1:9",
        "ws://127.0.0.1:9",
        base,
        base,
    );
    env.insert("SARVAM_TTS_BASE_URL".into(), base.into());
    let cfg = resolve(&json!({"tts": tts}), &env);
    let client = TtsClient::new(cfg.tts);
    let mut s = client.start();
    for t in texts {
        s.push_text(t);
    }
    s.end_input();
    let mut events = Vec::new();
    let limit = scaled(Duration::from_secs(15));
    tokio::time::timeout(limit, async {
        while let Some(e) = s.next().await {
            let end = matches!(e, TtsEvent::Done | TtsEvent::Error(_));
            events.push(e);
            if end {
                break;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("our {tts} stream did not end within {limit:?}: {events:?}"));
    events
}

fn audio_bytes(events: &[TtsEvent]) -> usize {
    events
        .iter()
        .map(|e| {
            if let TtsEvent::Audio(a) = e {
                a.len() * 2
            } else {
                0
            }
        })
        .sum()
}

fn root(url: &str) -> String {
    let u = reqwest::Url::parse(url).expect("stand-in url");
    format!(
        "ws://{}:{}",
        u.host_str().unwrap_or_default(),
        u.port().unwrap_or_default()
    )
}

fn one(what: &str, fake: &FakeTts) -> TtsLog {
    let c = fake.connections();
    assert_eq!(c.len(), 1, "{what}: connections {c:?}");
    c[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_cartesia_sdk_and_our_client_agree() {
    let (a, b) = (
        FakeTts::start(tts::Flavor::Cartesia, SCRIPT).await,
        FakeTts::start(tts::Flavor::Cartesia, SCRIPT).await,
    );
    let texts = ["Hello there. ", "How are you?"];
    let sdk = driver("cartesia", &json!({"ws": root(&a.url), "key": "sk_car_test", "voice": "voice-123", "model": "sonic-3"})).await;
    clean("cartesia", &sdk);
    let events = ours(&json!("cartesia/sonic-3:voice-123"), &b.url, &texts).await;
    assert_eq!(events.last(), Some(&TtsEvent::Done), "{events:?}");
    assert_eq!(
        sdk["events"].as_array().and_then(|e| e.last()),
        Some(&json!("done")),
        "{sdk}"
    );
    assert_eq!(
        sdk["words"],
        json!(["Hello", "there.", "How", "are", "you?"])
    );
    let ours_words: Vec<String> = events
        .iter()
        .flat_map(|e| match e {
            TtsEvent::Words(w) => w.iter().map(|w| w.word.clone()).collect(),
            _ => vec![],
        })
        .collect();
    assert_eq!(json!(ours_words), sdk["words"]);
    assert!(sdk["audio_bytes"].as_u64().unwrap_or(0) > 0, "{sdk}");
    assert_eq!(
        json!(audio_bytes(&events)),
        sdk["audio_bytes"],
        "the same audio, decoded"
    );
    let (ls, lo) = (one("cartesia SDK", &a), one("cartesia ours", &b));
    assert_eq!(ls.uri, "/tts/websocket");
    assert_eq!(lo.uri, ls.uri);
    assert_eq!(
        ls.headers.get("authorization").map(String::as_str),
        Some("Bearer sk_car_test")
    );
    for h in ["authorization", "cartesia-version"] {
        assert_eq!(lo.headers.get(h), ls.headers.get(h), "header {h}");
    }
    assert_eq!(
        lo.messages.len(),
        ls.messages.len(),
        "SDK {:?}\nours {:?}",
        ls.messages,
        lo.messages
    );
    for (s, o) in ls.messages.iter().zip(&lo.messages) {
        for k in [
            "model_id",
            "transcript",
            "voice",
            "output_format",
            "add_timestamps",
            "continue",
            "language",
        ] {
            assert_eq!(o[k], s[k], "message field `{k}`: SDK {s}, ours {o}");
        }
    }
    assert_eq!(
        ls.messages
            .last()
            .map(|m| (&m["transcript"], &m["continue"])),
        Some((&json!(""), &json!(false)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_sarvam_tts_sdk_and_our_client_agree() {
    let (a, b) = (
        FakeTts::start(tts::Flavor::Sarvam, SCRIPT).await,
        FakeTts::start(tts::Flavor::Sarvam, SCRIPT).await,
    );
    let texts = ["Hello there, this is a test. ", "How are you today?"];
    let sdk = driver(
        "sarvam_tts",
        &json!({"ws": root(&a.url), "key": "sarvam-test"}),
    )
    .await;
    clean("sarvam_tts", &sdk);
    assert_eq!(
        sdk["events"].as_array().and_then(|e| e.last()),
        Some(&json!("event:final")),
        "{sdk}"
    );
    let events = ours(
        &json!({"provider": "sarvam", "model": "bulbul:v2", "voice": "anushka"}),
        &b.url,
        &texts,
    )
    .await;
    assert_eq!(events.last(), Some(&TtsEvent::Done), "{events:?}");
    assert_eq!(
        json!(audio_bytes(&events)),
        sdk["audio_bytes"],
        "the same audio, decoded"
    );
    let (ls, lo) = (one("sarvam SDK", &a), one("sarvam ours", &b));
    let path = |u: &str| u.split('?').next().unwrap_or_default().to_owned();
    assert_eq!(path(&ls.uri), "/text-to-speech/ws");
    assert_eq!(path(&lo.uri), path(&ls.uri));
    for p in ["model=bulbul%3Av2", "send_completion_event=true"] {
        assert!(
            ls.uri.contains(p) && lo.uri.contains(p),
            "{p}: SDK {}, ours {}",
            ls.uri,
            lo.uri
        );
    }
    assert_eq!(
        ls.headers.get("api-subscription-key").map(String::as_str),
        Some("sarvam-test")
    );
    assert_eq!(
        lo.headers.get("api-subscription-key"),
        ls.headers.get("api-subscription-key")
    );
    let kinds =
        |l: &TtsLog| -> Vec<Value> { l.messages.iter().map(|m| m["type"].clone()).collect() };
    assert_eq!(
        kinds(&ls),
        [
            json!("config"),
            json!("text"),
            json!("text"),
            json!("flush")
        ]
    );
    assert_eq!(kinds(&lo), kinds(&ls));
    let (cs, co) = (&ls.messages[0]["data"], &lo.messages[0]["data"]);
    for k in [
        "language_code",
        "speaker",
        "speech_sample_rate",
        "output_audio_codec",
        "min_buffer_size",
        "max_chunk_length",
        "enable_preprocessing",
        "pace",
    ] {
        assert_eq!(co[k], cs[k], "config field `{k}`: SDK {cs}, ours {co}");
    }
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    for k in keys(co) {
        assert!(
            cs.get(&k).is_some() || k == "model",
            "our config field `{k}` is not in the SDK's config: {cs}"
        );
    }
}
