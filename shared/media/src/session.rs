//! The session task: serialises everything that happens to a connection
//! (signal messages, ICE candidates, user commands, keepalive) in one
//! `select!` loop, and resumes or rejoins when the connection is lost. What each
//! message does is in `handlers`; the state it works on is `state::Session`.

use std::time::Duration;

use livekit_protocol as proto;
use proto::signal_request::Message as Req;
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep_until};

use crate::command::{Command, Ending, Pending, add_track};
use crate::conn::Conn;
use crate::error::Error;
use crate::events::Event;
use crate::state::Session;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;

impl Session {
    /// Serves `conn`, rejoining after losses, until the session is over.
    pub async fn run(mut self, mut conn: Conn) {
        let mut out = Vec::new();
        self.roster.rejoin(
            conn.me().sid,
            &conn.signal.join.other_participants,
            &mut out,
        );
        self.emit_all(out);
        loop {
            let end = self.serve(&mut conn).await;
            tracing::info!(reason = %end.reason, "connection ending");
            let retry = end.leave.is_none() && end.retry && self.opts.reconnect_attempts > 0;
            if retry {
                self.emit(Event::Reconnecting {
                    reason: end.reason.clone(),
                });
                self.fail_pending();
                if end.resume && self.resume(&mut conn).await {
                    self.emit(Event::Reconnected);
                    continue;
                }
            }
            conn.close(end.leave.is_some()).await;
            let mut out = Vec::new();
            self.roster.clear(&mut out);
            self.emit_all(out);
            self.fail_pending();
            if let Some(reply) = end.leave {
                return self.finish(end.reason, reply);
            }
            if !retry {
                return self.finish(end.reason, None);
            }
            match self.rejoin().await {
                Ok(c) => conn = c,
                Err(reply) => {
                    let reason = match reply {
                        Some(_) => "client left".to_owned(),
                        None => format!("{} (rejoin failed)", end.reason),
                    };
                    return self.finish(reason, reply);
                }
            }
        }
    }

    fn finish(self, reason: String, reply: Option<oneshot::Sender<()>>) {
        tracing::info!(%reason, "session over");
        // Close the command channel first: `is_closed()` is true once leave returns.
        let Self { events, cmd_rx, .. } = self;
        drop(cmd_rx);
        let _ = events.send(Event::Disconnected { reason });
        if let Some(r) = reply {
            let _ = r.send(());
        }
    }

    /// One bounded resume attempt; false means fall back to a full rejoin.
    async fn resume(&mut self, conn: &mut Conn) -> bool {
        let connected = conn.subscriber.pc.connection_state() == RTCPeerConnectionState::Connected;
        if !connected {
            return false;
        }
        let attempt = conn.resume(&self.url, &self.opts, &self.published);
        match tokio::time::timeout(self.opts.timeout, attempt).await {
            Ok(Ok(())) => {
                tracing::info!("resumed");
                true
            }
            Ok(Err(e)) => {
                tracing::info!(error = %e, "resume refused, rejoining");
                false
            }
            Err(_) => {
                tracing::info!("resume timed out, rejoining");
                false
            }
        }
    }

    fn fail_pending(&mut self) {
        for (_, p) in self.pending.drain() {
            if let Pending::New { reply, .. } = p {
                let _ = reply.send(Err(Error::Signal(
                    "connection lost while publishing".into(),
                )));
            }
        }
    }

    /// Full rejoin with the same token: bounded attempts with backoff; local
    /// tracks are published again. `Err(Some(reply))` if the user left meanwhile.
    async fn rejoin(&mut self) -> std::result::Result<Conn, Option<oneshot::Sender<()>>> {
        let mut backoff = Duration::from_millis(250);
        for attempt in 1..=self.opts.reconnect_attempts {
            let wake = Instant::now() + backoff;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            loop {
                tokio::select! {
                    () = sleep_until(wake) => break,
                    cmd = self.cmd_rx.recv() => match cmd {
                        None => return Err(None),
                        Some(Command::Leave { reply }) => return Err(Some(reply)),
                        Some(Command::Publish { reply, .. }) => { let _ = reply.send(Err(Error::Signal("reconnecting".into()))); }
                        Some(Command::Dtmf { reply, .. }) => { let _ = reply.send(Err(Error::Signal("reconnecting".into()))); }
                        Some(Command::Mute { .. }) => {} // the track's flag is re-sent on republish
                    },
                }
            }
            match Conn::open(&self.url, &self.opts).await {
                Ok(conn) => {
                    tracing::info!(attempt, "rejoined");
                    let mut out = Vec::new();
                    self.roster.rejoin(
                        conn.me().sid,
                        &conn.signal.join.other_participants,
                        &mut out,
                    );
                    self.emit_all(out);
                    for t in &self.published {
                        conn.send(add_track(t.cid(), t.name(), t.is_muted()));
                        self.pending.insert(t.cid(), Pending::Again(t.clone()));
                    }
                    self.emit(Event::Reconnected);
                    return Ok(conn);
                }
                Err(e) => tracing::warn!(attempt, error = %e, "rejoin failed"),
            }
        }
        Err(None)
    }

    /// One connection's event loop.
    async fn serve(&mut self, conn: &mut Conn) -> Ending {
        let join = conn.signal.join.clone();
        let secs = |v: i32| Duration::from_secs(u64::try_from(v).unwrap_or(0));
        let (ping_every, ping_timeout) = (secs(join.ping_interval), secs(join.ping_timeout));
        let keepalive = !ping_every.is_zero() && !ping_timeout.is_zero();
        let idle = if keepalive {
            ping_timeout
        } else {
            Duration::from_secs(86_400)
        };
        let mut ping = tokio::time::interval(if keepalive { ping_every } else { idle });
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let dead_at = sleep_until(Instant::now() + idle);
        tokio::pin!(dead_at);
        loop {
            tokio::select! {
                msg = conn.signal.rx.recv() => match msg {
                    None => return Ending::signal_lost("signal connection lost"),
                    Some(m) => {
                        dead_at.as_mut().reset(Instant::now() + idle);
                        if let Some(end) = self.on_signal(conn, m).await {
                            return end;
                        }
                    }
                },
                Some(ev) = conn.peer_rx.recv() => {
                    if let Some(end) = self.on_peer(conn, ev) {
                        return end;
                    }
                }
                Some(sid) = self.ended_rx.recv() => {
                    if let Some(e) = self.roster.track_ended(&sid) { self.emit(e); }
                }
                cmd = self.cmd_rx.recv() => match cmd {
                    None => return Ending { reason: "transport dropped".into(), retry: false, resume: false, leave: Some(None) },
                    Some(Command::Leave { reply }) => {
                        return Ending { reason: "client left".into(), retry: false, resume: false, leave: Some(Some(reply)) };
                    }
                    Some(c) => self.on_command(conn, c).await,
                },
                _ = ping.tick(), if keepalive => {
                    let now = unix_ms();
                    conn.send(Req::Ping(now));
                    conn.send(Req::PingReq(proto::Ping { timestamp: now, rtt: 0 }));
                }
                () = &mut dead_at, if keepalive => return Ending::signal_lost("ping timeout"),
            }
        }
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
