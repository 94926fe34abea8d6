//! From a call's `session_options` (plus env defaults) to a [`SessionConfig`], before dialing.
//! Every problem is reported at once, per field. The env is a parameter, never the process env.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::config::{
    LlmConfig, LlmProvider, Secret, SessionConfig, SttConfig, SttProvider, TtsConfig, TtsProvider,
};

pub const DEFAULT_PROMPT: &str = "You are a helpful voice AI assistant on a phone call. \
Keep answers short and conversational, with no markdown.";
pub const DEFAULT_TTS_SAMPLE_RATE: u32 = 24_000;
/// Sarvam's API root (STT and TTS websockets hang off it).
pub const SARVAM_DEFAULT_BASE_URL: &str = "wss://api.sarvam.ai";

/// Languages every Sarvam model takes (saarika:v2.5, bulbul:v2/v3): ten Indian languages and
/// Indian English, BCP-47 with the `-IN` region.
const SARVAM_LANGUAGES: &[&str] = &[
    "hi-IN", "bn-IN", "ta-IN", "te-IN", "mr-IN", "gu-IN", "kn-IN", "ml-IN", "pa-IN", "od-IN",
    "en-IN",
];
/// The further languages saaras:v3 transcribes.
const SAARAS_V3_EXTRA_LANGUAGES: &[&str] = &[
    "as-IN", "ur-IN", "ne-IN", "kok-IN", "ks-IN", "sd-IN", "sa-IN", "sat-IN", "mni-IN", "brx-IN",
    "mai-IN", "doi-IN",
];

/// A Sarvam descriptor's rest (`saarika:v2.5:hi-IN`, `bulbul:v2:anushka`, `saaras`): Sarvam's
/// model names carry a `:vN` version, so the variant is whatever follows it. A bare family name
/// gets its current version.
fn sarvam_model(rest: &str) -> (String, Option<String>) {
    let mut parts = rest.splitn(3, ':').map(str::trim);
    let family = parts.next().unwrap_or("").to_ascii_lowercase();
    let second = parts.next();
    let third = parts.next();
    let is_version = |p: &str| {
        let mut c = p.chars();
        c.next().is_some_and(|v| v.eq_ignore_ascii_case(&'v'))
            && c.next().is_some_and(|d| d.is_ascii_digit())
    };
    let (model, variant) = match second {
        Some(v) if is_version(v) => (
            format!("{family}:{}", v.to_ascii_lowercase()),
            third.map(str::to_owned),
        ),
        Some(v) => {
            let rest = match third {
                Some(t) => format!("{v}:{t}"),
                None => v.to_owned(),
            };
            (family, Some(rest))
        }
        None => (family, None),
    };
    let model = match model.as_str() {
        "saarika" => "saarika:v2.5".to_owned(),
        "saaras" => "saaras:v3".to_owned(),
        "bulbul" => "bulbul:v2".to_owned(),
        _ => model,
    };
    (model, variant.filter(|v| !v.is_empty()))
}

/// `hi`, `HI-in`, `hi-IN` -> `hi-IN`; `en`/`en-US` -> `en-IN` (Sarvam's only English);
/// `or` (ISO 639-1 Odia) -> `od-IN` (Sarvam's code). `Err` names the accepted codes.
fn sarvam_language(lang: &str, extra: &[&str]) -> Result<String, String> {
    let primary = lang
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let primary = if primary == "or" {
        "od".to_owned()
    } else {
        primary
    };
    let code = format!("{primary}-IN");
    if SARVAM_LANGUAGES.contains(&code.as_str()) || extra.contains(&code.as_str()) {
        Ok(code)
    } else {
        let mut all: Vec<&str> = SARVAM_LANGUAGES.to_vec();
        all.extend_from_slice(extra);
        Err(format!(
            "language `{lang}` is not supported by sarvam (expected one of {})",
            all.join(", ")
        ))
    }
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// e.g. `session_options.llm`.
    pub field: String,
    pub message: String,
}

/// All the problems found in one set of options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid session options: {}", .errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
pub struct ResolveError {
    pub errors: Vec<FieldError>,
}

/// Resolve `session_options` (a JSON object, or null) against `env`.
///
/// Keys read: `llm`, `stt`, `tts`, `cartesia_voice`, `cartesia_model`, `preemptive_generation`,
/// `prompt`, `greeting`, `language`, `transfer_target`. Env: provider keys (`OPENAI_API_KEY`,
/// `GROQ_API_KEY`, `DEEPGRAM_API_KEY`, `ASSEMBLYAI_API_KEY`, `CARTESIA_API_KEY`,
/// `ELEVENLABS_API_KEY`, `SARVAM_API_KEY`), defaults (`LLM_PROVIDER`, `LLM_MODEL`,
/// `CARTESIA_VOICE_ID`, `ELEVENLABS_VOICE_ID`, `SARVAM_SPEAKER`, `PREEMPTIVE_GENERATION`) and
/// base URLs (`OPENAI_BASE_URL`, `GROQ_BASE_URL`, `DEEPGRAM_BASE_URL`, `ASSEMBLYAI_BASE_URL`,
/// `CARTESIA_BASE_URL`, `ELEVENLABS_BASE_URL`, `SARVAM_BASE_URL`: the API root, from which
/// `wss://…/speech-to-text/ws` and `wss://…/text-to-speech/ws` are derived, overridable per stage
/// with `SARVAM_STT_BASE_URL` / `SARVAM_TTS_BASE_URL`).
pub fn resolve(
    options: &Value,
    env: &HashMap<String, String>,
) -> Result<SessionConfig, ResolveError> {
    let empty = Map::new();
    let mut r = Resolver {
        env,
        errors: Vec::new(),
    };
    let opts = match options {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => {
            r.err("session_options", "must be a JSON object");
            &empty
        }
    };
    let language = r.text(opts, "language");
    let llm = r.llm(opts.get("llm"));
    let stt = r.stt(opts.get("stt"), language.as_deref());
    let tts = r.tts(opts, language.as_deref());
    let preemptive = r.preemptive(opts.get("preemptive_generation"));
    let prompt = r
        .text(opts, "prompt")
        .unwrap_or_else(|| DEFAULT_PROMPT.to_owned());
    let greeting = r.text(opts, "greeting");
    let transfer_target = r.text(opts, "transfer_target");
    match (llm, stt, tts) {
        (Some(llm), Some(stt), Some(tts)) if r.errors.is_empty() => Ok(SessionConfig {
            llm,
            stt,
            tts,
            preemptive_generation: preemptive,
            prompt,
            greeting,
            language,
            transfer_target,
        }),
        _ => Err(ResolveError { errors: r.errors }),
    }
}

struct Resolver<'a> {
    env: &'a HashMap<String, String>,
    errors: Vec<FieldError>,
}

/// `provider/model[:variant]`, each part trimmed; model and variant may be empty.
fn descriptor(s: &str) -> (String, String, Option<String>) {
    let (provider, rest) = s.split_once('/').unwrap_or((s, ""));
    let (model, variant) = match rest.split_once(':') {
        Some((m, v)) => (m, Some(v.trim().to_owned()).filter(|v| !v.is_empty())),
        None => (rest, None),
    };
    (
        provider.trim().to_ascii_lowercase(),
        model.trim().to_owned(),
        variant,
    )
}

impl Resolver<'_> {
    fn err(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    fn env(&self, key: &str) -> Option<String> {
        self.env
            .get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn key(&mut self, field: &str, var: &str, what: &str) -> Secret {
        match self.env(var) {
            Some(k) => Secret::new(k),
            None => {
                self.err(field, format!("{var} is not set (needed for {what})"));
                Secret::default()
            }
        }
    }

    fn text(&mut self, opts: &Map<String, Value>, key: &str) -> Option<String> {
        match opts.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
            Some(_) => {
                self.err(&format!("session_options.{key}"), "must be a string");
                None
            }
        }
    }

    fn string_descriptor(&mut self, field: &str, v: Option<&Value>) -> Option<String> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Some(Value::String(_)) => None,
            Some(_) => {
                self.err(field, "must be a string like provider/model[:variant]");
                None
            }
        }
    }

    fn llm(&mut self, v: Option<&Value>) -> Option<LlmConfig> {
        const F: &str = "session_options.llm";
        let given = self.string_descriptor(F, v);
        let (provider, mut model) = match &given {
            Some(s) if s.contains('/') => {
                let (p, m, _) = descriptor(s);
                (p, m)
            }
            Some(m) => (
                self.env("LLM_PROVIDER").unwrap_or_else(|| "openai".into()),
                m.clone(),
            ),
            None => (
                self.env("LLM_PROVIDER").unwrap_or_else(|| "openai".into()),
                self.env("LLM_MODEL").unwrap_or_default(),
            ),
        };
        let (provider, key_var, url_var, url, default_model) = match provider.as_str() {
            "openai" => (
                LlmProvider::OpenAi,
                "OPENAI_API_KEY",
                "OPENAI_BASE_URL",
                "https://api.openai.com/v1",
                "gpt-4o-mini",
            ),
            "groq" => (
                LlmProvider::Groq,
                "GROQ_API_KEY",
                "GROQ_BASE_URL",
                "https://api.groq.com/openai/v1",
                "llama-3.3-70b-versatile",
            ),
            other => {
                self.err(
                    F,
                    format!("unknown LLM provider `{other}` (expected openai or groq)"),
                );
                return None;
            }
        };
        if model.is_empty() {
            model = default_model.to_owned();
        }
        let what = format!("{provider:?}/{model}").to_ascii_lowercase();
        let api_key = self.key(F, key_var, &what);
        Some(LlmConfig {
            provider,
            model,
            base_url: self.env(url_var).unwrap_or_else(|| url.to_owned()),
            api_key,
            temperature: None,
        })
    }

    fn stt(&mut self, v: Option<&Value>, language: Option<&str>) -> Option<SttConfig> {
        const F: &str = "session_options.stt";
        let given = self.string_descriptor(F, v).unwrap_or_else(|| {
            if self.env("DEEPGRAM_API_KEY").is_some() || self.env("ASSEMBLYAI_API_KEY").is_none() {
                "deepgram/nova-3".into()
            } else {
                "assemblyai/universal-streaming".into()
            }
        });
        let (provider, model, variant) = descriptor(&given);
        if provider == "sarvam" {
            return self.sarvam_stt(&given, language);
        }
        let language = variant.or_else(|| language.map(str::to_owned));
        let (provider, key_var, url_var, url, default_model) = match provider.as_str() {
            "deepgram" => (
                SttProvider::Deepgram,
                "DEEPGRAM_API_KEY",
                "DEEPGRAM_BASE_URL",
                "wss://api.deepgram.com/v1/listen",
                "nova-3",
            ),
            "assemblyai" => (
                SttProvider::AssemblyAi,
                "ASSEMBLYAI_API_KEY",
                "ASSEMBLYAI_BASE_URL",
                "wss://streaming.assemblyai.com/v3/ws",
                "universal-streaming",
            ),
            other => {
                self.err(
                    F,
                    format!(
                        "unknown STT provider `{other}` (expected deepgram, assemblyai or sarvam)"
                    ),
                );
                return None;
            }
        };
        let model = if model.is_empty() {
            default_model.to_owned()
        } else {
            model
        };
        let api_key = self.key(F, key_var, &given);
        Some(SttConfig {
            provider,
            model,
            language,
            base_url: self.env(url_var).unwrap_or_else(|| url.to_owned()),
            api_key,
        })
    }

    /// `sarvam/<model>[:<language>]`, e.g. `sarvam/saarika:v2.5:hi-IN` or `sarvam/saaras:v3`.
    /// The language (variant, else `session_options.language`) is normalised to Sarvam's
    /// BCP-47 codes; none leaves the choice to the client (auto-detect where the model can).
    fn sarvam_stt(&mut self, given: &str, language: Option<&str>) -> Option<SttConfig> {
        const F: &str = "session_options.stt";
        let rest = given.split_once('/').map_or("", |(_, r)| r);
        let (model, variant) = sarvam_model(rest);
        let model = if model.is_empty() {
            "saaras:v3".to_owned()
        } else {
            model
        };
        let extra: &[&str] = if model.starts_with("saaras") {
            SAARAS_V3_EXTRA_LANGUAGES
        } else {
            &[]
        };
        let language = match variant.as_deref().or(language) {
            None => None,
            Some(l) if l.eq_ignore_ascii_case("unknown") => Some("unknown".to_owned()),
            Some(l) => match sarvam_language(l, extra) {
                Ok(code) => Some(code),
                Err(e) => {
                    self.err(F, e);
                    None
                }
            },
        };
        let api_key = self.key(F, "SARVAM_API_KEY", &format!("sarvam/{model}"));
        Some(SttConfig {
            provider: SttProvider::Sarvam,
            model,
            language,
            base_url: self.sarvam_base("SARVAM_STT_BASE_URL"),
            api_key,
        })
    }

    /// `specific` (`SARVAM_STT_BASE_URL` / `SARVAM_TTS_BASE_URL`), else `SARVAM_BASE_URL`, else
    /// the real API root.
    fn sarvam_base(&self, specific: &str) -> String {
        self.env(specific)
            .or_else(|| self.env("SARVAM_BASE_URL"))
            .unwrap_or_else(|| SARVAM_DEFAULT_BASE_URL.to_owned())
    }

    /// Sarvam TTS: `sarvam/<model>[:<speaker>]` or `{provider: sarvam, model, voice}`. The
    /// speaker defaults to `SARVAM_SPEAKER`, then (bulbul:v2 only) to `anushka`; the language
    /// must be one Sarvam speaks and defaults to `en-IN`.
    fn sarvam_tts(
        &mut self,
        model: String,
        voice: Option<String>,
        language: Option<&str>,
    ) -> Option<TtsConfig> {
        const F: &str = "session_options.tts";
        let (model, voice_in_model) = sarvam_model(&model);
        let model = if model.is_empty() {
            "bulbul:v2".to_owned()
        } else {
            model
        };
        let voice = voice
            .or(voice_in_model)
            .or_else(|| self.env("SARVAM_SPEAKER"))
            .or_else(|| (model == "bulbul:v2").then(|| "anushka".to_owned()));
        let language = match sarvam_language(language.unwrap_or("en-IN"), &[]) {
            Ok(code) => code,
            Err(e) => {
                self.err(F, e);
                return None;
            }
        };
        let api_key = self.key(F, "SARVAM_API_KEY", &format!("sarvam/{model}"));
        let Some(voice) = voice else {
            self.err(
                F,
                format!("no voice for sarvam/{model}: give sarvam/{model}:<speaker> or set SARVAM_SPEAKER"),
            );
            return None;
        };
        Some(TtsConfig {
            provider: TtsProvider::Sarvam,
            model,
            voice: voice.to_ascii_lowercase(),
            language: Some(language),
            base_url: self.sarvam_base("SARVAM_TTS_BASE_URL"),
            sample_rate: DEFAULT_TTS_SAMPLE_RATE,
            api_key,
        })
    }

    fn tts(&mut self, opts: &Map<String, Value>, language: Option<&str>) -> Option<TtsConfig> {
        const F: &str = "session_options.tts";
        let (provider, mut model, mut voice) = match opts.get("tts") {
            None | Some(Value::Null) => {
                let p = if self.env("CARTESIA_API_KEY").is_some()
                    || self.env("ELEVENLABS_API_KEY").is_none()
                {
                    "cartesia"
                } else {
                    "elevenlabs"
                };
                (p.to_owned(), String::new(), None)
            }
            Some(Value::String(s)) => {
                let (p, m, v) = descriptor(s);
                if p == "sarvam" {
                    let rest = s.split_once('/').map_or("", |(_, r)| r).trim().to_owned();
                    return self.sarvam_tts(rest, None, language);
                }
                (p, m, v)
            }
            Some(Value::Object(o)) => {
                let get = |k: &str| {
                    o.get(k)
                        .and_then(Value::as_str)
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                };
                match get("provider") {
                    Some(p) => (
                        p.to_ascii_lowercase(),
                        get("model").unwrap_or_default(),
                        get("voice"),
                    ),
                    None => {
                        self.err(F, "`provider` is required when tts is an object");
                        return None;
                    }
                }
            }
            Some(_) => {
                self.err(
                    F,
                    "must be a string like provider/model[:voice] or {provider, model, voice}",
                );
                return None;
            }
        };
        let provider = match provider.as_str() {
            "cartesia" => {
                if let Some(v) = self.text(opts, "cartesia_voice") {
                    voice = Some(v);
                }
                if let Some(m) = self.text(opts, "cartesia_model") {
                    model = m;
                }
                TtsProvider::Cartesia
            }
            "elevenlabs" => TtsProvider::ElevenLabs,
            "sarvam" => return self.sarvam_tts(model, voice, language),
            other => {
                self.err(
                    F,
                    format!(
                        "unknown TTS provider `{other}` (expected cartesia, elevenlabs or sarvam)"
                    ),
                );
                return None;
            }
        };
        let (key_var, url_var, url, default_model, voice_var) = match provider {
            TtsProvider::Cartesia => (
                "CARTESIA_API_KEY",
                "CARTESIA_BASE_URL",
                "wss://api.cartesia.ai/tts/websocket",
                "sonic-3",
                "CARTESIA_VOICE_ID",
            ),
            TtsProvider::ElevenLabs => (
                "ELEVENLABS_API_KEY",
                "ELEVENLABS_BASE_URL",
                "wss://api.elevenlabs.io",
                "eleven_flash_v2_5",
                "ELEVENLABS_VOICE_ID",
            ),
            TtsProvider::Sarvam => return self.sarvam_tts(model, voice, language),
        };
        if model.is_empty() {
            model = default_model.to_owned();
        }
        let voice = voice.or_else(|| self.env(voice_var));
        let name = format!("{provider:?}").to_ascii_lowercase();
        let api_key = self.key(F, key_var, &format!("{name}/{model}"));
        let Some(voice) = voice else {
            self.err(
                F,
                format!("no voice for {name}: give provider/model:voice or set {voice_var}"),
            );
            return None;
        };
        Some(TtsConfig {
            provider,
            model,
            voice,
            language: language.map(|l| l.split('-').next().unwrap_or(l).to_owned()),
            base_url: self.env(url_var).unwrap_or_else(|| url.to_owned()),
            sample_rate: DEFAULT_TTS_SAMPLE_RATE,
            api_key,
        })
    }

    fn preemptive(&mut self, v: Option<&Value>) -> bool {
        match v {
            None | Some(Value::Null) => self
                .env("PREEMPTIVE_GENERATION")
                .and_then(|s| boolish(&Value::String(s)))
                .unwrap_or(true),
            Some(v) => boolish(v).unwrap_or_else(|| {
                self.err(
                    "session_options.preemptive_generation",
                    format!("`{v}` is not a boolean (true/false, yes/no, on/off, 1/0)"),
                );
                true
            }),
        }
    }
}

/// The bridge's boolean-ish values (`true`, `"yes"`, `"1"`, `1`, `"off"`, ...): the domain's
/// reading, so the engine and the dispatch validation agree.
pub fn boolish(v: &Value) -> Option<bool> {
    callfleet_domain::boolish::parse(v)
}
