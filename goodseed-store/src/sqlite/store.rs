//! [`SqliteStore`]: the runs under a directory, one SQLite file each, kept warm between
//! listings; the [`RunStore`] of goodseed 0.4.0's files.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, Liveness, ProjectName, RunId, RunRef, RunStatus};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use scheduled_thread_pool::ScheduledThreadPool;

use super::lock::{self, LockState, WriterLock};
use super::reader::{SqliteRunReader, paths_with_points, read_meta, version_of};
use super::schema::{self, ReadMode, shm_path, wal_path};
use super::writer::SqliteRunWriter;
use crate::error::shown;
use crate::model::{
    MEAN_OF_LAST, MetricSummary, ProjectSummary, RunListing, RunMeta, RunReader, RunStore,
    RunSummary, RunWriter, UnreadableRun, WriteBatch, meta_key,
};
use crate::{Result, StoreError};

/// How long a resolved run file is trusted before it is resolved again.
const RESOLVED_FOR: Duration = Duration::from_secs(1);

/// How many run readers (each a small connection pool) the catalog keeps open.
const MAX_CACHED_READERS: usize = 64;

/// The file a run lives in: `<root>/<project segments>/runs/<run_id>.sqlite`.
pub fn run_file_path(root: &Path, project: &ProjectName, run_id: &RunId) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(project.segments());
    path.push("runs");
    path.push(format!("{run_id}.sqlite"));
    path
}

/// How run files are laid out under the store's directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// `<root>/<project segments>/runs/<run_id>.sqlite`: goodseed's projects directory.
    Projects,
    /// `<root>/<run_id>.sqlite`: 0.4.0's `log_dir`, one directory of runs of any project
    /// (each run's project is the one its `run_meta` names).
    Flat,
}

/// The runs under a directory, one SQLite file each, in goodseed 0.4.0's format
/// ([`SqliteStore::new`]: a projects directory, `<root>/**/runs/*.sqlite`;
/// [`SqliteStore::flat`]: 0.4.0's `log_dir`, `<root>/*.sqlite`).
///
/// Listing walks the directory and stats each run file and its `-wal`; a file is only
/// opened when it is new or its size or modification time changed since the last
/// listing, so a warm listing opens nothing. Files that cannot be read are reported with
/// a reason beside the good runs. Symlinks are never followed out of the root.
pub struct SqliteStore {
    root: PathBuf,
    layout: Layout,
    walker: Walker,
    /// The catalog's index, when the store is watched ([`SqliteStore::watched`]).
    index: Option<super::index::Watched>,
    summaries: Mutex<HashMap<PathBuf, CachedSummary>>,
    /// Where a watched store keeps its summaries between starts (see `persist`).
    persist: Option<Arc<Persist>>,
    readers: Mutex<ReaderCache>,
    /// The thread the readers' pools use for their upkeep, started on first use.
    threads: OnceLock<Arc<ScheduledThreadPool>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("root", &self.root)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

/// The summaries kept on disk, and when they were last written.
#[derive(Debug)]
pub(super) struct Persist {
    path: PathBuf,
    /// Summaries changed since the last write.
    changed: std::sync::atomic::AtomicBool,
    /// A write is under way.
    saving: std::sync::atomic::AtomicBool,
    last: Mutex<Option<std::time::Instant>>,
}

/// The least time between two writes of the summaries (a first write is at once).
const PERSIST_EVERY: Duration = Duration::from_secs(60);

/// What identifies one version of a run file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fingerprint {
    pub(super) size: u64,
    pub(super) modified: SystemTime,
    pub(super) wal: Option<(u64, SystemTime)>,
}

impl Fingerprint {
    /// The newest modification time of the file and its WAL.
    fn last_write(&self) -> SystemTime {
        self.wal.map_or(self.modified, |(_, wal)| wal.max(self.modified))
    }
}

#[derive(Debug, Clone)]
pub(super) struct CachedSummary {
    pub(super) fingerprint: Fingerprint,
    pub(super) result: std::result::Result<Arc<RunSummary>, String>,
}

#[derive(Debug, Default)]
struct ReaderCache {
    clock: u64,
    entries: HashMap<PathBuf, CachedReader>,
    /// (project, run id) → the run's file, as resolved inside the root, and when.
    resolved: HashMap<(String, String), (PathBuf, std::time::Instant)>,
}

#[derive(Debug)]
struct CachedReader {
    reader: Arc<SqliteRunReader>,
    fingerprint: Fingerprint,
    last_used: u64,
}

/// A read-write connection for one short change beside any writer (waiting for its lock
/// up to the busy timeout), on a file checked to be a run.
fn open_for_change(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| schema::not_a_run(path, e))?;
    conn.busy_timeout(std::time::Duration::from_millis(schema::BUSY_TIMEOUT_MS.into()))
        .map_err(|e| StoreError::db(path, e))?;
    schema::check_is_run(&conn, path)?;
    Ok(conn)
}

/// Whether a directory the walk meets holds blobs, not runs: `<run_id>.files` beside
/// its `<run_id>.sqlite`, or the root's shared index.
fn is_blob_dir(
    root: &Path,
    dir: &Path,
    name: &OsStr,
    in_runs: bool,
    by_name: &HashMap<&OsStr, &std::fs::DirEntry>,
) -> bool {
    let name = Path::new(name);
    if in_runs && name.extension() == Some(OsStr::new("files")) {
        return by_name.contains_key(name.with_extension("sqlite").as_os_str());
    }
    dir == root.join(".goodseed-server") && name == Path::new("blobs")
}

/// Where a store's run files are, and how to find them all.
#[derive(Debug, Clone)]
pub(super) struct Walker {
    root: PathBuf,
    layout: Layout,
}

impl Walker {
    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn layout(&self) -> Layout {
        self.layout
    }

    pub(super) fn canonical_root(&self) -> Option<PathBuf> {
        std::fs::canonicalize(&self.root).ok()
    }

    /// Walks the root for `**/runs/*.sqlite`, in path order, without following links.
    ///
    /// Costs one `readdir` per directory and one `stat` per run file; the `-wal` beside a
    /// run is only stat-ed when the directory listing shows it exists (a live run).
    pub(super) fn scan(&self) -> Vec<Found> {
        let Some(root) = self.canonical_root() else {
            return Vec::new();
        };
        let mut found = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            let Ok(read) = std::fs::read_dir(&dir) else { continue };
            let entries: Vec<(OsString, std::fs::FileType, std::fs::DirEntry)> = read
                .flatten()
                .filter_map(|e| Some((e.file_name(), e.file_type().ok()?, e)))
                .collect();
            let in_runs = match self.layout {
                Layout::Projects => dir.file_name() == Some(OsStr::new("runs")),
                Layout::Flat => dir == root,
            };
            let by_name: HashMap<&OsStr, &std::fs::DirEntry> = if in_runs {
                entries.iter().map(|(n, _, e)| (n.as_os_str(), e)).collect()
            } else {
                HashMap::new()
            };
            for (name, file_type, entry) in &entries {
                if file_type.is_dir() {
                    if self.layout == Layout::Projects
                        && !is_blob_dir(&root, &dir, name, in_runs, &by_name)
                    {
                        dirs.push(dir.join(name));
                    }
                    continue;
                }
                if !in_runs || Path::new(name).extension() != Some(OsStr::new("sqlite")) {
                    continue;
                }
                let at = dir.join(name);
                let kind = if file_type.is_symlink() {
                    Entry::Symlink
                } else {
                    // Stat-ed through the open directory (no walk of the whole path),
                    // and the `-wal` only when the listing shows one.
                    let wal = by_name.get(wal_path(Path::new(name)).as_os_str());
                    Entry::File(stamp(entry.metadata(), wal.map(|e| e.metadata())))
                };
                if let Some(f) = self.found(&root, at, kind) {
                    found.push(f);
                }
            }
        }
        found.sort_by(|a, b| a.relative.cmp(&b.relative));
        found
    }

    /// Describes one `runs/*.sqlite` entry found by [`SqliteStore::scan`].
    pub(super) fn found(&self, root: &Path, at: PathBuf, kind: Entry) -> Option<Found> {
        let is_symlink = matches!(kind, Entry::Symlink);
        let relative = at.strip_prefix(root).unwrap_or(&at).to_path_buf();
        // A flat directory's runs take their project from their `run_meta` when read.
        let project = match self.layout {
            Layout::Projects => relative
                .parent()
                .and_then(Path::parent)
                .unwrap_or(Path::new(""))
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
            Layout::Flat => String::new(),
        };
        let stem = at.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        let unaddressable = self.unaddressable(&relative, &project, &stem);
        let mut path = at.clone();
        let state = match kind {
            _ if project.is_empty() && self.layout == Layout::Projects => {
                Err("run file directly under the data directory's runs/ has no project".to_owned())
            }
            _ if unaddressable.is_some() => Err(unaddressable.unwrap_or_default()),
            Entry::Symlink => match std::fs::canonicalize(&at) {
                Ok(target) if target.starts_with(root) => {
                    path = target;
                    let has_wal = wal_path(&path).exists();
                    fingerprint(&path, has_wal).map_err(|e| format!("cannot read file: {e}"))
                }
                Ok(_) => Err("symlink leads outside the data directory".to_owned()),
                Err(_) => Err("broken symlink".to_owned()),
            },
            Entry::File(stamp) => stamp.map_err(|e| format!("cannot read file: {e}")),
        };
        if is_symlink && state.is_ok() && !path.is_file() {
            return None; // a link to a directory or device named like a run
        }
        Some(Found { at, path, relative, project, stem, state })
    }

    /// Why a run file found at `relative` cannot be addressed (opened, trashed, stopped:
    /// every request names a run by a valid project name and run id), if it cannot.
    fn unaddressable(&self, relative: &Path, project: &str, stem: &str) -> Option<String> {
        if relative.to_str().is_none() {
            return Some("its path is not UTF-8, so it cannot be addressed".to_owned());
        }
        if let Err(e) = RunId::parse(stem) {
            return Some(format!("its file name cannot be addressed: {e}"));
        }
        if self.layout == Layout::Projects
            && let Err(e) = ProjectName::parse(project)
        {
            return Some(format!("its folder cannot be addressed: {e}"));
        }
        None
    }
}

/// One `**/runs/*.sqlite` found by the walk.
#[derive(Debug)]
pub(super) struct Found {
    /// Where it was found: the cache key.
    pub(super) at: PathBuf,
    /// Where to open it (the symlink's target for a symlink).
    pub(super) path: PathBuf,
    pub(super) relative: PathBuf,
    pub(super) project: String,
    stem: String,
    pub(super) state: std::result::Result<Fingerprint, String>,
}

/// The entry of one run file as [`Walker::found`] takes it (`None` when it is gone).
pub(super) fn scan_entry(at: &Path) -> Option<Entry> {
    let meta = std::fs::symlink_metadata(at).ok()?;
    if meta.file_type().is_symlink() {
        return Some(Entry::Symlink);
    }
    let wal = match std::fs::symlink_metadata(wal_path(at)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        other => Some(other),
    };
    Some(Entry::File(stamp(Ok(meta), wal)))
}

/// A `runs/*.sqlite` directory entry, as the scan found it.
pub(super) enum Entry {
    /// A symlink, resolved (and checked) later.
    Symlink,
    /// A file, with its stamp (from the directory entry and its `-wal` entry, if any).
    File(std::io::Result<Fingerprint>),
}

/// A fingerprint from the metadata of a run file and of its `-wal`, if there is one.
fn stamp(
    meta: std::io::Result<std::fs::Metadata>,
    wal: Option<std::io::Result<std::fs::Metadata>>,
) -> std::io::Result<Fingerprint> {
    let meta = meta?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let wal =
        wal.and_then(Result::ok).map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
    Ok(Fingerprint {
        size: meta.len(),
        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        wal,
    })
}

/// Stats a run file, and its `-wal` when one may exist.
fn fingerprint(path: &Path, has_wal: bool) -> std::io::Result<Fingerprint> {
    let meta = std::fs::metadata(path)?;
    let wal = if has_wal {
        std::fs::metadata(wal_path(path))
            .ok()
            .map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
    } else {
        None
    };
    Ok(Fingerprint {
        size: meta.len(),
        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        wal,
    })
}

impl SqliteStore {
    /// The store of a projects directory, `<root>/<project>/runs/<run_id>.sqlite`. The
    /// directory need not exist yet; it is created when the first run is.
    pub fn new(root: impl Into<PathBuf>) -> SqliteStore {
        SqliteStore::with_layout(root.into(), Layout::Projects)
    }

    /// The store of one directory of run files, `<dir>/<run_id>.sqlite`, as goodseed
    /// 0.4.0's `log_dir` keeps them: runs of any project side by side, each found by its
    /// id alone (the project asked for is not part of the file's name).
    pub fn flat(dir: impl Into<PathBuf>) -> SqliteStore {
        SqliteStore::with_layout(dir.into(), Layout::Flat)
    }

    fn with_layout(root: PathBuf, layout: Layout) -> SqliteStore {
        SqliteStore {
            walker: Walker { root: root.clone(), layout },
            index: None,
            root,
            layout,
            summaries: Mutex::new(HashMap::new()),
            persist: None,
            readers: Mutex::new(ReaderCache::default()),
            threads: OnceLock::new(),
        }
    }

    /// The same store, listing from an index in memory kept current by file-system
    /// notifications (see the `index` module): what a long-running server wants, where
    /// a listing of 100,000 runs must not walk the directory. Any change is seen by the
    /// next listing when it is this process's (or a new run's, or a live run's), within
    /// milliseconds when notified, and within [`RECONCILE_EVERY`] otherwise. While the
    /// directory cannot be watched (see [`SqliteStore::watch_problem`]: it does not
    /// exist yet, say), listings walk it as an unwatched store's do, and watching starts
    /// once it can.
    ///
    /// [`RECONCILE_EVERY`]: crate::sqlite::RECONCILE_EVERY
    #[must_use]
    pub fn watched(self) -> SqliteStore {
        self.watched_reconciling_every(super::index::RECONCILE_EVERY)
    }

    /// [`SqliteStore::watched`], walking the whole directory for what notifications
    /// missed every `every` instead of every [`RECONCILE_EVERY`] (a file system whose
    /// notifications are unreliable; tests).
    ///
    /// [`RECONCILE_EVERY`]: crate::sqlite::RECONCILE_EVERY
    #[must_use]
    pub fn watched_reconciling_every(mut self, every: Duration) -> SqliteStore {
        // The summaries a server over this directory read before: files unchanged since
        // are not read again.
        let path = super::persist::path_in(&self.root);
        *self.summaries.get_mut().unwrap_or_else(PoisonError::into_inner) =
            super::persist::load(&path);
        self.persist = Some(Arc::new(Persist {
            path,
            changed: Default::default(),
            saving: Default::default(),
            last: Mutex::new(None),
        }));
        self.index = Some(super::index::Watched::start(self.walker.clone(), every));
        self
    }

    /// Writes the summaries to disk (on a thread of its own) when they changed and the
    /// last write is old enough.
    fn persist_soon(&self, cache: &HashMap<PathBuf, CachedSummary>) {
        use std::sync::atomic::Ordering::SeqCst;
        let Some(p) = &self.persist else { return };
        if !p.changed.load(SeqCst) {
            return;
        }
        let due = p
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none_or(|t| t.elapsed() >= PERSIST_EVERY);
        if !due || p.saving.swap(true, SeqCst) {
            return;
        }
        p.changed.store(false, SeqCst);
        let snapshot = cache.clone();
        let p = Arc::clone(p);
        std::thread::spawn(move || {
            // A cache: a failure to write it costs the next start a read of each run.
            let _ = super::persist::save(&p.path, &snapshot);
            *p.last.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(std::time::Instant::now());
            p.saving.store(false, SeqCst);
        });
    }

    /// Why a [`SqliteStore::watched`] store does not watch its directory (yet), if it
    /// does not.
    pub fn watch_problem(&self) -> Option<String> {
        self.index.as_ref().and_then(super::index::Watched::problem)
    }

    /// Tells the index (if any) that this process changed a run file.
    fn touched(&self, file: &Path) {
        if let Some(index) = &self.index {
            index.touched(file);
        }
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file a run is (or would be) kept in.
    pub fn run_file(&self, project: &ProjectName, run_id: &RunId) -> PathBuf {
        self.file_under(&self.root, project, run_id)
    }

    fn file_under(&self, root: &Path, project: &ProjectName, run_id: &RunId) -> PathBuf {
        match self.layout {
            Layout::Projects => run_file_path(root, project, run_id),
            Layout::Flat => root.join(format!("{run_id}.sqlite")),
        }
    }

    fn threads(&self) -> Arc<ScheduledThreadPool> {
        let pool = self.threads.get_or_init(|| {
            Arc::new(
                ScheduledThreadPool::builder()
                    .num_threads(1)
                    .thread_name_pattern("goodseed-pool-{}")
                    .build(),
            )
        });
        Arc::clone(pool)
    }

    /// The summary of every file found (in the same order): from the cache when its
    /// fingerprint is unchanged, else read (in parallel); the reason for one that cannot
    /// be read; `None` for one that vanished meanwhile. With `complete` (`found` is every
    /// run file), the cache forgets files that are gone.
    pub(super) fn summaries_of(
        &self,
        found: &[Found],
        complete: bool,
    ) -> Vec<Option<std::result::Result<Arc<RunSummary>, String>>> {
        // Which files need (re)reading?
        // With the summary before, for a live run's metrics to be read incrementally.
        let mut todo: Vec<(usize, Option<Arc<RunSummary>>)> = Vec::new();
        {
            let cache = self.summaries.lock().unwrap_or_else(PoisonError::into_inner);
            for (i, f) in found.iter().enumerate() {
                if let Ok(fp) = f.state {
                    match cache.get(&f.at) {
                        Some(c) if c.fingerprint == fp => {}
                        Some(c) => todo.push((i, c.result.as_ref().ok().cloned())),
                        None => todo.push((i, None)),
                    }
                }
            }
        }

        // Read them in parallel, without holding the cache lock.
        let loaded: Vec<Mutex<Option<CachedSummary>>> =
            todo.iter().map(|_| Mutex::new(None)).collect();
        if !todo.is_empty() {
            let next = AtomicUsize::new(0);
            let workers = std::thread::available_parallelism()
                .map_or(2, usize::from)
                .min(todo.len().div_ceil(8))
                .max(1);
            std::thread::scope(|s| {
                for _ in 0..workers {
                    s.spawn(|| {
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            let Some((i, before)) = todo.get(k) else { break };
                            let f = &found[*i];
                            let Ok(fp) = f.state else { continue };
                            let result = load_summary(f, fp, before.as_deref()).map(Arc::new);
                            *loaded[k].lock().unwrap_or_else(PoisonError::into_inner) =
                                Some(CachedSummary { fingerprint: fp, result });
                        }
                    });
                }
            });
        }

        let mut cache = self.summaries.lock().unwrap_or_else(PoisonError::into_inner);
        let before = cache.len();
        // What a restart would use changed: a closed run read (live ones are read again
        // after a restart anyway), or runs gone.
        let mut closed_read = false;
        for ((k, _), slot) in todo.iter().zip(loaded) {
            if let Some(entry) = slot.into_inner().unwrap_or_else(PoisonError::into_inner) {
                closed_read |=
                    entry.result.as_ref().is_ok_and(|s| s.meta.status() != Some("running"));
                cache.insert(found[*k].at.clone(), entry);
            }
        }
        if complete {
            // Forget files that are gone.
            let live: std::collections::HashSet<&Path> =
                found.iter().map(|f| f.at.as_path()).collect();
            cache.retain(|p, _| live.contains(p.as_path()));
        }
        if let Some(p) = &self.persist
            && (closed_read || cache.len() < before)
        {
            p.changed.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        self.persist_soon(&cache);

        found
            .iter()
            .map(|f| match &f.state {
                Ok(_) => cache.get(&f.at).map(|c| c.result.clone()),
                Err(reason) => Some(Err(reason.clone())),
            })
            .collect()
    }

    fn canonical_root(&self) -> Option<PathBuf> {
        self.walker.canonical_root()
    }

    fn scan(&self) -> Vec<Found> {
        self.walker.scan()
    }

    /// Resolves a run's file, refusing anything that is missing or leaves the root.
    fn resolve(&self, project: &ProjectName, run_id: &RunId) -> Result<PathBuf> {
        let not_found =
            || StoreError::NotFound { project: project.to_string(), run_id: run_id.to_string() };
        let root = self.canonical_root().ok_or_else(not_found)?;
        let path = self.file_under(&root, project, run_id);
        let real = std::fs::canonicalize(&path).map_err(|_| not_found())?;
        if !real.starts_with(&root) {
            return Err(StoreError::OutsideRoot { what: format!("run {project}/{run_id}") });
        }
        if !real.is_file() {
            return Err(not_found());
        }
        Ok(real)
    }

    /// Where a run's directory entry is: its directory resolved (so a linked project
    /// directory inside the root is followed), its file name not (so a run file that is
    /// a symlink is the link itself). Call after [`SqliteStore::resolve`] succeeded.
    fn entry_path(&self, project: &ProjectName, run_id: &RunId) -> Result<PathBuf> {
        let not_found =
            || StoreError::NotFound { project: project.to_string(), run_id: run_id.to_string() };
        let root = self.canonical_root().ok_or_else(not_found)?;
        let path = self.file_under(&root, project, run_id);
        let dir =
            path.parent().and_then(|d| std::fs::canonicalize(d).ok()).ok_or_else(not_found)?;
        if !dir.starts_with(&root) {
            return Err(StoreError::OutsideRoot { what: format!("run {project}/{run_id}") });
        }
        Ok(dir.join(format!("{run_id}.sqlite")))
    }

    /// Sets one `run_meta` key (or deletes it, for `None`) in one short transaction:
    /// the only change the catalog makes to a run besides deleting a trashed one.
    fn set_meta_key(
        &self,
        project: &ProjectName,
        run_id: &RunId,
        key: &str,
        value: Option<&str>,
    ) -> Result<()> {
        let path = self.resolve(project, run_id)?;
        // Our own readers must not hold the file, or the WAL this write makes would
        // outlive it.
        self.forget_reader(&path);
        let db = |e| StoreError::db(&path, e);
        let mut conn = open_for_change(&path)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        match value {
            Some(v) => {
                tx.execute("INSERT OR REPLACE INTO run_meta (key, value) VALUES (?1, ?2)", [key, v])
            }
            None => tx.execute("DELETE FROM run_meta WHERE key = ?1", [key]),
        }
        .map_err(db)?;
        tx.commit().map_err(db)?;
        let closed = conn.close().map_err(|(_, e)| db(e));
        self.touched(&path);
        closed
    }

    /// The blobs of the run kept in `path`, sharing identical files under the root.
    fn blobs_of(&self, path: &Path) -> crate::blobs::BlobDir {
        let root = self.canonical_root().unwrap_or_else(|| self.root.clone());
        crate::blobs::BlobDir::new(
            super::artifacts::blob_dir_of(path),
            Some(super::artifacts::blob_index_of(&root)),
        )
    }

    fn forget_reader(&self, path: &Path) {
        let mut cache = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        cache.entries.remove(path);
        cache.resolved.retain(|_, (p, _)| p != path);
    }

    fn forget_summary(&self, path: &Path) {
        self.summaries.lock().unwrap_or_else(PoisonError::into_inner).remove(path);
    }
}

/// Removes a file, taking one that is already gone as removed.
fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io("deleting", path, e)),
    }
}

/// A writer on another host whose heartbeat is older than this is taken as dead.
pub const HEARTBEAT_STALE_AFTER: Duration = Duration::from_secs(60);

/// A `running` run with no way to tell whether its writer lives (goodseed 0.4.0's, which
/// leaves no lock and sends no heartbeat) is shown as stale once it has not been written
/// for this long: a trainer logs far more often, so its writer was most likely killed.
/// It shows as running again as soon as it is written.
pub const STALE_AFTER: Duration = Duration::from_secs(15 * 60);

/// Whether a run's writer is alive, for a run stored as `running`.
///
/// On this host the writer lock decides: held means live, present but free means the
/// writer died. A run written from another host (a shared directory) has no lock we can
/// see; there a heartbeat older than [`HEARTBEAT_STALE_AFTER`] means dead. A run with
/// neither (written by goodseed 0.4.0) is `Unknown`, or `Stale` once its last write
/// (when given) is older than [`STALE_AFTER`].
pub(crate) fn liveness(
    run_file: &Path,
    meta: &RunMeta,
    now: SystemTime,
    last_write: Option<SystemTime>,
) -> Liveness {
    if meta.status() != Some("running") {
        return Liveness::Unknown;
    }
    match lock::probe(run_file) {
        LockState::Held => Liveness::Live,
        LockState::Abandoned => Liveness::Dead,
        LockState::Absent => {
            let host = meta.get(meta_key::WRITER_HOST);
            let beat = meta.get(meta_key::HEARTBEAT_AT).and_then(UtcMicros::parse_iso8601);
            match (host, beat) {
                (Some(h), Some(beat)) if h != crate::host_name() => {
                    let age = UtcMicros::from(now).0.saturating_sub(beat.0);
                    if age > HEARTBEAT_STALE_AFTER.as_micros() as i64 {
                        Liveness::Dead
                    } else {
                        Liveness::Live
                    }
                }
                _ if last_write
                    .is_some_and(|t| now.duration_since(t).is_ok_and(|age| age > STALE_AFTER)) =>
                {
                    Liveness::Stale
                }
                _ => Liveness::Unknown,
            }
        }
    }
}

/// The summary with its status derived afresh: a writer can die without the file
/// changing, so a cached summary of a running run is re-checked on every listing.
pub(super) fn with_fresh_status(
    summary: Arc<RunSummary>,
    path: &Path,
    now: SystemTime,
) -> Arc<RunSummary> {
    if summary.meta.status() != Some("running") {
        return summary;
    }
    let last_write = summary.last_write.map(SystemTime::from);
    let alive = liveness(path, &summary.meta, now, last_write);
    if alive == summary.liveness {
        return summary;
    }
    let mut fresh = (*summary).clone();
    fresh.liveness = alive;
    fresh.status = RunStatus::derive(fresh.meta.status(), alive);
    Arc::new(fresh)
}

/// Reads what a listing shows of one run file.
fn load_summary(
    found: &Found,
    fingerprint: Fingerprint,
    previous: Option<&RunSummary>,
) -> std::result::Result<RunSummary, String> {
    if fingerprint.size == 0 && fingerprint.wal.is_none_or(|(size, _)| size == 0) {
        return Err("empty file (0 bytes)".to_owned());
    }
    let mode = ReadMode::for_stamp(&found.path, fingerprint.wal.map(|(size, _)| size));
    let conn = schema::open_reader(&found.path, mode).map_err(|e| reason(&e))?;
    schema::check_is_run(&conn, &found.path).map_err(|e| reason(&e))?;
    let read = |conn: &Connection| -> rusqlite::Result<_> {
        Ok((
            read_meta(conn)?,
            paths_with_points(conn, "metric_series", "metric_points")?,
            paths_with_points(conn, "string_series", "string_points")?,
            read_tags(conn)?,
            read_short_configs(conn)?,
        ))
    };
    let (meta, metric_paths, text_paths, tags, configs) =
        read(&conn).map_err(|e| reason(&schema::not_a_run(&found.path, e)))?;
    // A live run's series are summarised from what was added since the summary before
    // (appended steps); a closed run's afresh, once per version.
    // They read every point: a damaged page among them leaves the run listed without
    // them (`doctor` and `integrity_check` say what is wrong), not unreadable.
    let before = previous.filter(|_| mode != ReadMode::Closed);
    let metrics = read_metric_summaries(&conn, &metric_paths, before).unwrap_or_default();
    // Clients address a run by the project and run id the listing shows: both must
    // pass the rules every request is held to.
    let run_id = meta.run_id().unwrap_or(&found.stem);
    if let Err(e) = RunId::parse(run_id) {
        return Err(format!("the run id its run_meta holds cannot be addressed: {e}"));
    }
    let project = if found.project.is_empty() {
        // A flat directory: the project the run says it belongs to.
        let project = meta.get(meta_key::PROJECT).unwrap_or(DEFAULT_PROJECT);
        if let Err(e) = ProjectName::parse(project) {
            return Err(format!("the project its run_meta holds cannot be addressed: {e}"));
        }
        project.to_owned()
    } else {
        found.project.clone()
    };
    let last_write = fingerprint.last_write();
    let liveness = liveness(&found.path, &meta, SystemTime::now(), Some(last_write));
    let version = (mode == ReadMode::Closed)
        .then(|| version_of(&found.path, fingerprint.size, fingerprint.modified));
    Ok(RunSummary {
        project,
        id: found.stem.clone(),
        run_id: run_id.to_owned(),
        status: RunStatus::derive(meta.status(), liveness),
        liveness,
        meta,
        metric_paths,
        text_paths,
        tags,
        version,
        location: found.location(),
        last_write: Some(UtcMicros::from(last_write)),
        configs,
        metrics,
    })
}

/// Each metric series at a glance (see [`MetricSummary`]): per series, a few lookups on
/// the points' primary key (the newest points) and a min and a max over the points
/// after `before`'s last step (all of them without `before`), merged with `before`'s.
/// Points written again at a step before that are seen once the run is closed.
fn read_metric_summaries(
    conn: &Connection,
    paths: &[String],
    before: Option<&RunSummary>,
) -> rusqlite::Result<Vec<(String, MetricSummary)>> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let nan = schema::has_table(conn, schema::NAN_TABLE)?;
    let mut id_of = conn.prepare_cached("SELECT id FROM metric_series WHERE path = ?1")?;
    // Finite: not infinite (a NaN is kept in the NaN table, not here).
    const FINITE: &str = "abs(y) < 9e999";
    let mut min = conn.prepare_cached(&format!(
        "SELECT MIN(y), step FROM metric_points WHERE series_id = ?1 AND step > ?2 AND {FINITE}"
    ))?;
    let mut max = conn.prepare_cached(&format!(
        "SELECT MAX(y), step FROM metric_points WHERE series_id = ?1 AND step > ?2 AND {FINITE}"
    ))?;
    let mut count = conn.prepare_cached(&format!(
        "SELECT COUNT(*) FROM metric_points WHERE series_id = ?1 AND step > ?2 AND {FINITE}"
    ))?;
    let mut newest = conn.prepare_cached(
        "SELECT step, y FROM metric_points WHERE series_id = ?1 ORDER BY step DESC LIMIT 1",
    )?;
    let mut newest_finite = conn.prepare_cached(&format!(
        "SELECT y FROM metric_points WHERE series_id = ?1 AND {FINITE} ORDER BY step DESC LIMIT ?2"
    ))?;
    let mut newest_nan = if nan {
        Some(conn.prepare_cached(&format!(
            "SELECT MAX(step) FROM {} WHERE series_id = ?1",
            schema::NAN_TABLE
        ))?)
    } else {
        None
    };
    let mut out = Vec::with_capacity(paths.len());
    for path in paths.iter().filter(|p| MetricSummary::covers(p)) {
        let Some(id) = id_of.query_row([path], |r| r.get::<_, i64>(0)).optional()? else {
            continue;
        };
        let old = before.and_then(|b| {
            b.metrics.binary_search_by(|(p, _)| p.cmp(path)).ok().map(|i| b.metrics[i].1)
        });
        let after = old.map_or(f64::NEG_INFINITY, |o| o.last_step);
        let extreme = |stmt: &mut rusqlite::CachedStatement<'_>| -> rusqlite::Result<(f64, f64)> {
            stmt.query_row(rusqlite::params![id, after], |r| {
                Ok((
                    r.get::<_, Option<f64>>(0)?.unwrap_or(f64::NAN),
                    r.get::<_, Option<f64>>(1)?.unwrap_or(f64::NAN),
                ))
            })
        };
        let (mut lo, mut lo_step) = extreme(&mut min)?;
        let (mut hi, mut hi_step) = extreme(&mut max)?;
        let mut finite: u64 =
            count.query_row(rusqlite::params![id, after], |r| r.get::<_, i64>(0))?.max(0) as u64;
        if let Some(o) = old {
            // The new points' extreme wins only when strictly better (ties keep the
            // earlier step: the first time the value was reached), or when there was
            // none before.
            let lower = !lo.is_nan() && (o.min.is_nan() || lo < o.min);
            if !lower {
                (lo, lo_step) = (o.min, o.min_step);
            }
            let higher = !hi.is_nan() && (o.max.is_nan() || hi > o.max);
            if !higher {
                (hi, hi_step) = (o.max, o.max_step);
            }
            finite += o.finite;
        }
        let (mut last_step, mut last) = newest
            .query_row([id], |r| {
                Ok((r.get::<_, f64>(0)?, r.get::<_, Option<f64>>(1)?.unwrap_or(f64::NAN)))
            })
            .optional()?
            .unwrap_or((f64::NEG_INFINITY, f64::NAN));
        if let Some(stmt) = newest_nan.as_mut()
            && let Some(step) = stmt.query_row([id], |r| r.get::<_, Option<f64>>(0))?
            && step > last_step
        {
            (last_step, last) = (step, f64::NAN);
        }
        let values = newest_finite
            .query_map(rusqlite::params![id, MEAN_OF_LAST as i64], |r| r.get::<_, f64>(0))?
            .collect::<rusqlite::Result<Vec<f64>>>()?;
        // Summed oldest first, as `MetricSummary::of_points` does: the same float.
        let mean_last = if values.is_empty() {
            f64::NAN
        } else {
            values.iter().rev().sum::<f64>() / values.len() as f64
        };
        out.push((
            path.clone(),
            MetricSummary {
                last_step,
                last,
                min: lo,
                min_step: lo_step,
                max: hi,
                max_step: hi_step,
                mean_last,
                finite,
            },
        ));
    }
    Ok(out)
}

/// The configs a summary keeps: those stored in at most `SUMMARY_CONFIG_MAX` bytes, by
/// path.
fn read_short_configs(conn: &Connection) -> rusqlite::Result<Vec<(String, ConfigValue)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT path, type_tag, value FROM configs WHERE value IS NULL OR length(CAST(value AS BLOB)) <= ?1",
    )?;
    let rows = stmt.query_map([crate::model::SUMMARY_CONFIG_MAX as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (path, tag, value) = row?;
        out.push((path, ConfigValue::decode(&tag, value.as_deref())));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The project of a run in a flat directory whose `run_meta` names none: 0.4.0's.
const DEFAULT_PROJECT: &str = "default";

impl Found {
    /// What a listing says of this file when it cannot be read.
    pub(super) fn unreadable(&self, reason: String) -> UnreadableRun {
        UnreadableRun {
            location: self.location(),
            project: self.project.clone(),
            id: self.stem.clone(),
            reason,
        }
    }

    /// The run's place relative to the store's directory, for people to read.
    fn location(&self) -> String {
        self.relative.to_string_lossy().into_owned()
    }
}

/// The `sys/tags` config as a sorted list: one lookup on the `configs` primary key.
/// Empty when there is no such config or it is not a string set.
fn read_tags(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT type_tag, value FROM configs WHERE path = 'sys/tags'")?;
    let row = stmt
        .query_row([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)))
        .optional()?;
    Ok(match row.map(|(tag, value)| ConfigValue::decode(&tag, value.as_deref())) {
        Some(ConfigValue::StringSet(set)) => set.into_iter().collect(),
        _ => Vec::new(),
    })
}

/// A short reason for a listing, without the file path (the listing names the file).
fn reason(err: &StoreError) -> String {
    match err {
        StoreError::NotARun { reason, .. } => reason.clone(),
        StoreError::Database { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn micros(t: SystemTime) -> UtcMicros {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => UtcMicros::from_unix_float_parts(d.as_secs() as i64, d.subsec_nanos()),
        Err(_) => UtcMicros::from(t),
    }
}

impl RunStore for SqliteStore {
    fn keeps_histograms(&self) -> bool {
        true
    }

    fn location(&self) -> String {
        shown(&self.root)
    }

    fn check_available(&self) -> Result<()> {
        match std::fs::metadata(&self.root) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(StoreError::io(
                "the data directory is not a directory:",
                &self.root,
                std::io::Error::other("not a directory"),
            )),
            Err(e) => Err(StoreError::io("cannot read the data directory", &self.root, e)),
        }
    }

    fn list_projects(&self) -> Result<Vec<ProjectSummary>> {
        if self.layout == Layout::Flat {
            return Ok(flat_projects(&self.list_runs(None)?));
        }
        if let Some(mut projects) = self.index.as_ref().and_then(|i| i.projects(self)) {
            projects.sort_by_key(|p| std::cmp::Reverse(p.last_modified.map(micros)));
            return Ok(projects);
        }
        let mut projects: Vec<ProjectSummary> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for found in self.scan() {
            let i = *index.entry(found.project.clone()).or_insert_with(|| {
                projects.push(ProjectSummary {
                    name: found.project.clone(),
                    run_count: 0,
                    last_modified: None,
                });
                projects.len() - 1
            });
            let p = &mut projects[i];
            p.run_count += 1;
            if let Ok(f) = found.state {
                p.last_modified = p.last_modified.max(Some(f.modified));
            }
        }
        // Most recent first; ties keep path order (0.4.0 compares microsecond text).
        projects.sort_by_key(|p| std::cmp::Reverse(p.last_modified.map(micros)));
        Ok(projects)
    }

    fn list_runs(&self, project: Option<&ProjectName>) -> Result<RunListing> {
        if let Some(listing) = self.index.as_ref().and_then(|i| i.listing(self, project)) {
            return Ok(listing);
        }
        let mut found = self.scan();
        if let Some(p) = project
            && self.layout == Layout::Projects
        {
            found.retain(|f| f.project == p.as_str());
        }
        let outcomes = self.summaries_of(&found, project.is_none() || self.layout == Layout::Flat);
        let mut listing = RunListing::default();
        let now = SystemTime::now();
        for (f, outcome) in found.iter().zip(outcomes) {
            match outcome {
                Some(Ok(summary)) => listing.runs.push(with_fresh_status(summary, &f.path, now)),
                Some(Err(reason)) => listing.unreadable.push(f.unreadable(reason)),
                None => {}
            }
        }
        if let Some(p) = project
            && self.layout == Layout::Flat
        {
            listing.runs.retain(|r| r.project == p.as_str());
            listing.unreadable.clear();
        }
        // Newest first by created_at text, ties in path order, as 0.4.0 sorts.
        listing.runs.sort_by(|a, b| {
            b.meta.created_at().unwrap_or("").cmp(a.meta.created_at().unwrap_or(""))
        });
        Ok(listing)
    }

    fn open_run(&self, project: &ProjectName, run_id: &RunId) -> Result<Arc<dyn RunReader>> {
        // Resolving (a `realpath` of every component) is most of the cost of a request
        // for a cached answer, so the resolved file is remembered with its reader. It
        // was inside the root when resolved; a file that vanished is resolved again.
        // It is trusted for at most a second, and only while it is still a regular file
        // (not a symlink swapped in since), so nothing can lead reads out of the root.
        let key = (project.to_string(), run_id.to_string());
        let known = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .resolved
            .get(&key)
            .filter(|(_, at)| at.elapsed() < RESOLVED_FOR)
            .map(|(p, _)| p.clone())
            .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file()));
        let (path, now) = match known.and_then(|p| fingerprint(&p, true).ok().map(|f| (p, f))) {
            Some(found) => found,
            None => {
                let path = self.resolve(project, run_id)?;
                let now =
                    fingerprint(&path, true).map_err(|e| StoreError::io("reading", &path, e))?;
                let mut cache = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
                if cache.resolved.len() >= 4 * MAX_CACHED_READERS {
                    cache.resolved.clear();
                }
                cache.resolved.insert(key, (path.clone(), std::time::Instant::now()));
                (path, now)
            }
        };
        {
            let mut cache = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
            cache.clock += 1;
            let clock = cache.clock;
            if let Some(entry) = cache.entries.get_mut(&path) {
                // An immutable reader is only good while the file is unchanged; a live
                // reader is dropped once the run closes, so it stops holding the WAL.
                let fresh = if entry.reader.opened_closed() {
                    now == entry.fingerprint
                } else {
                    ReadMode::for_stamp(&path, now.wal.map(|(size, _)| size)) == ReadMode::Live
                };
                if fresh {
                    entry.last_used = clock;
                    return Ok(entry.reader.clone());
                }
                cache.entries.remove(&path);
            }
        }
        let reader = Arc::new(SqliteRunReader::open_with(&path, Some(self.threads()))?);
        let mut cache = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.entries.len() >= MAX_CACHED_READERS {
            let oldest =
                cache.entries.iter().min_by_key(|(_, e)| e.last_used).map(|(p, _)| p.clone());
            if let Some(p) = oldest {
                cache.entries.remove(&p);
            }
        }
        let last_used = cache.clock;
        cache
            .entries
            .insert(path, CachedReader { reader: reader.clone(), fingerprint: now, last_used });
        Ok(reader)
    }

    fn set_trashed(&self, project: &ProjectName, run_id: &RunId, trashed: bool) -> Result<()> {
        self.set_meta_key(project, run_id, meta_key::TRASHED, trashed.then_some("true"))
    }

    fn edit_run(
        &self,
        project: &ProjectName,
        run_id: &RunId,
        edit: &crate::lifecycle::RunEdit,
    ) -> Result<()> {
        edit.check().map_err(|reason| StoreError::BadRequest { reason })?;
        let path = self.resolve(project, run_id)?;
        self.forget_reader(&path);
        let db = |e| StoreError::db(&path, e);
        let mut conn = open_for_change(&path)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        for (key, value) in edit.meta() {
            tx.execute(
                "INSERT OR REPLACE INTO run_meta (key, value) VALUES (?1, ?2)",
                [key, &value],
            )
            .map_err(db)?;
        }
        let now = UtcMicros::from(SystemTime::now()).to_iso8601();
        for (p, value) in edit.configs() {
            // A new row: its `uploaded` mark is cleared, so a sync sends the edit.
            tx.execute(
                "INSERT OR REPLACE INTO configs (path, type_tag, value, updated_at)
                 VALUES (?1, ?2, ?3, ?4)",
                (p.as_str(), value.type_tag(), value.encode(), &now),
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        let closed = conn.close().map_err(|(_, e)| db(e));
        self.touched(&path);
        closed
    }

    fn request_stop(&self, project: &ProjectName, run_id: &RunId) -> Result<()> {
        let now = UtcMicros::from(SystemTime::now()).to_iso8601();
        self.set_meta_key(project, run_id, meta_key::STOP_REQUESTED_AT, Some(&now))
    }

    fn run_summary(&self, project: &ProjectName, run_id: &RunId) -> Result<Arc<RunSummary>> {
        let path = self.resolve(project, run_id)?;
        let entry = self.entry_path(project, run_id)?;
        let has_wal = wal_path(&path).exists();
        let now = fingerprint(&path, has_wal).map_err(|e| StoreError::io("reading", &path, e))?;
        let cached = self
            .summaries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&entry)
            .filter(|c| c.fingerprint == now)
            .map(|c| c.result.clone());
        let result = match cached {
            Some(result) => result,
            None => {
                let root = self.canonical_root().unwrap_or_else(|| self.root.clone());
                let found = Found {
                    relative: entry.strip_prefix(&root).unwrap_or(&entry).to_path_buf(),
                    at: entry.clone(),
                    path: path.clone(),
                    project: match self.layout {
                        Layout::Projects => project.to_string(),
                        Layout::Flat => String::new(),
                    },
                    stem: run_id.to_string(),
                    state: Ok(now),
                };
                let before = self
                    .summaries
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&entry)
                    .and_then(|c| c.result.as_ref().ok().cloned());
                let result = load_summary(&found, now, before.as_deref()).map(Arc::new);
                self.summaries
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(entry, CachedSummary { fingerprint: now, result: result.clone() });
                result
            }
        };
        match result {
            Ok(summary) => Ok(with_fresh_status(summary, &path, SystemTime::now())),
            Err(reason) => Err(StoreError::NotARun { location: shown(&path), reason }),
        }
    }

    fn run_exists(&self, project: &ProjectName, run_id: &RunId) -> Result<bool> {
        // The name is taken whatever it holds (a broken link, a directory): creating a
        // run there would fail.
        Ok(std::fs::symlink_metadata(self.run_file(project, run_id)).is_ok())
    }

    fn create_run(
        &self,
        project: &ProjectName,
        run_id: &RunId,
        first: &WriteBatch,
    ) -> Result<Box<dyn RunWriter>> {
        let path = self.run_file(project, run_id);
        let mut writer = SqliteRunWriter::create(&path, first)?;
        writer.share_blobs_under(&self.canonical_root().unwrap_or_else(|| self.root.clone()));
        self.touched(&path);
        Ok(Box::new(writer))
    }

    fn resume_run(&self, project: &ProjectName, run_id: &RunId) -> Result<Box<dyn RunWriter>> {
        let path = self.resolve(project, run_id)?;
        let meta = {
            let conn = schema::open_reader(&path, ReadMode::for_file(&path))?;
            schema::check_is_run(&conn, &path)?;
            read_meta(&conn).map_err(|e| schema::not_a_run(&path, e))?
        };
        // goodseed 0.4.0 leaves no lock: a run it is writing says `running` with no way to
        // tell it from a crash, so like 0.4.0 we refuse it. Our own dead writers are
        // known (their lock file is free) and can be resumed.
        let live = || StoreError::Live { location: shown(&path), holder: holder(&meta) };
        if meta.status() == Some("running")
            && liveness(&path, &meta, SystemTime::now(), None) != Liveness::Dead
        {
            return Err(live());
        }
        // Our readers of the closed file must not outlive it becoming live.
        self.forget_reader(&path);
        self.touched(&path);
        match SqliteRunWriter::open_existing(&path) {
            Ok(mut writer) => {
                writer
                    .share_blobs_under(&self.canonical_root().unwrap_or_else(|| self.root.clone()));
                Ok(Box::new(writer))
            }
            Err(StoreError::Locked { .. }) => Err(live()),
            Err(e) => Err(e),
        }
    }

    fn open_uploads(
        &self,
        project: &ProjectName,
        run_id: &RunId,
    ) -> Result<Box<dyn crate::uploads::RunUploads>> {
        let path = self.resolve(project, run_id)?;
        Ok(Box::new(super::uploads::SqliteUploads::open(&path)?))
    }

    fn add_artifact(
        &self,
        project: &ProjectName,
        run_id: &RunId,
        new: &crate::artifacts::NewArtifact,
    ) -> Result<i64> {
        new.check().map_err(|reason| StoreError::BadRequest { reason })?;
        let path = self.resolve(project, run_id)?;
        let mut new = new.clone();
        if new.in_place.is_none() {
            new.blob = self.blobs_of(&path).held(
                &new.blob.hash,
                new.blob.size,
                &new.name,
                &shown(&path),
            )?;
        }
        self.forget_reader(&path);
        let db = |e| StoreError::db(&path, e);
        let mut conn = open_for_change(&path)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        let now = goodseed_core::time::UtcMicros::from(SystemTime::now()).to_iso8601();
        super::artifacts::write(&tx, &[crate::artifacts::ArtifactOp::Add(new.clone())], &now)
            .map_err(db)?;
        let id = super::artifacts::id_of(&tx, new.kind, &new.name, new.step).map_err(db)?;
        tx.commit().map_err(db)?;
        conn.close().map_err(|(_, e)| db(e))?;
        id.ok_or_else(|| StoreError::NoSuchArtifact {
            what: new.name.clone(),
            location: shown(&path),
        })
    }

    fn edit_artifact(
        &self,
        project: &ProjectName,
        run_id: &RunId,
        id: i64,
        edit: crate::artifacts::ArtifactEdit,
    ) -> Result<()> {
        let path = self.resolve(project, run_id)?;
        // A run no writer of ours holds is held while its blobs are collected, so none
        // starts meanwhile; a live one's writer collects them when it closes.
        let lock = match WriterLock::acquire(&path) {
            Ok(lock) => Some(lock),
            Err(StoreError::Locked { .. }) => None,
            Err(e) => return Err(e),
        };
        let result = (|| {
            self.forget_reader(&path);
            let db = |e| StoreError::db(&path, e);
            let mut conn = open_for_change(&path)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let Some(deleted) = super::artifacts::edit(&tx, id, edit).map_err(db)? else {
                return Err(StoreError::NoSuchArtifact {
                    what: id.to_string(),
                    location: shown(&path),
                });
            };
            tx.commit().map_err(db)?;
            if let (Some(hash), Some(_)) = (deleted, &lock) {
                let referenced = super::artifacts::referenced(&conn).map_err(db)?;
                let blobs = self.blobs_of(&path);
                blobs.collect(&[hash], &blobs.kept(&referenced));
            }
            conn.close().map_err(|(_, e)| db(e))
        })();
        if let Some(lock) = lock {
            lock.give_back();
        }
        result
    }

    fn delete_runs(&self, runs: &[RunRef]) -> Result<()> {
        // Every run is checked before anything is deleted: one that cannot be deleted
        // leaves all of them in place.
        let mut plans = Vec::with_capacity(runs.len());
        for run in runs {
            if plans.iter().any(|p: &Deletion| p.run == *run) {
                continue;
            }
            plans.push(self.plan_deletion(run)?);
        }
        // Holding each run's writer lock while deleting keeps our writers from resuming
        // a run half way; one that got in since the checks makes this fail, and then
        // nothing is deleted either. A symlinked run is only the link: the file it points
        // to is another run of the listing and stays, with its own lock file, untouched.
        let mut locks = Vec::with_capacity(plans.len());
        for plan in &plans {
            let lock = if plan.is_link { None } else { Some(WriterLock::acquire(&plan.real)) };
            match lock.transpose() {
                Ok(lock) => locks.push(lock),
                Err(e) => {
                    locks.into_iter().flatten().for_each(WriterLock::give_back);
                    return Err(e);
                }
            }
        }
        for (plan, lock) in plans.iter().zip(locks) {
            self.forget_reader(&plan.real);
            self.forget_reader(&plan.entry);
            self.forget_summary(&plan.entry);
            // The main file first: once it is gone the run is gone, whatever happens to
            // the side files.
            self.touched(&plan.entry);
            remove_if_present(&plan.entry)?;
            remove_if_present(&wal_path(&plan.entry))?;
            remove_if_present(&shm_path(&plan.entry))?;
            if !plan.is_link {
                self.blobs_of(&plan.real).remove_all()?;
            }
            match lock {
                // Dropping the lock removes its file while still holding it, so a writer
                // that creates the run anew right after keeps its own lock file.
                Some(lock) => drop(lock),
                None => remove_if_present(&lock::lock_path(&plan.entry))?,
            }
        }
        Ok(())
    }
}

/// One run [`SqliteStore::delete_runs`] may delete, once checked.
struct Deletion {
    run: RunRef,
    /// The file holding the run.
    real: PathBuf,
    /// Its directory entry (a symlink, for a linked run).
    entry: PathBuf,
    is_link: bool,
}

impl SqliteStore {
    /// Checks that a run can be deleted (there, trashed, its writer not alive) and
    /// where its files are.
    fn plan_deletion(&self, run: &RunRef) -> Result<Deletion> {
        let (project, run_id) = (&run.project, &run.run_id);
        let real = self.resolve(project, run_id)?;
        let entry = self.entry_path(project, run_id)?;
        let is_link = std::fs::symlink_metadata(&entry)
            .map_err(|e| StoreError::io("reading", &entry, e))?
            .file_type()
            .is_symlink();
        let meta = {
            let conn = schema::open_reader(&real, ReadMode::for_file(&real))?;
            schema::check_is_run(&conn, &real)?;
            read_meta(&conn).map_err(|e| schema::not_a_run(&real, e))?
        };
        if !meta.trashed() {
            return Err(StoreError::NotTrashed {
                project: project.to_string(),
                run_id: run_id.to_string(),
            });
        }
        let link_held = is_link && lock::probe(&entry) == LockState::Held;
        if link_held || liveness(&real, &meta, SystemTime::now(), None) == Liveness::Live {
            return Err(StoreError::Locked { location: shown(&entry) });
        }
        Ok(Deletion { run: run.clone(), real, entry, is_link })
    }
}

/// Who holds a live run, as its `run_meta` says, for [`StoreError::Live`].
fn holder(meta: &RunMeta) -> String {
    match (meta.get(meta_key::WRITER_PID), meta.get(meta_key::WRITER_HOST)) {
        (Some(pid), Some(host)) => format!(" (pid {pid} on {host})"),
        _ => " (its status is running)".to_owned(),
    }
}

/// The projects of a flat directory's listing, as [`RunStore::list_projects`] reports
/// them (the newest run's `created_at` stands for the modification time it cannot see
/// per project without reading every run).
fn flat_projects(listing: &RunListing) -> Vec<ProjectSummary> {
    let mut projects: Vec<ProjectSummary> = Vec::new();
    for r in &listing.runs {
        let modified = r
            .meta
            .created_at()
            .and_then(UtcMicros::parse_iso8601)
            .map(|t| SystemTime::UNIX_EPOCH + Duration::from_micros(t.0.max(0) as u64));
        match projects.iter_mut().find(|p| p.name == r.project) {
            Some(p) => {
                p.run_count += 1;
                p.last_modified = p.last_modified.max(modified);
            }
            None => projects.push(ProjectSummary {
                name: r.project.clone(),
                run_count: 1,
                last_modified: modified,
            }),
        }
    }
    projects.sort_by_key(|p| std::cmp::Reverse(p.last_modified));
    projects
}
