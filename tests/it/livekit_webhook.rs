//! `POST /livekit/webhook` against the real signer: livekit-server itself (its `webhook.urls`
//! point at the test's ingress, `webhook.api_key` is its own key), and requests minted with
//! livekit-api's `AccessToken` for the bad cases. Nothing but a verified event may reach
//! `LIVEKIT_EVENTS`, each exactly once.

use std::time::Duration;

use base64::Engine;
use callfleet_tests::{LiveKitServer, wait_for, wait_for_logged};
use livekit_api::{
    access_token::AccessToken,
    services::room::{CreateRoomOptions, RoomClient},
};
use serde_json::{Value, json};
use sha2::Digest;

use crate::rig::Rig;

const KEY: &str = "lk-webhook-key";
const SECRET: &str = "lk-webhook-secret-0123456789abcdef";

/// One message of `LIVEKIT_EVENTS`: subject, body, `Nats-Msg-Id`.
struct Stored {
    subject: String,
    body: Value,
    raw: Vec<u8>,
    msg_id: String,
}

async fn livekit_events(rig: &Rig) -> Vec<Stored> {
    rig.stored("LIVEKIT_EVENTS")
        .await
        .into_iter()
        .map(|m| Stored {
            msg_id: m
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default(),
            subject: m.subject.to_string(),
            body: serde_json::from_slice(&m.payload).unwrap_or(Value::Null),
            raw: m.payload.to_vec(),
        })
        .collect()
}

fn sha256_b64(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body))
}

/// A token as livekit-server mints one for `body`.
pub(crate) fn sign(key: &str, secret: &str, body: &[u8]) -> String {
    AccessToken::with_api_key(key, secret)
        .with_ttl(Duration::from_secs(300))
        .with_sha256(&sha256_b64(body))
        .to_jwt()
        .expect("sign")
}

/// A JWT signed by hand (HS256 with `SECRET`), for claims `AccessToken` cannot make (expired).
fn hs256(claims: &Value) -> String {
    use hmac::Mac;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let signing_input = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()))
}

/// An event body in LiveKit's protojson.
fn event_body(event: &str, id: &str, created_at: i64, room: &str) -> String {
    json!({"event": event, "id": id, "createdAt": created_at.to_string(), "room": {"name": room}})
        .to_string()
}

/// POST `body` to the ingress's `/livekit/webhook` with `auth` as its Authorization header:
/// the status and the JSON answer.
pub(crate) async fn post(
    rig: &Rig,
    auth: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let mut req = rig
        .http
        .post(rig.url("/livekit/webhook"))
        .header("content-type", "application/webhook+json");
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    let resp = req
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /livekit/webhook: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn counts(rig: &Rig) -> (u64, u64) {
    (
        rig.stream_messages("LIVEKIT_EVENTS").await,
        rig.stream_messages("CALL_JOBS").await,
    )
}

/// An ingress that knows LiveKit's key and secret, with no livekit-server behind it.
async fn signed_rig() -> Rig {
    let mut rig = Rig::new(false).await;
    rig.fleet.set("LIVEKIT_URL", "ws://127.0.0.1:9");
    rig.fleet.set("LIVEKIT_API_KEY", KEY);
    rig.fleet.set("LIVEKIT_API_SECRET", SECRET);
    rig.start_ingress().await;
    rig
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[tokio::test(flavor = "multi_thread")]
async fn lk_webhook_real_livekit_events_land_once_each() {
    let mut rig = Rig::with_livekit_webhooks().await;
    rig.start_ingress().await;
    let lk: &LiveKitServer = rig._livekit.as_ref().expect("livekit-server");
    let room = format!("lkw-{}", uuid::Uuid::new_v4().simple());
    let rooms = RoomClient::with_api_key(&lk.http_url(), &lk.key, &lk.secret);
    rooms
        .create_room(
            &room,
            CreateRoomOptions {
                empty_timeout: 300,
                ..Default::default()
            },
        )
        .await
        .expect("CreateRoom");
    let alice = callfleet_media::Transport::connect(
        &lk.url(),
        &lk.token(&room, "alice"),
        callfleet_media::Options::loopback(),
    )
    .await
    .expect("alice joins");
    let of_room = &|events: &[Stored], name: &str| {
        events
            .iter()
            .filter(|e| {
                e.subject == format!("livekit.events.{name}") && e.body["room"]["name"] == room
            })
            .count()
    };
    let rig_ref = &rig;
    wait_for_logged(
        "participant_joined for alice on LIVEKIT_EVENTS",
        Duration::from_secs(20),
        &[&lk.log_path()],
        || async move {
            let events = livekit_events(rig_ref).await;
            (of_room(&events, "participant_joined") >= 1).then_some(())
        },
    )
    .await;
    rooms.delete_room(&room).await.expect("DeleteRoom");
    wait_for_logged(
        "room_started, participant_joined and room_finished on LIVEKIT_EVENTS",
        Duration::from_secs(20),
        &[&lk.log_path()],
        || async move {
            let events = livekit_events(rig_ref).await;
            ["room_started", "participant_joined", "room_finished"]
                .iter()
                .all(|name| of_room(&events, name) >= 1)
                .then_some(())
        },
    )
    .await;
    drop(alice);
    let events = livekit_events(&rig).await;
    for name in ["room_started", "participant_joined", "room_finished"] {
        assert_eq!(of_room(&events, name), 1, "{name} exactly once");
    }
    for e in events.iter().filter(|e| e.body["room"]["name"] == room) {
        assert_eq!(
            e.msg_id,
            e.body["id"].as_str().unwrap_or_default(),
            "Nats-Msg-Id is LiveKit's event id"
        );
        assert!(e.msg_id.starts_with("EV_"), "{}", e.msg_id);
    }
    let joined = events
        .iter()
        .find(|e| e.subject == "livekit.events.participant_joined")
        .expect("joined");
    assert_eq!(joined.body["participant"]["identity"], "alice");

    // A replay of what LiveKit sent (same body, a valid token for it) is a duplicate.
    let before = counts(&rig).await;
    let token = sign(&lk.key, &lk.secret, &joined.raw);
    let (status, answer) = post(&rig, Some(&token), joined.raw.clone()).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("duplicate")),
        "{answer}"
    );
    assert_eq!(counts(&rig).await, before, "a replay publishes nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn lk_webhook_unverified_requests_are_refused_and_publish_nothing() {
    let rig = signed_rig().await;
    let id = format!("EV_{}", uuid::Uuid::new_v4().simple());
    let body = event_body("participant_joined", &id, now(), "room-b");
    let baseline = counts(&rig).await;

    // Wrong secret, wrong key, no header, an expired token, a tampered body.
    let refused = |token: String, names: &'static str| {
        let (rig, body) = (&rig, body.clone());
        async move {
            let (status, answer) = post(rig, Some(&token), body).await;
            assert_eq!(status, 401, "{answer}");
            let message = answer["message"].as_str().unwrap_or_default();
            assert!(message.contains(names), "{names} in {answer}");
            assert!(
                !answer.to_string().contains(SECRET),
                "the secret never appears"
            );
        }
    };
    refused(
        sign(KEY, "not-the-secret", body.as_bytes()),
        "livekit.api_secret",
    )
    .await;
    refused(sign("other-key", SECRET, body.as_bytes()), "issuer").await;
    let (status, answer) = post(&rig, None, body.clone()).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("unauthorized")),
        "{answer}"
    );
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Authorization"),
        "{answer}"
    );
    let expired = hs256(&json!({
        "iss": KEY, "nbf": now() - 1200, "exp": now() - 600, "sha256": sha256_b64(body.as_bytes()),
    }));
    let (status, answer) = post(&rig, Some(&expired), body.clone()).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{answer}"
    );
    let token = sign(KEY, SECRET, body.as_bytes());
    let tampered = body.replace("room-b", "room-x");
    let (status, answer) = post(&rig, Some(&token), tampered).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("SHA-256"),
        "{answer}"
    );
    let (status, answer) = post(&rig, Some("Bearer not.a.jwt"), body.clone()).await;
    assert_eq!(status, 401, "{answer}");
    // Signed, but not a LiveKit event: field-level errors.
    for bad in [r#"[1, 2]"#, r#"{"event": "room.started", "id": "EV 1"}"#] {
        let (status, answer) = post(&rig, Some(&sign(KEY, SECRET, bad.as_bytes())), bad).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(
            answer["fields"].as_array().is_some_and(|f| !f.is_empty()),
            "{answer}"
        );
    }
    assert_eq!(
        counts(&rig).await,
        baseline,
        "nothing was published by a refused request"
    );

    // The genuine request lands once; its replay is a duplicate.
    let (status, answer) = post(&rig, Some(&token), body.clone()).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("accepted")),
        "{answer}"
    );
    assert_eq!(answer["id"], id.as_str());
    let after = counts(&rig).await;
    assert_eq!(after, (baseline.0 + 1, baseline.1));
    let (status, answer) = post(&rig, Some(&format!("Bearer {token}")), body.clone()).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("duplicate")),
        "{answer}"
    );
    assert_eq!(counts(&rig).await, after, "a replay publishes nothing");

    // Older than livekit.webhook_max_age_secs: ignored (a replay outside the dedup window).
    let stale = event_body("participant_joined", "EV_stale1", now() - 3600, "room-b");
    let (status, answer) = post(&rig, Some(&sign(KEY, SECRET, stale.as_bytes())), stale).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("ignored")),
        "{answer}"
    );
    assert!(
        answer["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("webhook_max_age_secs")
    );
    assert_eq!(counts(&rig).await, after, "a stale event publishes nothing");
    let stored = livekit_events(&rig).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].subject, "livekit.events.participant_joined");
    assert_eq!(stored[0].msg_id, id);
    assert_eq!(
        stored[0].raw,
        body.as_bytes(),
        "the body is stored as LiveKit sent it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lk_webhook_unconfigured_ingress_answers_401_naming_the_keys() {
    let mut rig = Rig::new(false).await;
    rig.start_ingress().await;
    let body = event_body("room_started", "EV_unconf", now(), "r");
    let (status, answer) = post(&rig, Some(&sign(KEY, SECRET, body.as_bytes())), body).await;
    assert_eq!(status, 401, "{answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("livekit.api_key") && message.contains("livekit.api_secret"),
        "{answer}"
    );
    assert_eq!(rig.stream_messages("LIVEKIT_EVENTS").await, 0);
    // The ingress keeps answering (and logged the problem once).
    let (status, _) = post(&rig, None, "{}").await;
    assert_eq!(status, 401);
    let rig = &rig;
    wait_for(
        "ingress still ready",
        Duration::from_secs(5),
        || async move {
            rig.http
                .get(rig.url("/readyz"))
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
                .map(|_| ())
        },
    )
    .await;
}
