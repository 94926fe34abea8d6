//! An answered call until its SIP leg ends: held plainly, or handed to the voice session.

use std::time::Duration;

use callfleet_domain::{CallState, EndReason, outcome};
use callfleet_livekit::SipLeg;
use callfleet_voice::SessionConfig;
use jiff::Timestamp;

use super::attempt::Attempt;
use crate::{
    Worker,
    leg::{Held, transfer},
    leg_watch::LegWatch,
    voice::Report,
};

/// Converse with the callee when the attempt has a voice session, else hold the call.
pub(super) async fn hold_or_converse(
    a: &mut Attempt<'_>,
    voice: Option<SessionConfig>,
    joined: Option<Result<callfleet_media::Transport, String>>,
    answered: Timestamp,
) -> (Held, Option<Report>) {
    match (voice, joined) {
        (Some(cfg), Some(joined)) => {
            let tap = super::record::start(a, answered);
            let (held, report) =
                crate::voice::converse(a.w, a.job, cfg, joined, answered, a.keep, a.control, tap)
                    .await;
            (held, Some(report))
        }
        _ => match super::record::start(a, answered) {
            // A held call that records: a receive-only listener taps the callee meanwhile.
            Some(tap) => {
                let stop = tokio_util::sync::CancellationToken::new();
                let (w, job) = (a.w, a.job);
                let listen = crate::voice::listen(w, job, tap, stop.clone());
                tokio::pin!(listen);
                let mut problem = None;
                let held = {
                    let hold = hold(a, answered);
                    tokio::pin!(hold);
                    tokio::select! {
                        held = &mut hold => held,
                        Err(e) = &mut listen => {
                            tracing::warn!(call.id = %job.req.call_id, error = %e, "cannot hear the held call to record it; it goes on");
                            problem = Some(e);
                            hold.await
                        }
                    }
                };
                if problem.is_none() {
                    stop.cancel();
                    problem = listen.await.err();
                }
                a.recording_problem = problem;
                (held, None)
            }
            None => (hold(a, answered).await, None),
        },
    }
}

/// Hold an answered call until the callee leaves, `max_call_duration`, an operator's hang-up,
/// or shutdown; carry out transfers meanwhile. Every lease_ttl/3 the call state records that
/// the callee is still there (`callee_seen_at`), the evidence a worker taking the call over
/// has if this one is lost.
pub(super) async fn hold(a: &mut Attempt<'_>, answered: Timestamp) -> Held {
    let (w, job, keep) = (a.w, a.job, a.keep);
    let req = &job.req;
    let max = Duration::from_secs(w.config.agent.max_call_duration_secs);
    let elapsed = Timestamp::now().duration_since(answered).unsigned_abs();
    let deadline = tokio::time::sleep(max.saturating_sub(elapsed));
    tokio::pin!(deadline);
    let poll = Duration::from_millis(w.config.agent.hold_poll_ms);
    let who = job.callee();
    let mut watch = LegWatch::start(w, &req.room, &req.call_id, &who);
    let mut beat = Heartbeat::new(w);
    let mut transferred = false;
    let operator_hangup = a.control.hangup.clone();
    loop {
        tokio::select! {
            () = &mut deadline => return Held::Ended(EndReason::MaxDuration),
            () = w.hangup.cancelled() => return Held::Ended(EndReason::Shutdown),
            () = operator_hangup.cancelled() => return Held::Ended(EndReason::Cancelled),
            () = keep.lost.cancelled() => return Held::Lost,
            t = a.control.next_transfer() => {
                let reply = transfer(w, job, &t.to).await;
                transferred |= reply.ok;
                t.answer(reply);
            }
            () = tokio::time::sleep(poll) => match w.livekit.sip_leg(&req.room, &who).await {
                Ok(SipLeg::Active | SipLeg::Ringing | SipLeg::Dialing) => {
                    beat.callee_seen(w, &mut a.state).await;
                }
                Ok(SipLeg::Absent) => {
                    return Held::Ended(how_it_left(&req.call_id, &mut watch, transferred).await);
                }
                Err(e) => tracing::warn!(call.id = %req.call_id, error = %e, "cannot check the callee; still holding"),
            },
        }
    }
}

/// How the SIP leg left: `hangup` (a BYE) or still `active` (dropped: no media).
async fn how_it_left(call_id: &str, watch: &mut LegWatch, transferred: bool) -> EndReason {
    let status = watch.final_status(Duration::from_secs(2)).await;
    let reason = outcome::leg_left(status.as_deref(), transferred);
    tracing::info!(call.id = %call_id, sip.call_status = status.as_deref().unwrap_or("(not seen)"), reason = ?reason, "the SIP leg left");
    reason
}

/// Records `callee_seen_at` in the call state at most every lease_ttl/3.
struct Heartbeat {
    every: Duration,
    last: tokio::time::Instant,
}

impl Heartbeat {
    fn new(w: &Worker) -> Self {
        Self {
            every: w.config.agent.lease_ttl() / 3,
            last: tokio::time::Instant::now(),
        }
    }

    /// The callee is still there: record it if a beat is due.
    async fn callee_seen(&mut self, w: &Worker, state: &mut CallState) {
        if self.last.elapsed() < self.every {
            return;
        }
        self.last = tokio::time::Instant::now();
        state.callee_seen_at = Some(Timestamp::now());
        if let Err(e) = w.bus.put_call_state(state).await {
            tracing::debug!(call.id = %state.call_id, error = %e, "callee_seen_at not recorded");
        }
    }
}
