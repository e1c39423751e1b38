//! goodseed's cloud API (`/api/v1`), so that trainers on other machines log into this
//! server: goodseed 0.4.0 in its `cloud` mode (`GOODSEED_API_URL` pointed here), its
//! `goodseed upload`, and our SDK's remote mode and `goodseed sync`. The bodies are
//! `goodseed-protocol`'s; runs received are ordinary runs of the store (project
//! `workspace/project`), so listing, the UI, live updates and export see them as any
//! other. Every call needs a key (`access.rs`); writing calls go through `remote.rs`,
//! which holds each live remote run's writer.

mod access;
mod batch;
mod error;
mod files;
pub(crate) mod remote;

use std::sync::Arc;

use crate::body::BodyError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};
use goodseed_core::time::UtcMicros;
use goodseed_core::{ProjectName, RunId, RunName, RunRef};
use goodseed_protocol::limits::MAX_BODY_BYTES;
use goodseed_protocol::{ConfigsBody, RegisterRun, StatusBody, ingest};
use goodseed_store::lifecycle::EndState;
use goodseed_store::{RunReader, TextWindow};

pub(crate) use access::{Access, Caller, identify};
pub(crate) use error::CloudError;
use remote::Registration;

use crate::encode::config_value;
use crate::json::Json;
use crate::query::Query;
use crate::state::AppState;

/// The routes, under `/api/v1`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/auth/me", web::get().to(me))
        .route("/api/v1/runs", web::post().to(register))
        .route("/api/v1/runs/{id}", web::get().to(run_details))
        .route("/api/v1/runs/{id}/configs", web::post().to(configs))
        .route("/api/v1/runs/{id}/ingest", web::post().to(ingest))
        .route("/api/v1/runs/{id}/status", web::post().to(status))
        .route("/api/v1/runs/{id}/heartbeat", web::post().to(heartbeat))
        .route("/api/v1/runs/{id}/paths", web::get().to(paths))
        .route("/api/v1/runs/{id}/data/metrics", web::get().to(metric_data))
        .route("/api/v1/runs/{id}/data/strings", web::get().to(string_data))
        .route("/api/v1/runs/{id}/blobs/{sha256}", web::get().to(files::blob_state))
        .route("/api/v1/runs/{id}/blobs/{sha256}", web::put().to(files::blob_chunk))
        .route("/api/v1/runs/{id}/artifacts", web::post().to(files::register));
}

/// Whether a path (as the router reads it) is a cloud call.
pub(crate) fn is_cloud_path(routed_path: &str) -> bool {
    routed_path == "/api/v1" || routed_path.starts_with("/api/v1/")
}

// ---------------------------------------------------------------------------------
// Run ids: `hex(project "/" run_id)`, so any server over the same store (and this one
// after a restart) finds the run from its id alone.

fn remote_id(run: &RunRef) -> String {
    let text = format!("{}/{}", run.project, run.run_id);
    let mut out = String::with_capacity(text.len() * 2);
    for b in text.bytes() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

fn parse_remote_id(id: &str) -> Option<RunRef> {
    if !id.len().is_multiple_of(2) || id.len() > 4096 {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes: Option<Vec<u8>> =
        id.as_bytes().chunks(2).map(|p| Some((nibble(p[0])? << 4) | nibble(p[1])?)).collect();
    let text = String::from_utf8(bytes?).ok()?;
    RunRef::parse(&text).ok()
}

/// The run a `{id}` names, and the key checked against it.
fn run_of(req: &HttpRequest, access: &Access, write: bool) -> Result<RunRef, CloudError> {
    let id = req.match_info().get("id").unwrap_or("");
    let run = parse_remote_id(id).ok_or_else(|| {
        CloudError::run_not_found(format!(
            "no run has the id {id:?} (ids come from POST /api/v1/runs)"
        ))
    })?;
    if write {
        access.check_write(&run.project)?;
    } else {
        access.check_read(&run.project)?;
    }
    Ok(run)
}

fn shown(run: &RunRef) -> String {
    format!("{}/{}", run.project, run.run_id)
}

// ---------------------------------------------------------------------------------
// Bodies

/// Reads a request body, refusing it once it passes 16 MiB (and at once when its
/// `Content-Length` says so), and inflates it when it is gzip.
async fn read_body(req: &HttpRequest, payload: web::Payload) -> Result<Vec<u8>, CloudError> {
    let body = crate::body::collect(req, payload, MAX_BODY_BYTES).await.map_err(|e| match e {
        BodyError::TooLarge => CloudError::wire(goodseed_protocol::WireError::TooLarge {
            what: "the request body",
            limit: "16 MiB".into(),
        }),
        BodyError::Read(e) => CloudError::invalid(format!("the body could not be read: {e}")),
    })?;
    match req.headers().get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("?")) {
        None | Some("identity") => Ok(body),
        Some(e) if e.eq_ignore_ascii_case("gzip") => {
            off_thread(move || {
                goodseed_protocol::gzip::decompress(&body, MAX_BODY_BYTES).map_err(CloudError::wire)
            })
            .await
        }
        Some(other) => Err(CloudError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Request.Encoding",
            "Unsupported encoding",
            format!("Content-Encoding {other:?} is not one this server reads (gzip or none)"),
        )),
    }
}

/// A JSON body of one of the small calls.
fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], call: &str) -> Result<T, CloudError> {
    serde_json::from_slice(body)
        .map_err(|e| CloudError::invalid(format!("the body of {call} is not valid: {e}")))
}

/// Runs store work on the blocking pool.
async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CloudError> + Send + 'static,
) -> Result<T, CloudError> {
    web::block(f).await.map_err(|_| {
        CloudError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Server.Error",
            "Server error",
            "the request's worker stopped",
        )
    })?
}

fn json_answer(status: StatusCode, j: Json) -> HttpResponse {
    HttpResponse::build(status).content_type(ContentType::json()).body(j.finish())
}

// ---------------------------------------------------------------------------------
// Calls

/// `GET /api/v1/auth/me`: the key's workspace (0.4.0 puts a project given without one
/// there), and ours: its project and whether it is read-only.
async fn me(access: Access) -> HttpResponse {
    let mut j = Json::default();
    j.begin_object();
    match &access {
        Access::Full => {
            j.key("name").str(access::FULL_ACCESS_WORKSPACE).key("project").null();
            j.key("read_only").bool(false).key("full_access").bool(true);
        }
        Access::Scoped(t) => {
            j.key("name").str(t.scope.workspace()).key("project");
            j.opt_str(t.scope.project().map(ProjectName::as_str));
            j.key("read_only").bool(t.scope.read_only()).key("full_access").bool(false);
        }
    }
    j.end_object();
    json_answer(StatusCode::OK, j)
}

/// `POST /api/v1/runs`: the run's id, creating the run when it does not exist.
async fn register(
    req: HttpRequest,
    payload: web::Payload,
    access: Access,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CloudError> {
    let body: RegisterRun = parse_json(&read_body(&req, payload).await?, "POST /api/v1/runs")?;
    let workspace = ProjectName::parse(&body.workspace)
        .ok()
        .filter(|w| w.segments().count() == 1)
        .ok_or_else(|| {
            CloudError::invalid(format!(
                "workspace {:?} is not a workspace name (one segment of a project name)",
                body.workspace
            ))
        })?;
    let project = ProjectName::parse(&format!("{workspace}/{}", body.project))
        .map_err(|e| CloudError::invalid(format!("project: {e}")))?;
    let run_id =
        RunId::parse(&body.run_id).map_err(|e| CloudError::invalid(format!("run_id: {e}")))?;
    let name = body
        .experiment_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .map(RunName::parse)
        .transpose()
        .map_err(|e| CloudError::invalid(format!("experiment_name: {e}")))?;
    for (field, value) in [("created_at", &body.created_at), ("modified_at", &body.modified_at)] {
        if let Some(v) = value
            && UtcMicros::parse_iso8601(v).is_none()
        {
            return Err(CloudError::invalid(format!("{field} {v:?} is not an ISO 8601 time")));
        }
    }
    access.check_read(&project)?;
    let run = RunRef::new(project, run_id);
    let reg = Registration { name, created_at: body.created_at, modified_at: body.modified_at };
    let remote = Arc::clone(&state.remote);
    let store = Arc::clone(&state.store);
    let may_create = access.may_write(&run.project);
    let created = {
        let run = run.clone();
        off_thread(move || {
            let shown = shown(&run);
            if !may_create {
                // A read-only key finds runs; it cannot make one.
                return match store.run_exists(&run.project, &run.run_id) {
                    Ok(true) => Ok(false),
                    Ok(false) => Err(CloudError::forbidden(format!(
                        "no run {shown}, and a read-only key cannot create one"
                    ))),
                    Err(e) => Err(CloudError::store(&shown, e)),
                };
            }
            remote.register(&run, &reg).map_err(|e| CloudError::store(&shown, e))
        })
        .await?
    };
    let mut j = Json::default();
    j.begin_object().key("id").str(&remote_id(&run)).key("created").bool(created);
    j.key("workspace").str(run.project.segments().next().unwrap_or(""));
    j.key("project").str(run.project.as_str()).key("run_id").str(run.run_id.as_str());
    j.end_object();
    Ok(json_answer(StatusCode::OK, j))
}

/// `POST /api/v1/runs/{id}/configs`: configs, in one transaction. 204.
async fn configs(
    req: HttpRequest,
    payload: web::Payload,
    access: Access,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CloudError> {
    let run = run_of(&req, &access, true)?;
    let body = read_body(&req, payload).await?;
    let remote = Arc::clone(&state.remote);
    off_thread(move || {
        let body: ConfigsBody = parse_json(&body, "POST /api/v1/runs/{id}/configs")?;
        let batch = batch::configs(&body.configs)?;
        remote.write(&run, &batch).map_err(|e| CloudError::store(&shown(&run), e))
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/runs/{id}/ingest`: metric and text points (JSON or protobuf), in one
/// transaction. 200 with how many were taken.
async fn ingest(
    req: HttpRequest,
    payload: web::Payload,
    access: Access,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CloudError> {
    let run = run_of(&req, &access, true)?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    let protobuf = match content_type.as_deref() {
        None | Some("application/json") => false,
        Some("application/protobuf" | "application/x-protobuf") => true,
        Some(other) => {
            return Err(CloudError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Request.ContentType",
                "Unsupported content type",
                format!("ingest takes application/json or application/protobuf, not {other:?}"),
            ));
        }
    };
    let body = read_body(&req, payload).await?;
    let remote = Arc::clone(&state.remote);
    let taken = off_thread(move || {
        let mut scratch = Vec::new();
        let points = if protobuf {
            ingest::decode_protobuf(&body)
        } else {
            ingest::decode_json(&body, &mut scratch)
        }
        .map_err(CloudError::wire)?;
        let batch = batch::points(&points)?;
        remote.write(&run, &batch).map_err(|e| CloudError::store(&shown(&run), e))?;
        Ok(points.len())
    })
    .await?;
    let mut j = Json::default();
    j.begin_object().key("ok").bool(true).key("points").i64(taken as i64).end_object();
    Ok(json_answer(StatusCode::OK, j))
}

/// `POST /api/v1/runs/{id}/status`: `finished` or `failed` ends the run (with ours,
/// `ended_by`, saying how), `running` is a heartbeat. 204.
async fn status(
    req: HttpRequest,
    payload: web::Payload,
    access: Access,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CloudError> {
    let run = run_of(&req, &access, true)?;
    let body: StatusBody =
        parse_json(&read_body(&req, payload).await?, "POST /api/v1/runs/{id}/status")?;
    let end = match (body.status.as_str(), body.ended_by.as_deref()) {
        ("running", None) => None,
        (status @ ("finished" | "failed"), by) => match EndState::parse(status, by) {
            Some(end) => Some(end),
            None => {
                return Err(CloudError::invalid(format!(
                    "ended_by {:?} does not go with status {status:?}: a finished run ends \
                     completed or stopped, a failed one failed or killed",
                    by.unwrap_or_default()
                )));
            }
        },
        ("running", Some(by)) => {
            return Err(CloudError::invalid(format!(
                "ended_by {by:?} is only for an end, not for status \"running\""
            )));
        }
        (other, _) => {
            return Err(CloudError::invalid(format!(
                "status {other:?} is not one of running, finished, failed"
            )));
        }
    };
    let remote = Arc::clone(&state.remote);
    off_thread(move || {
        match end {
            Some(end) => remote.end(&run, end),
            None => remote.heartbeat(&run).map(drop),
        }
        .map_err(|e| CloudError::store(&shown(&run), e))
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/runs/{id}/heartbeat`: the trainer is alive. Answers whether someone
/// asked it to stop (0.4.0 reads nothing; our SDK shows it as `should_stop`).
async fn heartbeat(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CloudError> {
    let run = run_of(&req, &access, true)?;
    let remote = Arc::clone(&state.remote);
    let stop =
        off_thread(move || remote.heartbeat(&run).map_err(|e| CloudError::store(&shown(&run), e)))
            .await?;
    let mut j = Json::default();
    j.begin_object().key("ok").bool(true).key("stop_requested").bool(stop).end_object();
    Ok(json_answer(StatusCode::OK, j))
}

/// A reader of the run `{id}` names, for the read calls.
async fn reader(
    req: &HttpRequest,
    access: &Access,
    state: &AppState,
) -> Result<(RunRef, Arc<dyn RunReader>), CloudError> {
    let run = run_of(req, access, false)?;
    let store = Arc::clone(&state.store);
    off_thread(move || {
        let reader = store
            .open_run(&run.project, &run.run_id)
            .map_err(|e| CloudError::store(&shown(&run), e))?;
        Ok((run, reader))
    })
    .await
}

/// `GET /api/v1/runs/{id}`: the run and its configs.
async fn run_details(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CloudError> {
    let (run, reader) = reader(&req, &access, &state).await?;
    let j = off_thread(move || {
        let err = |e| CloudError::store(&shown(&run), e);
        let meta = reader.meta().map_err(err)?;
        let configs = reader.configs().map_err(err)?;
        let mut j = Json::with_capacity(256 + configs.len() * 64);
        j.begin_object().key("id").str(&remote_id(&run));
        j.key("workspace").str(run.project.segments().next().unwrap_or(""));
        j.key("project").str(run.project.as_str()).key("run_id").str(run.run_id.as_str());
        j.key("experiment_name").opt_str(meta.name());
        j.key("status").opt_str(meta.status());
        j.key("created_at").opt_str(meta.created_at());
        j.key("closed_at").opt_str(meta.closed_at());
        j.key("configs").begin_array();
        for (path, value) in &configs {
            j.begin_object().key("path").str(path).key("type_tag").str(value.type_tag());
            j.key("value").opt_str(value.encode().as_deref());
            j.key("typed_value");
            config_value(&mut j, value);
            j.end_object();
        }
        j.end_array().end_object();
        Ok(j)
    })
    .await?;
    Ok(json_answer(StatusCode::OK, j))
}

/// `GET /api/v1/runs/{id}/paths`: every series, `[{"path", "type": "metric" | "string"}]`.
async fn paths(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CloudError> {
    let (run, reader) = reader(&req, &access, &state).await?;
    let j = off_thread(move || {
        let err = |e| CloudError::store(&shown(&run), e);
        let metrics = reader.metric_paths().map_err(err)?;
        let texts = reader.text_paths().map_err(err)?;
        let mut j = Json::default();
        j.begin_array();
        for (kind, list) in [("metric", &metrics), ("string", &texts)] {
            for p in list {
                j.begin_object().key("path").str(p).key("type").str(kind).end_object();
            }
        }
        j.end_array();
        Ok(j)
    })
    .await?;
    Ok(json_answer(StatusCode::OK, j))
}

/// A number query parameter, or a 400 naming it.
fn number_param(query: &Query, name: &str) -> Result<Option<f64>, CloudError> {
    query
        .get(name)
        .map(|v| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| CloudError::invalid(format!("{name}={v:?} is not a finite number")))
        })
        .transpose()
}

fn count_param(query: &Query, name: &str) -> Result<Option<u64>, CloudError> {
    query
        .get(name)
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                CloudError::invalid(format!("{name}={v:?} is not a whole number >= 0"))
            })
        })
        .transpose()
}

/// `GET /api/v1/runs/{id}/data/metrics?path=&step_min=&step_max=&max_points=`: the
/// points of one series between two steps, `raw_points` (`[{step, y}]`) when there are
/// at most `max_points`, else `buckets` of consecutive points (`[{step_min, step_max,
/// y_min, y_max, y_avg, count}]`, at most `max_points`), with `downsampled` saying which.
async fn metric_data(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CloudError> {
    let query = Query::parse(req.query_string());
    let path =
        query.get("path").ok_or_else(|| CloudError::invalid("path= is required"))?.to_owned();
    let lo = number_param(&query, "step_min")?;
    let hi = number_param(&query, "step_max")?;
    let max = match count_param(&query, "max_points")? {
        Some(0) => return Err(CloudError::invalid("max_points must be at least 1")),
        m => m,
    };
    let (run, reader) = reader(&req, &access, &state).await?;
    let j = off_thread(move || {
        let err = |e| CloudError::store(&shown(&run), e);
        let in_range = |s: f64| lo.is_none_or(|l| s >= l) && hi.is_none_or(|h| s <= h);
        // Points after the step just below `step_min`: the series is read from there.
        let after = lo.map(f64::next_down);
        // Count first, then answer in one more pass: memory stays bounded by the answer.
        let mut n = 0u64;
        reader
            .visit_metrics_after(&path, after, &mut |p| {
                n += u64::from(in_range(p.step));
                hi.is_none_or(|h| p.step <= h)
            })
            .map_err(err)?;
        let per_bucket = match max {
            Some(m) if n > m => n.div_ceil(m),
            _ => 1,
        };
        let mut j = Json::with_capacity(64 + (n / per_bucket) as usize * 48);
        j.begin_object().key("path").str(&path).key("downsampled").bool(per_bucket > 1);
        j.key(if per_bucket > 1 { "buckets" } else { "raw_points" }).begin_array();
        let mut bucket = Bucket::default();
        reader
            .visit_metrics_after(&path, after, &mut |p| {
                let step = p.step;
                if in_range(step) {
                    if per_bucket == 1 {
                        j.begin_object().key("step").f64(step).key("y").f64(p.value).end_object();
                    } else {
                        bucket.push(step, p.value);
                        if bucket.count == per_bucket {
                            bucket.write(&mut j);
                        }
                    }
                }
                hi.is_none_or(|h| step <= h)
            })
            .map_err(err)?;
        if bucket.count > 0 {
            bucket.write(&mut j);
        }
        j.end_array().key("total").i64(n as i64).end_object();
        Ok(j)
    })
    .await?;
    Ok(json_answer(StatusCode::OK, j))
}

/// Consecutive points summed up.
#[derive(Default)]
struct Bucket {
    count: u64,
    step_min: f64,
    step_max: f64,
    y_min: f64,
    y_max: f64,
    sum: f64,
}

impl Bucket {
    fn push(&mut self, step: f64, y: f64) {
        if self.count == 0 {
            *self =
                Bucket { count: 0, step_min: step, step_max: step, y_min: y, y_max: y, sum: 0.0 };
        }
        self.count += 1;
        self.step_max = step;
        // NaN is shown, not hidden: min and max take it as they meet it.
        self.y_min = if y < self.y_min || y.is_nan() { y } else { self.y_min };
        self.y_max = if y > self.y_max || y.is_nan() { y } else { self.y_max };
        self.sum += y;
    }

    fn write(&mut self, j: &mut Json) {
        j.begin_object().key("step_min").f64(self.step_min).key("step_max").f64(self.step_max);
        j.key("y_min").f64(self.y_min).key("y_max").f64(self.y_max);
        j.key("y_avg").f64(self.sum / self.count as f64).key("count").i64(self.count as i64);
        j.end_object();
        self.count = 0;
    }
}

/// `GET /api/v1/runs/{id}/data/strings?path=&limit=&offset=`: `{points: [{step,
/// value}], total}` of one text series.
async fn string_data(
    req: HttpRequest,
    access: Access,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CloudError> {
    let query = Query::parse(req.query_string());
    let path =
        query.get("path").ok_or_else(|| CloudError::invalid("path= is required"))?.to_owned();
    let limit = count_param(&query, "limit")?;
    let offset = count_param(&query, "offset")?;
    let window = match (limit, offset) {
        (None, None) => TextWindow::All,
        (limit, offset) => {
            TextWindow::Page { limit: limit.unwrap_or(u64::MAX), offset: offset.unwrap_or(0) }
        }
    };
    let (run, reader) = reader(&req, &access, &state).await?;
    let j = off_thread(move || {
        let page = reader
            .text_points(Some(&path), window)
            .map_err(|e| CloudError::store(&shown(&run), e))?;
        let mut j = Json::with_capacity(64 + page.points.len() * 64);
        j.begin_object().key("points").begin_array();
        for (_, p) in &page.points {
            j.begin_object().key("step").f64(p.step).key("value").str(&p.value);
            j.key("timestampMs").i64(p.ts.saturating_mul(1000)).end_object();
        }
        j.end_array().key("total").i64(page.total as i64).end_object();
        Ok(j)
    })
    .await?;
    Ok(json_answer(StatusCode::OK, j))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_ids_round_trip_and_refuse_anything_else() {
        let run = RunRef::parse("team/vision/calm-otter").expect("run");
        let id = remote_id(&run);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert_eq!(parse_remote_id(&id), Some(run));
        let unicode = RunRef::parse("tëam/ü/r1").expect("run");
        assert_eq!(parse_remote_id(&remote_id(&unicode)), Some(unicode));
        for bad in ["", "0", "zz", "2e2e2f", &hex("a/../b"), &hex("no-project"), &hex("a/b/bad id")]
        {
            assert_eq!(parse_remote_id(bad), None, "{bad}");
        }
    }

    fn hex(s: &str) -> String {
        s.bytes().map(|b| format!("{b:02x}")).collect()
    }
}
