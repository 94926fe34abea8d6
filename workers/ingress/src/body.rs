//! Request bodies, read the same way on every route: too large → `413`, unreadable → `400`,
//! wrong content type → `415`, malformed JSON → `400`, always with the JSON error body (axum's
//! own rejections answer in plain text, which the documented contract does not allow).

use axum::{
    body::Bytes,
    extract::rejection::BytesRejection,
    http::{HeaderMap, StatusCode, header},
};
use serde_json::Value;

use crate::error::ApiError;

/// The body's bytes; `limit` is the route's body limit (for the message).
pub fn bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than {limit} bytes"),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                rejection.body_text(),
            )
        }
    })
}

/// The content type's media type, lower case, without parameters ("" when absent).
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

pub fn is_json(headers: &HeaderMap) -> bool {
    let mime = media_type(headers);
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// `415` unless the body is declared JSON.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    if is_json(headers) {
        return Ok(());
    }
    let got = match headers.get(header::CONTENT_TYPE) {
        None => "none".to_owned(),
        Some(v) => format!("{:?}", String::from_utf8_lossy(v.as_bytes())),
    };
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("Content-Type must be application/json, got {got}"),
    ))
}

pub fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        )
    })
}

/// A required JSON body: bytes, content type, then syntax.
pub fn json(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Value, ApiError> {
    let body = bytes(body, limit)?;
    require_json(headers)?;
    parse_json(&body)
}

/// An optional JSON body: `None` when empty (whatever its content type).
pub fn optional_json(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Option<Value>, ApiError> {
    let body = bytes(body, limit)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    require_json(headers)?;
    parse_json(&body).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, ct.parse().expect("header"));
        h
    }

    #[test]
    fn json_media_types() {
        assert!(is_json(&headers("application/json; charset=utf-8")));
        assert!(is_json(&headers("Application/JSON")));
        assert!(is_json(&headers("application/merge-patch+json")));
        assert!(!is_json(&headers("text/json")));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn empty_optional_body_is_none_whatever_its_type() {
        let none = optional_json(&headers("text/plain"), Ok(Bytes::from_static(b" \n")), 10);
        assert!(matches!(none, Ok(None)));
        let wrong = optional_json(&headers("text/plain"), Ok(Bytes::from_static(b"{}")), 10);
        assert_eq!(
            wrong.err().map(|e| e.status),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
        let bad = optional_json(
            &headers("application/json"),
            Ok(Bytes::from_static(b"{")),
            10,
        );
        assert_eq!(bad.err().map(|e| e.status), Some(StatusCode::BAD_REQUEST));
    }
}
