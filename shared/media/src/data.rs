//! Data packets: LiveKit carries a SIP call's DTMF as a `DataPacket` whose value is
//! `SipDtmf { code, digit }`, over the data channels. Pure: digit validation, the packet we
//! send, and what a received packet means; the channels themselves are in `conn` and `peer`.
//!
//! The client opens `_reliable` (ordered) and `_lossy` on the publisher connection before its
//! first offer, as the SDKs do; the server forwards data to us on channels it opens on the
//! subscriber connection. DTMF goes reliable: a lost digit is a wrong menu choice.

use livekit_protocol as proto;
use prost::Message;

use crate::error::{Error, Result};
use crate::events::Event;

/// The publisher's ordered, reliable channel (LiveKit's label).
pub const RELIABLE: &str = "_reliable";
/// The publisher's unordered channel without retransmissions (LiveKit's label).
pub const LOSSY: &str = "_lossy";

/// The RFC 4733 event code of a DTMF key: `0`-`9` are 0-9, `*` 10, `#` 11, `A`-`D` 12-15
/// (either case). Anything else is not a key.
pub fn dtmf_code(digit: char) -> Option<u32> {
    match digit.to_ascii_uppercase() {
        d @ '0'..='9' => Some(u32::from(d) - u32::from('0')),
        '*' => Some(10),
        '#' => Some(11),
        d @ 'A'..='D' => Some(u32::from(d) - u32::from('A') + 12),
        _ => None,
    }
}

/// The key of an RFC 4733 event code (0-15), upper case for `A`-`D`.
pub fn dtmf_digit(code: u32) -> Option<char> {
    match code {
        0..=9 => char::from_digit(code, 10),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => char::from_u32(u32::from('A') + code - 12),
        _ => None,
    }
}

/// Every character of `digits` as a key, or an error naming the first that is not one.
pub fn validate(digits: &str) -> Result<Vec<char>> {
    if digits.is_empty() {
        return Err(Error::InvalidArgument("no DTMF digits".into()));
    }
    digits
        .chars()
        .map(|d| match dtmf_code(d) {
            Some(_) => Ok(d.to_ascii_uppercase()),
            None => Err(Error::InvalidArgument(format!(
                "{d:?} is not a DTMF key (0-9 * # A-D)"
            ))),
        })
        .collect()
}

/// The encoded `DataPacket` for one key, reliable, to everyone in the room (the server fills
/// in our identity). `sequence` numbers our reliable packets from 1, as the SDKs do: the
/// server drops a reliable packet whose sequence is not above the last one it saw.
///
/// `A`-`D` go out lower case: livekit-sip v1.8.0 (media-sdk's `dtmf.Write`) turns the
/// packet's `digit` into RFC 4733 through a table of `0-9 * # a-d` and plays nothing for `A`.
pub fn dtmf_packet(digit: char, sequence: u32) -> Result<Vec<u8>> {
    let code = dtmf_code(digit)
        .ok_or_else(|| Error::InvalidArgument(format!("{digit:?} is not a DTMF key")))?;
    #[expect(
        deprecated,
        reason = "`kind` is deprecated but the server still reads it"
    )]
    let packet = proto::DataPacket {
        kind: proto::data_packet::Kind::Reliable as i32,
        sequence,
        value: Some(proto::data_packet::Value::SipDtmf(proto::SipDtmf {
            code,
            digit: digit.to_ascii_lowercase().to_string(),
        })),
        ..Default::default()
    };
    Ok(packet.encode_to_vec())
}

/// What a received data packet means to the transport's user: a `SipDtmf` becomes
/// [`Event::Dtmf`] (its key from the code when the code is a key, else from the `digit`
/// text); anything else, or bytes that do not decode, is `None`.
pub fn event(bytes: &[u8]) -> Option<Event> {
    let packet = match proto::DataPacket::decode(bytes) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "undecodable data packet");
            return None;
        }
    };
    let Some(proto::data_packet::Value::SipDtmf(dtmf)) = packet.value else {
        return None;
    };
    let digit = dtmf_digit(dtmf.code).or_else(|| {
        let d = dtmf.digit.chars().next()?;
        dtmf_code(d).map(|_| d.to_ascii_uppercase())
    })?;
    Some(Event::Dtmf {
        identity: packet.participant_identity,
        digit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_rfc_4733() {
        let keys = "0123456789*#ABCD";
        for (code, key) in keys.chars().enumerate() {
            let code = u32::try_from(code).unwrap_or(u32::MAX);
            assert_eq!(dtmf_code(key), Some(code), "{key}");
            assert_eq!(dtmf_digit(code), Some(key), "{code}");
        }
        assert_eq!(dtmf_code('b'), Some(13));
        assert_eq!(dtmf_code('E'), None);
        assert_eq!(dtmf_code('w'), None, "livekit-sip's pause is not a key");
        assert_eq!(dtmf_digit(16), None, "flash is not a key");
    }

    #[test]
    fn validate_names_the_first_bad_key() {
        assert_eq!(validate("1a#").ok(), Some(vec!['1', 'A', '#']));
        let err = validate("12x4").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("'x'")));
        assert!(validate("").is_err());
    }

    #[test]
    fn a_packet_we_send_reads_back_as_the_key() {
        let bytes = dtmf_packet('C', 7).unwrap_or_default();
        let packet = proto::DataPacket::decode(bytes.as_slice()).ok();
        let Some(proto::data_packet::Value::SipDtmf(dtmf)) = packet.and_then(|p| p.value) else {
            panic!("not a SipDtmf packet");
        };
        assert_eq!((dtmf.code, dtmf.digit.as_str()), (14, "c"));
        assert_eq!(
            event(&bytes),
            Some(Event::Dtmf {
                identity: String::new(),
                digit: 'C'
            })
        );
        assert!(dtmf_packet('x', 1).is_err());
    }

    #[test]
    fn received_packets_other_than_dtmf_are_not_events() {
        let user = proto::DataPacket {
            participant_identity: "callee".into(),
            value: Some(proto::data_packet::Value::User(proto::UserPacket::default())),
            ..Default::default()
        };
        assert_eq!(event(&user.encode_to_vec()), None);
        assert_eq!(event(&[0xff, 0xff, 0xff]), None);
        let from_sip = proto::DataPacket {
            participant_identity: "callee".into(),
            value: Some(proto::data_packet::Value::SipDtmf(proto::SipDtmf {
                code: 11,
                digit: "#".into(),
            })),
            ..Default::default()
        };
        assert_eq!(
            event(&from_sip.encode_to_vec()),
            Some(Event::Dtmf {
                identity: "callee".into(),
                digit: '#'
            })
        );
    }
}
