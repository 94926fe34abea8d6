//! A server that stops answering (SIGSTOP: sockets open, no pongs) is
//! detected by the ping timeout the join response announced.

use std::time::{Duration, Instant};

use callfleet_media::{Event, Options, Transport};
use callfleet_tests::{media::*, test_log};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_server_hits_ping_timeout() {
    test_log::init();
    let server = livekit().await;
    // No rejoin: the frozen server would accept TCP and stall every attempt.
    let opts = Options {
        reconnect_attempts: 0,
        ..Options::loopback()
    };
    let a = Transport::connect(&server.url(), &server.token("ping", "alice"), opts)
        .await
        .expect("alice joins");
    let mut events = a.events();
    // Healthy for a while: pings are answered, nothing happens.
    let quiet = tokio::time::timeout(Duration::from_secs(6), async {
        loop {
            if let Ok(Event::Disconnected { reason }) = events.recv().await {
                return reason;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "disconnected while healthy: {quiet:?}");

    server.signal("STOP");
    let frozen = Instant::now();
    let ev = wait_event(&mut events, Duration::from_secs(40), |e| {
        matches!(e, Event::Disconnected { .. })
    })
    .await;
    server.signal("CONT");
    eprintln!("{ev:?} after {:?}", frozen.elapsed());
    assert_eq!(
        ev,
        Event::Disconnected {
            reason: "ping timeout".into()
        }
    );
    assert!(a.is_closed());
}
