//! goodseed 0.4.0's JSON API: the same routes, parameters and bytes, with every input
//! validated first and errors as `{"error": "..."}`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use bytes::Bytes;
use goodseed_core::downsample::{PointCount, SampledPoint, Window};
use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, ProjectName, RunId, parse_python_int};
use goodseed_store::{RunReader, RunStore, StoreError, TextWindow};

use crate::cache::{self, Key, ResponseCache};
use crate::columns::{ColumnCache, Columns, RunColumns};
use crate::json::Json;
use crate::query::{Query, decode_path};
use crate::runs::ListingQuery;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Arc<dyn RunStore>,
    pub(crate) cache: Arc<ResponseCache>,
    /// Config and last-metric values for the listing's `config=` / `metric=` columns.
    pub(crate) columns: Arc<ColumnCache>,
}

/// An error answer: a status and `{"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
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
        error_response(self.status, &self.message)
    }
}

/// `{"error": message}` with a status.
pub(crate) fn error_response(status: StatusCode, message: &str) -> HttpResponse {
    let mut j = Json::default();
    j.begin_object().key("error").str(message).end_object();
    HttpResponse::build(status).content_type(ContentType::json()).body(j.finish())
}

fn json_response(j: Json) -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(j.finish())
}

fn json_bytes(body: Bytes) -> HttpResponse {
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

/// Maps store errors to answers that never reveal a filesystem path.
pub(crate) fn store_error(project: &str, run: &str, err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound { .. } | StoreError::OutsideRoot { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, format!("Run not found: {project}/{run}"))
        }
        StoreError::NotARun { reason, .. } => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("run {project}/{run} cannot be read: {reason}"),
        ),
        StoreError::Database { busy: true, .. } | StoreError::Locked { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("run {project}/{run} is busy, try again"),
        ),
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
fn kind_only(err: &StoreError) -> String {
    match err {
        StoreError::Io { action, source, .. } => format!("{action}: {source}"),
        _ => "internal error".to_owned(),
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f).await.map_err(|_| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the request's worker stopped")
    })?
}

fn iso_mtime(t: SystemTime) -> String {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => UtcMicros::from_unix_float_parts(d.as_secs() as i64, d.subsec_nanos()),
        Err(_) => UtcMicros::from(t),
    }
    .to_iso8601()
}

/// `GET /api/projects`
pub(crate) async fn projects(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = Arc::clone(&state.store);
    let projects = blocking(move || {
        store
            .list_projects()
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, kind_only(&e)))
    })
    .await?;
    let mut j = Json::with_capacity(64 + projects.len() * 96);
    j.begin_object().key("projects").begin_array();
    for p in &projects {
        j.begin_object().key("name").str(&p.name).key("run_count").i64(p.run_count as i64);
        j.key("last_modified");
        match p.last_modified {
            Some(t) => j.str(&iso_mtime(t)),
            None => j.null(),
        };
        j.end_object();
    }
    j.end_array().end_object();
    Ok(json_response(j))
}

/// `GET /api/runs[?project=]`, and ours: `status`, `tag`, `q`, `trashed`, `sort`,
/// `limit`, `offset` (see `runs.rs`), which add `total` to the answer.
pub(crate) async fn runs(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(req.query_string());
    let ours = ListingQuery::parse(&query)?;
    let columns = Columns::parse(&query)?;
    let total = |n: usize| ours.as_ref().map(|_| n);
    // 0.4.0 compares the filter as text: a name no run can have matches nothing.
    let filter = query.get("project").map(|p| ProjectName::parse(p).map_err(|_| ()));
    if let Some(Err(())) = filter {
        return Ok(json_response(runs_json(&[], total(0), None)));
    }
    let filter = filter.and_then(Result::ok);
    let store = Arc::clone(&state.store);
    let column_cache = Arc::clone(&state.columns);
    let j = blocking(move || {
        let listing = store
            .list_runs(filter.as_ref())
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, kind_only(&e)))?;
        let (page, total) = match &ours {
            None => (listing.runs, None),
            Some(q) => {
                let (page, total) = q.apply(listing.runs);
                (page, Some(total))
            }
        };
        let values = columns.as_ref().map(|c| (c, column_cache.get(&*store, &page)));
        Ok(runs_json(&page, total, values.as_ref().map(|(c, v)| (*c, v.as_slice()))))
    })
    .await?;
    Ok(json_response(j))
}

type ColumnValues<'a> = (&'a Columns, &'a [Option<Arc<RunColumns>>]);

fn runs_json(
    runs: &[Arc<goodseed_store::RunSummary>],
    total: Option<usize>,
    columns: Option<ColumnValues<'_>>,
) -> Json {
    let mut j = Json::with_capacity(64 + runs.len() * 400);
    j.begin_object().key("runs").begin_array();
    for (i, r) in runs.iter().enumerate() {
        run_fields(&mut j, r);
        if let Some((cols, values)) = columns {
            let values = values.get(i).and_then(Option::as_deref);
            j.key("config").begin_object();
            for key in cols.configs() {
                j.key(key);
                match values.and_then(|v| v.configs.get(key)) {
                    Some(value) => config_value(&mut j, value),
                    None => {
                        j.null();
                    }
                }
            }
            j.end_object();
            j.key("last").begin_object();
            for path in cols.metrics() {
                j.key(path);
                match values.and_then(|v| v.last.get(path)) {
                    Some(&x) => {
                        j.f64(x);
                    }
                    None => {
                        j.null();
                    }
                }
            }
            j.end_object();
        }
        j.end_object();
    }
    j.end_array();
    if let Some(total) = total {
        j.key("total").i64(i64::try_from(total).unwrap_or(i64::MAX));
    }
    j.end_object();
    j
}

/// One run as the listing shows it (also the data of the live stream's `event: run`).
pub(crate) fn run_json(j: &mut Json, r: &goodseed_store::RunSummary) {
    run_fields(j, r);
    j.end_object();
}

/// [`run_json`] without its closing brace, so the listing can add fields.
fn run_fields(j: &mut Json, r: &goodseed_store::RunSummary) {
    let m = &r.meta;
    j.begin_object();
    j.key("project").str(&r.project);
    j.key("run_id").str(&r.run_id);
    j.key("experiment_name").opt_str(m.name());
    j.key("created_at").opt_str(m.created_at());
    j.key("closed_at").opt_str(m.closed_at());
    j.key("status").str(m.status().unwrap_or("unknown"));
    j.key("trashed").bool(m.trashed());
    j.key("string_series_paths").begin_array();
    for p in &r.text_paths {
        j.str(p);
    }
    j.end_array();
    j.key("metric_paths").begin_array();
    for p in &r.metric_paths {
        j.str(p);
    }
    j.end_array();
    // Ours, added after 0.4.0's fields: the status with `crashed` derived, the tags.
    j.key("state").str(r.status.as_str());
    j.key("tags").begin_array();
    for t in &r.tags {
        j.str(t);
    }
    j.end_array();
}

/// What a `/api/runs/<project>/<run>/<what>` path names.
pub(crate) struct RunRoute {
    project: String,
    run: String,
    what: &'static str,
}

/// Splits a decoded path the way 0.4.0's route patterns do:
/// `^/api/runs/(.+)/([^/]+)/<what>$`.
fn run_route(path: &str, endings: &[&'static str]) -> Option<RunRoute> {
    let rest = path.strip_prefix("/api/runs/")?;
    for what in endings {
        let Some(head) = rest.strip_suffix(what).and_then(|h| h.strip_suffix('/')) else {
            continue;
        };
        let (project, run) = head.rsplit_once('/')?;
        if project.is_empty() || run.is_empty() {
            return None;
        }
        return Some(RunRoute { project: project.to_owned(), run: run.to_owned(), what });
    }
    None
}

impl RunRoute {
    /// Validates the identifiers before anything touches the filesystem.
    fn ids(&self) -> Result<(ProjectName, RunId), ApiError> {
        let project =
            ProjectName::parse(&self.project).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let run = RunId::parse(&self.run).map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok((project, run))
    }

    /// The run's reader. Called on the worker itself, not the blocking pool: a reader
    /// the catalog already has costs a few `stat`s, and the hop to the pool (a thread
    /// switch each way) was most of the cost of an answer served from the cache. A
    /// reader not yet open costs one SQLite open, about a millisecond.
    fn open(&self, state: &AppState) -> Result<Arc<dyn RunReader>, ApiError> {
        let (project, run) = self.ids()?;
        state.store.open_run(&project, &run).map_err(|e| self.err(e))
    }

    pub(crate) fn err(&self, e: StoreError) -> ApiError {
        store_error(&self.project, &self.run, e)
    }
}

pub(crate) fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Not found")
}

/// `GET /api/runs/<project>/<run>/{configs,metrics,metric-paths,string_series}`, and ours:
/// `series` (`series.rs`) and `summary`.
pub(crate) async fn run_get(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let path = decode_path(req.uri().path())?;
    let route = run_route(
        &path,
        &["configs", "metrics", "metric-paths", "string_series", "series", "summary"],
    )
    .ok_or_else(not_found)?;
    let query = Query::parse(req.query_string());
    let reader = route.open(&state)?;
    let key = reader.version().map(|version| Key {
        project: route.project.clone(),
        run: route.run.clone(),
        version,
        target: req.uri().path_and_query().map_or_else(String::new, |pq| pq.as_str().to_owned()),
    });
    if let Some(body) = key.as_ref().and_then(|k| state.cache.get(k)) {
        return Ok(json_bytes(body));
    }
    let cache = &state.cache;
    match route.what {
        "configs" => {
            let configs = blocking(move || reader.configs().map_err(|e| route.err(e))).await?;
            let mut j = Json::with_capacity(64 + configs.len() * 48);
            j.begin_object().key("configs").begin_object();
            for (path, value) in &configs {
                j.key(path);
                config_value(&mut j, value);
            }
            j.end_object().end_object();
            Ok(cached(cache, key, j))
        }
        "metric-paths" => {
            let paths = blocking(move || reader.metric_paths().map_err(|e| route.err(e))).await?;
            let mut j = Json::default();
            j.begin_object().key("paths").begin_array();
            for p in &paths {
                j.str(p);
            }
            j.end_array().end_object();
            Ok(cached(cache, key, j))
        }
        "string_series" => {
            let j = string_series(route, reader, &query).await?;
            Ok(cached(cache, key, j))
        }
        "summary" => summary(route, reader, &state, key).await,
        // Ours: one metric as columns, for charts.
        "series" => crate::series::series(route, reader, &query, Arc::clone(cache), key).await,
        _ => metrics(route, reader, &query, Arc::clone(cache), key).await,
    }
}

/// A config value as 0.4.0's `read_configs` returns it, then `json.dumps`. 0.4.0 itself
/// fails with a 500 on datetimes and string sets (tags), which JSON cannot hold: we
/// send them as ISO text and a sorted array.
fn config_value(j: &mut Json, value: &ConfigValue) {
    let _: &mut Json = match value {
        ConfigValue::Bool(b) => j.bool(*b),
        ConfigValue::Int(i) => j.i64(*i),
        ConfigValue::Float(x) => j.f64(*x),
        ConfigValue::Str(s) | ConfigValue::DateTime(s) => j.str(s),
        ConfigValue::StringSet(set) => {
            j.begin_array();
            for s in set {
                j.str(s);
            }
            j.end_array()
        }
        ConfigValue::Raw { type_tag, value: Some(text) }
            if type_tag == "int" && is_json_integer(text) =>
        {
            j.raw_number(text)
        }
        ConfigValue::Raw { value: Some(text), .. } => j.str(text),
        _ => j.null(),
    };
}

fn is_json_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

/// A `pointCount` parameter: an integer from 1 to 1,000,000 (0.4.0 loops forever on 0
/// or less).
pub(crate) fn point_count(text: &str) -> Result<PointCount, ApiError> {
    let count = parse_python_int(text)
        .ok_or_else(|| ApiError::bad_request("pointCount must be an integer"))?;
    PointCount::new(count).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A `run` parameter naming one run as `<project>/<run_id>` (projects may hold `/`).
pub(crate) fn run_spec(spec: &str) -> Result<(ProjectName, RunId), ApiError> {
    let Some((project, run)) = spec.rsplit_once('/') else {
        return Err(ApiError::bad_request(format!("run must be <project>/<run_id>, got {spec:?}")));
    };
    let project = ProjectName::parse(project).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let run = RunId::parse(run).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((project, run))
}

/// An optional integer parameter, read as 0.4.0 reads it (`int(x) if x else None`).
pub(crate) fn int_param(query: &Query, name: &str, error: &str) -> Result<Option<i64>, ApiError> {
    match query.get(name) {
        None => Ok(None),
        Some(text) => parse_python_int(text).map(Some).ok_or_else(|| ApiError::bad_request(error)),
    }
}

/// Writes a step as 0.4.0's reader hands it to `json.dumps`: a float from a `REAL`
/// column, an integer from the `INTEGER` steps of files before 0.4.0.
pub(crate) fn step(j: &mut Json, step: f64, integer_steps: bool) {
    if integer_steps && step.fract() == 0.0 && step.abs() < 9.0e15 {
        j.i64(step as i64);
    } else {
        j.f64(step);
    }
}

pub(crate) fn logged_at(ts: i64) -> String {
    UtcMicros::from_unix_seconds(ts).to_iso8601()
}

/// `logged_at` text for a run of points: consecutive points share their second, so the
/// text is formatted once per distinct `ts`, not once per point.
#[derive(Default)]
struct LoggedAt {
    ts: Option<i64>,
    text: String,
}

impl LoggedAt {
    fn get(&mut self, ts: i64) -> &str {
        if self.ts != Some(ts) {
            self.ts = Some(ts);
            self.text = logged_at(ts);
        }
        &self.text
    }
}

async fn metrics(
    route: RunRoute,
    reader: Arc<dyn RunReader>,
    query: &Query,
    cache: Arc<ResponseCache>,
    key: Option<Key>,
) -> Result<HttpResponse, ApiError> {
    let path = query.get("path").map(str::to_owned);
    if let Some(count) = query.get("pointCount") {
        let Some(path) = path else {
            return Err(ApiError::bad_request("pointCount requires a path parameter"));
        };
        let count = point_count(count)?;
        let (first, last) = index_window(query)?;
        let j = blocking(move || {
            let integer = reader.integer_steps().map_err(|e| route.err(e))?;
            let (window, sampled) =
                reader.downsample_metric(&path, first, last, count).map_err(|e| route.err(e))?;
            let mut j = Json::with_capacity(128 + sampled.points.len() * 160);
            j.begin_object().key("points").begin_array();
            for p in &sampled.points {
                sampled_point(&mut j, &path, p, integer);
            }
            j.end_array();
            window_fields(&mut j, &window);
            j.key("downsampled").bool(sampled.downsampled);
            j.end_object();
            Ok(j)
        })
        .await?;
        return Ok(cached(&cache, key, j));
    }
    // Every point: streamed, so a million points never sit in memory as one string;
    // kept for reuse when it turns out small.
    let body = stream(cache, key, move |send| {
        let integer = reader.integer_steps().map_err(|e| route.err(e))?;
        let mut j = Json::with_capacity(CHUNK + 256);
        j.begin_object().key("metrics").begin_array();
        let mut open = true;
        let mut times = LoggedAt::default();
        reader
            .visit_metrics(path.as_deref(), &mut |p, point| {
                j.begin_object().key("path").str(p).key("step");
                step(&mut j, point.step, integer);
                j.key("value").f64(point.value);
                j.key("logged_at").str(times.get(point.ts));
                j.end_object();
                if j.len() >= CHUNK {
                    open = send(j.take_chunk());
                }
                open
            })
            .map_err(|e| route.err(e))?;
        if !open {
            // The client went away: an error, so the cut body is not cached.
            return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the client went away"));
        }
        j.end_array().end_object();
        send(j.take_chunk());
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Ok().content_type(ContentType::json()).streaming(body))
}

fn sampled_point(j: &mut Json, path: &str, p: &SampledPoint, integer_steps: bool) {
    j.begin_object().key("path").str(path).key("step");
    if p.downsampled {
        j.f64(p.step); // a bucket's mean step is always a float in 0.4.0
    } else {
        step(j, p.step, integer_steps);
    }
    j.key("value").f64(p.value);
    j.key("minY").f64(p.min);
    j.key("maxY").f64(p.max);
    j.key("downsampled").bool(p.downsampled);
    j.key("logged_at").str(&logged_at(p.ts));
    j.end_object();
}

async fn string_series(
    route: RunRoute,
    reader: Arc<dyn RunReader>,
    query: &Query,
) -> Result<Json, ApiError> {
    const ERROR: &str = "limit, offset, and tail must be integers";
    let path = query.get("path").map(str::to_owned);
    let limit = int_param(query, "limit", ERROR)?;
    let offset = int_param(query, "offset", ERROR)?.unwrap_or(0);
    let tail = int_param(query, "tail", ERROR)?;
    let non_negative = |name: &str, v: i64| {
        u64::try_from(v)
            .map_err(|_| ApiError::bad_request(format!("{name} must not be negative, got {v}")))
    };
    let window = match (tail, limit) {
        (Some(t), _) => TextWindow::Tail(non_negative("tail", t)?),
        (None, Some(l)) => TextWindow::Page {
            limit: non_negative("limit", l)?,
            offset: non_negative("offset", offset)?,
        },
        (None, None) => TextWindow::All,
    };
    blocking(move || {
        let integer = reader.integer_steps().map_err(|e| route.err(e))?;
        let page = reader.text_points(path.as_deref(), window).map_err(|e| route.err(e))?;
        let mut j = Json::with_capacity(64 + page.points.len() * 120);
        j.begin_object().key("string_series").begin_array();
        for (p, point) in &page.points {
            j.begin_object().key("path").str(p).key("step");
            step(&mut j, point.step, integer);
            j.key("value").str(&point.value);
            j.key("logged_at").str(&logged_at(point.ts));
            j.end_object();
        }
        j.end_array().key("total").i64(page.total as i64).end_object();
        Ok(j)
    })
    .await
}

/// `GET /api/runs/<project>/<run>/summary` (ours): the run's listing entry (for its
/// derived state and tags) and what the reader tells. Kept in the cache unless the run
/// is stored as running (its duration grows, its state may turn to crashed).
async fn summary(
    route: RunRoute,
    reader: Arc<dyn RunReader>,
    state: &AppState,
    key: Option<Key>,
) -> Result<HttpResponse, ApiError> {
    let (project, run) = route.ids()?;
    let store = Arc::clone(&state.store);
    let (j, keep) = blocking(move || {
        let summary = store.run_summary(&project, &run).map_err(|e| route.err(e))?;
        let j = crate::runs::summary_json(&summary, reader.as_ref()).map_err(|e| route.err(e))?;
        Ok((j, summary.meta.status() != Some("running")))
    })
    .await?;
    Ok(cached(&state.cache, key.filter(|_| keep), j))
}

/// `POST /api/runs/<project>/<run>/trash`, `.../trash/restore`, and ours, `.../stop`
/// (asks the run's trainer to stop: `Run::should_stop` in the SDK).
pub(crate) async fn run_post(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let path = decode_path(req.uri().path())?;
    // Longer ending first, as 0.4.0 matches restore before trash.
    let route = run_route(&path, &["trash/restore", "trash", "stop"]).ok_or_else(not_found)?;
    let (project, run) = route.ids()?;
    let store = Arc::clone(&state.store);
    blocking(move || {
        match route.what {
            "stop" => store.request_stop(&project, &run),
            what => store.set_trashed(&project, &run, what == "trash"),
        }
        .map_err(|e| route.err(e))
    })
    .await?;
    let mut j = Json::default();
    j.begin_object().key("ok").bool(true).end_object();
    Ok(json_response(j))
}

/// Any other path.
pub(crate) async fn fallback() -> Result<HttpResponse, ApiError> {
    Err(not_found())
}

/// `firstPointIndex` and `lastPointIndex`, as the metrics and series endpoints read them.
pub(crate) fn index_window(query: &Query) -> Result<(Option<i64>, Option<i64>), ApiError> {
    const INDEX_ERROR: &str = "firstPointIndex and lastPointIndex must be integers";
    Ok((
        int_param(query, "firstPointIndex", INDEX_ERROR)?,
        int_param(query, "lastPointIndex", INDEX_ERROR)?,
    ))
}

/// The window a downsampled answer reports, in 0.4.0's order.
pub(crate) fn window_fields(j: &mut Json, window: &Window) {
    j.key("firstPointIndex").i64(window.first_point_index);
    j.key("lastPointIndex").i64(window.last_point_index);
    j.key("totalCount").i64(window.total_count as i64);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_routes_split_like_0_4_0() {
        let check = |path: &str, endings: &[&'static str], want: Option<(&str, &str, &str)>| {
            let got = run_route(path, endings);
            let got = got.as_ref().map(|r| (r.project.as_str(), r.run.as_str(), r.what));
            assert_eq!(got, want, "{path}");
        };
        let get = ["configs", "metrics", "metric-paths", "string_series"];
        check("/api/runs/p/r/configs", &get, Some(("p", "r", "configs")));
        check("/api/runs/ws/proj/r/metrics", &get, Some(("ws/proj", "r", "metrics")));
        check("/api/runs/a/b/c/run-1/metric-paths", &get, Some(("a/b/c", "run-1", "metric-paths")));
        check("/api/runs/r/configs", &get, None);
        check("/api/runs//r/configs", &get, None);
        check("/api/runs/p//configs", &get, None);
        check("/api/runs/p/r/other", &get, None);
        let post = ["trash/restore", "trash", "stop"];
        check("/api/runs/p/r/trash/restore", &post, Some(("p", "r", "trash/restore")));
        check("/api/runs/p/r/trash", &post, Some(("p", "r", "trash")));
        check("/api/runs/ws/p/r/stop", &post, Some(("ws/p", "r", "stop")));
    }

    #[test]
    fn config_values_as_0_4_0_sends_them() {
        let render = |v: ConfigValue| {
            let mut j = Json::default();
            config_value(&mut j, &v);
            j.finish()
        };
        assert_eq!(render(ConfigValue::Float(1e-5)), "1e-05");
        assert_eq!(render(ConfigValue::Float(f64::NAN)), "\"NaN\"");
        assert_eq!(render(ConfigValue::Int(-3)), "-3");
        assert_eq!(render(ConfigValue::Null), "null");
        assert_eq!(
            render(ConfigValue::Raw {
                type_tag: "int".into(),
                value: Some("18446744073709551616".into())
            }),
            "18446744073709551616"
        );
        assert_eq!(
            render(ConfigValue::Raw { type_tag: "int".into(), value: Some("007".into()) }),
            "\"007\""
        );
        assert_eq!(
            render(ConfigValue::StringSet(["b".into(), "a".into()].into())),
            r#"["a", "b"]"#
        );
    }
}
