//! From a call's typed `session_options` (plus env defaults) to a [`SessionConfig`], before
//! dialing. Every problem is reported at once, per field, as the domain's [`FieldError`]s. The
//! env is a parameter, never the process env.
//!
//! - [`descriptor`]: reading `provider/model[:variant]` descriptors and Sarvam's models and
//!   languages (pure string work).
//! - [`env`]: the [`Resolver`](env::Resolver): env lookups, provider keys, collected errors.
//! - [`stages`]: one config per stage (LLM, STT, TTS), defaults and base URLs included.
//! - [`json`]: options given as raw JSON (the bench, tests) read into [`SessionOptions`] first.
//!
//! Dependencies point one way: this module -> `json`, `stages` -> `env`, `descriptor`
//! (`stages` adds the per-stage methods to the `env` module's `Resolver`).

mod descriptor;
mod env;
mod json;
mod stages;

use std::collections::HashMap;

pub use callfleet_domain::field::FieldError;
use callfleet_domain::request::SessionOptions;
use serde_json::Value;

use crate::config::SessionConfig;
use env::{Resolver, given};
pub use stages::{DEFAULT_TTS_SAMPLE_RATE, SARVAM_DEFAULT_BASE_URL};

pub const DEFAULT_PROMPT: &str = "You are a helpful voice AI assistant on a phone call. \
Keep answers short and conversational, with no markdown.";

/// All the problems found in one set of options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid session options: {}", callfleet_domain::field::describe(.errors))]
pub struct ResolveError {
    pub errors: Vec<FieldError>,
}

/// Resolve a call's `session_options` and its (normalised) `transfer_target` against `env`.
///
/// Options read: `llm`, `stt`, `tts`, `cartesia_voice`, `cartesia_model`,
/// `preemptive_generation`, `prompt`, `greeting`, `language`. Env: provider keys
/// (`OPENAI_API_KEY`, `GROQ_API_KEY`, `DEEPGRAM_API_KEY`, `ASSEMBLYAI_API_KEY`,
/// `CARTESIA_API_KEY`, `ELEVENLABS_API_KEY`, `SARVAM_API_KEY`), defaults (`LLM_PROVIDER`,
/// `LLM_MODEL`, `CARTESIA_VOICE_ID`, `ELEVENLABS_VOICE_ID`, `SARVAM_SPEAKER`,
/// `PREEMPTIVE_GENERATION`) and base URLs (`OPENAI_BASE_URL`, `GROQ_BASE_URL`,
/// `DEEPGRAM_BASE_URL`, `ASSEMBLYAI_BASE_URL`, `CARTESIA_BASE_URL`, `ELEVENLABS_BASE_URL`,
/// `SARVAM_BASE_URL`: the API root, from which `wss://…/speech-to-text/ws` and
/// `wss://…/text-to-speech/ws` are derived, overridable per stage with `SARVAM_STT_BASE_URL` /
/// `SARVAM_TTS_BASE_URL`). Errors name fields as `session_options.<key>`.
pub fn resolve(
    options: &SessionOptions,
    transfer_target: Option<&str>,
    env: &HashMap<String, String>,
) -> Result<SessionConfig, ResolveError> {
    let mut r = Resolver::new(env);
    let language = given(options.language.as_deref());
    let llm = r.llm(given(options.llm.as_deref()));
    let stt = r.stt(given(options.stt.as_deref()), language.as_deref());
    let tts = r.tts(
        options.tts.as_ref(),
        given(options.cartesia_voice.as_deref()),
        given(options.cartesia_model.as_deref()),
        language.as_deref(),
    );
    let preemptive = r.preemptive(options.preemptive_generation);
    let prompt = given(options.prompt.as_deref()).unwrap_or_else(|| DEFAULT_PROMPT.to_owned());
    let greeting = given(options.greeting.as_deref());
    match (llm, stt, tts) {
        (Some(llm), Some(stt), Some(tts)) if r.errors.is_empty() => Ok(SessionConfig {
            llm,
            stt,
            tts,
            preemptive_generation: preemptive,
            prompt,
            greeting,
            language,
            transfer_target: given(transfer_target),
            answering: None,
        }),
        _ => Err(ResolveError { errors: r.errors }),
    }
}

/// Resolve `session_options` given as raw JSON (an object, or null; `transfer_target` may be one
/// of its keys), for callers that hold no typed options (the voice bench, tests). Values of the
/// wrong JSON type are field errors, reported with the resolution's own.
pub fn resolve_json(
    options: &Value,
    env: &HashMap<String, String>,
) -> Result<SessionConfig, ResolveError> {
    let read = json::read(options);
    let mut errors = read.errors;
    match resolve(&read.options, read.transfer_target.as_deref(), env) {
        Ok(cfg) if errors.is_empty() => Ok(cfg),
        Ok(_) => Err(ResolveError { errors }),
        Err(e) => {
            errors.extend(e.errors);
            Err(ResolveError { errors })
        }
    }
}

/// The bridge's boolean-ish values (`true`, `"yes"`, `"1"`, `1`, `"off"`, ...): the domain's
/// reading, so the engine and the dispatch validation agree.
pub fn boolish(v: &Value) -> Option<bool> {
    callfleet_domain::boolish::parse(v)
}

#[cfg(test)]
mod tests {
    use callfleet_domain::request::{SessionOptions, TtsOption};

    use super::*;

    fn env() -> HashMap<String, String> {
        [
            ("OPENAI_API_KEY", "sk"),
            ("DEEPGRAM_API_KEY", "dg"),
            ("CARTESIA_API_KEY", "car"),
            ("PREEMPTIVE_GENERATION", "off"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn typed_options_resolve_with_the_transfer_target() {
        let opts = SessionOptions {
            llm: Some(" openai/gpt-4o ".into()),
            tts: Some(TtsOption::Descriptor("cartesia/sonic-3:v1".into())),
            prompt: Some("  ".into()),
            ..SessionOptions::default()
        };
        let cfg = resolve(&opts, Some("tel:+61299990000"), &env()).expect("resolves");
        assert_eq!(cfg.llm.model, "gpt-4o");
        assert_eq!(cfg.tts.voice, "v1");
        assert_eq!(cfg.prompt, DEFAULT_PROMPT, "a blank prompt is no prompt");
        assert_eq!(cfg.transfer_target.as_deref(), Some("tel:+61299990000"));
        assert!(!cfg.preemptive_generation, "the env default applies");
        let opts = SessionOptions {
            preemptive_generation: Some(true),
            ..opts
        };
        assert!(
            resolve(&opts, None, &env())
                .expect("ok")
                .preemptive_generation
        );
    }

    #[test]
    fn a_tts_object_needs_a_provider() {
        let opts = SessionOptions {
            tts: Some(TtsOption::Spec {
                provider: None,
                model: Some("sonic-3".into()),
                voice: None,
            }),
            ..SessionOptions::default()
        };
        let err = resolve(&opts, None, &env()).expect_err("no provider");
        assert_eq!(
            err.errors,
            vec![FieldError::new(
                "session_options.tts",
                "`provider` is required when tts is an object"
            )]
        );
        assert_eq!(
            err.to_string(),
            "invalid session options: session_options.tts: `provider` is required when tts is an object"
        );
    }
}
