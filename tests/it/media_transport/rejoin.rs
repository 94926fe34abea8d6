//! Connection loss. A server restart forgets the session: both sides rejoin
//! on their own and publish again. A cut signal connection with the server
//! up is resumed in place: same participant, same track.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use callfleet_media::{Event, Options, Transport};
use callfleet_tests::{media::*, test_log};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_is_survived_by_rejoin() {
    test_log::init();
    let mut server = livekit().await;
    let a = Transport::connect(
        &server.url(),
        &server.token("again", "alice"),
        Options::loopback(),
    )
    .await
    .expect("alice joins");
    let b = Transport::connect(
        &server.url(),
        &server.token("again", "bob"),
        Options::loopback(),
    )
    .await
    .expect("bob joins");
    let (mut a_events, mut b_events, mut b_audio) = (a.events(), b.events(), b.remote_audio());
    let track = a
        .publish_audio("agent", 24_000)
        .await
        .expect("alice publishes");
    let first_sid = track.sid();
    let stop = Arc::new(AtomicBool::new(false));
    let tone = spawn_tone(
        track.clone(),
        440.0,
        0.3,
        Duration::from_secs(60),
        stop.clone(),
    );
    wait_event(&mut b_events, Duration::from_secs(15), |e| {
        matches!(e, Event::TrackSubscribed { .. })
    })
    .await;
    let _ = collect_audio(&mut b_audio, "alice", 10, 9_600, Duration::from_secs(15)).await;

    server.restart().await;

    for events in [&mut a_events, &mut b_events] {
        let ev = wait_event(events, Duration::from_secs(30), |e| {
            matches!(e, Event::Reconnecting { .. } | Event::Disconnected { .. })
        })
        .await;
        assert!(matches!(ev, Event::Reconnecting { .. }), "{ev:?}");
        let ev = wait_event(events, Duration::from_secs(30), |e| {
            matches!(e, Event::Reconnected | Event::Disconnected { .. })
        })
        .await;
        assert_eq!(ev, Event::Reconnected);
    }
    let again = wait_event(&mut b_events, Duration::from_secs(20), |e| {
        matches!(e, Event::TrackSubscribed { .. })
    })
    .await;
    let Event::TrackSubscribed {
        identity,
        track_sid,
    } = again
    else {
        unreachable!()
    };
    assert_eq!(identity, "alice");
    assert_eq!(
        track_sid,
        track.sid(),
        "new publication reflected in the handle"
    );
    assert_ne!(track_sid, first_sid);

    let pcm = collect_audio(
        &mut b_audio,
        &track_sid,
        25,
        24_000,
        Duration::from_secs(20),
    )
    .await;
    let f = dominant_hz(&pcm, 48_000);
    assert!((f - 440.0).abs() <= 5.0, "after rejoin bob hears {f} Hz");

    stop.store(true, Ordering::Relaxed);
    let _ = tone.await;
    a.leave().await.expect("alice leaves");
    b.leave().await.expect("bob leaves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_cut_with_server_up_is_resumed_in_place() {
    test_log::init();
    let server = livekit().await;
    let rooms = livekit_api::services::room::RoomClient::with_api_key(
        &server.http_url(),
        &server.key,
        &server.secret,
    );
    let proxy = Proxy::start(server.port).await;
    let a = Transport::connect(
        &proxy.ws_url(),
        &server.token("cut", "alice"),
        Options::loopback(),
    )
    .await
    .expect("alice joins through the proxy");
    let b = Transport::connect(
        &server.url(),
        &server.token("cut", "bob"),
        Options::loopback(),
    )
    .await
    .expect("bob joins");
    let (mut a_events, mut b_events, mut b_audio) = (a.events(), b.events(), b.remote_audio());
    let track = a
        .publish_audio("agent", 48_000)
        .await
        .expect("alice publishes");
    let stop = Arc::new(AtomicBool::new(false));
    let tone = spawn_tone(
        track.clone(),
        440.0,
        0.3,
        Duration::from_secs(60),
        stop.clone(),
    );
    wait_event(&mut b_events, Duration::from_secs(15), |e| {
        matches!(e, Event::TrackSubscribed { .. })
    })
    .await;

    let sid = track.sid();
    proxy.sever();
    let ev = wait_event(&mut a_events, Duration::from_secs(30), |e| {
        matches!(e, Event::Reconnected | Event::Disconnected { .. })
    })
    .await;
    assert_eq!(ev, Event::Reconnected);
    // Resumed, not rejoined: same track, bob never lost it, and hears it.
    assert_eq!(track.sid(), sid);
    let pcm = collect_audio(&mut b_audio, &sid, 25, 24_000, Duration::from_secs(20)).await;
    assert!((dominant_hz(&pcm, 48_000) - 440.0).abs() <= 5.0);
    while let Ok(ev) = b_events.try_recv() {
        assert!(
            !matches!(
                ev,
                Event::TrackUnsubscribed { .. } | Event::ParticipantLeft { .. }
            ),
            "bob saw {ev:?} during alice's resume"
        );
    }

    // The server kept exactly one alice.
    let ps = rooms.list_participants("cut").await.expect("list");
    let alices = ps.iter().filter(|p| p.identity == "alice").count();
    assert_eq!(alices, 1, "{ps:?}");

    stop.store(true, Ordering::Relaxed);
    let _ = tone.await;
    a.leave().await.expect("alice leaves");
    b.leave().await.expect("bob leaves");
}
