//! Ours, beside goodseed's cloud protocol: a run's checkpoints, artifacts and files sent
//! by a trainer elsewhere (the SDK's remote mode, `goodseed sync`).
//!
//! - `GET /api/v1/runs/{id}/blobs/{sha256}`: how much of the file the server holds
//!   (`BlobState`: a file another run of the store holds counts as here at once);
//! - `PUT /api/v1/runs/{id}/blobs/{sha256}?offset=N&size=TOTAL`: the next chunk (at most
//!   8 MiB), from where the server is (409 with where it is otherwise); the last chunk
//!   makes the server check the whole file's SHA-256 (422 and the upload dropped when it
//!   differs); an upload cut off resumes from what `GET` says;
//! - `POST /api/v1/runs/{id}/artifacts` (`ArtifactsBody`): registers records whose bytes
//!   are here (409 naming a missing one), their media type told again from the bytes.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use goodseed_core::Step;
use goodseed_protocol::ArtifactsBody;
use goodseed_protocol::limits::{MAX_ARTIFACTS_PER_REQUEST, MAX_BLOB_CHUNK_BYTES};
use goodseed_store::WriteBatch;
use goodseed_store::artifacts::{
    ArtifactChange, ArtifactKind, BlobRef, ContentHash, NewArtifact, UploadState,
};

use super::access::Access;
use super::error::CloudError;
use super::{json_answer, off_thread, parse_json, read_body, run_of, shown};
use crate::json::Json;
use crate::query::Query;
use crate::state::AppState;

fn hash_of(req: &HttpRequest) -> Result<ContentHash, CloudError> {
    let text = req.match_info().get("sha256").unwrap_or("");
    ContentHash::parse(text).ok_or_else(|| {
        CloudError::invalid(format!("{text:?} is not a SHA-256 (64 lowercase hex digits)"))
    })
}

fn state_json(hash: &ContentHash, s: UploadState) -> Json {
    let mut j = Json::default();
    j.begin_object()
        .key("sha256")
        .str(hash.as_str())
        .key("received")
        .i64(i64::try_from(s.received).unwrap_or(i64::MAX))
        .key("complete")
        .bool(s.complete)
        .end_object();
    j
}

/// `GET /api/v1/runs/{id}/blobs/{sha256}`.
pub(super) async fn blob_state(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CloudError> {
    let run = run_of(&req, &access, true)?;
    let hash = hash_of(&req)?;
    let remote = std::sync::Arc::clone(&state.remote);
    let h = hash.clone();
    let now = off_thread(move || {
        let sink = remote.blobs(&run).map_err(|e| CloudError::store(&shown(&run), e))?;
        sink.upload_state(&h).map_err(|e| CloudError::store(&shown(&run), e))
    })
    .await?;
    Ok(json_answer(StatusCode::OK, state_json(&hash, now)))
}

fn number(query: &Query, name: &str) -> Result<u64, CloudError> {
    let text = query.get(name).ok_or_else(|| {
        CloudError::invalid(format!("{name}= is required (bytes, a whole number)"))
    })?;
    text.parse::<u64>()
        .map_err(|_| CloudError::invalid(format!("{name}={text:?} is not a whole number of bytes")))
}

/// `PUT /api/v1/runs/{id}/blobs/{sha256}?offset=&size=`.
pub(super) async fn blob_chunk(
    req: HttpRequest,
    payload: web::Payload,
    access: Access,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CloudError> {
    let run = run_of(&req, &access, true)?;
    let hash = hash_of(&req)?;
    let query = Query::parse(req.query_string());
    let (offset, total) = (number(&query, "offset")?, number(&query, "size")?);
    let body = read_body(&req, payload).await?;
    if body.len() > MAX_BLOB_CHUNK_BYTES {
        return Err(CloudError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request.TooLarge",
            "Request too large",
            format!("a chunk holds at most {MAX_BLOB_CHUNK_BYTES} bytes, not {}", body.len()),
        ));
    }
    let remote = std::sync::Arc::clone(&state.remote);
    let h = hash.clone();
    let now = off_thread(move || {
        let store_err = |e| CloudError::store(&shown(&run), e);
        let sink = remote.blobs(&run).map_err(store_err)?;
        let at = sink.upload_state(&h).map_err(store_err)?;
        if !at.complete && at.received != offset {
            return Err(CloudError::new(
                StatusCode::CONFLICT,
                "Blob.Offset",
                "Upload elsewhere",
                format!(
                    "the upload of {h} is at byte {}, not {offset}: send from there",
                    at.received
                ),
            ));
        }
        sink.upload_chunk(&h, offset, total, &body).map_err(|e| match e {
            goodseed_store::StoreError::BadRequest { reason } if reason.contains("hash to") => {
                CloudError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Blob.Checksum",
                    "Checksum mismatch",
                    reason,
                )
            }
            e => store_err(e),
        })
    })
    .await?;
    Ok(json_answer(StatusCode::OK, state_json(&hash, now)))
}

/// `POST /api/v1/runs/{id}/artifacts`.
pub(super) async fn register(
    req: HttpRequest,
    payload: web::Payload,
    access: Access,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CloudError> {
    let run = run_of(&req, &access, true)?;
    let body: ArtifactsBody =
        parse_json(&read_body(&req, payload).await?, "POST /api/v1/runs/{id}/artifacts")?;
    if body.artifacts.len() > MAX_ARTIFACTS_PER_REQUEST {
        return Err(CloudError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request.TooLarge",
            "Request too large",
            format!("at most {MAX_ARTIFACTS_PER_REQUEST} records a request"),
        ));
    }
    let remote = std::sync::Arc::clone(&state.remote);
    let count = body.artifacts.len();
    off_thread(move || {
        let store_err = |e| CloudError::store(&shown(&run), e);
        let sink = remote.blobs(&run).map_err(store_err)?;
        let mut batch = WriteBatch::new();
        for (i, e) in body.artifacts.into_iter().enumerate() {
            let at = |what: String| CloudError::invalid(format!("artifacts[{i}]: {what}"));
            let kind = ArtifactKind::parse(&e.kind)
                .ok_or_else(|| at(format!("kind {:?} is not checkpoint, artifact or file", e.kind)))?;
            let hash = ContentHash::parse(&e.sha256)
                .ok_or_else(|| at(format!("{:?} is not a SHA-256", e.sha256)))?;
            let step = match e.step {
                None => None,
                Some(x) => Some(Step::new(x).map_err(|err| at(err.to_string()))?),
            };
            let mut metrics = Vec::with_capacity(e.metrics.len());
            for (name, v) in e.metrics {
                let x = match &v {
                    serde_json::Value::Number(n) => n.as_f64(),
                    serde_json::Value::String(s) => match s.as_str() {
                        "NaN" => Some(f64::NAN),
                        "Infinity" => Some(f64::INFINITY),
                        "-Infinity" => Some(f64::NEG_INFINITY),
                        _ => None,
                    },
                    _ => None,
                }
                .ok_or_else(|| at(format!("metric {name:?} is not a number: {v}")))?;
                metrics.push((name, x));
            }
            let blob = match &e.in_place {
                // Nothing is sent for a file registered in place: its description is the
                // trainer's.
                Some(_) => BlobRef {
                    hash: hash.clone(),
                    size: e.size,
                    media_type: e
                        .media_type
                        .clone()
                        .filter(|t| goodseed_core::media::is_known(t))
                        .unwrap_or_else(|| goodseed_core::media::OCTET_STREAM.to_owned()),
                    width: None,
                    height: None,
                },
                None => {
                    let held = sink.describe(&hash, &e.name).map_err(store_err)?;
                    let held = held.ok_or_else(|| {
                        CloudError::new(
                            StatusCode::CONFLICT,
                            "Blob.Missing",
                            "File not uploaded",
                            format!(
                                "artifacts[{i}]: the server holds no file {hash} (upload it to /blobs/{hash} first)"
                            ),
                        )
                    })?;
                    let mut held = held;
                    if e.media_type.as_deref() == Some(goodseed_core::media::TREE) {
                        // A directory: every file it lists must be here too.
                        let tree = sink.tree(&hash).ok_or_else(|| {
                            at(format!("the file {hash} is not a directory manifest"))
                        })?;
                        for f in &tree.files {
                            let there = sink.upload_state(&f.hash).map_err(store_err)?;
                            if !there.complete {
                                return Err(CloudError::new(
                                    StatusCode::CONFLICT,
                                    "Blob.Missing",
                                    "File not uploaded",
                                    format!(
                                        "artifacts[{i}]: the server holds no file {} ({}) of the directory (upload it first)",
                                        f.hash, f.path
                                    ),
                                ));
                            }
                        }
                        held.size = tree.total();
                    }
                    if held.size != e.size {
                        return Err(at(format!("the file {hash} holds {} bytes, not {}", held.size, e.size)));
                    }
                    // The bytes alone say nothing of a text file's kind: the trainer
                    // named it (any type it may claim is served safely).
                    if held.media_type == goodseed_core::media::OCTET_STREAM
                        && let Some(told) = e.media_type.as_deref()
                        && goodseed_core::media::is_known(told)
                    {
                        told.clone_into(&mut held.media_type);
                    }
                    held
                }
            };
            let new = NewArtifact {
                kind,
                name: e.name.clone(),
                step,
                blob,
                metrics,
                in_place: e.in_place,
            };
            new.check().map_err(at)?;
            batch.artifact(new);
            if e.best
                && kind == ArtifactKind::Checkpoint
                && let Some(step) = step
            {
                batch.artifact_change(ArtifactChange::MarkBest { name: e.name, step });
            }
        }
        remote.write(&run, &batch).map_err(store_err)
    })
    .await?;
    let mut j = Json::default();
    j.begin_object().key("ok").bool(true).key("artifacts").i64(count as i64).end_object();
    Ok(json_answer(StatusCode::OK, j))
}
