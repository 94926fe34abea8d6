//! Deepgram live transcription: `wss://api.deepgram.com/v1/listen` with raw linear16 audio,
//! interim results, endpointing (`speech_final`) and `UtteranceEnd`.

use std::time::Duration;

use serde::Deserialize;

use super::protocol::{STT_SAMPLE_RATE, SttError, SttEvent, SttProtocol, preview};
use crate::config::SttConfig;

/// Silence (ms) after which Deepgram marks a result `speech_final`.
const ENDPOINTING_MS: u32 = 300;
/// Gap between words (ms) after which Deepgram sends `UtteranceEnd` (its minimum is 1000).
const UTTERANCE_END_MS: u32 = 1000;

pub struct Deepgram {
    cfg: SttConfig,
}

impl Deepgram {
    pub fn new(cfg: SttConfig) -> Self {
        Self { cfg }
    }
}

#[derive(Deserialize)]
struct Msg {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    is_final: bool,
    #[serde(default)]
    speech_final: bool,
    /// An object on `Results`, but a list of channel indexes on `SpeechStarted` and
    /// `UtteranceEnd` (`"channel": [0]`): read as a `Channel` only for `Results`.
    #[serde(default)]
    channel: Option<serde_json::Value>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct Channel {
    #[serde(default)]
    alternatives: Vec<Alternative>,
}

#[derive(Deserialize)]
struct Alternative {
    #[serde(default)]
    transcript: String,
}

impl SttProtocol for Deepgram {
    fn url(&self) -> Result<url::Url, SttError> {
        let mut u = url::Url::parse(&self.cfg.base_url)
            .map_err(|_| SttError::Url(self.cfg.base_url.clone()))?;
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("model", &self.cfg.model)
                .append_pair("encoding", "linear16")
                .append_pair("sample_rate", &STT_SAMPLE_RATE.to_string())
                .append_pair("channels", "1")
                .append_pair("interim_results", "true")
                .append_pair("punctuate", "true")
                .append_pair("smart_format", "true")
                .append_pair("endpointing", &ENDPOINTING_MS.to_string())
                .append_pair("utterance_end_ms", &UTTERANCE_END_MS.to_string())
                .append_pair("vad_events", "true");
            if let Some(lang) = &self.cfg.language {
                q.append_pair("language", lang);
            }
        }
        Ok(u)
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![(
            "Authorization",
            format!("Token {}", self.cfg.api_key.expose()),
        )]
    }

    fn batch(&self) -> Duration {
        Duration::from_millis(20)
    }

    fn parse(&mut self, text: &str) -> Result<Vec<SttEvent>, SttError> {
        let msg: Msg = serde_json::from_str(text)
            .map_err(|e| SttError::Malformed(format!("{e} in {:?}", preview(text))))?;
        let mut out = Vec::new();
        match msg.kind.as_str() {
            "Results" => {
                let transcript = msg
                    .channel
                    .and_then(|c| serde_json::from_value::<Channel>(c).ok())
                    .and_then(|c| c.alternatives.into_iter().next())
                    .map(|a| a.transcript.trim().to_owned())
                    .unwrap_or_default();
                if !transcript.is_empty() {
                    out.push(if msg.is_final {
                        SttEvent::Final { text: transcript }
                    } else {
                        SttEvent::Interim { text: transcript }
                    });
                }
                if msg.speech_final {
                    out.push(SttEvent::EndOfTurn);
                }
            }
            "UtteranceEnd" => out.push(SttEvent::EndOfTurn),
            "SpeechStarted" => out.push(SttEvent::SpeechStarted),
            "Error" => {
                return Err(SttError::Provider(
                    msg.description.unwrap_or_else(|| "unspecified".into()),
                ));
            }
            _ => {}
        }
        Ok(out)
    }

    fn close_message(&self) -> String {
        r#"{"type":"CloseStream"}"#.to_owned()
    }

    fn keepalive(&self) -> Option<String> {
        Some(r#"{"type":"KeepAlive"}"#.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, SttProvider};

    #[test]
    fn speech_started_and_utterance_end_carry_a_channel_list() {
        // As Deepgram sends them (and its SDK's models say): `channel` is a list here.
        let mut d = Deepgram::new(SttConfig {
            provider: SttProvider::Deepgram,
            model: "nova-3".into(),
            language: None,
            base_url: "wss://api.deepgram.com/v1/listen".into(),
            api_key: Secret::new("k"),
        });
        let ev = d
            .parse(r#"{"type":"SpeechStarted","channel":[0],"timestamp":0.3}"#)
            .expect("SpeechStarted");
        assert_eq!(ev, vec![SttEvent::SpeechStarted]);
        let ev = d
            .parse(r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":1.2}"#)
            .expect("UtteranceEnd");
        assert_eq!(ev, vec![SttEvent::EndOfTurn]);
    }
}
