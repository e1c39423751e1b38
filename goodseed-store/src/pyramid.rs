//! The downsampling pyramid, apart from any database: per metric series, the sums of
//! every complete aligned bucket of `k = 2^j` points for each level `k >= 2^min_level`,
//! kept by a store's writer beside the points, so that a `pointCount` request on a long
//! series reads about `pointCount` rows instead of the whole series. The SQLite store keeps
//! them in tables of ours in the run file (docs/FORMAT.md), the PostgreSQL store in tables
//! of its own; both fold points with [`SeriesState`] and answer with [`sample`] through a
//! [`Source`] over their tables.
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

use std::ops::Range;

use goodseed_core::MetricPoint;
use goodseed_core::downsample::{BucketSums, Downsampler, PointCount, Sampled};

/// The smallest level kept: buckets of `2^7 = 128` points. A request with a smaller bucket
/// size `k` covers at most `64 * pointCount` points (`k` is the least power of two with
/// `ceil(n / k) <= pointCount`), which the raw path reads in a few milliseconds for the
/// point counts charts ask for; the levels kept add about `n / 64` rows.
pub const MIN_LEVEL: u32 = 7;

/// The buckets one point completes: the smallest level's bucket number `seq` (points
/// `[seq * k, (seq + 1) * k)`, `k = 2^min_level`), and with it the bucket of each level
/// above that ends on the same point, `1 + trailing_zeros(seq + 1)` in all. Stored as one
/// row keyed by `(series_id, seq)`, so a series' rows are appended at its end of the
/// table (a transaction dirties a page or two per series, not one per level).
///
/// `bytes`: the common last step, then per level from the smallest up its `sum_step`,
/// `sum_y`, `finite`, `min_y`, `max_y` and `ts`: 8 bytes each, little-endian `f64`,
/// `u64` and `i64`. Bytes rather than columns: no float rewritten by a database, less to bind.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketRow {
    /// The smallest level's bucket number.
    pub seq: u64,
    /// The buckets, encoded as above.
    pub bytes: Vec<u8>,
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
pub struct SeriesState {
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
    pub fn new(min_level: u32) -> SeriesState {
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
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether no point was folded.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The smallest level kept: buckets of `2^min_level` points.
    pub fn min_level(&self) -> u32 {
        self.min_level
    }

    /// The last point folded, if any.
    pub fn last(&self) -> Option<MetricPoint> {
        (self.n > 0).then_some(self.last)
    }

    /// Folds the next point (its step above every step folded so far, its values exactly
    /// as the store's readers return them), adding the buckets it completes to `out`.
    pub fn push(&mut self, point: MetricPoint, out: &mut Vec<BucketRow>) {
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

    /// The state as a store keeps it (`metric_pyramid_series.state` in a run file):
    /// little-endian fields, see docs/FORMAT.md.
    pub fn encode(&self) -> Vec<u8> {
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
    pub fn decode(bytes: &[u8]) -> Option<SeriesState> {
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

// ---------------------------------------------------------------------------------------
// The reader's side.

/// The smallest level's bucket numbers a [`Source`] is asked for: `first`, `first +
/// stride`, … up to `last` (the rows holding every bucket of one level in a range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seqs {
    /// The first bucket number.
    pub first: u64,
    /// The last bucket number (`first + m * stride` for some `m`).
    pub last: u64,
    /// The distance between two; 1 for every row of the range.
    pub stride: u64,
}

impl Seqs {
    /// The numbers, in order.
    pub fn iter(self) -> impl Iterator<Item = u64> {
        let stride = self.stride.max(1);
        (0..=(self.last.saturating_sub(self.first)) / stride).map(move |i| self.first + i * stride)
    }

    /// Whether `seq` is one of them.
    pub fn contains(self, seq: u64) -> bool {
        seq >= self.first
            && seq <= self.last
            && (seq - self.first).is_multiple_of(self.stride.max(1))
    }
}

/// A store's tables as [`sample`] reads them, for one series, all in one snapshot.
pub trait Source {
    /// The store's error.
    type Error;

    /// Hands each stored row of `seqs` to `visit` (`seq`, the row's bytes), in order of
    /// `seq`. A missing row is skipped ([`sample`] then reads the points instead).
    fn rows(&self, seqs: Seqs, visit: &mut dyn FnMut(u64, &[u8])) -> Result<(), Self::Error>;

    /// Hands to `visit`, in step order, the raw points whose step is above `after`, the
    /// first `skip` of them left out, at most `limit`.
    fn points_after(
        &self,
        after: f64,
        skip: u64,
        limit: u64,
        visit: &mut dyn FnMut(MetricPoint),
    ) -> Result<(), Self::Error>;
}

/// [`sample`]'s reads, over a [`Source`].
struct Reads<'a, S> {
    source: &'a S,
    state: &'a SeriesState,
}

impl<S: Source> Reads<'_, S> {
    /// The stored row of the smallest level's bucket `seq`, handed to `read`.
    fn row<T>(
        &self,
        seq: u64,
        read: impl FnOnce(&[u8]) -> Option<T>,
    ) -> Result<Option<T>, S::Error> {
        let mut read = Some(read);
        let mut found = None;
        self.source.rows(Seqs { first: seq, last: seq, stride: 1 }, &mut |at, bytes| {
            if at == seq
                && let Some(read) = read.take()
            {
                found = read(bytes);
            }
        })?;
        Ok(found)
    }

    /// The complete buckets `[from, to)` of a level, or `None` if any is missing.
    fn buckets(&self, level: u32, from: u64, to: u64) -> Result<Option<Vec<BucketSums>>, S::Error> {
        let q = (level - self.state.min_level) as usize;
        let (len, stride) = (1u64 << level, 1u64 << q);
        let mut buckets = Vec::with_capacity(usize::try_from(to - from).unwrap_or(0));
        if from >= to {
            return Ok(Some(buckets));
        }
        // Bucket b of that level is in the row of the smallest level's bucket
        // (b + 1) 2^q - 1.
        let seqs = Seqs { first: ((from + 1) << q) - 1, last: (to << q) - 1, stride };
        let mut whole = true;
        self.source.rows(seqs, &mut |seq, bytes| {
            if !whole {
                return;
            }
            match bucket_in(bytes, q, len) {
                Some(bucket) if seq == ((from + buckets.len() as u64 + 1) << q) - 1 => {
                    buckets.push(bucket);
                }
                _ => whole = false,
            }
        })?;
        Ok((whole && buckets.len() as u64 == to - from).then_some(buckets))
    }

    /// The step of the point before index `index`, a multiple of the smallest bucket
    /// size: the last step of the smallest level's bucket that ends there.
    fn step_before(&self, index: u64) -> Result<Option<f64>, S::Error> {
        if index == 0 {
            return Ok(Some(f64::NEG_INFINITY));
        }
        self.row((index >> self.state.min_level) - 1, last_step_in)
    }

    /// Up to `limit` raw points from index `index`; whether there were `limit`.
    fn points_from(
        &self,
        index: u64,
        limit: u64,
        visit: &mut dyn FnMut(MetricPoint),
    ) -> Result<bool, S::Error> {
        let aligned = index >> self.state.min_level << self.state.min_level;
        let Some(after) = self.step_before(aligned)? else {
            return Ok(false);
        };
        let mut seen = 0;
        self.source.points_after(after, index - aligned, limit, &mut |p| {
            if seen < limit {
                visit(p);
                seen += 1;
            }
        })?;
        Ok(seen == limit)
    }

    /// The point at index `index`.
    fn point_at(&self, index: u64) -> Result<Option<MetricPoint>, S::Error> {
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
/// boundary, a missing row), and the caller reads the points instead. `state` must be the
/// series' state in the snapshot `source` reads.
pub fn sample<S: Source>(
    source: &S,
    state: &SeriesState,
    rows: Range<u64>,
    point_count: PointCount,
) -> Result<Option<Sampled>, S::Error> {
    let (start, end) = (rows.start, rows.end);
    if start >= end || end > state.n {
        return Ok(None);
    }
    let mut sampler = Downsampler::new(end - start, point_count);
    let k = sampler.bucket_size();
    if k < 1 << state.min_level || !k.is_power_of_two() || start % k != 0 {
        return Ok(None);
    }
    let reads = Reads { source, state };
    let level = k.trailing_zeros();
    let (from, to) = (start / k, end / k);
    let Some(buckets) = reads.buckets(level, from, to)? else {
        return Ok(None);
    };
    let Some(first) = reads.point_at(start)? else {
        return Ok(None);
    };
    sampler.set_first(first);
    let tail_start = to * k;
    if end == state.n {
        sampler.set_last(state.last);
        buckets.iter().for_each(|sums| sampler.push_bucket(*sums));
        if let Some(mut tail) = state.tail(level) {
            // 0.4.0 gives the last bucket the time of its middle point.
            let Some(middle) = reads.point_at(tail_start + tail.len / 2)? else {
                return Ok(None);
            };
            tail.ts = middle.ts;
            sampler.push_bucket(tail);
        }
    } else if tail_start == end {
        let Some(last) = reads.point_at(end - 1)? else {
            return Ok(None);
        };
        sampler.set_last(last);
        buckets.iter().for_each(|sums| sampler.push_bucket(*sums));
    } else {
        // A window ending inside a bucket: its last, shorter bucket is read raw (fewer
        // points than one bucket), and its last point is the last bookend.
        buckets.iter().for_each(|sums| sampler.push_bucket(*sums));
        if !reads.points_from(tail_start, end - tail_start, &mut |p| sampler.push(p))? {
            return Ok(None);
        }
    }
    Ok(Some(sampler.finish()))
}
