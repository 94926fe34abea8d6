//! One connection attempt's worth of state: the signal socket and both peer
//! connections, plus offer/answer bookkeeping. A rejoin replaces it whole.

use std::sync::Arc;
use std::time::Duration;

use livekit_protocol as proto;
use proto::signal_request::Message as Req;
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::RTCDataChannel;
use webrtc::data_channel::data_channel_init::RTCDataChannelInit;
use webrtc::peer_connection::offer_answer_options::RTCOfferOptions;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

use crate::data;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::peer::{Peer, PeerEvent, Target, build_api, forward_messages, rtc_config};
use crate::signal::{Signal, resume_url};
use crate::track::LocalAudioTrack;

/// Creates the publisher's `_reliable` (ordered) and `_lossy` (unordered, no retransmission)
/// channels, as the SDKs do before the first offer; returns the reliable one with a flag that
/// turns true when it opens. Messages the server may send on them reach the session too.
async fn data_channels(
    publisher: &Peer,
    events: mpsc::UnboundedSender<PeerEvent>,
) -> Result<(Arc<RTCDataChannel>, watch::Receiver<bool>)> {
    let reliable = publisher
        .pc
        .create_data_channel(
            data::RELIABLE,
            Some(RTCDataChannelInit {
                ordered: Some(true),
                ..Default::default()
            }),
        )
        .await?;
    let lossy = publisher
        .pc
        .create_data_channel(
            data::LOSSY,
            Some(RTCDataChannelInit {
                ordered: Some(false),
                max_retransmits: Some(0),
                ..Default::default()
            }),
        )
        .await?;
    let (open_tx, open) = watch::channel(false);
    let on_close = open_tx.clone();
    reliable.on_open(Box::new(move || {
        let _ = open_tx.send(true);
        Box::pin(async {})
    }));
    reliable.on_close(Box::new(move || {
        let _ = on_close.send(false);
        Box::pin(async {})
    }));
    forward_messages(&reliable, events.clone());
    forward_messages(&lossy, events);
    Ok((reliable, open))
}

/// Sends `bytes` on `channel` once it is open (waiting at most `timeout`).
pub async fn send_when_open(
    (channel, mut open): (Arc<RTCDataChannel>, watch::Receiver<bool>),
    bytes: Vec<u8>,
    timeout: Duration,
) -> Result<()> {
    match tokio::time::timeout(timeout, open.wait_for(|o| *o)).await {
        Err(_) => return Err(Error::Timeout("the data channel to open")),
        Ok(Err(_)) => return Err(Error::Closed),
        Ok(Ok(_)) => {}
    }
    channel.send(&bytes::Bytes::from(bytes)).await?;
    Ok(())
}

/// Signal socket + subscriber and publisher peer connections.
pub struct Conn {
    pub signal: Signal,
    pub subscriber: Peer,
    pub publisher: Peer,
    /// The publisher's `_reliable` data channel, and whether it is open.
    pub reliable: (Arc<RTCDataChannel>, watch::Receiver<bool>),
    pub peer_rx: mpsc::UnboundedReceiver<PeerEvent>,
    offer_in_flight: bool,
    offer_again: bool,
    offer_id: u32,
}

impl Conn {
    /// Joins (WebSocket + `JoinResponse`) and creates both peer connections.
    pub async fn open(url: &url::Url, opts: &Options) -> Result<Self> {
        let signal = crate::signal::connect(url.clone(), opts.timeout, false).await?;
        let api = build_api(opts)?;
        let (tx, peer_rx) = mpsc::unbounded_channel();
        let config = rtc_config(&signal.join, opts);
        let subscriber = Peer::new(&api, config.clone(), Target::Subscriber, tx.clone()).await?;
        let publisher = Peer::new(&api, config, Target::Publisher, tx.clone()).await?;
        let reliable = data_channels(&publisher, tx).await?;
        Ok(Self {
            signal,
            subscriber,
            publisher,
            reliable,
            peer_rx,
            offer_in_flight: false,
            offer_again: false,
            offer_id: 0,
        })
    }

    /// Our participant as the server sees it.
    pub fn me(&self) -> proto::ParticipantInfo {
        self.signal.join.participant.clone().unwrap_or_default()
    }

    /// Queues a request to the server (dropped if the socket is gone).
    pub fn send(&self, m: Req) {
        let _ = self.signal.tx.send(m);
    }

    /// Server offer on the subscriber connection: set it, answer with the same id.
    pub async fn answer_subscriber(&mut self, sd: proto::SessionDescription) -> Result<()> {
        self.subscriber
            .set_remote(RTCSessionDescription::offer(sd.sdp)?)
            .await?;
        let answer = self.subscriber.pc.create_answer(None).await?;
        self.subscriber
            .pc
            .set_local_description(answer.clone())
            .await?;
        self.send(Req::Answer(proto::SessionDescription {
            r#type: "answer".into(),
            sdp: answer.sdp,
            id: sd.id,
            ..Default::default()
        }));
        Ok(())
    }

    /// Server answer on the publisher connection; runs a queued renegotiation.
    pub async fn on_answer(&mut self, sd: proto::SessionDescription) -> Result<()> {
        self.publisher
            .set_remote(RTCSessionDescription::answer(sd.sdp)?)
            .await?;
        self.offer_in_flight = false;
        if std::mem::take(&mut self.offer_again) {
            self.negotiate_publisher().await;
        }
        Ok(())
    }

    /// Negotiates the publisher connection if it never was (nothing published yet): data
    /// needs it as much as a track does.
    pub async fn ensure_publisher(&mut self) {
        if !self.offer_in_flight && self.publisher.pc.local_description().await.is_none() {
            self.offer(false).await;
        }
    }

    /// Offers on the publisher connection, or queues one more round if an
    /// offer is already waiting for its answer.
    pub async fn negotiate_publisher(&mut self) {
        self.offer(false).await;
    }

    async fn offer(&mut self, ice_restart: bool) {
        if self.offer_in_flight {
            self.offer_again = true;
            return;
        }
        let pc = &self.publisher.pc;
        let options = RTCOfferOptions {
            ice_restart,
            ..Default::default()
        };
        let offer = match pc.create_offer(Some(options)).await {
            Ok(o) => o,
            Err(e) => return tracing::error!(error = %e, "create offer"),
        };
        if let Err(e) = pc.set_local_description(offer.clone()).await {
            return tracing::error!(error = %e, "set local offer");
        }
        self.offer_in_flight = true;
        self.offer_id += 1;
        self.send(Req::Offer(proto::SessionDescription {
            r#type: "offer".into(),
            sdp: offer.sdp,
            id: self.offer_id,
            ..Default::default()
        }));
    }

    /// Adds a local track to the publisher as a send-only transceiver and
    /// drains its RTCP (webrtc-rs interceptors only run when RTCP is read).
    pub async fn attach(&self, rtc: &Arc<TrackLocalStaticSample>) -> Result<()> {
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            send_encodings: vec![],
        };
        let track: Arc<dyn TrackLocal + Send + Sync> = rtc.clone();
        let tr = self
            .publisher
            .pc
            .add_transceiver_from_track(track, Some(init))
            .await?;
        let sender = tr.sender().await;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1500];
            while sender.read(&mut buf).await.is_ok() {}
        });
        Ok(())
    }

    /// Resumes after a signal loss, keeping both peer connections: a new
    /// WebSocket with `reconnect=1&sid=..` answered by `ReconnectResponse`,
    /// then `SyncState` (our subscriber answer/offer, auto-subscribe, the
    /// tracks we publish) and an ICE-restart offer on the publisher, as the
    /// JS SDK does. The server restarts ICE on the subscriber with a new offer.
    pub async fn resume(
        &mut self,
        url: &url::Url,
        opts: &Options,
        published: &[LocalAudioTrack],
    ) -> Result<()> {
        let sid = self.me().sid;
        let url = resume_url(url, &sid, proto::ReconnectReason::RrSignalDisconnected);
        let mut signal = crate::signal::connect(url, opts.timeout, true).await?;
        signal.join = std::mem::take(&mut self.signal.join);
        let old = std::mem::replace(&mut self.signal, signal);
        old.writer.abort();

        let desc = |d: Option<RTCSessionDescription>| {
            d.map(|d| proto::SessionDescription {
                r#type: d.sdp_type.to_string(),
                sdp: d.sdp,
                ..Default::default()
            })
        };
        let publish_tracks = published
            .iter()
            .map(|t| proto::TrackPublishedResponse {
                cid: t.cid(),
                track: Some(proto::TrackInfo {
                    sid: t.sid(),
                    name: t.name(),
                    r#type: proto::TrackType::Audio as i32,
                    source: proto::TrackSource::Microphone as i32,
                    muted: t.is_muted(),
                    mime_type: "audio/opus".into(),
                    ..Default::default()
                }),
            })
            .collect();
        self.send(Req::SyncState(proto::SyncState {
            answer: desc(self.subscriber.pc.local_description().await),
            offer: desc(self.subscriber.pc.remote_description().await),
            subscription: Some(proto::UpdateSubscription {
                subscribe: !opts.auto_subscribe,
                ..Default::default()
            }),
            publish_tracks,
            ..Default::default()
        }));
        self.offer_in_flight = false;
        self.offer_again = false;
        if self.publisher.pc.remote_description().await.is_some() {
            self.offer(true).await;
        }
        Ok(())
    }

    /// Closes everything; with `leave`, tells the server first
    /// (`LeaveRequest{CLIENT_INITIATED, DISCONNECT}`) and lets it flush.
    pub async fn close(self, leave: bool) {
        if leave {
            self.send(Req::Leave(proto::LeaveRequest {
                reason: proto::DisconnectReason::ClientInitiated as i32,
                action: proto::leave_request::Action::Disconnect as i32,
                ..Default::default()
            }));
        }
        let Signal { tx, mut writer, .. } = self.signal;
        drop(tx); // the writer flushes what is queued, closes the socket, and ends
        if tokio::time::timeout(Duration::from_secs(2), &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
        let _ = self.publisher.pc.close().await;
        let _ = self.subscriber.pc.close().await;
    }
}
