//! [`SqliteRunWriter`]: writes one run file in goodseed 0.4.0's format.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, FieldPath};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::schema::{self, DDL, NAN_DDL, NAN_TABLE, SCHEMA_VERSION};
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
    metric_ids: HashMap<FieldPath, i64>,
    text_ids: HashMap<FieldPath, i64>,
    /// Series with rows in the NaN table: only these need a delete there when a finite
    /// value overwrites a step.
    nan_series: HashSet<i64>,
    nan_table: bool,
    /// Reused between batches: (series id, step, value, ts) in insertion order.
    scratch: Vec<(i64, f64, f64, i64)>,
}

impl SqliteRunWriter {
    /// Creates a new run file at `path` (its directory is created if needed) and writes
    /// the schema, `schema_version` and `first` in one transaction. Fails with
    /// [`StoreError::AlreadyExists`] if the file exists.
    pub fn create(path: &Path, first: &WriteBatch) -> Result<SqliteRunWriter> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io("creating", dir, e))?;
        }
        // Claim the name atomically, so two writers never create the same run.
        OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                StoreError::AlreadyExists { path: path.to_owned() }
            } else {
                StoreError::io("creating", path, e)
            }
        })?;
        let result = (|| {
            let conn = schema::open_writer(path, false)?;
            let mut writer = SqliteRunWriter::from_conn(conn, path);
            writer.write_inner(first, true)?;
            Ok(writer)
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
    pub fn open_existing(path: &Path) -> Result<SqliteRunWriter> {
        if !path.is_file() {
            return Err(StoreError::io(
                "opening",
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such run file"),
            ));
        }
        let conn = schema::open_writer(path, false)?;
        schema::check_is_run(&conn, path)?;
        conn.execute_batch(DDL).map_err(|e| StoreError::db(path, e))?;
        let mut writer = SqliteRunWriter::from_conn(conn, path);
        writer.load_existing()?;
        Ok(writer)
    }

    fn from_conn(conn: Connection, path: &Path) -> SqliteRunWriter {
        SqliteRunWriter {
            conn: Some(conn),
            path: path.to_owned(),
            metric_ids: HashMap::new(),
            text_ids: HashMap::new(),
            nan_series: HashSet::new(),
            nan_table: false,
            scratch: Vec::new(),
        }
    }

    /// The file this writer writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> Result<&Connection> {
        self.conn.as_ref().ok_or_else(|| StoreError::Closed { path: self.path.clone() })
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

    fn write_inner(&mut self, batch: &WriteBatch, creating: bool) -> Result<()> {
        let path = self.path.clone();
        let db = |e| StoreError::db(&path, e);
        let now = UtcMicros::from(SystemTime::now()).to_iso8601();
        let conn = self.conn.as_mut().ok_or_else(|| StoreError::Closed { path: path.clone() })?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        if creating {
            tx.execute_batch(DDL).map_err(db)?;
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

        let mut new_nan_series = Vec::new();
        let mut nan_table = self.nan_table;
        if !batch.metrics.is_empty() {
            let rows = &mut self.scratch;
            rows.clear();
            rows.extend(
                batch
                    .metrics
                    .iter()
                    .map(|m| (metric_ids[m.series_index()], m.step.get(), m.value, m.ts)),
            );
            // A stable sort keeps later writes to the same (series, step) after earlier
            // ones, so the last write wins; in-order inserts keep the index appends local.
            if !rows.is_sorted_by(|a, b| (a.0, a.1) <= (b.0, b.1)) {
                rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            }
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO metric_points (series_id, step, y, ts)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(db)?;
            for &(sid, step, value, ts) in rows.iter() {
                if value.is_nan() {
                    if !nan_table {
                        tx.execute_batch(NAN_DDL).map_err(db)?;
                        nan_table = true;
                    }
                    tx.prepare_cached(
                        "DELETE FROM metric_points WHERE series_id = ?1 AND step = ?2",
                    )
                    .and_then(|mut s| s.execute((sid, step)))
                    .map_err(db)?;
                    tx.prepare_cached(&format!(
                        "INSERT OR REPLACE INTO {NAN_TABLE} (series_id, step, ts) VALUES (?1, ?2, ?3)"
                    ))
                    .and_then(|mut s| s.execute((sid, step, ts)))
                    .map_err(db)?;
                    if !self.nan_series.contains(&sid) {
                        new_nan_series.push(sid);
                    }
                    continue;
                }
                insert.raw_bind_parameter(1, sid).map_err(db)?;
                insert.raw_bind_parameter(2, step).map_err(db)?;
                insert.raw_bind_parameter(3, value).map_err(db)?;
                insert.raw_bind_parameter(4, ts).map_err(db)?;
                insert.raw_execute().map_err(db)?;
                if self.nan_series.contains(&sid) || new_nan_series.contains(&sid) {
                    tx.prepare_cached(&format!(
                        "DELETE FROM {NAN_TABLE} WHERE series_id = ?1 AND step = ?2"
                    ))
                    .and_then(|mut s| s.execute((sid, step)))
                    .map_err(db)?;
                }
            }
        }

        if !batch.texts.is_empty() {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO string_points (series_id, step, value, ts)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(db)?;
            for t in &batch.texts {
                let sid = text_ids[t.series_index()];
                insert.execute((sid, t.step.get(), &t.value, t.ts)).map_err(db)?;
            }
        }

        tx.commit().map_err(db)?;
        self.metric_ids.extend(new_metric_ids);
        self.text_ids.extend(new_text_ids);
        self.nan_series.extend(new_nan_series);
        self.nan_table = nan_table;
        Ok(())
    }
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

    fn close(&mut self) -> Result<()> {
        let Some(conn) = self.conn.take() else {
            return Ok(());
        };
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(|e| StoreError::db(&self.path, e))?;
        conn.close().map_err(|(_, e)| StoreError::db(&self.path, e))
    }
}

impl Drop for SqliteRunWriter {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
