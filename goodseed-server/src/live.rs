//! Live updates as Server-Sent Events: `GET /api/events?run=<project>/<run_id>` follows
//! runs (their points and status), `?project=<name>` follows a whole project (its runs
//! appearing, changing status and going away); both repeat and mix, at least one is
//! needed.
//!
//! Each connection has a poller on the blocking pool that looks every [`POLL`] and sends
//! what changed since its last look:
//!
//! - `event: metrics`, `data: {"project", "run_id", "path", "points": [{"step", "value",
//!   "logged_at"}]}`: points of a followed run committed after the newest step the client
//!   has had (the first look sends nothing: the client loads history through the metrics
//!   endpoint);
//! - `event: run`, `data:` the run exactly as `GET /api/runs` lists it (`project`,
//!   `run_id`, `experiment_name`, …, `status`, `state`, `tags`): a run appeared in a
//!   followed project;
//! - `event: status`, `data: {"project", "run_id", "status", "state", "trashed"}`: the
//!   stored status, the derived state (`crashed` for a dead writer) or the trash flag of a
//!   followed run, or of any run of a followed project, changed; a run followed with
//!   `run=` gets one at the start;
//! - `event: removed`, `data: {"project", "run_id"}`: the run's file is gone (deleted);
//! - `event: ping`, `data: {}`: every [`PING`], so proxies and the client know the
//!   stream is alive.
//!
//! Points rewritten at a step the client already had are not sent again (the metrics
//! endpoint has them). The stream ends when the client goes away.
//!
//! Runs, status and removals come from the catalog's listing, which is shared: one
//! [`Feed`] per catalog lists every run at most once per [`LISTING_POLL`] while any
//! connection is open, whatever the number of connections, and keeps each project's part
//! of the listing as one `Arc` that is replaced only when a run of the project appeared,
//! went away or changed status. An idle connection therefore costs a mutex and a pointer
//! comparison per project per look; only a change costs a comparison of the project's
//! runs, per connection. The listing a project is compared against at first is taken
//! before the answer's head is sent, so a client that loads `GET /api/runs` once the
//! stream is open misses no run (one created in between may come both ways: `run` is an
//! insert-or-replace).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use goodseed_core::time::UtcMicros;
use goodseed_core::{ProjectName, RunId};
use goodseed_store::{RunStore, RunSummary};

use crate::body::ChunkStream;
use crate::encode::run_json;
use crate::error::ApiError;
use crate::json::Json;
use crate::params::run_spec;
use crate::query::Query;
use crate::state::AppState;

/// How often a connection looks for changes: the bound on commit-to-client latency.
pub(crate) const POLL: Duration = Duration::from_millis(100);
/// How often the shared listing is refreshed: with [`POLL`], the bound on the latency of
/// `run`, `status` and `removed`.
pub(crate) const LISTING_POLL: Duration = Duration::from_millis(500);
/// How often an idle stream says it is alive.
pub(crate) const PING: Duration = Duration::from_secs(15);
/// The most runs one connection may follow.
const MAX_RUNS: usize = 64;
/// The most projects one connection may follow.
const MAX_PROJECTS: usize = 64;
/// The most points sent in one event (the rest follow in the next ones).
const MAX_POINTS_PER_EVENT: usize = 10_000;

/// One followed run's points and what the client has had of them.
struct Followed {
    project: ProjectName,
    run: RunId,
    /// Newest step sent, per metric path.
    last_step: HashMap<String, f64>,
}

/// One project's part of the shared listing.
#[derive(Default)]
struct ProjectRuns {
    /// Readable runs, newest first.
    runs: Vec<Arc<RunSummary>>,
    /// File stems of runs that could not be read this time: still there, not removed.
    unreadable: HashSet<String>,
}

impl ProjectRuns {
    /// Whether the events would be the same: the same runs with the same status.
    fn same(&self, other: &ProjectRuns) -> bool {
        self.unreadable == other.unreadable
            && self.runs.len() == other.runs.len()
            && self
                .runs
                .iter()
                .zip(&other.runs)
                .all(|(a, b)| a.id == b.id && a.run_id == b.run_id && shown(a) == shown(b))
    }
}

/// The (stored status, derived state, trashed) of a run: what `status` reports.
type Shown = (String, String, bool);

fn shown(r: &RunSummary) -> Shown {
    (
        r.meta.status().unwrap_or("unknown").to_owned(),
        r.status.as_str().to_owned(),
        r.meta.trashed(),
    )
}

/// The catalog's listing, shared by every connection over that catalog and refreshed
/// when one of them looks and it is older than [`LISTING_POLL`].
struct Feed {
    catalog: Arc<dyn RunStore>,
    state: Mutex<FeedState>,
}

struct FeedState {
    /// When the listing was last asked for (`None`: never).
    fetched: Option<Instant>,
    /// Each project's runs; an `Arc` is kept while its runs and their status are.
    projects: HashMap<String, Arc<ProjectRuns>>,
    /// What a project without runs shows (one `Arc`, so it compares unchanged).
    empty: Arc<ProjectRuns>,
}

/// The feeds of the catalogs with open streams (one per catalog; a feed goes when its
/// last stream ends).
static FEEDS: Mutex<Vec<Weak<Feed>>> = Mutex::new(Vec::new());

impl Feed {
    /// The feed of `catalog`, shared with every other stream over it.
    fn of(catalog: &Arc<dyn RunStore>) -> Arc<Feed> {
        let mut feeds = FEEDS.lock().unwrap_or_else(PoisonError::into_inner);
        feeds.retain(|f| f.strong_count() > 0);
        // A live feed holds its catalog, so an equal pointer is the same catalog.
        if let Some(feed) =
            feeds.iter().filter_map(Weak::upgrade).find(|f| Arc::ptr_eq(&f.catalog, catalog))
        {
            return feed;
        }
        let feed = Arc::new(Feed {
            catalog: Arc::clone(catalog),
            state: Mutex::new(FeedState {
                fetched: None,
                projects: HashMap::new(),
                empty: Arc::default(),
            }),
        });
        feeds.push(Arc::downgrade(&feed));
        feed
    }

    /// The project's runs as of at most [`LISTING_POLL`] ago.
    fn project(&self, name: &ProjectName) -> Arc<ProjectRuns> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.fetched.is_none_or(|t| t.elapsed() >= LISTING_POLL) {
            // Others following wait for this listing rather than make their own.
            state.refresh(&*self.catalog);
            state.fetched = Some(Instant::now());
        }
        let runs = state.projects.get(name.as_str()).unwrap_or(&state.empty);
        Arc::clone(runs)
    }
}

impl FeedState {
    /// Lists every run (one walk of the directory, summaries from the catalog's cache)
    /// and keeps the `Arc` of each project whose runs did not change. A listing that
    /// fails keeps the last one.
    fn refresh(&mut self, catalog: &dyn RunStore) {
        let Ok(listing) = catalog.list_runs(None) else { return };
        let mut now: HashMap<String, ProjectRuns> = HashMap::new();
        for r in listing.runs {
            now.entry(r.project.clone()).or_default().runs.push(r);
        }
        for u in listing.unreadable {
            now.entry(u.project).or_default().unreadable.insert(u.id);
        }
        let mut before = std::mem::take(&mut self.projects);
        self.projects = now
            .into_iter()
            .map(|(name, runs)| {
                let kept = before.remove(&name).filter(|b| b.same(&runs));
                let runs = kept.unwrap_or_else(|| Arc::new(runs));
                (name, runs)
            })
            .collect();
    }
}

/// A project whose runs' presence and status the client follows: the whole project
/// (`project=`), or only the runs followed with `run=`.
struct Watched {
    project: ProjectName,
    /// Every run of the project is followed (`project=`).
    whole: bool,
    /// File stems of the runs followed with `run=`.
    direct: HashSet<String>,
    /// The listing last compared against (`None`: not yet).
    last: Option<Arc<ProjectRuns>>,
    /// The runs the client knows, by file stem.
    known: HashMap<String, Known>,
}

/// A run the client knows of.
struct Known {
    /// The id its events carry.
    run_id: String,
    /// What the last `status` (or `run`) said; `None` before the first.
    shown: Option<Shown>,
}

impl Watched {
    fn new(project: ProjectName, whole: bool) -> Watched {
        Watched { project, whole, direct: HashSet::new(), last: None, known: HashMap::new() }
    }

    /// The id events about `r` carry: the one the client followed it by, else its own.
    fn id<'a>(&self, r: &'a RunSummary) -> &'a str {
        if self.direct.contains(&r.id) { &r.id } else { &r.run_id }
    }

    /// Takes the runs the client will load through the listing as known (for a whole
    /// project): they are not announced. Runs followed with `run=` still get a status.
    fn baseline(&mut self, runs: &ProjectRuns) {
        if !self.whole {
            return;
        }
        for r in &runs.runs {
            let shown = (!self.direct.contains(&r.id)).then(|| shown(r));
            self.known.insert(r.id.clone(), Known { run_id: self.id(r).to_owned(), shown });
        }
    }

    /// What changed since the last look, as `(event, data)` pairs.
    fn changes(&mut self, feed: &Feed) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let now = feed.project(&self.project);
        if self.last.as_ref().is_some_and(|last| Arc::ptr_eq(last, &now)) {
            return out;
        }
        // Oldest first, so a table that puts each new row on top ends newest first.
        for r in now.runs.iter().rev() {
            let direct = self.direct.contains(&r.id);
            if !self.whole && !direct {
                continue;
            }
            let id = self.id(r).to_owned();
            let shown = shown(r);
            match self.known.get_mut(&r.id) {
                Some(known) if known.shown.as_ref() == Some(&shown) => {}
                Some(known) => {
                    out.push(("status", status_json(&self.project, &known.run_id, &shown)));
                    known.shown = Some(shown);
                }
                None => {
                    if self.whole {
                        let mut j = Json::with_capacity(512);
                        run_json(&mut j, r);
                        out.push(("run", j.finish()));
                    }
                    if direct {
                        out.push(("status", status_json(&self.project, &id, &shown)));
                    }
                    self.known.insert(r.id.clone(), Known { run_id: id, shown: Some(shown) });
                }
            }
        }
        let present: HashSet<&str> = now.runs.iter().map(|r| r.id.as_str()).collect();
        let mut gone: Vec<String> = self
            .known
            .keys()
            .filter(|stem| !present.contains(stem.as_str()) && !now.unreadable.contains(*stem))
            .cloned()
            .collect();
        gone.sort();
        for stem in gone {
            if let Some(known) = self.known.remove(&stem) {
                let mut j = Json::default();
                j.begin_object()
                    .key("project")
                    .str(self.project.as_str())
                    .key("run_id")
                    .str(&known.run_id)
                    .end_object();
                out.push(("removed", j.finish()));
            }
        }
        self.last = Some(now);
        out
    }
}

/// The data of `event: status`.
fn status_json(project: &ProjectName, run_id: &str, (status, state, trashed): &Shown) -> String {
    let mut j = Json::default();
    j.begin_object()
        .key("project")
        .str(project.as_str())
        .key("run_id")
        .str(run_id)
        .key("status")
        .str(status)
        .key("state")
        .str(state)
        .key("trashed")
        .bool(*trashed)
        .end_object();
    j.finish()
}

/// `GET /api/events`
pub(crate) async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(req.query_string());
    let mut runs: Vec<Followed> = Vec::new();
    for spec in query.all("run") {
        let goodseed_core::RunRef { project, run_id: run } = run_spec(spec)?;
        if !runs.iter().any(|f| f.project == project && f.run == run) {
            runs.push(Followed { project, run, last_step: HashMap::new() });
        }
    }
    let mut projects: Vec<ProjectName> = Vec::new();
    for name in query.all("project") {
        let project =
            ProjectName::parse(name).map_err(|e| ApiError::bad_request(format!("project: {e}")))?;
        if !projects.contains(&project) {
            projects.push(project);
        }
    }
    if runs.is_empty() && projects.is_empty() {
        return Err(ApiError::bad_request(
            "name at least one run or project to follow: ?run=<project>/<run_id> or \
             ?project=<project>",
        ));
    }
    if runs.len() > MAX_RUNS {
        return Err(ApiError::bad_request(format!("at most {MAX_RUNS} runs per stream")));
    }
    if projects.len() > MAX_PROJECTS {
        return Err(ApiError::bad_request(format!("at most {MAX_PROJECTS} projects per stream")));
    }
    // One watch per project: the whole ones, then those of runs followed alone.
    let mut watched: Vec<Watched> = projects.into_iter().map(|p| Watched::new(p, true)).collect();
    for f in &runs {
        let i = match watched.iter().position(|w| w.project == f.project) {
            Some(i) => i,
            None => {
                watched.push(Watched::new(f.project.clone(), false));
                watched.len() - 1
            }
        };
        watched[i].direct.insert(f.run.as_str().to_owned());
    }

    let catalog = Arc::clone(&state.store);
    let feed = Feed::of(&catalog);
    // Check the runs exist before the stream starts, so a typo is a 404, not silence;
    // and take the listing new runs are told apart from before the head is sent.
    let first = runs.iter().map(|f| (f.project.clone(), f.run.clone())).collect::<Vec<_>>();
    let setup = Arc::clone(&feed);
    let watched = web::block(move || {
        for (project, run) in &first {
            setup.catalog.open_run(project, run).map_err(|_| {
                ApiError::new(StatusCode::NOT_FOUND, format!("Run not found: {project}/{run}"))
            })?;
        }
        for w in &mut watched {
            w.baseline(&setup.project(&w.project));
        }
        Ok::<_, ApiError>(watched)
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "worker stopped"))??;

    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    actix_web::rt::task::spawn_blocking(move || poll(&feed, runs, watched, &tx));
    let mut response = HttpResponse::Ok().streaming(ChunkStream::new(rx));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// The connection's poller: looks, sends, sleeps, until the client goes away.
fn poll(
    feed: &Feed,
    mut runs: Vec<Followed>,
    mut watched: Vec<Watched>,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
) {
    let send = |event: &str, data: String| {
        tx.blocking_send(Bytes::from(format!("event: {event}\ndata: {data}\n\n"))).is_ok()
    };
    // A first comment opens the stream at once for the client.
    if tx.blocking_send(Bytes::from_static(b": goodseed live updates\n\n")).is_err() {
        return;
    }
    let mut first = true;
    let mut last_ping = Instant::now();
    loop {
        for followed in &mut runs {
            for (event, data) in changes(&*feed.catalog, followed, first) {
                if !send(event, data) {
                    return;
                }
            }
        }
        first = false;
        // After the points: a run's last points come before its `finished`.
        for w in &mut watched {
            for (event, data) in w.changes(feed) {
                if !send(event, data) {
                    return;
                }
            }
        }
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

/// The points committed to one run since the client's last look, as `(event, data)`
/// pairs. The first look records where the points start.
fn changes(catalog: &dyn RunStore, f: &mut Followed, first: bool) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let Ok(reader) = catalog.open_run(&f.project, &f.run) else {
        return out;
    };
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
