//! A run's checkpoints, artifacts and files over HTTP (ours):
//!
//! - `GET .../checkpoints`, `.../checkpoints/<id>`; `POST .../checkpoints/<id>/best`;
//!   `DELETE .../checkpoints/<id>`;
//! - `GET .../artifacts[?kind=&name=]` (every record: checkpoints, artifacts, files of a
//!   series), `.../artifacts/<id>`, `.../artifacts/<id>/content` (the bytes, with
//!   `Range`); `DELETE .../artifacts/<id>`.
//!
//! A download is read by the record's hash through the store's reader, never by a path,
//! so nothing outside the run's blobs can be named. It is served with its sniffed type
//! (never HTML, SVG or script), `nosniff`, a sandboxing CSP, inline only for images and
//! sounds, as an attachment otherwise.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use goodseed_core::media;
use goodseed_core::{ProjectName, RunId};
use goodseed_store::RunReader;
use goodseed_store::artifacts::{Artifact, ArtifactEdit, ArtifactKind};

use crate::body::{ChunkStream, blocking, json_response};
use crate::error::{ApiError, store_error};
use crate::json::Json;
use crate::query::{Query, decode_path};
use crate::state::AppState;

/// Which list a route is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Collection {
    /// `checkpoints`: only checkpoints.
    Checkpoints,
    /// `artifacts`: every record.
    Artifacts,
}

/// What a route asks of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The record itself.
    Record,
    /// `content`: its bytes.
    Content,
    /// `best`: mark it best.
    Best,
}

/// `/api/runs/<project>/<run>/<collection>[/<id>[/<part>]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileRoute {
    project: String,
    run: String,
    pub(crate) collection: Collection,
    pub(crate) id: Option<i64>,
    pub(crate) part: Part,
}

impl FileRoute {
    /// Splits a decoded path; `None` when it is not one of these routes.
    pub(crate) fn parse(path: &str) -> Option<FileRoute> {
        let rest = path.strip_prefix("/api/runs/")?;
        let segs: Vec<&str> = rest.split('/').collect();
        let collection = |s: &str| match s {
            "checkpoints" => Some(Collection::Checkpoints),
            "artifacts" => Some(Collection::Artifacts),
            _ => None,
        };
        let id = |s: &str| s.parse::<i64>().ok().filter(|i| *i > 0 && !s.starts_with('+'));
        let n = segs.len();
        let (head, collection, id, part) = match segs.as_slice() {
            [.., c, i, p] if collection(c).is_some() && id(i).is_some() => {
                let part = match *p {
                    "content" => Part::Content,
                    "best" => Part::Best,
                    _ => return None,
                };
                (&segs[..n - 3], collection(c)?, id(i), part)
            }
            [.., c, i] if collection(c).is_some() && id(i).is_some() => {
                (&segs[..n - 2], collection(c)?, id(i), Part::Record)
            }
            [.., c] if collection(c).is_some() => {
                (&segs[..n - 1], collection(c)?, None, Part::Record)
            }
            _ => return None,
        };
        let [project @ .., run] = head else { return None };
        if project.is_empty() || project.iter().any(|s| s.is_empty()) || run.is_empty() {
            return None;
        }
        Some(FileRoute { project: project.join("/"), run: (*run).to_owned(), collection, id, part })
    }

    fn ids(&self) -> Result<(ProjectName, RunId), ApiError> {
        let project =
            ProjectName::parse(&self.project).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let run = RunId::parse(&self.run).map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok((project, run))
    }

    fn err(&self, e: goodseed_store::StoreError) -> ApiError {
        store_error(&self.project, &self.run, e)
    }

    fn no_such(&self, id: i64) -> ApiError {
        let what = match self.collection {
            Collection::Checkpoints => "checkpoint",
            Collection::Artifacts => "artifact",
        };
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("No {what} {id} in run {}/{}", self.project, self.run),
        )
    }

    /// The record `id` of the run, if it belongs to this route's collection.
    fn find(&self, records: &[Artifact], id: i64) -> Result<Artifact, ApiError> {
        records
            .iter()
            .find(|a| a.id == id && self.includes(a.kind))
            .cloned()
            .ok_or_else(|| self.no_such(id))
    }

    fn includes(&self, kind: ArtifactKind) -> bool {
        self.collection == Collection::Artifacts || kind == ArtifactKind::Checkpoint
    }
}

/// One record as JSON.
pub(crate) fn artifact_json(j: &mut Json, a: &Artifact) {
    j.begin_object();
    j.key("id").i64(a.id);
    j.key("kind").str(a.kind.as_str());
    j.key("name").str(&a.name);
    j.key("step");
    match a.step {
        Some(s) => j.f64(s),
        None => j.null(),
    };
    j.key("sha256").str(a.hash.as_str());
    j.key("size").i64(i64::try_from(a.size).unwrap_or(i64::MAX));
    j.key("media_type").str(&a.media_type);
    j.key("width");
    match a.width {
        Some(w) => j.i64(w.into()),
        None => j.null(),
    };
    j.key("height");
    match a.height {
        Some(h) => j.i64(h.into()),
        None => j.null(),
    };
    j.key("metrics").begin_object();
    for (k, v) in &a.metrics {
        j.key(k).f64(*v);
    }
    j.end_object();
    j.key("best").bool(a.best);
    j.key("stored").bool(a.in_place.is_none());
    j.key("in_place").opt_str(a.in_place.as_deref());
    j.key("created_at").str(&a.created_at);
    j.end_object();
}

/// `GET` of a file route.
pub(crate) async fn get(
    req: &HttpRequest,
    state: &AppState,
    route: FileRoute,
) -> Result<HttpResponse, ApiError> {
    let (project, run) = route.ids()?;
    let reader = state.store.open_run(&project, &run).map_err(|e| route.err(e))?;
    let query = Query::parse(req.query_string());
    let kind = match query.get("kind") {
        None => None,
        Some(k) => Some(ArtifactKind::parse(k).ok_or_else(|| {
            ApiError::bad_request(format!("kind must be checkpoint, artifact or file, not {k:?}"))
        })?),
    };
    let name = query.get("name").map(str::to_owned);
    let list_reader = Arc::clone(&reader);
    let r2 = route.clone();
    let records = blocking(move || list_reader.artifacts().map_err(|e| r2.err(e))).await?;
    let Some(id) = route.id else {
        if route.part != Part::Record {
            return Err(crate::error::not_found());
        }
        let key = match route.collection {
            Collection::Checkpoints => "checkpoints",
            Collection::Artifacts => "artifacts",
        };
        let mut j = Json::default();
        j.begin_object().key(key).begin_array();
        for a in records.iter().filter(|a| route.includes(a.kind)) {
            if kind.is_some_and(|k| k != a.kind) || name.as_deref().is_some_and(|n| n != a.name) {
                continue;
            }
            artifact_json(&mut j, a);
        }
        j.end_array().end_object();
        return Ok(json_response(j));
    };
    let record = route.find(&records, id)?;
    match route.part {
        Part::Record => {
            let mut j = Json::default();
            artifact_json(&mut j, &record);
            Ok(json_response(j))
        }
        Part::Content => download(req, reader, route, record).await,
        Part::Best => Err(crate::error::not_found()),
    }
}

/// A byte range asked for, resolved against the length.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    /// No usable `Range`: the whole body.
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// A range past the end: 416.
    Unsatisfiable,
}

/// Reads a `Range` header: one `bytes=` range (`a-b`, `a-`, `-n`). Several ranges, or
/// another unit, are served whole, as HTTP allows; a malformed one too.
fn wanted(header: Option<&str>, len: u64) -> Wanted {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return Wanted::Whole };
    let num = |s: &str| {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (a.trim(), b.trim()) {
        ("", suffix) => match num(suffix) {
            Some(0) => Wanted::Unsatisfiable,
            Some(n) if len > 0 => Wanted::Part { start: len.saturating_sub(n), end: len - 1 },
            Some(_) => Wanted::Unsatisfiable,
            None => Wanted::Whole,
        },
        (first, last) => {
            let Some(start) = num(first) else { return Wanted::Whole };
            if start >= len {
                return Wanted::Unsatisfiable;
            }
            match last {
                "" => Wanted::Part { start, end: len - 1 },
                l => match num(l) {
                    Some(end) if end >= start => Wanted::Part { start, end: end.min(len - 1) },
                    _ => Wanted::Whole,
                },
            }
        }
    }
}

/// A file name for `Content-Disposition`: an ASCII fallback and the exact name.
fn disposition(record: &Artifact) -> String {
    let base = match record.kind {
        ArtifactKind::File => {
            let last = record.name.rsplit('/').next().unwrap_or("file");
            let step = match record.step {
                Some(s) if s.fract() == 0.0 && s.abs() < 9.0e15 => format!("{}", s as i64),
                Some(s) => goodseed_core::python_float_repr(s),
                None => String::new(),
            };
            format!("{last}-{step}{}", extension(&record.media_type))
        }
        _ => record.name.rsplit('/').next().unwrap_or("artifact").to_owned(),
    };
    let ascii: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
        .collect();
    let mut encoded = String::new();
    for b in base.bytes() {
        if b.is_ascii_alphanumeric() || b"._-~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let how = if media::is_inline(&record.media_type) { "inline" } else { "attachment" };
    format!("{how}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

fn extension(media_type: &str) -> &'static str {
    match media_type {
        "image/png" => ".png",
        "image/jpeg" => ".jpg",
        "image/gif" => ".gif",
        "image/webp" => ".webp",
        "audio/wav" => ".wav",
        "audio/flac" => ".flac",
        "audio/ogg" => ".ogg",
        "audio/mpeg" => ".mp3",
        "application/json" => ".json",
        "text/csv" => ".csv",
        "text/plain" => ".txt",
        "application/x-tar" => ".tar",
        _ => "",
    }
}

async fn download(
    req: &HttpRequest,
    reader: Arc<dyn RunReader>,
    route: FileRoute,
    record: Artifact,
) -> Result<HttpResponse, ApiError> {
    if record.in_place.is_some() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "{} {} of run {}/{} was registered in place on the trainer's machine: the store holds no copy",
                record.kind.as_str(),
                record.id,
                route.project,
                route.run
            ),
        ));
    }
    if record.media_type == media::TREE {
        return download_tree(reader, route, record).await;
    }
    let hash = record.hash.clone();
    let r2 = route.clone();
    let mut blob = blocking(move || reader.open_blob(&hash).map_err(|e| r2.err(e))).await?;
    let len = blob.len;
    let range = req.headers().get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, count) = match wanted(range, len) {
        Wanted::Whole => (StatusCode::OK, 0, len),
        Wanted::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Wanted::Unsatisfiable => {
            let mut response = crate::error::error_response(
                StatusCode::RANGE_NOT_SATISFIABLE,
                &format!("the range asked for is past the end of the {len} bytes"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(response);
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    actix_web::rt::task::spawn_blocking(move || {
        if blob.reader.seek(SeekFrom::Start(start)).is_err() {
            return;
        }
        let mut left = count;
        let mut buf = vec![0u8; 256 * 1024];
        while left > 0 {
            let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            match blob.reader.read(&mut buf[..want]) {
                Ok(0) | Err(_) => return, // cut short: the client sees the length unmet
                Ok(n) => {
                    left -= n as u64;
                    if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let served_type = if media::is_known(&record.media_type) {
        record.media_type.as_str()
    } else {
        media::OCTET_STREAM
    };
    let mut response = HttpResponse::build(status);
    response
        .insert_header((header::CONTENT_TYPE, served_type))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'none'; sandbox"))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::ETAG, format!("\"{}\"", record.hash)))
        .insert_header((header::CACHE_CONTROL, "private, max-age=31536000, immutable"));
    if let Ok(v) = HeaderValue::from_str(&disposition(&record)) {
        response.insert_header((header::CONTENT_DISPOSITION, v));
    }
    if status == StatusCode::PARTIAL_CONTENT {
        response.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", start + count - 1),
        ));
    }
    Ok(response.no_chunking(count).streaming(ChunkStream::new(rx)))
}

/// Bytes written into a response body, in chunks.
struct BodyWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl BodyWriter {
    const CHUNK: usize = 256 * 1024;

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(chunk).map_err(|_| std::io::Error::other("the client went away"))
    }
}

impl std::io::Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= Self::CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A directory checkpoint as a tar archive of its files, built while it is sent (its
/// length is not known ahead: no ranges). A file that cannot be read cuts the body off
/// before its end, so no client takes it for the whole.
async fn download_tree(
    reader: Arc<dyn RunReader>,
    route: FileRoute,
    record: Artifact,
) -> Result<HttpResponse, ApiError> {
    let hash = record.hash.clone();
    let r2 = route.clone();
    // The record is checked once; its files are then opened one at a time.
    let files = blocking(move || reader.open_tree(&hash).map_err(|e| r2.err(e))).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failed_late = Arc::clone(&failed);
    actix_web::rt::task::spawn_blocking(move || {
        let mut out = tar::Builder::new(BodyWriter { tx, buf: Vec::new() });
        let written = (|| -> std::io::Result<()> {
            for (i, f) in files.tree.files.iter().enumerate() {
                let blob = files.open(i).map_err(std::io::Error::other)?;
                let mut header = tar::Header::new_gnu();
                header.set_size(blob.len);
                header.set_mode(0o644);
                header.set_mtime(0);
                header.set_entry_type(tar::EntryType::Regular);
                out.append_data(&mut header, &f.path, blob.reader)?;
            }
            out.finish()?;
            std::io::Write::flush(out.get_mut())
        })();
        if written.is_err() {
            failed_late.store(true, std::sync::atomic::Ordering::Release);
        }
    });
    let name = format!("{}.tar", record.name.rsplit('/').next().unwrap_or("checkpoint"));
    let mut shown = record.clone();
    shown.name = name;
    shown.media_type = "application/x-tar".into();
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CONTENT_TYPE, "application/x-tar"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'none'; sandbox"))
        .insert_header((header::ACCEPT_RANGES, "none"))
        .insert_header((header::ETAG, format!("\"{}\"", record.hash)))
        .insert_header((header::CACHE_CONTROL, "private, max-age=31536000, immutable"));
    if let Ok(v) = HeaderValue::from_str(&disposition(&shown)) {
        response.insert_header((header::CONTENT_DISPOSITION, v));
    }
    Ok(response.streaming(ChunkStream::with_failure(rx, failed)))
}

/// What `POST .../checkpoints` takes: a checkpoint whose file the run's store holds
/// (sent through the team server's blob calls), or one kept elsewhere (`path`).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    name: String,
    step: f64,
    #[serde(default)]
    metrics: serde_json::Map<String, serde_json::Value>,
    sha256: String,
    size: u64,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    best: bool,
}

/// `POST .../checkpoints`: registers a checkpoint (the training-dashboard seed's
/// register route), answered with its record.
pub(crate) async fn register(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    route: FileRoute,
) -> Result<HttpResponse, ApiError> {
    let (project, run) = route.ids()?;
    let body = crate::body::collect(req, payload, 64 * 1024).await.map_err(|e| match e {
        crate::body::BodyError::TooLarge => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "a registration is at most 64 KiB")
        }
        crate::body::BodyError::Read(e) => {
            ApiError::bad_request(format!("the body could not be read: {e}"))
        }
    })?;
    let b: RegisterBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the registration is not valid: {e}")))?;
    let hash = goodseed_store::artifacts::ContentHash::parse(&b.sha256).ok_or_else(|| {
        ApiError::bad_request(format!("sha256 {:?} is not 64 lowercase hex digits", b.sha256))
    })?;
    let step =
        goodseed_core::Step::new(b.step).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut metrics = Vec::new();
    for (k, v) in &b.metrics {
        let x = match v {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) if s == "NaN" => Some(f64::NAN),
            serde_json::Value::String(s) if s == "Infinity" => Some(f64::INFINITY),
            serde_json::Value::String(s) if s == "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        }
        .ok_or_else(|| ApiError::bad_request(format!("metric {k:?} is not a number: {v}")))?;
        metrics.push((k.clone(), x));
    }
    let new = goodseed_store::artifacts::NewArtifact {
        kind: ArtifactKind::Checkpoint,
        name: b.name.clone(),
        step: Some(step),
        blob: goodseed_store::artifacts::BlobRef {
            hash,
            size: b.size,
            media_type: media::OCTET_STREAM.to_owned(),
            width: None,
            height: None,
        },
        metrics,
        in_place: b.path,
    };
    new.check().map_err(ApiError::bad_request)?;
    let store = Arc::clone(&state.store);
    let best = b.best;
    let record = blocking(move || {
        let id = store.add_artifact(&project, &run, &new).map_err(|e| match e {
            goodseed_store::StoreError::NoSuchArtifact { what, .. } => ApiError::new(
                StatusCode::CONFLICT,
                format!("the run's store holds no file {what}: send it first, or give its path"),
            ),
            e => route.err(e),
        })?;
        if best {
            store
                .edit_artifact(&project, &run, id, ArtifactEdit::MarkBest)
                .map_err(|e| route.err(e))?;
        }
        let reader = store.open_run(&project, &run).map_err(|e| route.err(e))?;
        let records = reader.artifacts().map_err(|e| route.err(e))?;
        route.find(&records, id)
    })
    .await?;
    let mut j = Json::default();
    artifact_json(&mut j, &record);
    Ok(json_response(j))
}

/// `POST .../checkpoints/<id>/best` and `DELETE .../<collection>/<id>`.
pub(crate) async fn edit(
    state: &AppState,
    route: FileRoute,
    edit: ArtifactEdit,
) -> Result<HttpResponse, ApiError> {
    let (project, run) = route.ids()?;
    let Some(id) = route.id else { return Err(crate::error::not_found()) };
    let store = Arc::clone(&state.store);
    blocking(move || {
        let reader = store.open_run(&project, &run).map_err(|e| route.err(e))?;
        let records = reader.artifacts().map_err(|e| route.err(e))?;
        drop(reader);
        route.find(&records, id)?;
        store.edit_artifact(&project, &run, id, edit).map_err(|e| route.err(e))
    })
    .await?;
    let mut j = Json::default();
    j.begin_object().key("ok").bool(true).end_object();
    Ok(json_response(j))
}

/// `DELETE /api/runs/...`: only a record of a run's checkpoints or artifacts.
pub(crate) async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let path = decode_path(req.uri().path())?;
    match FileRoute::parse(&path) {
        Some(route) if route.id.is_some() && route.part == Part::Record => {
            edit(&state, route, ArtifactEdit::Delete).await
        }
        _ => Err(crate::error::not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_routes_split_from_the_end() {
        let r = FileRoute::parse("/api/runs/ws/proj/r1/checkpoints").expect("list");
        assert_eq!((r.project.as_str(), r.run.as_str(), r.id), ("ws/proj", "r1", None));
        let r = FileRoute::parse("/api/runs/p/r/artifacts/12/content").expect("content");
        assert_eq!((r.collection, r.id, r.part), (Collection::Artifacts, Some(12), Part::Content));
        let r = FileRoute::parse("/api/runs/p/r/checkpoints/3/best").expect("best");
        assert_eq!(r.part, Part::Best);
        assert!(FileRoute::parse("/api/runs/p/r/artifacts/3/other").is_none());
        assert!(FileRoute::parse("/api/runs/p/r/artifacts/-3").is_none());
        assert!(FileRoute::parse("/api/runs/p/r/artifacts/+3").is_none());
        assert!(FileRoute::parse("/api/runs/r/artifacts").is_none());
        assert!(FileRoute::parse("/api/runs//r/artifacts").is_none());
        assert!(FileRoute::parse("/api/runs/p/r/configs").is_none());
    }

    #[test]
    fn ranges_resolve_against_the_length() {
        assert_eq!(wanted(None, 10), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=0-3"), 10), Wanted::Part { start: 0, end: 3 });
        assert_eq!(wanted(Some("bytes=4-"), 10), Wanted::Part { start: 4, end: 9 });
        assert_eq!(wanted(Some("bytes=-3"), 10), Wanted::Part { start: 7, end: 9 });
        assert_eq!(wanted(Some("bytes=-30"), 10), Wanted::Part { start: 0, end: 9 });
        assert_eq!(wanted(Some("bytes=5-100"), 10), Wanted::Part { start: 5, end: 9 });
        assert_eq!(wanted(Some("bytes=10-"), 10), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-0"), 10), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=0-1,3-4"), 10), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=5-2"), 10), Wanted::Whole);
        assert_eq!(wanted(Some("items=0-1"), 10), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=x-1"), 10), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=0-"), 0), Wanted::Unsatisfiable);
    }
}
