//! The worker's loop: connections one after another ([`Worker::run`]), each registered and
//! served ([`Session`]) until it drops or the worker shuts down.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::{SinkExt, StreamExt};
use livekit_protocol::{self as proto, server_message, worker_message};
use tokio::{
    net::TcpStream,
    sync::{mpsc, watch},
    task::JoinSet,
    time::Instant,
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async_with_config,
    tungstenite::{self, client::IntoClientRequest, http::HeaderValue},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    AgentWorkerError, AgentWorkerOptions, Command, JobHandler, Offer, WorkerEvent, WorkerLoad,
    wire::{self, Frame},
};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// TCP + WebSocket handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// livekit-server's own `RegisterTimeout`.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// One frame out.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// An accept without a `JobAssignment` this long is lost (LiveKit Agents' `ASSIGNMENT_TIMEOUT`).
const ASSIGNMENT_WAIT: Duration = Duration::from_millis(7500);
/// The server's answer to our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Handler callbacks still running when the worker stops.
const CALLBACKS_WAIT: Duration = Duration::from_secs(5);

/// Why a connection ended or could not be made (the worker retries all of these).
#[derive(Debug, thiserror::Error)]
enum Lost {
    #[error("timed out after {0:?} {1}")]
    Timeout(Duration, &'static str),
    #[error("HTTP {0} at the WebSocket upgrade")]
    Http(u16),
    #[error("WebSocket error")]
    Ws(#[source] tungstenite::Error),
    #[error(transparent)]
    Frame(#[from] wire::FrameError),
    #[error("the server closed the connection ({0})")]
    Closed(String),
    #[error("the connection ended without a close frame")]
    Ended,
    #[error("expected RegisterWorkerResponse, got {0}")]
    Unregistered(&'static str),
    #[error("nothing heard from the server for {0:?}")]
    Silent(Duration),
    #[error("the server asked this worker to go away (GoAway)")]
    GoAway,
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// An offer's answer, from its own task.
struct Answered {
    /// The connection the offer came on.
    generation: u64,
    job_id: String,
    offer: Offer,
    took: Duration,
    /// Declined by the client: the handler ran out of time (or panicked).
    forced: Option<&'static str>,
}

/// What lives across connections.
pub(super) struct Worker<H> {
    opts: AgentWorkerOptions,
    url: url::Url,
    handler: Arc<H>,
    load: watch::Receiver<WorkerLoad>,
    load_open: bool,
    commands: mpsc::UnboundedReceiver<Command>,
    commands_open: bool,
    events: Option<mpsc::UnboundedSender<WorkerEvent>>,
    offers: JoinSet<Answered>,
    callbacks: TaskTracker,
    draining: bool,
    generation: u64,
}

/// How a connection ended.
enum End {
    Shutdown,
    Lost(Lost),
}

impl<H: JobHandler> Worker<H> {
    pub(super) fn new(
        opts: AgentWorkerOptions,
        url: url::Url,
        handler: Arc<H>,
        load: watch::Receiver<WorkerLoad>,
        commands: mpsc::UnboundedReceiver<Command>,
        events: Option<mpsc::UnboundedSender<WorkerEvent>>,
    ) -> Self {
        Self {
            opts,
            url,
            handler,
            load,
            load_open: true,
            commands,
            commands_open: true,
            events,
            offers: JoinSet::new(),
            callbacks: TaskTracker::new(),
            draining: false,
            generation: 0,
        }
    }

    pub(super) async fn run(mut self, shutdown: CancellationToken) -> Result<(), AgentWorkerError> {
        let result = self.connections(&shutdown).await;
        self.offers.abort_all();
        self.callbacks.close();
        if tokio::time::timeout(CALLBACKS_WAIT, self.callbacks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                wait_ms = CALLBACKS_WAIT.as_millis() as u64,
                "agent worker stopped with job handler callbacks still running"
            );
        }
        result
    }

    fn backoff() -> impl Iterator<Item = Duration> {
        ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(10))
            .with_jitter()
            .without_max_times()
            .build()
    }

    async fn connections(&mut self, shutdown: &CancellationToken) -> Result<(), AgentWorkerError> {
        let mut backoff = Self::backoff();
        loop {
            let opened = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                opened = self.open() => opened,
            };
            let lost = match opened {
                Ok(Ok((ws, worker_id))) => {
                    backoff = Self::backoff();
                    self.generation += 1;
                    tracing::info!(worker.id = %worker_id, agent.name = %self.opts.agent_name, url = %self.url, "agent worker registered");
                    let mut session = Session::new(ws, self.generation, worker_id);
                    match session.serve(self, shutdown).await {
                        End::Shutdown => return Ok(()),
                        End::Lost(lost) => {
                            session.forget_accepted(self, "the connection to LiveKit was lost");
                            lost
                        }
                    }
                }
                Ok(Err(lost)) => lost,
                Err(fatal) => {
                    tracing::error!(error = %fatal, "agent worker cannot register with LiveKit");
                    return Err(fatal);
                }
            };
            let error = error_chain(&lost);
            let delay = backoff.next().unwrap_or(Duration::from_secs(10));
            tracing::warn!(%error, url = %self.url, retry_in_ms = delay.as_millis() as u64, "agent worker disconnected from LiveKit");
            self.emit(WorkerEvent::Disconnected { error });
            if !self.wait_between(delay, shutdown).await {
                return Ok(());
            }
        }
    }

    /// Sleep before the next connection, still reaping offers and commands; false on shutdown.
    async fn wait_between(&mut self, delay: Duration, shutdown: &CancellationToken) -> bool {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = tokio::time::sleep_until(until) => return true,
                Some(done) = self.offers.join_next(), if !self.offers.is_empty() => {
                    if let Ok(answered) = done {
                        self.answer_lost(answered);
                    }
                }
                cmd = self.commands.recv(), if self.commands_open => match cmd {
                    None => self.commands_open = false,
                    Some(Command::Drain) => self.draining = true,
                    Some(Command::UpdateJob(u)) => tracing::debug!(job.id = %u.job_id, "job update dropped: no connection (LiveKit forgot the job)"),
                },
            }
        }
    }

    /// Connect and register. `Err` is fatal, `Ok(Err)` worth retrying.
    async fn open(&self) -> Result<Result<(Ws, String), Lost>, AgentWorkerError> {
        let token = wire::worker_token(&self.opts.api_key, &self.opts.api_secret)
            .map_err(|source| AgentWorkerError::Token { source })?;
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| AgentWorkerError::InvalidUrl {
                url: self.opts.url.clone(),
                reason: e.to_string(),
            })?;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            AgentWorkerError::InvalidOption {
                field: "api_key",
                reason: "not usable in an HTTP header".into(),
            }
        })?;
        request.headers_mut().insert("Authorization", bearer);
        let connect = connect_async_with_config(request, None, true);
        let mut ws = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Err(_) => return Ok(Err(Lost::Timeout(CONNECT_TIMEOUT, "connecting"))),
            Ok(Err(tungstenite::Error::Http(resp))) => {
                // The body names the rejected token: never shown.
                let status = resp.status().as_u16();
                if matches!(status, 401 | 403) {
                    return Err(AgentWorkerError::Unauthorized {
                        url: self.url.to_string(),
                        api_key: self.opts.api_key.clone(),
                        status,
                    });
                }
                return Ok(Err(Lost::Http(status)));
            }
            Ok(Err(e)) => return Ok(Err(Lost::Ws(e))),
            Ok(Ok((ws, _response))) => ws,
        };
        let register = wire::register(
            &self.opts.agent_name,
            &self.opts.version,
            self.opts.namespace.as_deref(),
            self.opts.ping_interval,
        );
        if let Err(lost) = send(&mut ws, register).await {
            return Ok(Err(lost));
        }
        let registered = tokio::time::timeout(REGISTER_TIMEOUT, async {
            loop {
                let frame = match ws.next().await {
                    None => return Err(Lost::Ended),
                    Some(Err(e)) => return Err(Lost::Ws(e)),
                    Some(Ok(frame)) => frame,
                };
                match wire::decode(frame)? {
                    Frame::Nothing => {}
                    Frame::Closed(why) => return Err(Lost::Closed(why)),
                    Frame::Server(server_message::Message::Register(r)) => return Ok(r.worker_id),
                    Frame::Server(other) => return Err(Lost::Unregistered(kind(&other))),
                }
            }
        })
        .await;
        Ok(match registered {
            Err(_) => Err(Lost::Timeout(REGISTER_TIMEOUT, "waiting for RegisterWorkerResponse")),
            Ok(Err(lost)) => Err(lost),
            Ok(Ok(worker_id)) => Ok((ws, worker_id)),
        })
    }

    fn emit(&self, event: WorkerEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }

    /// Run an offer through the handler in its own task (declined at once while draining).
    fn spawn_offer(&mut self, generation: u64, req: proto::AvailabilityRequest) {
        let Some(job) = req.job else {
            tracing::warn!("AvailabilityRequest without a job: ignored");
            return;
        };
        let job_id = job.id.clone();
        tracing::info!(
            job.id = %job_id,
            dispatch.id = %job.dispatch_id,
            room = job.room.as_ref().map_or("", |r| r.name.as_str()),
            resuming = req.resuming,
            "job offered"
        );
        let handler = Arc::clone(&self.handler);
        let limit = self.opts.offer_timeout;
        let draining = self.draining;
        let resuming = req.resuming;
        self.offers.spawn(async move {
            let started = Instant::now();
            let (offer, forced) = if draining {
                (Offer::Decline, None)
            } else {
                // Its own task, so that a panicking handler is a decline, not a dead worker.
                let mut task = tokio::spawn(async move { handler.offer(job, resuming).await });
                match tokio::time::timeout(limit, &mut task).await {
                    Ok(Ok(offer)) => (offer, None),
                    Ok(Err(_)) => (Offer::Decline, Some("the handler panicked")),
                    Err(_) => {
                        task.abort();
                        (Offer::Decline, Some("the handler did not answer in time"))
                    }
                }
            };
            Answered {
                generation,
                job_id,
                offer,
                took: started.elapsed(),
                forced,
            }
        });
    }

    /// An answer whose connection is gone: LiveKit no longer waits for it.
    fn answer_lost(&self, answered: Answered) {
        if matches!(answered.offer, Offer::Accept { .. }) {
            tracing::warn!(job.id = %answered.job_id, "job accepted after its connection to LiveKit was lost: not assigned");
            self.not_assigned(answered.job_id, "accepted after the connection to LiveKit was lost");
        } else {
            tracing::debug!(job.id = %answered.job_id, "offer answered after its connection was lost");
        }
    }

    fn not_assigned(&self, job_id: String, reason: &str) {
        let handler = Arc::clone(&self.handler);
        let reason = reason.to_owned();
        self.callbacks
            .spawn(async move { handler.not_assigned(job_id, reason).await });
    }
}

/// One registered connection.
struct Session {
    ws: Ws,
    generation: u64,
    /// Assigned on this connection and not ended.
    running: HashSet<String>,
    /// Accepted, assignment not seen yet.
    accepted: HashMap<String, Instant>,
    seq: u64,
    last_heard: Instant,
    /// The worker id, until the first pong announces it ([`WorkerEvent::Registered`]).
    unannounced: Option<String>,
}

impl Session {
    fn new(ws: Ws, generation: u64, worker_id: String) -> Self {
        Self {
            ws,
            generation,
            running: HashSet::new(),
            accepted: HashMap::new(),
            seq: 0,
            last_heard: Instant::now(),
            unannounced: Some(worker_id),
        }
    }

    async fn serve<H: JobHandler>(&mut self, w: &mut Worker<H>, shutdown: &CancellationToken) -> End {
        match self.serve_inner(w, shutdown).await {
            Ok(()) => {
                self.close(w).await;
                End::Shutdown
            }
            Err(lost) => End::Lost(lost),
        }
    }

    async fn serve_inner<H: JobHandler>(
        &mut self,
        w: &mut Worker<H>,
        shutdown: &CancellationToken,
    ) -> Result<(), Lost> {
        self.send_status(w).await?;
        // livekit-server adds the worker to its pool after the RegisterWorkerResponse and only
        // then reads further messages: the pong to this ping says dispatches reach us.
        send(&mut self.ws, wire::ping()).await?;
        let every = w.opts.ping_interval;
        let silence = every * 3;
        let mut ping = tokio::time::interval_at(Instant::now() + every, every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sweep = tokio::time::interval(Duration::from_millis(500));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                frame = self.ws.next() => self.on_frame(w, frame)?,
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > silence {
                        return Err(Lost::Silent(silence));
                    }
                    send(&mut self.ws, wire::ping()).await?;
                }
                _ = sweep.tick() => self.sweep(w),
                changed = w.load.changed(), if w.load_open => {
                    if changed.is_err() {
                        w.load_open = false;
                    } else {
                        self.send_status(w).await?;
                    }
                }
                cmd = w.commands.recv(), if w.commands_open => match cmd {
                    None => w.commands_open = false,
                    Some(cmd) => self.on_command(w, cmd).await?,
                },
                Some(done) = w.offers.join_next(), if !w.offers.is_empty() => {
                    if let Ok(answered) = done {
                        self.on_answer(w, answered).await?;
                    }
                }
            }
        }
    }

    fn on_frame<H: JobHandler>(
        &mut self,
        w: &mut Worker<H>,
        frame: Option<Result<tungstenite::Message, tungstenite::Error>>,
    ) -> Result<(), Lost> {
        let frame = match frame {
            None => return Err(Lost::Ended),
            Some(Err(e)) => return Err(Lost::Ws(e)),
            Some(Ok(frame)) => frame,
        };
        self.last_heard = Instant::now();
        let msg = match wire::decode(frame)? {
            Frame::Nothing => return Ok(()),
            Frame::Closed(why) => return Err(Lost::Closed(why)),
            Frame::Server(msg) => msg,
        };
        match msg {
            server_message::Message::Availability(req) => w.spawn_offer(self.generation, req),
            server_message::Message::Assignment(assignment) => {
                let job_id = assignment.job.as_ref().map_or_else(String::new, |j| j.id.clone());
                if self.accepted.remove(&job_id).is_none() {
                    tracing::warn!(job.id = %job_id, "JobAssignment for a job this worker did not accept (passed on)");
                }
                tracing::info!(job.id = %job_id, "job assigned");
                self.running.insert(job_id);
                let handler = Arc::clone(&w.handler);
                w.callbacks
                    .spawn(async move { handler.assigned(assignment).await });
            }
            server_message::Message::Termination(t) => {
                tracing::info!(job.id = %t.job_id, "job terminated by LiveKit");
                self.running.remove(&t.job_id);
                let handler = Arc::clone(&w.handler);
                w.callbacks
                    .spawn(async move { handler.terminated(t.job_id).await });
            }
            server_message::Message::Pong(p) => {
                tracing::trace!(rtt_ms = p.timestamp.saturating_sub(p.last_timestamp), "pong");
                if let Some(worker_id) = self.unannounced.take() {
                    w.emit(WorkerEvent::Registered { worker_id });
                }
            }
            server_message::Message::Register(_) => {
                tracing::warn!("RegisterWorkerResponse on a registered connection: ignored");
            }
            server_message::Message::GoAway(_) => return Err(Lost::GoAway),
        }
        Ok(())
    }

    async fn on_answer<H: JobHandler>(&mut self, w: &mut Worker<H>, a: Answered) -> Result<(), Lost> {
        if a.generation != self.generation {
            w.answer_lost(a);
            return Ok(());
        }
        let took_ms = a.took.as_millis() as u64;
        let answer = match &a.offer {
            Offer::Accept { .. } => "accept",
            Offer::Decline => "decline",
            Offer::Terminate => "terminate",
        };
        if let Some(why) = a.forced {
            tracing::warn!(job.id = %a.job_id, took_ms, limit_ms = w.opts.offer_timeout.as_millis() as u64, "{why}: offer declined");
            w.emit(WorkerEvent::OfferTimedOut {
                job_id: a.job_id.clone(),
            });
        } else {
            tracing::info!(job.id = %a.job_id, took_ms, answer, "offer answered");
        }
        if answer == "accept" {
            self.accepted.insert(a.job_id.clone(), Instant::now());
        }
        send(&mut self.ws, wire::answer(&a.job_id, &a.offer)).await
    }

    async fn on_command<H: JobHandler>(&mut self, w: &mut Worker<H>, cmd: Command) -> Result<(), Lost> {
        match cmd {
            Command::Drain => {
                w.draining = true;
                tracing::info!("agent worker draining: no new jobs");
                self.send_status(w).await
            }
            Command::UpdateJob(update) => {
                if !self.running.contains(&update.job_id) {
                    tracing::debug!(job.id = %update.job_id, "job update dropped: not running on this connection");
                    return Ok(());
                }
                let ended = matches!(
                    proto::JobStatus::try_from(update.status),
                    Ok(proto::JobStatus::JsSuccess | proto::JobStatus::JsFailed)
                );
                if ended {
                    self.running.remove(&update.job_id);
                }
                send(&mut self.ws, worker_message::Message::UpdateJob(update)).await?;
                if ended {
                    // job_count changed.
                    self.send_status(w).await?;
                }
                Ok(())
            }
        }
    }

    /// Accepted jobs whose assignment never came.
    fn sweep<H: JobHandler>(&mut self, w: &Worker<H>) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .accepted
            .iter()
            .filter(|(_, at)| now.duration_since(**at) > ASSIGNMENT_WAIT)
            .map(|(id, _)| id.clone())
            .collect();
        for job_id in expired {
            self.accepted.remove(&job_id);
            tracing::warn!(job.id = %job_id, wait_ms = ASSIGNMENT_WAIT.as_millis() as u64, "accepted job never assigned (LiveKit stopped waiting for the answer)");
            w.not_assigned(job_id, "LiveKit did not assign the accepted job");
        }
    }

    /// After the connection is lost: accepted jobs will not be assigned.
    fn forget_accepted<H: JobHandler>(&mut self, w: &Worker<H>, reason: &str) {
        for (job_id, _) in self.accepted.drain() {
            w.not_assigned(job_id, reason);
        }
    }

    async fn send_status<H: JobHandler>(&mut self, w: &Worker<H>) -> Result<(), Lost> {
        self.seq += 1;
        let load = *w.load.borrow();
        let msg = wire::status(load, w.draining, self.running.len(), self.seq);
        send(&mut self.ws, msg).await
    }

    /// Shut down politely: full + draining, outstanding offers answered (each within its own
    /// timeout), queued job updates sent, then a close frame.
    async fn close<H: JobHandler>(&mut self, w: &mut Worker<H>) {
        w.draining = true;
        if self.send_status(w).await.is_err() {
            return;
        }
        let until = Instant::now() + w.opts.offer_timeout + Duration::from_secs(1);
        while !w.offers.is_empty() {
            let step = tokio::select! {
                () = tokio::time::sleep_until(until) => break,
                Some(done) = w.offers.join_next() => match done {
                    Ok(answered) => self.on_answer(w, answered).await,
                    Err(_) => Ok(()),
                },
                frame = self.ws.next() => self.on_frame(w, frame),
            };
            if step.is_err() {
                return;
            }
        }
        while let Ok(cmd) = w.commands.try_recv() {
            if self.on_command(w, cmd).await.is_err() {
                return;
            }
        }
        for job_id in self.accepted.keys() {
            w.not_assigned(job_id.clone(), "the worker shut down before LiveKit assigned the job");
        }
        self.accepted.clear();
        let _ = tokio::time::timeout(WRITE_TIMEOUT, self.ws.close(None)).await;
        // Read to the server's close frame (bounded) so the close is clean on both sides.
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
        tracing::info!(agent.name = %w.opts.agent_name, "agent worker closed its connection to LiveKit");
    }
}

async fn send(ws: &mut Ws, message: worker_message::Message) -> Result<(), Lost> {
    match tokio::time::timeout(WRITE_TIMEOUT, ws.send(wire::encode(message))).await {
        Err(_) => Err(Lost::Timeout(WRITE_TIMEOUT, "writing a frame")),
        Ok(Err(e)) => Err(Lost::Ws(e)),
        Ok(Ok(())) => Ok(()),
    }
}

fn kind(msg: &server_message::Message) -> &'static str {
    match msg {
        server_message::Message::Register(_) => "Register",
        server_message::Message::Availability(_) => "AvailabilityRequest",
        server_message::Message::Assignment(_) => "JobAssignment",
        server_message::Message::Termination(_) => "JobTermination",
        server_message::Message::Pong(_) => "WorkerPong",
        server_message::Message::GoAway(_) => "GoAway",
    }
}
