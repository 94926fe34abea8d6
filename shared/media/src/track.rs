//! Audio tracks: the local one the user pushes PCM into, and the task that
//! turns a remote track's RTP into [`AudioFrame`]s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Mutex, broadcast, mpsc};
use webrtc::media::Sample;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
use webrtc::track::track_remote::TrackRemote;

use crate::audio::{Decoder, Encoder, FRAME_SAMPLES, OPUS_RATE};
use crate::error::{Error, Result};
use crate::events::AudioFrame;

/// A published microphone track. Cheap to clone; all clones feed one encoder.
///
/// `push` does not pace: call it in real time (e.g. every 10-20 ms with that
/// much audio), as a microphone would deliver it.
#[derive(Clone, Debug)]
pub struct LocalAudioTrack {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sid: std::sync::Mutex<String>,
    name: String,
    sample_rate: u32,
    rtc: Arc<TrackLocalStaticSample>,
    encoder: Mutex<Encoder>,
    muted: AtomicBool,
    link: Box<dyn SessionLink>,
}

/// How a track reaches the session task that owns its connection (implemented by the
/// session's command channel, in `command`).
pub(crate) trait SessionLink: std::fmt::Debug + Send + Sync {
    /// Ask the session to tell the server the track is (un)muted.
    fn mute(&self, sid: String, muted: bool) -> Result<()>;
    /// The session is over.
    fn is_closed(&self) -> bool;
}

impl LocalAudioTrack {
    pub(crate) fn new(
        sid: String,
        name: String,
        sample_rate: u32,
        rtc: Arc<TrackLocalStaticSample>,
        encoder: Encoder,
        link: Box<dyn SessionLink>,
    ) -> Self {
        let inner = Inner {
            sid: std::sync::Mutex::new(sid),
            name,
            sample_rate,
            rtc,
            encoder: Mutex::new(encoder),
            muted: AtomicBool::new(false),
            link,
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The LiveKit track sid the server assigned (`TR_...`). A rejoin
    /// publishes the track again, under a new sid.
    pub fn sid(&self) -> String {
        self.inner.sid.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The track name given to `publish_audio`.
    pub fn name(&self) -> String {
        self.inner.name.clone()
    }

    pub(crate) fn set_sid(&self, sid: String) {
        if let Ok(mut s) = self.inner.sid.lock() {
            *s = sid;
        }
    }

    /// Client track id (`AddTrackRequest.cid`, the WebRTC track id).
    pub(crate) fn cid(&self) -> String {
        webrtc::track::track_local::TrackLocal::id(self.inner.rtc.as_ref()).to_owned()
    }

    pub(crate) fn rtc(&self) -> &Arc<TrackLocalStaticSample> {
        &self.inner.rtc
    }

    /// The PCM rate `push` expects.
    pub fn sample_rate(&self) -> u32 {
        self.inner.sample_rate
    }

    /// Whether the track is muted.
    pub fn is_muted(&self) -> bool {
        self.inner.muted.load(Ordering::Relaxed)
    }

    /// Sends mono PCM at [`Self::sample_rate`]. Any length works; audio is
    /// sent in 20 ms Opus packets as soon as whole ones are available.
    /// While muted the audio is discarded.
    pub async fn push(&self, pcm: &[i16]) -> Result<()> {
        if self.inner.link.is_closed() {
            return Err(Error::Closed);
        }
        if self.is_muted() {
            return Ok(());
        }
        let mut packets: Vec<Bytes> = Vec::new();
        self.inner
            .encoder
            .lock()
            .await
            .push(pcm, |p| packets.push(Bytes::copy_from_slice(p)))?;
        for data in packets {
            let sample = Sample {
                data,
                duration: Duration::from_millis(20),
                ..Default::default()
            };
            self.inner.rtc.write_sample(&sample).await?;
        }
        Ok(())
    }

    /// Mutes or unmutes: tells the server (other participants see the track
    /// muted) and stops sending audio while muted.
    pub fn set_muted(&self, muted: bool) -> Result<()> {
        self.inner.muted.store(muted, Ordering::Relaxed);
        self.inner.link.mute(self.sid(), muted)
    }
}

/// Reads RTP from a remote Opus track until it ends, publishing 20 ms
/// frames; finally reports the track sid on `done`.
pub(crate) async fn pump_remote(
    track: Arc<TrackRemote>,
    identity: String,
    track_sid: String,
    audio: broadcast::Sender<AudioFrame>,
    done: mpsc::UnboundedSender<String>,
) {
    let mut decoder = match Decoder::new() {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "opus decoder");
            let _ = done.send(track_sid);
            return;
        }
    };
    let mut pcm: Vec<i16> = Vec::with_capacity(FRAME_SAMPLES * 4);
    // Ends when the track or its peer connection closes.
    while let Ok((pkt, _)) = track.read_rtp().await {
        decoder.decode(pkt.header.sequence_number, &pkt.payload, &mut pcm);
        let whole = pcm.len() / FRAME_SAMPLES * FRAME_SAMPLES;
        if whole == 0 {
            continue;
        }
        if audio.receiver_count() > 0 {
            for chunk in pcm[..whole].chunks_exact(FRAME_SAMPLES) {
                let frame = AudioFrame {
                    identity: identity.clone(),
                    track_sid: track_sid.clone(),
                    sample_rate: OPUS_RATE,
                    samples: chunk.to_vec(),
                };
                let _ = audio.send(frame);
            }
        }
        pcm.drain(..whole);
    }
    tracing::debug!(%track_sid, "remote track ended");
    let _ = done.send(track_sid);
}
