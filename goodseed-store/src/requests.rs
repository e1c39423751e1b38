//! Requests of interactive control, per project (RapidFire's interactive-control table):
//! someone asks for a run to be stopped, resumed, cloned with a changed config
//! (optionally warm-started from a checkpoint) or deleted; an agent claims the oldest
//! pending request, carries it out and settles it done or failed. Each request keeps who
//! asked and when, who claimed it and when, and how it ended.
//!
//! States: `pending` → `claimed` (by one agent: a claim is one atomic step, so two agents
//! never get the same request) → `done` or `failed`. An agent that starts again releases
//! the claims it left (back to `pending`), so the work of one that died is not lost.
//!
//! [`RequestStore`] is the port; [`SqliteRequestStore`] keeps requests in
//! `<data dir>/.goodseed-server/requests.sqlite`, beside the tokens.
//!
//! ```
//! use goodseed_core::{ProjectName, RunId};
//! use goodseed_store::requests::{NewRequest, Outcome, RequestKind, RequestState, RequestStore, SqliteRequestStore};
//!
//! let dir = tempfile::tempdir()?;
//! let requests = SqliteRequestStore::in_data_dir(dir.path());
//! let project = ProjectName::parse("team/p")?;
//! let clone = NewRequest::new(RequestKind::Clone, RunId::parse("calm-otter")?, "ana")
//!     .with_config_patch(r#"{"lr": 0.01}"#)?;
//! let asked = requests.ask(&project, &clone)?;
//! let claimed = requests.claim(&project, "agent-1", &RequestKind::ALL)?.expect("one pending");
//! assert_eq!((claimed.id, claimed.state), (asked.id, RequestState::Claimed));
//! let done = requests.settle(&project, claimed.id, "agent-1", &Outcome::done(Some("calm-otter-2")))?;
//! assert_eq!(done.state, RequestState::Done);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use goodseed_core::{ProjectName, RunId};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::tokens::SERVER_STATE_DIR;
use crate::{Result, StoreError};

/// What is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Stop the run (its trainer's `should_stop`).
    Stop,
    /// Start the run's trainer again, resuming the run.
    Resume,
    /// Start a new run from the run's config with a patch (and maybe a checkpoint).
    Clone,
    /// Delete the run.
    Delete,
    /// Train a sweep's trial: a new run (`run_id`) with the whole config the request
    /// carries (made by `goodseed sweep create`, not through the API).
    Trial,
}

impl RequestKind {
    /// Every kind.
    pub const ALL: [RequestKind; 5] = [
        RequestKind::Stop,
        RequestKind::Resume,
        RequestKind::Clone,
        RequestKind::Delete,
        RequestKind::Trial,
    ];

    /// The kinds people ask for about a run (the API's): every kind but a trial.
    pub const ABOUT_A_RUN: [RequestKind; 4] =
        [RequestKind::Stop, RequestKind::Resume, RequestKind::Clone, RequestKind::Delete];

    /// The stored and shown name: `stop`, `resume`, `clone`, `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Stop => "stop",
            RequestKind::Resume => "resume",
            RequestKind::Clone => "clone",
            RequestKind::Delete => "delete",
            RequestKind::Trial => "trial",
        }
    }

    /// The kind a name names.
    pub fn parse(name: &str) -> Option<RequestKind> {
        RequestKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    /// Asked, not claimed yet.
    Pending,
    /// An agent is carrying it out.
    Claimed,
    /// Carried out.
    Done,
    /// Could not be carried out (the message says why).
    Failed,
}

impl RequestState {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Claimed => "claimed",
            RequestState::Done => "done",
            RequestState::Failed => "failed",
        }
    }

    /// The state a name names.
    pub fn parse(name: &str) -> Option<RequestState> {
        [RequestState::Pending, RequestState::Claimed, RequestState::Done, RequestState::Failed]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// A request to make ([`RequestStore::ask`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// What is asked.
    pub kind: RequestKind,
    /// The run it is about (a clone's source; a trial's new run).
    pub run_id: RunId,
    /// A clone's config patch: a JSON object, paths over the source run's config; a
    /// trial's whole config.
    pub config_patch: Option<String>,
    /// A clone's checkpoint to warm-start from (as the checkpoint store names it).
    pub checkpoint: Option<String>,
    /// Who asked (a token's id, a user name, `local`).
    pub asked_by: String,
    /// The sweep a trial belongs to.
    pub sweep: Option<String>,
}

/// A request that cannot be made, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

impl NewRequest {
    /// A request without a patch or checkpoint.
    pub fn new(kind: RequestKind, run_id: RunId, asked_by: &str) -> NewRequest {
        NewRequest {
            kind,
            run_id,
            config_patch: None,
            checkpoint: None,
            asked_by: asked_by.into(),
            sweep: None,
        }
    }

    /// A sweep's trial: the new run `run_id`, trained with `config` (a JSON object).
    pub fn trial(
        sweep: &str,
        run_id: RunId,
        config: &str,
        asked_by: &str,
    ) -> std::result::Result<NewRequest, BadRequest> {
        let request = NewRequest {
            config_patch: Some(config.to_owned()),
            sweep: Some(sweep.to_owned()),
            ..NewRequest::new(RequestKind::Trial, run_id, asked_by)
        };
        request.check()?;
        Ok(request)
    }

    /// A clone's config patch: refused unless it is a JSON object, and for any other
    /// kind.
    pub fn with_config_patch(mut self, patch: &str) -> std::result::Result<NewRequest, BadRequest> {
        self.config_patch = Some(patch.to_owned());
        self.check()?;
        Ok(self)
    }

    /// A clone's checkpoint to warm-start from.
    pub fn with_checkpoint(
        mut self,
        checkpoint: &str,
    ) -> std::result::Result<NewRequest, BadRequest> {
        self.checkpoint = Some(checkpoint.to_owned());
        self.check()?;
        Ok(self)
    }

    /// Whether the request can be made: a patch and a checkpoint only for a clone, the
    /// patch a JSON object, the checkpoint a non-empty name, who asked named.
    pub fn check(&self) -> std::result::Result<(), BadRequest> {
        let kind = self.kind.as_str();
        if self.kind == RequestKind::Trial {
            if self.config_patch.is_none() {
                return Err(BadRequest("a trial needs its config".to_owned()));
            }
            if self.sweep.as_deref().is_none_or(|s| s.trim().is_empty()) {
                return Err(BadRequest("a trial needs its sweep".to_owned()));
            }
        } else if self.sweep.is_some() {
            return Err(BadRequest(format!("a {kind} request belongs to no sweep")));
        }
        if self.kind != RequestKind::Clone && self.kind != RequestKind::Trial {
            if self.config_patch.is_some() {
                return Err(BadRequest(format!("a {kind} request takes no config patch")));
            }
            if self.checkpoint.is_some() {
                return Err(BadRequest(format!("a {kind} request takes no checkpoint")));
            }
        }
        if let Some(patch) = &self.config_patch {
            let value: serde_json::Value = serde_json::from_str(patch)
                .map_err(|e| BadRequest(format!("the config patch is not JSON: {e}")))?;
            if !value.is_object() {
                return Err(BadRequest(
                    "the config patch must be a JSON object (config paths and their values)"
                        .to_owned(),
                ));
            }
        }
        if self.kind == RequestKind::Trial && self.checkpoint.is_some() {
            return Err(BadRequest("a trial takes no checkpoint".to_owned()));
        }
        if self.checkpoint.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err(BadRequest("the checkpoint is empty".to_owned()));
        }
        if self.asked_by.trim().is_empty() {
            return Err(BadRequest("who asked is not named".to_owned()));
        }
        Ok(())
    }
}

/// A request as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its number, increasing in the order asked.
    pub id: i64,
    /// Its project.
    pub project: ProjectName,
    /// What is asked.
    pub kind: RequestKind,
    /// The run it is about.
    pub run_id: RunId,
    /// A clone's config patch (a JSON object).
    pub config_patch: Option<String>,
    /// A clone's checkpoint.
    pub checkpoint: Option<String>,
    /// Where it is.
    pub state: RequestState,
    /// Who asked, and when (ISO 8601).
    pub asked_by: String,
    /// When it was asked.
    pub asked_at: String,
    /// The agent that claimed it, and when.
    pub claimed_by: Option<String>,
    /// When it was claimed.
    pub claimed_at: Option<String>,
    /// When it was settled.
    pub settled_at: Option<String>,
    /// How it ended, for people (why it failed).
    pub message: Option<String>,
    /// The run it made or resumed (a clone's new run).
    pub result_run: Option<String>,
    /// The sweep a trial belongs to.
    pub sweep: Option<String>,
}

/// A named config kept per project (a preset), saved from a run's config or written by
/// hand, used by clones and sweeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedConfig {
    /// Its project.
    pub project: ProjectName,
    /// Its name: 1 to 100 letters, digits, `.`, `_` or `-`.
    pub name: String,
    /// The config: JSON text of an object (nested objects for paths `a/b`).
    pub config: String,
    /// The run it was saved from, if any.
    pub from_run: Option<String>,
    /// Who saved it, and when (ISO 8601).
    pub saved_by: String,
    /// When it was saved.
    pub saved_at: String,
}

/// A named view of a project's runs kept for people to share (ours): what the web UI
/// shows and how (its query string: columns, conditions, sort, groups, panels), opened
/// by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedView {
    /// Its name: 1 to 100 letters, digits, `.`, `_` or `-`.
    pub name: String,
    /// The view: JSON text of an object (the UI keeps `{"query": "<query string>"}`).
    pub layout: String,
    /// Who saved it.
    pub saved_by: String,
    /// When (ISO 8601).
    pub saved_at: String,
}

/// The largest view's layout, in bytes.
pub const MAX_VIEW: usize = 64 * 1024;

/// Checks a view's name and layout before it is kept.
pub fn check_saved_view(name: &str, layout: &str) -> std::result::Result<(), BadRequest> {
    check_name("a view's", name)?;
    if layout.len() > MAX_VIEW {
        return Err(BadRequest(format!("a view is at most {MAX_VIEW} bytes of JSON")));
    }
    check_object("the view", "a view", layout)
}

/// Checks a saved config's name and config before it is kept.
pub fn check_saved_config(name: &str, config: &str) -> std::result::Result<(), BadRequest> {
    check_name("a saved config's", name)?;
    check_object("the saved config", "a saved config", config)
}

/// The name of what a project keeps by name (saved configs, views): 1 to 100 letters,
/// digits, `.`, `_` or `-`.
fn check_name(whose: &str, name: &str) -> std::result::Result<(), BadRequest> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.chars().count() > 100 || !name.chars().all(ok_char) {
        return Err(BadRequest(format!(
            "{whose} name is 1 to 100 letters, digits, '.', '_' or '-', not {name:?}"
        )));
    }
    Ok(())
}

/// JSON text of an object; the errors name what it is (`the`, `a`).
fn check_object(the: &str, a: &str, json: &str) -> std::result::Result<(), BadRequest> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| BadRequest(format!("{the} is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(BadRequest(format!("{a} must be a JSON object")));
    }
    Ok(())
}

/// How an agent settles a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Carried out (`done`) or not (`failed`).
    pub done: bool,
    /// For people: why it failed, what was done.
    pub message: Option<String>,
    /// The run it made or resumed.
    pub result_run: Option<String>,
}

impl Outcome {
    /// Carried out, with the run it made or resumed.
    pub fn done(result_run: Option<&str>) -> Outcome {
        Outcome { done: true, message: None, result_run: result_run.map(str::to_owned) }
    }

    /// Not carried out, and why.
    pub fn failed(message: &str) -> Outcome {
        Outcome { done: false, message: Some(message.to_owned()), result_run: None }
    }

    /// The state it settles a request in.
    pub fn state(&self) -> RequestState {
        if self.done { RequestState::Done } else { RequestState::Failed }
    }
}

/// Where requests are kept.
pub trait RequestStore: Send + Sync + std::fmt::Debug {
    /// Keeps a new pending request (checked first: [`NewRequest::check`]).
    fn ask(&self, project: &ProjectName, request: &NewRequest) -> Result<Request>;

    /// The project's requests, oldest first.
    fn list(&self, project: &ProjectName) -> Result<Vec<Request>>;

    /// One request.
    fn get(&self, project: &ProjectName, id: i64) -> Result<Option<Request>>;

    /// Claims the oldest pending request of the project of one of `kinds` for `agent`,
    /// in one atomic step: two agents never get the same one. `None` when none is
    /// pending. (An agent whose trainer slots are full still carries out stops and
    /// deletes: it claims only those.)
    fn claim(
        &self,
        project: &ProjectName,
        agent: &str,
        kinds: &[RequestKind],
    ) -> Result<Option<Request>>;

    /// Settles a request `agent` claimed. A request not claimed by `agent` is refused
    /// (it was released, or another agent has it).
    fn settle(
        &self,
        project: &ProjectName,
        id: i64,
        agent: &str,
        outcome: &Outcome,
    ) -> Result<Request>;

    /// Puts the requests `agent` claimed and did not settle back to pending (an agent
    /// starting again after it died). Returns how many.
    fn release(&self, project: &ProjectName, agent: &str) -> Result<u64>;

    /// Settles the pending trials of `sweep` as failed with `message` (a sweep
    /// cancelled): no agent claims them after. Returns how many.
    fn cancel_sweep(&self, project: &ProjectName, sweep: &str, message: &str) -> Result<u64>;

    /// Keeps a named config of the project (checked: [`check_saved_config`]), replacing
    /// one of that name.
    fn save_config(
        &self,
        project: &ProjectName,
        name: &str,
        config: &str,
        from_run: Option<&RunId>,
        saved_by: &str,
    ) -> Result<SavedConfig>;

    /// The project's saved configs, by name.
    fn saved_configs(&self, project: &ProjectName) -> Result<Vec<SavedConfig>>;

    /// One saved config.
    fn saved_config(&self, project: &ProjectName, name: &str) -> Result<Option<SavedConfig>>;

    /// Deletes a saved config; false when there was none of that name.
    fn delete_saved_config(&self, project: &ProjectName, name: &str) -> Result<bool>;

    /// Keeps a named view of the project (checked: [`check_saved_view`]), replacing one
    /// of that name.
    fn save_view(
        &self,
        project: &ProjectName,
        name: &str,
        layout: &str,
        saved_by: &str,
    ) -> Result<SavedView>;

    /// The project's views, by name.
    fn views(&self, project: &ProjectName) -> Result<Vec<SavedView>>;

    /// Deletes a view; false when there was none of that name.
    fn delete_view(&self, project: &ProjectName, name: &str) -> Result<bool>;
}

const REQUESTS_DDL: &str = "
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    kind TEXT NOT NULL,
    run_id TEXT NOT NULL,
    config_patch TEXT,
    checkpoint TEXT,
    state TEXT NOT NULL,
    asked_by TEXT NOT NULL,
    asked_at TEXT NOT NULL,
    claimed_by TEXT,
    claimed_at TEXT,
    settled_at TEXT,
    message TEXT,
    result_run TEXT,
    sweep TEXT
);
CREATE INDEX IF NOT EXISTS requests_by_state ON requests (project, state, id);
CREATE TABLE IF NOT EXISTS saved_views (
    project TEXT NOT NULL,
    name TEXT NOT NULL,
    layout TEXT NOT NULL,
    saved_by TEXT NOT NULL,
    saved_at TEXT NOT NULL,
    PRIMARY KEY (project, name)
);
CREATE TABLE IF NOT EXISTS saved_configs (
    project TEXT NOT NULL,
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    from_run TEXT,
    saved_by TEXT NOT NULL,
    saved_at TEXT NOT NULL,
    PRIMARY KEY (project, name)
);
";

/// Requests in one SQLite file.
#[derive(Debug)]
pub struct SqliteRequestStore {
    path: PathBuf,
    conn: Mutex<Option<Connection>>,
}

impl SqliteRequestStore {
    /// Requests of the data directory `dir` (a projects directory).
    pub fn in_data_dir(dir: &Path) -> SqliteRequestStore {
        SqliteRequestStore::at(&dir.join(SERVER_STATE_DIR).join("requests.sqlite"))
    }

    /// Requests in the file at `path`.
    pub fn at(path: &Path) -> SqliteRequestStore {
        SqliteRequestStore { path: path.to_owned(), conn: Mutex::new(None) }
    }

    /// Runs `f` on the connection, opening (and creating) the file first.
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::io("creating", dir, e))?;
            }
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = Connection::open_with_flags(&self.path, flags)
                .map_err(|e| StoreError::db(&self.path, e))?;
            conn.execute_batch(&format!(
                "PRAGMA busy_timeout=5000; PRAGMA journal_mode=WAL; {REQUESTS_DDL}"
            ))
            .map_err(|e| StoreError::db(&self.path, e))?;
            // A file made before sweeps lacks their column.
            let has_sweep: bool = conn
                .query_row(
                    "SELECT count(*) FROM pragma_table_info('requests') WHERE name = 'sweep'",
                    [],
                    |r| r.get::<_, i64>(0).map(|n| n > 0),
                )
                .map_err(|e| StoreError::db(&self.path, e))?;
            if !has_sweep {
                conn.execute_batch("ALTER TABLE requests ADD COLUMN sweep TEXT")
                    .map_err(|e| StoreError::db(&self.path, e))?;
            }
            *guard = Some(conn);
        }
        f(guard.as_mut().expect("opened above")).map_err(|e| StoreError::db(&self.path, e))
    }

    fn bad(&self, reason: String) -> StoreError {
        StoreError::BadRequest { reason }
    }
}

fn request_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Request> {
    let text = |i: &str| r.get::<_, String>(i);
    let bad = |what: &str, value: String| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("a request's {what} {value:?} is not one goodseed writes").into(),
        )
    };
    let project = text("project")?;
    let kind = text("kind")?;
    let run_id = text("run_id")?;
    let state = text("state")?;
    Ok(Request {
        id: r.get("id")?,
        project: ProjectName::parse(&project).map_err(|_| bad("project", project.clone()))?,
        kind: RequestKind::parse(&kind).ok_or_else(|| bad("kind", kind.clone()))?,
        run_id: RunId::parse(&run_id).map_err(|_| bad("run id", run_id.clone()))?,
        config_patch: r.get("config_patch")?,
        checkpoint: r.get("checkpoint")?,
        state: RequestState::parse(&state).ok_or_else(|| bad("state", state.clone()))?,
        asked_by: text("asked_by")?,
        asked_at: text("asked_at")?,
        claimed_by: r.get("claimed_by")?,
        claimed_at: r.get("claimed_at")?,
        settled_at: r.get("settled_at")?,
        message: r.get("message")?,
        result_run: r.get("result_run")?,
        sweep: r.get("sweep")?,
    })
}

fn saved_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SavedConfig> {
    let project: String = r.get("project")?;
    Ok(SavedConfig {
        project: ProjectName::parse(&project).map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                format!("a saved config's project {project:?} is not one goodseed writes").into(),
            )
        })?,
        name: r.get("name")?,
        config: r.get("config")?,
        from_run: r.get("from_run")?,
        saved_by: r.get("saved_by")?,
        saved_at: r.get("saved_at")?,
    })
}

impl RequestStore for SqliteRequestStore {
    fn ask(&self, project: &ProjectName, request: &NewRequest) -> Result<Request> {
        request.check().map_err(|e| self.bad(e.0))?;
        let now = crate::lifecycle::now_iso();
        self.with(|c| {
            c.query_row(
                "INSERT INTO requests (project, kind, run_id, config_patch, checkpoint, state,
                     asked_by, asked_at, sweep)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?8) RETURNING *",
                params![
                    project.as_str(),
                    request.kind.as_str(),
                    request.run_id.as_str(),
                    request.config_patch,
                    request.checkpoint,
                    request.asked_by,
                    now,
                    request.sweep
                ],
                request_from_row,
            )
        })
    }

    fn list(&self, project: &ProjectName) -> Result<Vec<Request>> {
        self.with(|c| {
            let mut stmt =
                c.prepare_cached("SELECT * FROM requests WHERE project = ?1 ORDER BY id")?;
            let rows = stmt.query_map([project.as_str()], request_from_row)?;
            rows.collect()
        })
    }

    fn get(&self, project: &ProjectName, id: i64) -> Result<Option<Request>> {
        self.with(|c| {
            c.query_row(
                "SELECT * FROM requests WHERE project = ?1 AND id = ?2",
                params![project.as_str(), id],
                request_from_row,
            )
            .optional()
        })
    }

    fn claim(
        &self,
        project: &ProjectName,
        agent: &str,
        kinds: &[RequestKind],
    ) -> Result<Option<Request>> {
        let now = crate::lifecycle::now_iso();
        // `,stop,delete,`: a kind is asked for when `,<kind>,` is in it.
        let kinds = format!(",{},", kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(","));
        self.with(|c| {
            // One write transaction: whoever takes the file's write lock first gets the
            // oldest pending request; the other then finds the next one.
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let claimed = tx
                .query_row(
                    "UPDATE requests SET state = 'claimed', claimed_by = ?2, claimed_at = ?3
                     WHERE id = (SELECT id FROM requests WHERE project = ?1 AND state = 'pending'
                                     AND instr(?4, ',' || kind || ',') > 0
                                 ORDER BY id LIMIT 1)
                     RETURNING *",
                    params![project.as_str(), agent, now, kinds],
                    request_from_row,
                )
                .optional()?;
            tx.commit()?;
            Ok(claimed)
        })
    }

    fn settle(
        &self,
        project: &ProjectName,
        id: i64,
        agent: &str,
        outcome: &Outcome,
    ) -> Result<Request> {
        let now = crate::lifecycle::now_iso();
        let state = outcome.state();
        let settled = self.with(|c| {
            c.query_row(
                "UPDATE requests SET state = ?4, settled_at = ?5, message = ?6, result_run = ?7
                 WHERE project = ?1 AND id = ?2 AND state = 'claimed' AND claimed_by = ?3
                 RETURNING *",
                params![
                    project.as_str(),
                    id,
                    agent,
                    state.as_str(),
                    now,
                    outcome.message,
                    outcome.result_run
                ],
                request_from_row,
            )
            .optional()
        })?;
        match settled {
            Some(r) => Ok(r),
            None => Err(self.not_claimed(project, id, agent)?),
        }
    }

    fn release(&self, project: &ProjectName, agent: &str) -> Result<u64> {
        self.with(|c| {
            c.execute(
                "UPDATE requests SET state = 'pending', claimed_by = NULL, claimed_at = NULL
                 WHERE project = ?1 AND state = 'claimed' AND claimed_by = ?2",
                params![project.as_str(), agent],
            )
            .map(|n| n as u64)
        })
    }

    fn cancel_sweep(&self, project: &ProjectName, sweep: &str, message: &str) -> Result<u64> {
        let now = crate::lifecycle::now_iso();
        self.with(|c| {
            c.execute(
                "UPDATE requests SET state = 'failed', settled_at = ?3, message = ?4
                 WHERE project = ?1 AND sweep = ?2 AND state = 'pending'",
                params![project.as_str(), sweep, now, message],
            )
            .map(|n| n as u64)
        })
    }

    fn save_config(
        &self,
        project: &ProjectName,
        name: &str,
        config: &str,
        from_run: Option<&RunId>,
        saved_by: &str,
    ) -> Result<SavedConfig> {
        check_saved_config(name, config).map_err(|e| self.bad(e.0))?;
        let now = crate::lifecycle::now_iso();
        self.with(|c| {
            c.query_row(
                "INSERT OR REPLACE INTO saved_configs (project, name, config, from_run, saved_by,
                     saved_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING *",
                params![project.as_str(), name, config, from_run.map(RunId::as_str), saved_by, now],
                saved_from_row,
            )
        })
    }

    fn saved_configs(&self, project: &ProjectName) -> Result<Vec<SavedConfig>> {
        self.with(|c| {
            let mut stmt =
                c.prepare_cached("SELECT * FROM saved_configs WHERE project = ?1 ORDER BY name")?;
            let rows = stmt.query_map([project.as_str()], saved_from_row)?;
            rows.collect()
        })
    }

    fn saved_config(&self, project: &ProjectName, name: &str) -> Result<Option<SavedConfig>> {
        self.with(|c| {
            c.query_row(
                "SELECT * FROM saved_configs WHERE project = ?1 AND name = ?2",
                params![project.as_str(), name],
                saved_from_row,
            )
            .optional()
        })
    }

    fn delete_saved_config(&self, project: &ProjectName, name: &str) -> Result<bool> {
        self.with(|c| {
            c.execute(
                "DELETE FROM saved_configs WHERE project = ?1 AND name = ?2",
                params![project.as_str(), name],
            )
            .map(|n| n > 0)
        })
    }

    fn save_view(
        &self,
        project: &ProjectName,
        name: &str,
        layout: &str,
        saved_by: &str,
    ) -> Result<SavedView> {
        check_saved_view(name, layout).map_err(|e| self.bad(e.0))?;
        let now = crate::lifecycle::now_iso();
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO saved_views (project, name, layout, saved_by, saved_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![project.as_str(), name, layout, saved_by, now],
            )
        })?;
        Ok(SavedView {
            name: name.to_owned(),
            layout: layout.to_owned(),
            saved_by: saved_by.to_owned(),
            saved_at: now,
        })
    }

    fn views(&self, project: &ProjectName) -> Result<Vec<SavedView>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT name, layout, saved_by, saved_at FROM saved_views WHERE project = ?1
                 ORDER BY name",
            )?;
            let rows = stmt.query_map([project.as_str()], |r| {
                Ok(SavedView {
                    name: r.get(0)?,
                    layout: r.get(1)?,
                    saved_by: r.get(2)?,
                    saved_at: r.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    fn delete_view(&self, project: &ProjectName, name: &str) -> Result<bool> {
        self.with(|c| {
            c.execute(
                "DELETE FROM saved_views WHERE project = ?1 AND name = ?2",
                params![project.as_str(), name],
            )
            .map(|n| n > 0)
        })
    }
}

impl SqliteRequestStore {
    /// Why `agent` cannot settle request `id`.
    fn not_claimed(&self, project: &ProjectName, id: i64, agent: &str) -> Result<StoreError> {
        Ok(not_claimed_error(self.get(project, id)?, project, id, agent))
    }
}

/// Why `agent` cannot settle request `id`, as every request store says it.
pub fn not_claimed_error(
    found: Option<Request>,
    project: &ProjectName,
    id: i64,
    agent: &str,
) -> StoreError {
    let reason = match found {
        None => format!("no request {id} in project {project}"),
        Some(r) => match (r.state, r.claimed_by) {
            (RequestState::Claimed, Some(other)) => {
                format!("request {id} is claimed by {other:?}, not {agent:?}")
            }
            (state, _) => format!("request {id} is {}, not claimed by {agent:?}", state.as_str()),
        },
    };
    StoreError::BadRequest { reason }
}
