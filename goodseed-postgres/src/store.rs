//! [`PgStore`]: the runs of one PostgreSQL database, behind the store's port.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::SystemTime;

use goodseed_core::{ConfigValue, Liveness, ProjectName, RunId, RunRef, RunStatus};
use goodseed_store::uploads::RunUploads;
use goodseed_store::{
    HEARTBEAT_STALE_AFTER, ProjectSummary, Result, RunListing, RunMeta, RunReader, RunStore,
    RunSummary, RunVersion, RunWriter, StoreError, WriteBatch, meta_key,
};
use postgres::GenericClient;

use crate::reader::PgRunReader;
use crate::schema::{self, MigrateError};
use crate::uploads::PgUploads;
use crate::writer::PgRunWriter;
use crate::{BEAT, Conn, DEFAULT_POOL_SIZE, Pool, Target, db_error, pool_error};

/// The kinds of series, as `goodseed_series.kind` keeps them.
pub(crate) const METRIC: i16 = 0;
pub(crate) const TEXT: i16 = 1;

/// The runs of one PostgreSQL database. Cheap to share (`Arc`); every method takes a
/// connection from the store's pool for as long as it needs one.
pub struct PgStore {
    pub(crate) shared: Arc<Shared>,
}

/// What a store, its writers and its heartbeat thread share.
pub(crate) struct Shared {
    /// Always `Some` but while dropping (see the `Drop` impl).
    pool: Option<Pool>,
    pub(crate) location: String,
    /// Summaries by run row, under the generation they were read at.
    summaries: Mutex<HashMap<i64, (i64, Arc<RunSummary>)>>,
    /// The last listing of each project filter (`None`: every run), under the
    /// fingerprint of the runs it was made from.
    listings: Mutex<HashMap<Option<String>, ListingKept>>,
    /// The runs this store's writers hold, with their tokens: the heartbeat thread
    /// proves them alive.
    pub(crate) held: Mutex<HashMap<i64, i64>>,
    beating: std::sync::OnceLock<()>,
    /// How to connect, for the listening thread's own connection ([`crate::notify`]).
    pub(crate) config: postgres::Config,
    /// The watchers' feeds, told by the listening thread.
    pub(crate) feeds: Mutex<Vec<goodseed_store::changes::ChangeFeed>>,
    pub(crate) listening: std::sync::OnceLock<()>,
    /// Where the runs' files are kept ([`PgStore::with_blob_dir`]); unset, the store
    /// keeps none.
    pub(crate) blobs: std::sync::OnceLock<std::path::PathBuf>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("location", &self.shared.location).finish_non_exhaustive()
    }
}

/// A listing kept: the fingerprint of its runs (count, generations, live writers) and
/// the summaries.
type ListingKept = ((i64, i64, i64), Vec<Arc<RunSummary>>);

/// A run's row, as every lookup reads it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunRow {
    pub(crate) id: i64,
    pub(crate) generation: i64,
    /// A writer holds the run.
    pub(crate) held: bool,
    /// The holder beat within [`HEARTBEAT_STALE_AFTER`].
    pub(crate) alive: bool,
    pub(crate) gone: bool,
}

/// The columns [`RunRow`] reads, from `goodseed_runs r` with `$stale` the staleness in
/// seconds at the given parameter.
pub(crate) fn run_row_sql(stale_param: usize) -> String {
    format!(
        "r.id, r.generation, r.writer IS NOT NULL, \
         (r.writer IS NOT NULL AND r.heartbeat > now() - make_interval(secs => ${stale_param})), \
         r.writer_gone"
    )
}

pub(crate) fn stale_secs() -> f64 {
    HEARTBEAT_STALE_AFTER.as_secs_f64()
}

impl RunRow {
    fn from_row(row: &postgres::Row, at: usize) -> RunRow {
        RunRow {
            id: row.get(at),
            generation: row.get(at + 1),
            held: row.get(at + 2),
            alive: row.get(at + 3),
            gone: row.get(at + 4),
        }
    }

    /// Whether the run's writer is alive, for a run whose stored status is `status`.
    pub(crate) fn liveness(&self, status: Option<&str>) -> Liveness {
        if status != Some("running") {
            Liveness::Unknown
        } else if self.alive {
            Liveness::Live
        } else if self.held || self.gone {
            Liveness::Dead
        } else {
            Liveness::Unknown
        }
    }

    /// The version of the run's data while no writer holds it.
    pub(crate) fn version(&self) -> Option<RunVersion> {
        (!self.held).then(|| RunVersion(u64::try_from(self.generation).unwrap_or(0)))
    }
}

/// A run's place, for people to read.
pub(crate) fn run_location(store: &str, project: &str, run_id: &str) -> String {
    format!("{store} run {project}/{run_id}")
}

fn not_found(project: &ProjectName, run_id: &RunId) -> StoreError {
    StoreError::NotFound { project: project.to_string(), run_id: run_id.to_string() }
}

/// Meta values and user text are `bytea` holding UTF-8 written from `&str`.
pub(crate) fn text_of(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

impl PgStore {
    /// The store of the database a connection string names, its schema brought up to
    /// date ([`schema`]). Fails when the database cannot be reached, or
    /// was migrated by a newer goodseed.
    pub fn connect(url: &str) -> Result<PgStore> {
        PgStore::connect_with(url, DEFAULT_POOL_SIZE)
    }

    /// [`PgStore::connect`] with at most `pool_size` connections.
    pub fn connect_with(url: &str, pool_size: u32) -> Result<PgStore> {
        let store = PgStore::open(url, pool_size)?;
        store.migrate()?;
        Ok(store)
    }

    /// The store without touching the database yet: call [`PgStore::migrate`] before
    /// using it (a server retries that until the database answers).
    pub fn open(url: &str, pool_size: u32) -> Result<PgStore> {
        let target = Target::parse(url)?;
        let pool = crate::make_pool(&target, pool_size);
        Ok(PgStore {
            shared: Arc::new(Shared {
                pool: Some(pool),
                location: target.shown,
                summaries: Mutex::new(HashMap::new()),
                listings: Mutex::new(HashMap::new()),
                held: Mutex::new(HashMap::new()),
                beating: std::sync::OnceLock::new(),
                config: target.config,
                feeds: Mutex::new(Vec::new()),
                listening: std::sync::OnceLock::new(),
                blobs: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Keeps the runs' checkpoints, artifacts and files under `dir` (created when
    /// needed): the database holds their records only. Every server and trainer over
    /// the database must be given the same directory (a shared file system) to serve
    /// and write them. Set once, before the store is used; without it, registering a
    /// file is refused with [`StoreError::Unsupported`].
    pub fn with_blob_dir(self, dir: impl Into<std::path::PathBuf>) -> PgStore {
        let _ = self.shared.blobs.set(dir.into());
        self
    }

    /// Brings the database's schema up to date. Refused, changing nothing, for a
    /// database a newer goodseed migrated. Returns the version found before.
    pub fn migrate(&self) -> Result<i32> {
        let mut conn = self.conn()?;
        schema::migrate(&mut conn).map_err(|e| match e {
            MigrateError::TooNew(found) => StoreError::Database {
                location: self.shared.location.clone(),
                message: format!(
                    "the database's goodseed schema is version {found}, newer than this \
                     goodseed knows ({}): upgrade goodseed",
                    schema::SCHEMA_VERSION
                ),
                busy: false,
            },
            MigrateError::Db(e) => self.err(&e),
        })
    }

    /// [`PgStore::migrate`], waiting for a database that cannot be reached yet: each
    /// failed attempt is told to `tell` (with the wait before the next), and tried
    /// again. Other failures (a database migrated by a newer goodseed, a migration
    /// refused) are returned at once.
    pub fn migrate_waiting(
        &self,
        mut tell: impl FnMut(&StoreError, std::time::Duration),
    ) -> Result<i32> {
        let mut wait = std::time::Duration::from_millis(500);
        loop {
            match self.conn() {
                Ok(conn) => {
                    drop(conn);
                    return self.migrate();
                }
                Err(e) => {
                    tell(&e, wait);
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(std::time::Duration::from_secs(10));
                }
            }
        }
    }

    pub(crate) fn conn(&self) -> Result<Conn> {
        self.shared.conn()
    }

    fn err(&self, e: &postgres::Error) -> StoreError {
        db_error(&self.shared.location, e)
    }

    /// The row of a run, if there is one.
    fn find(
        &self,
        client: &mut impl GenericClient,
        project: &str,
        run_id: &str,
    ) -> Result<Option<RunRow>> {
        let sql = format!(
            "SELECT {} FROM goodseed_runs r WHERE r.project = $1 AND r.run_id = $2",
            run_row_sql(3)
        );
        let row = client
            .query_opt(&sql, &[&project, &run_id, &stale_secs()])
            .map_err(|e| self.err(&e))?;
        Ok(row.map(|r| RunRow::from_row(&r, 0)))
    }

    fn must_find(
        &self,
        client: &mut impl GenericClient,
        project: &ProjectName,
        run_id: &RunId,
    ) -> Result<RunRow> {
        self.find(client, project.as_str(), run_id.as_str())?
            .ok_or_else(|| not_found(project, run_id))
    }

    /// Sets one meta key (or deletes it) and moves the run's generation.
    fn set_meta_key(
        &self,
        project: &ProjectName,
        run_id: &RunId,
        key: &str,
        value: Option<&str>,
    ) -> Result<()> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(|e| self.err(&e))?;
        let id: Option<i64> = tx
            .query_opt(
                "UPDATE goodseed_runs SET generation = generation + 1, modified = now()
                 WHERE project = $1 AND run_id = $2 RETURNING id",
                &[&project.as_str(), &run_id.as_str()],
            )
            .map_err(|e| self.err(&e))?
            .map(|r| r.get(0));
        let id = id.ok_or_else(|| not_found(project, run_id))?;
        match value {
            Some(v) => tx.execute(
                "INSERT INTO goodseed_run_meta (run, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT (run, key) DO UPDATE SET value = excluded.value",
                &[&id, &key, &v.as_bytes()],
            ),
            None => tx
                .execute("DELETE FROM goodseed_run_meta WHERE run = $1 AND key = $2", &[&id, &key]),
        }
        .map_err(|e| self.err(&e))?;
        tx.commit().map_err(|e| self.err(&e))
    }

    /// Loads the summaries of runs (without their liveness, which is fresh per call).
    fn load_summaries(
        &self,
        client: &mut impl GenericClient,
        ids: &[i64],
    ) -> Result<HashMap<i64, RunSummary>> {
        let runs: Vec<(i64, String, String)> = client
            .query("SELECT id, project, run_id FROM goodseed_runs WHERE id = ANY($1)", &[&ids])
            .map_err(|e| self.err(&e))?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let mut meta: HashMap<i64, BTreeMap<String, String>> = HashMap::new();
        for row in client
            .query("SELECT run, key, value FROM goodseed_run_meta WHERE run = ANY($1)", &[&ids])
            .map_err(|e| self.err(&e))?
        {
            meta.entry(row.get(0)).or_default().insert(row.get(1), text_of(row.get(2)));
        }
        let mut paths: HashMap<i64, (Vec<String>, Vec<String>)> = HashMap::new();
        for row in client
            .query(
                "SELECT run, kind, path FROM goodseed_series
                 WHERE run = ANY($1) AND points > 0 ORDER BY run, path",
                &[&ids],
            )
            .map_err(|e| self.err(&e))?
        {
            let entry = paths.entry(row.get(0)).or_default();
            let kind: i16 = row.get(1);
            if kind == METRIC { entry.0.push(row.get(2)) } else { entry.1.push(row.get(2)) }
        }
        let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
        let mut configs: HashMap<i64, Vec<(String, ConfigValue)>> = HashMap::new();
        let max = goodseed_store::SUMMARY_CONFIG_MAX as i32;
        for row in client
            .query(
                "SELECT run, path, type_tag, value FROM goodseed_configs
                 WHERE run = ANY($1) AND (value IS NULL OR octet_length(value) <= $2)
                 ORDER BY run, path",
                &[&ids, &max],
            )
            .map_err(|e| self.err(&e))?
        {
            let path: String = row.get(1);
            let tag: String = row.get(2);
            let value: Option<Vec<u8>> = row.get(3);
            let value = ConfigValue::decode(&tag, value.map(text_of).as_deref());
            if path == "sys/tags"
                && let ConfigValue::StringSet(set) = &value
            {
                tags.insert(row.get(0), set.iter().cloned().collect());
            }
            configs.entry(row.get(0)).or_default().push((path, value));
        }
        let mut out = HashMap::new();
        for (id, project, run_id) in &runs {
            let meta = RunMeta(meta.remove(id).unwrap_or_default());
            let (metric_paths, text_paths) = paths.remove(id).unwrap_or_default();
            out.insert(
                *id,
                RunSummary {
                    project: project.clone(),
                    id: run_id.clone(),
                    run_id: meta.run_id().unwrap_or(run_id).to_owned(),
                    status: RunStatus::derive(meta.status(), Liveness::Unknown),
                    liveness: Liveness::Unknown,
                    meta,
                    metric_paths,
                    text_paths,
                    tags: tags.remove(id).unwrap_or_default(),
                    version: None,
                    location: format!("{project}/{run_id}"),
                    // Its writers' heartbeats tell whether they live (`RunRow::liveness`).
                    last_write: None,
                    configs: configs.remove(id).unwrap_or_default(),
                    // Not kept here: the server reads them from the run when a listing
                    // filters or sorts by them (`MetricSummary::of_run`).
                    metrics: Vec::new(),
                },
            );
        }
        Ok(out)
    }

    /// Summaries of the runs the query's rows name (each a [`RunRow`]), from the cache
    /// where their generation did not move.
    fn summaries(
        &self,
        client: &mut impl GenericClient,
        rows: Vec<postgres::Row>,
    ) -> Result<Vec<Arc<RunSummary>>> {
        let runs: Vec<RunRow> = rows.iter().map(|r| RunRow::from_row(r, 0)).collect();
        let stale: Vec<i64> = {
            let cache = self.shared.summaries.lock().unwrap_or_else(PoisonError::into_inner);
            runs.iter()
                .filter(|row| cache.get(&row.id).is_none_or(|(g, _)| *g != row.generation))
                .map(|row| row.id)
                .collect()
        };
        let loaded =
            if stale.is_empty() { HashMap::new() } else { self.load_summaries(client, &stale)? };
        let mut cache = self.shared.summaries.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::with_capacity(runs.len());
        for row in &runs {
            let base = match loaded.get(&row.id) {
                Some(s) => Arc::new(s.clone()),
                None => match cache.get(&row.id) {
                    Some((_, s)) => Arc::clone(s),
                    None => continue,
                },
            };
            // The cache keeps the summary as last handed out: the same `Arc` while
            // neither the run nor its liveness moved, so a warm listing copies nothing
            // (and callers may tell an unchanged summary by its pointer).
            let summary = fresh(base, row);
            cache.insert(row.id, (row.generation, Arc::clone(&summary)));
            out.push(summary);
        }
        Ok(out)
    }
}

/// A cached summary with its liveness, status and version as of now.
fn fresh(base: Arc<RunSummary>, row: &RunRow) -> Arc<RunSummary> {
    let liveness = row.liveness(base.meta.status());
    let version = row.version();
    if liveness == base.liveness && version == base.version {
        return base;
    }
    let mut s = (*base).clone();
    s.liveness = liveness;
    s.status = RunStatus::derive(s.meta.status(), liveness);
    s.version = version;
    Arc::new(s)
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Closing a connection blocks on the `postgres` client's own runtime, which
        // panics on an async runtime's thread, where a server's last handle on its store
        // can go: the pool's connections are closed on a thread of their own then.
        let pool = self.pool.take();
        crate::off_runtime(move || drop(pool));
    }
}

impl Shared {
    fn pool(&self) -> &Pool {
        match &self.pool {
            Some(pool) => pool,
            None => unreachable!("the pool is only taken when the store is dropped"),
        }
    }

    pub(crate) fn conn(&self) -> Result<Conn> {
        self.pool().get().map_err(|e| pool_error(&self.location, &e))
    }

    /// Starts the heartbeat thread, once: it holds the store weakly and ends with it.
    pub(crate) fn start_beating(self: &Arc<Self>) {
        self.beating.get_or_init(|| {
            let weak: Weak<Shared> = Arc::downgrade(self);
            let _ =
                std::thread::Builder::new().name("goodseed-pg-beat".to_owned()).spawn(move || {
                    loop {
                        std::thread::sleep(BEAT);
                        let Some(shared) = weak.upgrade() else { return };
                        shared.beat();
                    }
                });
        });
    }

    /// Proves every run this store's writers hold alive, in one statement.
    fn beat(&self) {
        let (ids, tokens): (Vec<i64>, Vec<i64>) = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(a, b)| (*a, *b))
            .unzip();
        if ids.is_empty() {
            return;
        }
        // A beat that fails (the database is away) is retried at the next one; the
        // runs read as dead only if that lasts past the staleness bound.
        if let Ok(mut conn) = self.pool().get() {
            let _ = conn.execute(
                "UPDATE goodseed_runs r SET heartbeat = now()
                 FROM unnest($1::int8[], $2::int8[]) AS w(id, writer)
                 WHERE r.id = w.id AND r.writer = w.writer",
                &[&ids, &tokens],
            );
        }
    }
}

/// A random writer token.
fn new_token(location: &str) -> Result<i64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Io {
        action: "drawing a writer token for",
        location: location.to_owned(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(i64::from_le_bytes(bytes))
}

impl RunStore for PgStore {
    fn keeps_histograms(&self) -> bool {
        true
    }

    fn watch(&self) -> Option<goodseed_store::changes::ChangeFeed> {
        Some(crate::notify::watch(&self.shared))
    }

    fn location(&self) -> String {
        self.shared.location.clone()
    }

    fn check_available(&self) -> Result<()> {
        crate::off_runtime(|| {
            let mut conn = self.conn()?;
            let version = schema::current(&mut *conn).map_err(|e| self.err(&e))?;
            if version != schema::SCHEMA_VERSION {
                return Err(StoreError::Database {
                    location: self.shared.location.clone(),
                    message: format!(
                        "the database's goodseed schema is version {version}, this goodseed's is {}",
                        schema::SCHEMA_VERSION
                    ),
                    busy: false,
                });
            }
            Ok(())
        })
    }

    fn list_projects(&self) -> Result<Vec<ProjectSummary>> {
        crate::off_runtime(|| {
            let mut conn = self.conn()?;
            let rows = conn
                .query(
                    "SELECT project, count(*), max(modified) FROM goodseed_runs
                     GROUP BY project ORDER BY max(modified) DESC, project",
                    &[],
                )
                .map_err(|e| self.err(&e))?;
            Ok(rows
                .iter()
                .map(|r| ProjectSummary {
                    name: r.get(0),
                    run_count: usize::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                    last_modified: r.get::<_, Option<SystemTime>>(2),
                })
                .collect())
        })
    }

    fn list_runs(&self, project: Option<&ProjectName>) -> Result<RunListing> {
        crate::off_runtime(|| {
            let mut conn = self.conn()?;
            // What the listing depends on: the runs and their generations (which move
            // with every change but a heartbeat), and which writers are alive (a run
            // turning stale moves nothing else). Taken before the listing, so a listing
            // kept is never older than the fingerprint kept with it.
            let alive = "r.writer IS NOT NULL AND r.heartbeat > now() - make_interval(secs => $1)";
            let fingerprint_sql = format!(
                "SELECT count(*), coalesce(bit_xor(hashint8extended(r.id, r.generation)), 0),
                        coalesce(bit_xor(hashint8extended(r.id, 0)) FILTER (WHERE {alive}), 0)
                 FROM goodseed_runs r"
            );
            let fingerprint = match project {
                Some(p) => conn.query_one(
                    &format!("{fingerprint_sql} WHERE r.project = $2"),
                    &[&stale_secs(), &p.as_str()],
                ),
                None => conn.query_one(&fingerprint_sql, &[&stale_secs()]),
            }
            .map_err(|e| self.err(&e))?;
            let fingerprint: (i64, i64, i64) =
                (fingerprint.get(0), fingerprint.get(1), fingerprint.get(2));
            let key = project.map(|p| p.as_str().to_owned());
            if let Some((kept, runs)) =
                self.shared.listings.lock().unwrap_or_else(PoisonError::into_inner).get(&key)
                && *kept == fingerprint
            {
                return Ok(RunListing { runs: runs.clone(), unreadable: Vec::new() });
            }
            // Only what moves: names and the rest come from the cached summaries.
            let cols = run_row_sql(1);
            let rows = match project {
                Some(p) => conn.query(
                    &format!("SELECT {cols} FROM goodseed_runs r WHERE r.project = $2"),
                    &[&stale_secs(), &p.as_str()],
                ),
                None => {
                    conn.query(&format!("SELECT {cols} FROM goodseed_runs r"), &[&stale_secs()])
                }
            }
            .map_err(|e| self.err(&e))?;
            let mut runs = self.summaries(&mut *conn, rows)?;
            let cached = self.shared.summaries.lock().unwrap_or_else(PoisonError::into_inner).len();
            if project.is_none() && cached > runs.len() {
                // Forget runs that are gone.
                let live: std::collections::HashSet<(&str, &str)> =
                    runs.iter().map(|r| (r.project.as_str(), r.id.as_str())).collect();
                self.shared
                    .summaries
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|_, (_, s)| live.contains(&(s.project.as_str(), s.id.as_str())));
            }
            // Newest first by created_at text, ties in (project, id) order, as the files sort.
            runs.sort_by(|a, b| {
                b.meta
                    .created_at()
                    .unwrap_or("")
                    .cmp(a.meta.created_at().unwrap_or(""))
                    .then_with(|| (&a.project, &a.id).cmp(&(&b.project, &b.id)))
            });
            let mut listings = self.shared.listings.lock().unwrap_or_else(PoisonError::into_inner);
            if listings.len() >= 64 {
                listings.clear();
            }
            listings.insert(key, (fingerprint, runs.clone()));
            Ok(RunListing { runs, unreadable: Vec::new() })
        })
    }

    fn run_summary(&self, project: &ProjectName, run_id: &RunId) -> Result<Arc<RunSummary>> {
        crate::off_runtime(|| {
            let mut conn = self.conn()?;
            let rows = conn
                .query(
                    &format!(
                        "SELECT {} FROM goodseed_runs r WHERE r.project = $2 AND r.run_id = $3",
                        run_row_sql(1)
                    ),
                    &[&stale_secs(), &project.as_str(), &run_id.as_str()],
                )
                .map_err(|e| self.err(&e))?;
            self.summaries(&mut *conn, rows)?.pop().ok_or_else(|| not_found(project, run_id))
        })
    }

    fn run_exists(&self, project: &ProjectName, run_id: &RunId) -> Result<bool> {
        crate::off_runtime(|| {
            let mut conn = self.conn()?;
            Ok(self.find(&mut *conn, project.as_str(), run_id.as_str())?.is_some())
        })
    }

    fn open_run(&self, project: &ProjectName, run_id: &RunId) -> Result<Arc<dyn RunReader>> {
        crate::off_runtime(|| {
            let mut conn = self.conn()?;
            let row = self.must_find(&mut *conn, project, run_id)?;
            let location = run_location(&self.shared.location, project.as_str(), run_id.as_str());
            let reader: Arc<dyn RunReader> = Arc::new(PgRunReader::new(
                Arc::clone(&self.shared),
                row.id,
                location,
                row.version(),
            ));
            Ok(reader)
        })
    }

    fn create_run(
        &self,
        project: &ProjectName,
        run_id: &RunId,
        first: &WriteBatch,
    ) -> Result<Box<dyn RunWriter>> {
        crate::off_runtime(|| {
            let location = run_location(&self.shared.location, project.as_str(), run_id.as_str());
            first.check_histograms()?;
            let token = new_token(&location)?;
            let mut conn = self.conn()?;
            let mut tx = conn.transaction().map_err(|e| self.err(&e))?;
            let id: Option<i64> = tx
                .query_opt(
                    "INSERT INTO goodseed_runs (project, run_id, writer, heartbeat) VALUES ($1, $2, $3, now())
                     ON CONFLICT (project, run_id) DO NOTHING RETURNING id",
                    &[&project.as_str(), &run_id.as_str(), &token],
                )
                .map_err(|e| self.err(&e))?
                .map(|r| r.get(0));
            let Some(id) = id else {
                return Err(StoreError::AlreadyExists { location });
            };
            tx.execute(
                "INSERT INTO goodseed_run_meta (run, key, value) VALUES ($1, $2, $3)",
                &[&id, &meta_key::SCHEMA_VERSION, &b"1".as_slice()],
            )
            .map_err(|e| self.err(&e))?;
            let mut writer = PgRunWriter::new(Arc::clone(&self.shared), id, token, location);
            writer.write_in(&mut tx, first, 0)?;
            tx.commit().map_err(|e| self.err(&e))?;
            drop(conn);
            writer.committed();
            Ok(self.hold(writer))
        })
    }

    fn resume_run(&self, project: &ProjectName, run_id: &RunId) -> Result<Box<dyn RunWriter>> {
        crate::off_runtime(|| {
            let location = run_location(&self.shared.location, project.as_str(), run_id.as_str());
            let token = new_token(&location)?;
            let mut conn = self.conn()?;
            let mut tx = conn.transaction().map_err(|e| self.err(&e))?;
            let sql = format!(
                "SELECT {} FROM goodseed_runs r WHERE r.project = $1 AND r.run_id = $2 FOR UPDATE",
                run_row_sql(3)
            );
            let row = tx
                .query_opt(&sql, &[&project.as_str(), &run_id.as_str(), &stale_secs()])
                .map_err(|e| self.err(&e))?
                .map(|r| RunRow::from_row(&r, 0))
                .ok_or_else(|| not_found(project, run_id))?;
            let meta: HashMap<String, String> = tx
                .query(
                    "SELECT key, value FROM goodseed_run_meta WHERE run = $1 AND key = ANY($2)",
                    &[
                        &row.id,
                        &vec![meta_key::STATUS, meta_key::WRITER_PID, meta_key::WRITER_HOST],
                    ],
                )
                .map_err(|e| self.err(&e))?
                .iter()
                .map(|r| (r.get(0), text_of(r.get(1))))
                .collect();
            let status = meta.get(meta_key::STATUS).map(String::as_str);
            let liveness = row.liveness(status);
            if row.alive || (status == Some("running") && liveness != Liveness::Dead) {
                let holder = match (meta.get(meta_key::WRITER_PID), meta.get(meta_key::WRITER_HOST))
                {
                    (Some(pid), Some(host)) => format!(" (pid {pid} on {host})"),
                    _ => " (its status is running)".to_owned(),
                };
                return Err(StoreError::Live { location, holder });
            }
            tx.execute(
                "UPDATE goodseed_runs SET writer = $2, heartbeat = now(), writer_gone = FALSE,
                     generation = generation + 1, modified = now() WHERE id = $1",
                &[&row.id, &token],
            )
            .map_err(|e| self.err(&e))?;
            tx.commit().map_err(|e| self.err(&e))?;
            let mut writer = PgRunWriter::new(Arc::clone(&self.shared), row.id, token, location);
            writer.load(&mut *conn)?;
            writer.tidy_blobs(&mut *conn);
            drop(conn);
            Ok(self.hold(writer))
        })
    }

    fn set_trashed(&self, project: &ProjectName, run_id: &RunId, trashed: bool) -> Result<()> {
        crate::off_runtime(|| {
            self.set_meta_key(project, run_id, meta_key::TRASHED, trashed.then_some("true"))
        })
    }

    fn edit_run(
        &self,
        project: &ProjectName,
        run_id: &RunId,
        edit: &goodseed_store::lifecycle::RunEdit,
    ) -> Result<()> {
        edit.check().map_err(|reason| StoreError::BadRequest { reason })?;
        crate::off_runtime(|| {
            let mut conn = self.conn()?;
            let mut tx = conn.transaction().map_err(|e| self.err(&e))?;
            // The new generation marks the rows written, as a writer's batch does.
            let row = tx
                .query_opt(
                    "UPDATE goodseed_runs SET generation = generation + 1, modified = now()
                     WHERE project = $1 AND run_id = $2 RETURNING id, generation",
                    &[&project.as_str(), &run_id.as_str()],
                )
                .map_err(|e| self.err(&e))?
                .ok_or_else(|| not_found(project, run_id))?;
            let (id, seq): (i64, i64) = (row.get(0), row.get(1));
            for (key, value) in edit.meta() {
                tx.execute(
                    "INSERT INTO goodseed_run_meta (run, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT (run, key) DO UPDATE SET value = excluded.value",
                    &[&id, &key, &value.as_bytes()],
                )
                .map_err(|e| self.err(&e))?;
            }
            for (ord, (path, value)) in edit.configs().iter().enumerate() {
                let encoded = value.encode().map(String::into_bytes);
                tx.execute(
                    "INSERT INTO goodseed_configs (run, path, type_tag, value, seq, ord, uploaded)
                     VALUES ($1, $2, $3, $4, $5, $6, FALSE)
                     ON CONFLICT (run, path) DO UPDATE SET type_tag = excluded.type_tag,
                         value = excluded.value, seq = excluded.seq, ord = excluded.ord,
                         uploaded = FALSE",
                    &[
                        &id,
                        &path.as_str(),
                        &value.type_tag(),
                        &encoded,
                        &seq,
                        &(i32::try_from(ord).unwrap_or(i32::MAX) + 1),
                    ],
                )
                .map_err(|e| self.err(&e))?;
            }
            tx.commit().map_err(|e| self.err(&e))
        })
    }

    fn request_stop(&self, project: &ProjectName, run_id: &RunId) -> Result<()> {
        crate::off_runtime(|| {
            let now = goodseed_store::lifecycle::now_iso();
            self.set_meta_key(project, run_id, meta_key::STOP_REQUESTED_AT, Some(&now))
        })
    }

    fn open_uploads(&self, project: &ProjectName, run_id: &RunId) -> Result<Box<dyn RunUploads>> {
        crate::off_runtime(|| {
            let mut conn = self.conn()?;
            let row = self.must_find(&mut *conn, project, run_id)?;
            let location = run_location(&self.shared.location, project.as_str(), run_id.as_str());
            let uploads: Box<dyn RunUploads> =
                Box::new(PgUploads::new(Arc::clone(&self.shared), row.id, location));
            Ok(uploads)
        })
    }

    fn delete_runs(&self, runs: &[RunRef]) -> Result<()> {
        crate::off_runtime(|| {
            let mut conn = self.conn()?;
            let mut tx = conn.transaction().map_err(|e| self.err(&e))?;
            let mut ids = Vec::with_capacity(runs.len());
            let sql = format!(
                "SELECT {}, EXISTS (SELECT 1 FROM goodseed_run_meta m WHERE m.run = r.id AND m.key = $4 AND m.value = 'true')
                 FROM goodseed_runs r WHERE r.project = $1 AND r.run_id = $2 FOR UPDATE",
                run_row_sql(3)
            );
            for run in runs {
                let row = tx
                    .query_opt(
                        &sql,
                        &[
                            &run.project.as_str(),
                            &run.run_id.as_str(),
                            &stale_secs(),
                            &meta_key::TRASHED,
                        ],
                    )
                    .map_err(|e| self.err(&e))?
                    .ok_or_else(|| not_found(&run.project, &run.run_id))?;
                let state = RunRow::from_row(&row, 0);
                let trashed: bool = row.get(5);
                if !trashed {
                    return Err(StoreError::NotTrashed {
                        project: run.project.to_string(),
                        run_id: run.run_id.to_string(),
                    });
                }
                if state.alive {
                    return Err(StoreError::Locked {
                        location: run_location(
                            &self.shared.location,
                            run.project.as_str(),
                            run.run_id.as_str(),
                        ),
                    });
                }
                ids.push(state.id);
            }
            // Points and buckets name their series without a foreign key (one would
            // cost a lookup per point written, see schema.rs): they go first, then the
            // runs, whose meta, configs and series cascade.
            for table in
                ["goodseed_metric_blocks", "goodseed_text_points", "goodseed_metric_pyramid"]
            {
                tx.execute(
                    &format!(
                        "DELETE FROM {table} WHERE series IN
                             (SELECT id FROM goodseed_series WHERE run = ANY($1))"
                    ),
                    &[&ids],
                )
                .map_err(|e| self.err(&e))?;
            }
            tx.execute("DELETE FROM goodseed_runs WHERE id = ANY($1)", &[&ids])
                .map_err(|e| self.err(&e))?;
            tx.commit().map_err(|e| self.err(&e))?;
            let mut cache = self.shared.summaries.lock().unwrap_or_else(PoisonError::into_inner);
            for id in &ids {
                cache.remove(id);
            }
            drop(cache);
            // The runs are gone: their files go after them.
            if let Some(root) = self.shared.blobs.get() {
                for id in ids {
                    crate::artifacts::blob_dir(root, id).remove_all()?;
                }
            }
            Ok(())
        })
    }

    fn add_artifact(
        &self,
        project: &ProjectName,
        run_id: &RunId,
        new: &goodseed_store::artifacts::NewArtifact,
    ) -> Result<i64> {
        new.check().map_err(|reason| StoreError::BadRequest { reason })?;
        crate::off_runtime(|| {
            let location = run_location(&self.shared.location, project.as_str(), run_id.as_str());
            let mut conn = self.conn()?;
            let run: i64 = conn
                .query_opt(
                    "SELECT id FROM goodseed_runs WHERE project = $1 AND run_id = $2",
                    &[&project.as_str(), &run_id.as_str()],
                )
                .map_err(|e| self.err(&e))?
                .map(|r| r.get(0))
                .ok_or_else(|| not_found(project, run_id))?;
            let mut new = new.clone();
            if new.in_place.is_none() {
                let root = self.shared.blobs.get().ok_or_else(|| StoreError::Unsupported {
                    what: "keeping files without a blob directory (GOODSEED_BLOB_DIR)",
                    location: location.clone(),
                })?;
                new.blob = crate::artifacts::blob_dir(root, run).held(
                    &new.blob.hash,
                    new.blob.size,
                    &new.name,
                    &location,
                )?;
            }
            let mut tx = conn.transaction().map_err(|e| self.err(&e))?;
            let now = goodseed_store::lifecycle::now_iso();
            crate::artifacts::write(
                &mut tx,
                run,
                &[goodseed_store::artifacts::ArtifactOp::Add(new.clone())],
                &now,
            )
            .map_err(|e| self.err(&e))?;
            let step = new.step.map_or(0.0, goodseed_core::Step::get);
            let id: i64 = tx
                .query_one(
                    "SELECT id FROM goodseed_artifacts WHERE run = $1 AND kind = $2 AND name = $3 AND step = $4",
                    &[&run, &new.kind.as_str(), &new.name, &step],
                )
                .map_err(|e| self.err(&e))?
                .get(0);
            tx.execute(
                "UPDATE goodseed_runs SET generation = generation + 1, modified = now() WHERE id = $1",
                &[&run],
            )
            .map_err(|e| self.err(&e))?;
            tx.commit().map_err(|e| self.err(&e))?;
            Ok(id)
        })
    }

    fn edit_artifact(
        &self,
        project: &ProjectName,
        run_id: &RunId,
        id: i64,
        edit: goodseed_store::artifacts::ArtifactEdit,
    ) -> Result<()> {
        crate::off_runtime(|| {
            let mut conn = self.conn()?;
            let mut tx = conn.transaction().map_err(|e| self.err(&e))?;
            let sql = format!(
                "SELECT {} FROM goodseed_runs r WHERE r.project = $1 AND r.run_id = $2 FOR UPDATE",
                run_row_sql(3)
            );
            let row = tx
                .query_opt(&sql, &[&project.as_str(), &run_id.as_str(), &stale_secs()])
                .map_err(|e| self.err(&e))?
                .ok_or_else(|| not_found(project, run_id))?;
            let state = RunRow::from_row(&row, 0);
            let location = run_location(&self.shared.location, project.as_str(), run_id.as_str());
            let Some(deleted) =
                crate::artifacts::edit(&mut tx, state.id, id, edit).map_err(|e| self.err(&e))?
            else {
                return Err(StoreError::NoSuchArtifact { what: id.to_string(), location });
            };
            tx.execute(
                "UPDATE goodseed_runs SET generation = generation + 1, modified = now() WHERE id = $1",
                &[&state.id],
            )
            .map_err(|e| self.err(&e))?;
            tx.commit().map_err(|e| self.err(&e))?;
            // A run no writer holds has its blob collected now; a held one's writer does
            // it when it lets go.
            if let (Some(hash), Some(root), false) = (deleted, self.shared.blobs.get(), state.alive)
            {
                let referenced =
                    crate::artifacts::referenced(&mut *conn, state.id).map_err(|e| self.err(&e))?;
                let blobs = crate::artifacts::blob_dir(root, state.id);
                blobs.collect(&[hash], &blobs.kept(&referenced));
            }
            Ok(())
        })
    }
}

impl PgStore {
    fn hold(&self, writer: PgRunWriter) -> Box<dyn RunWriter> {
        self.shared
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(writer.run(), writer.token());
        self.shared.start_beating();
        Box::new(writer)
    }
}
