//! Call control over NATS: cancelling a call that waits (queued or scheduled), and asking the
//! worker holding a live call to hang up or transfer (core request/reply on
//! `calls.control.<call_id>`): the request side ([`Bus::control`]) and the reply side
//! ([`Bus::control_inbox`], read by the worker holding the call).

use std::time::Duration;

use async_nats::{HeaderMap, RequestErrorKind};
use bytes::Bytes;
use callfleet_domain::{
    control::{ControlReply, ControlRequest},
    subjects as s,
};
use futures::StreamExt;

use crate::{Bus, BusError};

/// Why a control request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no worker is holding call {0} right now")]
    NoResponders(String),
    #[error("the worker holding call {0} did not answer within {1:?}")]
    Timeout(String, Duration),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// A job waiting on `calls.schedule.<call_id>`, as stored.
pub struct WaitingJob {
    pub headers: HeaderMap,
    pub payload: Bytes,
}

impl Bus {
    /// Send a control request to the worker holding `call_id`.
    pub async fn control(
        &self,
        call_id: &str,
        request: &ControlRequest,
        timeout: Duration,
    ) -> Result<ControlReply, ControlError> {
        if !self.is_connected() {
            return Err(BusError::Disconnected.into());
        }
        let body = serde_json::to_vec(request).map_err(|e| BusError::js("encode control", e))?;
        let asked = tokio::time::timeout(
            timeout,
            self.client.request(s::control(call_id), body.into()),
        )
        .await
        .map_err(|_| ControlError::Timeout(call_id.to_owned(), timeout))?;
        match asked {
            Ok(msg) => serde_json::from_slice(&msg.payload)
                .map_err(|e| BusError::js("decode control reply", e).into()),
            Err(e) if e.kind() == RequestErrorKind::NoResponders => {
                Err(ControlError::NoResponders(call_id.to_owned()))
            }
            Err(e) if e.kind() == RequestErrorKind::TimedOut => {
                Err(ControlError::Timeout(call_id.to_owned(), timeout))
            }
            Err(e) => Err(BusError::js("control request", e).into()),
        }
    }

    /// The job waiting for its scheduled time, if any.
    pub async fn waiting_job(&self, call_id: &str) -> Result<Option<WaitingJob>, BusError> {
        let stream = self
            .js
            .get_stream(s::JOBS_STREAM)
            .await
            .map_err(|e| BusError::js("get jobs stream", e))?;
        match stream
            .get_last_raw_message_by_subject(&s::schedule(call_id))
            .await
        {
            Ok(m) => Ok(Some(WaitingJob {
                headers: m.headers,
                payload: m.payload,
            })),
            Err(e)
                if e.kind()
                    == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
            {
                Ok(None)
            }
            Err(e) => Err(BusError::js("get scheduled job", e)),
        }
    }

    /// Drop the job waiting on `calls.schedule.<call_id>`: it will never fire.
    pub async fn purge_schedule(&self, call_id: &str) -> Result<u64, BusError> {
        let stream = self
            .js
            .get_stream(s::JOBS_STREAM)
            .await
            .map_err(|e| BusError::js("get jobs stream", e))?;
        stream
            .purge()
            .filter(s::schedule(call_id))
            .await
            .map(|r| r.purged)
            .map_err(|e| BusError::js("purge scheduled job", e))
    }

    /// Put a waiting job on its dispatch subject now (without its schedule headers), so a
    /// worker closes the call at once instead of when the schedule would have fired.
    pub async fn wake_job(
        &self,
        campaign: &str,
        call_id: &str,
        job: WaitingJob,
    ) -> Result<(), BusError> {
        let mut headers = HeaderMap::new();
        for name in [
            s::ATTEMPT_HEADER,
            s::INFRA_RETRIES_HEADER,
            s::GENERATION_HEADER,
        ] {
            if let Some(v) = job.headers.get(name) {
                headers.insert(name, v.as_str());
            }
        }
        let msg_id = match job.headers.get(s::GENERATION_HEADER) {
            Some(g) => format!("{call_id}.cancel.g{}", g.as_str()),
            None => format!("{call_id}.cancel"),
        };
        headers.insert("Nats-Msg-Id", msg_id.as_str());
        self.publish_raw(s::dispatch(campaign), headers, job.payload)
            .await?;
        Ok(())
    }
}

/// The control requests for one call, as the worker holding it receives them.
pub struct ControlInbox {
    client: async_nats::Client,
    sub: async_nats::Subscriber,
}

/// Where the answer to one control request goes.
pub struct Responder {
    client: async_nats::Client,
    to: async_nats::Subject,
}

impl Bus {
    /// Start receiving control requests on `calls.control.<call_id>`.
    pub async fn control_inbox(&self, call_id: &str) -> Result<ControlInbox, BusError> {
        let sub = self
            .client
            .subscribe(s::control(call_id))
            .await
            .map_err(|e| BusError::js("subscribe to call control", e))?;
        Ok(ControlInbox {
            client: (*self.client).clone(),
            sub,
        })
    }
}

impl ControlInbox {
    /// The next request with its responder (`Err` with the reason if it did not parse);
    /// requests without a reply subject are skipped. `None` once the subscription ends.
    pub async fn next(&mut self) -> Option<(Result<ControlRequest, String>, Responder)> {
        loop {
            let msg = self.sub.next().await?;
            let Some(to) = msg.reply.clone() else {
                continue;
            };
            let request =
                serde_json::from_slice::<ControlRequest>(&msg.payload).map_err(|e| e.to_string());
            let responder = Responder {
                client: self.client.clone(),
                to,
            };
            return Some((request, responder));
        }
    }
}

impl Responder {
    /// Answer the request (logged if it cannot be sent).
    pub async fn respond(self, reply: &ControlReply) {
        let body = serde_json::to_vec(reply).unwrap_or_default();
        if let Err(e) = self.client.publish(self.to, body.into()).await {
            tracing::warn!(error = %e, "cannot answer a control request");
        }
    }
}
