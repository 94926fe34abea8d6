//! Who is in the room and which of their tracks we receive; turns
//! `ParticipantUpdate`s and track arrivals into [`Event`]s.

use std::collections::{HashMap, HashSet};

use livekit_protocol as proto;

use crate::events::Event;

#[derive(Debug)]
struct Member {
    identity: String,
    tracks: HashSet<String>,
}

/// Remote participants by sid, plus the tracks currently subscribed.
#[derive(Debug, Default)]
pub struct Roster {
    local_sid: String,
    members: HashMap<String, Member>,
    /// track sid -> publisher identity, for tracks whose RTP is flowing to us.
    subscribed: HashMap<String, String>,
}

impl Roster {
    /// An empty roster that ignores updates about `local_sid` (ourselves).
    #[cfg(test)]
    pub fn new(local_sid: String) -> Self {
        Self {
            local_sid,
            ..Self::default()
        }
    }

    /// Starts over from a (re)join: new local sid, the join response's
    /// participants. Emits `ParticipantLeft` for identities no longer there
    /// and `ParticipantJoined` for new ones (sids change across a rejoin).
    pub fn rejoin(
        &mut self,
        local_sid: String,
        infos: &[proto::ParticipantInfo],
        out: &mut Vec<Event>,
    ) {
        self.clear(out);
        let before: HashSet<String> = self.members.drain().map(|(_, m)| m.identity).collect();
        self.local_sid = local_sid;
        let mut joined = Vec::new();
        self.update(infos, &mut joined);
        let now: HashSet<String> = self.members.values().map(|m| m.identity.clone()).collect();
        let mut left: Vec<&String> = before.difference(&now).collect();
        left.sort();
        out.extend(left.into_iter().map(|identity| Event::ParticipantLeft {
            identity: identity.clone(),
        }));
        out.extend(joined.into_iter().filter(
            |e| !matches!(e, Event::ParticipantJoined { identity } if before.contains(identity)),
        ));
    }

    /// Applies participant infos (join response or update), pushing events.
    pub fn update(&mut self, infos: &[proto::ParticipantInfo], out: &mut Vec<Event>) {
        for info in infos {
            if info.sid == self.local_sid || info.sid.is_empty() {
                continue;
            }
            let gone = info.state == proto::participant_info::State::Disconnected as i32;
            if gone {
                if let Some(m) = self.members.remove(&info.sid) {
                    self.unsubscribe_all(m.tracks.iter(), out);
                    out.push(Event::ParticipantLeft {
                        identity: m.identity,
                    });
                }
                continue;
            }
            let tracks: HashSet<String> = info.tracks.iter().map(|t| t.sid.clone()).collect();
            match self.members.get_mut(&info.sid) {
                Some(m) => {
                    let removed: Vec<String> = m.tracks.difference(&tracks).cloned().collect();
                    m.tracks = tracks;
                    self.unsubscribe_all(removed.iter(), out);
                }
                None => {
                    // Same identity under a new sid: the participant rejoined and
                    // the server replaced its session. Presence is per identity,
                    // so only the old session's tracks go.
                    let old = self
                        .members
                        .iter()
                        .find(|(_, m)| m.identity == info.identity)
                        .map(|(sid, _)| sid.clone());
                    let replaced = old.and_then(|sid| self.members.remove(&sid));
                    if let Some(m) = &replaced {
                        self.unsubscribe_all(m.tracks.iter(), out);
                    }
                    self.members.insert(
                        info.sid.clone(),
                        Member {
                            identity: info.identity.clone(),
                            tracks,
                        },
                    );
                    if replaced.is_none() {
                        out.push(Event::ParticipantJoined {
                            identity: info.identity.clone(),
                        });
                    }
                }
            }
        }
    }

    fn unsubscribe_all<'a>(
        &mut self,
        tracks: impl Iterator<Item = &'a String>,
        out: &mut Vec<Event>,
    ) {
        for t in tracks {
            if let Some(identity) = self.subscribed.remove(t) {
                out.push(Event::TrackUnsubscribed {
                    identity,
                    track_sid: t.clone(),
                });
            }
        }
    }

    /// Identity of the publisher of a remote track. LiveKit packs the stream
    /// id as `<participant sid>|<track sid>`; fall back to a track lookup,
    /// then to the participant sid itself.
    pub fn identity_for(&self, participant_sid: &str, track_sid: &str) -> String {
        if let Some(m) = self.members.get(participant_sid) {
            return m.identity.clone();
        }
        self.members
            .values()
            .find(|m| m.tracks.contains(track_sid))
            .map(|m| m.identity.clone())
            .unwrap_or_else(|| participant_sid.to_owned())
    }

    /// Records a track whose media started; the event to emit if it is new.
    pub fn subscribed(&mut self, track_sid: &str, identity: &str) -> Option<Event> {
        let prev = self
            .subscribed
            .insert(track_sid.to_owned(), identity.to_owned());
        prev.is_none().then(|| Event::TrackSubscribed {
            identity: identity.to_owned(),
            track_sid: track_sid.to_owned(),
        })
    }

    /// A remote track's media ended; the event to emit if not already reported.
    pub fn track_ended(&mut self, track_sid: &str) -> Option<Event> {
        self.subscribed
            .remove(track_sid)
            .map(|identity| Event::TrackUnsubscribed {
                identity,
                track_sid: track_sid.to_owned(),
            })
    }

    /// Forgets every subscription (on teardown), returning the events.
    pub fn clear(&mut self, out: &mut Vec<Event>) {
        for (track_sid, identity) in self.subscribed.drain() {
            out.push(Event::TrackUnsubscribed {
                identity,
                track_sid,
            });
        }
    }
}

/// Splits LiveKit's packed stream id `PA_xxx|TR_yyy`.
pub fn split_stream_id(stream_id: &str) -> (&str, Option<&str>) {
    match stream_id.split_once('|') {
        Some((p, t)) => (p, Some(t)),
        None => (stream_id, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(
        sid: &str,
        id: &str,
        state: proto::participant_info::State,
        tracks: &[&str],
    ) -> proto::ParticipantInfo {
        proto::ParticipantInfo {
            sid: sid.into(),
            identity: id.into(),
            state: state as i32,
            tracks: tracks
                .iter()
                .map(|t| proto::TrackInfo {
                    sid: (*t).into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn join_track_leave_sequence() {
        use proto::participant_info::State;
        let mut r = Roster::new("PA_me".into());
        let mut ev = Vec::new();
        r.update(
            &[
                info("PA_me", "me", State::Active, &[]),
                info("PA_b", "b", State::Joined, &[]),
            ],
            &mut ev,
        );
        assert_eq!(
            ev,
            vec![Event::ParticipantJoined {
                identity: "b".into()
            }]
        );
        ev.clear();
        r.update(&[info("PA_b", "b", State::Active, &["TR_1"])], &mut ev);
        assert!(ev.is_empty());
        assert_eq!(r.identity_for("PA_b", "TR_1"), "b");
        assert_eq!(r.identity_for("PA_x", "TR_1"), "b");
        assert!(r.subscribed("TR_1", "b").is_some());
        assert!(r.subscribed("TR_1", "b").is_none());
        r.update(&[info("PA_b", "b", State::Disconnected, &[])], &mut ev);
        assert_eq!(
            ev,
            vec![
                Event::TrackUnsubscribed {
                    identity: "b".into(),
                    track_sid: "TR_1".into()
                },
                Event::ParticipantLeft {
                    identity: "b".into()
                },
            ]
        );
        assert!(r.track_ended("TR_1").is_none());
        assert_eq!(split_stream_id("PA_b|TR_1"), ("PA_b", Some("TR_1")));
        assert_eq!(split_stream_id("plain"), ("plain", None));

        // A participant replaced by its own rejoin (same identity, new sid):
        // its old tracks go, no presence events; the stale sid's DISCONNECTED is ignored.
        let mut r = Roster::new("PA_me".into());
        r.update(&[info("PA_f", "f", State::Active, &["TR_f1"])], &mut ev);
        assert!(r.subscribed("TR_f1", "f").is_some());
        ev.clear();
        r.update(&[info("PA_f2", "f", State::Joined, &[])], &mut ev);
        r.update(&[info("PA_f", "f", State::Disconnected, &[])], &mut ev);
        assert_eq!(
            ev,
            vec![Event::TrackUnsubscribed {
                identity: "f".into(),
                track_sid: "TR_f1".into()
            }]
        );
        ev.clear();

        // Rejoin: c stays (new sid), d is new, nobody else.
        let mut r = Roster::new("PA_me".into());
        r.update(
            &[
                info("PA_c", "c", State::Active, &[]),
                info("PA_e", "e", State::Active, &[]),
            ],
            &mut ev,
        );
        ev.clear();
        r.rejoin(
            "PA_me2".into(),
            &[
                info("PA_c2", "c", State::Active, &[]),
                info("PA_d", "d", State::Active, &[]),
            ],
            &mut ev,
        );
        assert_eq!(
            ev,
            vec![
                Event::ParticipantLeft {
                    identity: "e".into()
                },
                Event::ParticipantJoined {
                    identity: "d".into()
                }
            ]
        );
    }
}
