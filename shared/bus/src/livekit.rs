//! LiveKit's side of the bus: verified webhooks on `LIVEKIT_EVENTS`, and the `livekit_rooms`
//! bucket (room → call id) for rooms callfleet did not name itself.

use async_nats::{HeaderMap, jetstream::kv};
use bytes::Bytes;
use callfleet_domain::subjects as s;

use crate::{Bus, BusError};

impl Bus {
    /// Publish a verified LiveKit webhook as LiveKit sent it on `livekit.events.<event>`,
    /// deduplicated by LiveKit's event id. Returns whether JetStream saw it as a duplicate.
    /// `event` must be a subject token (the caller checked it).
    pub async fn publish_livekit_event(
        &self,
        event: &str,
        event_id: &str,
        body: Bytes,
    ) -> Result<bool, BusError> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event_id);
        let ack = self
            .publish_raw(s::livekit_event(event), headers, body)
            .await?;
        Ok(ack.duplicate)
    }

    /// Remember which call a LiveKit room belongs to (for a day): the dispatcher records the
    /// rooms of the inbound calls it enqueues, so LiveKit's events about them find the call.
    pub async fn remember_room(&self, room: &str, call_id: &str) -> Result<(), BusError> {
        let deadline = tokio::time::Instant::now() + self.publish_timeout;
        if !self.connected_by(deadline).await {
            return Err(BusError::Disconnected);
        }
        let put = self
            .livekit_rooms
            .put(room_key(room), Bytes::copy_from_slice(call_id.as_bytes()));
        tokio::time::timeout_at(deadline, put)
            .await
            .map_err(|_| BusError::Timeout(self.publish_timeout))?
            .map_err(|e| BusError::js("kv put", e))?;
        Ok(())
    }

    /// The call a LiveKit room was remembered for ([`Bus::remember_room`]).
    pub async fn room_call(&self, room: &str) -> Result<Option<String>, BusError> {
        let deadline = tokio::time::Instant::now() + self.publish_timeout;
        if !self.connected_by(deadline).await {
            return Err(BusError::Disconnected);
        }
        let entry = tokio::time::timeout_at(deadline, self.livekit_rooms.entry(room_key(room)))
            .await
            .map_err(|_| BusError::Timeout(self.publish_timeout))?
            .map_err(|e| BusError::js("kv get", e))?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .and_then(|e| String::from_utf8(e.value.to_vec()).ok())
            .filter(|id| s::is_token(id)))
    }
}

/// A room name as a KV key: letters, digits, `-` and `_` as they are, every other byte as
/// `=XX` (`call-_+3226010500_xYz` → `call-_=2B3226010500_xYz`). Readable and reversible.
pub fn room_key(room: &str) -> String {
    let mut key = String::with_capacity(room.len());
    for b in room.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            key.push(char::from(b));
        } else {
            key.push_str(&format!("={b:02X}"));
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_become_valid_keys() {
        assert_eq!(room_key("call-_+3226010500_xYz"), "call-_=2B3226010500_xYz");
        assert_eq!(room_key("a.b c/é"), "a=2Eb=20c=2F=C3=A9");
        let valid = |k: &str| {
            k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b))
        };
        assert!(valid(&room_key("call-_+3226010500_xYz")));
        assert_ne!(
            room_key("a+b"),
            room_key("a=2Bb"),
            "reversible: no collisions"
        );
    }
}
