//! [`PgUploads`]: what of one run a remote server has not confirmed: the `uploaded`
//! columns of configs and text points, and each block of metric points' unsent bits. A
//! config's or text point's token is the generation of the write that last wrote it: a
//! row written again since it was read has another and stays pending. A metric point
//! is marked when its block still holds it as it was sent (step, value bits and time),
//! so one written again since stays pending.

use std::sync::Arc;

use goodseed_store::uploads::{Pending, PendingConfig, PendingMetric, PendingText, RunUploads};
use goodseed_store::{Result, StoreError};

use crate::blocks;
use crate::db_error;
use crate::store::{METRIC, Shared, TEXT, text_of};

/// Where reading stopped in one points table: (generation, series, step).
type Cursor = (i64, i64, f64);

const START: Cursor = (-1, 0, 0.0);

/// Where reading stopped in the blocks of metric points: (generation, series, first
/// step) of a block, and the place in it of the next point.
type BlockCursor = (i64, i64, f64, usize);

const BLOCK_START: BlockCursor = (-1, 0, 0.0, 0);

/// Reads and marks one run's rows not uploaded yet.
pub(crate) struct PgUploads {
    shared: Arc<Shared>,
    run: i64,
    location: String,
    metrics_after: BlockCursor,
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
        PgUploads { shared, run, location, metrics_after: BLOCK_START, texts_after: START }
    }

    fn err(&self, e: &postgres::Error) -> StoreError {
        db_error(&self.location, e)
    }

    fn torn(&self, message: String) -> StoreError {
        StoreError::Database { location: self.location.clone(), message, busy: false }
    }

    /// Pending metric points after the cursor, at most `limit`, in the order of the
    /// blocks' generations; returns how many.
    fn pending_metrics(
        &mut self,
        conn: &mut impl postgres::GenericClient,
        limit: usize,
        out: &mut Vec<PendingMetric>,
    ) -> Result<usize> {
        use postgres::fallible_iterator::FallibleIterator;
        let (seq0, series0, first0, index0) = self.metrics_after;
        let mut rows = conn
            .query_raw(
                "SELECT s.path, b.series, b.first_step, b.seq, b.n, b.unsent_bits, b.points
                 FROM goodseed_metric_blocks b JOIN goodseed_series s ON s.id = b.series
                 WHERE s.run = $1 AND s.kind = $2 AND b.unsent > 0
                   AND (b.seq, b.series, b.first_step) >= ($3, $4, $5)
                 ORDER BY b.seq, b.series, b.first_step",
                [
                    &self.run as &(dyn postgres::types::ToSql + Sync),
                    &METRIC,
                    &seq0,
                    &series0,
                    &first0,
                ],
            )
            .map_err(|e| self.err(&e))?;
        let mut read = 0;
        while read < limit {
            let Some(row) = rows.next().map_err(|e| self.err(&e))? else {
                break;
            };
            let (series, first, seq): (i64, f64, i64) = (row.get(1), row.get(2), row.get(3));
            let from = if (seq, series, first) == (seq0, series0, first0) { index0 } else { 0 };
            let points = blocks::unpack(row.get(6)).map_err(|e| self.torn(e))?;
            let unsent = blocks::unpack_flags(row.get(5), points.len());
            let path: Arc<str> = Arc::from(row.get::<_, &str>(0));
            for (i, &(step, value, ts)) in points.iter().enumerate().skip(from) {
                if read == limit {
                    break;
                }
                if unsent[i] {
                    out.push(PendingMetric {
                        path: Arc::clone(&path),
                        step,
                        value,
                        ts,
                        token: token(seq),
                    });
                    read += 1;
                }
                self.metrics_after = (seq, series, first, i + 1);
            }
        }
        Ok(read)
    }

    /// Marks the sent metric points their blocks still hold as they were sent.
    fn mark_metrics(
        &self,
        tx: &mut postgres::Transaction<'_>,
        sent: &[PendingMetric],
    ) -> Result<u64> {
        // Each path's sent points, in step order, and the steps they span.
        let mut by_path: std::collections::HashMap<&str, Vec<&PendingMetric>> =
            std::collections::HashMap::new();
        for m in sent {
            by_path.entry(&m.path).or_default().push(m);
        }
        let (mut paths, mut lows, mut highs) = (Vec::new(), Vec::new(), Vec::new());
        for (path, points) in &mut by_path {
            points.sort_by(|a, b| a.step.total_cmp(&b.step));
            paths.push(*path);
            lows.push(points[0].step);
            highs.push(points[points.len() - 1].step);
        }
        let rows = tx
            .query(
                "SELECT s.path, b.series, b.first_step, b.last_step, b.unsent_bits, b.points
                 FROM goodseed_metric_blocks b JOIN goodseed_series s ON s.id = b.series
                 JOIN unnest($3::text[], $4::float8[], $5::float8[]) AS u(path, lo, hi) ON u.path = s.path
                 WHERE s.run = $1 AND s.kind = $2 AND b.unsent > 0
                   AND b.last_step >= u.lo AND b.first_step <= u.hi
                 FOR UPDATE OF b",
                &[&self.run, &METRIC, &paths, &lows, &highs],
            )
            .map_err(|e| self.err(&e))?;
        let (mut series, mut firsts, mut bits, mut counts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut marked = 0u64;
        for row in &rows {
            let (first, last): (f64, f64) = (row.get(2), row.get(3));
            let points = blocks::unpack(row.get(5)).map_err(|e| self.torn(e))?;
            let mut unsent = blocks::unpack_flags(row.get(4), points.len());
            let mut changed = false;
            for m in by_path.get(row.get::<_, &str>(0)).into_iter().flatten() {
                if m.step < first || m.step > last {
                    continue;
                }
                // Steps in a block are in order, -0.0 and 0.0 one step.
                let Ok(i) = points.binary_search_by(|p| (p.0 + 0.0).total_cmp(&(m.step + 0.0)))
                else {
                    continue;
                };
                let (_, value, ts) = points[i];
                if unsent[i] && value.to_bits() == m.value.to_bits() && ts == m.ts {
                    unsent[i] = false;
                    changed = true;
                    marked += 1;
                }
            }
            if changed {
                series.push(row.get::<_, i64>(1));
                firsts.push(first);
                counts
                    .push(i32::try_from(unsent.iter().filter(|f| **f).count()).unwrap_or(i32::MAX));
                bits.push(blocks::pack_flags(&unsent));
            }
        }
        if !series.is_empty() {
            tx.execute(
                "UPDATE goodseed_metric_blocks b SET unsent = u.c, unsent_bits = u.b
                 FROM unnest($1::int8[], $2::float8[], $3::int4[], $4::bytea[]) AS u(s, f, c, b)
                 WHERE b.series = u.s AND b.first_step = u.f",
                &[&series, &firsts, &counts, &bits],
            )
            .map_err(|e| self.err(&e))?;
        }
        Ok(marked)
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
            let read = self.pending_metrics(&mut *conn, limit, &mut out.metrics)?;
            let left = want - i64::try_from(read).unwrap_or(0);
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
        self.metrics_after = BLOCK_START;
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
            if !sent.metrics.is_empty() {
                marked += self.mark_metrics(&mut tx, &sent.metrics)?;
            }
            let tables = [(
                "goodseed_text_points",
                TEXT,
                sent.texts.iter().map(|t| (&*t.path, t.step, t.token)).collect::<Vec<_>>(),
            )];
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

    fn pending_artifacts(&mut self) -> Result<Vec<goodseed_store::artifacts::Artifact>> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            crate::artifacts::list(&mut *conn, self.run, 0, true).map_err(|e| self.err(&e))
        })
    }

    fn mark_artifacts_uploaded(
        &mut self,
        sent: &[goodseed_store::artifacts::Artifact],
    ) -> Result<u64> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            crate::artifacts::mark_uploaded(&mut *conn, self.run, sent).map_err(|e| self.err(&e))
        })
    }

    fn open_blob(
        &mut self,
        hash: &goodseed_store::artifacts::ContentHash,
    ) -> Result<goodseed_store::artifacts::Blob> {
        match self.shared.blobs.get() {
            Some(root) => crate::artifacts::blob_dir(root, self.run).open(hash),
            None => Err(StoreError::NoSuchArtifact {
                what: hash.to_string(),
                location: self.location.clone(),
            }),
        }
    }

    fn count_pending(&mut self) -> Result<u64> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let row = conn
                .query_one(
                    "SELECT (SELECT count(*) FROM goodseed_configs WHERE run = $1 AND NOT uploaded)
                          + (SELECT coalesce(sum(b.unsent), 0)::int8 FROM goodseed_metric_blocks b
                             JOIN goodseed_series s ON s.id = b.series WHERE s.run = $1)
                          + (SELECT count(*) FROM goodseed_text_points p JOIN goodseed_series s ON s.id = p.series
                             WHERE s.run = $1 AND NOT p.uploaded)
                          + (SELECT count(*) FROM goodseed_artifacts WHERE run = $1 AND NOT uploaded)",
                    &[&self.run],
                )
                .map_err(|e| self.err(&e))?;
            // count(*) + count(*) is numeric in PostgreSQL only past bigint; it stays bigint.
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        })
    }
}
