//! Error answers: [`ApiError`], a status and `{"error": message}`, and how store errors
//! map to statuses without revealing where the store keeps anything.

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, ResponseError};
use goodseed_store::StoreError;

use crate::json::Json;

/// An error answer: a status and `{"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    /// Seconds after which trying again may succeed (`Retry-After`), for answers that
    /// say "not now" (busy, too many streams).
    pub(crate) retry_after: Option<u32>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), retry_after: None }
    }

    /// The same answer, telling the client to try again after `seconds`.
    pub(crate) fn retry_after(mut self, seconds: u32) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut response = error_response(self.status, &self.message);
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(seconds),
            );
        }
        response
    }
}

/// `{"error": message}` with a status.
pub(crate) fn error_response(status: StatusCode, message: &str) -> HttpResponse {
    let mut j = Json::default();
    j.begin_object().key("error").str(message).end_object();
    HttpResponse::build(status).content_type(ContentType::json()).body(j.finish())
}

/// Maps store errors to answers that never reveal a filesystem path.
pub(crate) fn store_error(project: &str, run: &str, err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound { .. } | StoreError::OutsideRoot { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, format!("Run not found: {project}/{run}"))
        }
        StoreError::BadRequest { reason } => ApiError::new(StatusCode::BAD_REQUEST, reason),
        StoreError::NoSuchArtifact { what, .. } => ApiError::new(
            StatusCode::NOT_FOUND,
            format!("No artifact {what} in run {project}/{run}"),
        ),
        StoreError::Unsupported { what, .. } => ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("{what} is not supported by this server's store"),
        ),
        StoreError::NotARun { reason, .. } => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("run {project}/{run} cannot be read: {reason}"),
        ),
        StoreError::Database { busy: true, .. } | StoreError::Locked { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("run {project}/{run} is busy, try again"),
        )
        .retry_after(1),
        StoreError::Database { message, .. } => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("database error reading {project}/{run}: {message}"),
        ),
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read {project}/{run}: {}", kind_only(&other)),
        ),
    }
}

/// The error's message without the path it may name.
pub(crate) fn kind_only(err: &StoreError) -> String {
    match err {
        StoreError::Io { action, source, .. } => format!("{action}: {source}"),
        _ => "internal error".to_owned(),
    }
}

pub(crate) fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Not found")
}
