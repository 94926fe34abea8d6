//! Call control: requests the ingress (or any NATS client) sends, with core request/reply, to
//! the worker holding a live call on `calls.control.<call_id>`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ControlRequest {
    /// Hang up (while ringing: cancel the INVITE). The call ends with reason `cancelled`.
    Hangup,
    /// SIP REFER the callee to `to`: `tel:+E164` or a `sip:` URI (already normalised).
    /// Absent: the call's own `transfer_target`.
    Transfer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ControlReply {
    pub ok: bool,
    /// What the worker did, or why it could not.
    pub detail: String,
}

impl ControlReply {
    pub fn ok(detail: impl Into<String>) -> Self {
        Self {
            ok: true,
            detail: detail.into(),
        }
    }

    pub fn err(detail: impl Into<String>) -> Self {
        Self {
            ok: false,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_tagged_by_action() {
        let t = ControlRequest::Transfer {
            to: Some("tel:+61731071901".into()),
        };
        let json = serde_json::to_value(&t).expect("encode");
        assert_eq!(json["action"], "transfer");
        assert_eq!(json["to"], "tel:+61731071901");
        let back: ControlRequest = serde_json::from_str(r#"{"action":"hangup"}"#).expect("decode");
        assert_eq!(back, ControlRequest::Hangup);
        assert!(serde_json::from_str::<ControlRequest>(r#"{"action":"explode"}"#).is_err());
    }
}
