//! [`SqliteRunWriter`]: writes one run file in goodseed 0.4.0's format.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, FieldPath};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::artifacts as records;
use super::lock::WriterLock;
use super::pyramid::{self, PyramidWriter};
use super::schema::{self, DDL, NAN_DDL, NAN_TABLE, SCHEMA_VERSION};
use crate::artifacts::BlobSink;
use crate::blobs::BlobDir;
use crate::model::{LastSteps, RunWriter, WriteBatch, meta_key};
use crate::{Result, StoreError};

/// Writes one run's SQLite file.
///
/// WAL journal, `synchronous=NORMAL`, one transaction per [`WriteBatch`], prepared
/// statements bound in place, points inserted in (series, step) order so the primary-key
/// index grows at its right edge. [`RunWriter::close`] checkpoints with `TRUNCATE` and
/// closes, leaving one file.
#[derive(Debug)]
pub struct SqliteRunWriter {
    conn: Option<Connection>,
    path: PathBuf,
    /// The path as errors and people see it.
    location: String,
    metric_ids: HashMap<FieldPath, i64>,
    text_ids: HashMap<FieldPath, i64>,
    /// Series with rows in the NaN table: only these need a delete there when a finite
    /// value overwrites a step.
    nan_series: HashSet<i64>,
    nan_table: bool,
    /// Reused between batches: (series id, step, value, ts) in insertion order.
    scratch: Vec<(i64, f64, f64, i64)>,
    spare: Vec<(i64, f64, f64, i64)>,
    checkpointer: Option<Checkpointer>,
    /// Held from open to close; released (and its file removed) last.
    lock: Option<WriterLock>,
    /// Rows and commits since the checkpointer was last woken.
    since_checkpoint: (usize, usize),
    /// The downsampling pyramid of every metric series, kept with the points.
    pyramid: PyramidWriter,
    /// The run's files, `<run_id>.files/` beside it.
    blobs: Arc<BlobDir>,
}

/// Checkpoints the WAL from a second connection on its own thread, so the writing thread
/// never stops to copy pages into the database file (SQLite's automatic checkpoint runs
/// inside the commit that crosses its threshold). A `PASSIVE` checkpoint never blocks the
/// writer or readers.
#[derive(Debug)]
struct Checkpointer {
    wake: SyncSender<()>,
    thread: JoinHandle<()>,
}

/// Wake the checkpointer after this many rows, or this many commits (each commit adds
/// a few WAL frames even when small), whichever comes first: about SQLite's default of
/// a checkpoint per 1,000 frames.
const CHECKPOINT_AFTER_ROWS: usize = 25_000;
const CHECKPOINT_AFTER_COMMITS: usize = 250;

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::db(path, e))?;
        conn.execute_batch(&format!(
            "PRAGMA busy_timeout={}; PRAGMA cache_size=-1000;",
            schema::BUSY_TIMEOUT_MS
        ))
        .map_err(|e| StoreError::db(path, e))?;
        let (wake, woken) = sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("goodseed-checkpoint".to_owned())
            .spawn(move || {
                // Ends when the writer drops its sender; the connection closes first,
                // so the writer's own close is the last one and removes the WAL.
                while woken.recv().is_ok() {
                    // A failed passive checkpoint only means the next one does more.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .map_err(|e| StoreError::io("starting the checkpoint thread for", path, e))?;
        Ok(Checkpointer { wake, thread })
    }

    fn wake(&self) {
        // Full means a wake-up is already pending.
        let _ = self.wake.try_send(());
    }

    fn stop(self) {
        drop(self.wake);
        let _ = self.thread.join();
    }
}

impl SqliteRunWriter {
    /// Creates a new run file at `path` (its directory is created if needed) and writes
    /// the schema, `schema_version` and `first` in one transaction. Fails with
    /// [`StoreError::AlreadyExists`] if the file exists.
    pub fn create(path: &Path, first: &WriteBatch) -> Result<SqliteRunWriter> {
        SqliteRunWriter::create_with(path, first, pyramid::MIN_LEVEL)
    }

    /// [`SqliteRunWriter::create`] with the pyramid's smallest level chosen (tests use
    /// small ones, to cover many levels with few points).
    pub(crate) fn create_with(
        path: &Path,
        first: &WriteBatch,
        min_level: u32,
    ) -> Result<SqliteRunWriter> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io("creating", dir, e))?;
        }
        // Claim the name atomically, so two writers never create the same run.
        OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                StoreError::AlreadyExists { location: crate::error::shown(path) }
            } else {
                StoreError::io("creating", path, e)
            }
        })?;
        let result = (|| {
            let lock = WriterLock::acquire(path)?;
            let conn = schema::open_writer(path, false)?;
            let mut writer = SqliteRunWriter::from_conn(conn, path, min_level);
            writer.lock = Some(lock);
            let started = writer
                .write_inner(first, true)
                .and_then(|()| Checkpointer::start(path).map(|c| writer.checkpointer = Some(c)));
            match started {
                Ok(()) => Ok(writer),
                Err(e) => {
                    writer.let_go();
                    Err(e)
                }
            }
        })();
        if result.is_err() {
            // Leave nothing half-made behind.
            let _ = std::fs::remove_file(path);
            let _ = std::fs::remove_file(schema::wal_path(path));
            let _ = std::fs::remove_file(schema::shm_path(path));
        }
        result
    }

    /// Opens an existing run file to write more into it (resume). Creates any 0.4.0
    /// table an older file lacks.
    ///
    /// The downsampling pyramid is loaded, and rebuilt from the points (one read of each
    /// series) for the series it does not describe: all of them in a file that another
    /// writer, such as goodseed 0.4.0, wrote into since, or that has none yet.
    pub fn open_existing(path: &Path) -> Result<SqliteRunWriter> {
        SqliteRunWriter::open_existing_with(path, pyramid::MIN_LEVEL)
    }

    /// [`SqliteRunWriter::open_existing`] with the smallest level of the series it starts
    /// or rebuilds chosen.
    pub(crate) fn open_existing_with(path: &Path, min_level: u32) -> Result<SqliteRunWriter> {
        if !path.is_file() {
            return Err(StoreError::io(
                "opening",
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such run file"),
            ));
        }
        let lock = WriterLock::acquire(path)?;
        let opened = schema::open_writer(path, false).and_then(|conn| {
            schema::check_is_run(&conn, path)?;
            conn.execute_batch(DDL).map_err(|e| StoreError::db(path, e))?;
            Ok(conn)
        });
        let conn = match opened {
            Ok(conn) => conn,
            Err(e) => {
                lock.give_back();
                return Err(e);
            }
        };
        let mut writer = SqliteRunWriter::from_conn(conn, path, min_level);
        writer.lock = Some(lock);
        // No copy can be in progress: this writer holds the run, and has handed out no
        // blob sink yet. What a crash left goes: unfinished copies, and blobs whose
        // records were never written.
        if writer.blobs.dir().exists() {
            writer.blobs.remove_leftovers();
            if let Some(Ok(referenced)) = writer.conn.as_ref().map(records::referenced) {
                let _ = writer.blobs.remove_unreferenced(&writer.blobs.kept(&referenced));
            }
        }
        let started = writer
            .load_existing()
            .and_then(|()| writer.load_pyramid(min_level))
            .and_then(|()| Checkpointer::start(path).map(|c| writer.checkpointer = Some(c)));
        match started {
            Ok(()) => Ok(writer),
            Err(e) => {
                writer.let_go();
                Err(e)
            }
        }
    }

    /// Lets go of a run this writer could not start writing: the connection closes and
    /// the lock is given back as it was found (see [`WriterLock::give_back`]).
    fn let_go(&mut self) {
        if let Some(c) = self.checkpointer.take() {
            c.stop();
        }
        drop(self.conn.take());
        if let Some(lock) = self.lock.take() {
            lock.give_back();
        }
    }

    fn from_conn(conn: Connection, path: &Path, min_level: u32) -> SqliteRunWriter {
        SqliteRunWriter {
            conn: Some(conn),
            path: path.to_owned(),
            location: crate::error::shown(path),
            metric_ids: HashMap::new(),
            text_ids: HashMap::new(),
            nan_series: HashSet::new(),
            nan_table: false,
            scratch: Vec::new(),
            spare: Vec::new(),
            checkpointer: None,
            lock: None,
            since_checkpoint: (0, 0),
            pyramid: PyramidWriter::new(min_level),
            blobs: Arc::new(BlobDir::new(records::blob_dir_of(path), None)),
        }
    }

    /// Shares identical files with the other runs under `root` (the store's data
    /// directory): called by the store before the writer is handed out.
    pub(crate) fn share_blobs_under(&mut self, root: &Path) {
        self.blobs = Arc::new(BlobDir::new(
            records::blob_dir_of(&self.path),
            Some(records::blob_index_of(root)),
        ));
    }

    /// The file this writer writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> Result<&Connection> {
        self.conn
            .as_ref()
            .ok_or_else(|| StoreError::Closed { location: crate::error::shown(&self.path) })
    }

    fn load_existing(&mut self) -> Result<()> {
        let path = self.path.clone();
        let db = |e| StoreError::db(&path, e);
        let conn = self.conn()?;
        let nan_table = schema::has_table(conn, NAN_TABLE).map_err(db)?;
        let mut nan_series = HashSet::new();
        if nan_table {
            let mut stmt =
                conn.prepare(&format!("SELECT DISTINCT series_id FROM {NAN_TABLE}")).map_err(db)?;
            let ids = stmt.query_map([], |r| r.get::<_, i64>(0)).map_err(db)?;
            nan_series = ids.collect::<rusqlite::Result<HashSet<i64>>>().map_err(db)?;
        }
        self.nan_table = nan_table;
        self.nan_series = nan_series;
        Ok(())
    }

    /// Runs `f` in an `IMMEDIATE` transaction of the writer's connection, committed when
    /// it succeeds.
    fn in_transaction<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let path = self.path.clone();
        let db = |e| StoreError::db(&path, e);
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| StoreError::Closed { location: crate::error::shown(&path) })?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        let out = f(&tx).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(out)
    }

    fn load_pyramid(&mut self, min_level: u32) -> Result<()> {
        self.pyramid = self.in_transaction(|tx| PyramidWriter::open(tx, min_level))?;
        Ok(())
    }

    fn write_inner(&mut self, batch: &WriteBatch, creating: bool) -> Result<()> {
        for op in &batch.artifacts {
            if let crate::artifacts::ArtifactOp::Add(a) = op {
                a.check().map_err(|reason| StoreError::BadRequest { reason })?;
            }
        }
        batch.check_histograms()?;
        let path = self.path.clone();
        let db = |e| StoreError::db(&path, e);
        let now = UtcMicros::from(SystemTime::now()).to_iso8601();
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| StoreError::Closed { location: crate::error::shown(&path) })?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        if creating {
            tx.execute_batch(DDL).map_err(db)?;
            tx.execute_batch(pyramid::DDL).map_err(db)?;
            tx.execute(
                "INSERT OR IGNORE INTO run_meta (key, value) VALUES (?1, ?2)",
                (meta_key::SCHEMA_VERSION, SCHEMA_VERSION),
            )
            .map_err(db)?;
        }

        if !batch.meta.is_empty() {
            let mut set = tx
                .prepare_cached("INSERT OR REPLACE INTO run_meta (key, value) VALUES (?1, ?2)")
                .map_err(db)?;
            let mut del = tx.prepare_cached("DELETE FROM run_meta WHERE key = ?1").map_err(db)?;
            for (key, value) in &batch.meta {
                match value {
                    Some(v) => set.execute((key, v)).map_err(db)?,
                    None => del.execute([key]).map_err(db)?,
                };
            }
        }

        if !batch.configs.is_empty() {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO configs (path, type_tag, value, updated_at)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(db)?;
            for (p, value) in &batch.configs {
                stmt.execute((p.as_str(), value.type_tag(), value.encode(), &now)).map_err(db)?;
            }
        }

        // Series ids: new ones are only remembered once the transaction commits.
        let mut new_metric_ids = Vec::new();
        let metric_ids = resolve_series(
            &tx,
            "metric_series",
            &batch.metric_series,
            &self.metric_ids,
            &mut new_metric_ids,
        )
        .map_err(db)?;
        let mut new_text_ids = Vec::new();
        let text_ids = resolve_series(
            &tx,
            "string_series",
            &batch.text_series,
            &self.text_ids,
            &mut new_text_ids,
        )
        .map_err(db)?;

        let mut nan =
            NanState { table: self.nan_table, known: &self.nan_series, new_series: Vec::new() };
        let mut staged = None;
        if !batch.metrics.is_empty() {
            let mut staged_now = self.pyramid.begin(&tx).map_err(db)?;
            let rows = &mut self.scratch;
            rows.clear();
            rows.extend(
                batch
                    .metrics
                    .iter()
                    .map(|m| (metric_ids[m.series_index()], m.step.get(), m.value, m.ts)),
            );
            sort_and_dedup(rows, &mut self.spare);
            write_metric_rows(&tx, rows, &mut nan).map_err(db)?;
            self.pyramid.apply(&tx, rows, &mut staged_now).map_err(db)?;
            staged = Some(staged_now);
        }
        let NanState { table: nan_table, new_series: new_nan_series, .. } = nan;

        if !batch.texts.is_empty() {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO string_points (series_id, step, value, ts) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (series_id, step) DO UPDATE
                     SET value = excluded.value, ts = excluded.ts, uploaded = 0",
                )
                .map_err(db)?;
            for t in &batch.texts {
                let sid = text_ids[t.series_index()];
                insert.execute((sid, t.step.get(), &t.value, t.ts)).map_err(db)?;
            }
        }

        super::histograms::write(&tx, &batch.histograms).map_err(db)?;
        let deleted = records::write(&tx, &batch.artifacts, &now).map_err(db)?;

        tx.commit().map_err(db)?;
        // Registered: their blobs may now be collected when no record names them.
        for op in &batch.artifacts {
            if let crate::artifacts::ArtifactOp::Add(a) = op
                && a.in_place.is_none()
            {
                self.blobs.unpin_registered(&a.blob);
            }
        }
        if !deleted.is_empty() {
            self.collect(&deleted);
        }
        self.since_checkpoint.0 += batch.len();
        self.since_checkpoint.1 += 1;
        if self.since_checkpoint.0 >= CHECKPOINT_AFTER_ROWS
            || self.since_checkpoint.1 >= CHECKPOINT_AFTER_COMMITS
        {
            if let Some(c) = &self.checkpointer {
                c.wake();
            }
            self.since_checkpoint = (0, 0);
        }
        self.metric_ids.extend(new_metric_ids);
        self.text_ids.extend(new_text_ids);
        self.nan_series.extend(new_nan_series);
        self.nan_table = nan_table;
        if let Some(staged) = staged {
            self.pyramid.commit(staged);
        }
        Ok(())
    }
}

/// Rows bound per multi-row `INSERT`: amortises statement overhead (about 20% faster
/// than one row per statement here; 200 rows take 4% fewer instructions per point than
/// 50, counted with cachegrind), and stays far below SQLite's parameter limit. What is
/// left of a batch goes in statements of the smaller sizes, then one by one.
const ROWS_PER_INSERT: usize = 200;
const ROWS_PER_TAIL_INSERT: [usize; 2] = [50, 10];

/// 0.4.0 writes `INSERT OR REPLACE`; an upsert leaves the same rows (same step and path
/// overwrite, `uploaded` back to 0) and is about twice as fast, as it does not delete
/// and reinsert.
const UPSERT_METRIC: &str = " ON CONFLICT (series_id, step) DO UPDATE
    SET y = excluded.y, ts = excluded.ts, uploaded = 0";

/// The upsert of `rows` rows, for each size the writer uses (built once: the 200-row
/// text is 4 KiB, too much to format at every write).
fn metric_insert_sql(rows: usize) -> &'static str {
    static SQL: std::sync::LazyLock<Vec<(usize, String)>> = std::sync::LazyLock::new(|| {
        [ROWS_PER_INSERT, ROWS_PER_TAIL_INSERT[0], ROWS_PER_TAIL_INSERT[1], 1]
            .into_iter()
            .map(|n| {
                let values = vec!["(?, ?, ?, ?)"; n].join(", ");
                let sql = format!(
                    "INSERT INTO metric_points (series_id, step, y, ts) VALUES {values}{UPSERT_METRIC}"
                );
                (n, sql)
            })
            .collect()
    });
    let (_, sql) = SQL.iter().find(|(n, _)| *n == rows).expect("a size the writer uses");
    sql
}

/// Orders rows by (series, step), keeping the last write of each (series, step): the
/// primary-key index then grows in runs at each series' right edge, and no statement
/// holds the same key twice.
///
/// Rows usually arrive step-major (every series at step n, then at n + 1), so this
/// groups them by series with a counting pass, which keeps arrival order, and only sorts
/// a group whose steps are out of order.
fn sort_and_dedup(rows: &mut Vec<(i64, f64, f64, i64)>, spare: &mut Vec<(i64, f64, f64, i64)>) {
    let by_key = |a: &(i64, f64, f64, i64), b: &(i64, f64, f64, i64)| (a.0, a.1) < (b.0, b.1);
    if rows.is_sorted_by(by_key) {
        return;
    }
    // Distinct series in order of id, and where each group starts.
    let mut series: Vec<(i64, usize)> = Vec::new();
    let mut hint = 0;
    for row in rows.iter() {
        match find_group(&series, row.0, &mut hint) {
            Ok(i) => series[i].1 += 1,
            Err(i) => series.insert(i, (row.0, 1)),
        }
    }
    let mut start = 0;
    for s in &mut series {
        let count = s.1;
        s.1 = start;
        start += count;
    }
    spare.clear();
    spare.resize(rows.len(), (0, 0.0, 0.0, 0));
    let mut next: Vec<usize> = series.iter().map(|s| s.1).collect();
    for row in rows.iter() {
        let g = find_group(&series, row.0, &mut hint).unwrap_or_default();
        spare[next[g]] = *row;
        next[g] += 1;
    }
    for (g, s) in series.iter().enumerate() {
        let group = &mut spare[s.1..next[g]];
        if !group.is_sorted_by(|a, b| a.1 <= b.1) {
            // Stable: equal steps stay in arrival order, so the last one is the latest.
            group.sort_by(|a, b| a.1.total_cmp(&b.1));
        }
    }
    std::mem::swap(rows, spare);
    rows.dedup_by(|later, kept| {
        let same = later.0 == kept.0 && later.1 == kept.1;
        if same {
            *kept = *later;
        }
        same
    });
}

/// Where series `id` is in `series` (sorted by id), as `binary_search` answers, trying
/// first the entry after the last one found (`hint`) and the first: rows usually come
/// step-major, one series after the other in the same order at every step.
fn find_group(series: &[(i64, usize)], id: i64, hint: &mut usize) -> Result<usize, usize> {
    for i in [*hint + 1, 0] {
        if series.get(i).is_some_and(|s| s.0 == id) {
            *hint = i;
            return Ok(i);
        }
    }
    let found = series.binary_search_by_key(&id, |s| s.0);
    if let Ok(i) = found {
        *hint = i;
    }
    found
}

/// What the writer knows of the NaN table during one transaction.
struct NanState<'a> {
    table: bool,
    known: &'a HashSet<i64>,
    new_series: Vec<i64>,
}

impl NanState<'_> {
    fn series_has_nan(&self, sid: i64) -> bool {
        self.known.contains(&sid) || self.new_series.contains(&sid)
    }
}

/// Writes sorted, deduplicated metric rows: finite values of series without NaN points
/// in multi-row upserts, the rest one at a time through the NaN rules.
fn write_metric_rows(
    tx: &Connection,
    rows: &[(i64, f64, f64, i64)],
    nan: &mut NanState<'_>,
) -> rusqlite::Result<()> {
    let mut single = tx.prepare_cached(metric_insert_sql(1))?;
    let mut bulk = None;
    let run = |stmt: &mut rusqlite::CachedStatement<'_>, chunk: &[(i64, f64, f64, i64)]| {
        for (k, &(sid, step, value, ts)) in chunk.iter().enumerate() {
            stmt.raw_bind_parameter(4 * k + 1, sid)?;
            stmt.raw_bind_parameter(4 * k + 2, step)?;
            stmt.raw_bind_parameter(4 * k + 3, value)?;
            stmt.raw_bind_parameter(4 * k + 4, ts)?;
        }
        stmt.raw_execute().map(drop)
    };
    // Keys are unique after dedup, so the order between the two paths does not matter.
    let mut chunk = Vec::with_capacity(ROWS_PER_INSERT);
    for row in rows {
        let (sid, step, value, ts) = *row;
        if value.is_nan() {
            if !nan.table {
                tx.execute_batch(NAN_DDL)?;
                nan.table = true;
            }
            tx.prepare_cached("DELETE FROM metric_points WHERE series_id = ?1 AND step = ?2")?
                .execute((sid, step))?;
            tx.prepare_cached(&format!(
                "INSERT OR REPLACE INTO {NAN_TABLE} (series_id, step, ts) VALUES (?1, ?2, ?3)"
            ))?
            .execute((sid, step, ts))?;
            if !nan.series_has_nan(sid) {
                nan.new_series.push(sid);
            }
        } else if nan.series_has_nan(sid) {
            tx.prepare_cached(&format!(
                "DELETE FROM {NAN_TABLE} WHERE series_id = ?1 AND step = ?2"
            ))?
            .execute((sid, step))?;
            run(&mut single, std::slice::from_ref(row))?;
        } else {
            chunk.push(*row);
            if chunk.len() == ROWS_PER_INSERT {
                if bulk.is_none() {
                    bulk = Some(tx.prepare_cached(metric_insert_sql(ROWS_PER_INSERT))?);
                }
                if let Some(stmt) = bulk.as_mut() {
                    run(stmt, &chunk)?;
                }
                chunk.clear();
            }
        }
    }
    let mut left = &chunk[..];
    for size in ROWS_PER_TAIL_INSERT {
        let mut tail = left.chunks_exact(size);
        if tail.len() > 0 {
            let mut some = tx.prepare_cached(metric_insert_sql(size))?;
            for rows in tail.by_ref() {
                run(&mut some, rows)?;
            }
        }
        left = tail.remainder();
    }
    for row in left {
        run(&mut single, std::slice::from_ref(row))?;
    }
    Ok(())
}

/// Maps a batch's series paths to database ids, creating missing series.
fn resolve_series(
    tx: &Connection,
    table: &str,
    paths: &[FieldPath],
    known: &HashMap<FieldPath, i64>,
    created: &mut Vec<(FieldPath, i64)>,
) -> rusqlite::Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(paths.len());
    for p in paths {
        if let Some(id) = known.get(p) {
            ids.push(*id);
            continue;
        }
        tx.prepare_cached(&format!("INSERT OR IGNORE INTO {table} (path) VALUES (?1)"))?
            .execute([p.as_str()])?;
        let id: i64 = tx
            .prepare_cached(&format!("SELECT id FROM {table} WHERE path = ?1"))?
            .query_row([p.as_str()], |r| r.get(0))?;
        created.push((p.clone(), id));
        ids.push(id);
    }
    Ok(ids)
}

impl RunWriter for SqliteRunWriter {
    fn write(&mut self, batch: &WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return self.conn().map(|_| ());
        }
        self.write_inner(batch, false)
    }

    fn config(&self, path: &FieldPath) -> Result<Option<ConfigValue>> {
        let conn = self.conn()?;
        conn.prepare_cached("SELECT type_tag, value FROM configs WHERE path = ?1")
            .and_then(|mut s| {
                s.query_row([path.as_str()], |r| {
                    Ok(ConfigValue::decode(
                        &r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?.as_deref(),
                    ))
                })
                .optional()
            })
            .map_err(|e| StoreError::db(&self.path, e))
    }

    fn last_steps(&self) -> Result<LastSteps> {
        let conn = self.conn()?;
        super::reader::last_steps(conn).map_err(|e| StoreError::db(&self.path, e))
    }

    fn meta(&self, key: &str) -> Result<Option<String>> {
        let conn = self.conn()?;
        conn.prepare_cached("SELECT value FROM run_meta WHERE key = ?1")
            .and_then(|mut s| s.query_row([key], |r| r.get::<_, Option<String>>(0)).optional())
            .map(Option::flatten)
            .map_err(|e| StoreError::db(&self.path, e))
    }

    fn location(&self) -> &str {
        &self.location
    }

    fn close(&mut self) -> Result<()> {
        self.finish(false)
    }

    fn release(&mut self) -> Result<()> {
        self.finish(true)
    }

    fn blobs(&self) -> Result<Arc<dyn BlobSink>> {
        self.conn()?;
        Ok(Arc::clone(&self.blobs) as Arc<dyn BlobSink>)
    }

    fn mark_uploaded_unchanged(&mut self, sent: &crate::uploads::Pending) -> Result<Option<u64>> {
        // Through this connection, not a second one: a commit by another connection
        // empties this one's page cache, which the next batch would read back.
        let marked = self.in_transaction(|tx| super::uploads::mark_vouched(tx, sent))?;
        self.since_checkpoint.0 += marked as usize;
        self.since_checkpoint.1 += 1;
        Ok(Some(marked))
    }
}

impl SqliteRunWriter {
    /// Removes the blobs of deleted records that no record names any more (a failure
    /// leaves them for the collection at close).
    fn collect(&self, deleted: &[crate::artifacts::ContentHash]) {
        let Some(conn) = self.conn.as_ref() else { return };
        if let Ok(referenced) = records::referenced(conn) {
            self.blobs.collect(deleted, &self.blobs.kept(&referenced));
        }
    }

    /// Checkpoints and closes; `abandon` leaves the lock file behind, free, as a writer
    /// that died leaves it.
    fn finish(&mut self, abandon: bool) -> Result<()> {
        let Some(conn) = self.conn.take() else {
            return Ok(());
        };
        // Blobs no record names (copies whose records were never written, records
        // deleted from outside while the run was live) go with the writer.
        if self.blobs.dir().exists()
            && let Ok(referenced) = records::referenced(&conn)
        {
            let _ = self.blobs.remove_unreferenced(&self.blobs.kept(&referenced));
        }
        if let Some(c) = self.checkpointer.take() {
            c.stop();
        }
        let result = conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(|e| StoreError::db(&self.path, e))
            .and_then(|()| conn.close().map_err(|(_, e)| StoreError::db(&self.path, e)));
        // Released only after the file is complete, so nobody sees a free lock on an
        // open run.
        match self.lock.take() {
            Some(lock) if abandon => lock.abandon(),
            lock => drop(lock),
        }
        result
    }
}

impl Drop for SqliteRunWriter {
    /// A writer dropped without [`RunWriter::close`] lets go of the run as a writer that
    /// died would: what it committed stays, and the lock file is left free, so a run that
    /// says `running` shows as crashed.
    fn drop(&mut self) {
        if let Some(c) = self.checkpointer.take() {
            c.stop();
        }
        drop(self.conn.take());
        if let Some(lock) = self.lock.take() {
            lock.abandon();
        }
    }
}
