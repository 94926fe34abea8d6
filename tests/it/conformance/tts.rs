//! TTS: Cartesia (`cartesia`), ElevenLabs (`elevenlabs`, through the driver's TLS proxy) and
//! Sarvam (`sarvamai`) against the TTS stand-ins, and a refused upgrade for each.

use std::{collections::BTreeSet, time::Duration};

use callfleet_standins::{
    tts::{self, FakeTts, TtsFail, TtsLog, TtsScript},
    wait_for,
};
use callfleet_tests::scaled;
use callfleet_voice::providers::tts::{TtsClient, TtsEvent};
use serde_json::{Value, json};

use super::{clean, driver, resolve, root, same_params, split_uri};

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
    assert_eq!(json!(words(&events)), sdk["words"]);
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

/// The words of our client's `Words` events, in order.
fn words(events: &[TtsEvent]) -> Vec<String> {
    events
        .iter()
        .flat_map(|e| match e {
            TtsEvent::Words(w) => w.iter().map(|w| w.word.clone()).collect(),
            _ => vec![],
        })
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_elevenlabs_sdk_and_our_client_agree() {
    let (a, b) = (
        FakeTts::start(tts::Flavor::ElevenLabs, SCRIPT).await,
        FakeTts::start(tts::Flavor::ElevenLabs, SCRIPT).await,
    );
    let sdk = driver(
        "elevenlabs",
        &json!({"ws": a.url, "key": "xi-test", "voice": "el-voice",
            "model": "eleven_flash_v2_5", "output_format": "pcm_24000"}),
    )
    .await;
    clean("elevenlabs", &sdk);
    let events = ours(
        &json!("elevenlabs/eleven_flash_v2_5:el-voice"),
        &b.url,
        &["Hello there. ", "How are you?"],
    )
    .await;
    assert_eq!(events.last(), Some(&TtsEvent::Done), "{events:?}");
    // What each understood: the audio, the alignment (as words), the end.
    assert!(sdk["audio_bytes"].as_u64().unwrap_or(0) > 0, "{sdk}");
    assert_eq!(
        json!(audio_bytes(&events)),
        sdk["audio_bytes"],
        "the same audio, decoded"
    );
    assert_eq!(sdk["is_final"], json!(true), "{sdk}");
    let sdk_text: String = sdk["chars"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(sdk_text, "Hello there. How are you? ");
    let sdk_words: Vec<&str> = sdk_text.split_whitespace().collect();
    assert_eq!(words(&events), sdk_words);
    // The wire: URL, auth, messages, close.
    let (ls, lo) = (one("elevenlabs SDK", &a), one("elevenlabs ours", &b));
    let ((path_s, q_s), (path_o, q_o)) = (split_uri(&ls.uri), split_uri(&lo.uri));
    assert_eq!(path_s, "/v1/text-to-speech/el-voice/stream-input");
    assert_eq!(path_o, path_s);
    same_params("elevenlabs", &q_s, &q_o, &["model_id", "output_format"]);
    assert_eq!(
        q_s.keys().map(String::as_str).collect::<Vec<_>>(),
        ["model_id", "output_format"]
    );
    for k in q_o.keys() {
        assert!(
            q_s.contains_key(k) || ["sync_alignment", "language_code"].contains(&k.as_str()),
            "our query parameter `{k}` is neither the SDK's nor a documented extra: {}",
            lo.uri
        );
    }
    assert_eq!(
        ls.headers.get("xi-api-key").map(String::as_str),
        Some("xi-test")
    );
    assert_eq!(lo.headers.get("xi-api-key"), ls.headers.get("xi-api-key"));
    let texts =
        |l: &TtsLog| -> Vec<Value> { l.messages.iter().map(|m| m["text"].clone()).collect() };
    assert_eq!(
        texts(&ls),
        [
            json!(" "),
            json!("Hello there. "),
            json!("How are you? "),
            json!("")
        ],
        "init, the text (each ending in one space), end of input"
    );
    assert_eq!(texts(&lo), texts(&ls));
    assert_eq!(
        lo.messages[0]["voice_settings"],
        ls.messages[0]["voice_settings"]
    );
    assert_eq!(ls.messages.last(), Some(&json!({"text": ""})));
    assert_eq!(lo.messages.last(), ls.messages.last());
    // Every field we send is one of the SDK's models of that message; where we differ from the
    // SDK, it is on purpose (the client's module note): we flush each phrase, it asks the
    // server's schedule to trigger generation.
    let last = lo.messages.len() - 1;
    for (i, m) in lo.messages.iter().enumerate() {
        let model = match i {
            0 => "init",
            i if i == last => "close",
            _ => "text",
        };
        let fields: BTreeSet<String> =
            serde_json::from_value(sdk["fields"][model].clone()).expect("model fields");
        assert!(
            keys(m).is_subset(&fields),
            "our {model} message {m} has fields outside the SDK's {fields:?}"
        );
        let only = |x: &Value, y: &Value| -> Vec<String> {
            keys(x).difference(&keys(y)).cloned().collect()
        };
        let owned = |k: &[&str]| -> Vec<String> { k.iter().map(|k| (*k).to_owned()).collect() };
        let (sdk_only, ours_only) = (only(&ls.messages[i], m), only(m, &ls.messages[i]));
        let (want_sdk, want_ours): (&[&str], &[&str]) = match model {
            "init" => (&["generation_config", "try_trigger_generation"], &[]),
            "text" => (&["try_trigger_generation"], &["flush"]),
            _ => (&[], &[]),
        };
        assert_eq!(
            (sdk_only, ours_only),
            (owned(want_sdk), owned(want_ours)),
            "{model} message: SDK {}, ours {m}",
            ls.messages[i]
        );
    }
    // The server closes after `isFinal`; both answer with a normal close (ours may still be on
    // its way when our stream yields `Done`).
    let limit = scaled(Duration::from_secs(5));
    for (who, fake) in [("the SDK's", &a), ("our", &b)] {
        let code = wait_for(&format!("{who} close frame"), limit, || {
            one(who, fake).client_close
        })
        .await;
        assert_eq!(code, 1000, "{who} close code");
    }
}

/// A refused upgrade (401): each TTS SDK reports it, and so does our client, with the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_tts_401_is_an_error_to_every_client() {
    for (flavor, sdk, ours_tts) in [
        (
            tts::Flavor::Cartesia,
            "cartesia",
            json!("cartesia/sonic-3:voice-123"),
        ),
        (
            tts::Flavor::ElevenLabs,
            "elevenlabs",
            json!("elevenlabs/eleven_flash_v2_5:el-voice"),
        ),
        (
            tts::Flavor::Sarvam,
            "sarvam_tts",
            json!({"provider": "sarvam", "model": "bulbul:v2", "voice": "anushka"}),
        ),
    ] {
        let fake = FakeTts::failing(flavor, TtsFail::Reject(401)).await;
        let args = json!({"ws": root(&fake.url), "key": "bad-key", "voice": "voice-123",
            "model": "sonic-3", "output_format": "pcm_24000"});
        let out = driver(sdk, &args).await;
        let status = &out["errors"][0]["status"];
        let text = out["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            status == &json!(401) || text.contains("401"),
            "{sdk}: SDK did not report the 401: {out}"
        );
        let events = ours(&ours_tts, &fake.url, &["Hello there."]).await;
        match events.as_slice() {
            [TtsEvent::Error(e)] => {
                assert!(e.contains("401"), "{sdk}: our error lacks the status: {e}")
            }
            other => panic!("{sdk}: our client saw {other:?}"),
        }
    }
}
