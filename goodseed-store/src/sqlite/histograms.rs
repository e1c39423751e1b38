//! Histogram series in a run's file: the table `goodseed_histograms`, ours (0.4.0 reads
//! none of it), made by the first write that holds a histogram.

use rusqlite::Connection;

use goodseed_core::{Histogram, HistogramPoint};

use crate::model::HistogramRow;

pub(crate) const TABLE: &str = "goodseed_histograms";

/// One row per (series, step); edges and counts are little-endian `f64`s one after
/// another.
const DDL: &str = "CREATE TABLE IF NOT EXISTS goodseed_histograms (
    path TEXT NOT NULL,
    step REAL NOT NULL,
    ts INTEGER NOT NULL,
    kind TEXT NOT NULL,
    edges BLOB NOT NULL,
    counts BLOB NOT NULL,
    uploaded INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (path, step)
) WITHOUT ROWID;";

/// Writes a batch's histograms (a later one at a (path, step) wins).
pub(crate) fn write(tx: &rusqlite::Transaction<'_>, rows: &[HistogramRow]) -> rusqlite::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    tx.execute_batch(DDL)?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO goodseed_histograms (path, step, ts, kind, edges, counts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (path, step) DO UPDATE SET ts = excluded.ts, kind = excluded.kind,
         edges = excluded.edges, counts = excluded.counts, uploaded = 0",
    )?;
    for r in rows {
        stmt.execute((
            r.path.as_str(),
            r.step.get(),
            r.ts,
            &r.histogram.kind,
            Histogram::to_le_bytes(&r.histogram.edges),
            Histogram::to_le_bytes(&r.histogram.counts),
        ))?;
    }
    Ok(())
}

/// The paths of the run's histogram series, sorted.
pub(crate) fn paths(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    if !super::schema::has_table(conn, TABLE)? {
        return Ok(Vec::new());
    }
    let mut stmt =
        conn.prepare_cached("SELECT DISTINCT path FROM goodseed_histograms ORDER BY path")?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// The histograms of one series, in step order. A row whose edges or counts are not
/// whole `f64`s, or do not make a histogram, is an error naming its step.
pub(crate) fn read(conn: &Connection, path: &str) -> rusqlite::Result<Vec<HistogramPoint>> {
    if !super::schema::has_table(conn, TABLE)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT step, ts, kind, edges, counts FROM goodseed_histograms
         WHERE path = ?1 ORDER BY step",
    )?;
    let rows = stmt.query_map([path], |r| {
        let step: f64 = r.get(0)?;
        let bad = |what: String| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Blob,
                format!("histogram {path} at step {step}: {what}").into(),
            )
        };
        let edges = Histogram::from_le_bytes(&r.get::<_, Vec<u8>>(3)?)
            .ok_or_else(|| bad("its edges are not whole 8-byte floats".into()))?;
        let counts = Histogram::from_le_bytes(&r.get::<_, Vec<u8>>(4)?)
            .ok_or_else(|| bad("its counts are not whole 8-byte floats".into()))?;
        let histogram = Histogram { kind: r.get(2)?, edges, counts };
        histogram.check().map_err(bad)?;
        Ok(HistogramPoint { step, ts: r.get(1)?, histogram })
    })?;
    rows.collect()
}
