//! [`PgRunReader`]: reads one run. Long reads stream their rows (a 10-million-point
//! series is never held whole); a downsampling request reads its count and its rows in
//! one snapshot, so the window announced matches the points returned while a writer
//! appends. Downsampling answers from the series' pyramid when it counts every point
//! (see [`goodseed_store::pyramid`]), reading about `pointCount` rows, and reads the
//! points otherwise.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use goodseed_core::downsample::{Downsampler, PointCount, Sampled, Window};
use goodseed_core::{ConfigValue, MetricPoint, TextPoint};
use goodseed_store::pyramid::{self, Seqs};
use goodseed_store::{
    Result, RunMeta, RunReader, RunVersion, StoreError, TextOrder, TextPage, TextWindow,
};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{GenericClient, IsolationLevel};

use crate::blocks;
use crate::db_error;
use crate::store::{METRIC, Shared, TEXT, text_of};

/// Reads one run of a [`crate::PgStore`].
pub(crate) struct PgRunReader {
    shared: Arc<Shared>,
    run: i64,
    location: String,
    version: Option<RunVersion>,
}

impl std::fmt::Debug for PgRunReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRunReader").field("location", &self.location).finish_non_exhaustive()
    }
}

impl PgRunReader {
    pub(crate) fn new(
        shared: Arc<Shared>,
        run: i64,
        location: String,
        version: Option<RunVersion>,
    ) -> PgRunReader {
        PgRunReader { shared, run, location, version }
    }

    fn err(&self, e: &postgres::Error) -> StoreError {
        db_error(&self.location, e)
    }

    /// Whether a record of the run names the blob and holds it in the store.
    fn names_stored(&self, hash: &goodseed_store::artifacts::ContentHash) -> Result<bool> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            crate::artifacts::names_stored(&mut *conn, self.run, hash).map_err(|e| self.err(&e))
        })
    }

    /// The id of a series of the run, if it has one.
    fn series(
        &self,
        client: &mut impl GenericClient,
        kind: i16,
        path: &str,
    ) -> Result<Option<(i64, i64)>> {
        let row = client
            .query_opt(
                "SELECT id, points FROM goodseed_series WHERE run = $1 AND kind = $2 AND path = $3",
                &[&self.run, &kind, &path],
            )
            .map_err(|e| self.err(&e))?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    fn paths(&self, kind: i16) -> Result<Vec<String>> {
        let mut conn = self.shared.conn()?;
        let rows = conn
            .query(
                "SELECT path FROM goodseed_series WHERE run = $1 AND kind = $2 AND points > 0 ORDER BY path",
                &[&self.run, &kind],
            )
            .map_err(|e| self.err(&e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Streams the rows of a query to `visit` until it returns `false`.
    fn stream(
        &self,
        client: &mut impl GenericClient,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        visit: &mut dyn FnMut(&postgres::Row) -> bool,
    ) -> Result<()> {
        let mut rows = client.query_raw(sql, params.iter().copied()).map_err(|e| self.err(&e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(&e))? {
            if !visit(&row) {
                break;
            }
        }
        Ok(())
    }

    /// A block of points that does not unpack.
    fn torn(&self, message: String) -> StoreError {
        StoreError::Database { location: self.location.clone(), message, busy: false }
    }

    /// Streams a metric series' points with steps past `after`, in step order, to
    /// `visit` until it returns false, a block at a time.
    fn stream_points(
        &self,
        client: &mut impl GenericClient,
        series: i64,
        after: f64,
        visit: &mut dyn FnMut(MetricPoint) -> bool,
    ) -> Result<()> {
        let mut go_on = true;
        let mut failed = None;
        self.stream(
            client,
            "SELECT points FROM goodseed_metric_blocks WHERE series = $1 AND last_step > $2
             ORDER BY first_step",
            &[&series, &after],
            &mut |row| {
                let visited = blocks::visit_from(row.get(0), 0, &mut |p| {
                    if p.step > after {
                        go_on = visit(p);
                    }
                    go_on
                });
                if let Err(e) = visited {
                    failed = Some(e);
                    return false;
                }
                go_on
            },
        )?;
        failed.map_or(Ok(()), |e| Err(self.torn(e)))
    }

    /// Streams `len` points of a metric series from its point `offset` (in step order)
    /// to `visit`: the block holding that point is found from the blocks' counts.
    fn stream_range(
        &self,
        client: &mut impl GenericClient,
        series: i64,
        offset: u64,
        len: u64,
        visit: &mut dyn FnMut(MetricPoint),
    ) -> Result<()> {
        let counts = client
            .query(
                "SELECT first_step, n FROM goodseed_metric_blocks WHERE series = $1 ORDER BY first_step",
                &[&series],
            )
            .map_err(|e| self.err(&e))?;
        let mut before = 0u64;
        let mut start = None;
        for row in &counts {
            let n = u64::try_from(row.get::<_, i32>(1)).unwrap_or(0);
            if before + n > offset {
                start = Some((row.get::<_, f64>(0), offset - before));
                break;
            }
            before += n;
        }
        let Some((first, mut skip)) = start else {
            return Ok(());
        };
        let mut left = len;
        let mut failed = None;
        self.stream(
            client,
            "SELECT points FROM goodseed_metric_blocks WHERE series = $1 AND first_step >= $2
             ORDER BY first_step",
            &[&series, &first],
            &mut |row| {
                let from = usize::try_from(std::mem::take(&mut skip)).unwrap_or(usize::MAX);
                let visited = blocks::visit_from(row.get(0), from, &mut |p| {
                    if left == 0 {
                        return false;
                    }
                    left -= 1;
                    visit(p);
                    true
                });
                if let Err(e) = visited {
                    failed = Some(e);
                    return false;
                }
                left > 0
            },
        )?;
        failed.map_or(Ok(()), |e| Err(self.torn(e)))
    }
}

impl PgRunReader {
    fn visit_here(
        &self,
        path: Option<&str>,
        visit: &mut dyn FnMut(&str, MetricPoint) -> bool,
    ) -> Result<()> {
        let mut conn = self.shared.conn()?;
        let series: Vec<(i64, String)> = match path {
            Some(p) => self.series(&mut *conn, METRIC, p)?.map(|(id, _)| vec![(id, p.to_owned())]).unwrap_or_default(),
            None => conn
                .query(
                    "SELECT id, path FROM goodseed_series WHERE run = $1 AND kind = $2 AND points > 0 ORDER BY path",
                    &[&self.run, &METRIC],
                )
                .map_err(|e| self.err(&e))?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
        };
        for (id, p) in series {
            let mut go_on = true;
            self.stream_points(&mut *conn, id, f64::NEG_INFINITY, &mut |point| {
                go_on = visit(&p, point);
                go_on
            })?;
            if !go_on {
                break;
            }
        }
        Ok(())
    }

    fn visit_after_here(
        &self,
        path: &str,
        after: Option<f64>,
        visit: &mut dyn FnMut(MetricPoint) -> bool,
    ) -> Result<()> {
        let mut conn = self.shared.conn()?;
        let Some((id, _)) = self.series(&mut *conn, METRIC, path)? else {
            return Ok(());
        };
        self.stream_points(&mut *conn, id, after.unwrap_or(f64::NEG_INFINITY), visit)
    }
}

/// Points read on another thread (see [`crate::off_runtime`]) and handed to the
/// caller's visitor on its own, a chunk at a time: memory stays bounded, and a visitor
/// that stops stops the read.
fn relay(
    visit: &mut dyn FnMut(&str, MetricPoint) -> bool,
    read: impl FnOnce(&mut dyn FnMut((String, MetricPoint)) -> bool) -> Result<()> + Send,
) -> Result<()> {
    const CHUNK: usize = 4096;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(String, MetricPoint)>>(2);
    std::thread::scope(|s| {
        let worker = s.spawn(move || {
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut open = true;
            let result = read(&mut |item| {
                chunk.push(item);
                if chunk.len() == CHUNK {
                    open =
                        tx.send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))).is_ok();
                }
                open
            });
            if open && !chunk.is_empty() {
                let _ = tx.send(chunk);
            }
            result
        });
        'chunks: for chunk in rx.iter() {
            for (p, point) in chunk {
                if !visit(&p, point) {
                    break 'chunks;
                }
            }
        }
        drop(rx);
        match worker.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// One series in a read's snapshot, for [`pyramid::sample`].
struct Source<'r, 't, 'c> {
    reader: &'r PgRunReader,
    tx: RefCell<&'t mut postgres::Transaction<'c>>,
    series: i64,
}

impl pyramid::Source for Source<'_, '_, '_> {
    type Error = StoreError;

    fn rows(&self, seqs: Seqs, visit: &mut dyn FnMut(u64, &[u8])) -> Result<()> {
        let mut tx = self.tx.borrow_mut();
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let rows = if seqs.stride == 1 {
            tx.query(
                "SELECT seq, buckets FROM goodseed_metric_pyramid
                 WHERE series = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq",
                &[&self.series, &clamp(seqs.first), &clamp(seqs.last)],
            )
        } else {
            // One lookup per row wanted, in one statement.
            let wanted: Vec<i64> = seqs.iter().map(clamp).collect();
            tx.query(
                "SELECT seq, buckets FROM goodseed_metric_pyramid
                 WHERE series = $1 AND seq = ANY($2) ORDER BY seq",
                &[&self.series, &wanted],
            )
        }
        .map_err(|e| self.reader.err(&e))?;
        for row in rows {
            let seq: i64 = row.get(0);
            visit(u64::try_from(seq).unwrap_or(0), row.get(1));
        }
        Ok(())
    }

    fn points_after(
        &self,
        after: f64,
        skip: u64,
        limit: u64,
        visit: &mut dyn FnMut(MetricPoint),
    ) -> Result<()> {
        let mut tx = self.tx.borrow_mut();
        let (mut skip, mut left) = (skip, limit);
        self.reader.stream_points(&mut **tx, self.series, after, &mut |point| {
            if skip > 0 {
                skip -= 1;
                return true;
            }
            if left == 0 {
                return false;
            }
            left -= 1;
            visit(point);
            left > 0
        })
    }
}

impl RunReader for PgRunReader {
    fn meta(&self) -> Result<RunMeta> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let rows = conn
                .query("SELECT key, value FROM goodseed_run_meta WHERE run = $1", &[&self.run])
                .map_err(|e| self.err(&e))?;
            let meta: BTreeMap<String, String> =
                rows.iter().map(|r| (r.get(0), text_of(r.get(1)))).collect();
            if meta.is_empty() {
                let exists = conn
                    .query_opt("SELECT 1 FROM goodseed_runs WHERE id = $1", &[&self.run])
                    .map_err(|e| self.err(&e))?
                    .is_some();
                if !exists {
                    return Err(StoreError::NotARun {
                        location: self.location.clone(),
                        reason: "the run was deleted".to_owned(),
                    });
                }
            }
            Ok(RunMeta(meta))
        })
    }

    fn configs(&self) -> Result<Vec<(String, ConfigValue)>> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let rows = conn
                .query(
                    "SELECT path, type_tag, value FROM goodseed_configs WHERE run = $1 ORDER BY seq, ord",
                    &[&self.run],
                )
                .map_err(|e| self.err(&e))?;
            Ok(rows
                .iter()
                .map(|r| {
                    let tag: String = r.get(1);
                    let value: Option<Vec<u8>> = r.get(2);
                    (r.get(0), ConfigValue::decode(&tag, value.map(text_of).as_deref()))
                })
                .collect())
        })
    }

    fn metric_paths(&self) -> Result<Vec<String>> {
        crate::off_runtime(|| self.paths(METRIC))
    }

    fn text_paths(&self) -> Result<Vec<String>> {
        crate::off_runtime(|| self.paths(TEXT))
    }

    fn histogram_paths(&self) -> Result<Vec<String>> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let rows = conn
                .query(
                    "SELECT DISTINCT path FROM goodseed_histograms WHERE run = $1 ORDER BY path",
                    &[&self.run],
                )
                .map_err(|e| self.err(&e))?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn histograms(&self, path: &str) -> Result<Vec<goodseed_core::HistogramPoint>> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let rows = conn
                .query(
                    "SELECT step, ts, kind, edges, counts FROM goodseed_histograms
                     WHERE run = $1 AND path = $2 ORDER BY step",
                    &[&self.run, &path],
                )
                .map_err(|e| self.err(&e))?;
            Ok(rows
                .iter()
                .map(|r| goodseed_core::HistogramPoint {
                    step: r.get(0),
                    ts: r.get(1),
                    histogram: goodseed_core::Histogram {
                        kind: r.get(2),
                        edges: r.get(3),
                        counts: r.get(4),
                    },
                })
                .collect())
        })
    }

    fn metric_count(&self, path: &str) -> Result<u64> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let found = self.series(&mut *conn, METRIC, path)?;
            Ok(found.map_or(0, |(_, n)| u64::try_from(n).unwrap_or(0)))
        })
    }

    fn visit_metrics(
        &self,
        path: Option<&str>,
        visit: &mut dyn FnMut(&str, MetricPoint) -> bool,
    ) -> Result<()> {
        if !crate::in_runtime() {
            return self.visit_here(path, visit);
        }
        relay(visit, |send| self.visit_here(path, &mut |p, point| send((p.to_owned(), point))))
    }

    fn visit_metrics_after(
        &self,
        path: &str,
        after: Option<f64>,
        visit: &mut dyn FnMut(MetricPoint) -> bool,
    ) -> Result<()> {
        if !crate::in_runtime() {
            return self.visit_after_here(path, after, visit);
        }
        relay(&mut |_: &str, point| visit(point), |send| {
            self.visit_after_here(path, after, &mut |point| send((String::new(), point)))
        })
    }

    fn last_metric_point(&self, path: &str) -> Result<Option<MetricPoint>> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let Some((id, _)) = self.series(&mut *conn, METRIC, path)? else {
                return Ok(None);
            };
            let row = conn
                .query_opt(
                    "SELECT points FROM goodseed_metric_blocks WHERE series = $1
                     ORDER BY first_step DESC LIMIT 1",
                    &[&id],
                )
                .map_err(|e| self.err(&e))?;
            let Some(row) = row else {
                return Ok(None);
            };
            let points = blocks::unpack(row.get(0)).map_err(|e| self.torn(e))?;
            Ok(points.last().map(|&(step, value, ts)| MetricPoint { step, value, ts }))
        })
    }

    fn downsample_metric(
        &self,
        path: &str,
        first_point_index: Option<i64>,
        last_point_index: Option<i64>,
        point_count: PointCount,
    ) -> Result<(Window, Sampled)> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let mut tx = conn
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(|e| self.err(&e))?;
            let series = tx
                .query_opt(
                    "SELECT id, points, pyramid FROM goodseed_series WHERE run = $1 AND kind = $2 AND path = $3",
                    &[&self.run, &METRIC, &path],
                )
                .map_err(|e| self.err(&e))?;
            let Some(series) = series else {
                return Ok((
                    Window::new(0, first_point_index, last_point_index),
                    Sampled::default(),
                ));
            };
            let (id, total): (i64, i64) = (series.get(0), series.get(1));
            let total = u64::try_from(total).unwrap_or(0);
            let window = Window::new(total, first_point_index, last_point_index);
            let rows = window.rows();
            if rows.is_empty() {
                return Ok((window, Sampled::default()));
            }
            let state = series
                .get::<_, Option<&[u8]>>(2)
                .and_then(pyramid::SeriesState::decode)
                .filter(|state| state.len() == total);
            if let Some(state) = state {
                let source = Source { reader: self, tx: RefCell::new(&mut tx), series: id };
                if let Some(sampled) = pyramid::sample(&source, &state, rows.clone(), point_count)?
                {
                    tx.commit().map_err(|e| self.err(&e))?;
                    return Ok((window, sampled));
                }
            }
            let mut sampler = Downsampler::new(window.row_count(), point_count);
            self.stream_range(&mut tx, id, rows.start, rows.end - rows.start, &mut |point| {
                sampler.push(point);
            })?;
            tx.commit().map_err(|e| self.err(&e))?;
            Ok((window, sampler.finish()))
        })
    }

    fn text_points_in(
        &self,
        path: Option<&str>,
        window: TextWindow,
        by: TextOrder,
    ) -> Result<TextPage> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let filter = if path.is_some() { "AND s.path = $3" } else { "" };
            let order = match (path, by) {
                (Some(_), _) => "p.step",
                (None, TextOrder::Path) => "s.path, p.step",
                (None, TextOrder::Step) => "p.step, s.path",
            };
            let base = format!(
                "SELECT s.path, p.step, p.value, p.ts FROM goodseed_text_points p
                 JOIN goodseed_series s ON p.series = s.id WHERE s.run = $1 AND s.kind = $2 {filter}"
            );
            let count_sql = format!(
                "SELECT count(*) FROM goodseed_text_points p JOIN goodseed_series s ON p.series = s.id
                 WHERE s.run = $1 AND s.kind = $2 {filter}"
            );
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&self.run, &TEXT];
            if let Some(p) = &path {
                params.push(p);
            }
            let total: i64 = conn.query_one(&count_sql, &params).map_err(|e| self.err(&e))?.get(0);
            let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            let next = params.len() + 1;
            let (limit, offset);
            let sql = match window {
                TextWindow::All => format!("{base} ORDER BY {order}"),
                TextWindow::Page { limit: l, offset: o } => {
                    (limit, offset) = (clamp(l), clamp(o));
                    params.push(&limit);
                    params.push(&offset);
                    format!("{base} ORDER BY {order} LIMIT ${next} OFFSET ${}", next + 1)
                }
                // As 0.4.0 does: `DESC` binds to the last ordering column only, so with no
                // path the tail is taken per path order, newest steps first. In step
                // order, the newest steps of all series.
                TextWindow::Tail(n) => {
                    limit = clamp(n);
                    params.push(&limit);
                    let (inner, outer) = match (path, by) {
                        (Some(_), _) => ("p.step DESC", "2"),
                        (None, TextOrder::Path) => ("s.path, p.step DESC", "1, 2"),
                        (None, TextOrder::Step) => ("p.step DESC, s.path DESC", "2, 1"),
                    };
                    format!(
                        "SELECT * FROM ({base} ORDER BY {inner} LIMIT ${next}) AS t ORDER BY {outer}"
                    )
                }
            };
            let mut points = Vec::new();
            self.stream(&mut *conn, &sql, &params, &mut |r| {
                points.push((
                    r.get(0),
                    TextPoint { step: r.get(1), value: text_of(r.get(2)), ts: r.get(3) },
                ));
                true
            })?;
            Ok(TextPage { points, total: u64::try_from(total).unwrap_or(0) })
        })
    }

    fn integer_steps(&self) -> Result<bool> {
        Ok(false)
    }

    fn integrity_check(&self) -> Result<Vec<String>> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let mut problems = Vec::new();
            let meta = self.meta()?;
            if meta.run_id().is_none() {
                problems.push("run_meta has no run_id".to_owned());
            }
            // What the writer keeps of each series must be what its points say.
            let rows = conn
                .query(
                    "SELECT s.path, s.kind, s.points, s.last_step, coalesce(m.n, t.n, 0), coalesce(m.last, t.last)
                     FROM goodseed_series s
                     LEFT JOIN LATERAL (SELECT sum(n)::int8 AS n, max(last_step) AS last
                                        FROM goodseed_metric_blocks WHERE series = s.id) m ON s.kind = 0
                     LEFT JOIN LATERAL (SELECT count(*) AS n, max(step) AS last FROM goodseed_text_points
                                        WHERE series = s.id) t ON s.kind = 1
                     WHERE s.run = $1 ORDER BY s.kind, s.path",
                    &[&self.run],
                )
                .map_err(|e| self.err(&e))?;
            for r in rows {
                let (path, kept, kept_last, n, last): (String, i64, Option<f64>, i64, Option<f64>) =
                    (r.get(0), r.get(2), r.get(3), r.get(4), r.get(5));
                if kept != n {
                    problems.push(format!(
                        "series {path:?} is said to hold {kept} points but holds {n}"
                    ));
                }
                if kept_last != last {
                    problems.push(format!(
                        "series {path:?} is said to end at step {kept_last:?} but ends at {last:?}"
                    ));
                }
            }
            // Each block of metric points: whole, and past the one before it.
            let rows = conn
                .query(
                    "SELECT path, first_step, torn, overlapping FROM (
                         SELECT s.path, b.first_step, octet_length(b.points) <> b.n * $2 AS torn,
                                b.first_step <= lag(b.last_step) OVER (PARTITION BY b.series ORDER BY b.first_step)
                                    AS overlapping
                         FROM goodseed_metric_blocks b JOIN goodseed_series s ON s.id = b.series
                         WHERE s.run = $1) AS checked
                     WHERE torn OR overlapping ORDER BY path, first_step",
                    &[&self.run, &i32::try_from(blocks::POINT_BYTES).unwrap_or(i32::MAX)],
                )
                .map_err(|e| self.err(&e))?;
            for r in rows {
                let (path, first, torn): (String, f64, bool) = (r.get(0), r.get(1), r.get(2));
                problems.push(if torn {
                    format!("series {path:?}: the block of points from step {first} is torn")
                } else {
                    format!("series {path:?}: the block of points from step {first} overlaps the one before")
                });
            }
            if problems.is_empty() {
                problems.push("ok".to_owned());
            }
            Ok(problems)
        })
    }

    fn artifacts(&self) -> Result<Vec<goodseed_store::artifacts::Artifact>> {
        self.artifacts_after(0)
    }

    fn artifacts_after(&self, after: i64) -> Result<Vec<goodseed_store::artifacts::Artifact>> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            crate::artifacts::list(&mut *conn, self.run, after, false).map_err(|e| self.err(&e))
        })
    }

    fn open_blob(
        &self,
        hash: &goodseed_store::artifacts::ContentHash,
    ) -> Result<goodseed_store::artifacts::Blob> {
        let no_such = || StoreError::NoSuchArtifact {
            what: hash.to_string(),
            location: self.location.clone(),
        };
        let root = self.shared.blobs.get().ok_or_else(no_such)?;
        if !self.names_stored(hash)? {
            return Err(no_such());
        }
        crate::artifacts::blob_dir(root, self.run).open(hash).map_err(|_| no_such())
    }

    fn open_tree(
        &self,
        hash: &goodseed_store::artifacts::ContentHash,
    ) -> Result<goodseed_store::artifacts::TreeFiles> {
        let no_such = || StoreError::NoSuchArtifact {
            what: hash.to_string(),
            location: self.location.clone(),
        };
        let root = self.shared.blobs.get().ok_or_else(no_such)?;
        if !self.names_stored(hash)? {
            return Err(no_such());
        }
        crate::artifacts::blob_dir(root, self.run).tree_files(hash)
    }

    fn check_blobs(&self, deep: bool) -> Result<Vec<String>> {
        let Some(root) = self.shared.blobs.get() else { return Ok(Vec::new()) };
        let blobs = crate::artifacts::blob_dir(root, self.run);
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            crate::artifacts::check(&mut *conn, self.run, &blobs, deep).map_err(|e| self.err(&e))
        })
    }

    fn version(&self) -> Option<RunVersion> {
        self.version
    }
}
