//! The media transport (`callfleet-media`) against the real telephony rig: a call placed through
//! livekit-sip to a SIPp callee, and a transport in the call's room. The callee's RTP reaches
//! the transport as PCM, and what the transport publishes reaches the callee as RTP.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use callfleet_media::{
    AudioFrame, Event, LocalAudioTrack, Transport,
    tone::{dominant, rms_dbfs, sine},
};
use callfleet_tests::{
    Behaviour, Callee, Telephony,
    media::{collect_audio, wait_event_named},
    summarize, wait_for,
};
use livekit_api::services::{room::CreateRoomOptions, sip::CreateSIPParticipantOptions};
use tokio::sync::broadcast;

const FROM: &str = "+61123456789";
/// The SIP participant's identity in the room.
const CALLEE: &str = "callee";

/// A transport that joined `room`, with its receivers taken before anyone else is in it.
struct Joined {
    transport: Transport,
    events: broadcast::Receiver<Event>,
    audio: broadcast::Receiver<AudioFrame>,
}

/// Create `room` and join it with a loopback-only transport as `identity`.
async fn join(tel: &Telephony, room: &str, identity: &str) -> Joined {
    tel.rooms()
        .create_room(
            room,
            CreateRoomOptions {
                empty_timeout: 120,
                departure_timeout: 30,
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("CreateRoom {room}: {e}"));
    let transport = tel.join(room, identity).await;
    let (events, audio) = (transport.events(), transport.remote_audio());
    Joined {
        transport,
        events,
        audio,
    }
}

/// Dial `number` on the callee's trunk into `room` as [`CALLEE`]; returns once answered.
async fn dial(tel: &Telephony, callee: &Callee, number: &str, room: &str) {
    let opts = CreateSIPParticipantOptions {
        participant_identity: CALLEE.to_owned(),
        sip_number: Some(FROM.to_owned()),
        wait_until_answered: Some(true),
        ringing_timeout: Some(Duration::from_secs(10)),
        timeout: Some(Duration::from_secs(25)),
        ..Default::default()
    };
    tel.sip_client()
        .create_sip_participant(
            callee.trunk_id.clone(),
            number.to_owned(),
            room.to_owned(),
            opts,
            None,
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateSIPParticipant {number}: {e}\ncallee log:\n{}",
                callee.log()
            )
        });
}

/// Push a sine into `track` in real time (20 ms every 20 ms) until `stop` or `max`.
fn spawn_tone(
    track: LocalAudioTrack,
    hz: f64,
    amp: f64,
    max: Duration,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let rate = track.sample_rate();
        let per = (rate / 50) as usize;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let started = tokio::time::Instant::now();
        let mut pos = 0u64;
        while !stop.load(Ordering::Relaxed) && started.elapsed() < max {
            tick.tick().await;
            if track.push(&sine(rate, hz, amp, pos, per)).await.is_err() {
                return;
            }
            pos += per as u64;
        }
    })
}

/// Analyse one second of the callee's audio (after 0.5 s of warm-up) and check it is `hz`.
async fn hear_callee(audio: &mut broadcast::Receiver<AudioFrame>, hz: f64, what: &str) {
    let pcm = collect_audio(audio, CALLEE, 25, 48_000, Duration::from_secs(20)).await;
    let (f, purity) = dominant(&pcm, 48_000);
    let level = rms_dbfs(&pcm);
    eprintln!(
        "{what}: {f:.1} Hz at {level:.1} dBFS, {:.0} % of the power",
        purity * 100.0
    );
    assert!(
        (f - hz).abs() <= 10.0,
        "{what}: dominant {f} Hz, wanted {hz} Hz"
    );
    // Silence (or comfort noise) is below -60 dBFS; the tones here are sent at -9 / -13 dBFS.
    assert!(level > -30.0, "{what}: {level:.1} dBFS is no tone");
    assert!(
        purity > 0.5,
        "{what}: {hz} Hz holds only {:.0} % of the power",
        purity * 100.0
    );
}

/// Hang up: remove the SIP participant, then wait for the BYE to reach the callee (also the
/// DTMF tests').
pub(crate) async fn hang_up(tel: &Telephony, callee: &Callee, room: &str) {
    tel.rooms()
        .remove_participant(room, CALLEE)
        .await
        .unwrap_or_else(|e| panic!("RemoveParticipant {CALLEE}: {e}"));
    wait_for("the callee gets BYE", Duration::from_secs(15), || {
        let bye = !callee.received("BYE").is_empty();
        async move { bye.then_some(()) }
    })
    .await;
}

/// SIPp streams a 1 kHz PCMU tone (RTP); the transport in the room receives the SIP
/// participant's track as 48 kHz PCM carrying that tone at speech level.
#[tokio::test(flavor = "multi_thread")]
async fn media_sip_callee_audio_reaches_transport() {
    let tel = Telephony::start().await;
    let callee = tel.callee(&[FROM]).await;
    let room = format!("media-in-{}", uuid::Uuid::new_v4().simple());
    let mut me = join(&tel, &room, "listener").await;

    let number = Behaviour::PlayTone.number(1);
    dial(&tel, &callee, &number, &room).await;
    wait_event_named(
        &mut me.events,
        Duration::from_secs(15),
        "the callee's track",
        |e| matches!(e, Event::TrackSubscribed { identity, .. } if identity == CALLEE),
    )
    .await;
    hear_callee(&mut me.audio, Behaviour::TONE_HZ, "callee -> transport").await;

    hang_up(&tel, &callee, &room).await;
    let invites = callee.invites_to(&number);
    assert_eq!(invites.len(), 1, "{:?}", summarize(&callee.requests()));
    me.transport.leave().await.expect("the transport leaves");
}

/// The transport publishes 440 Hz; the callee (SIPp with `-rtp_echo`, answering without audio
/// of its own) sends every RTP packet it receives back. The SIP participant's track then carries 440 Hz, which it can only do if
/// the transport's audio reached the callee as RTP.
#[tokio::test(flavor = "multi_thread")]
async fn media_transport_audio_reaches_callee() {
    const HZ: f64 = 440.0;
    let tel = Telephony::start().await;
    let callee = tel.echo_callee(&[FROM]).await;
    let room = format!("media-out-{}", uuid::Uuid::new_v4().simple());
    let mut me = join(&tel, &room, "agent").await;
    let track = me
        .transport
        .publish_audio("agent", 48_000)
        .await
        .expect("the transport publishes");
    let stop = Arc::new(AtomicBool::new(false));
    let tone = spawn_tone(track, HZ, 0.3, Duration::from_secs(90), stop.clone());

    let number = Behaviour::AnswerSilent.number(2);
    dial(&tel, &callee, &number, &room).await;
    wait_event_named(
        &mut me.events,
        Duration::from_secs(15),
        "the callee's track",
        |e| matches!(e, Event::TrackSubscribed { identity, .. } if identity == CALLEE),
    )
    .await;
    hear_callee(&mut me.audio, HZ, "transport -> callee -> transport").await;

    stop.store(true, Ordering::Relaxed);
    tone.await.expect("the tone task ends");
    hang_up(&tel, &callee, &room).await;
    me.transport.leave().await.expect("the transport leaves");
}
