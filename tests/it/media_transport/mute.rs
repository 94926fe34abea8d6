//! Muting stops the audio and tells the server; unmuting brings both back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use callfleet_media::{Event, Options, Transport};
use callfleet_tests::{media::*, test_log};
use livekit_api::services::room::RoomClient;

/// Polls the room service (bounded) until alice's track shows `muted`.
async fn wait_server_muted(rooms: &RoomClient, muted: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let seen = rooms.list_participants("mute").await.ok().and_then(|ps| {
            let alice = ps.into_iter().find(|p| p.identity == "alice")?;
            alice.tracks.first().map(|t| t.muted)
        });
        if seen == Some(muted) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
    }
    panic!("server never showed alice's track muted={muted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_silences_and_is_reported_to_the_server() {
    test_log::init();
    let server = livekit().await;
    let rooms = RoomClient::with_api_key(&server.http_url(), &server.key, &server.secret);
    let a = Transport::connect(
        &server.url(),
        &server.token("mute", "alice"),
        Options::loopback(),
    )
    .await
    .expect("alice joins");
    let b = Transport::connect(
        &server.url(),
        &server.token("mute", "bob"),
        Options::loopback(),
    )
    .await
    .expect("bob joins");
    let (mut b_events, mut b_audio) = (b.events(), b.remote_audio());
    let track = a
        .publish_audio("agent", 8_000)
        .await
        .expect("alice publishes");
    let stop = Arc::new(AtomicBool::new(false));
    let tone = spawn_tone(
        track.clone(),
        440.0,
        0.3,
        Duration::from_secs(40),
        stop.clone(),
    );
    wait_event(&mut b_events, Duration::from_secs(15), |e| {
        matches!(e, Event::TrackSubscribed { .. })
    })
    .await;
    let pcm = collect_audio(&mut b_audio, "alice", 10, 9_600, Duration::from_secs(15)).await;
    assert!(
        (dominant_hz(&pcm, 48_000) - 440.0).abs() <= 5.0,
        "8 kHz source heard at 440 Hz"
    );

    track.set_muted(true).expect("mute");
    assert!(track.is_muted());
    wait_server_muted(&rooms, true).await;
    // Drain what was in flight; from then on nothing audible may arrive for a
    // second (the SFU itself sends a few Opus silence frames on mute).
    let _ = tokio::time::timeout(Duration::from_millis(300), async {
        while b_audio.recv().await.is_ok() {}
    })
    .await;
    let (mut loud, mut frames) = (0, 0);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Ok(f) = b_audio.recv().await {
            frames += 1;
            if rms_dbfs(&f.samples) > -60.0 {
                loud += 1;
            }
        }
    })
    .await;
    eprintln!("while muted: {frames} frames, {loud} audible");
    assert_eq!(loud, 0, "audible frames while muted");

    track.set_muted(false).expect("unmute");
    wait_server_muted(&rooms, false).await;
    let pcm = collect_audio(&mut b_audio, "alice", 5, 9_600, Duration::from_secs(10)).await;
    assert!((dominant_hz(&pcm, 48_000) - 440.0).abs() <= 5.0);

    stop.store(true, Ordering::Relaxed);
    let _ = tone.await;
    a.leave().await.expect("alice leaves");
    b.leave().await.expect("bob leaves");
}
