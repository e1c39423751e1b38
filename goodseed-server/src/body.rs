//! Response bodies: JSON answers (kept in the response cache when they are about a
//! closed run), answers streamed in chunks from a blocking thread, and the hop to the
//! blocking pool for store work; and request bodies read whole under a limit.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use bytes::Bytes;

use crate::cache::{self, Key, ResponseCache};
use crate::error::ApiError;
use crate::json::Json;

pub(crate) fn json_response(j: Json) -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(j.finish())
}

pub(crate) fn json_bytes(body: Bytes) -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(body)
}

/// The answer, kept in the cache when it is about a closed run.
pub(crate) fn cached(cache: &ResponseCache, key: Option<Key>, j: Json) -> HttpResponse {
    let body = Bytes::from(j.finish());
    if let Some(key) = key {
        cache.put(key, body.clone());
    }
    json_bytes(body)
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f).await.map_err(|_| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the request's worker stopped")
    })?
}

/// Bytes per streamed chunk.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Runs `produce` on a blocking thread; what it sends becomes the response body, and
/// the cache's entry for `key` when the whole body stays small. Errors before the first
/// chunk become the answer; a later one cuts the response off as HTTP says a failed
/// answer must be: the connection closes before the body's end (no last chunk), so no
/// client takes what it got for the whole answer (and nothing is cached).
pub(crate) async fn stream(
    cache: Arc<ResponseCache>,
    key: Option<Key>,
    produce: impl FnOnce(&mut dyn FnMut(String) -> bool) -> Result<(), ApiError> + Send + 'static,
) -> Result<ChunkStream, ApiError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Result<(), ApiError>>();
    let failed = Arc::new(AtomicBool::new(false));
    let failed_late = Arc::clone(&failed);
    actix_web::rt::task::spawn_blocking(move || {
        let mut first = Some(first_tx);
        let mut kept: Option<Vec<u8>> = key.as_ref().map(|_| Vec::new());
        let mut send = |chunk: String| {
            if let Some(f) = first.take() {
                let _ = f.send(Ok(()));
            }
            if let Some(buf) = kept.as_mut() {
                if buf.len() + chunk.len() <= cache::MAX_ENTRY {
                    buf.extend_from_slice(chunk.as_bytes());
                } else {
                    kept = None;
                }
            }
            tx.blocking_send(Bytes::from(chunk)).is_ok()
        };
        let result = produce(&mut send);
        match (result, first.take()) {
            (Err(e), Some(f)) => {
                let _ = f.send(Err(e));
            }
            (Ok(()), _) => {
                if let (Some(key), Some(body)) = (key, kept) {
                    cache.put(key, Bytes::from(body));
                }
            }
            // Set before the sender goes, so the body sees it when the chunks end.
            (Err(_), None) => failed_late.store(true, Ordering::Release),
        }
    });
    match first_rx.await {
        Ok(Ok(())) => Ok(ChunkStream { rx: Some(rx), failed: Some(failed) }),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            rx.close();
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the request's worker stopped"))
        }
    }
}

/// A response body fed by [`stream`] (or any producer with the sending end).
pub(crate) struct ChunkStream {
    rx: Option<tokio::sync::mpsc::Receiver<Bytes>>,
    /// Set when the producer failed after its first chunk: the body ends in an error.
    failed: Option<Arc<AtomicBool>>,
}

impl ChunkStream {
    pub(crate) fn new(rx: tokio::sync::mpsc::Receiver<Bytes>) -> ChunkStream {
        ChunkStream { rx: Some(rx), failed: None }
    }

    /// A body whose producer sets `failed` before it lets go when it failed: the body
    /// then ends in an error (the connection closes without the last chunk).
    pub(crate) fn with_failure(
        rx: tokio::sync::mpsc::Receiver<Bytes>,
        failed: Arc<AtomicBool>,
    ) -> ChunkStream {
        ChunkStream { rx: Some(rx), failed: Some(failed) }
    }
}

impl futures_core::Stream for ChunkStream {
    type Item = Result<Bytes, actix_web::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(rx) = self.rx.as_mut() else { return Poll::Ready(None) };
        match rx.poll_recv(cx) {
            Poll::Ready(Some(chunk)) => Poll::Ready(Some(Ok(chunk))),
            Poll::Ready(None) => {
                self.rx = None;
                if self.failed.take().is_some_and(|f| f.load(Ordering::Acquire)) {
                    // actix closes the connection without the body's last chunk.
                    let e = std::io::Error::other("the answer failed after it started");
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Why a request body could not be read whole.
pub(crate) enum BodyError {
    /// It passes the limit (or its `Content-Length` says it would).
    TooLarge,
    /// The connection failed while it was read.
    Read(String),
}

/// Reads a request body of at most `limit` bytes, refusing one whose
/// `Content-Length` passes it before reading anything.
pub(crate) async fn collect(
    req: &actix_web::HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    use futures_core::Stream as _;
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::with_capacity(declared.map_or(8192, |n| n as usize));
    while let Some(chunk) = std::future::poll_fn(|cx| Pin::new(&mut payload).poll_next(cx)).await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::pin::pin;

    use futures_core::Stream;

    use super::*;

    /// Every item of a streamed body, as the server would write it.
    async fn items(body: ChunkStream) -> Vec<Result<String, String>> {
        let mut body = pin!(body);
        let mut out = Vec::new();
        while let Some(item) = poll_fn(|cx| body.as_mut().poll_next(cx)).await {
            out.push(
                item.map(|b| String::from_utf8_lossy(&b).into_owned()).map_err(|e| e.to_string()),
            );
        }
        out
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        actix_web::rt::System::new().block_on(f)
    }

    #[test]
    fn a_stream_that_fails_after_it_started_ends_in_an_error() {
        let got = run(async {
            let cache = Arc::new(ResponseCache::default());
            let body = stream(cache, None, |send| {
                send("[1, ".to_owned());
                Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "database disk image is malformed",
                ))
            })
            .await
            .map_err(|_| "the error became the answer")
            .expect("the first chunk went");
            items(body).await
        });
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], Ok("[1, ".to_owned()));
        assert!(got[1].is_err(), "the body ends in an error, not as if whole: {got:?}");
    }

    #[test]
    fn a_stream_that_fails_first_is_the_answer_and_one_that_ends_well_ends() {
        let failed = run(async {
            let cache = Arc::new(ResponseCache::default());
            stream(cache, None, |_| Err(ApiError::new(StatusCode::NOT_FOUND, "no such run")))
                .await
                .err()
                .map(|e| e.status)
        });
        assert_eq!(failed, Some(StatusCode::NOT_FOUND));
        let whole = run(async {
            let cache = Arc::new(ResponseCache::default());
            let body = stream(cache, None, |send| {
                send("[1, ".to_owned());
                send("2]".to_owned());
                Ok(())
            })
            .await
            .map_err(|_| "an answer")
            .expect("streamed");
            items(body).await
        });
        assert_eq!(whole, [Ok("[1, ".to_owned()), Ok("2]".to_owned())]);
    }
}
