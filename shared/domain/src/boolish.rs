//! The bridge's "boolean-ish" values: `true`, `"yes"`, `"1"`, `1`, `"off"`, ...

use serde_json::Value;

/// Read a boolean-ish JSON value. `None` when it is not recognisable.
pub fn parse(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" | "1" | "enabled" => Some(true),
            "false" | "no" | "n" | "off" | "0" | "disabled" | "" => Some(false),
            _ => None,
        },
        Value::Null => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn reads_the_bridge_spellings() {
        for v in [json!(true), json!("yes"), json!("1"), json!(1), json!("ON")] {
            assert_eq!(super::parse(&v), Some(true), "{v}");
        }
        for v in [
            json!(false),
            json!("off"),
            json!("0"),
            json!(0),
            json!("no"),
        ] {
            assert_eq!(super::parse(&v), Some(false), "{v}");
        }
        for v in [json!("maybe"), json!(2), json!([true]), json!({})] {
            assert_eq!(super::parse(&v), None, "{v}");
        }
    }
}
