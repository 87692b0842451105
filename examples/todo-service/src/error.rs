//! kv's errors as HTTP answers.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kv::ErrorKind;
use serde::Serialize;

/// An error answer: a status and a message, `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// `404 Not Found`.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "no such todo")
    }

    /// `409 Conflict`.
    pub fn conflict(message: &str) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// `422 Unprocessable Entity`: the request's data is not acceptable.
    pub fn invalid(message: String) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, &message)
    }

    /// `500 Internal Server Error`.
    pub fn internal(message: String) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, &message)
    }

    /// The answer's status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn new(status: StatusCode, message: &str) -> Self {
        Self {
            status,
            message: message.to_owned(),
        }
    }
}

/// What to answer for each kind of kv error: the client's fault (a bad id,
/// a value too large) is 4xx; a backend that is down or slow is 503, which
/// tells the client to retry; anything else is 500.
impl From<kv::Error> for ApiError {
    fn from(err: kv::Error) -> Self {
        let status = match err.kind() {
            ErrorKind::InvalidKey | ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorKind::ValueTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::Unavailable | ErrorKind::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            // Other writers changed the todo during every attempt.
            ErrorKind::Conflict => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // kv's messages name the backend, the operation and the key, never
        // a password: safe to show.
        Self::new(status, &err.to_string())
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(Body {
                error: &self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
