//! goodseed 0.4.0's JSON API: the same routes, parameters and bytes, with every input
//! validated first and errors as `{"error": "..."}`.

use std::sync::Arc;
use std::time::SystemTime;

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use goodseed_core::ProjectName;
use goodseed_core::time::UtcMicros;
use goodseed_store::requests::{NewRequest, Request, RequestKind, RequestStore};
use goodseed_store::{LogLevel, RunReader, TextFilter, TextOrder, TextWindow};

use crate::body::{BodyError, CHUNK, blocking, cached, json_bytes, json_response, stream};
use crate::cache::{Key, ResponseCache};
use crate::columns::{Columns, RunColumns};
use crate::encode::{
    LoggedAt, config_value, metric_point, run_fields, sampled_point, text_point, window_fields,
};
use crate::error::{ApiError, kind_only, not_found};
use crate::json::Json;
use crate::params::{index_window, int_param, point_count};
use crate::query::{Query, decode_path};
use crate::routes::{RunAction, RunRoute, RunView};
use crate::runs::ListingQuery;
use crate::state::AppState;

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
    let listings = Arc::clone(&state.listings);
    let metrics = Arc::clone(&state.metrics);
    let orders = Arc::clone(&state.orders);
    let order_key = crate::runs::order_key(&query);
    let target = req.query_string().to_owned();
    let body = blocking(move || {
        let listing = store
            .list_runs(filter.as_ref())
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, kind_only(&e)))?;
        let (page, total) = match &ours {
            None => (listing.runs, None),
            Some(q) => {
                let runs = if q.reads_metrics() {
                    metrics.fill(&*store, listing.runs)
                } else {
                    listing.runs
                };
                let (page, total) = q.apply_cached(runs, &orders, &order_key);
                (page, Some(total))
            }
        };
        // Column values change without their runs' summaries: those are not kept.
        let Some(columns) = columns else {
            if let Some(body) = listings.get(&target, &page, total) {
                return Ok(body);
            }
            let body = Bytes::from(runs_json(&page, total, None).finish());
            listings.put(&target, page, total, body.clone());
            return Ok(body);
        };
        let page = if columns.metrics().is_empty() { page } else { metrics.fill(&*store, page) };
        let values = column_cache.get_for(&*store, &page, &columns);
        Ok(Bytes::from(runs_json(&page, total, Some((&columns, values.as_slice()))).finish()))
    })
    .await?;
    Ok(json_bytes(body))
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
            // Each metric asked for at a glance: the newest value as logged (NaN and
            // infinities as strings, as in `last`); min, max and mean of finite values,
            // null when there is none.
            j.key("summary").begin_object();
            for path in cols.metrics() {
                j.key(path);
                match crate::filter::metric_of(r, path) {
                    Some(s) => {
                        j.begin_object();
                        for (name, x) in [
                            ("last", s.last),
                            ("last_step", s.last_step),
                            ("min", s.min),
                            ("min_step", s.min_step),
                            ("max", s.max),
                            ("max_step", s.max_step),
                            ("mean", s.mean_last),
                        ] {
                            j.key(name);
                            if x.is_nan() && name != "last" {
                                j.null();
                            } else {
                                j.f64(x);
                            }
                        }
                        j.end_object();
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

/// `GET /api/runs/<project>/<run>/{configs,metrics,metric-paths,string_series}`, and ours:
/// `series` (`series.rs`) and `summary`.
pub(crate) async fn run_get(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let path = decode_path(req.uri().path())?;
    if let Some(route) = crate::files::FileRoute::parse(&path) {
        return crate::files::get(&req, &state, route).await;
    }
    let route = RunRoute::<RunView>::parse(&path).ok_or_else(not_found)?;
    let query = Query::parse(req.query_string());
    let reader = route.open(&state)?;
    let key = reader.version().map(|version| Key {
        project: route.project().to_owned(),
        run: route.run().to_owned(),
        version,
        target: req.uri().path_and_query().map_or_else(String::new, |pq| pq.as_str().to_owned()),
    });
    if let Some(body) = key.as_ref().and_then(|k| state.cache.get(k)) {
        return Ok(json_bytes(body));
    }
    let cache = &state.cache;
    match route.what {
        RunView::Configs => {
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
        RunView::MetricPaths => {
            let paths = blocking(move || reader.metric_paths().map_err(|e| route.err(e))).await?;
            let mut j = Json::default();
            j.begin_object().key("paths").begin_array();
            for p in &paths {
                j.str(p);
            }
            j.end_array().end_object();
            Ok(cached(cache, key, j))
        }
        RunView::StringSeries => {
            let j = string_series(route, reader, &query).await?;
            Ok(cached(cache, key, j))
        }
        RunView::Summary => summary(route, reader, &state, key).await,
        // Ours: one metric as columns, for charts.
        RunView::Series => {
            crate::series::series(route, reader, &query, Arc::clone(cache), key).await
        }
        RunView::Metrics => metrics(route, reader, &query, Arc::clone(cache), key).await,
        RunView::Histograms => {
            let j = histograms(route, reader, query.get("path").map(str::to_owned)).await?;
            Ok(cached(cache, key, j))
        }
    }
}

/// Ours: `{"paths": [...]}`, the run's histogram series; with `path`, that series'
/// histograms in step order, `{"path", "histograms": [{"step", "logged_at", "kind",
/// "edges", "counts"}]}` (an unknown path has none).
async fn histograms(
    route: RunRoute<RunView>,
    reader: Arc<dyn RunReader>,
    path: Option<String>,
) -> Result<Json, ApiError> {
    blocking(move || {
        let mut j = Json::default();
        let Some(path) = path else {
            let paths = reader.histogram_paths().map_err(|e| route.err(e))?;
            j.begin_object().key("paths").begin_array();
            for p in &paths {
                j.str(p);
            }
            j.end_array().end_object();
            return Ok(j);
        };
        goodseed_core::FieldPath::parse(&path)
            .map_err(|e| ApiError::bad_request(format!("path: {e}")))?;
        let integer = reader.integer_steps().map_err(|e| route.err(e))?;
        let hs = reader.histograms(&path).map_err(|e| route.err(e))?;
        let cap = hs.iter().map(|h| 64 + h.histogram.edges.len() * 40).sum::<usize>();
        let mut j = Json::with_capacity(64 + cap);
        j.begin_object().key("path").str(&path).key("histograms").begin_array();
        for h in &hs {
            crate::encode::histogram_point(&mut j, None, h, integer);
        }
        j.end_array().end_object();
        Ok(j)
    })
    .await
}

async fn metrics(
    route: RunRoute<RunView>,
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
                metric_point(&mut j, p, &point, integer, &mut times);
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

async fn string_series(
    route: RunRoute<RunView>,
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
    // A negative offset is refused even where 0.4.0 ignores the offset (no limit).
    let offset = non_negative("offset", offset)?;
    let window = match (tail, limit) {
        (Some(t), _) => TextWindow::Tail(non_negative("tail", t)?),
        (None, Some(l)) => TextWindow::Page { limit: non_negative("limit", l)?, offset },
        (None, None) => TextWindow::All,
    };
    // Ours: a search over the whole series, paged over the matches.
    let filter = TextFilter {
        contains: query.get("q").map(str::to_owned),
        min_level: match query.get("level") {
            None => None,
            Some(text) => Some(LogLevel::parse(text).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "level must be one of error, warn, info, debug, trace, got {text:?}"
                ))
            })?),
        },
    };
    // Ours: `order=step` interleaves all series by step (0.4.0's order is by path).
    let order = match query.get("order") {
        None | Some("path") => TextOrder::Path,
        Some("step") => TextOrder::Step,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "order must be path or step, got {other:?}"
            )));
        }
    };
    blocking(move || {
        let integer = reader.integer_steps().map_err(|e| route.err(e))?;
        let page = if filter == TextFilter::default() {
            reader.text_points_in(path.as_deref(), window, order)
        } else {
            reader.search_text_in(path.as_deref(), &filter, window, order)
        }
        .map_err(|e| route.err(e))?;
        let mut j = Json::with_capacity(64 + page.points.len() * 120);
        j.begin_object().key("string_series").begin_array();
        let mut times = LoggedAt::default();
        for (p, point) in &page.points {
            text_point(&mut j, p, point, integer, &mut times);
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
    route: RunRoute<RunView>,
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
/// (asks the run's trainer to stop: `Run::should_stop` in the SDK) and `.../requests`
/// (asks an agent to stop, resume, clone or delete the run).
pub(crate) async fn run_post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let path = decode_path(req.uri().path())?;
    if let Some(route) = crate::files::FileRoute::parse(&path) {
        if route.id.is_none()
            && route.part == crate::files::Part::Record
            && route.collection == crate::files::Collection::Checkpoints
        {
            return crate::files::register(&req, payload, &state, route).await;
        }
        if route.part != crate::files::Part::Best {
            return Err(not_found());
        }
        return crate::files::edit(
            &state,
            route,
            goodseed_store::artifacts::ArtifactEdit::MarkBest,
        )
        .await;
    }
    // Longer ending first, as 0.4.0 matches restore before trash.
    let route = RunRoute::<RunAction>::parse(&path).ok_or_else(not_found)?;
    if route.what == RunAction::Request {
        return ask(&req, route, payload, &state).await;
    }
    if route.what == RunAction::Edit {
        return edit(&req, route, payload, &state).await;
    }
    let (project, run) = route.ids()?;
    let store = Arc::clone(&state.store);
    blocking(move || {
        match route.what {
            RunAction::Stop => store.request_stop(&project, &run),
            RunAction::Trash => store.set_trashed(&project, &run, true),
            RunAction::Restore => store.set_trashed(&project, &run, false),
            RunAction::Request | RunAction::Edit => unreachable!("answered above"),
        }
        .map_err(|e| route.err(e))
    })
    .await?;
    let mut j = Json::default();
    j.begin_object().key("ok").bool(true).end_object();
    Ok(json_response(j))
}

/// A JSON body of at most `limit` bytes, read whole: 413 beyond (naming `what` it is
/// the body of), 400 when it cannot be read.
async fn small_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    what: &str,
) -> Result<Vec<u8>, ApiError> {
    crate::body::collect(req, payload, limit).await.map_err(|e| match e {
        BodyError::TooLarge => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{what}'s body is at most {limit} bytes"),
        ),
        BodyError::Read(e) => ApiError::new(StatusCode::BAD_REQUEST, e),
    })
}

/// The largest body of `POST .../edit`: a description and a note at their longest.
const EDIT_BODY_LIMIT: usize = 3 * goodseed_store::lifecycle::MAX_TEXT;

/// What `POST .../edit` takes: the fields to change, each optional.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EditBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/runs/<project>/<run>/edit` (ours): changes the run's name, description,
/// tags or note in one short transaction beside any writer.
async fn edit(
    req: &HttpRequest,
    route: RunRoute<RunAction>,
    payload: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let (project, run) = route.ids()?;
    let body = small_body(req, payload, EDIT_BODY_LIMIT, "an edit").await?;
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, message);
    let asked: EditBody = serde_json::from_slice(&body).map_err(|e| {
        bad(format!("the body is not an edit ({{name, description, tags, note}}): {e}"))
    })?;
    let tags = match asked.tags {
        None => None,
        Some(list) => {
            let n = list.len();
            let set: std::collections::BTreeSet<String> = list.into_iter().collect();
            if set.len() != n {
                return Err(bad("tags must not repeat".into()));
            }
            Some(set)
        }
    };
    let change = goodseed_store::lifecycle::RunEdit {
        name: asked.name,
        description: asked.description,
        tags,
        note: asked.note,
    };
    if change.is_empty() {
        return Err(bad("an edit names at least one of name, description, tags, note".into()));
    }
    change.check().map_err(bad)?;
    let store = Arc::clone(&state.store);
    blocking(move || store.edit_run(&project, &run, &change).map_err(|e| route.err(e))).await?;
    let mut j = Json::default();
    j.begin_object().key("ok").bool(true).end_object();
    Ok(json_response(j))
}

/// The largest body of `POST .../requests`.
const REQUEST_BODY_LIMIT: usize = 64 * 1024;

/// What `POST .../requests` takes.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AskBody {
    kind: String,
    #[serde(default)]
    config_patch: Option<serde_json::Value>,
    #[serde(default)]
    checkpoint: Option<String>,
    #[serde(default)]
    asked_by: Option<String>,
    /// A clone's saved config (by name), under its patch.
    #[serde(default)]
    preset: Option<String>,
}

fn requests_of(state: &AppState) -> Result<Arc<dyn RequestStore>, ApiError> {
    state
        .requests
        .clone()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "this server keeps no requests"))
}

/// Runs `f` on the server's request store off the workers: what it refuses is a 400
/// with its reason, any other failure a 503 saying what could not be done (`doing`).
async fn with_requests<T: Send + 'static>(
    state: &AppState,
    doing: &'static str,
    f: impl FnOnce(&dyn RequestStore) -> goodseed_store::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let requests = requests_of(state)?;
    blocking(move || {
        f(requests.as_ref()).map_err(|e| match e {
            goodseed_store::StoreError::BadRequest { reason } => ApiError::bad_request(reason),
            e => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("cannot {doing}: {e}")),
        })
    })
    .await
}

/// `POST /api/runs/<project>/<run>/requests` (ours): keeps a pending request of
/// interactive control about the run, for an agent to carry out.
async fn ask(
    req: &HttpRequest,
    route: RunRoute<RunAction>,
    payload: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let requests = requests_of(state)?;
    let (project, run) = route.ids()?;
    let body = small_body(req, payload, REQUEST_BODY_LIMIT, "a request").await?;
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, message);
    let asked: AskBody = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("the body is not a request: {e}")))?;
    let kind = RequestKind::parse(&asked.kind)
        .filter(|k| RequestKind::ABOUT_A_RUN.contains(k))
        .ok_or_else(|| {
            bad(format!("kind {:?} is not one of stop, resume, clone, delete", asked.kind))
        })?;
    let who = asked.asked_by.unwrap_or_else(|| "api".to_owned());
    if who.chars().count() > 200 || who.chars().any(char::is_control) {
        return Err(bad("asked_by must be at most 200 characters, no control characters".into()));
    }
    if asked.preset.is_some() && kind != RequestKind::Clone {
        return Err(bad(format!("a {} request takes no preset", kind.as_str())));
    }
    let mut new = NewRequest {
        kind,
        run_id: run.clone(),
        config_patch: asked.config_patch.as_ref().map(ToString::to_string),
        checkpoint: asked.checkpoint,
        asked_by: who,
        sweep: None,
    };
    new.check().map_err(|e| bad(e.0))?;
    let store = Arc::clone(&state.store);
    let made = blocking(move || {
        if !store.run_exists(&project, &run).map_err(|e| route.err(e))? {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("Run not found: {project}/{run}"),
            ));
        }
        // A preset is the saved config with the patch over it, asked as one patch.
        if let Some(name) = &asked.preset {
            let saved = requests.saved_config(&project, name).map_err(|e| route.err(e))?;
            let saved = saved.ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("there is no saved config {name:?} in {project}"),
                )
            })?;
            let mut patch: serde_json::Value = serde_json::from_str(&saved.config)
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            if let Some(over) = &asked.config_patch {
                merge_into(&mut patch, over);
            }
            new.config_patch = Some(patch.to_string());
        }
        requests.ask(&project, &new).map_err(|e| route.err(e))
    })
    .await?;
    Ok(json_response(request_json(&made)))
}

/// Sets `over` into `base`: objects merged key by key, anything else replaced.
fn merge_into(base: &mut serde_json::Value, over: &serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => merge_into(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// The `project=` of a listing of the request store (needed, and valid).
fn project_param(req: &HttpRequest) -> Result<ProjectName, ApiError> {
    let query = Query::parse(req.query_string());
    let project = query
        .get("project")
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "project= is needed"))?;
    ProjectName::parse(project)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("project: {e}")))
}

/// `GET /api/config_keys?project=<project>` (ours): every config key and metric path any
/// run of the project has (the runs table's column picker), sorted, with how many runs
/// there are: from the runs' summaries, so no run is opened (keys of values too long for
/// a summary are left out; such values are not shown in columns either).
pub(crate) async fn config_keys(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let project = project_param(&req)?;
    let store = Arc::clone(&state.store);
    let (keys, paths, runs) = blocking(move || {
        let listing = store
            .list_runs(Some(&project))
            .map_err(|e| crate::error::store_error(project.as_str(), "*", e))?;
        let mut keys = std::collections::BTreeSet::new();
        let mut paths = std::collections::BTreeSet::new();
        for r in &listing.runs {
            keys.extend(r.configs.iter().map(|(k, _)| k.as_str()));
            paths.extend(r.metric_paths.iter().map(String::as_str));
        }
        let list = |set: std::collections::BTreeSet<&str>| -> Vec<String> {
            set.into_iter().map(str::to_owned).collect()
        };
        Ok((list(keys), list(paths), listing.runs.len()))
    })
    .await?;
    let mut j = Json::default();
    j.begin_object().key("keys").begin_array();
    for k in &keys {
        j.str(k);
    }
    j.end_array().key("metric_paths").begin_array();
    for p in &paths {
        j.str(p);
    }
    j.end_array().key("runs").i64(runs as i64).end_object();
    Ok(json_response(j))
}

/// `GET /api/importance?project=<project>&metric=<path>.<agg>` (ours, see
/// `importance.rs`): how each config that varies among the project's runs (those the
/// listing's `filter=`, `status`, `tag`, `q` and `trashed` keep) goes with a metric's
/// summary, most important first.
pub(crate) async fn importance(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let project = project_param(&req)?;
    let query = Query::parse(req.query_string());
    let target = query.get("metric").unwrap_or("").to_owned();
    let (path, agg) = crate::filter::metric_field(&target).ok_or_else(|| {
        ApiError::bad_request(format!(
            "metric must be <path>.<last|min|max|mean|last_step|min_step|max_step> (such as \
             val/acc.max), got {target:?}"
        ))
    })?;
    let conditions = ListingQuery::parse(&query)?;
    let store = Arc::clone(&state.store);
    let metrics = Arc::clone(&state.metrics);
    let (params, used, listed) = blocking(move || {
        let listing = store
            .list_runs(Some(&project))
            .map_err(|e| crate::error::store_error(project.as_str(), "*", e))?;
        let runs = match &conditions {
            Some(q) => q.apply(metrics.fill(&*store, listing.runs)).0,
            None => metrics.fill(&*store, listing.runs),
        };
        let listed = runs.len();
        let with: Vec<(&RunSummaryArc, f64)> = runs
            .iter()
            .filter_map(|r| {
                let v = crate::filter::metric_of(r, &path).map(|s| agg.value(s))?;
                v.is_finite().then_some((r, v))
            })
            .take(crate::importance::MAX_RUNS)
            .collect();
        let rows: Vec<&[(String, goodseed_core::ConfigValue)]> =
            with.iter().map(|(r, _)| r.configs.as_slice()).collect();
        let target: Vec<f64> = with.iter().map(|(_, v)| *v).collect();
        let columns = crate::importance::columns(&rows);
        let mut params = crate::importance::analyse(&columns, &target);
        params.sort_by(|a, b| b.importance.total_cmp(&a.importance).then(a.key.cmp(&b.key)));
        Ok((params, target.len(), listed))
    })
    .await?;
    let mut j = Json::default();
    j.begin_object().key("metric").str(&target);
    j.key("runs").i64(used as i64).key("listed").i64(listed as i64);
    j.key("params").begin_array();
    for p in &params {
        j.begin_object().key("key").str(&p.key).key("kind").str(p.kind);
        j.key("correlation");
        match p.correlation {
            Some(c) => j.f64(c),
            None => j.null(),
        };
        j.key("importance").f64(p.importance);
        j.key("distinct").i64(p.distinct as i64).key("runs").i64(p.runs as i64);
        j.end_object();
    }
    j.end_array().end_object();
    Ok(json_response(j))
}

type RunSummaryArc = Arc<goodseed_store::RunSummary>;

/// `GET /api/saved_configs?project=<project>` (ours): the project's saved configs.
pub(crate) async fn saved_configs(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let project = project_param(&req)?;
    let list =
        with_requests(&state, "read saved configs", move |r| r.saved_configs(&project)).await?;
    let mut j = Json::default();
    j.begin_object().key("saved_configs").begin_array();
    for c in &list {
        j.begin_object();
        j.key("name").str(&c.name);
        j.key("project").str(c.project.as_str());
        j.key("config").str(&c.config);
        j.key("from_run").opt_str(c.from_run.as_deref());
        j.key("saved_by").str(&c.saved_by);
        j.key("saved_at").str(&c.saved_at);
        j.end_object();
    }
    j.end_array().end_object();
    Ok(json_response(j))
}

/// `GET /api/views?project=<project>` (ours): the project's named views, by name.
pub(crate) async fn views(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let project = project_param(&req)?;
    let list = with_requests(&state, "read views", move |r| r.views(&project)).await?;
    let mut j = Json::default();
    j.begin_object().key("views").begin_array();
    for v in &list {
        view_json(&mut j, v);
    }
    j.end_array().end_object();
    Ok(json_response(j))
}

fn view_json(j: &mut Json, v: &goodseed_store::requests::SavedView) {
    j.begin_object();
    j.key("name").str(&v.name);
    j.key("layout").str(&v.layout);
    j.key("saved_by").str(&v.saved_by);
    j.key("saved_at").str(&v.saved_at);
    j.end_object();
}

/// The `name=` of a view (`PUT` and `DELETE /api/views`).
fn view_name(req: &HttpRequest) -> Result<String, ApiError> {
    Query::parse(req.query_string())
        .get("name")
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request("name= is needed (the view's name)"))
}

/// `PUT /api/views?project=<project>&name=<name>` (ours): keeps the body (a JSON object)
/// as the project's view of that name, replacing one.
pub(crate) async fn save_view(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let project = project_param(&req)?;
    let name = view_name(&req)?;
    requests_of(&state)?;
    let body = small_body(&req, payload, goodseed_store::requests::MAX_VIEW, "a view").await?;
    let layout = String::from_utf8(body)
        .map_err(|_| ApiError::bad_request("a view is JSON text (UTF-8)"))?;
    let saved = with_requests(&state, "keep the view", move |r| {
        r.save_view(&project, &name, &layout, "web")
    })
    .await?;
    let mut j = Json::default();
    view_json(&mut j, &saved);
    Ok(json_response(j))
}

/// `DELETE /api/views?project=<project>&name=<name>` (ours).
pub(crate) async fn delete_view(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let project = project_param(&req)?;
    let name = view_name(&req)?;
    let gone = {
        let (project, name) = (project.clone(), name.clone());
        with_requests(&state, "delete the view", move |r| r.delete_view(&project, &name)).await?
    };
    if !gone {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("there is no view {name:?} in {project}"),
        ));
    }
    let mut j = Json::default();
    j.begin_object().key("ok").bool(true).end_object();
    Ok(json_response(j))
}

/// `GET /api/requests?project=<project>` (ours): the project's requests, oldest first.
pub(crate) async fn requests(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let project = project_param(&req)?;
    let list = with_requests(&state, "read requests", move |r| r.list(&project)).await?;
    let mut j = Json::with_capacity(64 + list.len() * 300);
    j.begin_object().key("requests").begin_array();
    for r in &list {
        request_fields(&mut j, r);
    }
    j.end_array().end_object();
    Ok(json_response(j))
}

pub(crate) fn request_json(r: &Request) -> Json {
    let mut j = Json::default();
    request_fields(&mut j, r);
    j
}

fn request_fields(j: &mut Json, r: &Request) {
    j.begin_object();
    j.key("id").i64(r.id);
    j.key("project").str(r.project.as_str());
    j.key("run_id").str(r.run_id.as_str());
    j.key("kind").str(r.kind.as_str());
    j.key("state").str(r.state.as_str());
    j.key("config_patch").opt_str(r.config_patch.as_deref());
    j.key("checkpoint").opt_str(r.checkpoint.as_deref());
    j.key("asked_by").str(&r.asked_by);
    j.key("asked_at").str(&r.asked_at);
    j.key("claimed_by").opt_str(r.claimed_by.as_deref());
    j.key("claimed_at").opt_str(r.claimed_at.as_deref());
    j.key("settled_at").opt_str(r.settled_at.as_deref());
    j.key("message").opt_str(r.message.as_deref());
    j.key("result_run").opt_str(r.result_run.as_deref());
    j.key("sweep").opt_str(r.sweep.as_deref());
    j.end_object();
}

/// Any other path.
pub(crate) async fn fallback() -> Result<HttpResponse, ApiError> {
    Err(not_found())
}
