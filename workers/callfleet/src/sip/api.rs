//! LiveKit's SIP service over Twirp (`POST /twirp/livekit.SIP/<Method>`, protobuf bodies), with
//! a short-lived token carrying the SIP admin grant. livekit-api's `SIPClient` builds the create
//! requests from a few options and drops the rest of a file's fields; this sends the request
//! the file describes, whole.

use std::time::Duration;

use callfleet_config::Config;
use callfleet_livekit::error_chain;
use livekit_api::access_token::{AccessToken, SIPGrants};
use livekit_protocol as proto;
use prost::Message;

use super::SipError;

/// How long the request token is valid (one CLI command).
const TOKEN_TTL: Duration = Duration::from_secs(300);

pub struct SipApi {
    http: reqwest::Client,
    /// `http(s)://host:port`, from `livekit.url` (ws → http, wss → https).
    pub base: String,
    api_key: String,
    api_secret: String,
}

impl SipApi {
    pub fn new(config: &Config) -> Result<Self, SipError> {
        let Some((url, api_key, api_secret)) = config.livekit.credentials() else {
            return Err(SipError::Config(
                "livekit.url, livekit.api_key and livekit.api_secret are not set \
                 (LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET)"
                    .into(),
            ));
        };
        let base = http_base(url);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.livekit.request_timeout_secs))
            .build()
            .map_err(|e| SipError::Unavailable {
                url: base.clone(),
                problem: e.to_string(),
            })?;
        Ok(Self {
            http,
            base,
            api_key: api_key.to_owned(),
            api_secret: api_secret.to_owned(),
        })
    }

    async fn call<Req: Message, Resp: Message + Default>(
        &self,
        method: &'static str,
        req: &Req,
    ) -> Result<Resp, SipError> {
        let token = AccessToken::with_api_key(&self.api_key, &self.api_secret)
            .with_ttl(TOKEN_TTL)
            .with_sip_grants(SIPGrants {
                admin: true,
                ..Default::default()
            })
            .to_jwt()
            .map_err(|e| SipError::Config(format!("cannot sign a LiveKit token: {e}")))?;
        let url = format!("{}/twirp/livekit.SIP/{method}", self.base);
        let resp = self
            .http
            .post(&url)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/protobuf")
            .body(req.encode_to_vec())
            .send()
            .await
            .map_err(|e| SipError::Unavailable {
                url: self.base.clone(),
                problem: error_chain(&e),
            })?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| SipError::Unavailable {
            url: self.base.clone(),
            problem: error_chain(&e),
        })?;
        if !status.is_success() {
            // A Twirp error is `{"code", "msg"}`; LiveKit's auth layer answers plain text.
            let twirp: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let code = match (twirp["code"].as_str(), status.as_u16()) {
                (Some(code), _) => code,
                (None, 401) => "unauthenticated",
                (None, 403) => "permission_denied",
                (None, 404) => "not_found",
                (None, _) => "unknown",
            }
            .to_owned();
            let text = String::from_utf8_lossy(&body);
            let msg = match twirp["msg"].as_str() {
                Some(msg) => msg.to_owned(),
                None if !text.trim().is_empty() && text.len() < 500 => {
                    format!("HTTP {status}: {}", text.trim())
                }
                None => format!("HTTP {status}"),
            };
            return Err(SipError::Refused { method, code, msg });
        }
        Resp::decode(body).map_err(|e| SipError::Refused {
            method,
            code: "malformed".into(),
            msg: format!("the answer is not a {method} response: {e}"),
        })
    }

    pub async fn create_inbound(
        &self,
        req: &proto::CreateSipInboundTrunkRequest,
    ) -> Result<proto::SipInboundTrunkInfo, SipError> {
        self.call("CreateSIPInboundTrunk", req).await
    }

    pub async fn create_outbound(
        &self,
        req: &proto::CreateSipOutboundTrunkRequest,
    ) -> Result<proto::SipOutboundTrunkInfo, SipError> {
        self.call("CreateSIPOutboundTrunk", req).await
    }

    pub async fn create_dispatch(
        &self,
        info: proto::SipDispatchRuleInfo,
    ) -> Result<proto::SipDispatchRuleInfo, SipError> {
        let req = proto::CreateSipDispatchRuleRequest {
            dispatch_rule: Some(info),
            ..Default::default()
        };
        self.call("CreateSIPDispatchRule", &req).await
    }

    pub async fn inbound(&self) -> Result<Vec<proto::SipInboundTrunkInfo>, SipError> {
        let resp: proto::ListSipInboundTrunkResponse = self
            .call(
                "ListSIPInboundTrunk",
                &proto::ListSipInboundTrunkRequest::default(),
            )
            .await?;
        Ok(resp.items)
    }

    pub async fn outbound(&self) -> Result<Vec<proto::SipOutboundTrunkInfo>, SipError> {
        let resp: proto::ListSipOutboundTrunkResponse = self
            .call(
                "ListSIPOutboundTrunk",
                &proto::ListSipOutboundTrunkRequest::default(),
            )
            .await?;
        Ok(resp.items)
    }

    pub async fn dispatch_rules(&self) -> Result<Vec<proto::SipDispatchRuleInfo>, SipError> {
        let resp: proto::ListSipDispatchRuleResponse = self
            .call(
                "ListSIPDispatchRule",
                &proto::ListSipDispatchRuleRequest::default(),
            )
            .await?;
        Ok(resp.items)
    }

    /// Deletes an inbound or outbound trunk. livekit-server answers success for any id, known
    /// or not: callers check the id first.
    pub async fn delete_trunk(&self, id: &str) -> Result<(), SipError> {
        let _: proto::SipTrunkInfo = self
            .call(
                "DeleteSIPTrunk",
                &proto::DeleteSipTrunkRequest {
                    sip_trunk_id: id.to_owned(),
                },
            )
            .await?;
        Ok(())
    }

    pub async fn delete_dispatch(&self, id: &str) -> Result<proto::SipDispatchRuleInfo, SipError> {
        self.call(
            "DeleteSIPDispatchRule",
            &proto::DeleteSipDispatchRuleRequest {
                sip_dispatch_rule_id: id.to_owned(),
            },
        )
        .await
    }
}

/// The HTTP base of a LiveKit URL: `ws://h:7880/` → `http://h:7880`.
fn http_base(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    if let Some(rest) = url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        url.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_base_of_livekit_urls() {
        assert_eq!(http_base("ws://127.0.0.1:7880"), "http://127.0.0.1:7880");
        assert_eq!(
            http_base("wss://x.livekit.cloud/"),
            "https://x.livekit.cloud"
        );
        assert_eq!(http_base("http://h:1"), "http://h:1");
    }
}
