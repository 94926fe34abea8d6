//! One config per stage: the LLM, the STT and the TTS, each from its descriptor, the provider's
//! defaults (model, voice, base URL) and the env (keys, overrides). Problems are field errors on
//! `session_options.llm`, `.stt` and `.tts`.

use callfleet_domain::request::TtsOption;
use serde_json::Value;

use super::{
    descriptor::{
        SAARAS_V3_EXTRA_LANGUAGES, after_provider, descriptor, sarvam_language, sarvam_model,
    },
    env::{Resolver, given},
};
use crate::config::{LlmConfig, LlmProvider, SttConfig, SttProvider, TtsConfig, TtsProvider};

pub const DEFAULT_TTS_SAMPLE_RATE: u32 = 24_000;
/// Sarvam's API root (STT and TTS websockets hang off it).
pub const SARVAM_DEFAULT_BASE_URL: &str = "wss://api.sarvam.ai";

impl Resolver<'_> {
    /// `provider/model`, a bare model (provider from `LLM_PROVIDER`), or nothing (both from
    /// the env, then openai's default model).
    pub fn llm(&mut self, given: Option<String>) -> Option<LlmConfig> {
        const F: &str = "session_options.llm";
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

    /// `provider/model[:language]`, or by default deepgram (assemblyai when only its key is set).
    pub fn stt(&mut self, given: Option<String>, language: Option<&str>) -> Option<SttConfig> {
        const F: &str = "session_options.stt";
        let given = given.unwrap_or_else(|| {
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
        let (model, variant) = sarvam_model(after_provider(given));
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

    /// A descriptor (`provider/model[:voice]`), `{provider, model, voice}`, or by default
    /// cartesia (elevenlabs when only its key is set); `cartesia_voice`/`cartesia_model` win for
    /// cartesia.
    pub fn tts(
        &mut self,
        tts: Option<&TtsOption>,
        cartesia_voice: Option<String>,
        cartesia_model: Option<String>,
        language: Option<&str>,
    ) -> Option<TtsConfig> {
        const F: &str = "session_options.tts";
        let (provider, mut model, mut voice) = match tts {
            None => {
                let p = if self.env("CARTESIA_API_KEY").is_some()
                    || self.env("ELEVENLABS_API_KEY").is_none()
                {
                    "cartesia"
                } else {
                    "elevenlabs"
                };
                (p.to_owned(), String::new(), None)
            }
            Some(TtsOption::Descriptor(s)) => {
                let (p, m, v) = descriptor(s);
                if p == "sarvam" {
                    let rest = after_provider(s).trim().to_owned();
                    return self.sarvam_tts(rest, None, language);
                }
                (p, m, v)
            }
            Some(TtsOption::Spec {
                provider,
                model,
                voice,
            }) => match given(provider.as_deref()) {
                Some(p) => (
                    p.to_ascii_lowercase(),
                    given(model.as_deref()).unwrap_or_default(),
                    given(voice.as_deref()),
                ),
                None => {
                    self.err(F, "`provider` is required when tts is an object");
                    return None;
                }
            },
        };
        let provider = match provider.as_str() {
            "cartesia" => {
                if let Some(v) = cartesia_voice {
                    voice = Some(v);
                }
                if let Some(m) = cartesia_model {
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

    /// The option if given, else `PREEMPTIVE_GENERATION` (boolean-ish), else on.
    pub fn preemptive(&mut self, given: Option<bool>) -> bool {
        given.unwrap_or_else(|| {
            self.env("PREEMPTIVE_GENERATION")
                .and_then(|s| callfleet_domain::boolish::parse(&Value::String(s)))
                .unwrap_or(true)
        })
    }
}
