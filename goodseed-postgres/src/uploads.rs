//! [`PgUploads`]: what of one run a remote server has not confirmed, as the
//! `uploaded` columns keep it. A row's token is the generation of the write that last
//! wrote it: a row written again since it was read has another and stays pending.

use std::sync::Arc;

use goodseed_store::uploads::{Pending, PendingConfig, PendingMetric, PendingText, RunUploads};
use goodseed_store::{Result, StoreError};

use crate::db_error;
use crate::store::{METRIC, Shared, TEXT, text_of};

/// Where reading stopped in one points table: (generation, series, step).
type Cursor = (i64, i64, f64);

const START: Cursor = (-1, 0, 0.0);

/// Reads and marks one run's rows not uploaded yet.
pub(crate) struct PgUploads {
    shared: Arc<Shared>,
    run: i64,
    location: String,
    metrics_after: Cursor,
    texts_after: Cursor,
}

impl std::fmt::Debug for PgUploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgUploads").field("location", &self.location).finish_non_exhaustive()
    }
}

fn token(seq: i64) -> u64 {
    u64::try_from(seq).unwrap_or(0)
}

fn seq(token: u64) -> i64 {
    i64::try_from(token).unwrap_or(i64::MAX)
}

impl PgUploads {
    pub(crate) fn new(shared: Arc<Shared>, run: i64, location: String) -> PgUploads {
        PgUploads { shared, run, location, metrics_after: START, texts_after: START }
    }

    fn err(&self, e: &postgres::Error) -> StoreError {
        db_error(&self.location, e)
    }

    fn points_sql(table: &str) -> String {
        format!(
            "SELECT s.path, p.step, p.value, p.ts, p.seq, p.series FROM {table} p
             JOIN goodseed_series s ON s.id = p.series
             WHERE s.run = $1 AND s.kind = $2 AND NOT p.uploaded
               AND (p.seq, p.series, p.step) > ($3, $4, $5)
             ORDER BY p.seq, p.series, p.step LIMIT $6"
        )
    }
}

impl RunUploads for PgUploads {
    fn pending(&mut self, limit: usize) -> Result<Pending> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let mut out = Pending::default();
            for r in conn
                .query(
                    "SELECT path, type_tag, value, seq FROM goodseed_configs
                     WHERE run = $1 AND NOT uploaded ORDER BY seq, ord",
                    &[&self.run],
                )
                .map_err(|e| self.err(&e))?
            {
                let value: Option<Vec<u8>> = r.get(2);
                out.configs.push(PendingConfig {
                    path: r.get(0),
                    type_tag: r.get(1),
                    value: value.map(text_of),
                    token: token(r.get(3)),
                });
            }
            let want = i64::try_from(limit).unwrap_or(i64::MAX);
            let (s, series, step) = self.metrics_after;
            let rows = conn
                .query(
                    &Self::points_sql("goodseed_metric_points"),
                    &[&self.run, &METRIC, &s, &series, &step, &want],
                )
                .map_err(|e| self.err(&e))?;
            for r in &rows {
                let path: String = r.get(0);
                out.metrics.push(PendingMetric {
                    path: Arc::from(path),
                    step: r.get(1),
                    value: r.get(2),
                    ts: r.get(3),
                    token: token(r.get(4)),
                });
                self.metrics_after = (r.get(4), r.get(5), r.get(1));
            }
            let left = want - i64::try_from(rows.len()).unwrap_or(0);
            if left > 0 {
                let (s, series, step) = self.texts_after;
                for r in conn
                    .query(
                        &Self::points_sql("goodseed_text_points"),
                        &[&self.run, &TEXT, &s, &series, &step, &left],
                    )
                    .map_err(|e| self.err(&e))?
                {
                    let path: String = r.get(0);
                    out.texts.push(PendingText {
                        path: Arc::from(path),
                        step: r.get(1),
                        value: text_of(r.get(2)),
                        ts: r.get(3),
                        token: token(r.get(4)),
                    });
                    self.texts_after = (r.get(4), r.get(5), r.get(1));
                }
            }
            Ok(out)
        })
    }

    fn rewind(&mut self) {
        self.metrics_after = START;
        self.texts_after = START;
    }

    fn mark_uploaded(&mut self, sent: &Pending) -> Result<u64> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let mut tx = conn.transaction().map_err(|e| self.err(&e))?;
            let mut marked = 0;
            if !sent.configs.is_empty() {
                let paths: Vec<&str> = sent.configs.iter().map(|c| c.path.as_str()).collect();
                let seqs: Vec<i64> = sent.configs.iter().map(|c| seq(c.token)).collect();
                marked += tx
                    .execute(
                        "UPDATE goodseed_configs c SET uploaded = TRUE
                         FROM unnest($2::text[], $3::int8[]) AS u(path, seq)
                         WHERE c.run = $1 AND c.path = u.path AND c.seq = u.seq AND NOT c.uploaded",
                        &[&self.run, &paths, &seqs],
                    )
                    .map_err(|e| self.err(&e))?;
            }
            let tables = [
                (
                    "goodseed_metric_points",
                    METRIC,
                    sent.metrics.iter().map(|m| (&*m.path, m.step, m.token)).collect::<Vec<_>>(),
                ),
                (
                    "goodseed_text_points",
                    TEXT,
                    sent.texts.iter().map(|t| (&*t.path, t.step, t.token)).collect(),
                ),
            ];
            for (table, kind, rows) in tables {
                if rows.is_empty() {
                    continue;
                }
                let paths: Vec<&str> = rows.iter().map(|r| r.0).collect();
                let steps: Vec<f64> = rows.iter().map(|r| r.1).collect();
                let seqs: Vec<i64> = rows.iter().map(|r| seq(r.2)).collect();
                marked += tx
                    .execute(
                        &format!(
                            "UPDATE {table} p SET uploaded = TRUE
                             FROM goodseed_series s, unnest($3::text[], $4::float8[], $5::int8[]) AS u(path, step, seq)
                             WHERE s.run = $1 AND s.kind = $2 AND s.path = u.path AND p.series = s.id
                               AND p.step = u.step AND p.seq = u.seq AND NOT p.uploaded"
                        ),
                        &[&self.run, &kind, &paths, &steps, &seqs],
                    )
                    .map_err(|e| self.err(&e))?;
            }
            tx.commit().map_err(|e| self.err(&e))?;
            Ok(marked)
        })
    }

    fn count_pending(&mut self) -> Result<u64> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let row = conn
                .query_one(
                    "SELECT (SELECT count(*) FROM goodseed_configs WHERE run = $1 AND NOT uploaded)
                          + (SELECT count(*) FROM goodseed_metric_points p JOIN goodseed_series s ON s.id = p.series
                             WHERE s.run = $1 AND NOT p.uploaded)
                          + (SELECT count(*) FROM goodseed_text_points p JOIN goodseed_series s ON s.id = p.series
                             WHERE s.run = $1 AND NOT p.uploaded)",
                    &[&self.run],
                )
                .map_err(|e| self.err(&e))?;
            // count(*) + count(*) is numeric in PostgreSQL only past bigint; it stays bigint.
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        })
    }
}
