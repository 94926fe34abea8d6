//! How an answered SIP leg left the room: the `sip.callStatus` it had when it left.
//!
//! livekit-sip v1.8.0 ends a call two ways that look alike from outside: on a BYE it sets
//! `sip.callStatus = hangup` and leaves; on a media timeout (no RTP from the callee) it leaves
//! with the attribute unchanged (`active`). The disconnect reason is the same in both
//! (`CLIENT_INITIATED`), and the `hangup` value lives for milliseconds, so polling
//! `ListParticipants` cannot tell them apart. A participant in the room can: the server's last
//! update about the leg (state `DISCONNECTED`) carries its attributes as they were when it left.
//!
//! So while a call is held, the worker keeps a hidden, signal-only participant in the room
//! (`watch-<call_id>`: no peer connection, no publishing, no subscribing) that only reads
//! participant updates. livekit-server removes a participant whose peer connection never comes
//! up after a minute; the watcher then joins again. A leave missed in that gap, or a watcher
//! that cannot join, reads as not seen (and the call ends as `callee_hangup`, as before).

use std::time::Duration;

use callfleet_livekit::SIP_CALL_STATUS;
use callfleet_media::signal;
use livekit_api::access_token::{AccessToken, VideoGrants};
use livekit_protocol as proto;
use proto::{signal_request::Message as Req, signal_response::Message as Res};
use tokio::{sync::watch, task::JoinHandle};

use crate::Worker;

/// A running watcher; stops when dropped.
pub struct LegWatch {
    left: watch::Receiver<Option<String>>,
    task: JoinHandle<()>,
}

impl Drop for LegWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LegWatch {
    /// Watch the SIP participant `sip_identity` in `room`.
    pub fn start(w: &Worker, room: &str, call_id: &str, sip_identity: &str) -> Self {
        let (tx, left) = watch::channel(None);
        let join = w
            .config
            .livekit
            .credentials()
            .and_then(|(url, key, secret)| {
                let token = token(key, secret, room, &format!("watch-{call_id}")).ok()?;
                signal::join_url(url, &token, false).ok()
            });
        let sip_identity = sip_identity.to_owned();
        let call_id = call_id.to_owned();
        let task = tokio::spawn(async move {
            let Some(url) = join else {
                return;
            };
            // Bounded by the call: the watcher is aborted when the call is over.
            loop {
                match watch_once(url.clone(), &sip_identity).await {
                    Ok(Some(status)) => {
                        let _ = tx.send(Some(status));
                        return;
                    }
                    Ok(None) => {
                        tracing::debug!(call.id = %call_id, "leg watcher removed from the room; joining again");
                    }
                    Err(e) => {
                        tracing::debug!(call.id = %call_id, error = %e, "leg watcher cannot join; trying again");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
        });
        Self { left, task }
    }

    /// The `sip.callStatus` the leg had when it left the room, waiting up to `grace` for the
    /// server's news of it; `None` if the watcher did not see it leave.
    pub async fn final_status(&mut self, grace: Duration) -> Option<String> {
        let seen = tokio::time::timeout(grace, self.left.wait_for(Option::is_some)).await;
        match seen {
            Ok(Ok(status)) => status.clone(),
            _ => None,
        }
    }
}

fn token(key: &str, secret: &str, room: &str, who: &str) -> Result<String, String> {
    AccessToken::with_api_key(key, secret)
        .with_identity(who)
        .with_name("callfleet leg watcher")
        .with_grants(VideoGrants {
            room_join: true,
            room: room.to_owned(),
            can_publish: Some(false),
            can_subscribe: Some(false),
            can_publish_data: Some(false),
            hidden: true,
            ..Default::default()
        })
        .to_jwt()
        .map_err(|e| e.to_string())
}

/// One session in the room: `Ok(Some(status))` once the leg left (with its last status,
/// empty if it had none), `Ok(None)` if the server ended the session first.
async fn watch_once(url: url::Url, sip_identity: &str) -> Result<Option<String>, String> {
    let mut sig = signal::connect(url, Duration::from_secs(10), false)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(status) = left(&sig.join.other_participants, sip_identity) {
        return Ok(Some(status));
    }
    let every =
        Duration::from_secs(u64::try_from(sig.join.ping_interval.clamp(1, 10)).unwrap_or(5));
    let mut ping = tokio::time::interval(every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = sig.rx.recv() => match msg {
                None | Some(Res::Leave(_)) => return Ok(None),
                Some(Res::Update(update)) => {
                    if let Some(status) = left(&update.participants, sip_identity) {
                        let _ = sig.tx.send(Req::Leave(proto::LeaveRequest {
                            reason: proto::DisconnectReason::ClientInitiated as i32,
                            ..Default::default()
                        }));
                        return Ok(Some(status));
                    }
                }
                Some(_) => {}
            },
            _ = ping.tick() => {
                let now = jiff::Timestamp::now().as_millisecond();
                let _ = sig.tx.send(Req::Ping(now));
                let _ = sig.tx.send(Req::PingReq(proto::Ping { timestamp: now, rtt: 0 }));
            }
        }
    }
}

/// The status of the leg if these infos say it left.
fn left(infos: &[proto::ParticipantInfo], sip_identity: &str) -> Option<String> {
    infos
        .iter()
        .find(|p| {
            p.identity == sip_identity
                && p.state == proto::participant_info::State::Disconnected as i32
        })
        .map(|p| {
            p.attributes
                .get(SIP_CALL_STATUS)
                .cloned()
                .unwrap_or_default()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(
        identity: &str,
        state: proto::participant_info::State,
        status: &str,
    ) -> proto::ParticipantInfo {
        proto::ParticipantInfo {
            identity: identity.into(),
            state: state as i32,
            attributes: [(SIP_CALL_STATUS.to_owned(), status.to_owned())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn only_the_legs_disconnected_update_counts() {
        use proto::participant_info::State;
        let active = info("sip-1", State::Active, "active");
        let gone = info("sip-1", State::Disconnected, "hangup");
        let other = info("sip-2", State::Disconnected, "active");
        assert_eq!(left(&[active.clone(), other], "sip-1"), None);
        let status = left(&[active, gone], "sip-1");
        assert_eq!(
            status.as_deref(),
            Some(callfleet_domain::outcome::SIP_STATUS_HANGUP)
        );
    }
}
