//! AssemblyAI Universal Streaming v3: `wss://streaming.assemblyai.com/v3/ws`, raw pcm_s16le,
//! `Turn` messages with a running `transcript`, `utterance` and `end_of_turn`.

use std::time::Duration;

use serde::Deserialize;

use super::protocol::{STT_SAMPLE_RATE, SttError, SttEvent, SttProtocol, preview};
use crate::config::SttConfig;

/// The Universal Streaming API version we speak (`AssemblyAI-Version`).
const API_VERSION: &str = "2025-05-12";

pub struct AssemblyAi {
    cfg: SttConfig,
}

impl AssemblyAi {
    pub fn new(cfg: SttConfig) -> Self {
        Self { cfg }
    }

    /// `universal-streaming` with an English (or no) language is the English model; any other
    /// language selects the multilingual one. Other model names pass through.
    fn speech_model(&self) -> String {
        let english = self
            .cfg
            .language
            .as_deref()
            .is_none_or(|l| l.eq_ignore_ascii_case("en") || l.starts_with("en-"));
        match self.cfg.model.as_str() {
            "universal-streaming" if english => "universal-streaming-english".into(),
            "universal-streaming" => "universal-streaming-multilingual".into(),
            other => other.to_owned(),
        }
    }
}

#[derive(Deserialize)]
struct Msg {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    transcript: String,
    #[serde(default)]
    utterance: String,
    #[serde(default)]
    end_of_turn: bool,
    #[serde(default)]
    words: Vec<Word>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Word {
    #[serde(default)]
    text: String,
    #[serde(default)]
    word_is_final: bool,
}

impl SttProtocol for AssemblyAi {
    fn url(&self) -> Result<url::Url, SttError> {
        let mut u = url::Url::parse(&self.cfg.base_url)
            .map_err(|_| SttError::Url(self.cfg.base_url.clone()))?;
        u.query_pairs_mut()
            .append_pair("sample_rate", &STT_SAMPLE_RATE.to_string())
            .append_pair("encoding", "pcm_s16le")
            .append_pair("speech_model", &self.speech_model())
            .append_pair("format_turns", "false");
        Ok(u)
    }

    /// The key (no scheme) and the API version the SDK pins (`AssemblyAI-Version`, sent by
    /// `assemblyai` 1.8.2's v3 client): the message schema we parse is that version's.
    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Authorization", self.cfg.api_key.expose().to_owned()),
            ("AssemblyAI-Version", API_VERSION.to_owned()),
        ]
    }

    fn batch(&self) -> Duration {
        // The server wants 50-1000 ms per message.
        Duration::from_millis(50)
    }

    fn parse(&mut self, text: &str) -> Result<Vec<SttEvent>, SttError> {
        let msg: Msg = serde_json::from_str(text)
            .map_err(|e| SttError::Malformed(format!("{e} in {:?}", preview(text))))?;
        if let Some(e) = msg.error {
            return Err(SttError::Provider(e));
        }
        let mut out = Vec::new();
        match msg.kind.as_str() {
            "Turn" => {
                let transcript = msg.transcript.trim().to_owned();
                if msg.end_of_turn {
                    out.push(SttEvent::TurnTranscript { text: transcript });
                    out.push(SttEvent::EndOfTurn);
                } else if !msg.utterance.trim().is_empty() {
                    out.push(SttEvent::TurnTranscript { text: transcript });
                } else {
                    let tail: Vec<&str> = msg
                        .words
                        .iter()
                        .filter(|w| !w.word_is_final)
                        .map(|w| w.text.as_str())
                        .collect();
                    let mut hyp = transcript;
                    for w in tail {
                        if !hyp.is_empty() {
                            hyp.push(' ');
                        }
                        hyp.push_str(w);
                    }
                    if !hyp.is_empty() {
                        out.push(SttEvent::Interim { text: hyp });
                    }
                }
            }
            "SpeechStarted" => out.push(SttEvent::SpeechStarted),
            _ => {}
        }
        Ok(out)
    }

    fn close_message(&self) -> String {
        r#"{"type":"Terminate"}"#.to_owned()
    }

    fn keepalive(&self) -> Option<String> {
        None
    }
}
