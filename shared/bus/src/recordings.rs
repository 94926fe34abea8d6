//! Call recordings in the `recordings` object store. While a call runs, its recorder stores
//! the Ogg stream as numbered segments (`<call_id>/000000`, `…/000001`, …), each a run of whole
//! pages; whoever finishes the call joins the segments in order into `<call_id>.ogg` (any prefix
//! of them is a playable file, so a worker killed mid-call leaves something playable) and
//! deletes them. The ingress reads the joined file, whole or by byte range.

use std::{collections::HashMap, pin::Pin};

use async_nats::jetstream::object_store::{
    GetErrorKind, InfoErrorKind, ObjectInfo, ObjectMetadata,
};
use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt as _;
use tokio::io::{AsyncRead, AsyncReadExt as _};

use crate::{Bus, BusError};

/// A recording as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecording {
    /// The object's name in the `recordings` bucket.
    pub key: String,
    pub bytes: u64,
    /// Hex SHA-256 of the object (from the object store's own digest).
    pub sha256: Option<String>,
    pub duration_seconds: Option<f64>,
    /// The recording ends before the call did (its worker was lost).
    pub partial: bool,
}

/// What the finisher knows of the joined file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordingMeta {
    pub duration_seconds: f64,
    pub partial: bool,
}

/// A stored recording's bytes, whole or a range of them.
pub struct RecordingBody {
    pub info: StoredRecording,
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
}

/// The object name of a call's recording.
pub fn recording_key(call_id: &str) -> String {
    format!("{call_id}.ogg")
}

fn segment_name(call_id: &str, index: u32) -> String {
    format!("{call_id}/{index:06}")
}

fn io(e: impl std::error::Error + Send + Sync + 'static) -> std::io::Error {
    std::io::Error::other(e)
}

impl Bus {
    /// Store segment `index` of a call's recording (replacing one of the same index).
    pub async fn put_recording_segment(
        &self,
        call_id: &str,
        index: u32,
        bytes: Bytes,
    ) -> Result<(), BusError> {
        let mut data: &[u8] = &bytes;
        self.recordings
            .put(segment_name(call_id, index).as_str(), &mut data)
            .await
            .map_err(|e| BusError::js("recording segment put", e))?;
        Ok(())
    }

    /// Segment `index` of a call's recording, if stored.
    pub async fn recording_segment(
        &self,
        call_id: &str,
        index: u32,
    ) -> Result<Option<Bytes>, BusError> {
        let mut object = match self.recordings.get(segment_name(call_id, index)).await {
            Ok(o) => o,
            Err(e) if e.kind() == GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BusError::js("recording segment get", e)),
        };
        let mut buf = Vec::with_capacity(object.info().size);
        object
            .read_to_end(&mut buf)
            .await
            .map_err(|e| BusError::js("recording segment read", e))?;
        Ok(Some(Bytes::from(buf)))
    }

    /// Join segments `0..segments` in order into the call's recording, then delete them.
    pub async fn finish_recording(
        &self,
        call_id: &str,
        segments: u32,
        meta: RecordingMeta,
    ) -> Result<StoredRecording, BusError> {
        let store = self.recordings.clone();
        let call = call_id.to_owned();
        let joined = futures::stream::iter(0..segments).then(move |i| {
            let (store, name) = (store.clone(), segment_name(&call, i));
            async move {
                let mut object = store.get(&name).await.map_err(io)?;
                let mut buf = Vec::new();
                object.read_to_end(&mut buf).await?;
                Ok::<_, std::io::Error>(Bytes::from(buf))
            }
        });
        let mut reader = tokio_util::io::StreamReader::new(Box::pin(joined));
        let object = ObjectMetadata {
            name: recording_key(call_id),
            description: Some("call recording: Ogg Opus, channel 1 callee, channel 2 agent".into()),
            metadata: HashMap::from([
                ("duration_seconds".into(), meta.duration_seconds.to_string()),
                ("partial".into(), meta.partial.to_string()),
            ]),
            ..Default::default()
        };
        let info = self
            .recordings
            .put(object, &mut reader)
            .await
            .map_err(|e| BusError::js("recording put", e))?;
        for i in 0..segments {
            if let Err(e) = self.recordings.delete(segment_name(call_id, i)).await {
                tracing::debug!(call.id = %call_id, segment = i, error = %e, "recording segment not deleted; it expires with the bucket's max age");
            }
        }
        Ok(stored(&info))
    }

    /// The call's recording, if one was stored.
    pub async fn recording_info(&self, call_id: &str) -> Result<Option<StoredRecording>, BusError> {
        match self.recordings.info(recording_key(call_id)).await {
            Ok(info) => Ok(Some(stored(&info))),
            Err(e) if e.kind() == InfoErrorKind::NotFound => Ok(None),
            Err(e) => Err(BusError::js("recording info", e)),
        }
    }

    /// The call's recording, or bytes `start..end` of it (the caller checked the range
    /// against [`StoredRecording::bytes`]); `None` if there is none.
    pub async fn get_recording(
        &self,
        call_id: &str,
        range: Option<(u64, u64)>,
    ) -> Result<Option<RecordingBody>, BusError> {
        let mut object = match self.recordings.get(recording_key(call_id)).await {
            Ok(o) => o,
            Err(e) if e.kind() == GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BusError::js("recording get", e)),
        };
        let info = stored(object.info());
        let reader: Pin<Box<dyn AsyncRead + Send>> = match range {
            None => Box::pin(object),
            Some((start, end)) => {
                let skipped =
                    tokio::io::copy(&mut (&mut object).take(start), &mut tokio::io::sink())
                        .await
                        .map_err(|e| BusError::js("recording read", e))?;
                debug_assert_eq!(skipped, start);
                Box::pin(object.take(end.saturating_sub(start)))
            }
        };
        Ok(Some(RecordingBody { info, reader }))
    }
}

fn stored(info: &ObjectInfo) -> StoredRecording {
    let sha256 = info
        .digest
        .as_deref()
        .and_then(|d| d.strip_prefix("SHA-256="))
        .and_then(|b64| base64::engine::general_purpose::URL_SAFE.decode(b64).ok())
        .map(|raw| raw.iter().map(|b| format!("{b:02x}")).collect());
    StoredRecording {
        key: info.name.clone(),
        bytes: info.size as u64,
        sha256,
        duration_seconds: info
            .metadata
            .get("duration_seconds")
            .and_then(|d| d.parse().ok()),
        partial: info.metadata.get("partial").is_some_and(|p| p == "true"),
    }
}
