//! Request files, read as `lk sip … create FILE` reads them: protobuf JSON (lowerCamelCase or the
//! proto's own snake_case names, enums by name or number) into livekit-protocol's request types,
//! whose pbjson impls accept both spellings. Unknown fields are refused, as Go's `protojson`
//! refuses them; every problem names the file and the field.

use std::{collections::BTreeSet, io::Read as _, path::Path};

use livekit_protocol as proto;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::SipError;

/// Larger request files are refused unread (the seed's are a few hundred bytes).
const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// At most this many keys are checked for being unknown (each check parses the file again).
const MAX_PROBED_KEYS: usize = 2_000;

/// A request file's JSON and the secrets it holds (to be kept out of every message).
pub struct Source {
    /// How messages name the file: its path as given, or `<stdin>`.
    pub name: String,
    pub json: Value,
    pub secrets: Secrets,
}

/// Values of password and PIN fields seen so far: scrubbed from every message the CLI prints.
#[derive(Default, Clone)]
pub struct Secrets(BTreeSet<String>);

impl Secrets {
    /// Whether a field of this name holds a secret (`auth_password`, `authPassword`, `pin`, …).
    pub fn is_secret_key(key: &str) -> bool {
        let k = key.to_ascii_lowercase();
        k.contains("password") || k == "pin"
    }

    pub fn add(&mut self, value: &str) {
        if !value.is_empty() {
            self.0.insert(value.to_owned());
        }
    }

    /// Collect every secret-named field's value in `json`, at any depth.
    fn collect(&mut self, json: &Value) {
        match json {
            Value::Object(map) => {
                for (k, v) in map {
                    if Self::is_secret_key(k) {
                        match v {
                            Value::String(s) => self.add(s),
                            Value::Null | Value::Object(_) | Value::Array(_) => {}
                            other => self.add(&other.to_string()),
                        }
                    }
                    self.collect(v);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| self.collect(v)),
            _ => {}
        }
    }

    /// `text` with every known secret replaced by `***` (longest first, so a secret that
    /// contains another is hidden whole). Secrets shorter than 4 characters are left: they
    /// would garble any text, and the CLI never prints a secret field's value itself.
    pub fn scrub(&self, text: &str) -> String {
        let mut secrets: Vec<&String> = self.0.iter().filter(|s| s.chars().count() >= 4).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets
            .into_iter()
            .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "***"))
    }
}

/// Read `path` (`-` is stdin) as a JSON object.
pub fn read(path: &Path) -> Result<Source, SipError> {
    let name = if path.as_os_str() == "-" {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    };
    let unreadable = |e: std::io::Error| SipError::NoInput {
        file: name.clone(),
        problem: e.to_string(),
    };
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(unreadable)?;
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(SipError::input(
            &name,
            "",
            format!("larger than {MAX_FILE_BYTES} bytes: not a request file"),
        ));
    }
    let json: Value = serde_json::from_slice(&bytes).map_err(|e| {
        SipError::input(
            &name,
            "",
            format!(
                "not JSON (line {}, column {}): {}",
                e.line(),
                e.column(),
                syntax_problem(&e)
            ),
        )
    })?;
    if !json.is_object() {
        return Err(SipError::input(
            &name,
            "",
            format!("expected a JSON object ({{…}}), found {}", kind(&json)),
        ));
    }
    let mut secrets = Secrets::default();
    secrets.collect(&json);
    Ok(Source {
        name,
        json,
        secrets,
    })
}

/// serde_json's message without its trailing "at line … column …" (given separately).
fn syntax_problem(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Source {
    /// The file as a `T` (a livekit-protocol request type): a type error names its field
    /// (`trunk.numbers[0]`), and so does a field `T` does not have.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, SipError> {
        let value: T = serde_path_to_error::deserialize(self.json.clone()).map_err(|e| {
            let field = e.path().to_string();
            let problem = self.secrets.scrub(&e.inner().to_string());
            SipError::input(&self.name, field.trim_start_matches('.'), problem)
        })?;
        if let Some(field) = self.unknown_field::<T>() {
            return Err(SipError::input(&self.name, &field, "unknown field".into()));
        }
        Ok(value)
    }

    /// The first key `T` does not know, as a path.
    ///
    /// pbjson skips unknown keys silently (`lk` refuses them: Go's protojson). A key is known
    /// when replacing its value by one no protobuf field accepts (`[[[]]]`: no field is a list
    /// of lists; google.protobuf.Value, which takes anything, is not used by these requests)
    /// makes the file fail to parse; a skipped key parses still. Only the values of known keys
    /// are searched further.
    fn unknown_field<T: DeserializeOwned>(&self) -> Option<String> {
        let mut budget = MAX_PROBED_KEYS;
        let mut path = Vec::new();
        self.probe::<T>(&self.json, &mut path, &mut budget)
    }

    fn probe<T: DeserializeOwned>(
        &self,
        at: &Value,
        path: &mut Vec<Step>,
        budget: &mut usize,
    ) -> Option<String> {
        match at {
            Value::Object(map) => {
                for (key, value) in map {
                    if *budget == 0 {
                        return None;
                    }
                    *budget -= 1;
                    path.push(Step::Key(key.clone()));
                    let mut probe = self.json.clone();
                    if let Some(slot) = pointer_mut(&mut probe, path) {
                        *slot = serde_json::json!([[[]]]);
                    }
                    if serde_json::from_value::<T>(probe).is_ok() {
                        return Some(render(path));
                    }
                    if let Some(found) = self.probe::<T>(value, path, budget) {
                        return Some(found);
                    }
                    path.pop();
                }
                None
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Step::Index(i));
                    if let Some(found) = self.probe::<T>(item, path, budget) {
                        return Some(found);
                    }
                    path.pop();
                }
                None
            }
            _ => None,
        }
    }
}

enum Step {
    Key(String),
    Index(usize),
}

fn pointer_mut<'a>(root: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(root, |v, step| match step {
        Step::Key(k) => v.get_mut(k.as_str()),
        Step::Index(i) => v.get_mut(*i),
    })
}

fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Whether `value` is a template's placeholder (`<TRUNK_ID_FROM_INBOUND_CREATION>`).
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    v.len() > 2 && v.starts_with('<') && v.ends_with('>')
}

/// The dispatch rule a `CreateSIPDispatchRuleRequest` file describes, and the path prefix of
/// its fields in that file (`dispatch_rule.` for the wrapped form, empty for the top-level one).
#[derive(Debug)]
pub struct DispatchFile {
    pub info: proto::SipDispatchRuleInfo,
    pub prefix: &'static str,
}

/// Both forms `lk sip dispatch create FILE` can be given: the rule's fields at the top level
/// (seed 004's `dispatchRule.json`; the request's deprecated fields, which livekit-server still
/// reads) or inside `dispatch_rule`. Not both.
pub fn dispatch_rule(src: &Source) -> Result<DispatchFile, SipError> {
    let req: proto::CreateSipDispatchRuleRequest = src.parse()?;
    #[allow(deprecated)]
    let proto::CreateSipDispatchRuleRequest {
        dispatch_rule,
        rule,
        trunk_ids,
        hide_phone_number,
        inbound_numbers,
        name,
        metadata,
        attributes,
        room_preset,
        room_config,
    } = req;
    let file = match dispatch_rule {
        Some(info) => {
            let legacy = [
                ("rule", rule.is_some()),
                ("trunk_ids", !trunk_ids.is_empty()),
                ("hide_phone_number", hide_phone_number),
                ("inbound_numbers", !inbound_numbers.is_empty()),
                ("name", !name.is_empty()),
                ("metadata", !metadata.is_empty()),
                ("attributes", !attributes.is_empty()),
                ("room_preset", !room_preset.is_empty()),
                ("room_config", room_config.is_some()),
            ];
            if let Some((field, _)) = legacy.iter().find(|(_, set)| *set) {
                return Err(SipError::input(
                    &src.name,
                    field,
                    "is set beside `dispatch_rule`: give the rule's fields either inside \
                     `dispatch_rule` or at the top level, not both"
                        .into(),
                ));
            }
            if !info.sip_dispatch_rule_id.is_empty() {
                return Err(SipError::input(
                    &src.name,
                    "dispatch_rule.sip_dispatch_rule_id",
                    "must not be set: LiveKit assigns the id".into(),
                ));
            }
            DispatchFile {
                info,
                prefix: "dispatch_rule.",
            }
        }
        None => DispatchFile {
            info: proto::SipDispatchRuleInfo {
                rule,
                trunk_ids,
                hide_phone_number,
                inbound_numbers,
                name,
                metadata,
                attributes,
                room_preset,
                room_config,
                ..Default::default()
            },
            prefix: "",
        },
    };
    if file
        .info
        .rule
        .as_ref()
        .and_then(|r| r.rule.as_ref())
        .is_none()
    {
        return Err(SipError::input(
            &src.name,
            &format!("{}rule", file.prefix),
            "is missing: say where callers go, e.g. \
             {\"dispatchRuleDirect\": {\"roomName\": \"inbound-call\"}}"
                .into(),
        ));
    }
    Ok(file)
}

/// A trunk request file: `{"trunk": {…}}`. A file holding the trunk's fields without the
/// wrapper gets a hint, since `lk` refuses it too.
pub fn trunk<T: DeserializeOwned, I: DeserializeOwned>(
    src: &Source,
    trunk_of: impl Fn(&T) -> bool,
) -> Result<T, SipError> {
    match src.parse::<T>() {
        Ok(req) if trunk_of(&req) => Ok(req),
        Ok(_) => Err(SipError::input(
            &src.name,
            "trunk",
            "is missing: the file is {\"trunk\": {\"name\": …, \"numbers\": […], …}}".into(),
        )),
        Err(e) => {
            let bare = src.json.get("trunk").is_none()
                && serde_json::from_value::<I>(src.json.clone()).is_ok();
            if bare {
                let mut wrapped = serde_json::Map::new();
                wrapped.insert("trunk".into(), src.json.clone());
                let as_trunk = Source {
                    name: src.name.clone(),
                    json: Value::Object(wrapped),
                    secrets: src.secrets.clone(),
                };
                if as_trunk.parse::<T>().is_ok() {
                    return Err(SipError::input(
                        &src.name,
                        "",
                        "the trunk's fields must be inside {\"trunk\": {…}} \
                         (as `lk sip … create` reads the file)"
                            .into(),
                    ));
                }
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(json: &str) -> Source {
        let json: Value = serde_json::from_str(json).expect("test JSON");
        let mut secrets = Secrets::default();
        secrets.collect(&json);
        Source {
            name: "f.json".into(),
            json,
            secrets,
        }
    }

    fn err<T: std::fmt::Debug>(r: Result<T, SipError>) -> String {
        r.expect_err("an error").to_string()
    }

    #[test]
    fn both_spellings_parse() {
        let camel = source(r#"{"trunk": {"name": "t", "numbers": ["+1"], "authUsername": "u"}}"#);
        let snake = source(r#"{"trunk": {"name": "t", "numbers": ["+1"], "auth_username": "u"}}"#);
        let a: proto::CreateSipOutboundTrunkRequest = camel.parse().expect("camel");
        let b: proto::CreateSipOutboundTrunkRequest = snake.parse().expect("snake");
        assert_eq!(a, b);
        assert_eq!(a.trunk.expect("trunk").auth_username, "u");
    }

    #[test]
    fn unknown_fields_are_named() {
        let src = source(r#"{"trunk": {"name": "t", "numbrs": ["+1"]}}"#);
        let e = err(src.parse::<proto::CreateSipInboundTrunkRequest>());
        assert_eq!(e, "f.json: trunk.numbrs: unknown field");
        let src = source(r#"{"name": "r", "rule": {"dispatchRuleDirect": {"room": "x"}}}"#);
        let e = err(src.parse::<proto::CreateSipDispatchRuleRequest>());
        assert_eq!(e, "f.json: rule.dispatchRuleDirect.room: unknown field");
    }

    #[test]
    fn map_entries_are_not_unknown_fields() {
        let src = source(
            r#"{"name": "r", "attributes": {"anything": "x"}, "rule": {"dispatchRuleDirect": {"roomName": "x"}}}"#,
        );
        assert!(src.parse::<proto::CreateSipDispatchRuleRequest>().is_ok());
    }

    #[test]
    fn type_errors_name_the_field() {
        let src = source(r#"{"trunk": {"name": "t", "numbers": "+1"}}"#);
        let e = err(src.parse::<proto::CreateSipInboundTrunkRequest>());
        assert!(e.starts_with("f.json: trunk.numbers: invalid type"), "{e}");
        let src = source(r#"{"trunk_ids": [7], "rule": {}}"#);
        let e = err(src.parse::<proto::CreateSipDispatchRuleRequest>());
        assert!(e.starts_with("f.json: trunk_ids[0]: invalid type"), "{e}");
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let src = source(r#"{"trunk": {"auth_password": 123456789, "numbers": ["+1"]}}"#);
        let e = err(src.parse::<proto::CreateSipOutboundTrunkRequest>());
        assert!(!e.contains("123456789"), "{e}");
        assert!(e.contains("trunk.auth_password"), "{e}");
    }

    #[test]
    fn the_bare_trunk_gets_a_hint() {
        let src = source(r#"{"name": "t", "numbers": ["+1"]}"#);
        let e = err(trunk::<
            proto::CreateSipInboundTrunkRequest,
            proto::SipInboundTrunkInfo,
        >(&src, |r| r.trunk.is_some()));
        assert!(e.contains(r#"inside {"trunk": {…}}"#), "{e}");
    }

    #[test]
    fn dispatch_forms() {
        let top = source(
            r#"{"name": "r", "trunk_ids": ["ST_1"], "rule": {"dispatchRuleDirect": {"roomName": "x", "pin": ""}}}"#,
        );
        let wrapped = source(
            r#"{"dispatch_rule": {"name": "r", "trunkIds": ["ST_1"], "rule": {"dispatch_rule_direct": {"room_name": "x"}}}}"#,
        );
        let a = dispatch_rule(&top).expect("top-level");
        let b = dispatch_rule(&wrapped).expect("wrapped");
        assert_eq!(a.info, b.info);
        assert_eq!((a.prefix, b.prefix), ("", "dispatch_rule."));
        let both = source(
            r#"{"dispatch_rule": {"rule": {"dispatchRuleDirect": {"roomName": "x"}}}, "name": "r"}"#,
        );
        assert!(err(dispatch_rule(&both)).starts_with("f.json: name: is set beside"));
        let none = source(r#"{"name": "r"}"#);
        assert!(err(dispatch_rule(&none)).starts_with("f.json: rule: is missing"));
    }

    #[test]
    fn placeholders() {
        assert!(is_placeholder("<TRUNK_ID_FROM_INBOUND_CREATION>"));
        assert!(!is_placeholder("ST_abc"));
        assert!(!is_placeholder("<>"));
    }
}
