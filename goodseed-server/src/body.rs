//! Response bodies: JSON answers (kept in the response cache when they are about a
//! closed run), answers streamed in chunks from a blocking thread, and the hop to the
//! blocking pool for store work.

use std::pin::Pin;
use std::sync::Arc;
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
/// chunk become the answer; later ones end the stream early (and nothing is cached).
pub(crate) async fn stream(
    cache: Arc<ResponseCache>,
    key: Option<Key>,
    produce: impl FnOnce(&mut dyn FnMut(String) -> bool) -> Result<(), ApiError> + Send + 'static,
) -> Result<ChunkStream, ApiError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Result<(), ApiError>>();
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
            (Err(_), None) => {}
        }
    });
    match first_rx.await {
        Ok(Ok(())) => Ok(ChunkStream { rx: Some(rx) }),
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
}

impl ChunkStream {
    pub(crate) fn new(rx: tokio::sync::mpsc::Receiver<Bytes>) -> ChunkStream {
        ChunkStream { rx: Some(rx) }
    }
}

impl futures_core::Stream for ChunkStream {
    type Item = Result<Bytes, actix_web::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.rx.as_mut() {
            Some(rx) => rx.poll_recv(cx).map(|c| c.map(Ok)),
            None => Poll::Ready(None),
        }
    }
}
