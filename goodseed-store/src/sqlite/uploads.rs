//! [`RunUploads`] on a run file: 0.4.0's `uploaded` columns (and ours on
//! `metric_nan_points`), read by rowid after a cursor, so a long run is read once, not
//! from the start at every batch as 0.4.0 does.
//!
//! Marking is exact without holding anything between the read and the mark: in one
//! write transaction the rows between the batch's first and last rowid are read again
//! and compared with what was sent; when every pending row there is one that was sent,
//! unchanged, one range `UPDATE` marks them all, else each unchanged row is marked on
//! its own. A row written again since (the writer's upsert keeps its rowid and sets
//! `uploaded = 0`) differs, so it stays pending and is sent again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::schema::{self, NAN_TABLE};
use crate::uploads::{Pending, PendingConfig, PendingMetric, PendingText, RunUploads};
use crate::{Result, StoreError};

/// The token bit that says a metric point lives in `metric_nan_points`.
const NAN_ROW: u64 = 1 << 63;

/// Reads and marks the rows of one run file not uploaded yet.
#[derive(Debug)]
pub(crate) struct SqliteUploads {
    conn: Connection,
    path: PathBuf,
    metric_paths: HashMap<i64, Arc<str>>,
    text_paths: HashMap<i64, Arc<str>>,
    /// This reader among all: a change counter means something only to the connection
    /// that read it, so a batch read by another reader is always checked.
    instance: u64,
    /// The last rowid read of each table.
    after_metric: i64,
    after_nan: i64,
    after_text: i64,
}

impl SqliteUploads {
    /// Opens the run file for reading pending rows and marking them. The NaN table, when
    /// an older writer made it without an `uploaded` column, gets one (every NaN point
    /// of such a file is then pending).
    pub(crate) fn open(path: &Path) -> Result<SqliteUploads> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| StoreError::db(path, e))?;
        let db = |e| StoreError::db(path, e);
        conn.busy_timeout(Duration::from_millis(schema::BUSY_TIMEOUT_MS.into())).map_err(db)?;
        conn.execute_batch("PRAGMA synchronous=NORMAL;").map_err(db)?;
        schema::check_is_run(&conn, path)?;
        if schema::has_table(&conn, NAN_TABLE).map_err(db)? {
            let has_column = conn
                .prepare(&format!(
                    "SELECT 1 FROM pragma_table_info('{NAN_TABLE}') WHERE name = 'uploaded'"
                ))
                .and_then(|mut s| s.query_row([], |_| Ok(())).optional())
                .map_err(db)?
                .is_some();
            if !has_column {
                conn.execute_batch(&format!(
                    "ALTER TABLE {NAN_TABLE} ADD COLUMN uploaded INTEGER NOT NULL DEFAULT 0"
                ))
                .map_err(db)?;
            }
        }
        Ok(SqliteUploads {
            conn,
            path: path.to_owned(),
            metric_paths: HashMap::new(),
            text_paths: HashMap::new(),
            instance: NEXT_INSTANCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            after_metric: 0,
            after_nan: 0,
            after_text: 0,
        })
    }

    fn db(&self, e: rusqlite::Error) -> StoreError {
        StoreError::db(&self.path, e)
    }

    /// What [`Pending::read_at`] holds: this reader and its connection's change counter
    /// (`PRAGMA data_version` moves when another connection commits, and differs from
    /// one connection to the next).
    fn read_mark(instance: u64, path: &Path, conn: &Connection) -> Result<u64> {
        let version = data_version(conn).map_err(|e| StoreError::db(path, e))?;
        Ok((instance << 40) | (version & ((1 << 40) - 1)))
    }
}

/// The next [`SqliteUploads::instance`].
static NEXT_INSTANCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The path of a series id, loading the table again when the id is new.
fn path_of(
    conn: &Connection,
    table: &str,
    cache: &mut HashMap<i64, Arc<str>>,
    id: i64,
) -> rusqlite::Result<Arc<str>> {
    if let Some(p) = cache.get(&id) {
        return Ok(Arc::clone(p));
    }
    let mut stmt = conn.prepare_cached(&format!("SELECT id, path FROM {table}"))?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (i, p) = row?;
        cache.entry(i).or_insert_with(|| Arc::from(p.as_str()));
    }
    Ok(cache.get(&id).cloned().unwrap_or_else(|| Arc::from(format!("<series {id}>").as_str())))
}

fn text_of(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    use rusqlite::types::ValueRef;
    Ok(match r.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(x) => Some(goodseed_core::python_float_repr(x)),
    })
}

impl RunUploads for SqliteUploads {
    fn pending(&mut self, limit: usize) -> Result<Pending> {
        let tx = self.conn.transaction().map_err(|e| StoreError::db(&self.path, e))?;
        let mut out = Pending::default();
        let read = (|| -> rusqlite::Result<()> {
            let mut stmt = tx.prepare_cached(
                "SELECT rowid, path, type_tag, value FROM configs WHERE uploaded = 0 ORDER BY rowid",
            )?;
            for row in stmt.query_map([], |r| {
                Ok(PendingConfig {
                    token: r.get::<_, i64>(0)? as u64,
                    path: r.get(1)?,
                    type_tag: r.get(2)?,
                    value: text_of(r, 3)?,
                })
            })? {
                out.configs.push(row?);
            }
            let mut left = limit;
            let mut stmt = tx.prepare_cached(
                "SELECT rowid, series_id, step, y, ts FROM metric_points
                 WHERE rowid > ?1 AND uploaded = 0 ORDER BY rowid LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![self.after_metric, left as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            out.metrics.reserve(limit.min(1 << 16));
            // Rows come in runs of one series (a batch is written series by series).
            let mut last: Option<(i64, Arc<str>)> = None;
            for row in rows {
                let (rowid, series, step, value, ts) = row?;
                let path = match &last {
                    Some((id, path)) if *id == series => Arc::clone(path),
                    _ => {
                        let path = path_of(&tx, "metric_series", &mut self.metric_paths, series)?;
                        last = Some((series, Arc::clone(&path)));
                        path
                    }
                };
                out.metrics.push(PendingMetric { path, step, value, ts, token: rowid as u64 });
                self.after_metric = rowid;
            }
            left -= out.metrics.len();
            if left > 0 && schema::has_table(&tx, NAN_TABLE)? {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT rowid, series_id, step, ts FROM {NAN_TABLE}
                     WHERE rowid > ?1 AND uploaded = 0 ORDER BY rowid LIMIT ?2"
                ))?;
                let rows = stmt.query_map(params![self.after_nan, left as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?))
                })?;
                for row in rows {
                    let (rowid, series, step, ts) = row?;
                    let path = path_of(&tx, "metric_series", &mut self.metric_paths, series)?;
                    out.metrics.push(PendingMetric {
                        path,
                        step,
                        value: f64::NAN,
                        ts,
                        token: rowid as u64 | NAN_ROW,
                    });
                    self.after_nan = rowid;
                    left -= 1;
                }
            }
            if left > 0 && schema::has_table(&tx, "string_points")? {
                let mut stmt = tx.prepare_cached(
                    "SELECT rowid, series_id, step, value, ts FROM string_points
                     WHERE rowid > ?1 AND uploaded = 0 ORDER BY rowid LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![self.after_text, left as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get(2)?,
                        text_of(r, 3)?,
                        r.get(4)?,
                    ))
                })?;
                for row in rows {
                    let (rowid, series, step, value, ts) = row?;
                    let path = path_of(&tx, "string_series", &mut self.text_paths, series)?;
                    let value = value.unwrap_or_default();
                    out.texts.push(PendingText { path, step, value, ts, token: rowid as u64 });
                    self.after_text = rowid;
                }
            }
            Ok(())
        })();
        read.map_err(|e| StoreError::db(&self.path, e))?;
        out.read_at = Self::read_mark(self.instance, &self.path, &tx)?;
        tx.commit().map_err(|e| StoreError::db(&self.path, e))?;
        Ok(out)
    }

    fn rewind(&mut self) {
        self.after_metric = 0;
        self.after_nan = 0;
        self.after_text = 0;
    }

    fn mark_uploaded(&mut self, sent: &Pending) -> Result<u64> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::db(&self.path, e))?;
        // Nobody else committed since the rows were read (this connection's own marks
        // do not count): every pending row of each range is one that was sent, as it
        // was, so each range is marked at once without reading it again.
        let untouched = Self::read_mark(self.instance, &self.path, &tx)? == sent.read_at;
        let marked = (|| -> rusqlite::Result<u64> {
            let mut marked = mark_configs(&tx, sent)?;
            // Metric points of each table, with what identifies their value then.
            let numbers: Vec<Row> = sent
                .metrics
                .iter()
                .filter(|m| m.token & NAN_ROW == 0)
                .map(|m| Row {
                    rowid: m.token as i64,
                    path: &m.path,
                    step: m.step,
                    value: Value::Num(m.value),
                    ts: m.ts,
                })
                .collect();
            let nans: Vec<Row> = sent
                .metrics
                .iter()
                .filter(|m| m.token & NAN_ROW != 0)
                .map(|m| Row {
                    rowid: (m.token & !NAN_ROW) as i64,
                    path: &m.path,
                    step: m.step,
                    value: Value::None,
                    ts: m.ts,
                })
                .collect();
            let texts: Vec<Row> = sent
                .texts
                .iter()
                .map(|t| Row {
                    rowid: t.token as i64,
                    path: &t.path,
                    step: t.step,
                    value: Value::Text(&t.value),
                    ts: t.ts,
                })
                .collect();
            marked += mark_table(
                &tx,
                "metric_points",
                "y",
                "metric_series",
                &mut self.metric_paths,
                numbers,
                untouched,
            )?;
            marked += mark_table(
                &tx,
                NAN_TABLE,
                "NULL",
                "metric_series",
                &mut self.metric_paths,
                nans,
                untouched,
            )?;
            marked += mark_table(
                &tx,
                "string_points",
                "value",
                "string_series",
                &mut self.text_paths,
                texts,
                untouched,
            )?;
            Ok(marked)
        })()
        .map_err(|e| StoreError::db(&self.path, e))?;
        tx.commit().map_err(|e| StoreError::db(&self.path, e))?;
        Ok(marked)
    }

    fn pending_artifacts(&mut self) -> Result<Vec<crate::artifacts::Artifact>> {
        super::artifacts::list_pending(&self.conn).map_err(|e| self.db(e))
    }

    fn mark_artifacts_uploaded(&mut self, sent: &[crate::artifacts::Artifact]) -> Result<u64> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::db(&self.path, e))?;
        let marked = super::artifacts::mark_uploaded(&tx, sent)
            .map_err(|e| StoreError::db(&self.path, e))?;
        tx.commit().map_err(|e| StoreError::db(&self.path, e))?;
        Ok(marked)
    }

    fn open_blob(
        &mut self,
        hash: &crate::artifacts::ContentHash,
    ) -> Result<crate::artifacts::Blob> {
        crate::blobs::BlobDir::new(super::artifacts::blob_dir_of(&self.path), None).open(hash)
    }

    fn count_pending(&mut self) -> Result<u64> {
        let mut total = 0u64;
        for table in
            ["configs", "metric_points", NAN_TABLE, "string_points", super::artifacts::TABLE]
        {
            if !schema::has_table(&self.conn, table).map_err(|e| self.db(e))? {
                continue;
            }
            let n: i64 = self
                .conn
                .query_row(&format!("SELECT count(*) FROM {table} WHERE uploaded = 0"), [], |r| {
                    r.get(0)
                })
                .map_err(|e| self.db(e))?;
            total += n as u64;
        }
        Ok(total)
    }
}

/// Marks `sent` in `tx` without reading its points again (the caller vouches none was
/// written again since it was read): configs as they are checked always, then each
/// table's points from their first rowid in `sent` to their last.
pub(crate) fn mark_vouched(
    tx: &rusqlite::Transaction<'_>,
    sent: &Pending,
) -> rusqlite::Result<u64> {
    let mut marked = mark_configs(tx, sent)?;
    let range = |tokens: &mut dyn Iterator<Item = u64>, table: &str| -> rusqlite::Result<u64> {
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for t in tokens {
            let rowid = (t & !NAN_ROW) as i64;
            first = first.min(rowid);
            last = last.max(rowid);
        }
        if first > last {
            return Ok(0);
        }
        mark_range(tx, table, first, last)
    };
    marked += range(
        &mut sent.metrics.iter().filter(|m| m.token & NAN_ROW == 0).map(|m| m.token),
        "metric_points",
    )?;
    marked += range(
        &mut sent.metrics.iter().filter(|m| m.token & NAN_ROW != 0).map(|m| m.token),
        NAN_TABLE,
    )?;
    marked += range(&mut sent.texts.iter().map(|t| t.token), "string_points")?;
    Ok(marked)
}

/// Marks the configs of `sent` still as they were sent.
fn mark_configs(tx: &rusqlite::Transaction<'_>, sent: &Pending) -> rusqlite::Result<u64> {
    let mut marked = 0u64;
    let mut stmt = tx.prepare_cached(
        "UPDATE configs SET uploaded = 1
         WHERE path = ?1 AND type_tag = ?2 AND value IS ?3 AND uploaded = 0",
    )?;
    for c in &sent.configs {
        marked += stmt.execute(params![c.path, c.type_tag, c.value])? as u64;
    }
    Ok(marked)
}

/// Marks every pending row of `table` between two rowids.
fn mark_range(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    first: i64,
    last: i64,
) -> rusqlite::Result<u64> {
    tx.prepare_cached(&format!(
        "UPDATE {table} SET uploaded = 1 WHERE rowid BETWEEN ?1 AND ?2 AND uploaded = 0"
    ))?
    .execute(params![first, last])
    .map(|n| n as u64)
}

/// The database's change counter as this connection sees it: it moves when another
/// connection commits, not when this one does.
fn data_version(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0)).map(|v| v as u64)
}

/// The value a sent row had.
enum Value<'a> {
    Num(f64),
    Text(&'a str),
    None,
}

/// A sent row, as it was read.
struct Row<'a> {
    rowid: i64,
    path: &'a str,
    step: f64,
    value: Value<'a>,
    ts: i64,
}

/// Marks the sent rows of one table that are still as they were read: all at once by
/// rowid range when every pending row of the range is one of them, else one by one.
fn mark_table(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    value_column: &str,
    series_table: &str,
    paths: &mut HashMap<i64, Arc<str>>,
    mut sent: Vec<Row<'_>>,
    untouched: bool,
) -> rusqlite::Result<u64> {
    if sent.is_empty() {
        return Ok(0);
    }
    sent.sort_by_key(|r| r.rowid);
    let (first, last) = (sent[0].rowid, sent[sent.len() - 1].rowid);
    let range = |tx: &rusqlite::Transaction<'_>| mark_range(tx, table, first, last);
    if untouched {
        return range(tx);
    }
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT rowid, series_id, step, {value_column}, ts, uploaded FROM {table}
         WHERE rowid BETWEEN ?1 AND ?2 ORDER BY rowid"
    ))?;
    let mut rows = stmt.query(params![first, last])?;
    let mut unchanged: Vec<i64> = Vec::with_capacity(sent.len());
    let mut others_pending = false;
    let mut next = sent.iter().peekable();
    while let Some(row) = rows.next()? {
        let rowid: i64 = row.get(0)?;
        while next.peek().is_some_and(|s| s.rowid < rowid) {
            next.next();
        }
        let uploaded: i64 = row.get(5)?;
        let matching = next.peek().filter(|s| s.rowid == rowid);
        let same = match matching {
            None => false,
            Some(s) => {
                let series: i64 = row.get(1)?;
                let step: f64 = row.get(2)?;
                let ts: i64 = row.get(4)?;
                let value_same = match &s.value {
                    Value::Num(v) => row.get::<_, f64>(3).is_ok_and(|y| y.to_bits() == v.to_bits()),
                    Value::Text(t) => text_of(row, 3)?.as_deref() == Some(*t),
                    Value::None => true,
                };
                value_same
                    && step.to_bits() == s.step.to_bits()
                    && ts == s.ts
                    && &*path_of(tx, series_table, paths, series)? == s.path
            }
        };
        if same && uploaded == 0 {
            unchanged.push(rowid);
        } else if uploaded == 0 {
            others_pending = true;
        }
    }
    drop(rows);
    if !others_pending && unchanged.len() == sent.len() {
        return range(tx);
    }
    let mut one =
        tx.prepare_cached(&format!("UPDATE {table} SET uploaded = 1 WHERE rowid = ?1"))?;
    for rowid in &unchanged {
        one.execute([rowid])?;
    }
    Ok(unchanged.len() as u64)
}
