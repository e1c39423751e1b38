//! The SQLite store's downsampling pyramid: the buckets and states of
//! [`crate::pyramid`] kept in tables of ours in the run file, and the watermark that says
//! which rows they describe (other writers, such as goodseed 0.4.0, write points without
//! them). See docs/FORMAT.md for the tables and the validity rule.

use std::collections::HashMap;
use std::ops::Range;

use goodseed_core::MetricPoint;
use goodseed_core::downsample::{PointCount, Sampled};
use rusqlite::{Connection, OptionalExtension};

pub(crate) use crate::pyramid::MIN_LEVEL;
use crate::pyramid::{self as pure, BucketRow, Seqs, SeriesState};

use super::reader::{metric_point, series_has_nan, series_points_sql};
use super::schema::{self, NAN_TABLE};

/// The bucket rows.
pub(crate) const BUCKETS_TABLE: &str = "metric_pyramid";
/// The writer's state per series.
pub(crate) const SERIES_TABLE: &str = "metric_pyramid_series";
/// The one-row table that says which data the pyramid describes.
pub(crate) const WATERMARK_TABLE: &str = "metric_pyramid_watermark";

/// The pyramid's format version, in the watermark row; a reader ignores any other.
const VERSION: i64 = 1;

pub(crate) const DDL: &str = "
CREATE TABLE IF NOT EXISTS metric_pyramid (
    series_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    buckets BLOB NOT NULL,
    PRIMARY KEY (series_id, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS metric_pyramid_series (
    series_id INTEGER PRIMARY KEY,
    state BLOB NOT NULL
);

CREATE TABLE IF NOT EXISTS metric_pyramid_watermark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    points_rowid INTEGER NOT NULL,
    nan_rowid INTEGER NOT NULL
);
";

/// Removes the pyramid's tables (their layout is not [`DDL`]'s).
const DROP_DDL: &str = "
DROP TABLE IF EXISTS metric_pyramid;
DROP TABLE IF EXISTS metric_pyramid_series;
DROP TABLE IF EXISTS metric_pyramid_watermark;
";

/// A value as a reader gets it back: `-0.0` from a `REAL` column comes back as `0.0` (it
/// is stored as the integer 0), and a NaN (kept as a row of the NaN table) as the one
/// NaN. The pyramid folds what readers read.
fn as_stored(x: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else if x.is_nan() {
        f64::NAN
    } else {
        x
    }
}

/// Which rows the pyramid describes: the largest rowids of `metric_points` and
/// `metric_nan_points` (0 for none) after the last transaction that kept it. Every row
/// another writer adds (goodseed 0.4.0 writes `INSERT OR REPLACE`, which gives even an
/// overwritten row a new rowid) moves one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Watermark {
    points: i64,
    nan: i64,
}

fn live_watermark(conn: &Connection) -> rusqlite::Result<Watermark> {
    let max_rowid = |table: &str| -> rusqlite::Result<i64> {
        conn.prepare_cached(&format!("SELECT COALESCE(MAX(rowid), 0) FROM {table}"))?
            .query_row([], |r| r.get(0))
    };
    let points = max_rowid("metric_points")?;
    let nan = if schema::has_table(conn, NAN_TABLE)? { max_rowid(NAN_TABLE)? } else { 0 };
    Ok(Watermark { points, nan })
}

fn stored_watermark(conn: &Connection) -> rusqlite::Result<Option<Watermark>> {
    if !schema::has_table(conn, WATERMARK_TABLE)? {
        return Ok(None);
    }
    let row = conn
        .prepare_cached(&format!(
            "SELECT version, points_rowid, nan_rowid FROM {WATERMARK_TABLE} WHERE id = 1"
        ))?
        .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))
        .optional()?;
    Ok(row.and_then(|(version, points, nan)| {
        (version == VERSION).then_some(Watermark { points, nan })
    }))
}

fn set_watermark(conn: &Connection, w: Watermark) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {WATERMARK_TABLE} (id, version, points_rowid, nan_rowid)
         VALUES (1, ?1, ?2, ?3)"
    ))?
    .execute((VERSION, w.points, w.nan))
    .map(drop)
}

fn load_state(conn: &Connection, sid: i64) -> rusqlite::Result<Option<SeriesState>> {
    let blob: Option<Vec<u8>> = conn
        .prepare_cached(&format!("SELECT state FROM {SERIES_TABLE} WHERE series_id = ?1"))?
        .query_row([sid], |r| r.get(0))
        .optional()?;
    Ok(blob.as_deref().and_then(SeriesState::decode))
}

fn save_state(conn: &Connection, sid: i64, state: &SeriesState) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {SERIES_TABLE} (series_id, state) VALUES (?1, ?2)"
    ))?
    .execute((sid, state.encode()))
    .map(drop)
}

fn drop_series(conn: &Connection, sid: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!("DELETE FROM {BUCKETS_TABLE} WHERE series_id = ?1"))?
        .execute([sid])?;
    conn.prepare_cached(&format!("DELETE FROM {SERIES_TABLE} WHERE series_id = ?1"))?
        .execute([sid])?;
    Ok(())
}

fn drop_all(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "DELETE FROM {BUCKETS_TABLE}; DELETE FROM {SERIES_TABLE}; DELETE FROM {WATERMARK_TABLE};"
    ))
}

/// Rows per multi-row insert of buckets (3 parameters each).
const ROWS_PER_INSERT: usize = 100;

fn insert_sql(rows: usize) -> String {
    let values = vec!["(?, ?, ?)"; rows].join(", ");
    format!("INSERT OR REPLACE INTO {BUCKETS_TABLE} (series_id, seq, buckets) VALUES {values}")
}

fn insert_buckets(conn: &Connection, sid: i64, rows: &[BucketRow]) -> rusqlite::Result<()> {
    let run = |stmt: &mut rusqlite::CachedStatement<'_>, chunk: &[BucketRow]| {
        for (i, row) in chunk.iter().enumerate() {
            let at = 3 * i;
            stmt.raw_bind_parameter(at + 1, sid)?;
            stmt.raw_bind_parameter(at + 2, row.seq as i64)?;
            stmt.raw_bind_parameter(at + 3, &row.bytes[..])?;
        }
        stmt.raw_execute().map(drop)
    };
    let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
    if chunks.len() > 0 {
        let mut full = conn.prepare_cached(&insert_sql(ROWS_PER_INSERT))?;
        for chunk in &mut chunks {
            run(&mut full, chunk)?;
        }
    }
    if !chunks.remainder().is_empty() {
        let mut single = conn.prepare_cached(&insert_sql(1))?;
        for row in chunks.remainder() {
            run(&mut single, std::slice::from_ref(row))?;
        }
    }
    Ok(())
}

/// The writer's side: every series' state, kept in step with the file.
#[derive(Debug)]
pub(crate) struct PyramidWriter {
    /// False once another writer's rows were seen in the file while this one writes:
    /// the pyramid is then dropped until the next open rebuilds it.
    enabled: bool,
    /// The smallest level of the series this writer starts.
    min_level: u32,
    /// The watermark stored by this writer's last transaction.
    watermark: Watermark,
    /// Every metric series with points: its state, or `None` when it is not indexed (a
    /// step was written at or before its last one).
    series: HashMap<i64, Option<SeriesState>>,
    /// Buckets completed by the transaction under way.
    rows: Vec<BucketRow>,
}

/// What one transaction changes in a [`PyramidWriter`], applied once it commits.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    series: Vec<(i64, Option<SeriesState>)>,
    watermark: Option<Watermark>,
    disable: bool,
}

impl PyramidWriter {
    /// For a new file (its tables made in its first transaction).
    pub(crate) fn new(min_level: u32) -> PyramidWriter {
        PyramidWriter {
            enabled: true,
            min_level,
            watermark: Watermark::default(),
            series: HashMap::new(),
            rows: Vec::new(),
        }
    }

    /// For an existing file, in a write transaction: makes the tables if missing, loads
    /// every series' state, and rebuilds from its points any series without a valid one
    /// (all of them when the watermark shows other writers' rows, or the file has no
    /// pyramid yet: a file from goodseed 0.4.0).
    pub(crate) fn open(tx: &Connection, min_level: u32) -> rusqlite::Result<PyramidWriter> {
        match PyramidWriter::open_tables(tx, min_level) {
            Ok(writer) => Ok(writer),
            // Tables of another layout (a development build's): the pyramid is only an
            // index of the points, so it is made anew rather than refusing the file.
            Err(_) => {
                tx.execute_batch(DROP_DDL)?;
                PyramidWriter::open_tables(tx, min_level)
            }
        }
    }

    fn open_tables(tx: &Connection, min_level: u32) -> rusqlite::Result<PyramidWriter> {
        tx.execute_batch(DDL)?;
        let mut writer = PyramidWriter::new(min_level);
        let valid = stored_watermark(tx)? == Some(live_watermark(tx)?);
        if !valid {
            drop_all(tx)?;
        }
        let ids: Vec<i64> = {
            let mut stmt = tx.prepare("SELECT id FROM metric_series ORDER BY id")?;
            let ids = stmt.query_map([], |r| r.get(0))?;
            ids.collect::<rusqlite::Result<_>>()?
        };
        for sid in ids {
            let state = match if valid { load_state(tx, sid)? } else { None } {
                Some(state) => Some(state),
                None => {
                    drop_series(tx, sid)?;
                    writer.rebuild(tx, sid)?
                }
            };
            writer.series.insert(sid, state);
        }
        writer.watermark = live_watermark(tx)?;
        set_watermark(tx, writer.watermark)?;
        Ok(writer)
    }

    /// Folds every point of a series, as a reader returns them, into a new state and
    /// stores it; `None` (and nothing stored) for a series whose steps are not finite
    /// and increasing as read (files from other writers may hold anything).
    fn rebuild(&mut self, tx: &Connection, sid: i64) -> rusqlite::Result<Option<SeriesState>> {
        let sql = series_points_sql(series_has_nan(tx, sid)?);
        let mut stmt = tx.prepare(&sql)?;
        let mut cursor = stmt.query([sid])?;
        let mut state = SeriesState::new(self.min_level);
        self.rows.clear();
        while let Some(row) = cursor.next()? {
            let point = metric_point(row, 0)?;
            let point =
                MetricPoint { step: as_stored(point.step), value: as_stored(point.value), ..point };
            if !point.step.is_finite() || state.last().is_some_and(|last| point.step <= last.step) {
                drop_series(tx, sid)?;
                return Ok(None);
            }
            state.push(point, &mut self.rows);
            if self.rows.len() >= 4096 {
                insert_buckets(tx, sid, &self.rows)?;
                self.rows.clear();
            }
        }
        insert_buckets(tx, sid, &self.rows)?;
        self.rows.clear();
        if state.is_empty() {
            return Ok(Some(state));
        }
        save_state(tx, sid, &state)?;
        Ok(Some(state))
    }

    /// At the start of a transaction that writes metric points: if rows appeared that
    /// this writer did not write, the pyramid no longer describes the file, and is
    /// dropped.
    pub(crate) fn begin(&self, tx: &Connection) -> rusqlite::Result<Staged> {
        let mut staged = Staged::default();
        if self.enabled && live_watermark(tx)? != self.watermark {
            drop_all(tx)?;
            staged.disable = true;
        }
        Ok(staged)
    }

    /// Folds a transaction's metric rows, `(series id, step, value, ts)` sorted by series
    /// then step with one row per step, after they were written: stores the completed
    /// buckets, the series' new states and the watermark. A series given a step at or
    /// before its last one loses its pyramid (readers then read it raw).
    pub(crate) fn apply(
        &mut self,
        tx: &Connection,
        rows: &[(i64, f64, f64, i64)],
        staged: &mut Staged,
    ) -> rusqlite::Result<()> {
        if !self.enabled || staged.disable {
            return Ok(());
        }
        for group in rows.chunk_by(|a, b| a.0 == b.0) {
            let sid = group[0].0;
            let mut state = match self.series.get(&sid) {
                Some(None) => continue,
                Some(Some(state)) => state.clone(),
                None => SeriesState::new(self.min_level),
            };
            if state.last().is_some_and(|last| as_stored(group[0].1) <= last.step) {
                drop_series(tx, sid)?;
                staged.series.push((sid, None));
                continue;
            }
            self.rows.clear();
            for &(_, step, value, ts) in group {
                let point = MetricPoint { step: as_stored(step), value: as_stored(value), ts };
                state.push(point, &mut self.rows);
            }
            insert_buckets(tx, sid, &self.rows)?;
            save_state(tx, sid, &state)?;
            staged.series.push((sid, Some(state)));
        }
        let watermark = live_watermark(tx)?;
        set_watermark(tx, watermark)?;
        staged.watermark = Some(watermark);
        Ok(())
    }

    /// The transaction committed: its changes become the writer's.
    pub(crate) fn commit(&mut self, staged: Staged) {
        if staged.disable {
            self.enabled = false;
            self.series.clear();
            return;
        }
        self.series.extend(staged.series);
        if let Some(w) = staged.watermark {
            self.watermark = w;
        }
    }
}

// ---------------------------------------------------------------------------------------
// The reader's side.

/// A series' state when the pyramid describes the file as it is: the watermark matches
/// the tables' largest rowids and the series is indexed.
pub(crate) fn valid_state(conn: &Connection, sid: i64) -> rusqlite::Result<Option<SeriesState>> {
    let Some(stored) = stored_watermark(conn)? else {
        return Ok(None);
    };
    if stored != live_watermark(conn)? {
        return Ok(None);
    }
    load_state(conn, sid)
}

/// The SQL for raw points of a series after a step, in step order, paged.
fn points_after_sql(with_nan: bool) -> String {
    if with_nan {
        format!(
            "SELECT step, y, ts FROM ({}) WHERE step > ?2 ORDER BY step LIMIT ?3 OFFSET ?4",
            series_points_sql(true)
        )
    } else {
        "SELECT step, y, ts FROM metric_points WHERE series_id = ?1 AND step > ?2
         ORDER BY step LIMIT ?3 OFFSET ?4"
            .to_owned()
    }
}

/// One series of a run file, for [`pure::sample`].
struct Source<'a> {
    conn: &'a Connection,
    sid: i64,
    with_nan: bool,
}

impl pure::Source for Source<'_> {
    type Error = rusqlite::Error;

    fn rows(&self, seqs: Seqs, visit: &mut dyn FnMut(u64, &[u8])) -> rusqlite::Result<()> {
        let mut hand = |row: &rusqlite::Row<'_>| -> rusqlite::Result<()> {
            let seq = row.get::<_, i64>(0)? as u64;
            if seqs.contains(seq)
                && let rusqlite::types::ValueRef::Blob(bytes) = row.get_ref(1)?
            {
                visit(seq, bytes);
            }
            Ok(())
        };
        // Rows a few apart are read in one pass over the range, rows further apart one
        // lookup each.
        if seqs.stride <= 16 {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT seq, buckets FROM {BUCKETS_TABLE}
                 WHERE series_id = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq"
            ))?;
            let mut cursor = stmt.query((self.sid, seqs.first as i64, seqs.last as i64))?;
            while let Some(row) = cursor.next()? {
                hand(row)?;
            }
        } else {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT seq, buckets FROM {BUCKETS_TABLE} WHERE series_id = ?1 AND seq = ?2"
            ))?;
            for seq in seqs.iter() {
                let mut cursor = stmt.query((self.sid, seq as i64))?;
                if let Some(row) = cursor.next()? {
                    hand(row)?;
                }
            }
        }
        Ok(())
    }

    fn points_after(
        &self,
        after: f64,
        skip: u64,
        limit: u64,
        visit: &mut dyn FnMut(MetricPoint),
    ) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare_cached(&points_after_sql(self.with_nan))?;
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let mut cursor = stmt.query((self.sid, after, clamp(limit), clamp(skip)))?;
        while let Some(row) = cursor.next()? {
            visit(metric_point(row, 0)?);
        }
        Ok(())
    }
}

/// Downsamples the points `rows` of a series from its pyramid ([`pure::sample`]); `None`
/// when the pyramid cannot answer, and the caller reads the points instead.
pub(crate) fn sample(
    conn: &Connection,
    sid: i64,
    with_nan: bool,
    state: &SeriesState,
    rows: Range<u64>,
    point_count: PointCount,
) -> rusqlite::Result<Option<Sampled>> {
    pure::sample(&Source { conn, sid, with_nan }, state, rows, point_count)
}

#[cfg(test)]
#[path = "pyramid_tests.rs"]
mod tests;
