//! `GET /calls/{id}/recording`: the call's recording (Ogg Opus, channel 1 the callee, channel
//! 2 the agent) streamed from the `recordings` object store, whole or one byte range.

use axum::extract::State;
use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use tokio_util::io::ReaderStream;

use crate::{AppState, error::ApiError, ids::CallId};

#[utoipa::path(
    get, path = "/calls/{id}/recording",
    params(
        ("id" = String, Path, description = "call_id returned by POST /dispatch"),
        ("Range" = Option<String>, Header, description = "One byte range, `bytes=start-end`, `bytes=start-` or `bytes=-suffix`; several ranges are answered with the whole file"),
    ),
    responses(
        (status = 200, description = "The recording: Ogg Opus, channel 1 the callee, channel 2 the agent", body = Vec<u8>, content_type = "audio/ogg"),
        (status = 206, description = "The requested byte range (`Content-Range`)", body = Vec<u8>, content_type = "audio/ogg"),
        (status = 404, description = "No recording for this call (unknown call, not recorded, not finished, or expired)", body = crate::error::ErrorBody),
        (status = 416, description = "The range is malformed or outside the file (`Content-Range: bytes */<size>`)", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_recording(
    State(state): State<AppState>,
    CallId(id): CallId,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no recording for this call",
        )
    };
    let info = match state.bus.recording_info(&id).await {
        Ok(Some(info)) => info,
        Ok(None) => return Err(not_found()),
        Err(e) => return Err(ApiError::bus(&e)),
    };
    let size = info.bytes;
    let range = match headers.get(header::RANGE) {
        None => None,
        Some(value) => match one_range(value, size) {
            Ok(range) => range,
            Err(why) => return Ok(unsatisfiable(size, why)),
        },
    };
    let body = match state.bus.get_recording(&id, range).await {
        Ok(Some(body)) => body,
        Ok(None) => return Err(not_found()),
        Err(e) => return Err(ApiError::bus(&e)),
    };
    let (status, length) = match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, end - start),
        None => (StatusCode::OK, size),
    };
    let mut response = Response::new(Body::from_stream(ReaderStream::new(body.reader)));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/ogg"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.ogg\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(sha) = info
        .sha256
        .as_deref()
        .and_then(|s| HeaderValue::from_str(&format!("\"{s}\"")).ok())
    {
        h.insert(header::ETAG, sha);
    }
    if let Some((start, end)) = range
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(response)
}

/// The one range asked for, as `start..end` (end exclusive); `None` to send the whole file
/// (several ranges: a server may answer them with the whole representation).
fn one_range(value: &HeaderValue, size: u64) -> Result<Option<(u64, u64)>, String> {
    let text = value
        .to_str()
        .map_err(|_| "Range is not ASCII".to_owned())?;
    let ranges = http_range_header::parse_range_header(text)
        .and_then(|r| r.validate(size))
        .map_err(|e| format!("Range {text:?}: {e:?}"))?;
    match ranges.as_slice() {
        [one] => Ok(Some((*one.start(), one.end() + 1))),
        _ => Ok(None),
    }
}

fn unsatisfiable(size: u64, why: String) -> Response {
    let mut response = ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range_not_satisfiable",
        why,
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        response.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, size: u64) -> Result<Option<(u64, u64)>, String> {
        one_range(&HeaderValue::from_str(v).expect("header"), size)
    }

    #[test]
    fn ranges_are_read_as_the_rfc_says() {
        assert_eq!(range("bytes=0-99", 1000), Ok(Some((0, 100))));
        assert_eq!(range("bytes=900-", 1000), Ok(Some((900, 1000))));
        assert_eq!(range("bytes=-100", 1000), Ok(Some((900, 1000))));
        assert_eq!(
            range("bytes=0-9999", 1000),
            Ok(Some((0, 1000))),
            "end clipped"
        );
        assert_eq!(
            range("bytes=0-1,5-6", 1000),
            Ok(None),
            "several: the whole file"
        );
    }

    #[test]
    fn bad_ranges_are_refused() {
        assert!(range("bytes=1000-", 1000).is_err());
        assert!(range("bytes=5-1", 1000).is_err());
        assert!(range("lines=1-2", 1000).is_err());
        assert!(range("bytes=abc", 1000).is_err());
    }
}
