//! Error answers of the cloud API, in the shape goodseed 0.4.0's client parses
//! (`_parse_api_error`: `error_code`, and `title` and `detail` shown joined), with
//! `error` too, as every answer of this server has it.

use actix_web::http::StatusCode;
use actix_web::http::header::{ContentType, HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use goodseed_protocol::WireError;
use goodseed_store::StoreError;

use crate::json::Json;

/// An error answer of the cloud API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{title}: {detail}")]
pub(crate) struct CloudError {
    pub(crate) status: StatusCode,
    /// `Area.Reason`, for programs.
    pub(crate) code: &'static str,
    /// What went wrong, in a few words.
    pub(crate) title: &'static str,
    /// Which part of the request, and why.
    pub(crate) detail: String,
    /// Seconds after which trying again may succeed.
    pub(crate) retry_after: Option<u32>,
}

impl CloudError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> CloudError {
        CloudError { status, code, title, detail: detail.into(), retry_after: None }
    }

    /// A request that cannot be taken as it is (400).
    pub(crate) fn invalid(detail: impl Into<String>) -> CloudError {
        CloudError::new(StatusCode::BAD_REQUEST, "Request.Invalid", "Invalid request", detail)
    }

    /// No such run (404).
    pub(crate) fn run_not_found(detail: impl Into<String>) -> CloudError {
        CloudError::new(StatusCode::NOT_FOUND, "Run.NotFound", "Run not found", detail)
    }

    /// The key does not reach what was asked (403).
    pub(crate) fn forbidden(detail: impl Into<String>) -> CloudError {
        CloudError::new(StatusCode::FORBIDDEN, "Auth.Forbidden", "Access denied", detail)
    }

    /// No key, or not one this server knows (401).
    pub(crate) fn unauthorized(detail: impl Into<String>) -> CloudError {
        CloudError::new(StatusCode::UNAUTHORIZED, "Auth.InvalidKey", "Invalid API key", detail)
    }

    /// A request body the protocol refuses.
    pub(crate) fn wire(err: WireError) -> CloudError {
        match err {
            WireError::TooLarge { .. } => CloudError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request.TooLarge",
                "Request too large",
                err.to_string(),
            ),
            other => CloudError::invalid(other.to_string()),
        }
    }

    /// A store error about `run` (`project/run_id`), never naming where it is kept.
    pub(crate) fn store(run: &str, err: StoreError) -> CloudError {
        match err {
            StoreError::NotFound { .. } | StoreError::OutsideRoot { .. } => {
                CloudError::run_not_found(format!("no run {run} (register it first)"))
            }
            StoreError::Live { holder, .. } => CloudError::new(
                StatusCode::CONFLICT,
                "Run.Locked",
                "Run is being written elsewhere",
                format!("run {run} is being written by another writer{holder}"),
            ),
            StoreError::Locked { .. } => CloudError::new(
                StatusCode::CONFLICT,
                "Run.Locked",
                "Run is being written elsewhere",
                format!("run {run} is being written by another writer"),
            ),
            StoreError::AlreadyExists { .. } => CloudError::new(
                StatusCode::CONFLICT,
                "Run.Exists",
                "Run exists",
                format!("run {run} was created by someone else at the same time; try again"),
            ),
            e if e.is_busy() => {
                let mut busy = CloudError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Run.Busy",
                    "Run is busy",
                    format!("run {run} is busy, try again"),
                );
                busy.retry_after = Some(1);
                busy
            }
            StoreError::BadRequest { reason } => CloudError::invalid(reason),
            StoreError::Unsupported { what, .. } => CloudError::new(
                StatusCode::NOT_IMPLEMENTED,
                "Store.Unsupported",
                "Not supported",
                format!("{what} is not supported by this server's store"),
            ),
            StoreError::NotARun { reason, .. } => CloudError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Run.Unreadable",
                "Run cannot be read",
                format!("run {run}: {reason}"),
            ),
            StoreError::Database { message, .. } => CloudError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Store.Error",
                "Storage error",
                format!("run {run}: {message}"),
            ),
            other => CloudError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Store.Error",
                "Storage error",
                format!("run {run}: {}", crate::error::kind_only(&other)),
            ),
        }
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> String {
        let mut j = Json::default();
        j.begin_object()
            .key("error")
            .str(&self.to_string())
            .key("error_code")
            .str(self.code)
            .key("title")
            .str(self.title)
            .key("detail")
            .str(&self.detail)
            .end_object();
        j.finish()
    }
}

impl ResponseError for CloudError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut response =
            HttpResponse::build(self.status).content_type(ContentType::json()).body(self.body());
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
