//! LiveKit signaling: one WebSocket carrying protobuf `SignalRequest` /
//! `SignalResponse` messages (binary frames).
//!
//! Join URL: `<ws|wss>://host[:port][/prefix]/rtc?access_token=..&auto_subscribe=1|0
//! &sdk=rust&version=<crate version>&protocol=16`. The `/rtc` path (not `/rtc/v1`)
//! selects LiveKit's dual peer connection mode. The first message back must
//! be a `JoinResponse`.

use futures_util::{SinkExt as _, StreamExt as _};
use livekit_protocol as proto;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::error::{Error, Result};

/// Signal protocol version sent in the join URL. 16 is the last version of the
/// dual peer connection (`/rtc`) flow this crate implements; 17+ is the
/// single-PC `/rtc/v1` path and 18 switches to pre-negotiated data channels.
pub const PROTOCOL_VERSION: u32 = 16;

/// An open signal connection. Dropping `tx` closes the WebSocket; `rx` ends
/// when the server closes it or the connection breaks.
#[derive(Debug)]
pub struct Signal {
    /// Requests to the server, sent in order by a writer task.
    pub tx: mpsc::UnboundedSender<proto::signal_request::Message>,
    /// Responses from the server, in order, after the `JoinResponse`.
    pub rx: mpsc::UnboundedReceiver<proto::signal_response::Message>,
    /// The server's answer to the join (empty after a resume).
    pub join: proto::JoinResponse,
    /// The server's answer to a resume.
    pub reconnect: Option<proto::ReconnectResponse>,
    /// The writer task; finishes once `tx` is dropped and the socket is closed.
    pub writer: tokio::task::JoinHandle<()>,
}

/// Builds the `/rtc` join URL from a server URL (`ws`, `wss`, `http` or `https`).
pub fn join_url(server: &str, token: &str, auto_subscribe: bool) -> Result<url::Url> {
    let mut url = url::Url::parse(server).map_err(|e| Error::InvalidUrl(e.to_string()))?;
    let scheme = match url.scheme() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        other => return Err(Error::InvalidUrl(format!("unsupported scheme {other}"))),
    };
    url.set_scheme(scheme)
        .map_err(|()| Error::InvalidUrl("cannot set scheme".into()))?;
    let path = format!("{}/rtc", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.query_pairs_mut()
        .clear()
        .append_pair("access_token", token)
        .append_pair("auto_subscribe", if auto_subscribe { "1" } else { "0" })
        .append_pair("sdk", "rust")
        .append_pair("version", env!("CARGO_PKG_VERSION"))
        .append_pair("protocol", &PROTOCOL_VERSION.to_string());
    Ok(url)
}

/// Opens the WebSocket and waits for the `JoinResponse` (or, with `resume`,
/// the `ReconnectResponse`).
pub async fn connect(url: url::Url, timeout: std::time::Duration, resume: bool) -> Result<Signal> {
    let connect = tokio_tungstenite::connect_async(url.as_str());
    let (ws, _resp) = match tokio::time::timeout(timeout, connect).await {
        Err(_) => return Err(Error::Timeout("signal websocket")),
        Ok(Err(tungstenite::Error::Http(resp))) => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned());
            return Err(Error::JoinRefused {
                status: resp.status().as_u16(),
                body: body.unwrap_or_default(),
            });
        }
        Ok(Err(e)) => return Err(Error::Signal(e.to_string())),
        Ok(Ok(ok)) => ok,
    };
    let (mut sink, mut stream) = ws.split();

    let (in_tx, mut in_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // Ends when the socket closes or errors; dropping in_tx tells the session.
        while let Some(msg) = stream.next().await {
            let bytes = match msg {
                Ok(Message::Binary(b)) => b,
                Ok(Message::Close(frame)) => {
                    tracing::debug!(?frame, "signal closed by server");
                    break;
                }
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "signal read failed");
                    break;
                }
            };
            match proto::SignalResponse::decode(bytes.as_ref()) {
                Ok(proto::SignalResponse { message: Some(m) }) => {
                    if in_tx.send(m).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "undecodable signal response"),
            }
        }
    });

    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<proto::signal_request::Message>();
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let leaving = matches!(m, proto::signal_request::Message::Leave(_));
            let bytes = proto::SignalRequest { message: Some(m) }.encode_to_vec();
            if let Err(e) = sink.send(Message::Binary(bytes.into())).await {
                tracing::debug!(error = %e, "signal write failed");
                return;
            }
            if leaving {
                break;
            }
        }
        let _ = sink.close().await;
    });

    use proto::signal_response::Message as Res;
    let first = tokio::time::timeout(timeout, in_rx.recv()).await;
    let (join, reconnect) = match first {
        Ok(Some(Res::Join(j))) if !resume => (j, None),
        Ok(Some(Res::Reconnect(r))) if resume => (proto::JoinResponse::default(), Some(r)),
        other => {
            writer.abort();
            return Err(match other {
                Err(_) => Error::Timeout("join response"),
                Ok(None) => Error::Signal("closed before join response".into()),
                Ok(Some(Res::Leave(l))) => {
                    Error::Protocol(format!("server refused join: reason {}", l.reason))
                }
                Ok(Some(m)) => Error::Protocol(format!(
                    "unexpected first message (resume: {resume}): {m:?}"
                )),
            });
        }
    };
    Ok(Signal {
        tx: out_tx,
        rx: in_rx,
        join,
        reconnect,
        writer,
    })
}

/// The join URL turned into a resume URL: `reconnect=1&sid=<participant sid>
/// &reconnect_reason=<ReconnectReason>` added, as LiveKit's SDKs do.
pub fn resume_url(join: &url::Url, sid: &str, reason: proto::ReconnectReason) -> url::Url {
    let mut url = join.clone();
    url.query_pairs_mut()
        .append_pair("reconnect", "1")
        .append_pair("sid", sid)
        .append_pair("reconnect_reason", &(reason as i32).to_string());
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_url_shapes() {
        let u = join_url("http://127.0.0.1:7880/", "t.o.k", true).expect("url");
        assert_eq!(u.scheme(), "ws");
        assert_eq!(u.path(), "/rtc");
        let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(q["access_token"], "t.o.k");
        assert_eq!(q["auto_subscribe"], "1");
        assert_eq!(q["protocol"], "16");
        assert_eq!(q["sdk"], "rust");
        assert_eq!(
            join_url("wss://x/lk", "t", false).expect("url").path(),
            "/lk/rtc"
        );
        assert!(join_url("ftp://x", "t", true).is_err());
        let r = resume_url(&u, "PA_1", proto::ReconnectReason::RrSignalDisconnected);
        let q: std::collections::HashMap<_, _> = r.query_pairs().into_owned().collect();
        assert_eq!((q["reconnect"].as_str(), q["sid"].as_str()), ("1", "PA_1"));
        assert_eq!(q["reconnect_reason"], "1");
        assert_eq!(q["access_token"], "t.o.k");
        assert!(join_url("not a url", "t", true).is_err());
    }
}
