//! The two WebRTC peer connections LiveKit uses in dual-PC mode, built on
//! webrtc-rs: the subscriber (server offers, we answer) and the publisher
//! (we offer after `AddTrack`, server answers). Both trickle ICE through
//! the signal connection.

use std::sync::Arc;

use livekit_protocol as proto;
use tokio::sync::mpsc;
use webrtc::api::API;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MIME_TYPE_OPUS, MediaEngine};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::data_channel::RTCDataChannel;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::policy::bundle_policy::RTCBundlePolicy;
use webrtc::peer_connection::policy::rtcp_mux_policy::RTCRtcpMuxPolicy;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::track::track_remote::TrackRemote;

use crate::error::Result;
use crate::options::Options;

/// Which connection a message is about (LiveKit's `SignalTarget`).
pub type Target = proto::SignalTarget;

/// What the peer connections report to the session task.
pub enum PeerEvent {
    /// A local ICE candidate to trickle to the server.
    Candidate { target: Target, json: String },
    /// Connection state changed.
    State {
        target: Target,
        state: RTCPeerConnectionState,
    },
    /// A remote track arrived on the subscriber connection.
    Track(Arc<TrackRemote>),
    /// A data channel message (an encoded `DataPacket`).
    Data(bytes::Bytes),
}

/// The Opus codec LiveKit negotiates (payload type 111, as browsers use).
pub fn opus_capability() -> RTCRtpCodecCapability {
    RTCRtpCodecCapability {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// One webrtc-rs API object per transport: Opus only, default interceptors
/// (NACK, RTCP reports, TWCC), and ICE restricted as the options say.
pub fn build_api(opts: &Options) -> Result<API> {
    let mut media = MediaEngine::default();
    media.register_codec(
        RTCRtpCodecParameters {
            capability: opus_capability(),
            payload_type: 111,
            ..Default::default()
        },
        RTPCodecType::Audio,
    )?;
    let registry = register_default_interceptors(Registry::new(), &mut media)?;
    let mut setting = SettingEngine::default();
    if opts.loopback_only {
        setting.set_include_loopback_candidate(true);
        setting.set_ip_filter(Box::new(|ip| ip.is_loopback()));
        setting.set_network_types(vec![NetworkType::Udp4]);
        setting.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    }
    Ok(webrtc::api::APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(setting)
        .build())
}

/// RTC configuration from the join response (ICE servers unless the options
/// say to ignore them).
pub fn rtc_config(join: &proto::JoinResponse, opts: &Options) -> RTCConfiguration {
    let ice_servers = if opts.use_server_ice_servers {
        join.ice_servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone(),
                credential: s.credential.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };
    RTCConfiguration {
        ice_servers,
        bundle_policy: RTCBundlePolicy::MaxBundle,
        rtcp_mux_policy: RTCRtcpMuxPolicy::Require,
        ..Default::default()
    }
}

/// Hands every message of `dc` to the session as [`PeerEvent::Data`].
pub fn forward_messages(dc: &RTCDataChannel, events: mpsc::UnboundedSender<PeerEvent>) {
    dc.on_message(Box::new(move |m| {
        let _ = events.send(PeerEvent::Data(m.data));
        Box::pin(async {})
    }));
}

/// A peer connection plus the remote candidates that arrived before its
/// remote description (webrtc-rs rejects those, browsers queue them).
pub struct Peer {
    pub pc: Arc<RTCPeerConnection>,
    pending: Vec<RTCIceCandidateInit>,
    has_remote: bool,
}

impl Peer {
    /// Creates the connection and wires its callbacks into `events`.
    pub async fn new(
        api: &API,
        config: RTCConfiguration,
        target: Target,
        events: mpsc::UnboundedSender<PeerEvent>,
    ) -> Result<Self> {
        let pc = Arc::new(api.new_peer_connection(config).await?);
        let tx = events.clone();
        pc.on_ice_candidate(Box::new(move |c| {
            let tx = tx.clone();
            Box::pin(async move {
                let Some(c) = c else { return };
                match c.to_json().map(|init| serde_json::to_string(&init)) {
                    Ok(Ok(json)) => {
                        let _ = tx.send(PeerEvent::Candidate { target, json });
                    }
                    other => tracing::debug!(?other, "cannot serialise local candidate"),
                }
            })
        }));
        let tx = events.clone();
        pc.on_peer_connection_state_change(Box::new(move |state| {
            let _ = tx.send(PeerEvent::State { target, state });
            Box::pin(async {})
        }));
        if target == Target::Subscriber {
            let tx = events.clone();
            pc.on_track(Box::new(move |track, _receiver, _transceiver| {
                let _ = tx.send(PeerEvent::Track(track));
                Box::pin(async {})
            }));
            // The server forwards the room's data on channels it opens here.
            pc.on_data_channel(Box::new(move |dc| {
                forward_messages(&dc, events.clone());
                Box::pin(async {})
            }));
        }
        Ok(Self {
            pc,
            pending: Vec::new(),
            has_remote: false,
        })
    }

    /// Adds a trickled remote candidate (JSON `RTCIceCandidateInit`), or
    /// queues it until the remote description is set. Bad input is logged.
    pub async fn add_candidate(&mut self, json: &str) {
        let init: RTCIceCandidateInit = match serde_json::from_str(json) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable trickle candidate");
                return;
            }
        };
        if init.candidate.is_empty() {
            return; // end-of-candidates marker
        }
        if self.has_remote {
            if let Err(e) = self.pc.add_ice_candidate(init).await {
                tracing::debug!(error = %e, "remote candidate rejected");
            }
        } else if self.pending.len() < 64 {
            self.pending.push(init);
        }
    }

    /// Sets the remote description and flushes queued candidates.
    pub async fn set_remote(&mut self, desc: RTCSessionDescription) -> Result<()> {
        self.pc.set_remote_description(desc).await?;
        self.has_remote = true;
        for init in std::mem::take(&mut self.pending) {
            if let Err(e) = self.pc.add_ice_candidate(init).await {
                tracing::debug!(error = %e, "queued remote candidate rejected");
            }
        }
        Ok(())
    }
}
