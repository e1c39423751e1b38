//! The catalog's index, for a store that is watched ([`SqliteStore::watched`], as
//! `goodseed serve` keeps one): every run file and its summary in memory, in the
//! listing's order, so a listing costs what its answer costs instead of a walk of the
//! whole directory.
//!
//! It is kept current by three means, each covering what the others miss:
//!
//! - file-system notifications (`notify`: inotify on Linux) name the run files that
//!   changed, and say when to walk again (a directory made or moved, an overflow);
//! - on every listing, the files that may be live (a `-wal` beside them, or a symlink)
//!   are stat-ed again, and so is every `runs/` directory: one whose time changed is
//!   read again for run files made or removed. So a change made by this process, or a
//!   run made by any, is seen by the next listing, whatever the notifications' delay;
//! - a thread walks the whole directory every [`RECONCILE_EVERY`] and marks what
//!   differs from the index (a file system whose notifications do not reach us, such as
//!   NFS written from another machine).
//!
//! Files found changed are stat-ed and, when their fingerprint changed, read again
//! (the summaries cache of the store is shared with unwatched listings).
//!
//! [`SqliteStore::watched`]: super::SqliteStore::watched

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use goodseed_core::ProjectName;
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};

use super::store::{Found, Layout, SqliteStore, Walker, scan_entry, with_fresh_status};
use crate::model::{ProjectSummary, RunListing, RunSummary, UnreadableRun};

/// How often the whole directory is walked for changes notifications missed.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(30);

/// More changed files than this at once are read again by a walk of everything, in
/// parallel, rather than one by one.
const REBUILD_ABOVE: usize = 512;

/// A store's watch: what the listings, the notifications and the reconciling thread
/// share. Dropped with the store: notifications stop, the thread ends.
pub(super) struct Watched {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched").finish_non_exhaustive()
    }
}

struct Shared {
    walker: Walker,
    /// The notifications' handle, once the directory exists and could be watched; until
    /// then listings walk the directory, and the reconciling thread tries again.
    watcher: Mutex<Option<(notify::RecommendedWatcher, PathBuf)>>,
    /// Why the directory is not watched (yet).
    problem: Mutex<Option<String>>,
    dirty: Mutex<Dirty>,
    index: Mutex<Option<Index>>,
}

/// What is known to have changed since the last listing.
#[derive(Debug, Default)]
struct Dirty {
    /// Run files (`…/runs/<id>.sqlite`) to look at again.
    files: HashSet<PathBuf>,
    /// Walk everything again.
    rescan: bool,
}

/// Every run file, as of the last listing.
struct Index {
    /// By where it was found.
    files: HashMap<PathBuf, Found>,
    /// The directories run files are in, with their modification time when last read.
    dirs: HashMap<PathBuf, Option<SystemTime>>,
    /// Files stat-ed on every listing: a `-wal` was beside them (maybe live), or they are
    /// symlinks (whose targets' directories are not watched).
    volatile: HashSet<PathBuf>,
    /// The readable runs in the listing's order: newest `created_at` first, ties in
    /// path order, as 0.4.0 sorts.
    runs: Vec<Listed>,
    /// The unreadable files by path.
    unreadable: BTreeMap<PathBuf, UnreadableRun>,
}

/// A readable run in the index.
struct Listed {
    summary: Arc<RunSummary>,
    /// The file to probe for its writer (a symlink's target).
    path: PathBuf,
    /// Where it was found (the index's key).
    at: PathBuf,
    /// Where it is, relative to the root: the listing's tie-break.
    relative: PathBuf,
    /// Stored as running: its status is derived again on every listing.
    running: bool,
}

impl Listed {
    fn created_at(&self) -> &str {
        self.summary.meta.created_at().unwrap_or("")
    }

    /// Whether `self` comes before `other` in the listing.
    fn before(&self, created_at: &str, relative: &Path) -> bool {
        match self.created_at().cmp(created_at) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => self.relative.as_path() < relative,
        }
    }
}

impl Watched {
    /// Starts watching the store's directory and the reconciling thread. A directory
    /// that does not exist yet is watched once it does; the index itself is built by the
    /// first listing after.
    pub(super) fn start(walker: Walker, every: Duration) -> Watched {
        let shared = Arc::new(Shared {
            walker,
            watcher: Mutex::new(None),
            problem: Mutex::new(None),
            dirty: Mutex::new(Dirty::default()),
            index: Mutex::new(None),
        });
        shared.try_to_watch();
        let weak = Arc::downgrade(&shared);
        if let Err(e) = std::thread::Builder::new()
            .name("goodseed-catalog".into())
            .spawn(move || reconcile(&weak, every))
        {
            *shared.problem.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(format!("cannot start the catalog's thread: {e}"));
            *shared.watcher.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
        Watched { shared }
    }

    /// Why the directory is not watched (yet), if it is not.
    pub(super) fn problem(&self) -> Option<String> {
        self.shared.problem.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Marks a run file as changed (by this process: seen by the next listing).
    pub(super) fn touched(&self, file: &Path) {
        let Some(root) = self.shared.root() else { return };
        let file = match file.strip_prefix(self.shared.walker.root()) {
            Ok(rel) if !file.starts_with(&root) => root.join(rel),
            _ => file.to_path_buf(),
        };
        self.shared.dirty.lock().unwrap_or_else(PoisonError::into_inner).files.insert(file);
    }

    /// The listing, from the index brought up to date; `None` while the directory is
    /// not watched (the caller walks it).
    pub(super) fn listing(
        &self,
        store: &SqliteStore,
        project: Option<&ProjectName>,
    ) -> Option<RunListing> {
        let mut guard = self.shared.current(store)?;
        let index = guard.as_mut().expect("brought up to date");
        let now = SystemTime::now();
        let flat = self.shared.walker.layout() == Layout::Flat;
        let wanted = |p: &str| project.is_none_or(|want| want.as_str() == p);
        let runs = index
            .runs
            .iter()
            .filter(|r| wanted(&r.summary.project))
            .map(|r| {
                let summary = Arc::clone(&r.summary);
                if r.running { with_fresh_status(summary, &r.path, now) } else { summary }
            })
            .collect();
        let unreadable = if flat && project.is_some() {
            // A flat directory's unreadable files belong to no project.
            Vec::new()
        } else {
            index.unreadable.values().filter(|u| wanted(&u.project)).cloned().collect()
        };
        Some(RunListing { runs, unreadable })
    }

    /// The projects of a store of projects, from the index brought up to date; `None`
    /// while the directory is not watched.
    pub(super) fn projects(&self, store: &SqliteStore) -> Option<Vec<ProjectSummary>> {
        let guard = self.shared.current(store)?;
        let index = guard.as_ref().expect("brought up to date");
        let mut by_name: BTreeMap<&str, ProjectSummary> = BTreeMap::new();
        let mut found: Vec<&Found> = index.files.values().collect();
        found.sort_by(|a, b| a.relative.cmp(&b.relative));
        let mut order = Vec::new();
        for f in found {
            let p = by_name.entry(f.project.as_str()).or_insert_with(|| {
                order.push(f.project.clone());
                ProjectSummary { name: f.project.clone(), run_count: 0, last_modified: None }
            });
            p.run_count += 1;
            if let Ok(fp) = &f.state {
                p.last_modified = p.last_modified.max(Some(fp.modified));
            }
        }
        Some(order.iter().filter_map(|name| by_name.remove(name.as_str())).collect())
    }
}

impl Shared {
    /// The watched root (canonical, as the walk and the notifications name it), once
    /// watched.
    fn root(&self) -> Option<PathBuf> {
        self.watcher.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(|(_, r)| r.clone())
    }

    /// Starts the notifications if the directory exists and they are not on yet.
    fn try_to_watch(self: &Arc<Self>) {
        let mut slot = self.watcher.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_some() {
            return;
        }
        let shown = self.walker.root().display().to_string();
        let started = match self.walker.canonical_root() {
            None => Err(format!("{shown} does not exist (yet)")),
            Some(root) => {
                let weak = Arc::downgrade(self);
                notify::recommended_watcher(move |event: notify::Result<Event>| {
                    if let Some(shared) = weak.upgrade() {
                        shared.notified(event);
                    }
                })
                .and_then(|mut w| w.watch(&root, RecursiveMode::Recursive).map(|()| w))
                .map(|w| (w, root))
                .map_err(|e| format!("cannot watch {shown}: {e}"))
            }
        };
        let mut problem = self.problem.lock().unwrap_or_else(PoisonError::into_inner);
        match started {
            Ok(watching) => {
                *slot = Some(watching);
                *problem = None;
                // Whatever happened before the watch began: walk everything.
                self.dirty.lock().unwrap_or_else(PoisonError::into_inner).rescan = true;
            }
            Err(why) => *problem = Some(why),
        }
    }

    /// Takes in one notification.
    fn notified(&self, event: notify::Result<Event>) {
        let mut dirty = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        let event = match event {
            Ok(event) => event,
            Err(_) => {
                dirty.rescan = true;
                return;
            }
        };
        if event.need_rescan() {
            dirty.rescan = true;
        }
        // Reads (ours among them) change nothing.
        if let EventKind::Access(kind) = event.kind
            && kind != AccessKind::Close(AccessMode::Write)
        {
            return;
        }
        let structural = matches!(
            event.kind,
            EventKind::Create(_)
                | EventKind::Remove(_)
                | EventKind::Modify(notify::event::ModifyKind::Name(_))
        );
        let Some(root) = self.root() else { return };
        for path in &event.paths {
            match self.classify(&root, path) {
                Seen::Run(file) => {
                    dirty.files.insert(file);
                }
                Seen::Other if structural => dirty.rescan = true,
                Seen::Other | Seen::Ignored => {}
            }
        }
    }

    /// What a notified path is to the catalog.
    fn classify(&self, root: &Path, path: &Path) -> Seen {
        let Ok(relative) = path.strip_prefix(root) else { return Seen::Ignored };
        // Blobs and the server's own files are not runs.
        let ignored = relative.components().any(|c| match c {
            Component::Normal(name) => {
                name == ".goodseed-server"
                    || Path::new(name).extension() == Some(OsStr::new("files"))
            }
            _ => false,
        });
        if ignored {
            return Seen::Ignored;
        }
        let (Some(name), Some(dir)) = (path.file_name().and_then(OsStr::to_str), path.parent())
        else {
            return Seen::Other;
        };
        let in_runs = match self.walker.layout() {
            Layout::Projects => dir.file_name() == Some(OsStr::new("runs")),
            Layout::Flat => dir == root,
        };
        if in_runs {
            for suffix in
                [".sqlite", ".sqlite-wal", ".sqlite-shm", ".sqlite-journal", ".sqlite.lock"]
            {
                if let Some(stem) = name.strip_suffix(suffix)
                    && !stem.is_empty()
                {
                    return Seen::Run(dir.join(format!("{stem}.sqlite")));
                }
            }
        }
        Seen::Other
    }

    /// The index, brought up to date with what changed since the last listing; `None`
    /// while the directory is not watched.
    fn current(&self, store: &SqliteStore) -> Option<std::sync::MutexGuard<'_, Option<Index>>> {
        let root = self.root()?;
        let mut guard = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        let dirty = std::mem::take(&mut *self.dirty.lock().unwrap_or_else(PoisonError::into_inner));
        let index = match guard.as_mut() {
            Some(index) if !dirty.rescan => index,
            _ => {
                *guard = Some(self.build(store));
                return Some(guard);
            }
        };
        let mut check = dirty.files;
        check.extend(index.volatile.iter().cloned());
        index.directories_changed(&mut check);
        if check.len() > REBUILD_ABOVE {
            *guard = Some(self.build(store));
            return Some(guard);
        }
        for at in check {
            index.refresh(store, &self.walker, &root, at);
        }
        Some(guard)
    }

    /// The index of a walk of everything.
    fn build(&self, store: &SqliteStore) -> Index {
        let found = self.walker.scan();
        let outcomes = store.summaries_of(&found, true);
        let mut index = Index {
            files: HashMap::with_capacity(found.len()),
            dirs: HashMap::new(),
            volatile: HashSet::new(),
            runs: Vec::with_capacity(found.len()),
            unreadable: BTreeMap::new(),
        };
        for (f, outcome) in found.into_iter().zip(outcomes) {
            index.dirs.entry(parent_of(&f.at)).or_insert_with_key(|d| modified(d));
            index.add(f, outcome);
        }
        index.runs.sort_by(|a, b| {
            b.created_at().cmp(a.created_at()).then_with(|| a.relative.cmp(&b.relative))
        });
        index
    }
}

/// What a notified path is.
enum Seen {
    /// One of a run's files: the run file named.
    Run(PathBuf),
    /// Not a run's file (a directory, a stray file).
    Other,
    /// Outside the runs (blobs, the server's files).
    Ignored,
}

fn parent_of(at: &Path) -> PathBuf {
    at.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn modified(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(dir).and_then(|m| m.modified()).ok()
}

impl Index {
    /// Adds a file found (not yet in the index), appended to the runs unsorted.
    fn add(&mut self, f: Found, outcome: Option<std::result::Result<Arc<RunSummary>, String>>) {
        let volatile = f.at != f.path || f.state.as_ref().is_ok_and(|fp| fp.wal.is_some());
        if volatile {
            self.volatile.insert(f.at.clone());
        }
        match outcome {
            Some(Ok(summary)) => self.runs.push(Listed {
                running: summary.meta.status() == Some("running"),
                summary,
                path: f.path.clone(),
                at: f.at.clone(),
                relative: f.relative.clone(),
            }),
            Some(Err(reason)) => {
                self.unreadable.insert(f.relative.clone(), f.unreadable(reason));
            }
            None => {}
        }
        self.files.insert(f.at.clone(), f);
    }

    /// Adds to `check` the run files made, removed or given a `-wal` in a directory
    /// whose time changed since it was last read.
    fn directories_changed(&mut self, check: &mut HashSet<PathBuf>) {
        let mut changed = Vec::new();
        for (dir, seen) in &mut self.dirs {
            let now = modified(dir);
            if now != *seen {
                *seen = now;
                changed.push(dir.clone());
            }
        }
        for dir in changed {
            let mut names = HashSet::new();
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    let Some(name) = name.to_str() else { continue };
                    let run = name
                        .strip_suffix(".sqlite-wal")
                        .or_else(|| name.strip_suffix(".sqlite-journal"))
                        .map(|stem| format!("{stem}.sqlite"));
                    match run {
                        Some(run) => {
                            check.insert(dir.join(run));
                        }
                        None if name.ends_with(".sqlite") => {
                            let at = dir.join(name);
                            if !self.files.contains_key(&at) {
                                check.insert(at.clone());
                            }
                            names.insert(at);
                        }
                        None => {}
                    }
                }
            }
            for at in self.files.keys() {
                if at.parent() == Some(dir.as_path()) && !names.contains(at) {
                    check.insert(at.clone());
                }
            }
        }
    }

    /// Looks at one run file again: updates, adds or removes its entry.
    fn refresh(&mut self, store: &SqliteStore, walker: &Walker, root: &Path, at: PathBuf) {
        let now = scan_entry(&at).and_then(|kind| walker.found(root, at.clone(), kind));
        let unchanged = match (&now, self.files.get(&at)) {
            (Some(new), Some(old)) => new.state == old.state && new.path == old.path,
            (None, None) => true,
            _ => false,
        };
        if unchanged {
            return;
        }
        self.remove(&at);
        let Some(found) = now else { return };
        let outcome = store.summaries_of(std::slice::from_ref(&found), false).pop().flatten();
        self.dirs.entry(parent_of(&found.at)).or_insert_with_key(|d| modified(d));
        let before = self.runs.len();
        self.add(found, outcome);
        if self.runs.len() > before {
            // Appended by `add`: move it to its place.
            let listed = self.runs.pop().expect("just added");
            let (created_at, relative) = (listed.created_at().to_owned(), listed.relative.clone());
            let at = self.runs.partition_point(|r| r.before(&created_at, &relative));
            self.runs.insert(at, listed);
        }
    }

    /// Forgets one run file.
    fn remove(&mut self, at: &Path) {
        let Some(old) = self.files.remove(at) else { return };
        self.volatile.remove(at);
        self.unreadable.remove(&old.relative);
        if let Some(i) = self.runs.iter().position(|r| r.at == at) {
            self.runs.remove(i);
        }
    }
}

/// The reconciling thread: every `every` ([`RECONCILE_EVERY`] by default), walks everything and marks what
/// differs from the index. Ends with the store.
fn reconcile(shared: &Weak<Shared>, every: Duration) {
    let tick = every.min(Duration::from_millis(250));
    let mut waited = Duration::ZERO;
    loop {
        std::thread::sleep(tick);
        waited += tick;
        let Some(shared) = shared.upgrade() else { return };
        if shared.root().is_none() {
            shared.try_to_watch();
            continue;
        }
        if waited < every {
            continue;
        }
        waited = Duration::ZERO;
        let found = shared.walker.scan();
        let mut differs = Vec::new();
        {
            let guard = shared.index.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(index) = guard.as_ref() else { continue };
            let mut seen = HashSet::with_capacity(found.len());
            for f in &found {
                seen.insert(f.at.as_path());
                match index.files.get(&f.at) {
                    Some(old) if old.state == f.state && old.path == f.path => {}
                    _ => differs.push(f.at.clone()),
                }
            }
            differs.extend(index.files.keys().filter(|at| !seen.contains(at.as_path())).cloned());
        }
        if !differs.is_empty() {
            shared.dirty.lock().unwrap_or_else(PoisonError::into_inner).files.extend(differs);
        }
    }
}
