//! Holding an answered call (without a voice session) until its SIP leg ends.

use std::time::Duration;

use callfleet_domain::{CallState, EndReason, outcome};
use callfleet_livekit::SipLeg;
use jiff::Timestamp;

use crate::{
    Worker,
    control::Control,
    job::Job,
    keepalive::Keepalive,
    leg::{Held, identity, transfer},
    leg_watch::LegWatch,
};

/// Hold an answered call until the callee leaves, `max_call_duration`, an operator's hang-up,
/// or shutdown; carry out transfers meanwhile. Every lease_ttl/3 the call state records that
/// the callee is still there (`callee_seen_at`), the evidence a worker taking the call over
/// has if this one is lost. The voice session plugs in here.
pub(super) async fn hold(
    w: &Worker,
    job: &Job,
    state: &mut CallState,
    answered: Timestamp,
    keep: &Keepalive,
    control: &mut Control,
) -> Held {
    let req = &job.req;
    let max = Duration::from_secs(w.config.agent.max_call_duration_secs);
    let elapsed = Timestamp::now().duration_since(answered).unsigned_abs();
    let deadline = tokio::time::sleep(max.saturating_sub(elapsed));
    tokio::pin!(deadline);
    let poll = Duration::from_millis(w.config.agent.hold_poll_ms);
    let who = identity(&req.call_id);
    let mut watch = LegWatch::start(w, &req.room, &req.call_id, &who);
    let heartbeat = w.config.agent.lease_ttl() / 3;
    let mut last_beat = tokio::time::Instant::now();
    let mut transferred = false;
    let operator_hangup = control.hangup.clone();
    loop {
        tokio::select! {
            () = &mut deadline => return Held::Ended(EndReason::MaxDuration),
            () = w.hangup.cancelled() => return Held::Ended(EndReason::Shutdown),
            () = operator_hangup.cancelled() => return Held::Ended(EndReason::Cancelled),
            () = keep.lost.cancelled() => return Held::Lost,
            t = control.next_transfer() => {
                let reply = transfer(w, job, &t.to).await;
                transferred |= reply.ok;
                t.answer(reply);
            }
            () = tokio::time::sleep(poll) => match w.livekit.sip_leg(&req.room, &who).await {
                Ok(SipLeg::Active | SipLeg::Ringing | SipLeg::Dialing) => {
                    if last_beat.elapsed() >= heartbeat {
                        last_beat = tokio::time::Instant::now();
                        state.callee_seen_at = Some(Timestamp::now());
                        if let Err(e) = w.bus.put_call_state(state).await {
                            tracing::debug!(call.id = %req.call_id, error = %e, "callee_seen_at not recorded");
                        }
                    }
                }
                Ok(SipLeg::Absent) => {
                    // How it left: `hangup` (a BYE) or still `active` (dropped: no media).
                    let status = watch.final_status(Duration::from_secs(2)).await;
                    let reason = outcome::leg_left(status.as_deref(), transferred);
                    tracing::info!(call.id = %req.call_id, sip.call_status = status.as_deref().unwrap_or("(not seen)"), reason = ?reason, "the SIP leg left");
                    return Held::Ended(reason);
                }
                Err(e) => tracing::warn!(call.id = %req.call_id, error = %e, "cannot check the callee; still holding"),
            },
        }
    }
}
