//! The bus's one mapping from outcomes onto JetStream (`Bus::settle`), on a real nats-server:
//! ack, NAK with delay, scheduled follow-up then ack, dead letter then term.

use std::time::Duration;

use callfleet_bus::{Bus, Consumer, Delivery, Outcome, Outgoing};
use callfleet_config::Config;
use callfleet_tests::NatsServer;

async fn bus(nats: &NatsServer) -> Bus {
    let config = Config::from_toml(&format!("[nats]\nurl = \"{}\"\n", nats.url())).expect("config");
    Bus::connect(&config, "test").await.expect("bus")
}

/// Publish a message onto the webhook deliveries (a work queue with a plain consumer).
async fn put(bus: &Bus, id: &str) {
    bus.publish(Outgoing::new(
        format!("webhooks.deliver.{id}"),
        &format!("pub-{id}"),
        format!("body of {id}"),
    ))
    .await
    .expect("publish");
}

async fn next(consumer: &Consumer) -> Option<Delivery> {
    consumer
        .fetch(1, Duration::from_millis(500))
        .await
        .expect("fetch")
        .pop()
}

#[tokio::test(flavor = "multi_thread")]
async fn bus_outcomes_map_onto_jetstream() {
    let nats = NatsServer::start().await;
    let bus = bus(&nats).await;
    let consumer = bus
        .consumer("WEBHOOKS", "notifier-deliveries")
        .await
        .expect("consumer");

    // Ack: gone for good.
    put(&bus, "a").await;
    let d = next(&consumer).await.expect("a");
    assert_eq!(d.subject(), "webhooks.deliver.a");
    assert_eq!(d.delivered(), 1);
    assert!(d.published().is_some());
    d.in_progress().await;
    assert!(bus.settle(&d, Outcome::Ack).await);
    assert!(next(&consumer).await.is_none(), "acked: not redelivered");

    // Retry: back after its delay, one delivery more.
    put(&bus, "b").await;
    let d = next(&consumer).await.expect("b");
    assert!(
        bus.settle(&d, Outcome::retry(Duration::from_secs(1), "test"))
            .await
    );
    assert!(next(&consumer).await.is_none(), "not before its delay");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let again = next(&consumer).await.expect("b again");
    assert_eq!(again.payload().as_ref(), b"body of b");
    assert_eq!(again.delivered(), 2);
    assert!(bus.settle(&again, Outcome::Ack).await);

    // Schedule: the follow-up is published, then the delivery is acked.
    put(&bus, "c").await;
    let d = next(&consumer).await.expect("c");
    let follow_up = Outgoing::new("webhooks.deliver.c2", "pub-c2", "follow-up of c");
    assert!(
        bus.settle(&d, Outcome::schedule(follow_up, Duration::from_secs(5)))
            .await
    );
    let d = next(&consumer).await.expect("the follow-up");
    assert_eq!(d.subject(), "webhooks.deliver.c2");
    assert_eq!(d.delivered(), 1, "c itself was acked");
    assert!(bus.settle(&d, Outcome::Ack).await);

    // Dead: copied to the dead-letter stream with its reason and publisher id, then gone.
    put(&bus, "d").await;
    let d = next(&consumer).await.expect("d");
    let seq_before = bus.dead_letters(10).await.expect("dlq").0;
    assert!(
        bus.settle(&d, Outcome::dead("webhooks.dlq.d", "a test reason"))
            .await
    );
    assert!(next(&consumer).await.is_none(), "dead: not redelivered");
    let (total, letters) = bus.dead_letters(10).await.expect("dlq");
    assert_eq!(total, seq_before + 1);
    let letter = letters.last().expect("the dead letter");
    assert_eq!(letter.subject, "webhooks.dlq.d");
    assert_eq!(letter.original_subject, "webhooks.deliver.d");
    assert_eq!(letter.reason, "a test reason");
    assert_eq!(letter.payload.as_ref(), b"body of d");
    let js = async_nats::jetstream::new(nats.client().await);
    let stored = js
        .get_stream("CALL_DLQ")
        .await
        .expect("dlq stream")
        .get_raw_message(letter.seq)
        .await
        .expect("stored");
    assert_eq!(
        stored
            .headers
            .get("Callfleet-Publisher-Msg-Id")
            .map(|v| v.as_str()),
        Some("pub-d")
    );
    assert_eq!(callfleet_bus::metrics::ack_failures(), 0);
}
