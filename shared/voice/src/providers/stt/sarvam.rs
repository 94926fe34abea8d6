//! Sarvam streaming speech-to-text: `wss://api.sarvam.ai/speech-to-text/ws`, authenticated with
//! the `api-subscription-key` header. Audio goes up as JSON text messages
//! (`{"audio": {"data": <base64 s16le>, "encoding": "audio/wav", "sample_rate": 16000}}`, with
//! `input_audio_codec=pcm_s16le` on the URL so the raw PCM is read as such). Sarvam's own VAD
//! cuts the stream into utterances: `{"type": "events", "data": {"signal_type":
//! "START_SPEECH" | "END_SPEECH"}}` (with `vad_signals=true`), then one final
//! `{"type": "data", "data": {"transcript": …}}` per utterance (no interim results). `{"type":
//! "flush"}` (with `flush_signal=true`) makes it finalise what it has.

use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::protocol::{STT_SAMPLE_RATE, SttError, SttEvent, SttProtocol, pcm_bytes, preview};
use crate::config::SttConfig;

pub struct Sarvam {
    cfg: SttConfig,
}

impl Sarvam {
    pub fn new(cfg: SttConfig) -> Self {
        Self { cfg }
    }

    /// The configured language; with none, saarika auto-detects (`unknown`) and saaras (whose
    /// documented default is `en-IN`) gets that.
    fn language_code(&self) -> String {
        match &self.cfg.language {
            Some(l) => l.clone(),
            None if self.cfg.model.starts_with("saarika") => "unknown".into(),
            None => "en-IN".into(),
        }
    }
}

#[derive(Deserialize)]
struct Msg {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    message: Option<String>,
}

/// The error text from either shape seen in the wild: `{"type": "error", "data": {"error" |
/// "message": …, "code": …}}` or top-level `error` / `message`.
fn error_text(msg: &Msg) -> String {
    let from = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    };
    let data = msg.data.as_ref();
    let text = from(data.and_then(|d| d.get("error")))
        .or_else(|| from(data.and_then(|d| d.get("message"))))
        .or_else(|| from(msg.error.as_ref()))
        .or_else(|| msg.message.clone())
        .unwrap_or_else(|| "unspecified".into());
    match from(data.and_then(|d| d.get("code"))) {
        Some(code) => format!("{text} (code {code})"),
        None => text,
    }
}

impl SttProtocol for Sarvam {
    fn url(&self) -> Result<url::Url, SttError> {
        let root = self.cfg.base_url.trim_end_matches('/');
        let mut u = url::Url::parse(&format!("{root}/speech-to-text/ws"))
            .map_err(|_| SttError::Url(self.cfg.base_url.clone()))?;
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("language-code", &self.language_code())
                .append_pair("model", &self.cfg.model);
            if self.cfg.model.starts_with("saaras:v3") {
                q.append_pair("mode", "transcribe");
            }
            q.append_pair("sample_rate", &STT_SAMPLE_RATE.to_string())
                .append_pair("input_audio_codec", "pcm_s16le")
                .append_pair("high_vad_sensitivity", "true")
                .append_pair("vad_signals", "true")
                .append_pair("flush_signal", "true");
        }
        Ok(u)
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![("api-subscription-key", self.cfg.api_key.expose().to_owned())]
    }

    fn batch(&self) -> Duration {
        Duration::from_millis(50)
    }

    fn audio_message(&self, samples: &[i16]) -> Message {
        let data = base64::engine::general_purpose::STANDARD.encode(pcm_bytes(samples));
        let msg = json!({"audio": {"data": data, "encoding": "audio/wav",
                                   "sample_rate": STT_SAMPLE_RATE}});
        Message::text(msg.to_string())
    }

    fn parse(&mut self, text: &str) -> Result<Vec<SttEvent>, SttError> {
        let msg: Msg = serde_json::from_str(text)
            .map_err(|e| SttError::Malformed(format!("{e} in {:?}", preview(text))))?;
        let mut out = Vec::new();
        match msg.kind.as_str() {
            "data" => {
                let transcript = msg
                    .data
                    .as_ref()
                    .and_then(|d| d.get("transcript"))
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .unwrap_or_default();
                // One transcript per utterance, sent once Sarvam's VAD heard it end.
                if !transcript.is_empty() {
                    out.push(SttEvent::Final {
                        text: transcript.to_owned(),
                    });
                    out.push(SttEvent::EndOfTurn);
                }
            }
            "events" => {
                let signal = msg
                    .data
                    .as_ref()
                    .and_then(|d| d.get("signal_type"))
                    .and_then(Value::as_str);
                if signal == Some("START_SPEECH") {
                    out.push(SttEvent::SpeechStarted);
                }
            }
            "error" => return Err(SttError::Provider(error_text(&msg))),
            _ if msg.error.is_some() => return Err(SttError::Provider(error_text(&msg))),
            _ => {}
        }
        Ok(out)
    }

    fn close_message(&self) -> String {
        r#"{"type":"flush"}"#.to_owned()
    }

    fn keepalive(&self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, SttProvider};

    fn sarvam(model: &str, language: Option<&str>) -> Sarvam {
        Sarvam::new(SttConfig {
            provider: SttProvider::Sarvam,
            model: model.into(),
            language: language.map(str::to_owned),
            base_url: "wss://api.sarvam.ai/".into(),
            api_key: Secret::new("k"),
        })
    }

    #[test]
    fn url_carries_the_documented_parameters() {
        let u = sarvam("saaras:v3", Some("hi-IN")).url().expect("url");
        assert_eq!(u.path(), "/speech-to-text/ws");
        let q: Vec<(String, String)> = u.query_pairs().into_owned().collect();
        for (k, v) in [
            ("language-code", "hi-IN"),
            ("model", "saaras:v3"),
            ("mode", "transcribe"),
            ("sample_rate", "16000"),
            ("input_audio_codec", "pcm_s16le"),
            ("vad_signals", "true"),
        ] {
            assert!(q.contains(&(k.into(), v.into())), "{k}={v} missing: {q:?}");
        }
        let u = sarvam("saarika:v2.5", None).url().expect("url");
        assert!(u.as_str().contains("language-code=unknown"));
        assert!(!u.as_str().contains("mode="));
    }

    #[test]
    fn parses_transcripts_events_and_errors() {
        let mut s = sarvam("saarika:v2.5", Some("hi-IN"));
        let ev = s
            .parse(r#"{"type":"events","data":{"signal_type":"START_SPEECH","occured_at":1.0}}"#)
            .expect("events");
        assert_eq!(ev, vec![SttEvent::SpeechStarted]);
        let ev = s
            .parse(r#"{"type":"data","data":{"request_id":"r","transcript":" नमस्ते ","language_code":"hi-IN","metrics":{"audio_duration":1.2,"processing_latency":0.1}}}"#)
            .expect("data");
        assert_eq!(
            ev,
            vec![
                SttEvent::Final {
                    text: "नमस्ते".into()
                },
                SttEvent::EndOfTurn
            ]
        );
        assert!(
            s.parse(r#"{"type":"data","data":{}}"#)
                .expect("empty")
                .is_empty()
        );
        let e = s
            .parse(r#"{"type":"error","data":{"error":"bad audio","code":"invalid"}}"#)
            .expect_err("error");
        assert!(e.to_string().contains("bad audio (code invalid)"), "{e}");
        assert!(matches!(
            s.parse("<html>502</html>"),
            Err(SttError::Malformed(_))
        ));
    }

    #[test]
    fn audio_goes_up_as_base64_json() {
        let m = sarvam("saarika:v2.5", None).audio_message(&[1, -1]);
        let Message::Text(t) = m else {
            panic!("not text")
        };
        let v: Value = serde_json::from_str(t.as_str()).expect("json");
        assert_eq!(v["audio"]["data"], json!("AQD//w=="));
        assert_eq!(v["audio"]["sample_rate"], json!(16000));
    }
}
