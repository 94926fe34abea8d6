//! The recorder of one call: a task that takes both sides' frames from a [`Tap`], runs the
//! call's clock (one slot every 20 ms, a little behind real time so late frames still land in
//! their slot), encodes and segments, and hands segments to an uploader task that stores them
//! while the call goes on. [`Recorder::finish`] ends it; dropping the recorder (the call was
//! taken away) stores what it has and leaves the joining to the call's next holder.

use std::time::Duration;

use callfleet_bus::{Bus, RecordingMeta, StoredRecording};
use callfleet_config::RecordingConfig;
use callfleet_domain::summary::Recording;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::Instant,
};

use crate::{
    CHANNELS, Error, FORMAT,
    ogg_opus::probe,
    segment::{Segment, Segmenter},
    timeline::{SLOT, Side, Timeline},
};

/// One slot of the call's clock.
const SLOT_TIME: Duration = Duration::from_millis(20);
/// How far behind real time slots are cut, so that a frame a little late still lands in its
/// slot (the end of the call is padded to the end, so this changes no length).
const JITTER: Duration = Duration::from_millis(60);
/// Frames queued between the media path and the recorder; beyond it frames are dropped, never
/// waited for.
const TAP_QUEUE: usize = 500;
/// Tries per segment upload.
const UPLOAD_TRIES: u32 = 3;

/// How recordings are made, from the `recording` config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub segment: Duration,
    pub bitrate_bps: u32,
    /// Most segments a call can have (its longest duration over the segment length): bounds
    /// the salvage's probing.
    pub max_segments: u32,
}

impl Settings {
    pub fn new(cfg: &RecordingConfig, max_call: Duration) -> Self {
        let segment = Duration::from_secs(cfg.segment_secs.max(1));
        let max_segments = (max_call.as_secs() / segment.as_secs() + 3).min(u64::from(u32::MAX));
        Self {
            segment,
            bitrate_bps: cfg.bitrate_bps,
            max_segments: max_segments as u32,
        }
    }
}

/// Where the media path hands frames to the recorder. Never blocks: a full queue drops.
#[derive(Clone)]
pub struct Tap {
    tx: mpsc::Sender<(Side, Vec<i16>, u32)>,
}

impl Tap {
    /// A frame of `side`'s mono audio at `rate` Hz.
    pub fn push(&self, side: Side, pcm: &[i16], rate: u32) {
        let _full_or_closed = self.tx.try_send((side, pcm.to_vec(), rate));
    }
}

/// A recording in progress.
pub struct Recorder {
    call_id: String,
    tap: Tap,
    stop: Option<oneshot::Sender<Instant>>,
    task: Option<JoinHandle<Result<StoredRecording, Error>>>,
}

impl Recorder {
    /// Start recording `call_id`, whose call (and the recording's clock) started at `start`.
    pub fn start(
        bus: Bus,
        settings: &Settings,
        call_id: &str,
        start: Instant,
    ) -> Result<Self, Error> {
        let segmenter = Segmenter::new(serial(call_id), settings.bitrate_bps, settings.segment)?;
        let (tx, frames) = mpsc::channel(TAP_QUEUE);
        let (stop, stopped) = oneshot::channel();
        let clock = Clock {
            frames,
            stopped,
            start,
            timeline: Timeline::default(),
            segmenter,
            slot: [0; 2 * SLOT],
        };
        let task = tokio::spawn(clock.run(bus, call_id.to_owned()));
        Ok(Self {
            call_id: call_id.to_owned(),
            tap: Tap { tx },
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn tap(&self) -> Tap {
        self.tap.clone()
    }

    /// End the recording at `end` (the call's end): the summary's recording.
    pub async fn finish(mut self, end: Instant) -> Recording {
        if let Some(stop) = self.stop.take() {
            let _gone = stop.send(end);
        }
        let joined = match self.task.take() {
            Some(task) => task.await.map_err(|e| e.to_string()),
            None => Err("the recorder was not running".into()),
        };
        match joined {
            Ok(Ok(stored)) => recording(stored),
            Ok(Err(e)) => failed(&self.call_id, &e),
            Err(e) => failed(&self.call_id, &e),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Not finished: the task sees the stop dropped, stores what it has, and leaves the
        // joining to whoever closes the call.
        self.stop.take();
    }
}

/// The recorder task's state.
struct Clock {
    frames: mpsc::Receiver<(Side, Vec<i16>, u32)>,
    stopped: oneshot::Receiver<Instant>,
    start: Instant,
    timeline: Timeline,
    segmenter: Segmenter,
    slot: [i16; 2 * SLOT],
}

impl Clock {
    async fn run(mut self, bus: Bus, call_id: String) -> Result<StoredRecording, Error> {
        let (segments, uploaded) = mpsc::unbounded_channel();
        let uploader = tokio::spawn(upload(bus.clone(), call_id.clone(), uploaded));
        let mut tick = tokio::time::interval(SLOT_TIME);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let end = loop {
            tokio::select! {
                Some((side, pcm, rate)) = self.frames.recv() => self.timeline.push(side, &pcm, rate),
                _ = tick.tick() => {
                    let now = Instant::now().checked_sub(JITTER).unwrap_or(self.start);
                    self.advance_to(now, &segments)?;
                }
                end = &mut self.stopped => break end.ok(),
            }
        };
        let Some(end) = end else {
            // Abandoned: store the pages so far (one more slot ends the page), never join.
            if let Ok(s) = self.segmenter.flush() {
                let _ = segments.send(s);
            }
            tracing::debug!(call.id = %call_id, "recording abandoned; its segments stay for the call's next holder");
            drop(segments);
            let _stored = uploader.await;
            return Err(Error::Ogg(std::io::Error::other("recording abandoned")));
        };
        while let Ok((side, pcm, rate)) = self.frames.try_recv() {
            self.timeline.push(side, &pcm, rate);
        }
        self.advance_to(end, &segments)?;
        let duration_seconds = self.segmenter.duration_seconds();
        let dropped = self.timeline.dropped();
        let _ = segments.send(self.segmenter.finish()?);
        drop(segments);
        let (stored, failure) = uploader
            .await
            .unwrap_or((0, Some("the uploader stopped".into())));
        if dropped > 0 {
            tracing::debug!(call.id = %call_id, samples = dropped, "recording: audio ahead of the clock dropped");
        }
        if let Some(why) = &failure {
            tracing::warn!(call.id = %call_id, error = %why, "recording: a segment was not stored; the recording ends before it");
        }
        let meta = RecordingMeta {
            duration_seconds: if failure.is_some() {
                stored_duration(&bus, &call_id, stored).await
            } else {
                duration_seconds
            },
            partial: failure.is_some(),
        };
        Ok(bus.finish_recording(&call_id, stored, meta).await?)
    }

    /// Cut every slot that ended by `now`.
    fn advance_to(
        &mut self,
        now: Instant,
        segments: &mpsc::UnboundedSender<Segment>,
    ) -> Result<(), Error> {
        let elapsed = now.saturating_duration_since(self.start);
        let due = (elapsed.as_micros() + SLOT_TIME.as_micros() / 2) / SLOT_TIME.as_micros();
        let due = u64::try_from(due).unwrap_or(u64::MAX);
        let mut done = self.segmenter.slots();
        // One iteration per 20 ms of call, bounded by the elapsed time.
        while done < due {
            self.timeline.slot(&mut self.slot);
            if let Some(s) = self.segmenter.push(&self.slot)? {
                let _ = segments.send(s);
            }
            done += 1;
        }
        Ok(())
    }
}

/// Store segments in order as they come; returns how many from the first were stored, and
/// why the first that was not failed.
async fn upload(
    bus: Bus,
    call_id: String,
    mut segments: mpsc::UnboundedReceiver<Segment>,
) -> (u32, Option<String>) {
    let mut stored = 0;
    let mut failure = None;
    while let Some(s) = segments.recv().await {
        let mut last = None;
        for attempt in 0..UPLOAD_TRIES {
            match bus
                .put_recording_segment(&call_id, s.index, s.bytes.clone())
                .await
            {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => {
                    last = Some(e.to_string());
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
        match last {
            None if failure.is_none() => stored = s.index + 1,
            None => {}
            Some(e) => {
                failure.get_or_insert(format!("segment {} not stored: {e}", s.index));
            }
        }
    }
    (stored, failure)
}

/// The duration of the first `segments` stored segments, read back.
async fn stored_duration(bus: &Bus, call_id: &str, segments: u32) -> f64 {
    let mut file = Vec::new();
    for i in 0..segments {
        match bus.recording_segment(call_id, i).await {
            Ok(Some(b)) => file.extend_from_slice(&b),
            _ => break,
        }
    }
    probe(&file).map_or(0.0, |p| p.duration_seconds())
}

/// Close the recording of a call whose worker was lost: join what it stored, marked
/// `partial`. Run by the worker that takes the call over.
pub async fn salvage(bus: &Bus, settings: &Settings, call_id: &str) -> Recording {
    match bus.recording_info(call_id).await {
        Ok(Some(done)) => return recording(done),
        Ok(None) => {}
        Err(e) => return failed(call_id, &e),
    }
    let mut file = Vec::new();
    let mut segments = 0;
    for i in 0..settings.max_segments {
        match bus.recording_segment(call_id, i).await {
            Ok(Some(b)) => {
                file.extend_from_slice(&b);
                segments = i + 1;
            }
            Ok(None) => break,
            Err(e) => return failed(call_id, &e),
        }
    }
    let Some(p) = probe(&file).filter(|_| segments > 0) else {
        return Recording {
            error: Some("no audio was stored before the call's worker was lost".into()),
            ..base()
        };
    };
    let meta = RecordingMeta {
        duration_seconds: p.duration_seconds(),
        partial: true,
    };
    match bus.finish_recording(call_id, segments, meta).await {
        Ok(stored) => {
            tracing::info!(call.id = %call_id, segments, "partial recording of a lost worker joined");
            recording(stored)
        }
        Err(e) => failed(call_id, &e),
    }
}

/// A requested recording on this backend, before anything is known.
pub fn base() -> Recording {
    Recording {
        requested: true,
        backend: Some("nats".into()),
        format: Some(FORMAT.into()),
        channels: CHANNELS.iter().map(ToString::to_string).collect(),
        ..Recording::default()
    }
}

fn recording(s: StoredRecording) -> Recording {
    Recording {
        key: Some(s.key),
        bytes: Some(s.bytes),
        duration_seconds: s.duration_seconds,
        sha256: s.sha256,
        partial: s.partial,
        ..base()
    }
}

fn failed(call_id: &str, e: &dyn std::fmt::Display) -> Recording {
    tracing::warn!(call.id = %call_id, error = %e, "recording failed; the call went on");
    Recording {
        error: Some(format!("recording failed: {e}")),
        ..base()
    }
}

/// The Ogg stream's serial number: FNV-1a of the call id.
fn serial(call_id: &str) -> u32 {
    call_id.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}
