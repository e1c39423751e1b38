//! [`SqliteRunReader`]: reads one run through a small pool of read-only connections.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use goodseed_core::downsample::{Downsampler, PointCount, Sampled, Window};
use goodseed_core::{ConfigValue, MetricPoint, TextPoint};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row};
use scheduled_thread_pool::ScheduledThreadPool;

use super::pyramid;
use super::schema::{self, NAN_TABLE, ReadMode};
use crate::model::{LastSteps, RunMeta, RunReader, RunVersion, TextOrder, TextPage, TextWindow};
use crate::{Result, StoreError};

/// Reads one run file through pooled read-only connections.
///
/// A run that was closed when the reader arrived (no `-wal` beside it) is opened with
/// SQLite's `immutable=1`: no locks, no `-wal` or `-shm` files left behind. A live run is
/// opened read-only and shares the writer's WAL, so each query sees the newest commit.
#[derive(Debug, Clone)]
pub struct SqliteRunReader {
    pool: r2d2::Pool<SqliteConnectionManager>,
    path: PathBuf,
    mode: ReadMode,
    /// For a closed run: the version of the file (see [`version_of`]).
    version: Option<RunVersion>,
    /// For a live run: tidies the writer's `-wal` and `-shm` once the last clone of this
    /// reader (and so its pool, declared before it and dropped first) is gone.
    _tidy: Option<Arc<Tidy>>,
}

/// Removes what SQLite leaves beside a run a reader shared with its writer: once the
/// writer has closed, its emptied `-wal` and its `-shm` stay while readers hold
/// connections, and a read-only connection may not remove them. A brief read-write
/// connection, closing last, lets SQLite itself remove them (only when it is the last
/// connection: one of another process keeps them). Nothing is written.
#[derive(Debug)]
struct Tidy {
    path: PathBuf,
}

impl Drop for Tidy {
    fn drop(&mut self) {
        let empty_wal = std::fs::metadata(schema::wal_path(&self.path)).is_ok_and(|m| m.len() == 0);
        if !empty_wal || super::lock::probe(&self.path) == super::lock::LockState::Held {
            return;
        }
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if let Ok(conn) = Connection::open_with_flags(&self.path, flags) {
            let _ = conn.busy_timeout(Duration::from_millis(100));
            let _ = conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()));
            let _ = conn.close();
        }
    }
}

/// The version of a closed run file: a hash of its path, size and modification time,
/// the same for a reader and for the summary a listing makes of the file.
pub(crate) fn version_of(path: &Path, size: u64, modified: std::time::SystemTime) -> RunVersion {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    size.hash(&mut h);
    modified.hash(&mut h);
    RunVersion(h.finish())
}

impl SqliteRunReader {
    /// Opens a reader on a run file, checking that it is a goodseed run.
    pub fn open(path: &Path) -> Result<SqliteRunReader> {
        SqliteRunReader::open_with(path, None)
    }

    pub(crate) fn open_with(
        path: &Path,
        threads: Option<Arc<ScheduledThreadPool>>,
    ) -> Result<SqliteRunReader> {
        let mode = ReadMode::for_file(path);
        // Fail fast on files that are not runs: the pool would retry until its timeout.
        let probe = schema::open_reader(path, mode)?;
        schema::check_is_run(&probe, path)?;
        drop(probe);
        let manager = SqliteConnectionManager::file(schema::file_uri(path, mode))
            .with_flags(schema::reader_flags())
            .with_init(|c| c.busy_timeout(Duration::from_millis(schema::BUSY_TIMEOUT_MS.into())));
        let mut builder = r2d2::Pool::builder()
            .max_size(4)
            .min_idle(Some(0))
            .idle_timeout(Some(Duration::from_secs(10)))
            .connection_timeout(Duration::from_secs(10));
        if let Some(threads) = threads {
            builder = builder.thread_pool(threads);
        }
        let version = match mode {
            ReadMode::Closed => std::fs::metadata(path)
                .ok()
                .and_then(|m| Some(version_of(path, m.len(), m.modified().ok()?))),
            ReadMode::Live => None,
        };
        Ok(SqliteRunReader {
            pool: builder.build_unchecked(manager),
            path: path.to_owned(),
            mode,
            version,
            _tidy: (mode == ReadMode::Live).then(|| Arc::new(Tidy { path: path.to_owned() })),
        })
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the reader was opened on a closed run (immutable mode).
    pub(crate) fn opened_closed(&self) -> bool {
        self.mode == ReadMode::Closed
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>> {
        self.pool.get().map_err(|e| StoreError::Database {
            location: crate::error::shown(&self.path),
            message: e.to_string(),
            busy: true,
        })
    }

    fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.conn()?;
        f(&conn).map_err(|e| schema::not_a_run(&self.path, e))
    }
}

/// Reads `run_meta`.
pub(crate) fn read_meta(conn: &Connection) -> rusqlite::Result<RunMeta> {
    let mut stmt = conn.prepare_cached("SELECT key, value FROM run_meta")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?.unwrap_or_default()))
    })?;
    Ok(RunMeta(rows.collect::<rusqlite::Result<_>>()?))
}

/// Paths of a series table that have at least one point (looked up through the primary
/// key, never by scanning points).
pub(crate) fn paths_with_points(
    conn: &Connection,
    series: &str,
    points: &str,
) -> rusqlite::Result<Vec<String>> {
    if !schema::has_table(conn, series)? || !schema::has_table(conn, points)? {
        return Ok(Vec::new());
    }
    let nan = series == "metric_series" && schema::has_table(conn, NAN_TABLE)?;
    let extra = if nan {
        format!(" OR EXISTS (SELECT 1 FROM {NAN_TABLE} n WHERE n.series_id = s.id)")
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT s.path FROM {series} s
         WHERE EXISTS (SELECT 1 FROM {points} p WHERE p.series_id = s.id){extra}
         ORDER BY s.path"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// The last step of every metric and text series.
pub(crate) fn last_steps(conn: &Connection) -> rusqlite::Result<LastSteps> {
    let mut out = LastSteps::new();
    let mut sql = vec![
        "SELECT s.path, MAX(p.step) FROM metric_points p JOIN metric_series s ON p.series_id = s.id GROUP BY s.path".to_owned(),
        "SELECT s.path, MAX(p.step) FROM string_points p JOIN string_series s ON p.series_id = s.id GROUP BY s.path".to_owned(),
    ];
    if schema::has_table(conn, NAN_TABLE)? {
        sql.push(format!(
            "SELECT s.path, MAX(p.step) FROM {NAN_TABLE} p JOIN metric_series s ON p.series_id = s.id GROUP BY s.path"
        ));
    }
    for q in sql {
        let mut stmt = conn.prepare(&q)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))?;
        for row in rows {
            let (path, step) = row?;
            let e = out.entry(path).or_insert(step);
            *e = e.max(step);
        }
    }
    Ok(out)
}

fn series_id(conn: &Connection, table: &str, path: &str) -> rusqlite::Result<Option<i64>> {
    if !schema::has_table(conn, table)? {
        return Ok(None);
    }
    conn.prepare_cached(&format!("SELECT id FROM {table} WHERE path = ?1"))?
        .query_row([path], |r| r.get(0))
        .optional()
}

pub(super) fn series_has_nan(conn: &Connection, sid: i64) -> rusqlite::Result<bool> {
    if !schema::has_table(conn, NAN_TABLE)? {
        return Ok(false);
    }
    conn.prepare_cached(&format!("SELECT 1 FROM {NAN_TABLE} WHERE series_id = ?1 LIMIT 1"))?
        .query_row([sid], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
}

/// Number of points in a series, NaN points included.
fn count_points(conn: &Connection, sid: i64, with_nan: bool) -> rusqlite::Result<u64> {
    let mut n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM metric_points WHERE series_id = ?1")?
        .query_row([sid], |r| r.get(0))?;
    if with_nan {
        n += conn
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM {NAN_TABLE} n WHERE n.series_id = ?1 AND NOT EXISTS
                 (SELECT 1 FROM metric_points p WHERE p.series_id = ?1 AND p.step = n.step)"
            ))?
            .query_row([sid], |r| r.get::<_, i64>(0))?;
    }
    Ok(n.max(0) as u64)
}

/// The points of one series in step order: straight from `metric_points`, or merged with
/// the NaN table when the series has NaN points. A row in `metric_points` wins over a NaN
/// at the same step (only a writer that cannot store NaN could have put it there later).
pub(super) fn series_points_sql(with_nan: bool) -> String {
    if with_nan {
        format!(
            "SELECT step, y, ts FROM metric_points WHERE series_id = ?1
             UNION ALL
             SELECT n.step, NULL, n.ts FROM {NAN_TABLE} n WHERE n.series_id = ?1
               AND NOT EXISTS (SELECT 1 FROM metric_points p WHERE p.series_id = ?1 AND p.step = n.step)
             ORDER BY 1"
        )
    } else {
        "SELECT step, y, ts FROM metric_points WHERE series_id = ?1 ORDER BY step".to_owned()
    }
}

/// A float column that older or foreign writers may have filled with integers or NULL.
fn loose_f64(v: ValueRef<'_>) -> f64 {
    match v {
        ValueRef::Real(x) => x,
        ValueRef::Integer(i) => i as f64,
        ValueRef::Text(t) => {
            std::str::from_utf8(t).ok().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN)
        }
        ValueRef::Null | ValueRef::Blob(_) => f64::NAN,
    }
}

fn loose_i64(v: ValueRef<'_>) -> i64 {
    match v {
        ValueRef::Integer(i) => i,
        ValueRef::Real(x) => x as i64,
        _ => 0,
    }
}

pub(super) fn metric_point(row: &Row<'_>, first: usize) -> rusqlite::Result<MetricPoint> {
    Ok(MetricPoint {
        step: loose_f64(row.get_ref(first)?),
        value: loose_f64(row.get_ref(first + 1)?),
        ts: loose_i64(row.get_ref(first + 2)?),
    })
}

fn text_point(row: &Row<'_>) -> rusqlite::Result<(String, TextPoint)> {
    let value = match row.get_ref(2)? {
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        other => match other {
            ValueRef::Integer(i) => i.to_string(),
            ValueRef::Real(x) => x.to_string(),
            _ => String::new(),
        },
    };
    Ok((
        row.get(0)?,
        TextPoint { step: loose_f64(row.get_ref(1)?), value, ts: loose_i64(row.get_ref(3)?) },
    ))
}

impl RunReader for SqliteRunReader {
    fn meta(&self) -> Result<RunMeta> {
        self.with_conn(read_meta)
    }

    fn configs(&self) -> Result<Vec<(String, ConfigValue)>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached("SELECT path, type_tag, value FROM configs")?;
            let rows = stmt.query_map([], |r| {
                let tag: String = r.get(1)?;
                let value: Option<String> = match r.get_ref(2)? {
                    ValueRef::Null => None,
                    ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Integer(i) => Some(i.to_string()),
                    ValueRef::Real(x) => Some(goodseed_core::python_float_repr(x)),
                    ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
                };
                Ok((r.get::<_, String>(0)?, ConfigValue::decode(&tag, value.as_deref())))
            })?;
            rows.collect()
        })
    }

    fn metric_paths(&self) -> Result<Vec<String>> {
        self.with_conn(|c| paths_with_points(c, "metric_series", "metric_points"))
    }

    fn text_paths(&self) -> Result<Vec<String>> {
        self.with_conn(|c| paths_with_points(c, "string_series", "string_points"))
    }

    fn metric_count(&self, path: &str) -> Result<u64> {
        self.with_conn(|conn| {
            let Some(sid) = series_id(conn, "metric_series", path)? else {
                return Ok(0);
            };
            // The pyramid is only an index: when it cannot be read (tables of another
            // layout), the points are.
            if let Ok(Some(state)) = pyramid::valid_state(conn, sid) {
                return Ok(state.len());
            }
            count_points(conn, sid, series_has_nan(conn, sid)?)
        })
    }

    fn visit_metrics(
        &self,
        path: Option<&str>,
        visit: &mut dyn FnMut(&str, MetricPoint) -> bool,
    ) -> Result<()> {
        self.with_conn(|conn| {
            let series: Vec<(i64, String)> = match path {
                Some(p) => series_id(conn, "metric_series", p)?
                    .map(|sid| vec![(sid, p.to_owned())])
                    .unwrap_or_default(),
                None if schema::has_table(conn, "metric_series")? => {
                    let mut stmt =
                        conn.prepare_cached("SELECT id, path FROM metric_series ORDER BY path")?;
                    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    rows.collect::<rusqlite::Result<_>>()?
                }
                None => Vec::new(),
            };
            for (sid, p) in series {
                let sql = series_points_sql(series_has_nan(conn, sid)?);
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut rows = stmt.query([sid])?;
                while let Some(row) = rows.next()? {
                    if !visit(&p, metric_point(row, 0)?) {
                        return Ok(());
                    }
                }
            }
            Ok(())
        })
    }

    fn visit_metrics_after(
        &self,
        path: &str,
        after: Option<f64>,
        visit: &mut dyn FnMut(MetricPoint) -> bool,
    ) -> Result<()> {
        self.with_conn(|conn| {
            let Some(sid) = series_id(conn, "metric_series", path)? else {
                return Ok(());
            };
            // The plain form lets SQLite seek the primary key straight to `after`.
            let sql = if series_has_nan(conn, sid)? {
                format!(
                    "SELECT step, y, ts FROM ({}) WHERE step > ?2 ORDER BY step",
                    series_points_sql(true)
                )
            } else {
                "SELECT step, y, ts FROM metric_points WHERE series_id = ?1 AND step > ?2 ORDER BY step"
                    .to_owned()
            };
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query((sid, after.unwrap_or(f64::NEG_INFINITY)))?;
            while let Some(row) = rows.next()? {
                if !visit(metric_point(row, 0)?) {
                    break;
                }
            }
            Ok(())
        })
    }

    fn last_metric_point(&self, path: &str) -> Result<Option<MetricPoint>> {
        self.with_conn(|conn| {
            let Some(sid) = series_id(conn, "metric_series", path)? else {
                return Ok(None);
            };
            let sql = if series_has_nan(conn, sid)? {
                format!(
                    "SELECT step, y, ts FROM ({}) ORDER BY step DESC LIMIT 1",
                    series_points_sql(true)
                )
            } else {
                "SELECT step, y, ts FROM metric_points WHERE series_id = ?1 ORDER BY step DESC LIMIT 1"
                    .to_owned()
            };
            conn.prepare_cached(&sql)?.query_row([sid], |row| metric_point(row, 0)).optional()
        })
    }

    fn downsample_metric(
        &self,
        path: &str,
        first_point_index: Option<i64>,
        last_point_index: Option<i64>,
        point_count: PointCount,
    ) -> Result<(Window, Sampled)> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(|e| StoreError::db(&self.path, e))?;
        let result = (|| {
            let empty = |total| {
                (Window::new(total, first_point_index, last_point_index), Sampled::default())
            };
            let Some(sid) = series_id(&tx, "metric_series", path)? else {
                return Ok(empty(0));
            };
            let with_nan = series_has_nan(&tx, sid)?;
            // The pyramid, when it describes the file, knows the count and answers most
            // requests from about `point_count` rows; otherwise the points are read.
            // An unreadable pyramid (tables of another layout) is no pyramid.
            let state = pyramid::valid_state(&tx, sid).ok().flatten();
            let total = match &state {
                Some(state) => state.len(),
                None => count_points(&tx, sid, with_nan)?,
            };
            let window = Window::new(total, first_point_index, last_point_index);
            let rows = window.rows();
            if rows.is_empty() {
                return Ok(empty(total));
            }
            if let Some(state) = &state
                && let Ok(Some(sampled)) =
                    pyramid::sample(&tx, sid, with_nan, state, rows.clone(), point_count)
            {
                return Ok((window, sampled));
            }
            let mut sampler = Downsampler::new(window.row_count(), point_count);
            let sql = format!("{} LIMIT ?2 OFFSET ?3", series_points_sql(with_nan));
            let mut stmt = tx.prepare_cached(&sql)?;
            let len = i64::try_from(rows.end - rows.start).unwrap_or(i64::MAX);
            let offset = i64::try_from(rows.start).unwrap_or(i64::MAX);
            let mut cursor = stmt.query((sid, len, offset))?;
            while let Some(row) = cursor.next()? {
                sampler.push(metric_point(row, 0)?);
            }
            Ok((window, sampler.finish()))
        })()
        .map_err(|e| schema::not_a_run(&self.path, e));
        // A read transaction: ending it can only release the snapshot.
        let _ = tx.finish();
        result
    }

    fn text_points_in(
        &self,
        path: Option<&str>,
        window: TextWindow,
        by: TextOrder,
    ) -> Result<TextPage> {
        self.with_conn(|conn| {
            if !schema::has_table(conn, "string_series")? || !schema::has_table(conn, "string_points")? {
                return Ok(TextPage::default());
            }
            let filter = if path.is_some() { "WHERE s.path = ?1" } else { "" };
            let order = match (path, by) {
                (Some(_), _) => "p.step",
                (None, TextOrder::Path) => "s.path, p.step",
                (None, TextOrder::Step) => "p.step, s.path",
            };
            let base = format!(
                "SELECT s.path, p.step, p.value, p.ts FROM string_points p
                 JOIN string_series s ON p.series_id = s.id {filter}"
            );
            let total: i64 = {
                let sql = format!(
                    "SELECT COUNT(*) FROM string_points p JOIN string_series s ON p.series_id = s.id {filter}"
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                match path {
                    Some(p) => stmt.query_row([p], |r| r.get(0))?,
                    None => stmt.query_row([], |r| r.get(0))?,
                }
            };
            let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            let (sql, limits): (String, Vec<i64>) = match window {
                TextWindow::All => (format!("{base} ORDER BY {order}"), vec![]),
                TextWindow::Page { limit, offset } => (
                    format!("{base} ORDER BY {order} LIMIT ?2 OFFSET ?3"),
                    vec![clamp(limit), clamp(offset)],
                ),
                // As 0.4.0 does: `DESC` binds to the last ordering column only, so with
                // no path the tail is taken per path order, newest steps first. In step
                // order, the newest steps of all series.
                TextWindow::Tail(n) => {
                    let (inner, outer) = match (path, by) {
                        (Some(_), _) => ("p.step DESC", "2"),
                        (None, TextOrder::Path) => ("s.path, p.step DESC", "1, 2"),
                        (None, TextOrder::Step) => ("p.step DESC, s.path DESC", "2, 1"),
                    };
                    (
                        format!(
                            "SELECT * FROM ({base} ORDER BY {inner} LIMIT ?2) ORDER BY {outer}"
                        ),
                        vec![clamp(n)],
                    )
                }
            };
            // Parameters are numbered from ?2 so that ?1 is always the path; with no
            // path, bind a dummy first.
            let mut stmt = conn.prepare_cached(&sql)?;
            let first: Option<&str> = path;
            let mut idx = 1;
            if sql.contains("?1") {
                stmt.raw_bind_parameter(idx, first)?;
            } else if !limits.is_empty() {
                // No ?1 in the SQL: SQLite still counts ?2 as the second parameter.
                stmt.raw_bind_parameter(idx, Option::<&str>::None)?;
            }
            for v in &limits {
                idx += 1;
                stmt.raw_bind_parameter(idx, v)?;
            }
            let mut rows = stmt.raw_query();
            let mut points = Vec::new();
            while let Some(row) = rows.next()? {
                points.push(text_point(row)?);
            }
            Ok(TextPage { points, total: total.max(0) as u64 })
        })
    }

    fn integer_steps(&self) -> Result<bool> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT type FROM pragma_table_info('metric_points') WHERE name = 'step'",
            )?;
            let ty: Option<String> = stmt.query_row([], |r| r.get(0)).optional()?;
            Ok(ty.is_some_and(|t| t.eq_ignore_ascii_case("INTEGER")))
        })
    }

    fn version(&self) -> Option<RunVersion> {
        self.version
    }

    fn histogram_paths(&self) -> Result<Vec<String>> {
        self.with_conn(super::histograms::paths)
    }

    fn histograms(&self, path: &str) -> Result<Vec<goodseed_core::HistogramPoint>> {
        self.with_conn(|conn| super::histograms::read(conn, path))
    }

    fn artifacts(&self) -> Result<Vec<crate::artifacts::Artifact>> {
        self.with_conn(super::artifacts::list)
    }

    fn artifacts_after(&self, after: i64) -> Result<Vec<crate::artifacts::Artifact>> {
        self.with_conn(|conn| super::artifacts::list_after(conn, after))
    }

    fn open_blob(&self, hash: &crate::artifacts::ContentHash) -> Result<crate::artifacts::Blob> {
        let no_such = || StoreError::NoSuchArtifact {
            what: hash.to_string(),
            location: crate::error::shown(&self.path),
        };
        if !self.with_conn(|conn| super::artifacts::names_stored(conn, hash))? {
            return Err(no_such());
        }
        let blobs = crate::blobs::BlobDir::new(super::artifacts::blob_dir_of(&self.path), None);
        blobs.open(hash).map_err(|_| no_such())
    }

    fn open_tree(
        &self,
        hash: &crate::artifacts::ContentHash,
    ) -> Result<crate::artifacts::TreeFiles> {
        if !self.with_conn(|conn| super::artifacts::names_stored(conn, hash))? {
            return Err(StoreError::NoSuchArtifact {
                what: hash.to_string(),
                location: crate::error::shown(&self.path),
            });
        }
        crate::blobs::BlobDir::new(super::artifacts::blob_dir_of(&self.path), None).tree_files(hash)
    }

    fn check_blobs(&self, deep: bool) -> Result<Vec<String>> {
        let blobs = crate::blobs::BlobDir::new(super::artifacts::blob_dir_of(&self.path), None);
        self.with_conn(|conn| super::artifacts::check(conn, &blobs, deep))
    }

    fn integrity_check(&self) -> Result<Vec<String>> {
        // On the pool's read-only connections: a closed run is opened `immutable=1`, so
        // the check takes no lock and leaves nothing beside the file.
        // Damage bad enough to stop the check (a page that cannot even be parsed) is
        // its finding, not a failure to check.
        let conn = self.conn()?;
        let check = || -> rusqlite::Result<Vec<String>> {
            let mut stmt = conn.prepare("PRAGMA integrity_check")?;
            let rows = stmt.query_map([], |r| {
                Ok(match r.get_ref(0)? {
                    ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    other => format!("{other:?}"),
                })
            })?;
            rows.collect()
        };
        match check() {
            // A row may hold several lines under a "*** in database main ***" heading.
            Ok(rows) => Ok(rows
                .iter()
                .flat_map(|row| row.lines())
                .filter(|line| !line.starts_with("*** in database "))
                .map(str::to_owned)
                .collect()),
            Err(e) if schema::is_damage(&e) => Ok(vec![e.to_string()]),
            Err(e) => Err(schema::not_a_run(&self.path, e)),
        }
    }
}
