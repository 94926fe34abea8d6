//! Two transports in one room exchange tones through a real livekit-server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use callfleet_media::{Event, Options, Transport};
use callfleet_tests::{media::*, test_log};

const AMP: f64 = 0.3;

async fn check_tone(
    listener: &Transport,
    audio: &mut tokio::sync::broadcast::Receiver<callfleet_media::AudioFrame>,
    talker: &str,
    hz: f64,
) {
    // Skip the first 0.5 s (jitter, Opus warm-up), analyse 1 s.
    let pcm = collect_audio(audio, talker, 25, 48_000, Duration::from_secs(20)).await;
    let f = dominant_hz(&pcm, 48_000);
    let level = rms_dbfs(&pcm);
    let source = rms_dbfs(&sine(48_000, hz, AMP, 0, 48_000));
    eprintln!(
        "{} heard {talker}: {f:.1} Hz at {level:.2} dBFS (source {source:.2} dBFS)",
        listener.identity()
    );
    assert!((f - hz).abs() <= 5.0, "dominant {f} Hz, wanted {hz} Hz");
    assert!(
        (level - source).abs() <= 3.0,
        "level {level:.2} dBFS vs source {source:.2} dBFS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tones_cross_the_room_both_ways() {
    test_log::init();
    let server = livekit().await;
    let a = Transport::connect(
        &server.url(),
        &server.token("tones", "alice"),
        Options::loopback(),
    )
    .await
    .expect("alice joins");
    let b = Transport::connect(
        &server.url(),
        &server.token("tones", "bob"),
        Options::loopback(),
    )
    .await
    .expect("bob joins");
    let (mut a_events, mut b_events) = (a.events(), b.events());
    let (mut a_audio, mut b_audio) = (a.remote_audio(), b.remote_audio());
    let stop = Arc::new(AtomicBool::new(false));

    // Alice: 440 Hz from 16 kHz PCM (exercises the resampler).
    let a_track = a
        .publish_audio("agent", 16_000)
        .await
        .expect("alice publishes");
    assert!(a_track.sid().starts_with("TR_"), "sid {}", a_track.sid());
    let a_tone = spawn_tone(a_track, 440.0, AMP, Duration::from_secs(40), stop.clone());
    wait_event(
        &mut b_events,
        Duration::from_secs(15),
        |e| matches!(e, Event::TrackSubscribed { identity, .. } if identity == "alice"),
    )
    .await;
    check_tone(&b, &mut b_audio, "alice", 440.0).await;

    // Bob: 1 kHz from 44.1 kHz PCM.
    let b_track = b
        .publish_audio("caller", 44_100)
        .await
        .expect("bob publishes");
    let b_tone = spawn_tone(b_track, 1000.0, AMP, Duration::from_secs(40), stop.clone());
    wait_event(
        &mut a_events,
        Duration::from_secs(15),
        |e| matches!(e, Event::TrackSubscribed { identity, .. } if identity == "bob"),
    )
    .await;
    check_tone(&a, &mut a_audio, "bob", 1000.0).await;

    stop.store(true, Ordering::Relaxed);
    let _ = tokio::join!(a_tone, b_tone);
    a.leave().await.expect("alice leaves");
    b.leave().await.expect("bob leaves");
    drop(server);
}
