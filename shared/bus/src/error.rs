use callfleet_domain::FieldError;

/// Errors talking to NATS. `kind` strings are stable for logs and metrics.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}")]
    Connect {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("NATS is not connected")]
    Disconnected,
    #[error("JetStream did not acknowledge within {0:?}")]
    Timeout(std::time::Duration),
    #[error("cannot set up JetStream {what}")]
    Topology {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("JetStream {op} failed")]
    JetStream {
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("stored value for {key} is corrupt")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid message: {}", callfleet_domain::request::describe(.0))]
    Invalid(Vec<FieldError>),
}

impl BusError {
    pub(crate) fn js(
        op: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::JetStream {
            op,
            source: Box::new(source),
        }
    }

    /// Whether the failure means NATS is unavailable (answer 503, retry later).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Disconnected | Self::Timeout(_) | Self::Connect { .. } | Self::JetStream { .. }
        )
    }
}
