//! Live updates as Server-Sent Events: `GET /api/events?run=<project>/<run_id>` (the
//! parameter repeats, one per run followed).
//!
//! Each connection has a poller on the blocking pool that looks at its runs every
//! [`POLL`] and sends what changed since its last look:
//!
//! - `event: metrics`, `data: {"project", "run_id", "path", "points": [{"step", "value",
//!   "logged_at"}]}`: points committed after the newest step the client has had (the
//!   first look sends nothing: the client loads history through the metrics endpoint);
//! - `event: status`, `data: {"project", "run_id", "status", "state"}`: the stored status
//!   or the derived state changed (a run finished, failed, or its writer died);
//! - `event: ping`, `data: {}`: every [`PING`], so proxies and the client know the
//!   stream is alive.
//!
//! Points rewritten at a step the client already had are not sent again (the metrics
//! endpoint has them). The stream ends when the client goes away.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use goodseed_core::time::UtcMicros;
use goodseed_core::{ProjectName, RunId};
use goodseed_store::Catalog;

use crate::api::{ApiError, AppState, ChunkStream, run_spec};
use crate::json::Json;
use crate::query::Query;

/// How often a connection looks for changes: the bound on commit-to-client latency.
pub(crate) const POLL: Duration = Duration::from_millis(100);
/// How often an idle stream says it is alive.
pub(crate) const PING: Duration = Duration::from_secs(15);
/// The most runs one connection may follow.
const MAX_RUNS: usize = 64;
/// The most points sent in one event (the rest follow in the next ones).
const MAX_POINTS_PER_EVENT: usize = 10_000;

/// One followed run and what the client has had of it.
struct Followed {
    project: ProjectName,
    run: RunId,
    /// Newest step sent, per metric path.
    last_step: HashMap<String, f64>,
    /// (stored status, derived state) last sent.
    status: Option<(String, String)>,
}

/// `GET /api/events`
pub(crate) async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(req.query_string());
    let mut runs = Vec::new();
    for spec in query.all("run") {
        let (project, run) = run_spec(spec)?;
        runs.push(Followed { project, run, last_step: HashMap::new(), status: None });
    }
    if runs.is_empty() {
        return Err(ApiError::bad_request(
            "name at least one run to follow: ?run=<project>/<run_id>",
        ));
    }
    if runs.len() > MAX_RUNS {
        return Err(ApiError::bad_request(format!("at most {MAX_RUNS} runs per stream")));
    }
    let catalog = Arc::clone(&state.catalog);
    // Check the runs exist before the stream starts, so a typo is a 404, not silence.
    let first = runs.iter().map(|f| (f.project.clone(), f.run.clone())).collect::<Vec<_>>();
    let check = Arc::clone(&catalog);
    web::block(move || {
        for (project, run) in &first {
            check.open_run(project, run).map_err(|_| {
                ApiError::new(
                    actix_web::http::StatusCode::NOT_FOUND,
                    format!("Run not found: {project}/{run}"),
                )
            })?;
        }
        Ok::<(), ApiError>(())
    })
    .await
    .map_err(|_| {
        ApiError::new(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR, "worker stopped")
    })??;

    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    actix_web::rt::task::spawn_blocking(move || poll(&*catalog, runs, &tx));
    let mut response = HttpResponse::Ok().streaming(ChunkStream::new(rx));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// The connection's poller: looks, sends, sleeps, until the client goes away.
fn poll(catalog: &dyn Catalog, mut runs: Vec<Followed>, tx: &tokio::sync::mpsc::Sender<Bytes>) {
    let send = |event: &str, data: String| {
        tx.blocking_send(Bytes::from(format!("event: {event}\ndata: {data}\n\n"))).is_ok()
    };
    // A first comment opens the stream at once for the client.
    if tx.blocking_send(Bytes::from_static(b": goodseed live updates\n\n")).is_err() {
        return;
    }
    let mut first = true;
    let mut last_ping = Instant::now();
    let mut ticks: u64 = 0;
    loop {
        // Status needs a look at the project's directory: once a second is plenty.
        let with_status = ticks.is_multiple_of(10);
        ticks += 1;
        for followed in &mut runs {
            for (event, data) in changes(catalog, followed, first, with_status) {
                if !send(event, data) {
                    return;
                }
            }
        }
        first = false;
        if last_ping.elapsed() >= PING {
            if !send("ping", "{}".to_owned()) {
                return;
            }
            last_ping = Instant::now();
        }
        if tx.is_closed() {
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// What changed in one run since the client's last look, as `(event, data)` pairs. The
/// first look sends the status and records where the points start.
fn changes(
    catalog: &dyn Catalog,
    f: &mut Followed,
    first: bool,
    with_status: bool,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let Ok(reader) = catalog.open_run(&f.project, &f.run) else {
        return out;
    };
    // Status: stored in the file; `crashed` derived by the catalog.
    if with_status
        && let Ok(listing) = catalog.list_runs(Some(&f.project))
        && let Some(summary) = listing.runs.iter().find(|r| r.file_stem == f.run.as_str())
    {
        let now = (
            summary.meta.status().unwrap_or("unknown").to_owned(),
            summary.status.as_str().to_owned(),
        );
        if f.status.as_ref() != Some(&now) {
            let mut j = Json::default();
            j.begin_object()
                .key("project")
                .str(f.project.as_str())
                .key("run_id")
                .str(f.run.as_str())
                .key("status")
                .str(&now.0)
                .key("state")
                .str(&now.1)
                .end_object();
            out.push(("status", j.finish()));
            f.status = Some(now);
        }
    }
    let Ok(paths) = reader.metric_paths() else {
        return out;
    };
    for path in paths {
        let after = f.last_step.get(&path).copied();
        if first {
            // Start from the newest step: history comes from the metrics endpoint.
            if let Ok(Some(p)) = reader.last_metric_point(&path) {
                f.last_step.insert(path, p.step);
            }
            continue;
        }
        let mut j = Json::default();
        j.begin_object()
            .key("project")
            .str(f.project.as_str())
            .key("run_id")
            .str(f.run.as_str())
            .key("path")
            .str(&path)
            .key("points")
            .begin_array();
        let mut n = 0;
        let mut newest = after;
        let _ = reader.visit_metrics_after(&path, after, &mut |p| {
            j.begin_object().key("step").f64(p.step).key("value").f64(p.value);
            j.key("logged_at").str(&UtcMicros::from_unix_seconds(p.ts).to_iso8601());
            j.end_object();
            newest = Some(p.step);
            n += 1;
            n < MAX_POINTS_PER_EVENT
        });
        j.end_array().end_object();
        if n > 0 {
            out.push(("metrics", j.finish()));
            if let Some(step) = newest {
                f.last_step.insert(path, step);
            }
        }
    }
    out
}
