//! LiveKit's own dispatch, made durable: `callfleet dispatcher` registered with a real
//! livekit-server as agent `callfleet`; what LiveKit offers reaches the JetStream queue before
//! it is accepted, and an ordinary worker runs it with the usual leases and fencing.

use std::time::Duration;

use callfleet_livekit::LiveKit;
use callfleet_tests::{Behaviour, Role, wait_for, wait_for_logged};
use serde_json::{Value, json};

use crate::rig::Rig;

/// The agent name the fleet registers (`livekit.agent_name`'s default).
pub const AGENT_NAME: &str = "callfleet";

/// Wait until the dispatcher is ready: its `/readyz` answers 200 once LiveKit registered it
/// (its first pong came back).
pub async fn wait_registered(rig: &Rig) {
    let addr = rig
        .fleet
        .probe_addr(Role::Dispatcher)
        .expect("the dispatcher was started");
    let url = format!("http://{addr}/readyz");
    let logs = rig.logs();
    let paths: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();
    wait_for_logged(
        "the dispatcher to register with LiveKit (its /readyz answering 200)",
        Duration::from_secs(30),
        &paths,
        || async {
            rig.http
                .get(&url)
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
                .map(|_| ())
        },
    )
    .await;
}

/// The LiveKit API client of the rig's livekit-server.
pub fn livekit_of(rig: &Rig) -> LiveKit {
    let env: std::collections::HashMap<_, _> = rig.fleet.env.clone().into_iter().collect();
    let get = |k: &str| env.get(k).cloned().unwrap_or_default();
    LiveKit::new(
        &get("LIVEKIT_URL"),
        &get("LIVEKIT_API_KEY"),
        &get("LIVEKIT_API_SECRET"),
        Duration::from_secs(10),
    )
}

/// The job LiveKit created for the dispatch in `room`, once it exists: its id.
pub async fn job_of_dispatch(lk: &LiveKit, room: &str) -> String {
    wait_for(
        &format!("LiveKit to create the dispatch's job in room {room}"),
        Duration::from_secs(30),
        || async {
            lk.list_agent_dispatches(room)
                .await
                .ok()?
                .into_iter()
                .flat_map(|d| d.state.map(|s| s.jobs).unwrap_or_default())
                .map(|j| j.id)
                .find(|id| !id.is_empty())
        },
    )
    .await
}

/// Seed 001 through LiveKit's dispatch: CreateAgentDispatch with seed 001's metadata (as
/// `lk dispatch create --agent-name callfleet --metadata …` sends it) dials the callee with
/// `X-Account-Code`, in the dispatch's room. The worker holding the call is killed -9 mid-call:
/// another takes it over, and the callee is never dialed again.
#[tokio::test(flavor = "multi_thread")]
async fn dispatch_seed001_metadata_dials_once_through_a_kill9() {
    let mut rig = Rig::fast_takeover().await;
    rig.fleet.start(Role::Dispatcher);
    wait_registered(&rig).await;
    rig.start_agent("agent-a");
    let to = Behaviour::AnswerAndStay.number(31);
    // Seed 001's metadata, to the rig's callee (the seed's own number is not on this rig).
    let metadata = json!({
        "destination": to.trim_start_matches('+'),
        "account_code": "em-tech-01",
        "transfer_target": "61731071901",
        "caller_id": "LiveKitNehosHosted",
        "caller_name": "LiveKit Nehos Hosted",
    });
    let lk = livekit_of(&rig);
    let room = "seed001-dispatch";
    lk.create_agent_dispatch(room, AGENT_NAME, metadata.to_string())
        .await
        .expect("CreateAgentDispatch");
    let job_id = job_of_dispatch(&lk, room).await;
    let call_id = format!("lk-{job_id}");
    rig.wait_event(&call_id, "answered", 60).await;
    let invites = rig.callee().invites_to(&to);
    assert_eq!(invites.len(), 1, "one INVITE: {invites:?}");
    assert_eq!(
        invites[0].header("X-Account-Code"),
        Some("em-tech-01"),
        "the account code rides on the INVITE: {:?}",
        invites[0]
    );

    rig.fleet.kill9(Role::Agent);
    rig.start_agent("agent-b");
    wait_for(
        "agent-b to take the dispatched call over",
        Duration::from_secs(60),
        || async {
            let (_, s) = rig.get_call(&call_id).await;
            (s["worker_id"] == "agent-b" && s["status"] == "in_call").then_some(())
        },
    )
    .await;
    let (status, body) = rig
        .call_api(reqwest::Method::DELETE, &format!("/calls/{call_id}"), None)
        .await;
    assert_eq!(status, 202, "hang up the resumed call: {body}");
    let hook = rig.summary_of(&call_id, 30).await;
    let s = &hook["data"];
    assert_eq!(s["outcome"], "answered", "{s}");
    assert_eq!(s["room"], room, "the dispatch's own room: {s}");
    assert_eq!(s["direction"], "outbound", "{s}");
    assert_eq!(s["account_code"], "em-tech-01", "{s}");
    assert_eq!(s["metadata"]["livekit_job_id"], job_id.as_str(), "{s}");
    assert_eq!(s["worker_id"], "agent-b", "{s}");
    assert_eq!(
        rig.callee().invites_to(&to).len(),
        1,
        "the takeover never dials again"
    );
    // Exactly one final webhook for the call, once every job is acknowledged.
    rig.wait_jobs_acked().await;
    let finals: Vec<Value> = rig
        .sink
        .delivered()
        .into_iter()
        .map(|r| r.json())
        .filter(|h| h["data"]["call_id"] == call_id.as_str())
        .collect();
    assert_eq!(finals.len(), 1, "one webhook per call: {finals:?}");
}
