//! Websocket connect with a timeout and extra headers, shared by the STT and TTS clients.

use std::time::Duration;

use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async_with_config,
    tungstenite::{client::IntoClientRequest, http::HeaderValue},
};

pub type WsStream = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Why a websocket could not be opened. The URL is logged without its query (which may carry a key).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid websocket request for {url}")]
    Request {
        url: String,
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    #[error("invalid header {name}")]
    Header { name: &'static str },
    #[error("timed out after {timeout:?} connecting to {url}")]
    Timeout { url: String, timeout: Duration },
    #[error("websocket handshake with {url} failed")]
    Handshake {
        url: String,
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
}

pub async fn connect(
    url: &url::Url,
    headers: &[(&'static str, String)],
    timeout: Duration,
) -> Result<WsStream, ConnectError> {
    let shown = redact(url);
    let mut request =
        url.as_str()
            .into_client_request()
            .map_err(|source| ConnectError::Request {
                url: shown.clone(),
                source: Box::new(source),
            })?;
    for (name, value) in headers {
        let value = HeaderValue::from_str(value).map_err(|_| ConnectError::Header { name })?;
        request.headers_mut().insert(*name, value);
    }
    // Nagle off: audio frames and text chunks are small and latency-bound.
    match tokio::time::timeout(timeout, connect_async_with_config(request, None, true)).await {
        Err(_) => Err(ConnectError::Timeout {
            url: shown,
            timeout,
        }),
        Ok(Err(source)) => Err(ConnectError::Handshake {
            url: shown,
            source: Box::new(source),
        }),
        Ok(Ok((ws, _response))) => Ok(ws),
    }
}

/// `scheme://host[:port]/path`, without query or credentials.
pub fn redact(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}
