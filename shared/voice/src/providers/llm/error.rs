//! Why a completion failed ([`LlmError`]).

use std::time::Duration;

/// Why a completion failed.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("could not build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("request to {url} failed")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("no response from {url} within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("the response stream broke off (connection lost mid-response)")]
    Stream(#[source] reqwest::Error),
    #[error("no data for {0:?} mid-stream")]
    Idle(Duration),
    #[error("malformed stream: {0}")]
    Malformed(String),
    #[error("the provider reported an error: {0}")]
    Provider(String),
}
