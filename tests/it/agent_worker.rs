//! callfleet's agent-worker client (`callfleet_livekit::agent_worker`) against a real
//! livekit-server: registration and an explicit dispatch with seed 001's metadata, accept →
//! assignment, decline with two workers, a server restart, bad credentials, and a handler too
//! slow for LiveKit's deadline.
//!
//! What livekit-server v1.13.5 does, as these tests found it, is asserted here and summed up in
//! the module docs of `agent_worker`.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use callfleet_livekit::{
    LiveKit,
    agent_worker::{
        AgentWorker, AgentWorkerError, AgentWorkerHandle, AgentWorkerOptions, JobHandler, Offer,
        WorkerEvent, WorkerLoad,
    },
};
use callfleet_tests::{LiveKitServer, scaled, test_log, wait_for};
use livekit_api::{access_token::Claims, services::agent_dispatch::AgentDispatchClient};
use livekit_protocol as proto;
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};
use tokio_util::sync::CancellationToken;

/// Seed 001's dispatch metadata, as `lk dispatch create --metadata` sends it.
const SEED_001_METADATA: &str = r#"{"destination":"61402012298","account_code":"em-tech-01","transfer_target":"61731071901","caller_id":"LiveKitNehosHosted","caller_name":"LiveKit Nehos Hosted"}"#;

/// How a test worker answers offers.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Accept,
    Decline,
    /// Accept after this long.
    AcceptAfter(Duration),
}

/// What the handlers saw, across all of a test's workers.
#[derive(Debug, Clone)]
enum Seen {
    Offer {
        worker: &'static str,
        job: Box<proto::Job>,
        at: Instant,
    },
    Assigned {
        worker: &'static str,
        assignment: Box<proto::JobAssignment>,
    },
    NotAssigned {
        job_id: String,
        reason: String,
        at: Instant,
    },
    Terminated {
        job_id: String,
    },
}

#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<Seen>>>);

impl Journal {
    fn push(&self, seen: Seen) {
        if let Ok(mut v) = self.0.lock() {
            v.push(seen);
        }
    }

    fn all(&self) -> Vec<Seen> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Offers of jobs in `room`: (worker, job, when).
    fn offers(&self, room: &str) -> Vec<(&'static str, proto::Job, Instant)> {
        self.all()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Offer { worker, job, at }
                    if job.room.as_ref().is_some_and(|r| r.name == room) =>
                {
                    Some((worker, *job, at))
                }
                _ => None,
            })
            .collect()
    }

    fn assigned(&self, job_id: &str) -> Option<(&'static str, proto::JobAssignment)> {
        self.all().into_iter().find_map(|s| match s {
            Seen::Assigned { worker, assignment }
                if assignment.job.as_ref().is_some_and(|j| j.id == job_id) =>
            {
                Some((worker, *assignment))
            }
            _ => None,
        })
    }

    fn not_assigned(&self, job_id: &str) -> Option<(String, Instant)> {
        self.all().into_iter().find_map(|s| match s {
            Seen::NotAssigned {
                job_id: id,
                reason,
                at,
                ..
            } if id == job_id => Some((reason, at)),
            _ => None,
        })
    }

    fn terminated(&self, job_id: &str) -> bool {
        self.all()
            .iter()
            .any(|s| matches!(s, Seen::Terminated { job_id: id, .. } if id == job_id))
    }
}

struct Recorder {
    worker: &'static str,
    answer: Answer,
    journal: Journal,
}

impl JobHandler for Recorder {
    async fn offer(&self, job: proto::Job, _resuming: bool) -> Offer {
        let identity = format!("{}-{}", self.worker, job.id);
        self.journal.push(Seen::Offer {
            worker: self.worker,
            job: Box::new(job),
            at: Instant::now(),
        });
        let accept = Offer::Accept {
            identity,
            name: "callfleet".into(),
            metadata: String::new(),
            attributes: [("callfleet.worker".to_owned(), self.worker.to_owned())].into(),
        };
        match self.answer {
            Answer::Accept => accept,
            Answer::Decline => Offer::Decline,
            Answer::AcceptAfter(delay) => {
                tokio::time::sleep(delay).await;
                accept
            }
        }
    }

    async fn assigned(&self, assignment: proto::JobAssignment) {
        self.journal.push(Seen::Assigned {
            worker: self.worker,
            assignment: Box::new(assignment),
        });
    }

    async fn not_assigned(&self, job_id: String, reason: String) {
        self.journal.push(Seen::NotAssigned {
            job_id,
            reason,
            at: Instant::now(),
        });
    }

    async fn terminated(&self, job_id: String) {
        self.journal.push(Seen::Terminated { job_id });
    }
}

/// A running agent worker.
struct Worker {
    handle: AgentWorkerHandle,
    load: watch::Sender<WorkerLoad>,
    events: mpsc::UnboundedReceiver<WorkerEvent>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), AgentWorkerError>>,
}

fn options(lk: &LiveKitServer, agent: &str) -> AgentWorkerOptions {
    let mut opts = AgentWorkerOptions::new(&lk.http_url(), &lk.key, &lk.secret, agent);
    opts.ping_interval = Duration::from_secs(2);
    opts
}

impl Worker {
    fn start(
        opts: AgentWorkerOptions,
        name: &'static str,
        answer: Answer,
        journal: &Journal,
    ) -> Self {
        Self::start_loaded(opts, name, answer, journal, WorkerLoad::default())
    }

    fn start_loaded(
        opts: AgentWorkerOptions,
        name: &'static str,
        answer: Answer,
        journal: &Journal,
        initial: WorkerLoad,
    ) -> Self {
        let worker = AgentWorker::new(opts).unwrap_or_else(|e| panic!("worker options: {e}"));
        let handle = worker.handle();
        let (load, load_rx) = watch::channel(initial);
        let (events_tx, events) = mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        let handler = Arc::new(Recorder {
            worker: name,
            answer,
            journal: journal.clone(),
        });
        let task = tokio::spawn(worker.run(handler, load_rx, shutdown.clone(), Some(events_tx)));
        Self {
            handle,
            load,
            events,
            shutdown,
            task,
        }
    }

    /// The next event, within `within` (scaled).
    async fn event(&mut self, what: &str, within: Duration) -> WorkerEvent {
        let limit = scaled(within);
        match tokio::time::timeout(limit, self.events.recv()).await {
            Ok(Some(ev)) => ev,
            Ok(None) => panic!("the worker stopped while waiting for {what}"),
            Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
        }
    }

    /// Wait for the registration (events before it are skipped); returns the worker id.
    async fn registered(&mut self) -> String {
        loop {
            if let WorkerEvent::Registered { worker_id } = self
                .event("the worker's registration", Duration::from_secs(20))
                .await
            {
                return worker_id;
            }
        }
    }

    async fn stop(self) -> Result<(), AgentWorkerError> {
        self.shutdown.cancel();
        let limit = scaled(Duration::from_secs(10));
        tokio::time::timeout(limit, self.task)
            .await
            .unwrap_or_else(|_| panic!("the worker did not stop within {limit:?} of shutdown"))
            .unwrap_or_else(|e| panic!("the worker task failed: {e}"))
    }
}

fn api(lk: &LiveKitServer) -> LiveKit {
    LiveKit::new(&lk.http_url(), &lk.key, &lk.secret, Duration::from_secs(10))
}

fn room_name(what: &str) -> String {
    format!("{what}-{}", uuid::Uuid::new_v4().simple())
}

/// Dispatch `agent` to a fresh room with seed 001's metadata; returns (room, dispatch id).
async fn dispatch(api: &LiveKit, agent: &str, what: &str) -> (String, String) {
    let room = room_name(what);
    let d = api
        .create_agent_dispatch(&room, agent, SEED_001_METADATA.to_owned())
        .await
        .unwrap_or_else(|e| panic!("CreateAgentDispatch {room}: {e}"));
    (room, d.id)
}

/// The first offer of a job in `room`.
async fn offered(journal: &Journal, room: &str) -> (&'static str, proto::Job, Instant) {
    wait_for(
        &format!("an offer of the job in {room}"),
        Duration::from_secs(15),
        || async move { journal.offers(room).into_iter().next() },
    )
    .await
}

async fn assigned(journal: &Journal, job_id: &str) -> (&'static str, proto::JobAssignment) {
    wait_for(
        &format!("the assignment of job {job_id}"),
        Duration::from_secs(15),
        || async move { journal.assigned(job_id) },
    )
    .await
}

/// The state LiveKit lists for `job_id` in `room`'s dispatches.
async fn listed_state(api: &LiveKit, room: &str, job_id: &str) -> Option<proto::JobState> {
    let dispatches = api.list_agent_dispatches(room).await.ok()?;
    dispatches
        .into_iter()
        .filter_map(|d| d.state)
        .flat_map(|s| s.jobs)
        .find(|j| j.id == job_id)
        .and_then(|j| j.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_worker_accepts_a_dispatch_and_gets_its_assignment() {
    test_log::init();
    let lk = LiveKitServer::start().await;
    let api = api(&lk);
    let journal = Journal::default();
    let agent = "callfleet-a";
    let mut w = Worker::start(options(&lk, agent), "w1", Answer::Accept, &journal);
    let worker_id = w.registered().await;

    let (room, dispatch_id) = dispatch(&api, agent, "accept").await;
    let (_, job, _) = offered(&journal, &room).await;
    assert_eq!(
        job.metadata, SEED_001_METADATA,
        "the dispatch's metadata, intact"
    );
    assert_eq!(job.agent_name, agent);
    assert_eq!(job.dispatch_id, dispatch_id);
    assert_eq!(job.r#type, proto::JobType::JtRoom as i32);

    let (_, assignment) = assigned(&journal, &job.id).await;
    let claims = Claims::from_unverified(&assignment.token)
        .unwrap_or_else(|e| panic!("the assignment's token does not decode: {e}"));
    assert_eq!(claims.video.room, room, "the token joins the job's room");
    assert!(claims.video.room_join && claims.video.agent);
    assert_eq!(
        claims.sub,
        format!("w1-{}", job.id),
        "as the identity the worker accepted with"
    );
    assert_eq!(
        claims.attributes.get("lk.agent_name").map(String::as_str),
        Some(agent)
    );
    assert_eq!(
        claims
            .attributes
            .get("callfleet.worker")
            .map(String::as_str),
        Some("w1")
    );

    let (api_ref, room_ref, job_ref) = (&api, room.as_str(), job.id.as_str());
    let state = wait_for(
        "ListDispatch to show the job running",
        Duration::from_secs(10),
        || async move {
            listed_state(api_ref, room_ref, job_ref)
                .await
                .filter(|s| s.status == proto::JobStatus::JsRunning as i32)
        },
    )
    .await;
    assert_eq!(state.worker_id, worker_id);
    assert_eq!(state.participant_identity, format!("w1-{}", job.id));

    // Deleting the dispatch terminates the running job on the worker.
    AgentDispatchClient::with_api_key(&lk.http_url(), &lk.key, &lk.secret)
        .delete_dispatch(&dispatch_id, &room)
        .await
        .unwrap_or_else(|e| panic!("DeleteDispatch: {e}"));
    wait_for("the job's termination", Duration::from_secs(10), || {
        let done = journal.terminated(&job.id).then_some(());
        async move { done }
    })
    .await;

    // A job whose end the worker reported is no longer the worker's: deleting its dispatch
    // terminates nothing. (The job ended before is the control: its termination arrives.)
    let (room2, dispatch2) = dispatch(&api, agent, "reported").await;
    let (_, job2, _) = offered(&journal, &room2).await;
    assigned(&journal, &job2.id).await;
    let (room3, dispatch3) = dispatch(&api, agent, "control").await;
    let (_, job3, _) = offered(&journal, &room3).await;
    assigned(&journal, &job3.id).await;
    w.handle
        .update_job(&job2.id, proto::JobStatus::JsSuccess, "")
        .unwrap_or_else(|e| panic!("update_job: {e}"));
    let dispatches = AgentDispatchClient::with_api_key(&lk.http_url(), &lk.key, &lk.secret);
    for (d, r) in [(&dispatch2, &room2), (&dispatch3, &room3)] {
        dispatches
            .delete_dispatch(d, r)
            .await
            .unwrap_or_else(|e| panic!("DeleteDispatch {r}: {e}"));
    }
    wait_for(
        "the control job's termination",
        Duration::from_secs(10),
        || {
            let done = journal.terminated(&job3.id).then_some(());
            async move { done }
        },
    )
    .await;
    assert!(
        !journal.terminated(&job2.id),
        "a job reported done was terminated: {:?}",
        journal.all()
    );

    assert!(w.stop().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_worker_decline_passes_the_job_to_the_other_worker() {
    test_log::init();
    let lk = LiveKitServer::start().await;
    let api = api(&lk);
    let journal = Journal::default();
    let agent = "callfleet-b";
    let mut decliner = Worker::start(options(&lk, agent), "decliner", Answer::Decline, &journal);
    let mut taker = Worker::start(options(&lk, agent), "taker", Answer::Accept, &journal);
    decliner.registered().await;
    taker.registered().await;

    // LiveKit picks a worker at random (weighted by 1 - load): dispatch until the decliner
    // has been asked first at least once (each try: 1/2).
    let mut declined_then_passed = 0;
    for _ in 0..12 {
        let (room, _) = dispatch(&api, agent, "decline").await;
        let (_, job, _) = offered(&journal, &room).await;
        let (worker, _) = assigned(&journal, &job.id).await;
        assert_eq!(worker, "taker", "only the taker accepts");
        let offers = journal.offers(&room);
        assert!(
            offers.iter().all(|(_, j, _)| j.id == job.id),
            "one job, offered again: {offers:?}"
        );
        if offers.first().is_some_and(|(w, _, _)| *w == "decliner") {
            assert_eq!(
                offers.len(),
                2,
                "declined, then offered to the taker: {offers:?}"
            );
            declined_then_passed += 1;
            break;
        }
        assert_eq!(offers.len(), 1, "the taker took it at once: {offers:?}");
    }
    assert!(
        declined_then_passed > 0,
        "the decliner was never asked first in 12 dispatches"
    );

    // With the taker full, the decliner is the only one asked, and the job stays unassigned.
    taker.load.send_replace(WorkerLoad {
        load: 1.0,
        full: true,
    });
    // The taker's task sends the status as soon as it sees the change; until LiveKit has read
    // it, the taker may still be offered a job (a few tries at most).
    let mut nobody = None;
    for _ in 0..5 {
        let (room, dispatch_id) = dispatch(&api, agent, "nobody").await;
        let (worker, _, _) = offered(&journal, &room).await;
        if worker == "decliner" {
            nobody = Some((room, dispatch_id));
            break;
        }
    }
    let Some((room, dispatch_id)) = nobody else {
        panic!("the taker was still offered jobs after reporting itself full");
    };
    let offers = journal.offers(&room);
    assert_eq!(offers.len(), 1, "nobody else to offer it to: {offers:?}");
    let listed = api
        .list_agent_dispatches(&room)
        .await
        .unwrap_or_else(|e| panic!("ListDispatch: {e}"));
    let d = listed.iter().find(|d| d.id == dispatch_id);
    assert!(
        d.is_some_and(|d| d.state.as_ref().is_none_or(|s| s.jobs.is_empty())),
        "a declined dispatch keeps no job: {listed:?}"
    );

    assert!(decliner.stop().await.is_ok());
    assert!(taker.stop().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_worker_reregisters_after_a_server_restart() {
    test_log::init();
    let mut lk = LiveKitServer::start().await;
    let journal = Journal::default();
    let agent = "callfleet-c";
    let mut w = Worker::start(options(&lk, agent), "w1", Answer::Accept, &journal);
    let first = w.registered().await;

    lk.restart().await;
    match w.event("the disconnect", Duration::from_secs(20)).await {
        WorkerEvent::Disconnected { error } => assert!(!error.is_empty()),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    let second = w.registered().await;
    assert_ne!(
        first, second,
        "a new registration (the restarted server forgot the worker)"
    );

    let api = api(&lk);
    let (room, _) = dispatch(&api, agent, "restart").await;
    let (_, job, _) = offered(&journal, &room).await;
    assigned(&journal, &job.id).await;
    assert!(w.stop().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_worker_bad_secret_is_a_clear_error_at_once() {
    test_log::init();
    let lk = LiveKitServer::start().await;
    let wrong = "not-the-secret-4242";
    let mut opts = options(&lk, "callfleet-d");
    opts.api_secret = wrong.to_owned();
    let journal = Journal::default();
    let mut w = Worker::start(opts, "w1", Answer::Accept, &journal);
    let started = Instant::now();
    let limit = scaled(Duration::from_secs(5));
    let result = tokio::time::timeout(limit, &mut w.task)
        .await
        .unwrap_or_else(|_| panic!("run() still retrying after {limit:?} with a wrong secret"))
        .unwrap_or_else(|e| panic!("the worker task failed: {e}"));
    let Err(err) = result else {
        panic!("run() succeeded with a wrong secret");
    };
    let shown = err.to_string();
    assert!(
        matches!(err, AgentWorkerError::Unauthorized { status: 401, .. }),
        "{shown}"
    );
    assert!(
        shown.contains("livekit.api_key") && shown.contains("livekit.api_secret"),
        "{shown}"
    );
    assert!(!shown.contains(wrong), "the secret leaked: {shown}");
    // One attempt, no reconnect loop: not a single disconnect was reported.
    assert!(w.events.try_recv().is_err(), "events before the auth error");
    eprintln!(
        "bad secret: run() returned in {:?}: {shown}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_worker_slow_handler_is_declined_in_time() {
    test_log::init();
    let lk = LiveKitServer::start().await;
    let api = api(&lk);
    let journal = Journal::default();
    let agent = "callfleet-e";
    // The slow worker's handler would accept after 20 s; the client declines at its default
    // offer_timeout (2 s), early enough for LiveKit to offer the job to the other worker.
    let limit = options(&lk, agent).offer_timeout;
    let mut slow = Worker::start(
        options(&lk, agent),
        "slow",
        Answer::AcceptAfter(Duration::from_secs(20)),
        &journal,
    );
    let mut taker = Worker::start(options(&lk, agent), "taker", Answer::Accept, &journal);
    slow.registered().await;
    taker.registered().await;
    let mut passed = false;
    for _ in 0..12 {
        let sent = Instant::now();
        let (room, _) = dispatch(&api, agent, "slow").await;
        let (first, job, at) = offered(&journal, &room).await;
        eprintln!(
            "offered {:?} after CreateAgentDispatch was sent",
            at.duration_since(sent)
        );
        let (worker, _) = assigned(&journal, &job.id).await;
        assert_eq!(worker, "taker");
        if first == "slow" {
            match slow
                .event("the slow offer's timeout", Duration::from_secs(10))
                .await
            {
                WorkerEvent::OfferTimedOut { job_id } => assert_eq!(job_id, job.id),
                other => panic!("expected OfferTimedOut, got {other:?}"),
            }
            let offers = journal.offers(&room);
            let second = offers.get(1).map(|(_, _, t)| t.duration_since(at));
            eprintln!("slow handler: declined, re-offered after {second:?}");
            assert!(
                second.is_some_and(|d| d >= limit - Duration::from_millis(100)),
                "{second:?}"
            );
            passed = true;
            break;
        }
    }
    assert!(
        passed,
        "the slow worker was never asked first in 12 dispatches"
    );
    assert!(slow.stop().await.is_ok());
    assert!(taker.stop().await.is_ok());
}

/// What livekit-server does with an answer later than its dispatcher's deadline: a worker whose
/// own limit is LiveKit's documented 10 s (here 8 s) accepts after 2 s and after 4 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_worker_answer_after_livekits_deadline_is_not_assigned() {
    test_log::init();
    let lk = LiveKitServer::start().await;
    let api = api(&lk);
    let journal = Journal::default();
    for (agent, delay, expect_assigned) in [
        ("callfleet-f2", Duration::from_secs(2), true),
        ("callfleet-f4", Duration::from_secs(4), false),
    ] {
        let mut opts = options(&lk, agent);
        opts.offer_timeout = Duration::from_secs(8);
        let mut w = Worker::start(opts, "late", Answer::AcceptAfter(delay), &journal);
        w.registered().await;
        let (room, _) = dispatch(&api, agent, "late").await;
        let (_, job, offered_at) = offered(&journal, &room).await;
        if expect_assigned {
            assigned(&journal, &job.id).await;
        } else {
            let (reason, at) = wait_for(
                &format!("job {} reported not assigned", job.id),
                Duration::from_secs(20),
                || {
                    let seen = journal.not_assigned(&job.id);
                    async move { seen }
                },
            )
            .await;
            eprintln!(
                "accepted after {delay:?}: not assigned ({reason}), known {:?} after the offer",
                at.duration_since(offered_at)
            );
            assert!(journal.assigned(&job.id).is_none());
            assert!(
                listed_state(&api, &room, &job.id).await.is_none(),
                "LiveKit lists no job"
            );
            // livekit-server had stopped waiting: it logs the late accept as unknown.
            let log = std::fs::read_to_string(lk.log_path()).unwrap_or_default();
            assert!(
                log.contains("received availability response for unknown job"),
                "livekit-server's log: {log}"
            );
        }
        assert!(w.stop().await.is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_worker_drain_takes_no_more_jobs() {
    test_log::init();
    let lk = LiveKitServer::start().await;
    let api = api(&lk);
    let journal = Journal::default();
    let agent = "callfleet-g";
    let mut draining = Worker::start(options(&lk, agent), "draining", Answer::Accept, &journal);
    let mut other = Worker::start(options(&lk, agent), "other", Answer::Accept, &journal);
    draining.registered().await;
    other.registered().await;
    draining
        .handle
        .drain()
        .unwrap_or_else(|e| panic!("drain: {e}"));
    // Until LiveKit has read the draining status it may still offer this worker a job, which
    // the client then declines without asking the handler: either way the handler sees none.
    for _ in 0..4 {
        let (room, _) = dispatch(&api, agent, "drain").await;
        let (_, job, _) = offered(&journal, &room).await;
        let (worker, _) = assigned(&journal, &job.id).await;
        assert_eq!(worker, "other");
    }
    let asked: Vec<_> = journal
        .all()
        .into_iter()
        .filter(|s| {
            matches!(
                s,
                Seen::Offer {
                    worker: "draining",
                    ..
                }
            )
        })
        .collect();
    assert!(
        asked.is_empty(),
        "a draining worker's handler was asked: {asked:?}"
    );
    // Still connected: no disconnect was reported.
    assert!(draining.events.try_recv().is_err());
    assert!(draining.stop().await.is_ok());
    assert!(other.stop().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_worker_leaves_a_frozen_server_and_comes_back() {
    test_log::init();
    let lk = LiveKitServer::start().await;
    let journal = Journal::default();
    let agent = "callfleet-h";
    let mut opts = options(&lk, agent);
    opts.ping_interval = Duration::from_secs(1);
    let mut w = Worker::start(opts, "w1", Answer::Accept, &journal);
    w.registered().await;

    // Frozen: the socket stays open and nothing is answered.
    lk.signal("STOP");
    let event = w
        .event(
            "the disconnect from a silent server",
            Duration::from_secs(15),
        )
        .await;
    lk.signal("CONT");
    match event {
        WorkerEvent::Disconnected { error } => {
            assert!(error.contains("nothing heard from the server"), "{error}");
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    w.registered().await;
    let api = api(&lk);
    let (room, _) = dispatch(&api, agent, "thawed").await;
    let (_, job, _) = offered(&journal, &room).await;
    assigned(&journal, &job.id).await;
    assert!(w.stop().await.is_ok());
}
