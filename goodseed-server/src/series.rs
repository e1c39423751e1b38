//! Ours, for charts: one metric as columns instead of an array of point objects.
//!
//! - `GET /api/runs/<project>/<run>/series?path=P[&pointCount=N][&firstPointIndex=&lastPointIndex=]`
//!   (routed through `api::run_get`, so identifiers, 404s and the closed-run cache are
//!   the metrics endpoint's): `{"path", "steps", "values", "minY", "maxY", "ts", "downsampled",
//!   "firstPointIndex", "lastPointIndex", "totalCount"}`. With `pointCount` the columns
//!   are the downsampled points of `.../metrics`; without it every point of the window
//!   (`minY` = `maxY` = the value), streamed.
//! - `GET /api/compare?path=P&run=<project>/<run_id>&...&pointCount=N`: the same
//!   downsampled columns for up to [`MAX_RUNS`] runs in one answer; a run that cannot be
//!   read gets `{"project", "run_id", "error"}` in its place.

use std::sync::Arc;

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use goodseed_core::downsample::{Sampled, SampledPoint, Window};
use goodseed_store::RunReader;

use crate::body::{CHUNK, blocking, cached, stream};
use crate::cache::{Key, ResponseCache};
use crate::encode::{step, window_fields};
use crate::error::{ApiError, store_error};
use crate::json::Json;
use crate::params::{index_window, point_count, run_spec};
use crate::query::Query;
use crate::routes::{RunRoute, RunView};
use crate::state::AppState;

/// The most runs one compare request may name.
pub(crate) const MAX_RUNS: usize = 32;

/// `pointCount`, checked as the metrics endpoint checks it.
/// Writes the four columns of downsampled points (steps as `.../metrics` writes them).
/// `flush` is offered the text after each value (to stream it); false when the client
/// went away, and then so is the answer.
fn sampled_columns(
    j: &mut Json,
    sampled: &Sampled,
    integer_steps: bool,
    flush: &mut dyn FnMut(&mut Json) -> bool,
) -> bool {
    j.key("steps").begin_array();
    for p in &sampled.points {
        if p.downsampled {
            j.f64(p.step);
        } else {
            step(j, p.step, integer_steps);
        }
        if !flush(j) {
            return false;
        }
    }
    j.end_array();
    type Pick = fn(&SampledPoint) -> f64;
    let picks: [(&str, Pick); 3] =
        [("values", |p| p.value), ("minY", |p| p.min), ("maxY", |p| p.max)];
    for (name, pick) in picks {
        j.key(name).begin_array();
        for p in &sampled.points {
            j.f64(pick(p));
            if !flush(j) {
                return false;
            }
        }
        j.end_array();
    }
    j.key("ts").begin_array();
    for p in &sampled.points {
        j.i64(p.ts);
        if !flush(j) {
            return false;
        }
    }
    j.end_array();
    j.key("downsampled").bool(sampled.downsampled);
    true
}

/// What a producer answers when its client went away: an error, so [`stream`] does not
/// cache the cut body.
fn gone() -> ApiError {
    ApiError::new(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR, "the client went away")
}

/// `GET /api/runs/<project>/<run>/series`, after `run_get` opened the run and missed
/// the cache.
pub(crate) async fn series(
    route: RunRoute<RunView>,
    reader: Arc<dyn RunReader>,
    query: &Query,
    cache: Arc<ResponseCache>,
    key: Option<Key>,
) -> Result<HttpResponse, ApiError> {
    let Some(path) = query.get("path").map(str::to_owned) else {
        return Err(ApiError::bad_request("series requires a path parameter"));
    };
    let count = query.get("pointCount").map(point_count).transpose()?;
    let (first, last) = index_window(query)?;
    if let Some(count) = count {
        let j = blocking(move || {
            let integer = reader.integer_steps().map_err(|e| route.err(e))?;
            let (window, sampled) =
                reader.downsample_metric(&path, first, last, count).map_err(|e| route.err(e))?;
            let mut j = Json::with_capacity(256 + sampled.points.len() * 96);
            j.begin_object().key("path").str(&path);
            sampled_columns(&mut j, &sampled, integer, &mut |_| true);
            window_fields(&mut j, &window);
            j.end_object();
            Ok(j)
        })
        .await?;
        return Ok(cached(&cache, key, j));
    }
    // Every point of the window. The columns need the points five times over, so the
    // window's points are read once into (step, value, ts), 24 bytes a point (a fifth
    // of the JSON), and the JSON is streamed from them.
    let body = stream(cache, key, move |send| {
        let integer = reader.integer_steps().map_err(|e| route.err(e))?;
        let wanted = |i: i64| i >= first.unwrap_or(0) && last.is_none_or(|last| i <= last);
        let mut points: Vec<(f64, f64, i64)> = Vec::new();
        let mut total: u64 = 0;
        reader
            .visit_metrics(Some(&path), &mut |_, point| {
                if wanted(i64::try_from(total).unwrap_or(i64::MAX)) {
                    points.push((point.step, point.value, point.ts));
                }
                total += 1;
                true
            })
            .map_err(|e| route.err(e))?;
        // The same clamping as the downsampled answer; the points kept are its rows.
        let window = Window::new(total, first, last);
        debug_assert_eq!(window.row_count(), points.len() as u64);
        let mut j = Json::with_capacity(CHUNK + 256);
        j.begin_object().key("path").str(&path);
        for name in ["steps", "values", "minY", "maxY", "ts"] {
            j.key(name).begin_array();
            for &(s, v, ts) in &points {
                match name {
                    "steps" => step(&mut j, s, integer),
                    "ts" => {
                        j.i64(ts);
                    }
                    _ => {
                        j.f64(v);
                    }
                }
                if j.len() >= CHUNK && !send(j.take_chunk()) {
                    return Err(gone());
                }
            }
            j.end_array();
        }
        j.key("downsampled").bool(false);
        window_fields(&mut j, &window);
        j.end_object();
        send(j.take_chunk());
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Ok().content_type(ContentType::json()).streaming(body))
}

/// `GET /api/compare`
pub(crate) async fn compare(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(req.query_string());
    let Some(path) = query.get("path").map(str::to_owned) else {
        return Err(ApiError::bad_request("compare requires a path parameter"));
    };
    let count = query
        .get("pointCount")
        .ok_or_else(|| ApiError::bad_request("compare requires a pointCount parameter"))?;
    let count = point_count(count)?;
    let mut runs = Vec::new();
    for spec in query.all("run") {
        runs.push(run_spec(spec)?);
    }
    if runs.is_empty() {
        return Err(ApiError::bad_request(
            "name at least one run to compare: ?run=<project>/<run_id>",
        ));
    }
    if runs.len() > MAX_RUNS {
        return Err(ApiError::bad_request(format!("at most {MAX_RUNS} runs per comparison")));
    }
    let store = Arc::clone(&state.store);
    // Streamed: 32 runs of a million points each never sit in memory as one string.
    let body = stream(Arc::clone(&state.cache), None, move |send| {
        let mut j = Json::with_capacity(CHUNK + 256);
        j.begin_object().key("path").str(&path).key("runs").begin_array();
        let mut flush = |j: &mut Json| j.len() < CHUNK || send(j.take_chunk());
        for goodseed_core::RunRef { project, run_id: run } in &runs {
            j.begin_object().key("project").str(project.as_str()).key("run_id").str(run.as_str());
            let read = store.open_run(project, run).and_then(|reader| {
                let integer = reader.integer_steps()?;
                let (window, sampled) = reader.downsample_metric(&path, None, None, count)?;
                Ok((integer, window, sampled))
            });
            match read {
                Ok((integer, window, sampled)) => {
                    if !sampled_columns(&mut j, &sampled, integer, &mut flush) {
                        return Err(gone());
                    }
                    // The window, as .../series says it: a zoom maps through it.
                    window_fields(&mut j, &window);
                }
                Err(e) => {
                    let e = store_error(project.as_str(), run.as_str(), e);
                    j.key("error").str(&e.message);
                }
            }
            j.end_object();
        }
        j.end_array().end_object();
        send(j.take_chunk());
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Ok().content_type(ContentType::json()).streaming(body))
}
