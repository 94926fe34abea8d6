//! `session_options` given as raw JSON (the voice bench and tests hold no typed options): read
//! into the domain's [`SessionOptions`], a value of the wrong JSON type being a field error. The
//! worker never comes here: its options are typed by the dispatch validation.

use callfleet_domain::{
    field::FieldError,
    request::{SessionOptions, TtsOption},
};
use serde_json::{Map, Value};

/// What [`read`] found.
pub(super) struct Read {
    pub options: SessionOptions,
    pub transfer_target: Option<String>,
    pub errors: Vec<FieldError>,
}

/// Read a JSON object (or null) of session options, plus its `transfer_target` key.
pub(super) fn read(value: &Value) -> Read {
    let empty = Map::new();
    let mut errors = Vec::new();
    let obj = match value {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => {
            errors.push(FieldError::new("session_options", "must be a JSON object"));
            &empty
        }
    };
    let mut r = Reader { obj, errors };
    let options = SessionOptions {
        language: r.text("language"),
        llm: r.descriptor("llm"),
        stt: r.descriptor("stt"),
        tts: r.tts(),
        cartesia_voice: r.text("cartesia_voice"),
        cartesia_model: r.text("cartesia_model"),
        preemptive_generation: r.preemptive(),
        prompt: r.text("prompt"),
        greeting: r.text("greeting"),
        ..SessionOptions::default()
    };
    let transfer_target = r.text("transfer_target");
    Read {
        options,
        transfer_target,
        errors: r.errors,
    }
}

struct Reader<'a> {
    obj: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Reader<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    fn err(&mut self, key: &str, problem: impl Into<String>) {
        self.errors
            .push(FieldError::new(format!("session_options.{key}"), problem));
    }

    fn text(&mut self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.err(key, "must be a string");
                None
            }
        }
    }

    fn descriptor(&mut self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.err(key, "must be a string like provider/model[:variant]");
                None
            }
        }
    }

    fn tts(&mut self) -> Option<TtsOption> {
        match self.get("tts")? {
            Value::String(s) => Some(TtsOption::Descriptor(s.clone())),
            Value::Object(o) => {
                let part = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
                Some(TtsOption::Spec {
                    provider: part("provider"),
                    model: part("model"),
                    voice: part("voice"),
                })
            }
            _ => {
                self.err(
                    "tts",
                    "must be a string like provider/model[:voice] or {provider, model, voice}",
                );
                None
            }
        }
    }

    fn preemptive(&mut self) -> Option<bool> {
        let v = self.get("preemptive_generation")?;
        let parsed = callfleet_domain::boolish::parse(v);
        if parsed.is_none() {
            let problem = format!("`{v}` is not a boolean (true/false, yes/no, on/off, 1/0)");
            self.err("preemptive_generation", problem);
        }
        parsed
    }
}
