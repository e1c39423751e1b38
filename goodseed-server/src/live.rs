//! Live updates as Server-Sent Events: `GET /api/events?run=<project>/<run_id>` follows
//! runs (their points and status), `?project=<name>` follows a whole project (its runs
//! appearing, changing status and going away); both repeat and mix, at least one is
//! needed.
//!
//! Each connection is sent what changed since it opened:
//!
//! - `event: metrics`, `data: {"project", "run_id", "path", "points": [{"step", "value",
//!   "logged_at"}]}`: points of a followed run committed after it was first looked at
//!   (history comes through the metrics endpoint);
//! - `event: run`, `data:` the run exactly as `GET /api/runs` lists it (`project`,
//!   `run_id`, `experiment_name`, …, `status`, `state`, `tags`): a run appeared in a
//!   followed project, or its name, tags, description or note were edited;
//! - `event: status`, `data: {"project", "run_id", "status", "state", "trashed", "ended_by"}`: the
//!   stored status, the derived state (`crashed` for a dead writer) or the trash flag of a
//!   followed run, or of any run of a followed project, changed; a run followed with
//!   `run=` gets one at the start;
//! - `event: removed`, `data: {"project", "run_id"}`: the run is gone (deleted);
//! - `event: request`, `data:` the request as `GET /api/requests` lists it: a request
//!   of interactive control of a followed project was asked or changed state (claimed,
//!   done, failed), by this server or by an agent elsewhere (read with the listing);
//! - `event: ping`, `data: {}`: every [`PING`], so proxies and the client know the
//!   stream is alive.
//!
//! Points rewritten at a step already sent are not sent again (the metrics endpoint has
//! them).
//!
//! One [`LiveHub`] per server feeds every connection from one thread: every [`POLL`] (or,
//! over PostgreSQL, when the database tells that a run changed: see [`run_hub`]) it
//! reads each followed run once, whatever the number of connections following it, and
//! hands the same event bytes to each; every [`LISTING_POLL`] (while a project is
//! followed) it lists the runs once, keeping each project's part of the listing as one
//! `Arc`, replaced only when a run of the project appeared, went away or changed status.
//! An idle connection therefore costs a pointer comparison per followed project per
//! look, and no thread: 1,000 open streams cost about what 10 do. Streams never hold a
//! thread of the blocking pool, so data requests cannot be starved by them. A
//! connection whose client went away is dropped at the next look (its body's receiver is
//! gone); one whose client reads too slowly to keep [`QUEUED_EVENTS`] in hand is closed
//! (it reconnects and reloads). The streams open at once are bounded, per client address
//! and in all ([`StreamLimits`]): one more is refused with 429 or 503.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use goodseed_core::time::UtcMicros;
use goodseed_core::{ProjectName, RunRef};
use goodseed_store::changes::{ChangeFeed, Changes};
use goodseed_store::requests::{Request, RequestState, RequestStore};
use goodseed_store::{RunStore, RunSummary};
use tokio::sync::mpsc::error::TrySendError;

use crate::body::ChunkStream;
use crate::encode::run_json;
use crate::error::{ApiError, store_error};
use crate::json::Json;
use crate::params::run_spec;
use crate::query::Query;
use crate::state::AppState;

/// How often the hub looks for changes: the bound on commit-to-client latency.
pub(crate) const POLL: Duration = Duration::from_millis(100);
/// How often the shared listing is refreshed: with [`POLL`], the bound on the latency of
/// `run`, `status` and `removed`.
pub(crate) const LISTING_POLL: Duration = Duration::from_millis(500);
/// Over a store that tells its changes: the shortest time between two looks.
const FEED_MIN_GAP: Duration = Duration::from_millis(20);
/// Over a store that tells its changes: the longest time without a look at everything.
const FEED_FALLBACK: Duration = Duration::from_secs(2);
/// How often an idle stream says it is alive.
pub(crate) const PING: Duration = Duration::from_secs(15);
/// The most runs one connection may follow.
const MAX_RUNS: usize = 64;
/// The most projects one connection may follow.
const MAX_PROJECTS: usize = 64;
/// The most points sent in one event (the rest follow in the next ones).
const MAX_POINTS_PER_EVENT: usize = 10_000;
/// Events a connection may have waiting for its client before it is closed as too slow.
pub(crate) const QUEUED_EVENTS: usize = 1024;

/// How many live streams may be open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// In all.
    pub total: usize,
    /// From one client address.
    pub per_client: usize,
}

impl Default for StreamLimits {
    fn default() -> StreamLimits {
        StreamLimits { total: 4096, per_client: 256 }
    }
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
            && self.runs.iter().zip(&other.runs).all(|(a, b)| {
                a.id == b.id
                    && a.run_id == b.run_id
                    && shown(a) == shown(b)
                    && edited(a) == edited(b)
            })
    }
}

/// What people edit about a run (its name, tags, description and note), as a hash: a
/// change sends the run again (`event: run`), so tables and run pages show it at once.
/// Hashed in place (no copy): a listing of 100,000 runs is compared every refresh.
type Edited = u64;

fn edited(r: &RunSummary) -> Edited {
    use std::hash::{Hash, Hasher};
    let text = |key: &str| {
        r.configs.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok().and_then(|i| {
            match &r.configs[i].1 {
                goodseed_core::ConfigValue::Str(s) => Some(s.as_str()),
                _ => None,
            }
        })
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (r.meta.name(), &r.tags, text("sys/description"), text("sys/note")).hash(&mut h);
    h.finish()
}

/// The (stored status, derived state, trashed, how it ended) of a run: what `status`
/// reports.
type Shown = (String, String, bool, Option<String>);

fn shown(r: &RunSummary) -> Shown {
    (
        r.meta.status().unwrap_or("unknown").to_owned(),
        r.status.as_str().to_owned(),
        r.meta.trashed(),
        goodseed_store::lifecycle::ended_by(&r.meta, &r.status),
    )
}

/// The store's listing, shared by every connection, as of its last refresh.
#[derive(Default)]
struct Listing {
    /// When the listing was last asked for (`None`: never).
    fetched: Option<Instant>,
    /// Each project's runs; an `Arc` is kept while its runs and their status are.
    projects: HashMap<String, Arc<ProjectRuns>>,
    /// What a project without runs shows (one `Arc`, so it compares unchanged).
    empty: Arc<ProjectRuns>,
    /// The requests of each followed project; an `Arc` is kept while they are.
    requests: HashMap<String, Arc<Vec<Request>>>,
}

impl Listing {
    /// Lists every run (for files: one walk of the directory, summaries from the store's
    /// cache) and keeps the `Arc` of each project whose runs did not change. A listing
    /// that fails keeps the last one.
    fn refresh(&mut self, store: &dyn RunStore) {
        self.fetched = Some(Instant::now());
        let Ok(listing) = store.list_runs(None) else { return };
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

    /// Reads the requests of the `followed` projects, keeping the `Arc` of each whose
    /// requests did not change. A project that cannot be read keeps its last ones.
    fn refresh_requests(&mut self, requests: &dyn RequestStore, followed: &HashSet<ProjectName>) {
        let mut before = std::mem::take(&mut self.requests);
        for project in followed {
            let old = before.remove(project.as_str());
            let now = match requests.list(project) {
                Ok(now) => match old {
                    Some(old) if *old == now => old,
                    _ => Arc::new(now),
                },
                Err(_) => match old {
                    Some(old) => old,
                    None => continue,
                },
            };
            self.requests.insert(project.as_str().to_owned(), now);
        }
    }

    fn project_requests(&self, name: &ProjectName) -> Option<Arc<Vec<Request>>> {
        self.requests.get(name.as_str()).cloned()
    }

    fn stale(&self) -> bool {
        self.fetched.is_none_or(|t| t.elapsed() >= LISTING_POLL)
    }

    fn project(&self, name: &ProjectName) -> Arc<ProjectRuns> {
        Arc::clone(self.projects.get(name.as_str()).unwrap_or(&self.empty))
    }
}

/// Where the hub is in one followed run: the newest step it has sent, per metric path.
#[derive(Debug, Default)]
struct RunFeed {
    /// `None` before the first look, which only records where the points are.
    last_step: Option<Position>,
}

/// Where a followed run's events stand: the last step sent of each metric, and the
/// newest artifact record seen.
#[derive(Debug, Clone, Default)]
struct Position {
    steps: HashMap<String, f64>,
    artifact: i64,
}

/// One open stream: Server-Sent Events, or a WebSocket (`ws.rs`).
pub(crate) struct Connection {
    /// Its number, for a WebSocket to change what it follows.
    pub(crate) id: u64,
    /// Frames events as WebSocket messages rather than Server-Sent Events.
    pub(crate) ws: bool,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    client: IpAddr,
    /// The runs followed with `run=`.
    runs: Vec<RunRef>,
    /// One watch per project: the whole ones, then those of runs followed alone.
    watched: Vec<Watched>,
    last_sent: Instant,
}

impl Connection {
    /// Queues an event; false when the connection must go (its client left, or reads
    /// too slowly to keep up).
    fn send(&mut self, event: &Event) -> bool {
        let chunk = if self.ws { event.ws.clone() } else { event.sse.clone() };
        match self.tx.try_send(chunk) {
            Ok(()) => {
                self.last_sent = Instant::now();
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => false,
        }
    }
}

/// One event, framed both ways once, whatever the number of connections it goes to.
#[derive(Clone)]
pub(crate) struct Event {
    /// `event: <name>` and `data: <json>`.
    sse: Bytes,
    /// `{"type": <name>, "data": <json>}`, in the training-dashboard protocol's names.
    ws: Bytes,
}

/// An event of `name` carrying the JSON `data`.
pub(crate) fn event(name: &str, data: &str) -> Event {
    let ws_name = match name {
        "metrics" => "metric_update",
        "status" => "status_change",
        "run" => "run_created",
        "removed" => "run_removed",
        "request" => "request_update",
        "checkpoint" => "checkpoint_saved",
        other => other,
    };
    Event {
        sse: Bytes::from(format!("event: {name}\ndata: {data}\n\n")),
        ws: Bytes::from(format!("{{\"type\": \"{ws_name}\", \"data\": {data}}}")),
    }
}

/// The live updates of one server: its connections, the runs they follow and the shared
/// listing, fed by one thread while any connection is open.
#[derive(Clone)]
pub(crate) struct LiveHub {
    inner: Arc<Hub>,
}

struct Hub {
    store: Arc<dyn RunStore>,
    /// Where requests of interactive control are kept, when the server keeps them.
    requests: Option<Arc<dyn RequestStore>>,
    /// The store's changes, when it tells them ([`RunStore::watch`]).
    feed: Option<ChangeFeed>,
    limits: StreamLimits,
    state: Mutex<HubState>,
    /// Wakes the thread when the first connection comes.
    wake: Condvar,
    /// The listing, behind its own lock: refreshed without holding the connections.
    listing: Mutex<Listing>,
}

#[derive(Default)]
struct HubState {
    connections: Vec<Connection>,
    runs: HashMap<RunRef, RunFeed>,
    thread: bool,
    next_id: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LiveHub {
    pub(crate) fn new(
        store: Arc<dyn RunStore>,
        requests: Option<Arc<dyn RequestStore>>,
        limits: StreamLimits,
    ) -> LiveHub {
        LiveHub {
            inner: Arc::new(Hub {
                feed: store.watch(),
                store,
                requests,
                limits,
                state: Mutex::new(HubState::default()),
                wake: Condvar::new(),
                listing: Mutex::new(Listing::default()),
            }),
        }
    }

    /// Refuses one more stream from `client` when the limits are reached.
    fn admit(&self, client: IpAddr) -> Result<(), ApiError> {
        self.admit_in(&lock(&self.inner.state), client)
    }

    /// [`LiveHub::admit`] under the caller's lock on the state (so that a check and the
    /// connection it admits are one step: two streams racing for the last place cannot
    /// both get it).
    fn admit_in(&self, state: &HubState, client: IpAddr) -> Result<(), ApiError> {
        let limits = self.inner.limits;
        if state.connections.len() >= limits.total {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{} live streams are open, the most this server keeps; try again later",
                    limits.total
                ),
            ));
        }
        if state.connections.iter().filter(|c| c.client == client).count() >= limits.per_client {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{} live streams are open from your address, the most one client may have; \
                     close some (one stream can follow many runs and projects)",
                    limits.per_client
                ),
            ));
        }
        Ok(())
    }

    /// Takes the baselines of a new connection's watches (on a blocking thread: it may
    /// list the store).
    pub(crate) fn baseline(&self, watched: &mut [Watched]) {
        let mut listing = lock(&self.inner.listing);
        if listing.stale() {
            listing.refresh(&*self.inner.store);
        }
        drop(listing);
        for w in watched {
            w.baseline(&self.inner.listing_project(&w.project));
            // The requests there are now are known: only later changes are sent.
            if let (true, Some(requests)) = (w.whole, &self.inner.requests)
                && let Ok(now) = requests.list(&w.project)
            {
                w.requests = Some(now.iter().map(|r| (r.id, r.state)).collect());
            }
        }
    }

    /// Adds a connection (limits checked again: others may have come meanwhile) and
    /// makes sure the thread runs.
    fn add(&self, mut connection: Connection) -> Result<u64, ApiError> {
        let mut state = lock(&self.inner.state);
        self.admit_in(&state, connection.client)?;
        state.next_id += 1;
        connection.id = state.next_id;
        let id = connection.id;
        for run in &connection.runs {
            state.runs.entry(run.clone()).or_default();
        }
        state.connections.push(connection);
        if !state.thread {
            let hub = Arc::downgrade(&self.inner);
            let spawned = std::thread::Builder::new()
                .name("goodseed-live".to_owned())
                .spawn(move || run_hub(&hub));
            if spawned.is_err() {
                state.connections.pop();
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cannot start the live-update thread; try again later",
                ));
            }
            state.thread = true;
        }
        drop(state);
        self.inner.wake.notify_all();
        // A run followed now is looked at at once (where its points end, its status).
        if let Some(feed) = &self.inner.feed {
            feed.lost();
        }
        Ok(id)
    }

    /// A new connection (admitted against the limits, fed by the hub's thread) that
    /// follows `runs` and the `watched` projects (baselines taken).
    pub(crate) fn connect(
        &self,
        tx: tokio::sync::mpsc::Sender<Bytes>,
        client: IpAddr,
        ws: bool,
        runs: Vec<RunRef>,
        watched: Vec<Watched>,
    ) -> Result<u64, ApiError> {
        self.add(Connection { id: 0, ws, tx, client, runs, watched, last_sent: Instant::now() })
    }

    /// Makes a connection follow one more run or project (a WebSocket's `subscribe`);
    /// a project's baseline is taken here (on a blocking thread).
    pub(crate) fn follow(&self, id: u64, what: Follow) {
        let mut watch = match &what {
            Follow::Project(p) => {
                let mut w = Watched::new(p.clone(), true);
                self.baseline(std::slice::from_mut(&mut w));
                Some(w)
            }
            Follow::Run(_) => None,
        };
        let mut state = lock(&self.inner.state);
        let mut new_run = None;
        if let Some(c) = state.connections.iter_mut().find(|c| c.id == id) {
            match what {
                Follow::Run(run) => {
                    if !c.runs.contains(&run) && c.runs.len() < MAX_RUNS {
                        let i = match c.watched.iter().position(|w| w.project == run.project) {
                            Some(i) => i,
                            None => {
                                c.watched.push(Watched::new(run.project.clone(), false));
                                c.watched.len() - 1
                            }
                        };
                        c.watched[i].direct.insert(run.run_id.as_str().to_owned());
                        c.runs.push(run.clone());
                        new_run = Some(run);
                    }
                }
                Follow::Project(p) => {
                    let whole = c.watched.iter().filter(|w| w.whole).count();
                    if let Some(w) = watch.take()
                        && !c.watched.iter().any(|w| w.whole && w.project == p)
                        && whole < MAX_PROJECTS
                    {
                        c.watched.push(w);
                    }
                }
            }
        }
        if let Some(run) = new_run {
            state.runs.entry(run).or_default();
            drop(state);
            if let Some(feed) = &self.inner.feed {
                feed.lost();
            }
        }
    }

    /// Makes a connection stop following a run or project (a WebSocket's
    /// `unsubscribe`).
    pub(crate) fn unfollow(&self, id: u64, what: &Follow) {
        let mut state = lock(&self.inner.state);
        if let Some(c) = state.connections.iter_mut().find(|c| c.id == id) {
            match what {
                Follow::Run(run) => {
                    c.runs.retain(|r| r != run);
                    for w in &mut c.watched {
                        if w.project == run.project {
                            w.direct.remove(run.run_id.as_str());
                        }
                    }
                    c.watched.retain(|w| w.whole || !w.direct.is_empty());
                }
                Follow::Project(p) => c.watched.retain(|w| !(w.whole && &w.project == p)),
            }
        }
    }

    /// Drops a connection now (its WebSocket closed).
    pub(crate) fn disconnect(&self, id: u64) {
        lock(&self.inner.state).connections.retain(|c| c.id != id);
    }

    /// Refuses one more stream from `client` when the limits are reached, saying when
    /// to try again.
    pub(crate) fn admit_client(&self, client: IpAddr) -> Result<(), ApiError> {
        self.admit(client).map_err(with_retry)
    }
}

/// What a connection follows: one run, or a whole project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Follow {
    Run(RunRef),
    Project(ProjectName),
}

/// Which runs a look reads, and whether it wants the listing.
struct Scope {
    /// `None`: every followed run. A run not looked at yet is read whatever the scope.
    runs: Option<HashSet<RunRef>>,
    /// Whether the listing should be refreshed (when not refreshed within
    /// [`LISTING_POLL`]).
    listing: bool,
}

impl Scope {
    const EVERYTHING: Scope = Scope { runs: None, listing: true };

    fn of(changes: Changes, listing_owed: bool) -> Scope {
        match changes {
            Changes::Everything => Scope::EVERYTHING,
            Changes::Runs(runs) => {
                let listing = listing_owed || !runs.is_empty();
                Scope { runs: Some(runs), listing }
            }
        }
    }
}

/// The hub's thread: looks while connections are open, waits while none is, and ends
/// with the server (when the hub is dropped).
///
/// Over a store that tells its changes ([`RunStore::watch`]: PostgreSQL, whose
/// notifications come from every server sharing the database), a look follows each
/// change, at most one per [`FEED_MIN_GAP`], and reads only the runs that changed; with
/// no change it looks at everything every [`FEED_FALLBACK`] (liveness moves without a
/// change: a writer that stops beating). Otherwise (run files, which other processes
/// write without telling) it looks at everything every [`POLL`].
fn run_hub(hub: &Weak<Hub>) {
    let mut scope = Scope::EVERYTHING;
    loop {
        let Some(hub) = hub.upgrade() else { return };
        {
            let state = lock(&hub.state);
            if state.connections.is_empty() {
                // Wait for a connection, looking now and then whether the server went.
                let (state, _) = hub
                    .wake
                    .wait_timeout(state, Duration::from_secs(1))
                    .unwrap_or_else(PoisonError::into_inner);
                if state.connections.is_empty() {
                    continue;
                }
            }
        }
        let started = Instant::now();
        let owed = hub.look(&scope);
        let feed = hub.feed.clone();
        drop(hub);
        scope = match feed {
            None => {
                let left = POLL.saturating_sub(started.elapsed());
                std::thread::sleep(left.max(Duration::from_millis(10)));
                Scope::EVERYTHING
            }
            Some(feed) => {
                std::thread::sleep(FEED_MIN_GAP.saturating_sub(started.elapsed()));
                let wait = match owed {
                    Some(left) => left.max(Duration::from_millis(10)),
                    None => FEED_FALLBACK,
                };
                match feed.wait(wait) {
                    // Nothing for a while: a look at everything.
                    Changes::Runs(runs) if runs.is_empty() && owed.is_none() => Scope::EVERYTHING,
                    changes => Scope::of(changes, owed.is_some()),
                }
            }
        };
    }
}

impl Hub {
    fn listing_project(&self, name: &ProjectName) -> Arc<ProjectRuns> {
        lock(&self.listing).project(name)
    }

    /// One look: the new points of the followed runs in `scope`, the listing when
    /// wanted and due, then every connection is sent what concerns it. Returns, when the
    /// listing was wanted but refreshed too recently, how long until it may be again.
    fn look(&self, scope: &Scope) -> Option<Duration> {
        // What to read, taken without holding the lock while reading.
        let (runs, projects_followed) = {
            let mut state = lock(&self.state);
            state.connections.retain(|c| !c.tx.is_closed());
            let followed: HashSet<&RunRef> =
                state.connections.iter().flat_map(|c| &c.runs).collect();
            let followed: HashSet<RunRef> = followed.into_iter().cloned().collect();
            state.runs.retain(|run, _| followed.contains(run));
            let runs: Vec<(RunRef, Option<Position>)> = state
                .runs
                .iter()
                .filter(|(r, f)| {
                    f.last_step.is_none() || scope.runs.as_ref().is_none_or(|s| s.contains(*r))
                })
                .map(|(r, f)| (r.clone(), f.last_step.clone()))
                .collect();
            let projects: HashSet<ProjectName> = state
                .connections
                .iter()
                .flat_map(|c| c.watched.iter().filter(|w| w.whole).map(|w| w.project.clone()))
                .collect();
            let any = state.connections.iter().any(|c| !c.watched.is_empty());
            (runs, (any, projects))
        };
        let (projects_followed, whole_projects) = projects_followed;
        let mut points: HashMap<RunRef, Vec<Event>> = HashMap::new();
        let mut positions = Vec::with_capacity(runs.len());
        for (run, last) in runs {
            let (events, last) = self.new_points(&run, last);
            positions.push((run.clone(), last));
            if !events.is_empty() {
                points.insert(run, events);
            }
        }
        let mut owed = None;
        if projects_followed && scope.listing {
            let mut listing = lock(&self.listing);
            if listing.stale() {
                listing.refresh(&*self.store);
                if let Some(requests) = &self.requests {
                    listing.refresh_requests(&**requests, &whole_projects);
                }
            } else {
                owed = listing.fetched.map(|t| LISTING_POLL.saturating_sub(t.elapsed()));
            }
        }
        let listing = lock(&self.listing);
        let mut state = lock(&self.state);
        for (run, last) in positions {
            if let Some(feed) = state.runs.get_mut(&run) {
                feed.last_step = last;
            }
        }
        state.connections.retain_mut(|c| deliver(c, &points, &listing));
        owed
    }

    /// The points of one run committed after `last` (per path), and the checkpoints
    /// registered since, as events, and where the run is now. The first look (`last` is
    /// `None`) only records where the points and records end; a run that cannot be read
    /// now is looked at again next time.
    fn new_points(&self, run: &RunRef, last: Option<Position>) -> (Vec<Event>, Option<Position>) {
        let mut out = Vec::new();
        let Ok(reader) = self.store.open_run(&run.project, &run.run_id) else {
            return (out, last);
        };
        let Ok(paths) = reader.metric_paths() else { return (out, last) };
        let Some(mut last) = last else {
            // Start from the newest step: history comes from the metrics endpoint.
            let mut start = Position::default();
            for path in paths {
                if let Ok(Some(p)) = reader.last_metric_point(&path) {
                    start.steps.insert(path, p.step);
                }
            }
            if let Ok(records) = reader.artifacts_after(0) {
                start.artifact = records.iter().map(|a| a.id).max().unwrap_or(0);
            }
            return (out, Some(start));
        };
        for path in paths {
            let after = last.steps.get(&path).copied();
            let mut j = Json::default();
            j.begin_object()
                .key("project")
                .str(run.project.as_str())
                .key("run_id")
                .str(run.run_id.as_str())
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
                out.push(event("metrics", &j.finish()));
                if let Some(step) = newest {
                    last.steps.insert(path, step);
                }
            }
        }
        if let Ok(records) = reader.artifacts_after(last.artifact) {
            for a in records {
                last.artifact = last.artifact.max(a.id);
                if a.kind != goodseed_store::artifacts::ArtifactKind::Checkpoint {
                    continue;
                }
                let mut j = Json::default();
                j.begin_object()
                    .key("project")
                    .str(run.project.as_str())
                    .key("run_id")
                    .str(run.run_id.as_str())
                    .key("checkpoint");
                crate::files::artifact_json(&mut j, &a);
                j.end_object();
                out.push(event("checkpoint", &j.finish()));
            }
        }
        (out, Some(last))
    }
}

/// Sends one connection what concerns it; false when it must go.
fn deliver(c: &mut Connection, points: &HashMap<RunRef, Vec<Event>>, listing: &Listing) -> bool {
    let events: Vec<Event> =
        c.runs.iter().flat_map(|run| points.get(run).into_iter().flatten()).cloned().collect();
    for e in &events {
        if !c.send(e) {
            return false;
        }
    }
    // After the points: a run's last points come before its `finished`.
    let mut changes = Vec::new();
    for w in &mut c.watched {
        changes.extend(w.changes(listing.project(&w.project)));
        if w.whole {
            changes.extend(w.request_changes(listing.project_requests(&w.project)));
        }
    }
    for (name, data) in changes {
        if !c.send(&event(name, &data)) {
            return false;
        }
    }
    if c.last_sent.elapsed() >= PING && !c.send(&event("ping", "{}")) {
        return false;
    }
    true
}

/// A project whose runs' presence and status the client follows: the whole project
/// (`project=`), or only the runs followed with `run=`.
pub(crate) struct Watched {
    project: ProjectName,
    /// Every run of the project is followed (`project=`).
    whole: bool,
    /// File stems of the runs followed with `run=`.
    direct: HashSet<String>,
    /// The listing last compared against (`None`: not yet).
    last: Option<Arc<ProjectRuns>>,
    /// The runs the client knows, by file stem.
    known: HashMap<String, Known>,
    /// The project's requests last compared against (`None`: not yet).
    last_requests: Option<Arc<Vec<Request>>>,
    /// The state of each request the client knows (`None`: the baseline is not taken).
    requests: Option<HashMap<i64, RequestState>>,
}

/// A run the client knows of.
struct Known {
    /// The id its events carry.
    run_id: String,
    /// What the last `status` (or `run`) said; `None` before the first.
    shown: Option<Shown>,
    /// The name, tags, description and note last sent or loaded.
    edited: Edited,
}

impl Watched {
    pub(crate) fn new(project: ProjectName, whole: bool) -> Watched {
        Watched {
            project,
            whole,
            direct: HashSet::new(),
            last: None,
            known: HashMap::new(),
            last_requests: None,
            requests: None,
        }
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
            self.known.insert(
                r.id.clone(),
                Known { run_id: self.id(r).to_owned(), shown, edited: edited(r) },
            );
        }
    }

    /// The requests asked or changed since the last look (`now`: the project's requests,
    /// `None` when the server keeps none or they were not read yet), as `(event, data)`
    /// pairs. The first look only takes what is there as known: the client reads the
    /// requests it wants through `GET /api/requests`.
    fn request_changes(&mut self, now: Option<Arc<Vec<Request>>>) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let Some(now) = now else { return out };
        if self.last_requests.as_ref().is_some_and(|last| Arc::ptr_eq(last, &now)) {
            return out;
        }
        match &mut self.requests {
            None => self.requests = Some(now.iter().map(|r| (r.id, r.state)).collect()),
            Some(known) => {
                for r in now.iter() {
                    if known.insert(r.id, r.state) != Some(r.state) {
                        out.push(("request", crate::api::request_json(r).finish()));
                    }
                }
            }
        }
        self.last_requests = Some(now);
        out
    }

    /// What changed since the last look at the project's runs (`now`), as `(event,
    /// data)` pairs.
    fn changes(&mut self, now: Arc<ProjectRuns>) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
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
                Some(known) => {
                    if known.shown.as_ref() != Some(&shown) {
                        out.push(("status", status_json(&self.project, &known.run_id, &shown)));
                        known.shown = Some(shown);
                    }
                    let now = edited(r);
                    if known.edited != now {
                        if self.whole {
                            let mut j = Json::with_capacity(512);
                            run_json(&mut j, r);
                            out.push(("run", j.finish()));
                        }
                        known.edited = now;
                    }
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
                    self.known.insert(
                        r.id.clone(),
                        Known { run_id: id, shown: Some(shown), edited: edited(r) },
                    );
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
fn status_json(
    project: &ProjectName,
    run_id: &str,
    (status, state, trashed, ended_by): &Shown,
) -> String {
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
        .key("ended_by")
        .opt_str(ended_by.as_deref())
        .end_object();
    j.finish()
}

/// The runs (`run=`, repeatable) and projects (`project=`) a live connection's URL
/// names, each once; a malformed one is a 400 naming it.
pub(crate) fn follows(query: &Query) -> Result<(Vec<RunRef>, Vec<ProjectName>), ApiError> {
    let mut runs: Vec<RunRef> = Vec::new();
    for spec in query.all("run") {
        let run = run_spec(spec)?;
        if !runs.contains(&run) {
            runs.push(run);
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
    Ok((runs, projects))
}

/// `GET /api/events`
pub(crate) async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (runs, projects) = follows(&Query::parse(req.query_string()))?;
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
    let client = req.peer_addr().map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let hub = state.live.clone();
    // Refused before anything is read.
    hub.admit(client).map_err(with_retry)?;
    // One watch per project: the whole ones, then those of runs followed alone.
    let mut watched: Vec<Watched> = projects.into_iter().map(|p| Watched::new(p, true)).collect();
    for run in &runs {
        let i = match watched.iter().position(|w| w.project == run.project) {
            Some(i) => i,
            None => {
                watched.push(Watched::new(run.project.clone(), false));
                watched.len() - 1
            }
        };
        watched[i].direct.insert(run.run_id.as_str().to_owned());
    }

    // Check the runs exist before the stream starts, so a typo is a 404, not silence
    // (and a store that fails says how); and take the listing new runs are told apart
    // from before the head is sent, so a client that loads `GET /api/runs` once the
    // stream is open misses no run (one created in between may come both ways: `run` is
    // an insert-or-replace).
    let store = Arc::clone(&state.store);
    let setup = hub.clone();
    let followed = runs.clone();
    let watched = web::block(move || {
        for run in &followed {
            store
                .open_run(&run.project, &run.run_id)
                .map_err(|e| store_error(run.project.as_str(), run.run_id.as_str(), e))?;
        }
        setup.baseline(&mut watched);
        Ok::<_, ApiError>(watched)
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "worker stopped"))??;

    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUED_EVENTS);
    // A first comment opens the stream at once for the client.
    let _ = tx.try_send(Bytes::from_static(b": goodseed live updates\n\n"));
    hub.connect(tx, client, false, runs, watched).map_err(with_retry)?;
    let mut response = HttpResponse::Ok().streaming(ChunkStream::new(rx));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// A refusal for too many streams says when to try again.
fn with_retry(e: ApiError) -> ApiError {
    e.retry_after(5)
}
