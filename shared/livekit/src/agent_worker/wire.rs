//! The agent protocol on the wire: the `/agent` URL, the worker's token, and the frames.
//!
//! livekit-server (`pkg/service/wsprotocol.go`) answers in the encoding the client last used:
//! binary frames carry protobuf `WorkerMessage` / `ServerMessage`, text frames protojson. This
//! client always sends binary, so a text frame from the server is a protocol error.

use livekit_api::access_token::{AccessToken, AccessTokenError, VideoGrants};
use livekit_protocol as proto;
use prost::Message as _;
use tokio_tungstenite::tungstenite::Message;

use super::{Offer, WorkerLoad};

/// `<livekit url>/agent`: `http` becomes `ws` and `https` `wss`; a path prefix is kept (a
/// LiveKit behind a reverse proxy at `/livekit`), the query and fragment are dropped.
pub(crate) fn agent_url(base: &str) -> Result<url::Url, String> {
    let mut url = url::Url::parse(base).map_err(|e| e.to_string())?;
    let scheme = match url.scheme() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        other => {
            return Err(format!(
                "unsupported scheme {other:?} (use ws, wss, http or https)"
            ));
        }
    };
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".to_owned());
    }
    url.set_scheme(scheme)
        .map_err(|()| format!("cannot use scheme {scheme}"))?;
    let path = format!("{}/agent", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// The worker's JWT: a video grant with `agent: true` and nothing else (what LiveKit Agents
/// sends). livekit-server checks it once, at the upgrade.
pub(crate) fn worker_token(api_key: &str, api_secret: &str) -> Result<String, AccessTokenError> {
    AccessToken::with_api_key(api_key, api_secret)
        .with_grants(VideoGrants {
            agent: true,
            ..Default::default()
        })
        .to_jwt()
}

/// A worker message as the binary frame livekit-server expects.
pub(crate) fn encode(message: proto::worker_message::Message) -> Message {
    let msg = proto::WorkerMessage {
        message: Some(message),
    };
    Message::Binary(msg.encode_to_vec().into())
}

/// What one frame from the server means to the client.
#[derive(Debug)]
pub(crate) enum Frame {
    /// Boxed: some messages (a job with its room and participant) are large.
    Server(Box<proto::server_message::Message>),
    /// A WebSocket ping or pong, or a `ServerMessage` with no message set (newer servers may
    /// send kinds this protocol version does not know).
    Nothing,
    /// The server closed the socket (code and reason, if it gave them).
    Closed(String),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("unexpected {0} frame from the server (this client speaks protobuf)")]
    Unexpected(&'static str),
    #[error("undecodable ServerMessage")]
    Decode(#[source] prost::DecodeError),
}

pub(crate) fn decode(frame: Message) -> Result<Frame, FrameError> {
    match frame {
        Message::Binary(bytes) => match proto::ServerMessage::decode(bytes.as_ref()) {
            Ok(proto::ServerMessage { message: Some(m) }) => Ok(Frame::Server(Box::new(m))),
            Ok(proto::ServerMessage { message: None }) => Ok(Frame::Nothing),
            Err(e) => Err(FrameError::Decode(e)),
        },
        Message::Ping(_) | Message::Pong(_) => Ok(Frame::Nothing),
        Message::Close(frame) => Ok(Frame::Closed(frame.map_or_else(
            || "no close frame".to_owned(),
            |f| format!("code {} {:?}", u16::from(f.code), f.reason.as_str()),
        ))),
        Message::Text(_) => Err(FrameError::Unexpected("text")),
        Message::Frame(_) => Err(FrameError::Unexpected("raw")),
    }
}

/// `RegisterWorkerRequest` for room jobs (`JT_ROOM`: one job per dispatch, whatever joins).
pub(crate) fn register(
    agent_name: &str,
    version: &str,
    namespace: Option<&str>,
    ping_interval: std::time::Duration,
) -> proto::worker_message::Message {
    proto::worker_message::Message::Register(proto::RegisterWorkerRequest {
        r#type: proto::JobType::JtRoom as i32,
        agent_name: agent_name.to_owned(),
        version: version.to_owned(),
        ping_interval: u32::try_from(ping_interval.as_secs()).unwrap_or(u32::MAX),
        namespace: namespace.map(str::to_owned),
        ..Default::default()
    })
}

/// `UpdateWorkerStatus`: full when the caller says so or the worker drains, else available.
pub(crate) fn status(
    load: WorkerLoad,
    draining: bool,
    job_count: usize,
    seq: u64,
) -> proto::worker_message::Message {
    let status = if load.full || draining {
        proto::WorkerStatus::WsFull
    } else {
        proto::WorkerStatus::WsAvailable
    };
    proto::worker_message::Message::UpdateWorker(proto::UpdateWorkerStatus {
        status: Some(status as i32),
        load: load.load,
        job_count: u32::try_from(job_count).unwrap_or(u32::MAX),
        draining,
        seq,
    })
}

/// The `AvailabilityResponse` answering an offer of `job_id`.
pub(crate) fn answer(job_id: &str, offer: &Offer) -> proto::worker_message::Message {
    let mut res = proto::AvailabilityResponse {
        job_id: job_id.to_owned(),
        ..Default::default()
    };
    match offer {
        Offer::Accept {
            identity,
            name,
            metadata,
            attributes,
        } => {
            res.available = true;
            res.participant_identity.clone_from(identity);
            res.participant_name.clone_from(name);
            res.participant_metadata.clone_from(metadata);
            res.participant_attributes.clone_from(attributes);
        }
        Offer::Decline => {}
        Offer::Terminate => res.terminate = true,
    }
    proto::worker_message::Message::Availability(res)
}

pub(crate) fn ping() -> proto::worker_message::Message {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    proto::worker_message::Message::Ping(proto::WorkerPing { timestamp: now_ms })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proto::{server_message, worker_message};

    use super::*;

    fn url(base: &str) -> String {
        agent_url(base).map(String::from).unwrap_or_else(|e| e)
    }

    #[test]
    fn agent_url_maps_http_to_ws_and_keeps_a_path_prefix() {
        assert_eq!(url("ws://127.0.0.1:7880"), "ws://127.0.0.1:7880/agent");
        assert_eq!(url("http://127.0.0.1:7880/"), "ws://127.0.0.1:7880/agent");
        assert_eq!(url("https://lk.example.com"), "wss://lk.example.com/agent");
        assert_eq!(
            url("wss://lk.example.com/livekit/"),
            "wss://lk.example.com/livekit/agent"
        );
        assert_eq!(url("http://h:1/x?access_token=t#f"), "ws://h:1/x/agent");
    }

    #[test]
    fn agent_url_rejects_what_is_not_a_livekit_url() {
        assert!(url("ftp://h").contains("unsupported scheme \"ftp\""));
        assert!(agent_url("127.0.0.1:7880").is_err());
        assert!(agent_url("").is_err());
    }

    #[test]
    fn the_token_grants_agent_and_is_signed_with_the_key() {
        let jwt = worker_token("devkey", "secret").unwrap_or_default();
        let claims = livekit_api::access_token::Claims::from_unverified(&jwt);
        let claims = claims.unwrap_or_else(|e| panic!("undecodable token: {e}"));
        assert!(claims.video.agent);
        assert!(!claims.video.room_join);
        assert_eq!(claims.iss, "devkey");
        assert!(worker_token("devkey", "").is_err());
    }

    #[test]
    fn worker_messages_go_out_as_binary_protobuf() {
        let Message::Binary(bytes) = encode(register(
            "callfleet",
            "0.1.0",
            None,
            std::time::Duration::from_secs(10),
        )) else {
            panic!("not a binary frame");
        };
        let back = proto::WorkerMessage::decode(bytes.as_ref()).unwrap_or_default();
        let Some(worker_message::Message::Register(reg)) = back.message else {
            panic!("not a register: {back:?}");
        };
        assert_eq!(reg.agent_name, "callfleet");
        assert_eq!(reg.r#type, proto::JobType::JtRoom as i32);
        assert_eq!(reg.ping_interval, 10);
        assert_eq!(reg.namespace, None);
    }

    #[test]
    fn server_frames_decode_and_text_is_refused() {
        let msg = proto::ServerMessage {
            message: Some(server_message::Message::Termination(
                proto::JobTermination {
                    job_id: "AJ_1".into(),
                },
            )),
        };
        let frame = decode(Message::Binary(msg.encode_to_vec().into()));
        let Ok(Frame::Server(msg)) = frame else {
            panic!("not a server message: {frame:?}");
        };
        assert!(matches!(*msg, server_message::Message::Termination(t) if t.job_id == "AJ_1"));
        assert!(matches!(
            decode(Message::Binary(
                proto::ServerMessage::default().encode_to_vec().into()
            )),
            Ok(Frame::Nothing)
        ));
        assert!(matches!(
            decode(Message::Ping(Vec::new().into())),
            Ok(Frame::Nothing)
        ));
        assert!(matches!(
            decode(Message::Text("{}".into())),
            Err(FrameError::Unexpected("text"))
        ));
        assert!(matches!(
            decode(Message::Binary(vec![0xff, 0xff, 0xff].into())),
            Err(FrameError::Decode(_))
        ));
        assert!(matches!(decode(Message::Close(None)), Ok(Frame::Closed(_))));
    }

    #[test]
    fn status_is_full_when_told_or_draining() {
        let st = |load, draining| match status(load, draining, 2, 7) {
            worker_message::Message::UpdateWorker(u) => u,
            other => panic!("not a status: {other:?}"),
        };
        let idle = WorkerLoad {
            load: 0.25,
            full: false,
        };
        let full = WorkerLoad {
            load: 0.9,
            full: true,
        };
        assert_eq!(
            st(idle, false).status,
            Some(proto::WorkerStatus::WsAvailable as i32)
        );
        assert_eq!(
            st(full, false).status,
            Some(proto::WorkerStatus::WsFull as i32)
        );
        let draining = st(idle, true);
        assert_eq!(draining.status, Some(proto::WorkerStatus::WsFull as i32));
        assert!(draining.draining);
        assert_eq!(
            (draining.load, draining.job_count, draining.seq),
            (0.25, 2, 7)
        );
    }

    #[test]
    fn answers_carry_the_participant_on_accept_only() {
        let accept = Offer::Accept {
            identity: "agent-1".into(),
            name: "callfleet".into(),
            metadata: "{}".into(),
            attributes: HashMap::from([("k".to_owned(), "v".to_owned())]),
        };
        let res = |offer| match answer("AJ_1", &offer) {
            worker_message::Message::Availability(a) => a,
            other => panic!("not an answer: {other:?}"),
        };
        let a = res(accept);
        assert!(a.available && !a.terminate);
        assert_eq!(
            (a.job_id.as_str(), a.participant_identity.as_str()),
            ("AJ_1", "agent-1")
        );
        assert_eq!(
            a.participant_attributes.get("k").map(String::as_str),
            Some("v")
        );
        let d = res(Offer::Decline);
        assert!(!d.available && !d.terminate && d.participant_identity.is_empty());
        let t = res(Offer::Terminate);
        assert!(!t.available && t.terminate);
    }
}
