//! DTMF between two transports: a key sent as a `SipDtmf` data packet reaches the other
//! participant as `Event::Dtmf`, keys in order and named by the sender's identity.

use std::time::Duration;

use callfleet_media::{Error, Event, Options, Transport};
use callfleet_tests::{media::*, test_log};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_reaches_another_participant_in_order() {
    test_log::init();
    let server = livekit().await;
    let a = Transport::connect(
        &server.url(),
        &server.token("dtmf", "alice"),
        Options::loopback(),
    )
    .await
    .expect("alice joins");
    let b = Transport::connect(
        &server.url(),
        &server.token("dtmf", "bob"),
        Options::loopback(),
    )
    .await
    .expect("bob joins");
    let mut events = b.events();
    wait_event_named(
        &mut events,
        Duration::from_secs(15),
        "alice's arrival",
        |e| matches!(e, Event::ParticipantJoined { identity } if identity == "alice"),
    )
    .await;

    assert!(
        matches!(a.send_dtmf('x').await, Err(Error::InvalidArgument(_))),
        "x is no key"
    );
    assert!(
        matches!(
            a.send_dtmf_digits("12e").await,
            Err(Error::InvalidArgument(_))
        ),
        "every key is checked before the first is sent"
    );
    // Nothing is published: the first key negotiates alice's publisher connection.
    a.send_dtmf_digits("1#d")
        .await
        .expect("alice presses 1 # D");
    let mut got = String::new();
    while got.len() < 3 {
        let e = wait_event_named(&mut events, Duration::from_secs(15), "a DTMF event", |e| {
            matches!(e, Event::Dtmf { .. })
        })
        .await;
        if let Event::Dtmf { identity, digit } = e {
            assert_eq!(identity, "alice", "the server names the sender");
            got.push(digit);
        }
    }
    assert_eq!(got, "1#D", "keys in order, A-D upper case");
    a.leave().await.expect("alice leaves");
    b.leave().await.expect("bob leaves");
}
