//! The downsampling pyramid: per metric series, the sums of every complete aligned bucket
//! of `k = 2^j` points for each level `k >= 2^min_level`, kept by our writer in tables of
//! ours, so that a `pointCount` request on a long series reads about `pointCount` rows
//! instead of the whole series. See docs/FORMAT.md for the tables and the validity rule.
//!
//! Float sums depend on their order, and 0.4.0's downsampling sums each bucket's steps and
//! values over its own points, in step order, from zero. So every level is summed over the
//! raw points on its own ([`SeriesState::push`] adds each point to one running sum per
//! level, a few additions per point); only counts, extremes and times are composed from
//! the level below ([`BucketSums::merge_extremes`]).
//!
//! The writer keeps each series' [`SeriesState`] (the running sums of the incomplete
//! bucket of every level) in memory and stores it with the completed buckets in the
//! transaction of the points. A reader answers a request whose window starts on a bucket
//! boundary of its bucket size from the stored buckets, the stored state for the last,
//! incomplete bucket, and a few point lookups; anything else is read raw.

use std::collections::HashMap;
use std::ops::Range;

use goodseed_core::MetricPoint;
use goodseed_core::downsample::{BucketSums, Downsampler, PointCount, Sampled};
use rusqlite::{Connection, OptionalExtension};

use super::reader::{metric_point, series_has_nan, series_points_sql};
use super::schema::{self, NAN_TABLE};

/// The smallest level kept: buckets of `2^7 = 128` points. A request with a smaller bucket
/// size `k` covers at most `64 * pointCount` points (`k` is the least power of two with
/// `ceil(n / k) <= pointCount`), which the raw path reads in a few milliseconds for the
/// point counts charts ask for; the levels kept add about `n / 64` rows.
pub(crate) const MIN_LEVEL: u32 = 7;

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

/// The buckets one point completes: the smallest level's bucket number `seq` (points
/// `[seq * k, (seq + 1) * k)`, `k = 2^min_level`), and with it the bucket of each level
/// above that ends on the same point, `1 + trailing_zeros(seq + 1)` in all. Stored as one
/// row keyed by `(series_id, seq)`, so a series' rows are appended at its end of the
/// table (a transaction dirties a page or two per series, not one per level).
///
/// `bytes`: the common last step, then per level from the smallest up its `sum_step`,
/// `sum_y`, `finite`, `min_y`, `max_y` and `ts`: 8 bytes each, little-endian `f64`,
/// `u64` and `i64`. Bytes rather than columns: no float rewritten by SQLite, less to bind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BucketRow {
    seq: u64,
    bytes: Vec<u8>,
}

/// Bytes per bucket in a [`BucketRow`], after the 8 of the last step.
const BUCKET_BYTES: usize = 48;

fn put_bucket(out: &mut Vec<u8>, s: &BucketSums) {
    for field in [
        s.sum_step.to_le_bytes(),
        s.sum_value.to_le_bytes(),
        s.finite.to_le_bytes(),
        s.min.to_le_bytes(),
        s.max.to_le_bytes(),
        s.ts.to_le_bytes(),
    ] {
        out.extend_from_slice(&field);
    }
}

/// The bucket at `q` levels above the smallest in a stored row, of `len` points.
fn bucket_in(bytes: &[u8], q: usize, len: u64) -> Option<BucketSums> {
    let at = 8 + q * BUCKET_BYTES;
    let mut r = Bytes(bytes.get(at..at + BUCKET_BYTES)?);
    let (sum_step, sum_value, finite) = (r.f64()?, r.f64()?, r.u64()?);
    let (min, max, ts) = (r.f64()?, r.f64()?, r.i64()?);
    Some(BucketSums { len, sum_step, sum_value, finite, min, max, ts })
}

/// The last step of a stored row's buckets.
fn last_step_in(bytes: &[u8]) -> Option<f64> {
    Bytes(bytes).f64()
}

/// What the level `min_level + q` keeps besides its running sums.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Level {
    /// The time of the incomplete bucket's point at offset `k / 2`, once it came (for
    /// `q = 0`, [`SeriesState::acc`] has it).
    mid_ts: i64,
    /// The level's last complete bucket when its index is even, waiting for its sibling
    /// to make a bucket of the level above (only the count and extremes are used).
    pending: Option<BucketSums>,
}

impl Level {
    const EMPTY: Level = Level { mid_ts: 0, pending: None };
}

/// The pyramid of one series as its writer sees it: the points folded so far and the
/// running sums of the incomplete bucket of every level.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeriesState {
    min_level: u32,
    /// Points folded.
    n: u64,
    /// The first and last points folded (meaningful when `n > 0`).
    first: MetricPoint,
    last: MetricPoint,
    /// The incomplete bucket of the smallest level, summed as the downsampler sums one.
    acc: BucketSums,
    /// `levels[q]` for level `min_level + q`; the last one is the lowest level with no
    /// complete bucket yet (its sums are those of every point so far, as are those of
    /// every level above it).
    levels: Vec<Level>,
    /// `sums[q]`: the running sums of steps and finite values of level `min_level + q`'s
    /// incomplete bucket, for `q >= 1` (`sums[0]` is unused: `acc` has them). Apart
    /// from `levels`, so that adding a point to every level is one loop over pairs.
    sums: Vec<[f64; 2]>,
}

const NO_POINT: MetricPoint = MetricPoint { step: 0.0, value: 0.0, ts: 0 };

impl SeriesState {
    pub(crate) fn new(min_level: u32) -> SeriesState {
        SeriesState {
            min_level,
            n: 0,
            first: NO_POINT,
            last: NO_POINT,
            acc: BucketSums::EMPTY,
            levels: vec![Level::EMPTY],
            sums: vec![[0.0; 2]],
        }
    }

    /// The number of points folded: the series' length while the pyramid is valid.
    pub(crate) fn len(&self) -> u64 {
        self.n
    }

    /// Folds the next point (its step above every step folded so far, its values as
    /// SQLite returns them), adding the buckets it completes to `out`.
    fn push(&mut self, point: MetricPoint, out: &mut Vec<BucketRow>) {
        let mask = (1u64 << self.min_level) - 1;
        if self.n == 0 {
            self.first = point;
        }
        self.last = point;
        self.acc.add(point, mask + 1);
        // Adding 0.0 for a non-finite value leaves a sum as it is: a sum that starts at
        // 0.0 is never -0.0.
        let value = if point.value.is_finite() { point.value } else { 0.0 };
        for sums in &mut self.sums[1..] {
            sums[0] += point.step;
            sums[1] += value;
        }
        let index = self.n;
        self.n += 1;
        if index & mask == 0 && index > 0 {
            // The point at offset k / 2 of a bucket of level j (k = 2^j) is the one whose
            // index has exactly j - 1 trailing zeros; for the levels above the smallest,
            // the first point of one of the smallest level's buckets.
            let q = (index.trailing_zeros() + 1 - self.min_level) as usize;
            if let Some(level) = self.levels.get_mut(q) {
                level.mid_ts = point.ts;
            }
        }
        if self.n & mask == 0 {
            self.complete(point.step, out);
        }
    }

    /// The smallest level's bucket has just completed: emits it, and every bucket of the
    /// levels above that completes with it, as one row.
    fn complete(&mut self, last_step: f64, out: &mut Vec<BucketRow>) {
        let mut sums = std::mem::replace(&mut self.acc, BucketSums::EMPTY);
        let seq = (self.n >> self.min_level) - 1;
        let mut bytes = Vec::with_capacity(8 + 2 * BUCKET_BYTES);
        bytes.extend_from_slice(&last_step.to_le_bytes());
        let mut q = 0;
        loop {
            let level = self.min_level + q as u32;
            let bucket = (self.n >> level) - 1;
            put_bucket(&mut bytes, &sums);
            if q + 1 == self.levels.len() {
                // The first bucket of the top level: the level above holds the same points.
                self.levels.push(Level::EMPTY);
                self.sums.push([sums.sum_step, sums.sum_value]);
            }
            if q > 0 {
                self.sums[q] = [0.0; 2];
            }
            if bucket.is_multiple_of(2) {
                self.levels[q].pending = Some(sums);
                out.push(BucketRow { seq, bytes });
                return;
            }
            // The second half of a bucket one level up: that one completes too.
            let mut whole = self.levels[q].pending.take().unwrap_or(BucketSums::EMPTY);
            whole.merge_extremes(&sums);
            q += 1;
            sums = BucketSums {
                len: 1 << (self.min_level + q as u32),
                sum_step: self.sums[q][0],
                sum_value: self.sums[q][1],
                ts: self.levels[q].mid_ts,
                ..whole
            };
        }
    }

    /// The sums of level `level`'s incomplete bucket (the points after its last complete
    /// bucket), with `ts` left at 0 for the caller to look up; `None` when every point is
    /// in a complete bucket.
    fn tail(&self, level: u32) -> Option<BucketSums> {
        let q = (level.checked_sub(self.min_level)?) as usize;
        let left = if level >= 64 { self.n } else { self.n & ((1u64 << level) - 1) };
        if left == 0 {
            return None;
        }
        if q == 0 {
            return Some(BucketSums { ts: 0, ..self.acc });
        }
        let top = self.levels.len() - 1;
        let (sum_step, sum_value) = match q.min(top) {
            0 => (self.acc.sum_step, self.acc.sum_value),
            q => (self.sums[q][0], self.sums[q][1]),
        };
        // The incomplete bucket is, in step order, one pending bucket of each lower level
        // whose bit is set in `n`, then the smallest level's incomplete bucket.
        let mut extremes = BucketSums::EMPTY;
        for lower in self.levels[..q.min(self.levels.len())].iter().rev() {
            if let Some(pending) = &lower.pending {
                extremes.merge_extremes(pending);
            }
        }
        extremes.merge_extremes(&self.acc);
        Some(BucketSums { len: left, sum_step, sum_value, ts: 0, ..extremes })
    }

    /// The state as stored in `metric_pyramid_series.state`: little-endian fields, see
    /// docs/FORMAT.md.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.levels.len() * 49);
        out.push(STATE_VERSION);
        out.push(self.min_level as u8);
        out.extend_from_slice(&self.n.to_le_bytes());
        for p in [self.first, self.last] {
            out.extend_from_slice(&p.step.to_le_bytes());
            out.extend_from_slice(&p.value.to_le_bytes());
            out.extend_from_slice(&p.ts.to_le_bytes());
        }
        let a = &self.acc;
        out.extend_from_slice(&a.len.to_le_bytes());
        out.extend_from_slice(&a.sum_step.to_le_bytes());
        out.extend_from_slice(&a.sum_value.to_le_bytes());
        put_extremes(&mut out, a);
        out.extend_from_slice(&a.ts.to_le_bytes());
        out.push(self.levels.len() as u8);
        for (level, sums) in self.levels.iter().zip(&self.sums) {
            out.extend_from_slice(&sums[0].to_le_bytes());
            out.extend_from_slice(&sums[1].to_le_bytes());
            out.extend_from_slice(&level.mid_ts.to_le_bytes());
            match &level.pending {
                Some(p) => {
                    out.push(1);
                    put_extremes(&mut out, p);
                }
                None => out.push(0),
            }
        }
        out
    }

    /// Reads a stored state; `None` for anything this version did not write.
    fn decode(bytes: &[u8]) -> Option<SeriesState> {
        let mut r = Bytes(bytes);
        if r.u8()? != STATE_VERSION {
            return None;
        }
        let min_level = u32::from(r.u8()?);
        if !(1..=62).contains(&min_level) {
            return None;
        }
        let n = r.u64()?;
        let mut point = || Some(MetricPoint { step: r.f64()?, value: r.f64()?, ts: r.i64()? });
        let (first, last) = (point()?, point()?);
        let len = r.u64()?;
        let (sum_step, sum_value) = (r.f64()?, r.f64()?);
        let acc = BucketSums { len, sum_step, sum_value, ts: 0, ..r.extremes()? };
        let acc = BucketSums { ts: r.i64()?, ..acc };
        let count = usize::from(r.u8()?);
        let mut levels = Vec::with_capacity(count);
        let mut sums = Vec::with_capacity(count);
        for _ in 0..count {
            sums.push([r.f64()?, r.f64()?]);
            let mid_ts = r.i64()?;
            let pending = match r.u8()? {
                0 => None,
                1 => Some(r.extremes()?),
                _ => return None,
            };
            levels.push(Level { mid_ts, pending });
        }
        // One level per complete bucket size so far, and the one above.
        let top = 64 - (n >> min_level).leading_zeros() as usize;
        let consistent =
            r.0.is_empty() && levels.len() == top + 1 && acc.len == n % (1 << min_level);
        consistent.then_some(SeriesState { min_level, n, first, last, acc, levels, sums })
    }
}

const STATE_VERSION: u8 = 1;

fn put_extremes(out: &mut Vec<u8>, sums: &BucketSums) {
    out.extend_from_slice(&sums.finite.to_le_bytes());
    out.extend_from_slice(&sums.min.to_le_bytes());
    out.extend_from_slice(&sums.max.to_le_bytes());
}

/// A cursor over a stored state.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }
    fn f64(&mut self) -> Option<f64> {
        self.take().map(f64::from_le_bytes)
    }
    fn extremes(&mut self) -> Option<BucketSums> {
        Some(BucketSums {
            finite: self.u64()?,
            min: self.f64()?,
            max: self.f64()?,
            ..BucketSums::EMPTY
        })
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
            if !point.step.is_finite() || (state.n > 0 && point.step <= state.last.step) {
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
        if state.n == 0 {
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
            if state.n > 0 && as_stored(group[0].1) <= state.last.step {
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

/// Reads one series for [`sample`].
struct Source<'a> {
    conn: &'a Connection,
    sid: i64,
    with_nan: bool,
    state: &'a SeriesState,
}

impl Source<'_> {
    /// The stored row of the smallest level's bucket `seq`, handed to `read`.
    fn row<T>(
        &self,
        seq: u64,
        read: impl FnOnce(&[u8]) -> Option<T>,
    ) -> rusqlite::Result<Option<T>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT buckets FROM {BUCKETS_TABLE} WHERE series_id = ?1 AND seq = ?2"
        ))?;
        let mut cursor = stmt.query((self.sid, seq as i64))?;
        Ok(match cursor.next()? {
            Some(row) => match row.get_ref(0)? {
                rusqlite::types::ValueRef::Blob(bytes) => read(bytes),
                _ => None,
            },
            None => None,
        })
    }

    /// The complete buckets `[from, to)` of a level, or `None` if any is missing.
    fn buckets(&self, level: u32, from: u64, to: u64) -> rusqlite::Result<Option<Vec<BucketSums>>> {
        let q = (level - self.state.min_level) as usize;
        let (len, stride) = (1u64 << level, 1u64 << q);
        let mut buckets = Vec::with_capacity(usize::try_from(to - from).unwrap_or(0));
        if from >= to {
            return Ok(Some(buckets));
        }
        // Bucket b of that level is in the row of the smallest level's bucket
        // (b + 1) 2^q - 1. Rows a few apart are read in one pass over the range, rows
        // further apart one lookup each.
        if stride <= 16 {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT seq, buckets FROM {BUCKETS_TABLE}
                 WHERE series_id = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq"
            ))?;
            let (first, last) = (((from + 1) << q) - 1, (to << q) - 1);
            let mut cursor = stmt.query((self.sid, first as i64, last as i64))?;
            while let Some(row) = cursor.next()? {
                let seq = row.get::<_, i64>(0)? as u64;
                if !(seq + 1).is_multiple_of(stride) {
                    continue;
                }
                let bucket = match row.get_ref(1)? {
                    rusqlite::types::ValueRef::Blob(bytes) => bucket_in(bytes, q, len),
                    _ => None,
                };
                match bucket {
                    Some(bucket) if seq == ((from + buckets.len() as u64 + 1) << q) - 1 => {
                        buckets.push(bucket);
                    }
                    _ => return Ok(None),
                }
            }
        } else {
            for b in from..to {
                match self.row(((b + 1) << q) - 1, |bytes| bucket_in(bytes, q, len))? {
                    Some(bucket) => buckets.push(bucket),
                    None => return Ok(None),
                }
            }
        }
        Ok((buckets.len() as u64 == to - from).then_some(buckets))
    }

    /// The step of the point before index `index`, a multiple of the smallest bucket
    /// size: the last step of the smallest level's bucket that ends there.
    fn step_before(&self, index: u64) -> rusqlite::Result<Option<f64>> {
        if index == 0 {
            return Ok(Some(f64::NEG_INFINITY));
        }
        self.row((index >> self.state.min_level) - 1, last_step_in)
    }

    /// Up to `limit` raw points from index `index`.
    fn points_from(
        &self,
        index: u64,
        limit: u64,
        visit: &mut dyn FnMut(MetricPoint),
    ) -> rusqlite::Result<bool> {
        let aligned = index >> self.state.min_level << self.state.min_level;
        let Some(after) = self.step_before(aligned)? else {
            return Ok(false);
        };
        let mut stmt = self.conn.prepare_cached(&points_after_sql(self.with_nan))?;
        let mut cursor = stmt.query((self.sid, after, limit as i64, (index - aligned) as i64))?;
        let mut seen = 0;
        while let Some(row) = cursor.next()? {
            visit(metric_point(row, 0)?);
            seen += 1;
        }
        Ok(seen == limit)
    }

    /// The point at index `index`.
    fn point_at(&self, index: u64) -> rusqlite::Result<Option<MetricPoint>> {
        if index == 0 {
            return Ok(Some(self.state.first));
        }
        if index + 1 == self.state.n {
            return Ok(Some(self.state.last));
        }
        let mut found = None;
        self.points_from(index, 1, &mut |p| found = Some(p))?;
        Ok(found)
    }
}

/// Downsamples the points `rows` of a series from its pyramid, exactly as the
/// [`Downsampler`] would over those raw points; `None` when the pyramid cannot answer
/// (a bucket size below the smallest level, a window that does not start on a bucket
/// boundary, a missing row), and the caller reads the points instead.
pub(crate) fn sample(
    conn: &Connection,
    sid: i64,
    with_nan: bool,
    state: &SeriesState,
    rows: Range<u64>,
    point_count: PointCount,
) -> rusqlite::Result<Option<Sampled>> {
    let (start, end) = (rows.start, rows.end);
    if start >= end || end > state.n {
        return Ok(None);
    }
    let mut sampler = Downsampler::new(end - start, point_count);
    let k = sampler.bucket_size();
    if k < 1 << state.min_level || !k.is_power_of_two() || start % k != 0 {
        return Ok(None);
    }
    let source = Source { conn, sid, with_nan, state };
    let level = k.trailing_zeros();
    let (from, to) = (start / k, end / k);
    let Some(buckets) = source.buckets(level, from, to)? else {
        return Ok(None);
    };
    let Some(first) = source.point_at(start)? else {
        return Ok(None);
    };
    sampler.set_first(first);
    let tail_start = to * k;
    if end == state.n {
        sampler.set_last(state.last);
        buckets.iter().for_each(|sums| sampler.push_bucket(*sums));
        if let Some(mut tail) = state.tail(level) {
            // 0.4.0 gives the last bucket the time of its middle point.
            let Some(middle) = source.point_at(tail_start + tail.len / 2)? else {
                return Ok(None);
            };
            tail.ts = middle.ts;
            sampler.push_bucket(tail);
        }
    } else if tail_start == end {
        let Some(last) = source.point_at(end - 1)? else {
            return Ok(None);
        };
        sampler.set_last(last);
        buckets.iter().for_each(|sums| sampler.push_bucket(*sums));
    } else {
        // A window ending inside a bucket: its last, shorter bucket is read raw (fewer
        // points than one bucket), and its last point is the last bookend.
        buckets.iter().for_each(|sums| sampler.push_bucket(*sums));
        if !source.points_from(tail_start, end - tail_start, &mut |p| sampler.push(p))? {
            return Ok(None);
        }
    }
    Ok(Some(sampler.finish()))
}

#[cfg(test)]
#[path = "pyramid_tests.rs"]
mod tests;
