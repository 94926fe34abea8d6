//! Resolution of `session_options` against env defaults: field-level errors before dialing.

use std::collections::HashMap;

use callfleet_voice::{
    config::{LlmProvider, SttProvider, TtsProvider},
    resolve_json as resolve,
};
use serde_json::json;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn full_env() -> HashMap<String, String> {
    env(&[
        ("OPENAI_API_KEY", "sk-1"),
        ("GROQ_API_KEY", "gsk-1"),
        ("DEEPGRAM_API_KEY", "dg-1"),
        ("ASSEMBLYAI_API_KEY", "aai-1"),
        ("CARTESIA_API_KEY", "car-1"),
        ("CARTESIA_VOICE_ID", "voice-env"),
        ("ELEVENLABS_API_KEY", "xi-1"),
    ])
}

#[test]
fn seed_payload_resolves() {
    let opts = json!({"preemptive_generation": false, "llm": "openai/gpt-4o-mini",
        "stt": "assemblyai/universal-streaming:en", "tts": "cartesia",
        "cartesia_voice": "043cfc81-d69f-4bee-ae1e-7862cb358650"});
    let c = resolve(&opts, &full_env()).expect("resolves");
    assert_eq!(
        (c.llm.provider, c.llm.model.as_str()),
        (LlmProvider::OpenAi, "gpt-4o-mini")
    );
    assert_eq!(c.llm.base_url, "https://api.openai.com/v1");
    assert_eq!(c.stt.provider, SttProvider::AssemblyAi);
    assert_eq!(c.stt.model, "universal-streaming");
    assert_eq!(c.stt.language.as_deref(), Some("en"));
    assert_eq!(c.tts.provider, TtsProvider::Cartesia);
    assert_eq!(c.tts.voice, "043cfc81-d69f-4bee-ae1e-7862cb358650");
    assert!(!c.preemptive_generation);
    // Serialisable without secrets.
    let s = serde_json::to_string(&c).expect("serialise");
    for secret in ["sk-1", "aai-1", "car-1"] {
        assert!(!s.contains(secret), "{secret} in {s}");
    }
}

#[test]
fn descriptors_and_env_defaults() {
    let mut e = full_env();
    e.insert("LLM_PROVIDER".into(), "groq".into());
    e.insert("GROQ_BASE_URL".into(), "http://127.0.0.1:1/v1".into());
    let c = resolve(
        &json!({"tts": "cartesia/sonic-2:voice-x", "preemptive_generation": "off"}),
        &e,
    )
    .expect("ok");
    assert_eq!(
        (c.llm.provider, c.llm.model.as_str()),
        (LlmProvider::Groq, "llama-3.3-70b-versatile")
    );
    assert_eq!(c.llm.base_url, "http://127.0.0.1:1/v1");
    assert_eq!(
        (c.tts.model.as_str(), c.tts.voice.as_str()),
        ("sonic-2", "voice-x")
    );
    assert_eq!(c.stt.provider, SttProvider::Deepgram);
    assert!(!c.preemptive_generation);

    let c = resolve(
        &json!({"tts": {"provider": "elevenlabs", "voice": "v9"}, "preemptive_generation": 1,
        "language": "en-AU", "prompt": "Hi", "greeting": "Say hello"}),
        &full_env(),
    )
    .expect("ok");
    assert_eq!(
        (c.tts.provider, c.tts.model.as_str(), c.tts.voice.as_str()),
        (TtsProvider::ElevenLabs, "eleven_flash_v2_5", "v9")
    );
    assert!(c.preemptive_generation);
    assert_eq!(c.stt.language.as_deref(), Some("en-AU"));
    assert_eq!(c.tts.language.as_deref(), Some("en"));
    assert_eq!(c.greeting.as_deref(), Some("Say hello"));

    let c = resolve(
        &json!({"tts": "cartesia", "cartesia_model": "sonic-turbo"}),
        &full_env(),
    )
    .expect("ok");
    assert_eq!(
        (c.tts.model.as_str(), c.tts.voice.as_str()),
        ("sonic-turbo", "voice-env")
    );
}

#[test]
fn unknown_provider_is_a_field_error() {
    let err = resolve(
        &json!({"llm": "mistral/large", "stt": "whisper/x", "tts": "polly"}),
        &full_env(),
    )
    .expect_err("must fail");
    let fields: Vec<_> = err.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "session_options.llm",
            "session_options.stt",
            "session_options.tts"
        ]
    );
    assert!(
        err.errors[0]
            .problem
            .contains("unknown LLM provider `mistral`"),
        "{}",
        err.errors[0].problem
    );
    assert!(
        err.errors[1]
            .problem
            .contains("unknown STT provider `whisper`")
    );
    assert!(
        err.errors[2]
            .problem
            .contains("unknown TTS provider `polly`")
    );
    assert!(
        err.to_string()
            .contains("session_options.llm: unknown LLM provider")
    );
}

#[test]
fn missing_keys_are_field_errors_naming_the_variable() {
    let err = resolve(&json!({"llm": "groq/llama-3.3-70b-versatile", "stt": "deepgram", "tts": "cartesia/sonic-3:v"}), &env(&[]))
        .expect_err("must fail");
    let got: Vec<_> = err
        .errors
        .iter()
        .map(|e| (e.field.as_str(), e.problem.as_str()))
        .collect();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].0, "session_options.llm");
    assert!(
        got[0].1.starts_with("GROQ_API_KEY is not set"),
        "{}",
        got[0].1
    );
    assert!(got[1].1.starts_with("DEEPGRAM_API_KEY is not set"));
    assert!(got[2].1.starts_with("CARTESIA_API_KEY is not set"));
}

#[test]
fn bad_values_are_field_errors() {
    let err = resolve(
        &json!({"llm": 5, "preemptive_generation": "maybe", "tts": "elevenlabs", "prompt": []}),
        &env(&[
            ("OPENAI_API_KEY", "k"),
            ("DEEPGRAM_API_KEY", "d"),
            ("ELEVENLABS_API_KEY", "x"),
        ]),
    )
    .expect_err("must fail");
    let fields: Vec<_> = err.errors.iter().map(|e| e.field.as_str()).collect();
    assert!(fields.contains(&"session_options.llm"));
    assert!(fields.contains(&"session_options.preemptive_generation"));
    assert!(fields.contains(&"session_options.prompt"));
    // ElevenLabs without a voice anywhere.
    assert!(
        err.errors
            .iter()
            .any(|e| e.field == "session_options.tts" && e.problem.contains("ELEVENLABS_VOICE_ID"))
    );
    assert!(resolve(&json!([1]), &full_env()).is_err());
    assert!(resolve(&json!(null), &full_env()).is_ok());
    // Sarvam without its key: a field error per stage, naming the variable.
    let sarvam = resolve(
        &json!({"stt": "sarvam/saaras:v3", "tts": "sarvam/bulbul:v2:anushka"}),
        &full_env(),
    )
    .expect_err("sarvam without a key");
    let got: Vec<_> = sarvam
        .errors
        .iter()
        .map(|e| (e.field.as_str(), e.problem.as_str()))
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "session_options.stt");
    assert!(got[0].1.starts_with("SARVAM_API_KEY is not set"), "{got:?}");
    assert_eq!(got[1].0, "session_options.tts");
    assert!(got[1].1.starts_with("SARVAM_API_KEY is not set"), "{got:?}");
}

#[test]
fn sarvam_descriptors_resolve() {
    let mut e = full_env();
    e.insert("SARVAM_API_KEY".into(), "sv-1".into());
    // Model names carry a `:vN` version; the variant follows it.
    let c = resolve(
        &json!({"stt": "sarvam/saarika:v2.5:ta-IN", "tts": "sarvam/bulbul:v2:Arya",
                "language": "hi"}),
        &e,
    )
    .expect("resolves");
    assert_eq!(c.stt.provider, SttProvider::Sarvam);
    assert_eq!(c.stt.model, "saarika:v2.5");
    assert_eq!(c.stt.language.as_deref(), Some("ta-IN"));
    assert_eq!(c.stt.base_url, "wss://api.sarvam.ai");
    assert_eq!(c.tts.provider, TtsProvider::Sarvam);
    assert_eq!(c.tts.model, "bulbul:v2");
    assert_eq!(c.tts.voice, "arya");
    assert_eq!(c.tts.language.as_deref(), Some("hi-IN"));
    assert_eq!(c.tts.sample_rate, 24_000);
    let s = serde_json::to_string(&c).expect("serialise");
    assert!(!s.contains("sv-1"));

    // Object form, bare families (current versions), the session language, one base URL.
    e.insert("SARVAM_BASE_URL".into(), "ws://127.0.0.1:9".into());
    let c = resolve(
        &json!({"stt": "sarvam/saaras", "language": "or",
                "tts": {"provider": "sarvam", "model": "bulbul:v2", "voice": "karun"}}),
        &e,
    )
    .expect("resolves");
    assert_eq!(
        (c.stt.model.as_str(), c.stt.language.as_deref()),
        ("saaras:v3", Some("od-IN"))
    );
    assert_eq!(
        (c.tts.voice.as_str(), c.tts.language.as_deref()),
        ("karun", Some("od-IN"))
    );
    assert_eq!(c.stt.base_url, "ws://127.0.0.1:9");
    assert_eq!(c.tts.base_url, "ws://127.0.0.1:9");

    // Defaults: bulbul:v2 speaks as anushka in en-IN; no STT language leaves it to the model.
    let c = resolve(&json!({"stt": "sarvam", "tts": "sarvam"}), &e).expect("resolves");
    assert_eq!(
        (c.stt.model.as_str(), c.stt.language.as_deref()),
        ("saaras:v3", None)
    );
    assert_eq!(
        (
            c.tts.model.as_str(),
            c.tts.voice.as_str(),
            c.tts.language.as_deref()
        ),
        ("bulbul:v2", "anushka", Some("en-IN"))
    );

    // A language Sarvam does not speak, and a bulbul:v3 without a speaker, are field errors.
    let err = resolve(
        &json!({"stt": "sarvam/saarika:v2.5", "tts": "sarvam/bulbul:v3", "language": "fr-FR"}),
        &e,
    )
    .expect_err("french");
    let got: Vec<_> = err
        .errors
        .iter()
        .map(|e| (e.field.as_str(), e.problem.as_str()))
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].1.contains("`fr-FR` is not supported by sarvam"),
        "{got:?}"
    );
    assert!(got[0].1.contains("hi-IN"), "{got:?}");
    assert_eq!(got[1].0, "session_options.tts");
    let err =
        resolve(&json!({"stt": "sarvam", "tts": "sarvam/bulbul:v3"}), &e).expect_err("no speaker");
    assert!(err.errors[0].problem.contains("SARVAM_SPEAKER"), "{err}");
}
