//! Who is calling the cloud API, and what their key reaches. The guard decides it for
//! every request under `/api/v1` (no key, or a key this server does not know, is a 401
//! there); handlers take it as an extractor and ask it before touching a run.

use std::future::{Future, ready};
use std::pin::Pin;
use std::sync::Arc;

use actix_web::http::header::{self, HeaderMap};
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, dev::Payload};
use goodseed_core::ProjectName;
use goodseed_store::tokens::{TokenInfo, TokenStore};

use super::error::CloudError;

/// The workspace `GET /api/v1/auth/me` names for the server's own `--token`, which
/// reaches every project: goodseed 0.4.0 puts a project given without a workspace there.
pub(crate) const FULL_ACCESS_WORKSPACE: &str = "default";

/// What the caller's key reaches.
#[derive(Debug, Clone)]
pub(crate) enum Access {
    /// The server's `--token`: everything.
    Full,
    /// A token made by `goodseed token create`.
    Scoped(TokenInfo),
}

impl Access {
    /// Reads may touch runs of `project`.
    pub(crate) fn check_read(&self, project: &ProjectName) -> Result<(), CloudError> {
        match self {
            Access::Full => Ok(()),
            Access::Scoped(t) if t.scope.reaches(project) => Ok(()),
            Access::Scoped(t) => Err(CloudError::forbidden(format!(
                "this key reaches {}, not project {project}",
                t.scope
            ))),
        }
    }

    /// Writes may touch runs of `project`.
    pub(crate) fn check_write(&self, project: &ProjectName) -> Result<(), CloudError> {
        self.check_read(project)?;
        match self {
            Access::Scoped(t) if t.scope.read_only() => Err(CloudError::forbidden(format!(
                "this key is read-only ({}); writing into {project} needs a key made without \
                 --read-only",
                t.scope
            ))),
            _ => Ok(()),
        }
    }

    /// May the caller create runs in `project`?
    pub(crate) fn may_write(&self, project: &ProjectName) -> bool {
        self.check_write(project).is_ok()
    }
}

/// The bearer credential of a request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Who a cloud call comes from, as the guard finds it: known at once (the server's own
/// token), or a key to look up in the token store. The lookup may be a database query,
/// so it is made on the blocking pool by the [`Access`] extractor, never on the thread
/// that runs the server's futures.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// The caller's access is known.
    Known(Access),
    /// A key to look up.
    Lookup {
        /// The key given.
        secret: String,
        /// Where keys are kept.
        tokens: Arc<dyn TokenStore>,
    },
}

/// Identifies the caller of a cloud call without reading the token store: no key is
/// the 401 to answer; the server's own token is [`Access::Full`]; any other key is to
/// be looked up ([`lookup`]).
pub(crate) fn identify(
    headers: &HeaderMap,
    full_token: Option<&str>,
    tokens: Option<&Arc<dyn TokenStore>>,
) -> Result<Caller, CloudError> {
    let Some(given) = bearer(headers) else {
        return Err(CloudError::unauthorized(
            "this call needs `Authorization: Bearer <key>`: a key made with `goodseed token \
             create`, or the server's --token",
        ));
    };
    if full_token.is_some_and(|t| crate::guard::constant_time_eq(given.as_bytes(), t.as_bytes())) {
        return Ok(Caller::Known(Access::Full));
    }
    match tokens {
        Some(tokens) => Ok(Caller::Lookup { secret: given.to_owned(), tokens: Arc::clone(tokens) }),
        None => {
            Err(CloudError::unauthorized("the key is not one this server knows, or it was revoked"))
        }
    }
}

/// Resolves the caller of a cloud call: the server's own token, or a token of the
/// store (a blocking read). `Err` is the 401 to answer.
pub(crate) fn resolve(
    headers: &HeaderMap,
    full_token: Option<&str>,
    tokens: Option<&Arc<dyn TokenStore>>,
) -> Result<Access, CloudError> {
    let Some(given) = bearer(headers) else {
        return Err(CloudError::unauthorized(
            "this call needs `Authorization: Bearer <key>`: a key made with `goodseed token \
             create`, or the server's --token",
        ));
    };
    if full_token.is_some_and(|t| crate::guard::constant_time_eq(given.as_bytes(), t.as_bytes())) {
        return Ok(Access::Full);
    }
    let found = match tokens {
        Some(store) => store.verify(given).map_err(|e| {
            CloudError::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "Auth.Unavailable",
                "Keys cannot be checked",
                format!("the server cannot read its keys now: {}", crate::error::kind_only(&e)),
            )
        })?,
        None => None,
    };
    found.map(Access::Scoped).ok_or_else(|| {
        CloudError::unauthorized("the key is not one this server knows, or it was revoked")
    })
}

impl FromRequest for Access {
    type Error = CloudError;
    type Future = Pin<Box<dyn Future<Output = Result<Access, CloudError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // The guard identifies every cloud call; a handler reached without it fails
        // closed.
        let caller = req.extensions().get::<Caller>().cloned();
        match caller {
            Some(Caller::Known(access)) => Box::pin(ready(Ok(access))),
            Some(Caller::Lookup { secret, tokens }) => Box::pin(async move {
                let mut headers = HeaderMap::new();
                let value = header::HeaderValue::from_str(&format!("Bearer {secret}"))
                    .map_err(|_| CloudError::unauthorized("the key is not valid header text"))?;
                headers.insert(header::AUTHORIZATION, value);
                actix_web::web::block(move || resolve(&headers, None, Some(&tokens)))
                    .await
                    .map_err(|_| {
                        CloudError::new(
                            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                            "Auth.Unavailable",
                            "Keys cannot be checked",
                            "the server is too busy to check keys now".to_owned(),
                        )
                    })?
            }),
            None => Box::pin(ready(Err(CloudError::unauthorized(
                "this call needs `Authorization: Bearer <key>`",
            )))),
        }
    }
}
