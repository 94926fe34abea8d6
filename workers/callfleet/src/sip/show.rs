//! What `callfleet sip` prints: one-line summaries, tables and JSON. Passwords and PINs never
//! leave here: tables show `user:***` and `pin ***`, JSON has `"***"` in their place.

use livekit_protocol as proto;
use serde::Serialize;
use serde_json::Value;

use super::{SipError, input::Secrets};

/// `user:***`, `user`, `:***` or `-`.
fn auth(user: &str, password: &str) -> String {
    match (user.is_empty(), password.is_empty()) {
        (true, true) => "-".into(),
        (false, true) => user.into(),
        (_, false) => format!("{user}:***"),
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(",")
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.into() }
}

/// `direct ai-sales-call`, `individual call-<caller>`, `callee call-<callee>`, with ` pin ***`
/// when the rule has a PIN.
pub fn rule(info: &proto::SipDispatchRuleInfo) -> String {
    use proto::sip_dispatch_rule::Rule;
    let (text, pin) = match info.rule.as_ref().and_then(|r| r.rule.as_ref()) {
        None => ("-".to_owned(), ""),
        Some(Rule::DispatchRuleDirect(d)) => (format!("direct {}", d.room_name), d.pin.as_str()),
        Some(Rule::DispatchRuleIndividual(d)) => (
            format!("individual {}<caller>", d.room_prefix),
            d.pin.as_str(),
        ),
        Some(Rule::DispatchRuleCallee(d)) => {
            (format!("callee {}<callee>", d.room_prefix), d.pin.as_str())
        }
    };
    if pin.is_empty() {
        text
    } else {
        format!("{text} pin ***")
    }
}

pub fn agents(info: &proto::SipDispatchRuleInfo) -> Vec<String> {
    info.room_config
        .iter()
        .flat_map(|c| c.agents.iter())
        .map(|a| {
            if a.agent_name.is_empty() {
                "<any>".to_owned()
            } else {
                a.agent_name.clone()
            }
        })
        .collect()
}

fn trunks(info: &proto::SipDispatchRuleInfo) -> String {
    if info.trunk_ids.is_empty() {
        "<any>".into()
    } else {
        info.trunk_ids.join(",")
    }
}

pub fn inbound_line(t: &proto::SipInboundTrunkInfo) -> String {
    format!(
        "{}  inbound trunk {:?}  numbers {}  auth {}",
        t.sip_trunk_id,
        t.name,
        list(&t.numbers),
        auth(&t.auth_username, &t.auth_password)
    )
}

pub fn outbound_line(t: &proto::SipOutboundTrunkInfo) -> String {
    format!(
        "{}  outbound trunk {:?}  address {}  numbers {}  auth {}",
        t.sip_trunk_id,
        t.name,
        or_dash(&t.address),
        list(&t.numbers),
        auth(&t.auth_username, &t.auth_password)
    )
}

pub fn dispatch_line(r: &proto::SipDispatchRuleInfo) -> String {
    format!(
        "{}  dispatch rule {:?}  trunks {}  rule {}  agents {}",
        r.sip_dispatch_rule_id,
        r.name,
        trunks(r),
        rule(r),
        list(&agents(r))
    )
}

pub fn inbound_table(items: &[proto::SipInboundTrunkInfo]) -> String {
    table(
        &["ID", "NAME", "NUMBERS", "ALLOWED ADDRESSES", "AUTH"],
        items.iter().map(|t| {
            vec![
                t.sip_trunk_id.clone(),
                or_dash(&t.name),
                list(&t.numbers),
                list(&t.allowed_addresses),
                auth(&t.auth_username, &t.auth_password),
            ]
        }),
    )
}

pub fn outbound_table(items: &[proto::SipOutboundTrunkInfo]) -> String {
    table(
        &["ID", "NAME", "ADDRESS", "TRANSPORT", "NUMBERS", "AUTH"],
        items.iter().map(|t| {
            let transport = proto::SipTransport::try_from(t.transport)
                .map(|tr| {
                    tr.as_str_name()
                        .trim_start_matches("SIP_TRANSPORT_")
                        .to_ascii_lowercase()
                })
                .unwrap_or_else(|_| t.transport.to_string());
            vec![
                t.sip_trunk_id.clone(),
                or_dash(&t.name),
                or_dash(&t.address),
                transport,
                list(&t.numbers),
                auth(&t.auth_username, &t.auth_password),
            ]
        }),
    )
}

pub fn dispatch_table(items: &[proto::SipDispatchRuleInfo]) -> String {
    table(
        &["ID", "NAME", "TRUNKS", "RULE", "AGENTS"],
        items.iter().map(|r| {
            vec![
                r.sip_dispatch_rule_id.clone(),
                or_dash(&r.name),
                trunks(r),
                rule(r),
                list(&agents(r)),
            ]
        }),
    )
}

/// Columns padded to their widest cell, two spaces apart.
fn table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| (*h).to_owned()).collect())
        .chain(rows)
        .collect();
    let mut widths = vec![0; header.len()];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let last = row.len().saturating_sub(1);
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        out.push('\n');
    }
    out
}

/// Protobuf JSON (lowerCamelCase, as `lk … --json` prints) with every password and PIN
/// replaced by `"***"`, and anything else that is a known secret scrubbed.
pub fn json<T: Serialize>(value: &T, secrets: &Secrets) -> Result<String, SipError> {
    let mut v = serde_json::to_value(value).map_err(|e| SipError::Output(e.to_string()))?;
    mask(&mut v);
    let text = serde_json::to_string_pretty(&v).map_err(|e| SipError::Output(e.to_string()))?;
    Ok(secrets.scrub(&text))
}

fn mask(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if Secrets::is_secret_key(k) && !matches!(v, Value::Null | Value::Object(_)) {
                    *v = Value::String("***".into());
                } else {
                    mask(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        let t = proto::SipOutboundTrunkInfo {
            sip_trunk_id: "ST_1".into(),
            auth_username: "u".into(),
            auth_password: "hunter2".into(),
            ..Default::default()
        };
        assert!(outbound_line(&t).contains("auth u:***"));
        assert!(!outbound_table(std::slice::from_ref(&t)).contains("hunter2"));
        let j = json(&t, &Secrets::default()).expect("json");
        assert!(!j.contains("hunter2"), "{j}");
        assert!(j.contains(r#""authPassword": "***""#), "{j}");
    }

    #[test]
    fn table_pads_columns() {
        let t = table(
            &["A", "BB"],
            vec![vec!["xyz".into(), "1".into()]].into_iter(),
        );
        assert_eq!(t, "A    BB\nxyz  1\n");
    }
}
