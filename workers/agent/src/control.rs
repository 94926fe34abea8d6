//! Live-call control, the domain side: while a worker holds a call it answers the requests the
//! bus's [`callfleet_bus::ControlInbox`] receives on `calls.control.<call_id>` (hang up,
//! transfer). Hang-up cancels [`Control::hangup`]; a transfer is handed to the code holding the
//! answered call, which replies once LiveKit has the REFER's result.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use callfleet_bus::{ControlInbox, Responder};
use callfleet_domain::control::{ControlReply, ControlRequest};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use crate::Worker;

/// A transfer asked for by an operator, waiting for the call's holder.
pub struct Transfer {
    pub to: String,
    reply: oneshot::Sender<ControlReply>,
}

impl Transfer {
    pub fn answer(self, reply: ControlReply) {
        let _ = self.reply.send(reply);
    }
}

pub struct Control {
    /// Cancelled when an operator asked to hang up.
    pub hangup: CancellationToken,
    /// Set once the call is answered: transfers are refused before.
    answered: Arc<AtomicBool>,
    transfers: mpsc::Receiver<Transfer>,
    task: Option<JoinHandle<()>>,
}

impl Control {
    /// Start answering control requests for `call_id`. If NATS refuses the subscription the
    /// call goes on without remote control (logged).
    pub async fn listen(w: &Worker, call_id: &str, transfer_target: Option<String>) -> Self {
        let hangup = CancellationToken::new();
        let answered = Arc::new(AtomicBool::new(false));
        let (tx, transfers) = mpsc::channel(4);
        let task = match w.bus.control_inbox(call_id).await {
            Ok(inbox) => Some(tokio::spawn(serve(
                inbox,
                hangup.clone(),
                answered.clone(),
                tx,
                transfer_target,
            ))),
            Err(e) => {
                tracing::warn!(call.id = %call_id, error = %e, "cannot subscribe to call control; the call cannot be hung up or transferred remotely");
                None
            }
        };
        Self {
            hangup,
            answered,
            transfers,
            task,
        }
    }

    pub fn set_answered(&self) {
        self.answered.store(true, Ordering::Release);
    }

    /// The next transfer request (pending forever when there is none).
    pub async fn next_transfer(&mut self) -> Transfer {
        match self.transfers.recv().await {
            Some(t) => t,
            None => std::future::pending().await,
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn serve(
    mut inbox: ControlInbox,
    hangup: CancellationToken,
    answered: Arc<AtomicBool>,
    transfers: mpsc::Sender<Transfer>,
    default_target: Option<String>,
) {
    while let Some((request, responder)) = inbox.next().await {
        let reply = match request {
            Err(e) => ControlReply::err(format!("invalid control request: {e}")),
            Ok(ControlRequest::Hangup) => {
                hangup.cancel();
                ControlReply::ok("hanging up")
            }
            Ok(ControlRequest::Transfer { .. }) if !answered.load(Ordering::Acquire) => {
                ControlReply::err("the call is not answered yet")
            }
            Ok(ControlRequest::Transfer { to }) => {
                let Some(to) = to.or_else(|| default_target.clone()) else {
                    responder
                        .respond(&ControlReply::err(
                            "no transfer target: give one, or set transfer_target on the call",
                        ))
                        .await;
                    continue;
                };
                let (tx, rx) = oneshot::channel();
                if transfers.try_send(Transfer { to, reply: tx }).is_err() {
                    ControlReply::err("a transfer is already in progress")
                } else {
                    // Answer when the holder has LiveKit's result; keep serving meanwhile.
                    tokio::spawn(answer_later(responder, rx));
                    continue;
                }
            }
        };
        responder.respond(&reply).await;
    }
}

async fn answer_later(responder: Responder, rx: oneshot::Receiver<ControlReply>) {
    let reply = tokio::time::timeout(Duration::from_secs(90), rx)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| ControlReply::err("the call ended before the transfer completed"));
    responder.respond(&reply).await;
}
