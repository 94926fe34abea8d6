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
    /// JetStream answered, and refused the request (a 4xx API status other than 408: not
    /// found, bad request, a conflict): the request's fault or a missing resource, not an
    /// outage.
    #[error("JetStream refused {op} (status {status})")]
    Refused {
        op: &'static str,
        status: u16,
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
        match api_status(&source) {
            Some(status) if (400..500).contains(&status) && status != 408 => Self::Refused {
                op,
                status,
                source: Box::new(source),
            },
            _ => Self::JetStream {
                op,
                source: Box::new(source),
            },
        }
    }

    /// Whether the failure may pass on its own: NATS unavailable ([`Self::is_unavailable`]),
    /// or a topology request that got no answer in time or a 408 or 503 (a cluster electing
    /// leaders, or too busy). A topology request JetStream refused with any other status
    /// (`replicas > 1 not supported in non-clustered mode` is a 500) will not.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Topology { source, .. } => {
                matches!(api_status(source.as_ref()), None | Some(408 | 503))
            }
            other => other.is_unavailable(),
        }
    }

    /// Whether the failure means NATS is unavailable (answer 503, retry later). A request
    /// JetStream answered and refused ([`BusError::Refused`]) is not.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Disconnected | Self::Timeout(_) | Self::Connect { .. } | Self::JetStream { .. }
        )
    }
}

/// The API status of a JetStream error answer, read from the error or its causes (async-nats
/// prints it as `… (code 404, error code 10059)`; the kinds do not expose it uniformly).
fn api_status(e: &(dyn std::error::Error + 'static)) -> Option<u16> {
    let mut next = Some(e);
    while let Some(e) = next {
        let text = e.to_string();
        if let Some(at) = text.rfind("(code ") {
            let digits: String = text[at + 6..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(status) = digits.parse() {
                return Some(status);
            }
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::BusError;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Answer(&'static str);

    #[test]
    fn a_refused_request_is_not_an_outage() {
        let e = BusError::js(
            "get stream",
            Answer("JetStream error: stream not found (code 404, error code 10059)"),
        );
        assert!(matches!(e, BusError::Refused { status: 404, .. }), "{e:?}");
        assert!(!e.is_unavailable());
        let e = BusError::js("x", Answer("bad request (code 400, error code 10003)"));
        assert!(!e.is_unavailable());
    }

    fn topology(text: &'static str) -> BusError {
        BusError::Topology {
            what: "stream CALL_JOBS".into(),
            source: Box::new(Answer(text)),
        }
    }

    /// A starting process waits out a cluster that is electing leaders or slow to answer, and
    /// stops at once on a refusal that will not pass.
    #[test]
    fn topology_timeouts_and_503s_pass_refusals_do_not() {
        for text in [
            "request error: timed out: request timed out: deadline has elapsed",
            "JetStream system temporarily unavailable (code 503, error code 10008)",
            "request timeout (code 408, error code 0)",
            // An R3 stream created while a node of three is down: it passes when it is back.
            "insufficient resources (code 503, error code 10023)",
        ] {
            assert!(topology(text).is_transient(), "{text}");
        }
        for text in [
            "replicas > 1 not supported in non-clustered mode (code 500, error code 10074)",
            "stream name already in use with a different configuration (code 400, error code 10058)",
        ] {
            assert!(!topology(text).is_transient(), "{text}");
        }
    }

    #[test]
    fn server_errors_timeouts_and_transport_failures_are_outages() {
        for text in [
            "JetStream system temporarily unavailable (code 503, error code 10008)",
            "request timeout (code 408, error code 0)",
            "timed out: didn't receive any message",
            "no responders",
        ] {
            let e = BusError::js("x", Answer(text));
            assert!(e.is_unavailable(), "{text}");
        }
    }
}
