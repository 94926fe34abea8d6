//! DTMF and what the callee received, on the real telephony rig: livekit-sip dials the SIPp
//! callee, whose SDP names the RTP tap (`callfleet_tests::tap`) as its media address, and a
//! `callfleet-media` transport is in the room. Keys go both ways: `CreateSIPParticipant`'s
//! `dtmf` and the transport's `send_dtmf` reach the callee as RFC 4733; a key the callee sends
//! as RFC 4733 reaches the transport as `Event::Dtmf`. The voicemail test is the baseline of
//! "did the callee hear speech between t1 and t2?".

use std::time::{Duration, Instant};

use callfleet_media::{AudioFrame, Event, tone::rms_dbfs};
use callfleet_tests::{
    Behaviour, Callee, Telephony,
    media::{spawn_tone, wait_event_named},
    tap::{Ivr, Prompt, Stream},
    wait_for, workspace_root,
};
use livekit_api::services::sip::CreateSIPParticipantOptions;
use tokio::sync::broadcast;

use crate::media::hang_up;

const FROM: &str = "+61123456789";
/// The SIP participant's identity in the room.
const CALLEE: &str = "callee";

/// Dial `number` into `room` as [`CALLEE`], with `dtmf` sent after the answer; returns once
/// answered.
async fn dial(tel: &Telephony, callee: &Callee, number: &str, room: &str, dtmf: Option<&str>) {
    let opts = CreateSIPParticipantOptions {
        participant_identity: CALLEE.to_owned(),
        sip_number: Some(FROM.to_owned()),
        dtmf: dtmf.map(str::to_owned),
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
        .unwrap_or_else(|e| panic!("CreateSIPParticipant {number}: {e}\n{}", callee.log()));
}

/// Waits (bounded) for a 20 ms frame of the callee's audio at the transport, from `after` on,
/// whose level passes `pred`; returns when it came.
async fn callee_frame(
    audio: &mut broadcast::Receiver<AudioFrame>,
    within: Duration,
    what: &str,
    pred: impl Fn(f64) -> bool,
) -> Instant {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, audio.recv()).await {
            Err(_) => panic!("no {what} within {within:?}"),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(e)) => panic!("audio ended waiting for {what}: {e}"),
            Ok(Ok(f)) if f.identity == CALLEE && pred(rms_dbfs(&f.samples)) => {
                return Instant::now();
            }
            Ok(Ok(_)) => {}
        }
    }
}

/// (a) `CreateSIPParticipant`'s `dtmf` reaches the callee as RFC 4733 keys; (b) the
/// transport's `send_dtmf('2')` does too, the IVR answers it with its support prompt and the
/// transport hears that prompt after a quiet spell; (c) keys the callee sends as RFC 4733
/// reach the transport as `Event::Dtmf` from the SIP participant.
#[tokio::test(flavor = "multi_thread")]
async fn dtmf_both_ways_through_livekit_sip_with_an_ivr() {
    let tel = Telephony::start().await;
    let callee = tel.callee(&[FROM]).await;
    let ivr = Ivr::from_rig(&workspace_root()).unwrap_or_else(|e| panic!("{e}"));
    callee.tap().set_ivr(ivr);
    let room = format!("dtmf-{}", uuid::Uuid::new_v4().simple());
    let me = tel.join(&room, "agent").await;
    let (mut events, mut audio) = (me.events(), me.remote_audio());

    dial(&tel, &callee, &Behaviour::Ivr.number(1), &room, Some("9#")).await;
    let leg = callee
        .tap()
        .wait_stream(1, Duration::from_secs(10))
        .await
        .source;
    // (a) The dial's keys, each one key however many packets (its end sent three times).
    let s = callee
        .tap()
        .wait_keys(leg, "9#", Duration::from_secs(10))
        .await;
    for d in &s.digits {
        assert_eq!(d.end_packets, 3, "RFC 4733 ends a key three times: {d:?}");
        assert!(
            (200..=300).contains(&d.duration_ms),
            "livekit-sip's keys last 250 ms: {d:?}"
        );
    }
    eprintln!("dial keys at the tap: {:?}", s.digits);

    // (b) Wait for the menu to end and the callee's audio to go quiet, then press 2.
    wait_event_named(
        &mut events,
        Duration::from_secs(15),
        "the callee's track",
        |e| matches!(e, Event::TrackSubscribed { identity, .. } if identity == CALLEE),
    )
    .await;
    callee_frame(
        &mut audio,
        Duration::from_secs(15),
        "the menu, heard",
        |db| db > -35.0,
    )
    .await;
    wait_for("the IVR's menu to end", Duration::from_secs(20), || {
        let ended = callee
            .tap()
            .played()
            .iter()
            .any(|p| p.prompt == Prompt::Menu && p.ended_at.is_some());
        async move { ended.then_some(()) }
    })
    .await;
    callee_frame(
        &mut audio,
        Duration::from_secs(5),
        "silence after the menu",
        |db| db < -60.0,
    )
    .await;
    let pressed = Instant::now();
    me.send_dtmf('2').await.expect("the transport presses 2");
    let s = callee
        .tap()
        .wait_keys(leg, "9#2", Duration::from_secs(10))
        .await;
    let key = s.digits[2];
    eprintln!(
        "the transport's key at the tap {:?} after send_dtmf",
        key.at - pressed
    );
    let prompt = wait_for("the IVR's answer to 2", Duration::from_secs(5), || {
        let p = callee
            .tap()
            .played()
            .into_iter()
            .find(|p| p.prompt == Prompt::Key('2'));
        async move { p }
    })
    .await;
    assert!(
        prompt.started_at >= key.at,
        "the IVR answers the key: {prompt:?} {key:?}"
    );
    let heard = callee_frame(
        &mut audio,
        Duration::from_secs(10),
        "the support prompt",
        |db| db > -35.0,
    )
    .await;
    eprintln!(
        "the transport heard the prompt {:?} after pressing 2",
        heard - pressed
    );
    assert!(
        heard >= prompt.started_at,
        "heard after the IVR started its prompt"
    );

    // (c) The callee presses 5 and D: livekit-sip sends SipDtmf packets into the room.
    callee.tap().send_key(leg, '5');
    callee.tap().send_key(leg, 'D');
    let mut got = String::new();
    while got.len() < 2 {
        if let Event::Dtmf { identity, digit } = wait_event_named(
            &mut events,
            Duration::from_secs(10),
            "the callee's key",
            |e| matches!(e, Event::Dtmf { .. }),
        )
        .await
        {
            assert_eq!(identity, CALLEE);
            got.push(digit);
        }
    }
    assert_eq!(got, "5D", "the callee's keys, in order");
    let packets = callee.tap().stream(leg).map_or(0, |s| s.packets.len());
    assert!(packets > 100, "RTP kept coming to the tap: {packets}");

    hang_up(&tel, &callee, &room).await;
    me.leave().await.expect("the transport leaves");
}

/// (d) A voicemail callee: while the transport publishes nothing the callee receives only
/// silence (RTP that carries no speech); once the transport speaks (a tone), the same helper
/// sees speech. The transport hears the greeting.
#[tokio::test(flavor = "multi_thread")]
async fn dtmf_voicemail_callee_hears_silence_until_the_agent_speaks() {
    let tel = Telephony::start().await;
    let callee = tel.callee(&[FROM]).await;
    let room = format!("vm-{}", uuid::Uuid::new_v4().simple());
    let me = tel.join(&room, "agent").await;
    let mut audio = me.remote_audio();

    dial(
        &tel,
        &callee,
        &Behaviour::Voicemail(0).number(2),
        &room,
        None,
    )
    .await;
    let leg = callee.tap().wait_stream(1, Duration::from_secs(10)).await;
    callee_frame(&mut audio, Duration::from_secs(15), "the greeting", |db| {
        db > -35.0
    })
    .await;

    let t1 = Instant::now();
    let t2 = t1 + Duration::from_secs(3);
    let quiet = until(&callee, leg.source, t2).await;
    assert!(
        quiet.silent_between(t1, t2),
        "silence while the agent says nothing: peak {:?} dBFS",
        quiet.peak_between(t1, t2)
    );
    assert!(!quiet.speech_between(t1, t2));

    let track = me.publish_audio("agent", 48_000).await.expect("publish");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tone = spawn_tone(track, 440.0, 0.3, Duration::from_secs(20), stop.clone());
    let t3 = Instant::now();
    let t4 = t3 + Duration::from_secs(4);
    let spoken = until(&callee, leg.source, t4).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = tone.await;
    eprintln!(
        "callee: quiet peak {:?} dBFS, then {} ms loud of 4 s (peak {:?} dBFS)",
        quiet.peak_between(t1, t2),
        spoken.loud_ms(t3, t4),
        spoken.peak_between(t3, t4)
    );
    assert!(
        spoken.speech_between(t3, t4),
        "the agent's tone reached the callee"
    );
    assert!(!spoken.silent_between(t3, t4));

    hang_up(&tel, &callee, &room).await;
    me.leave().await.expect("the transport leaves");
}

/// The tap's stream from `source` once RTP arrived after `t`.
async fn until(callee: &Callee, source: std::net::SocketAddr, t: Instant) -> Stream {
    wait_for(
        "RTP at the tap past the window's end",
        Duration::from_secs(15),
        || {
            let s = callee.tap().stream(source).filter(|s| s.last_at() > t);
            async move { s }
        },
    )
    .await
}

/// A voicemail callee with a hold time hangs up by itself: `HH` s after its greeting file
/// (`speech::VOICEMAIL_SECS`), the SIP participant leaves the room.
#[tokio::test(flavor = "multi_thread")]
async fn dtmf_voicemail_hangs_up_after_its_recording_time() {
    use callfleet_rig::callee::speech::VOICEMAIL_SECS;
    let tel = Telephony::start().await;
    let callee = tel.callee(&[FROM]).await;
    let room = format!("vm-hh-{}", uuid::Uuid::new_v4().simple());
    let me = tel.join(&room, "agent").await;
    let mut events = me.events();
    dial(
        &tel,
        &callee,
        &Behaviour::Voicemail(2).number(3),
        &room,
        None,
    )
    .await;
    let answered = Instant::now();
    wait_event_named(
        &mut events,
        Duration::from_secs(VOICEMAIL_SECS as u64 + 20),
        "the callee to hang up",
        |e| matches!(e, Event::ParticipantLeft { identity } if identity == CALLEE),
    )
    .await;
    let after = answered.elapsed();
    eprintln!("the voicemail hung up {after:?} after the answer");
    assert!(
        after >= Duration::from_secs(VOICEMAIL_SECS as u64 + 2),
        "not before its greeting and 2 s of recording: {after:?}"
    );
    me.leave().await.expect("the transport leaves");
}
