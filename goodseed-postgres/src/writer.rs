//! [`PgRunWriter`]: writes one run, a transaction per batch.
//!
//! Points are grouped by series and ordered by step, the last write of a step winning.
//! The writer knows each series' last step and point count (it is the run's only
//! writer), so metric points past the last step are appended as new blocks (one per
//! series per write, see [`crate::blocks`]), and only points at or before it are
//! written into the blocks that hold their steps. Text points go through an upsert,
//! which reports which rows were new. The series' counts and last steps are kept in
//! `goodseed_series`, so a reader never counts points.
//!
//! Each metric series also keeps its downsampling pyramid ([`goodseed_store::pyramid`]):
//! appended points are folded into the series' state, whose completed buckets go to
//! `goodseed_metric_pyramid` and whose state goes to `goodseed_series.pyramid`, in the
//! transaction of the points. A write at or before a series' last step drops the
//! series' pyramid (readers then read its points raw) until the writer closes, which
//! folds it again from the series' blocks.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError};

use goodseed_core::{ConfigValue, FieldPath, MetricPoint};
use goodseed_store::pyramid::{self, BucketRow};
use goodseed_store::{LastSteps, Result, RunWriter, StoreError, WriteBatch};
use postgres::{GenericClient, Transaction};

use crate::blocks;
use crate::db_error;
use crate::store::{METRIC, Shared, TEXT, text_of};

/// What the writer knows of one series.
#[derive(Debug, Clone)]
struct SeriesState {
    id: i64,
    points: i64,
    last_step: Option<f64>,
    /// A metric series' pyramid; `None` for a text series, or a metric series whose
    /// pyramid was dropped.
    pyramid: Option<Box<pyramid::SeriesState>>,
}

impl SeriesState {
    /// A series as `goodseed_series` keeps it: its pyramid counts when it counts every
    /// point (a series without points starts one).
    fn stored(
        id: i64,
        kind: i16,
        points: i64,
        last_step: Option<f64>,
        pyramid: Option<&[u8]>,
    ) -> SeriesState {
        let pyramid = match (kind, pyramid) {
            (METRIC, Some(bytes)) => pyramid::SeriesState::decode(bytes)
                .filter(|state| i64::try_from(state.len()) == Ok(points))
                .map(Box::new),
            (METRIC, None) if points == 0 => {
                Some(Box::new(pyramid::SeriesState::new(pyramid::MIN_LEVEL)))
            }
            _ => None,
        };
        SeriesState { id, points, last_step, pyramid }
    }
}

/// Writes one run of a [`crate::PgStore`]; see the module's docs.
pub(crate) struct PgRunWriter {
    shared: Arc<Shared>,
    run: i64,
    token: i64,
    location: String,
    open: bool,
    series: HashMap<SeriesKey, SeriesState>,
    /// Series states changed by the transaction in flight, kept once it commits.
    staged: Vec<(SeriesKey, SeriesState)>,
    /// A write failed: whether it committed is not known (a connection lost at its
    /// commit), so what the writer keeps of the series is read again before the next.
    stale: bool,
    /// The run's files, when the store keeps files.
    blobs: Option<Arc<goodseed_store::blobs::BlobDir>>,
}

impl std::fmt::Debug for PgRunWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRunWriter").field("location", &self.location).finish_non_exhaustive()
    }
}

/// Points of one series in one batch: (step, value, ts), in step order, one per step.
type Points<T> = Vec<(f64, T, i64)>;

/// A series by (kind, path).
type SeriesKey = (i16, String);

/// The points of one series of a batch, with what the writer knows of the series.
type Group<T> = (SeriesKey, SeriesState, Points<T>);

/// Orders points by step, keeping the last write of each step (-0.0 and 0.0 are one
/// step, as the primary key has them).
fn settle<T>(points: &mut Points<T>) {
    if !points.is_sorted_by(|a, b| a.0 < b.0) {
        // Stable: equal steps stay in arrival order, so the last one is the latest.
        points.sort_by(|a, b| (a.0 + 0.0).total_cmp(&(b.0 + 0.0)));
        let mut out: Points<T> = Vec::with_capacity(points.len());
        for p in points.drain(..) {
            match out.last_mut() {
                Some(last) if last.0 == p.0 => *last = p,
                _ => out.push(p),
            }
        }
        *points = out;
    }
}

/// Blocks a write adds, as the columns of one `INSERT`.
#[derive(Debug, Default)]
struct NewBlocks {
    series: Vec<i64>,
    first: Vec<f64>,
    last: Vec<f64>,
    n: Vec<i32>,
    bytes: Vec<Vec<u8>>,
    unsent: Vec<Vec<u8>>,
    /// How many points of each are pending upload.
    pending: Vec<i32>,
}

impl NewBlocks {
    /// Points of one series, in step order, in blocks of at most `BLOCK_MAX`, each
    /// pending upload (`unsent`: flags per point, every one when `None`).
    fn add(&mut self, series: i64, points: &[blocks::Point], unsent: Option<&[bool]>) {
        for (k, chunk) in points.chunks(blocks::BLOCK_MAX).enumerate() {
            let flags = unsent.map(|f| &f[k * blocks::BLOCK_MAX..][..chunk.len()]);
            self.push(series, chunk[0].0, chunk, flags);
        }
    }

    /// One block, keyed by `first` (its first step, or the key it is stored under).
    fn push(&mut self, series: i64, first: f64, points: &[blocks::Point], unsent: Option<&[bool]>) {
        self.series.push(series);
        self.first.push(first);
        self.last.push(points[points.len() - 1].0);
        self.n.push(i32::try_from(points.len()).unwrap_or(i32::MAX));
        self.bytes.push(blocks::pack(points));
        let (bits, pending) = match unsent {
            Some(flags) => (blocks::pack_flags(flags), flags.iter().filter(|f| **f).count()),
            None => (blocks::all_unsent(points.len()), points.len()),
        };
        self.unsent.push(bits);
        self.pending.push(i32::try_from(pending).unwrap_or(i32::MAX));
    }
}

impl PgRunWriter {
    pub(crate) fn new(shared: Arc<Shared>, run: i64, token: i64, location: String) -> PgRunWriter {
        PgRunWriter {
            shared,
            run,
            token,
            location,
            open: true,
            series: HashMap::new(),
            staged: Vec::new(),
            stale: false,
            blobs: None,
        }
        .with_blobs()
    }

    fn with_blobs(mut self) -> PgRunWriter {
        self.blobs = self
            .shared
            .blobs
            .get()
            .map(|root| Arc::new(crate::artifacts::blob_dir(root, self.run)));
        self
    }

    /// Removes what a crash left of the run's files: unfinished copies, and blobs no
    /// record names (a resumed run; no copy can be in progress yet).
    pub(crate) fn tidy_blobs(&self, client: &mut impl GenericClient) {
        let Some(blobs) = &self.blobs else { return };
        if !blobs.dir().exists() {
            return;
        }
        blobs.remove_leftovers();
        if let Ok(referenced) = crate::artifacts::referenced(client, self.run) {
            let _ = blobs.remove_unreferenced(&blobs.kept(&referenced));
        }
    }

    pub(crate) fn run(&self) -> i64 {
        self.run
    }

    pub(crate) fn token(&self) -> i64 {
        self.token
    }

    fn err(&self, e: &postgres::Error) -> StoreError {
        db_error(&self.location, e)
    }

    /// Reads what the writer keeps of the run's series (a resumed run).
    pub(crate) fn load(&mut self, client: &mut impl GenericClient) -> Result<()> {
        let rows = client
            .query(
                "SELECT kind, path, id, points, last_step, pyramid FROM goodseed_series WHERE run = $1",
                &[&self.run],
            )
            .map_err(|e| self.err(&e))?;
        for r in rows {
            let kind: i16 = r.get(0);
            let state = SeriesState::stored(r.get(2), kind, r.get(3), r.get(4), r.get(5));
            self.series.insert((kind, r.get(1)), state);
        }
        Ok(())
    }

    /// Keeps what the committed transaction changed.
    pub(crate) fn committed(&mut self) {
        for (key, state) in self.staged.drain(..) {
            self.series.insert(key, state);
        }
    }

    fn no_files(&self) -> StoreError {
        StoreError::Unsupported {
            what: "keeping files (checkpoints, artifacts) without a blob directory \
                   (GOODSEED_BLOB_DIR)",
            location: self.location.clone(),
        }
    }

    fn closed(&self) -> StoreError {
        StoreError::Closed { location: self.location.clone() }
    }

    /// Writes a batch inside `tx`, its rows marked with the run's generation `seq`.
    pub(crate) fn write_in(
        &mut self,
        tx: &mut Transaction<'_>,
        batch: &WriteBatch,
        seq: i64,
    ) -> Result<()> {
        self.staged.clear();
        let run = self.run;
        let err = |e: postgres::Error| db_error(&self.location, &e);

        // Meta: the last change of each key wins.
        let mut meta: BTreeMap<&str, Option<&str>> = BTreeMap::new();
        for (k, v) in batch.meta_entries() {
            meta.insert(k, v);
        }
        let (set, del): (Vec<_>, Vec<_>) = meta.into_iter().partition(|(_, v)| v.is_some());
        if !set.is_empty() {
            let keys: Vec<&str> = set.iter().map(|(k, _)| *k).collect();
            let values: Vec<&[u8]> =
                set.iter().map(|(_, v)| v.unwrap_or_default().as_bytes()).collect();
            tx.execute(
                "INSERT INTO goodseed_run_meta (run, key, value)
                 SELECT $1, k, v FROM unnest($2::text[], $3::bytea[]) AS u(k, v)
                 ON CONFLICT (run, key) DO UPDATE SET value = excluded.value",
                &[&run, &keys, &values],
            )
            .map_err(err)?;
        }
        if !del.is_empty() {
            let keys: Vec<&str> = del.iter().map(|(k, _)| *k).collect();
            tx.execute(
                "DELETE FROM goodseed_run_meta WHERE run = $1 AND key = ANY($2)",
                &[&run, &keys],
            )
            .map_err(err)?;
        }

        // Configs: the last set of each path wins, in the order of those last sets.
        if batch.config_entries().len() > 0 {
            let mut last: HashMap<&str, usize> = HashMap::new();
            let entries: Vec<(&FieldPath, &ConfigValue)> = batch.config_entries().collect();
            for (i, (p, _)) in entries.iter().enumerate() {
                last.insert(p.as_str(), i);
            }
            let mut paths = Vec::new();
            let mut tags = Vec::new();
            let mut values: Vec<Option<Vec<u8>>> = Vec::new();
            let mut ords: Vec<i32> = Vec::new();
            for (i, (p, v)) in entries.iter().enumerate() {
                if last.get(p.as_str()) != Some(&i) {
                    continue;
                }
                paths.push(p.as_str());
                tags.push(v.type_tag());
                values.push(v.encode().map(String::into_bytes));
                ords.push(i32::try_from(paths.len()).unwrap_or(i32::MAX));
            }
            tx.execute(
                "INSERT INTO goodseed_configs (run, path, type_tag, value, seq, ord, uploaded)
                 SELECT $1, p, t, v, $5, o, FALSE
                 FROM unnest($2::text[], $3::text[], $4::bytea[], $6::int4[]) AS u(p, t, v, o)
                 ON CONFLICT (run, path) DO UPDATE SET type_tag = excluded.type_tag,
                     value = excluded.value, seq = excluded.seq, ord = excluded.ord,
                     uploaded = FALSE",
                &[&run, &paths, &tags, &values, &seq, &ords],
            )
            .map_err(err)?;
        }

        // Metric points, by series.
        if batch.metric_len() > 0 {
            let mut by_series: Vec<Points<f64>> = vec![Vec::new(); batch.metric_paths().len()];
            let mut index: HashMap<&FieldPath, usize> = HashMap::new();
            for (i, p) in batch.metric_paths().iter().enumerate() {
                index.insert(p, i);
            }
            for (path, row) in batch.metric_entries() {
                by_series[index[path]].push((row.step.get(), row.value, row.ts));
            }
            let groups = self.resolve(tx, METRIC, batch.metric_paths(), &mut by_series)?;
            self.write_metrics(tx, groups, seq)?;
        }

        if batch.text_entries().len() > 0 {
            let mut by_series: Vec<Points<&str>> = vec![Vec::new(); batch.text_paths().len()];
            let mut index: HashMap<&FieldPath, usize> = HashMap::new();
            for (i, p) in batch.text_paths().iter().enumerate() {
                index.insert(p, i);
            }
            for (path, row) in batch.text_entries() {
                by_series[index[path]].push((row.step.get(), row.value.as_str(), row.ts));
            }
            let groups = self.resolve(tx, TEXT, batch.text_paths(), &mut by_series)?;
            self.write_texts(tx, groups, seq)?;
        }

        // Histograms: a row each, a later one at a (path, step) winning.
        if !batch.histogram_entries().is_empty() {
            let stmt = tx
                .prepare(
                    "INSERT INTO goodseed_histograms (run, path, step, ts, kind, edges, counts, seq)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (run, path, step) DO UPDATE SET ts = excluded.ts,
                         kind = excluded.kind, edges = excluded.edges, counts = excluded.counts,
                         seq = excluded.seq, uploaded = FALSE",
                )
                .map_err(|e| self.err(&e))?;
            for h in batch.histogram_entries() {
                tx.execute(
                    &stmt,
                    &[
                        &run,
                        &h.path.as_str(),
                        &h.step.get(),
                        &h.ts,
                        &h.histogram.kind,
                        &h.histogram.edges,
                        &h.histogram.counts,
                        &seq,
                    ],
                )
                .map_err(|e| self.err(&e))?;
            }
        }
        Ok(())
    }

    /// The series of the batch's groups that have points, with their states (new ones
    /// created), each group settled.
    fn resolve<T>(
        &self,
        tx: &mut Transaction<'_>,
        kind: i16,
        paths: &[FieldPath],
        groups: &mut [Points<T>],
    ) -> Result<Vec<Group<T>>> {
        let mut missing: Vec<&str> = Vec::new();
        for (p, g) in paths.iter().zip(groups.iter()) {
            if !g.is_empty() && !self.series.contains_key(&(kind, p.as_str().to_owned())) {
                missing.push(p.as_str());
            }
        }
        let mut created: HashMap<String, SeriesState> = HashMap::new();
        if !missing.is_empty() {
            let rows = tx
                .query(
                    "INSERT INTO goodseed_series (run, kind, path)
                     SELECT $1, $2, p FROM unnest($3::text[]) AS u(p)
                     ON CONFLICT (run, kind, path) DO UPDATE SET path = excluded.path
                     RETURNING path, id, points, last_step, pyramid",
                    &[&self.run, &kind, &missing],
                )
                .map_err(|e| self.err(&e))?;
            for r in rows {
                let state = SeriesState::stored(r.get(1), kind, r.get(2), r.get(3), r.get(4));
                created.insert(r.get(0), state);
            }
        }
        let mut out = Vec::new();
        for (p, g) in paths.iter().zip(groups.iter_mut()) {
            if g.is_empty() {
                continue;
            }
            let key = (kind, p.as_str().to_owned());
            let state = match self.series.get(&key).or_else(|| created.get(p.as_str())) {
                Some(s) => s.clone(),
                None => {
                    return Err(StoreError::Database {
                        location: self.location.clone(),
                        message: format!("series {p} was not created"),
                        busy: false,
                    });
                }
            };
            settle(g);
            out.push((key, state, std::mem::take(g)));
        }
        Ok(out)
    }

    fn write_metrics(
        &mut self,
        tx: &mut Transaction<'_>,
        groups: Vec<Group<f64>>,
        seq: i64,
    ) -> Result<()> {
        let err = |e: postgres::Error| db_error(&self.location, &e);
        let mut blocks = NewBlocks::default();
        let mut states: HashMap<i64, (SeriesKey, SeriesState)> = HashMap::new();
        let (mut b_series, mut b_seq, mut b_bytes) = (Vec::new(), Vec::new(), Vec::new());
        let mut unindexed: Vec<i64> = Vec::new();
        let mut buckets: Vec<BucketRow> = Vec::new();
        let mut rewrites: Vec<(i64, Points<f64>)> = Vec::new();
        for (key, mut state, points) in groups {
            // Points in step order: any at or before the last step come first (written
            // into the blocks that hold their steps), and drop the series' pyramid; the
            // rest are appended as new blocks.
            let split = points.partition_point(|p| state.last_step.is_some_and(|last| p.0 <= last));
            let (again, appended) = points.split_at(split);
            if state.pyramid.is_some() && !again.is_empty() {
                state.pyramid = None;
                unindexed.push(state.id);
            }
            for &(step, value, ts) in appended {
                if let Some(pyramid) = &mut state.pyramid {
                    pyramid.push(MetricPoint { step, value, ts }, &mut buckets);
                    for row in buckets.drain(..) {
                        b_series.push(state.id);
                        b_seq.push(i64::try_from(row.seq).unwrap_or(i64::MAX));
                        b_bytes.push(row.bytes);
                    }
                }
                state.points += 1;
                state.last_step = Some(step);
            }
            blocks.add(state.id, appended, None);
            if !again.is_empty() {
                rewrites.push((state.id, again.to_vec()));
            }
            states.insert(state.id, (key, state));
        }
        for (id, again) in rewrites {
            let new = self.write_again(tx, id, &again, seq, &mut blocks)?;
            if let Some((_, state)) = states.get_mut(&id) {
                state.points += i64::try_from(new).unwrap_or(i64::MAX);
            }
        }
        if !blocks.series.is_empty() {
            tx.execute(
                "INSERT INTO goodseed_metric_blocks
                     (series, first_step, last_step, n, seq, unsent, unsent_bits, points)
                 SELECT s, f, l, n, $6, c, b, p
                 FROM unnest($1::int8[], $2::float8[], $3::float8[], $4::int4[], $5::bytea[],
                             $7::bytea[], $8::int4[]) AS u(s, f, l, n, p, b, c)",
                &[
                    &blocks.series,
                    &blocks.first,
                    &blocks.last,
                    &blocks.n,
                    &blocks.bytes,
                    &seq,
                    &blocks.unsent,
                    &blocks.pending,
                ],
            )
            .map_err(err)?;
        }
        if !unindexed.is_empty() {
            tx.execute("DELETE FROM goodseed_metric_pyramid WHERE series = ANY($1)", &[&unindexed])
                .map_err(err)?;
        }
        if !b_series.is_empty() {
            tx.execute(
                "INSERT INTO goodseed_metric_pyramid (series, seq, buckets)
                 SELECT * FROM unnest($1::int8[], $2::int8[], $3::bytea[])
                 ON CONFLICT (series, seq) DO UPDATE SET buckets = excluded.buckets",
                &[&b_series, &b_seq, &b_bytes],
            )
            .map_err(err)?;
        }
        self.stage(tx, states.into_values().collect())
    }

    /// Writes points at or before a series' last step into the blocks that hold their
    /// steps (each such block packed again, and pending upload again), or into new
    /// blocks between them. Returns how many points are new to the series.
    fn write_again(
        &self,
        tx: &mut Transaction<'_>,
        series: i64,
        again: &[blocks::Point],
        seq: i64,
        new_blocks: &mut NewBlocks,
    ) -> Result<usize> {
        let err = |e: postgres::Error| db_error(&self.location, &e);
        let torn = |message: String| StoreError::Database {
            location: self.location.clone(),
            message,
            busy: false,
        };
        // The blocks around each step: the last starting at or before it (which holds
        // it, if any does) and the first after it, so points no block holds are grouped
        // by the gap they fall in. Only blocks that hold some are then read whole.
        let steps: Vec<f64> = again.iter().map(|p| p.0).collect();
        let ranges: Vec<(f64, f64)> = tx
            .query(
                "SELECT DISTINCT b.first_step, b.last_step FROM unnest($2::float8[]) AS u(step)
                 CROSS JOIN LATERAL (
                     (SELECT first_step, last_step FROM goodseed_metric_blocks
                      WHERE series = $1 AND first_step <= u.step ORDER BY first_step DESC LIMIT 1)
                     UNION ALL
                     (SELECT first_step, last_step FROM goodseed_metric_blocks
                      WHERE series = $1 AND first_step > u.step ORDER BY first_step LIMIT 1)
                 ) AS b ORDER BY b.first_step",
                &[&series, &steps],
            )
            .map_err(err)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let placed = blocks::place(&ranges, again);
        let holding: Vec<f64> = ranges
            .iter()
            .zip(&placed.into)
            .filter(|(_, into)| !into.is_empty())
            .map(|(r, _)| r.0)
            .collect();
        let rows = tx
            .query(
                "SELECT first_step, points, n, unsent_bits FROM goodseed_metric_blocks
                 WHERE series = $1 AND first_step = ANY($2) ORDER BY first_step",
                &[&series, &holding],
            )
            .map_err(err)?;
        if rows.len() != holding.len() {
            return Err(torn(format!(
                "series {series}: {} of the blocks holding the steps written again were found",
                rows.len()
            )));
        }
        let into_holding = placed.into.iter().filter(|into| !into.is_empty());
        let mut new = 0;
        let mut changed = NewBlocks::default();
        let mut split: Vec<f64> = Vec::new();
        for (row, into) in rows.iter().zip(into_holding) {
            let mut points = blocks::unpack(row.get(1)).map_err(torn)?;
            let n = usize::try_from(row.get::<_, i32>(2)).unwrap_or(0);
            let mut unsent = blocks::unpack_flags(row.get(3), n);
            let written: Vec<blocks::Point> = into.iter().map(|&i| again[i]).collect();
            new += blocks::merge(&mut points, &mut unsent, &written);
            if points.len() > 2 * blocks::BLOCK_MAX {
                split.push(row.get(0));
                new_blocks.add(series, &points, Some(&unsent));
            } else {
                // One block still, under its key: every point written into it lies
                // within its steps.
                changed.push(series, row.get(0), &points, Some(&unsent));
            }
        }
        for group in &placed.between {
            let points: Vec<blocks::Point> = group.iter().map(|&i| again[i]).collect();
            new += points.len();
            new_blocks.add(series, &points, None);
        }
        if !changed.series.is_empty() {
            tx.execute(
                "UPDATE goodseed_metric_blocks b
                 SET points = u.p, n = u.n, seq = $2, unsent = u.c, unsent_bits = u.b
                 FROM unnest($3::float8[], $4::int4[], $5::bytea[], $6::int4[], $7::bytea[])
                     AS u(f, n, p, c, b)
                 WHERE b.series = $1 AND b.first_step = u.f",
                &[
                    &series,
                    &seq,
                    &changed.first,
                    &changed.n,
                    &changed.bytes,
                    &changed.pending,
                    &changed.unsent,
                ],
            )
            .map_err(err)?;
        }
        if !split.is_empty() {
            tx.execute(
                "DELETE FROM goodseed_metric_blocks WHERE series = $1 AND first_step = ANY($2)",
                &[&series, &split],
            )
            .map_err(err)?;
        }
        Ok(new)
    }

    fn write_texts(
        &mut self,
        tx: &mut Transaction<'_>,
        groups: Vec<Group<&str>>,
        seq: i64,
    ) -> Result<()> {
        let (mut series, mut steps, mut values, mut ts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut states: HashMap<i64, (SeriesKey, SeriesState)> = HashMap::new();
        for (key, state, points) in groups {
            for (step, value, t) in points {
                series.push(state.id);
                steps.push(step);
                values.push(value.as_bytes());
                ts.push(t);
            }
            states.insert(state.id, (key, state));
        }
        let rows = tx
            .query(
                "INSERT INTO goodseed_text_points (series, step, value, ts, seq)
                 SELECT s, st, v, t, $5 FROM unnest($1::int8[], $2::float8[], $3::bytea[], $4::int8[]) AS u(s, st, v, t)
                 ON CONFLICT (series, step) DO UPDATE SET value = excluded.value, ts = excluded.ts,
                     seq = excluded.seq, uploaded = FALSE
                 RETURNING series, step, (xmax = 0)",
                &[&series, &steps, &values, &ts, &seq],
            )
            .map_err(|e| self.err(&e))?;
        for r in rows {
            if let Some((_, state)) = states.get_mut(&r.get::<_, i64>(0)) {
                let step: f64 = r.get(1);
                if r.get::<_, bool>(2) {
                    state.points += 1;
                }
                state.last_step = Some(state.last_step.map_or(step, |l| l.max(step)));
            }
        }
        self.stage(tx, states.into_values().collect())
    }

    /// Saves the series' counts and last steps with the points, and keeps them for
    /// when the transaction commits.
    fn stage(
        &mut self,
        tx: &mut Transaction<'_>,
        states: Vec<(SeriesKey, SeriesState)>,
    ) -> Result<()> {
        let ids: Vec<i64> = states.iter().map(|(_, s)| s.id).collect();
        let points: Vec<i64> = states.iter().map(|(_, s)| s.points).collect();
        let last: Vec<Option<f64>> = states.iter().map(|(_, s)| s.last_step).collect();
        let pyramids: Vec<Option<Vec<u8>>> =
            states.iter().map(|(_, s)| s.pyramid.as_ref().map(|p| p.encode())).collect();
        tx.execute(
            "UPDATE goodseed_series s SET points = u.points, last_step = u.last, pyramid = u.pyramid
             FROM unnest($1::int8[], $2::int8[], $3::float8[], $4::bytea[]) AS u(id, points, last, pyramid)
             WHERE s.id = u.id",
            &[&ids, &points, &last, &pyramids],
        )
        .map_err(|e| self.err(&e))?;
        self.staged.extend(states);
        Ok(())
    }

    /// Folds again the pyramid of every metric series that lost it (a point was written
    /// at or before its last step), each in a transaction of its own, streaming its
    /// blocks: what the file store does when a run is opened. Skipped once the run is no
    /// longer this writer's.
    fn rebuild_pyramids(&mut self) -> Result<()> {
        const BLOCKS_PER_FETCH: i32 = 64;
        const ROWS_PER_INSERT: usize = 4096;
        let lost: Vec<(SeriesKey, i64)> = self
            .series
            .iter()
            .filter(|((kind, _), s)| *kind == METRIC && s.pyramid.is_none() && s.points > 0)
            .map(|(key, s)| (key.clone(), s.id))
            .collect();
        if lost.is_empty() {
            return Ok(());
        }
        let err = |e: postgres::Error| db_error(&self.location, &e);
        let torn = |message: String| StoreError::Database {
            location: self.location.clone(),
            message,
            busy: false,
        };
        let mut conn = self.shared.conn()?;
        for (key, id) in lost {
            let mut tx = conn.transaction().map_err(err)?;
            let held = tx
                .query_opt(
                    "SELECT 1 FROM goodseed_runs WHERE id = $1 AND writer = $2 FOR UPDATE",
                    &[&self.run, &self.token],
                )
                .map_err(err)?
                .is_some();
            if !held {
                return Ok(());
            }
            tx.execute("DELETE FROM goodseed_metric_pyramid WHERE series = $1", &[&id])
                .map_err(err)?;
            let mut state = pyramid::SeriesState::new(pyramid::MIN_LEVEL);
            let mut rows: Vec<BucketRow> = Vec::new();
            let portal = tx
                .bind(
                    "SELECT points FROM goodseed_metric_blocks WHERE series = $1 ORDER BY first_step",
                    &[&id],
                )
                .map_err(err)?;
            loop {
                let blocks = tx.query_portal(&portal, BLOCKS_PER_FETCH).map_err(err)?;
                for block in &blocks {
                    for (step, value, ts) in blocks::unpack(block.get(0)).map_err(torn)? {
                        state.push(MetricPoint { step, value, ts }, &mut rows);
                    }
                }
                if rows.len() >= ROWS_PER_INSERT || blocks.len() < BLOCKS_PER_FETCH as usize {
                    let seqs: Vec<i64> =
                        rows.iter().map(|r| i64::try_from(r.seq).unwrap_or(i64::MAX)).collect();
                    let bytes: Vec<Vec<u8>> = rows.drain(..).map(|r| r.bytes).collect();
                    tx.execute(
                        "INSERT INTO goodseed_metric_pyramid (series, seq, buckets)
                         SELECT $1, s, b FROM unnest($2::int8[], $3::bytea[]) AS u(s, b)",
                        &[&id, &seqs, &bytes],
                    )
                    .map_err(err)?;
                }
                if blocks.len() < BLOCKS_PER_FETCH as usize {
                    break;
                }
            }
            tx.execute(
                "UPDATE goodseed_series SET pyramid = $2 WHERE id = $1",
                &[&id, &state.encode()],
            )
            .map_err(err)?;
            tx.commit().map_err(err)?;
            if let Some(series) = self.series.get_mut(&key) {
                series.pyramid = Some(Box::new(state));
            }
        }
        Ok(())
    }

    /// Ends the writer's hold on the run: closed, or let go as a dead writer would.
    fn let_go(&mut self, gone: bool) -> Result<()> {
        if !self.open {
            return Ok(());
        }
        if !gone {
            // A pyramid that cannot be folded again now is folded at a later close.
            let _ = self.rebuild_pyramids();
        }
        self.open = false;
        self.shared.held.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.run);
        let mut conn = self.shared.conn()?;
        // Blobs no record names (copies never registered, records deleted from outside
        // while the run was held) go with the writer.
        if let Some(blobs) = &self.blobs
            && blobs.dir().exists()
            && let Ok(referenced) = crate::artifacts::referenced(&mut *conn, self.run)
        {
            let _ = blobs.remove_unreferenced(&blobs.kept(&referenced));
        }
        conn.execute(
            "UPDATE goodseed_runs SET writer = NULL, writer_gone = $3, generation = generation + 1,
                 modified = now() WHERE id = $1 AND writer = $2",
            &[&self.run, &self.token, &gone],
        )
        .map_err(|e| self.err(&e))?;
        Ok(())
    }
}

impl RunWriter for PgRunWriter {
    fn write(&mut self, batch: &WriteBatch) -> Result<()> {
        crate::off_runtime(|| {
            if !self.open {
                return Err(self.closed());
            }
            if batch.has_artifacts() && self.blobs.is_none() {
                return Err(self.no_files());
            }
            batch.check_histograms()?;
            for op in batch.artifact_ops() {
                if let goodseed_store::artifacts::ArtifactOp::Add(a) = op {
                    a.check().map_err(|reason| StoreError::BadRequest { reason })?;
                }
            }
            let mut conn = self.shared.conn()?;
            let mut tx = conn.transaction().map_err(|e| self.err(&e))?;
            // The run must still be this writer's: one taken for dead and resumed elsewhere
            // is not written over.
            let seq: Option<i64> = tx
                .query_opt(
                    "UPDATE goodseed_runs SET generation = generation + 1, heartbeat = now(), modified = now()
                     WHERE id = $1 AND writer = $2 RETURNING generation",
                    &[&self.run, &self.token],
                )
                .map_err(|e| self.err(&e))?
                .map(|r| r.get(0));
            let Some(seq) = seq else {
                return Err(StoreError::Database {
                    location: self.location.clone(),
                    message: "this writer no longer holds the run (it was taken for dead and \
                              resumed by another writer, or deleted)"
                        .to_owned(),
                    busy: false,
                });
            };
            if self.stale {
                // The last write may have committed though it failed: the series as the
                // database has them, so its points are not taken for new ones again.
                self.series.clear();
                self.load(&mut tx)?;
                self.stale = false;
            }
            let result = self.write_in(&mut tx, batch, seq).and_then(|()| {
                let now = goodseed_store::lifecycle::now_iso();
                crate::artifacts::write(&mut tx, self.run, batch.artifact_ops(), &now)
                    .map_err(|e| self.err(&e))
            });
            let deleted = match result {
                Ok(deleted) => deleted,
                Err(e) => {
                    self.staged.clear();
                    self.stale = true;
                    return Err(e);
                }
            };
            tx.commit().map_err(|e| {
                self.staged.clear();
                self.stale = true;
                self.err(&e)
            })?;
            self.committed();
            if let Some(blobs) = &self.blobs {
                for op in batch.artifact_ops() {
                    if let goodseed_store::artifacts::ArtifactOp::Add(a) = op
                        && a.in_place.is_none()
                    {
                        blobs.unpin_registered(&a.blob);
                    }
                }
                if !deleted.is_empty()
                    && let Ok(referenced) = crate::artifacts::referenced(&mut *conn, self.run)
                {
                    blobs.collect(&deleted, &blobs.kept(&referenced));
                }
            }
            Ok(())
        })
    }

    fn config(&self, path: &FieldPath) -> Result<Option<ConfigValue>> {
        crate::off_runtime(|| {
            if !self.open {
                return Err(self.closed());
            }
            let mut conn = self.shared.conn()?;
            let row = conn
                .query_opt(
                    "SELECT type_tag, value FROM goodseed_configs WHERE run = $1 AND path = $2",
                    &[&self.run, &path.as_str()],
                )
                .map_err(|e| self.err(&e))?;
            Ok(row.map(|r| {
                let tag: String = r.get(0);
                let value: Option<Vec<u8>> = r.get(1);
                ConfigValue::decode(&tag, value.map(text_of).as_deref())
            }))
        })
    }

    fn last_steps(&self) -> Result<LastSteps> {
        if !self.open {
            return Err(self.closed());
        }
        let mut out = LastSteps::new();
        for ((_, path), state) in &self.series {
            if let Some(step) = state.last_step {
                let last = out.entry(path.clone()).or_insert(step);
                *last = last.max(step);
            }
        }
        Ok(out)
    }

    fn meta(&self, key: &str) -> Result<Option<String>> {
        crate::off_runtime(|| {
            if !self.open {
                return Err(self.closed());
            }
            let mut conn = self.shared.conn()?;
            let row = conn
                .query_opt(
                    "SELECT value FROM goodseed_run_meta WHERE run = $1 AND key = $2",
                    &[&self.run, &key],
                )
                .map_err(|e| self.err(&e))?;
            Ok(row.map(|r| text_of(r.get(0))))
        })
    }

    fn location(&self) -> &str {
        &self.location
    }

    fn close(&mut self) -> Result<()> {
        crate::off_runtime(|| self.let_go(false))
    }

    fn blobs(&self) -> Result<Arc<dyn goodseed_store::artifacts::BlobSink>> {
        if !self.open {
            return Err(self.closed());
        }
        match &self.blobs {
            Some(b) => Ok(Arc::clone(b) as Arc<dyn goodseed_store::artifacts::BlobSink>),
            None => Err(self.no_files()),
        }
    }

    fn release(&mut self) -> Result<()> {
        crate::off_runtime(|| self.let_go(true))
    }
}

impl Drop for PgRunWriter {
    fn drop(&mut self) {
        // Gone without closing: the run's writer died. If the database cannot be told,
        // the heartbeats stop and the run reads as dead once they are stale.
        let _ = crate::off_runtime(|| self.let_go(true));
    }
}
