//! The voice providers of `callfleet dev`. Every answered call runs the voice session by
//! default, so the demo call needs an STT, an LLM and a TTS:
//!
//! - no provider key in the environment (nor in `.env.local`, which the config loader read into
//!   it): the project's scripted stand-ins (`callfleet_standins::demo`) start in-process on
//!   127.0.0.1 and the agent is pointed at them;
//! - keys set: the real providers, and no stand-ins. Keys that do not cover the demo call's
//!   defaults are reported with the resolver's field errors (the call would fail before
//!   dialing with the same words);
//! - `agent.voice_session = false`: calls are held silently and nothing is needed.

use std::{collections::HashMap, time::Duration};

use callfleet_config::Config;
use callfleet_domain::request::SessionOptions;

/// The keys the resolver reads; any of them set means the user chose real providers.
pub const KEYS: [&str; 7] = [
    "OPENAI_API_KEY",
    "GROQ_API_KEY",
    "DEEPGRAM_API_KEY",
    "ASSEMBLYAI_API_KEY",
    "CARTESIA_API_KEY",
    "ELEVENLABS_API_KEY",
    "SARVAM_API_KEY",
];

/// What the agent's voice sessions will talk to.
pub enum Providers {
    /// `agent.voice_session = false`.
    Off,
    /// The scripted stand-ins, running as long as this value lives.
    StandIns(callfleet_standins::demo::Demo),
    /// Real providers from the environment; `problems` when the demo call's defaults do not
    /// resolve (what is missing, per field).
    Real { problems: Option<String> },
}

impl Providers {
    /// The env the agent's resolver reads.
    pub fn env(&self) -> HashMap<String, String> {
        match self {
            Self::StandIns(demo) => demo.env.clone(),
            Self::Off | Self::Real { .. } => callfleet_agent::provider_env(),
        }
    }
}

/// Decide, and start the stand-ins when no key is set. `env` is the process's provider env.
pub async fn choose(config: &Config, env: &HashMap<String, String>) -> Providers {
    if !config.agent.voice_session {
        return Providers::Off;
    }
    let set = |k: &str| env.get(k).is_some_and(|v| !v.trim().is_empty());
    if KEYS.iter().any(|k| set(k)) {
        let problems = callfleet_voice::resolve(&SessionOptions::default(), None, env)
            .err()
            .map(|e| e.to_string());
        return Providers::Real { problems };
    }
    let period = Duration::from_secs(callfleet_rig::callee::HELLO_PERIOD_SECS);
    Providers::StandIns(callfleet_standins::demo::start(period).await)
}

/// The banner's lines about the providers.
pub fn describe(providers: &Providers) -> Vec<String> {
    match providers {
        Providers::Off => vec![
            "dev: agent.voice_session is false: answered calls are held silently (no voice)".into(),
        ],
        Providers::StandIns(demo) => vec![
            format!(
                "dev: no provider keys set, so the voice providers are local SCRIPTED STAND-INS \
                 (STT {}, LLM {}, TTS {}): the agent hears \"{}\", answers with one scripted \
                 sentence and hangs up. Nothing here is a real AI.",
                demo.stt.url,
                demo.llm.base_url,
                demo.tts.url,
                callfleet_standins::demo::HEARD,
            ),
            "dev: for real providers put their keys in .env.local (then restart `make run`): \
             OPENAI_API_KEY (LLM), DEEPGRAM_API_KEY (STT), CARTESIA_API_KEY and \
             CARTESIA_VOICE_ID (TTS); or GROQ_API_KEY with LLM_PROVIDER=groq, \
             ASSEMBLYAI_API_KEY, ELEVENLABS_API_KEY with ELEVENLABS_VOICE_ID, SARVAM_API_KEY"
                .into(),
        ],
        Providers::Real { problems: None } => vec![
            "dev: voice providers: the real ones configured in the environment / .env.local".into(),
        ],
        Providers::Real {
            problems: Some(problems),
        } => vec![
            format!(
                "dev: WARNING: provider keys are set, but the demo call's default providers do \
                 not resolve, so it will fail before dialing: {problems}"
            ),
            "dev: set the missing variables in .env.local, name providers in the request's \
             session_options, or remove every provider key to use the scripted stand-ins"
                .into(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[tokio::test]
    async fn no_key_starts_the_stand_ins_and_their_env_resolves() {
        let config = Config::from_toml("").expect("defaults");
        let providers = choose(&config, &env(&[("OPENAI_API_KEY", "  ")])).await;
        assert!(
            matches!(providers, Providers::StandIns(_)),
            "blank is unset"
        );
        let resolved = callfleet_voice::resolve(&SessionOptions::default(), None, &providers.env());
        assert!(
            resolved.is_ok(),
            "the demo call's defaults resolve: {resolved:?}"
        );
        let banner = describe(&providers).join("\n");
        assert!(banner.contains("SCRIPTED STAND-INS"), "{banner}");
        assert!(banner.contains(".env.local"), "{banner}");
    }

    #[tokio::test]
    async fn keys_mean_real_providers_and_gaps_are_named() {
        let config = Config::from_toml("").expect("defaults");
        let providers = choose(&config, &env(&[("OPENAI_API_KEY", "sk-x")])).await;
        let Providers::Real {
            problems: Some(problems),
        } = &providers
        else {
            panic!("real providers, with problems");
        };
        assert!(problems.contains("DEEPGRAM_API_KEY"), "{problems}");
        let all = env(&[
            ("OPENAI_API_KEY", "sk-x"),
            ("DEEPGRAM_API_KEY", "dg"),
            ("CARTESIA_API_KEY", "car"),
            ("CARTESIA_VOICE_ID", "v"),
        ]);
        assert!(matches!(
            choose(&config, &all).await,
            Providers::Real { problems: None }
        ));
        let off = Config::from_toml("[agent]\nvoice_session = false").expect("valid");
        assert!(matches!(choose(&off, &env(&[])).await, Providers::Off));
    }
}
