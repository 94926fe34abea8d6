//! Leaving: the other side sees the participant and its track go, and the
//! server keeps nobody behind. Losing the server is reported.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use callfleet_media::{Event, Options, Transport};
use callfleet_tests::{media::*, test_log};
use livekit_api::services::room::RoomClient;

/// Identities the room service lists, polled until `want` holds (bounded).
async fn wait_participants(rooms: &RoomClient, room: &str, want: &[&str]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut last = Vec::new();
    while tokio::time::Instant::now() < deadline {
        match rooms.list_participants(room).await {
            Ok(ps) => {
                last = ps.into_iter().map(|p| p.identity).collect::<Vec<_>>();
                last.sort();
                if last == want {
                    return;
                }
            }
            Err(e) => eprintln!("list_participants: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
    }
    panic!("room {room} lists {last:?}, wanted {want:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_is_seen_by_the_other_side_and_the_server() {
    test_log::init();
    let server = livekit().await;
    let rooms = RoomClient::with_api_key(&server.http_url(), &server.key, &server.secret);
    let a = Transport::connect(
        &server.url(),
        &server.token("leave", "alice"),
        Options::loopback(),
    )
    .await
    .expect("alice joins");
    let b = Transport::connect(
        &server.url(),
        &server.token("leave", "bob"),
        Options::loopback(),
    )
    .await
    .expect("bob joins");
    let (mut a_events, mut b_events) = (a.events(), b.events());
    wait_event(&mut b_events, Duration::from_secs(10), |e| {
        *e == Event::ParticipantJoined {
            identity: "alice".into(),
        }
    })
    .await;

    let track = a
        .publish_audio("agent", 48_000)
        .await
        .expect("alice publishes");
    let sid = track.sid().to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let tone = spawn_tone(track, 440.0, 0.3, Duration::from_secs(30), stop.clone());
    let subscribed = wait_event(&mut b_events, Duration::from_secs(15), |e| {
        matches!(e, Event::TrackSubscribed { .. })
    })
    .await;
    assert_eq!(
        subscribed,
        Event::TrackSubscribed {
            identity: "alice".into(),
            track_sid: sid.clone()
        }
    );
    wait_participants(&rooms, "leave", &["alice", "bob"]).await;

    a.leave().await.expect("alice leaves");
    assert!(a.is_closed());
    wait_event(
        &mut a_events,
        Duration::from_secs(5),
        |e| matches!(e, Event::Disconnected { reason } if reason == "client left"),
    )
    .await;
    let unsubscribed = wait_event(&mut b_events, Duration::from_secs(10), |e| {
        matches!(e, Event::TrackUnsubscribed { .. })
    })
    .await;
    assert_eq!(
        unsubscribed,
        Event::TrackUnsubscribed {
            identity: "alice".into(),
            track_sid: sid
        }
    );
    wait_event(&mut b_events, Duration::from_secs(10), |e| {
        *e == Event::ParticipantLeft {
            identity: "alice".into(),
        }
    })
    .await;
    let _ = tone.await;
    wait_participants(&rooms, "leave", &["bob"]).await;

    b.leave().await.expect("bob leaves");
    b.leave().await.expect("second leave is harmless");
    wait_participants(&rooms, "leave", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_server_is_reported() {
    test_log::init();
    let server = livekit().await;
    let opts = Options {
        reconnect_attempts: 0,
        ..Options::loopback()
    };
    let a = Transport::connect(&server.url(), &server.token("loss", "alice"), opts)
        .await
        .expect("alice joins");
    let mut events = a.events();
    drop(server); // kills the process
    let ev = wait_event(&mut events, Duration::from_secs(30), |e| {
        matches!(e, Event::Disconnected { .. })
    })
    .await;
    eprintln!("after server loss: {ev:?}");
    assert!(a.is_closed() || matches!(ev, Event::Disconnected { .. }));
    assert!(a.publish_audio("late", 48_000).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_is_refused() {
    test_log::init();
    let server = livekit().await;
    let err = Transport::connect(&server.url(), "not-a-token", Options::loopback())
        .await
        .expect_err("refused");
    eprintln!("bad token: {err}");
    assert!(
        matches!(err, callfleet_media::Error::JoinRefused { status: 401, .. }),
        "{err:?}"
    );
}
