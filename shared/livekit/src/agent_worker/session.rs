//! One registered connection ([`Session`]): offers, assignments, terminations, pings, status
//! and job updates, until it drops or the worker shuts down (then it closes politely).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use livekit_protocol::{self as proto, server_message, worker_message};
use tokio::{net::TcpStream, time::Instant};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite};
use tokio_util::sync::CancellationToken;

use super::{
    Command, JobHandler, Offer, WorkerEvent,
    wire::{self, Frame},
    worker::{Answered, End, Worker},
};

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One frame out.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// An accept without a `JobAssignment` this long is lost (LiveKit Agents' `ASSIGNMENT_TIMEOUT`).
const ASSIGNMENT_WAIT: Duration = Duration::from_millis(7500);
/// The server's answer to our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Why a connection ended or could not be made (the worker retries all of these).
#[derive(Debug, thiserror::Error)]
pub(super) enum Lost {
    #[error("timed out after {0:?} {1}")]
    Timeout(Duration, &'static str),
    #[error("HTTP {0} at the WebSocket upgrade")]
    Http(u16),
    #[error("WebSocket error")]
    Ws(#[source] Box<tungstenite::Error>),
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

/// One registered connection.
pub(super) struct Session {
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
    pub(super) fn new(ws: Ws, generation: u64, worker_id: String) -> Self {
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

    pub(super) async fn serve<H: JobHandler>(
        &mut self,
        w: &mut Worker<H>,
        shutdown: &CancellationToken,
    ) -> End {
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
            Some(Err(e)) => return Err(Lost::Ws(Box::new(e))),
            Some(Ok(frame)) => frame,
        };
        self.last_heard = Instant::now();
        let msg = match wire::decode(frame)? {
            Frame::Nothing => return Ok(()),
            Frame::Closed(why) => return Err(Lost::Closed(why)),
            Frame::Server(msg) => *msg,
        };
        match msg {
            server_message::Message::Availability(req) => w.spawn_offer(self.generation, req),
            server_message::Message::Assignment(assignment) => {
                let job_id = assignment
                    .job
                    .as_ref()
                    .map_or_else(String::new, |j| j.id.clone());
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
                tracing::trace!(
                    rtt_ms = p.timestamp.saturating_sub(p.last_timestamp),
                    "pong"
                );
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

    async fn on_answer<H: JobHandler>(
        &mut self,
        w: &mut Worker<H>,
        a: Answered,
    ) -> Result<(), Lost> {
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

    async fn on_command<H: JobHandler>(
        &mut self,
        w: &mut Worker<H>,
        cmd: Command,
    ) -> Result<(), Lost> {
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
    pub(super) fn forget_accepted<H: JobHandler>(&mut self, w: &Worker<H>, reason: &str) {
        for (job_id, _) in self.accepted.drain() {
            w.not_assigned(job_id, reason);
        }
    }

    async fn send_status<H: JobHandler>(&mut self, w: &mut Worker<H>) -> Result<(), Lost> {
        self.seq += 1;
        let load = *w.load.borrow_and_update();
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
            w.not_assigned(
                job_id.clone(),
                "the worker shut down before LiveKit assigned the job",
            );
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
pub(super) async fn send(ws: &mut Ws, message: worker_message::Message) -> Result<(), Lost> {
    match tokio::time::timeout(WRITE_TIMEOUT, ws.send(wire::encode(message))).await {
        Err(_) => Err(Lost::Timeout(WRITE_TIMEOUT, "writing a frame")),
        Ok(Err(e)) => Err(Lost::Ws(Box::new(e))),
        Ok(Ok(())) => Ok(()),
    }
}
