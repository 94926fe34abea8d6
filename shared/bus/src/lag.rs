//! What an autoscaler reads: each watched consumer's backlog (`num_pending`: messages not yet
//! delivered) and its deliveries in flight (`num_ack_pending`: held by a worker, a live call's
//! job among them), from the server's consumer info. KEDA's `nats-jetstream` scaler sums the
//! two; a role's `/metrics` shows them per consumer.

use async_nats::jetstream::consumer;
use futures::StreamExt;

use crate::{Bus, BusError};

/// A consumer to report: one by name, or every consumer of a stream whose name starts with a
/// prefix (campaigns' consumers come and go with their campaigns).
#[derive(Debug, Clone, Copy)]
pub enum Watch {
    Consumer {
        stream: &'static str,
        name: &'static str,
    },
    Prefix {
        stream: &'static str,
        prefix: &'static str,
    },
}

/// One consumer's counts, as the server reported them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerLag {
    pub stream: String,
    pub consumer: String,
    pub num_pending: u64,
    pub num_ack_pending: u64,
    /// Pull requests waiting for messages (idle workers' fetches).
    pub num_waiting: u64,
}

impl From<&consumer::Info> for ConsumerLag {
    fn from(info: &consumer::Info) -> Self {
        Self {
            stream: info.stream_name.clone(),
            consumer: info.name.clone(),
            num_pending: info.num_pending,
            num_ack_pending: info.num_ack_pending as u64,
            num_waiting: info.num_waiting as u64,
        }
    }
}

impl Bus {
    /// The counts of every watched consumer that exists now. A named consumer that is missing
    /// is an error (the topology creates it); a prefix may match none.
    pub async fn consumer_lag(&self, watch: &[Watch]) -> Result<Vec<ConsumerLag>, BusError> {
        let mut out = Vec::new();
        for w in watch {
            match *w {
                Watch::Consumer { stream, name } => {
                    let stream = self
                        .js
                        .get_stream_no_info(stream)
                        .await
                        .map_err(|e| BusError::js("stream lookup", e))?;
                    let info = stream
                        .consumer_info(name)
                        .await
                        .map_err(|e| BusError::js("consumer info", e))?;
                    out.push(ConsumerLag::from(&info));
                }
                Watch::Prefix { stream, prefix } => {
                    let stream = self
                        .js
                        .get_stream_no_info(stream)
                        .await
                        .map_err(|e| BusError::js("stream lookup", e))?;
                    let mut infos = stream.consumers();
                    while let Some(info) = infos.next().await {
                        let info = info.map_err(|e| BusError::js("consumer list", e))?;
                        if info.name.starts_with(prefix) {
                            out.push(ConsumerLag::from(&info));
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}
