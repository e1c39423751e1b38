//! Downsampling of long metric series for charts, bit-for-bit as goodseed 0.4.0 does it.
//!
//! A request names a window of point indices ([`Window`]) and how many points it wants
//! ([`PointCount`]). When the window holds more raw points than that, they are grouped in
//! buckets of `k` consecutive points, `k` the smallest power of two that makes the number
//! of buckets fit; each bucket becomes one [`SampledPoint`] (mean step, mean and range of
//! its finite values), and the exact first and last raw points are added as bookends when
//! no bucket already sits on their step.
//!
//! [`Downsampler`] does this one point at a time, so a caller can feed it rows straight
//! from a database cursor without collecting them; [`downsample`] is the same over a
//! slice. Unlike 0.4.0, which loops forever on a point count of zero or less, an invalid
//! point count is refused when the [`PointCount`] is built. A store that keeps the sums of
//! aligned buckets ahead of time ([`BucketSums`]) pushes them whole with
//! [`Downsampler::push_bucket`], and gets the same output without reading the points.
//!
//! ```
//! use goodseed_core::MetricPoint;
//! use goodseed_core::downsample::{PointCount, Window, downsample};
//!
//! let series: Vec<MetricPoint> = (0..10)
//!     .map(|i| MetricPoint { step: f64::from(i), value: f64::from(i * i), ts: 1_700_000_000 })
//!     .collect();
//! let window = Window::new(series.len() as u64, None, None);
//! let rows = window.rows();
//! let raw = &series[rows.start as usize..rows.end as usize];
//! let sampled = downsample(raw, PointCount::new(3)?);
//! // Buckets of 4 points (0..4, 4..8, 8..10), plus both bookends.
//! let steps: Vec<f64> = sampled.points.iter().map(|p| p.step).collect();
//! assert_eq!(steps, [0.0, 1.5, 5.5, 8.5, 9.0]);
//! assert!(sampled.downsampled);
//! # Ok::<(), goodseed_core::downsample::DownsampleError>(())
//! ```

use std::num::NonZeroU32;
use std::ops::Range;

use crate::MetricPoint;

/// The largest point count a request may ask for. A chart is at most a few thousand
/// pixels wide; a larger count is a mistake, and would size the answer by the request.
pub const MAX_POINT_COUNT: u32 = 1_000_000;

/// A validated requested point count: at least 1, at most [`MAX_POINT_COUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointCount(NonZeroU32);

impl PointCount {
    /// Checks a requested point count (`pointCount` in the HTTP API).
    pub fn new(n: i64) -> Result<PointCount, DownsampleError> {
        if n < 1 {
            return Err(DownsampleError::PointCountTooSmall(n));
        }
        u32::try_from(n)
            .ok()
            .filter(|&n| n <= MAX_POINT_COUNT)
            .and_then(NonZeroU32::new)
            .map(PointCount)
            .ok_or(DownsampleError::PointCountTooLarge(n))
    }

    /// The count.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

/// A downsampling request that cannot be served.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DownsampleError {
    /// The point count is zero or negative (0.4.0 loops forever on these).
    #[error("pointCount must be at least 1, got {0}")]
    PointCountTooSmall(i64),
    /// The point count is above [`MAX_POINT_COUNT`].
    #[error("pointCount must be at most {max}, got {0}", max = MAX_POINT_COUNT)]
    PointCountTooLarge(i64),
}

/// The index window of a request, as 0.4.0 reports it (`firstPointIndex`,
/// `lastPointIndex`, `totalCount`). Indices count points of the series in step order,
/// from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The first index asked for, raised to 0.
    pub first_point_index: i64,
    /// The last index asked for, lowered to the last point. It can be below
    /// `first_point_index` (even negative), and then the window is empty.
    pub last_point_index: i64,
    /// The number of points in the whole series.
    pub total_count: u64,
}

impl Window {
    /// The window of a series of `total_count` points for the requested first and last
    /// indices (both inclusive; `None` for the series' ends), clamped as 0.4.0 clamps
    /// them. An empty series reports the window `0..=0`.
    pub fn new(total_count: u64, first: Option<i64>, last: Option<i64>) -> Window {
        if total_count == 0 {
            return Window { first_point_index: 0, last_point_index: 0, total_count };
        }
        // Series beyond i64::MAX points do not exist; saturate rather than wrap.
        let last_index = i64::try_from(total_count - 1).unwrap_or(i64::MAX);
        Window {
            first_point_index: first.unwrap_or(0).max(0),
            last_point_index: last.map_or(last_index, |last| last.min(last_index)),
            total_count,
        }
    }

    /// The indices of the raw points to read, always within `0..total_count`; empty when
    /// there is nothing to read (an empty series, or first after last).
    pub fn rows(&self) -> Range<u64> {
        match (u64::try_from(self.first_point_index), u64::try_from(self.last_point_index)) {
            (Ok(first), Ok(last)) if first <= last && last < self.total_count => first..last + 1,
            _ => 0..0,
        }
    }

    /// The number of raw points in the window: the length of [`Window::rows`].
    pub fn row_count(&self) -> u64 {
        let rows = self.rows();
        rows.end - rows.start
    }
}

/// One output point: either a raw point as stored, or the summary of a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampledPoint {
    /// The step, or for a bucket the mean of its steps.
    pub step: f64,
    /// The value, or for a bucket the mean of its finite values (NaN if it has none).
    pub value: f64,
    /// The value, or for a bucket the least of its finite values (NaN if it has none).
    pub min: f64,
    /// The value, or for a bucket the greatest of its finite values (NaN if it has none).
    pub max: f64,
    /// Whether this point summarises a bucket.
    pub downsampled: bool,
    /// Unix seconds when the point was logged; for a bucket, those of its middle point.
    pub ts: i64,
}

impl From<MetricPoint> for SampledPoint {
    /// A raw point as it is: `min` and `max` are its value, and it is not downsampled.
    fn from(point: MetricPoint) -> SampledPoint {
        SampledPoint {
            step: point.step,
            value: point.value,
            min: point.value,
            max: point.value,
            downsampled: false,
            ts: point.ts,
        }
    }
}

/// The answer to a downsampling request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sampled {
    /// The points, in step order.
    pub points: Vec<SampledPoint>,
    /// Whether the raw points were grouped in buckets.
    pub downsampled: bool,
}

/// Streaming downsampler: built from the number of raw points in the window and the
/// point count, fed the raw points in step order one at a time, then finished.
///
/// It keeps one bucket's running sums and the output, never the raw points. The
/// announced count fixes the bucket size and where the last, shorter bucket starts. If
/// the stream does not match it, nothing panics and every pushed point is used: extra
/// points go on in buckets of the same size (or as raw points when not downsampling), and
/// a bucket cut short takes the time of its last point if its middle never came.
#[derive(Debug)]
pub struct Downsampler {
    /// The number of raw points announced.
    raw_count: u64,
    /// The bucket size `k`; 1 when not downsampling.
    bucket_size: u64,
    /// The number of points pushed so far.
    pushed: u64,
    /// The bucket being filled.
    bucket: Bucket,
    /// The first and last raw points pushed (or set), for the bookends.
    first: Option<MetricPoint>,
    last: Option<MetricPoint>,
    /// Whether the last point was set ([`Downsampler::set_last`]) rather than pushed.
    last_set: bool,
    /// Whether a bucket has been emitted yet (the front bookend is decided then).
    emitted_bucket: bool,
    points: Vec<SampledPoint>,
}

/// The sums over one bucket of consecutive raw points, in 0.4.0's order of operations:
/// steps and finite values added one at a time, in step order, from `0.0`; the least and
/// greatest finite values kept by strict comparisons (a tie keeps the first seen, which
/// tells `0.0` from `-0.0`); the time of the bucket's middle point.
///
/// This is what [`Downsampler`] keeps for the bucket it is filling, public so that sums
/// computed elsewhere (ahead of time, over a stored series) can be pushed whole with
/// [`Downsampler::push_bucket`]. Float addition is not associative, so the sums of a
/// bucket must be computed over its own points, in order, from zero: the sums of two
/// halves do not add up to the sums of the whole. The count and the extremes do compose
/// ([`BucketSums::merge_extremes`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSums {
    /// The number of raw points added.
    pub len: u64,
    /// The sum of their steps.
    pub sum_step: f64,
    /// The sum of their finite values.
    pub sum_value: f64,
    /// The number of finite values.
    pub finite: u64,
    /// The least finite value; `+inf` while there is none.
    pub min: f64,
    /// The greatest finite value; `-inf` while there is none.
    pub max: f64,
    /// Unix seconds of the point at offset `due / 2` (see [`BucketSums::add`]).
    pub ts: i64,
}

impl BucketSums {
    /// The sums of no points.
    pub const EMPTY: BucketSums = BucketSums {
        len: 0,
        sum_step: 0.0,
        sum_value: 0.0,
        finite: 0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        ts: 0,
    };

    /// Adds the next raw point (in step order) of a bucket that is due to hold `due`
    /// points. The bucket takes the time of its point at offset `due / 2`; until that one
    /// comes, that of the latest, in case the stream stops early.
    pub fn add(&mut self, point: MetricPoint, due: u64) {
        self.sum_step += point.step;
        let value = point.value;
        if value.is_finite() {
            self.sum_value += value;
            self.finite += 1;
            // Comparisons rather than f64::min/max, so that ties between 0.0 and -0.0 keep
            // the first one seen, as 0.4.0 does.
            if value < self.min {
                self.min = value;
            }
            if value > self.max {
                self.max = value;
            }
        }
        if self.len <= due / 2 {
            self.ts = point.ts;
        }
        self.len += 1;
    }

    /// Folds in the count and extremes of `later`, the sums of the points that follow
    /// this bucket's, giving exactly what [`BucketSums::add`] would have kept over all of
    /// them. Only `finite`, `min` and `max` change: sums do not compose (see the type).
    pub fn merge_extremes(&mut self, later: &BucketSums) {
        self.finite += later.finite;
        if later.min < self.min {
            self.min = later.min;
        }
        if later.max > self.max {
            self.max = later.max;
        }
    }

    /// The output point for this bucket: mean step, mean and range of the finite values
    /// (NaN for all three when there are none), the bucket's time.
    pub fn summary(&self) -> SampledPoint {
        let (value, min, max) = if self.finite > 0 {
            (self.sum_value / self.finite as f64, self.min, self.max)
        } else {
            (f64::NAN, f64::NAN, f64::NAN)
        };
        SampledPoint {
            step: self.sum_step / self.len as f64,
            value,
            min,
            max,
            downsampled: true,
            ts: self.ts,
        }
    }
}

/// The bucket a [`Downsampler`] is filling: its sums and how many points it is due.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    sums: BucketSums,
    due: u64,
}

impl Bucket {
    fn empty(due: u64) -> Bucket {
        Bucket { sums: BucketSums::EMPTY, due }
    }
}

impl Downsampler {
    /// A downsampler for a window of `raw_count` points (see [`Window::row_count`]).
    pub fn new(raw_count: u64, point_count: PointCount) -> Downsampler {
        let bucket_size = bucket_size(raw_count, point_count);
        let outputs = raw_count.div_ceil(bucket_size).min(u64::from(point_count.get()));
        // At most MAX_POINT_COUNT + 2, so it fits; the capacity is only a hint anyway.
        let capacity = usize::try_from(outputs + 2).unwrap_or(0);
        Downsampler {
            raw_count,
            bucket_size,
            pushed: 0,
            bucket: Bucket::empty(bucket_size.min(raw_count)),
            first: None,
            last: None,
            last_set: false,
            emitted_bucket: false,
            points: Vec::with_capacity(capacity),
        }
    }

    /// Whether the points will be grouped in buckets (more raw points than asked for).
    pub fn is_downsampling(&self) -> bool {
        self.bucket_size > 1
    }

    /// The bucket size `k`: the smallest power of two such that `ceil(raw_count / k)`
    /// is at most the point count; 1 when not downsampling.
    pub fn bucket_size(&self) -> u64 {
        self.bucket_size
    }

    /// Takes the next raw point, in step order.
    pub fn push(&mut self, point: MetricPoint) {
        if !self.is_downsampling() {
            self.points.push(point.into());
            return;
        }
        if self.first.is_none() {
            self.first = Some(point);
        }
        if !self.last_set {
            self.last = Some(point);
        }
        self.pushed += 1;
        self.bucket.sums.add(point, self.bucket.due);
        if self.bucket.sums.len >= self.bucket.due {
            self.emit_bucket();
            self.next_bucket();
        }
    }

    /// Sets the window's first raw point, for a caller that pushes the first bucket
    /// whole ([`Downsampler::push_bucket`]) and so never pushes that point: it is the
    /// front bookend. Call it before pushing anything.
    pub fn set_first(&mut self, first: MetricPoint) {
        self.first = Some(first);
    }

    /// Sets the window's last raw point, for a caller that pushes the last bucket whole:
    /// it is the back bookend, whatever is pushed afterwards.
    pub fn set_last(&mut self, last: MetricPoint) {
        self.last = Some(last);
        self.last_set = true;
    }

    /// Takes the next bucket whole: `sums` over exactly the raw points it is due to hold
    /// (`bucket_size` of them, or for the last bucket what is left of the announced
    /// count), computed in step order from [`BucketSums::EMPTY`] with that due count.
    /// The output is then what pushing those points one at a time would give. A bucket
    /// filled partly by [`Downsampler::push`] is emitted first, cut short; when not
    /// downsampling, the bucket's summary is added as it is.
    pub fn push_bucket(&mut self, sums: BucketSums) {
        if !self.is_downsampling() {
            self.points.push(sums.summary());
            return;
        }
        if self.bucket.sums.len > 0 {
            self.emit_bucket();
        }
        self.pushed = self.pushed.saturating_add(sums.len);
        self.bucket = Bucket { sums, due: sums.len };
        self.emit_bucket();
        self.next_bucket();
    }

    /// Starts the next bucket, due the bucket size or what is left of the announced count.
    fn next_bucket(&mut self) {
        let left = self.raw_count.saturating_sub(self.pushed);
        let due = if left == 0 { self.bucket_size } else { left.min(self.bucket_size) };
        self.bucket = Bucket::empty(due);
    }

    /// The output: buckets and bookends, or the raw points when not downsampling.
    pub fn finish(mut self) -> Sampled {
        if !self.is_downsampling() {
            return Sampled { points: self.points, downsampled: false };
        }
        if self.bucket.sums.len > 0 {
            self.emit_bucket();
        }
        if let (Some(last), Some(output)) = (self.last, self.points.last())
            && output.step != last.step
        {
            self.points.push(last.into());
        }
        Sampled { points: self.points, downsampled: self.emitted_bucket }
    }

    fn emit_bucket(&mut self) {
        let summary = self.bucket.sums.summary();
        if !self.emitted_bucket {
            self.emitted_bucket = true;
            match self.first {
                Some(first) if summary.step != first.step => self.points.push(first.into()),
                _ => {}
            }
        }
        self.points.push(summary);
    }
}

/// The smallest power of two `k` with `ceil(raw_count / k) <= point_count`, that is the
/// smallest power of two at least `ceil(raw_count / point_count)`.
fn bucket_size(raw_count: u64, point_count: PointCount) -> u64 {
    let least = raw_count.div_ceil(u64::from(point_count.get()));
    // Beyond 2^63 raw points no power of two fits in a u64; one bucket of u64::MAX
    // covers them all, which keeps the number of buckets within the point count.
    least.checked_next_power_of_two().unwrap_or(u64::MAX)
}

/// Downsamples a slice already restricted to the window (see [`Window::rows`]), ordered
/// by step.
pub fn downsample(points: &[MetricPoint], point_count: PointCount) -> Sampled {
    let mut downsampler = Downsampler::new(points.len() as u64, point_count);
    for &point in points {
        downsampler.push(point);
    }
    downsampler.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const INF: f64 = f64::INFINITY;
    const NAN: f64 = f64::NAN;
    const T0: i64 = 1_700_000_000;

    /// An output point as comparable bits: (step, value, min, max, downsampled, ts).
    type Bits = (u64, u64, u64, u64, bool, i64);

    /// Makes NaN comparable: every NaN is one NaN, other values compare by bits.
    fn canon(x: f64) -> u64 {
        if x.is_nan() { f64::NAN.to_bits() } else { x.to_bits() }
    }

    fn bits(points: &[SampledPoint]) -> Vec<Bits> {
        points
            .iter()
            .map(|p| {
                (canon(p.step), canon(p.value), canon(p.min), canon(p.max), p.downsampled, p.ts)
            })
            .collect()
    }

    fn expected_bits(expected: &[(f64, f64, f64, f64, bool, i64)]) -> Vec<Bits> {
        expected
            .iter()
            .map(|&(s, v, lo, hi, d, ts)| (canon(s), canon(v), canon(lo), canon(hi), d, ts))
            .collect()
    }

    fn pc(n: i64) -> PointCount {
        PointCount::new(n).expect("valid point count in test")
    }

    fn series(values: &[f64]) -> Vec<MetricPoint> {
        values
            .iter()
            .zip(0..)
            .map(|(&value, i)| MetricPoint { step: f64::from(i), value, ts: T0 + i64::from(i) })
            .collect()
    }

    /// Runs the whole request (window, then downsampling) and checks every output point
    /// bit for bit, and the response's `downsampled` flag.
    fn check(
        points: &[MetricPoint],
        point_count: i64,
        window: (Option<i64>, Option<i64>),
        downsampled: bool,
        expected: &[(f64, f64, f64, f64, bool, i64)],
    ) {
        let window = Window::new(points.len() as u64, window.0, window.1);
        let rows = window.rows();
        let raw = &points[rows.start as usize..rows.end as usize];
        let sampled = downsample(raw, pc(point_count));
        assert_eq!(bits(&sampled.points), expected_bits(expected), "{:#?}", sampled.points);
        assert_eq!(sampled.downsampled, downsampled);
    }

    #[test]
    fn point_counts() {
        assert_eq!(PointCount::new(1).map(PointCount::get), Ok(1));
        assert_eq!(PointCount::new(1_000_000).map(PointCount::get), Ok(1_000_000));
        let cases: &[(i64, &str)] = &[
            (0, "pointCount must be at least 1, got 0"),
            (-1, "pointCount must be at least 1, got -1"),
            (i64::MIN, "pointCount must be at least 1, got -9223372036854775808"),
            (1_000_001, "pointCount must be at most 1000000, got 1000001"),
            (1 << 40, "pointCount must be at most 1000000, got 1099511627776"),
        ];
        for &(n, message) in cases {
            let err = PointCount::new(n).expect_err("invalid point count");
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn windows() {
        fn check(
            total: u64,
            asked: (Option<i64>, Option<i64>),
            reported: (i64, i64),
            rows: Range<u64>,
        ) {
            let window = Window::new(total, asked.0, asked.1);
            let (first_point_index, last_point_index) = reported;
            let want = Window { first_point_index, last_point_index, total_count: total };
            assert_eq!(window, want, "{total} {asked:?}");
            assert_eq!(window.rows(), rows, "{total} {asked:?}");
            assert_eq!(window.row_count(), rows.end - rows.start);
        }
        check(0, (None, None), (0, 0), 0..0);
        check(0, (Some(3), Some(7)), (0, 0), 0..0);
        check(1, (None, None), (0, 0), 0..1);
        check(10, (None, None), (0, 9), 0..10);
        check(10, (Some(-5), Some(100)), (0, 9), 0..10);
        check(10, (Some(3), Some(5)), (3, 5), 3..6);
        check(10, (Some(5), Some(5)), (5, 5), 5..6);
        check(10, (Some(6), Some(5)), (6, 5), 0..0);
        check(10, (Some(12), None), (12, 9), 0..0);
        check(10, (None, Some(-1)), (0, -1), 0..0);
        check(10, (Some(i64::MIN), Some(i64::MAX)), (0, 9), 0..10);
        check(u64::MAX, (None, None), (0, i64::MAX), 0..(1 << 63));
    }

    #[test]
    fn bucket_sizes() {
        // (raw_count, point_count, k)
        let cases: &[(u64, i64, u64)] = &[
            (0, 1, 1),
            (1, 1, 1),
            (3, 3, 1),
            (4, 3, 2),
            (10, 3, 4),
            (1000, 7, 256),
            (1024, 1, 1024),
            (1025, 1, 2048),
            (1_000_000, 1000, 1024),
            (u64::MAX, 1, u64::MAX),
            (u64::MAX, 2, 1 << 63),
        ];
        for &(raw, n, k) in cases {
            let downsampler = Downsampler::new(raw, pc(n));
            assert_eq!(downsampler.bucket_size(), k, "{raw} points into {n}");
            assert_eq!(downsampler.is_downsampling(), k > 1);
        }
    }

    #[test]
    fn small_series() {
        let ten: Vec<MetricPoint> = (0..10)
            .map(|i| MetricPoint { step: f64::from(i), value: f64::from(i), ts: T0 + i64::from(i) })
            .collect();
        // Buckets [0..4], [4..8], [8..10]; ts of bucket[n / 2].
        let want = [
            (0.0, 0.0, 0.0, 0.0, false, T0),
            (1.5, 1.5, 0.0, 3.0, true, T0 + 2),
            (5.5, 5.5, 4.0, 7.0, true, T0 + 6),
            (8.5, 8.5, 8.0, 9.0, true, T0 + 9),
            (9.0, 9.0, 9.0, 9.0, false, T0 + 9),
        ];
        check(&ten, 3, (None, None), true, &want);
        // Exactly as many points as asked for: all raw.
        let raw: Vec<_> = ten
            .iter()
            .map(|&p| SampledPoint::from(p))
            .map(|p| (p.step, p.value, p.min, p.max, p.downsampled, p.ts))
            .collect();
        check(&ten, 10, (None, None), false, &raw);
        check(&ten, 1000, (None, None), false, &raw);
        // Eleven asked of ten in a window of five: raw.
        check(&ten, 11, (Some(2), Some(6)), false, &raw[2..7]);
        // Nine of ten: k = 2, and the last bucket is a full pair ending on the last step.
        let want = [
            (0.0, 0.0, 0.0, 0.0, false, T0),
            (0.5, 0.5, 0.0, 1.0, true, T0 + 1),
            (2.5, 2.5, 2.0, 3.0, true, T0 + 3),
            (4.5, 4.5, 4.0, 5.0, true, T0 + 5),
            (6.5, 6.5, 6.0, 7.0, true, T0 + 7),
            (8.5, 8.5, 8.0, 9.0, true, T0 + 9),
            (9.0, 9.0, 9.0, 9.0, false, T0 + 9),
        ];
        check(&ten, 9, (None, None), true, &want);
        // A window of three into one point: one bucket of four, cut to three.
        let want = [
            (7.0, 7.0, 7.0, 7.0, false, T0 + 7),
            (8.0, 8.0, 7.0, 9.0, true, T0 + 8),
            (9.0, 9.0, 9.0, 9.0, false, T0 + 9),
        ];
        check(&ten, 1, (Some(7), None), true, &want);
    }

    #[test]
    fn empty_and_single() {
        let one = series(&[2.5]);
        check(&one, 1, (None, None), false, &[(0.0, 2.5, 2.5, 2.5, false, T0)]);
        check(&one, 1, (Some(-3), Some(8)), false, &[(0.0, 2.5, 2.5, 2.5, false, T0)]);
        check(&one, 1, (Some(1), None), false, &[]);
        check(&one, 1, (None, Some(-1)), false, &[]);
        check(&[], 5, (None, None), false, &[]);
        assert_eq!(
            Downsampler::new(0, pc(1)).finish(),
            Sampled { points: Vec::new(), downsampled: false }
        );
    }

    #[test]
    fn non_finite_values() {
        // A NaN bucket, an inf-only bucket, and buckets mixing finite and non-finite.
        let points = series(&[NAN, NAN, INF, -INF, 1.0, NAN, INF, 3.0, NAN, -1.0]);
        let want = [
            (0.0, NAN, NAN, NAN, false, T0),
            (1.5, NAN, NAN, NAN, true, T0 + 2),
            (5.5, 2.0, 1.0, 3.0, true, T0 + 6),
            (8.5, -1.0, -1.0, -1.0, true, T0 + 9),
            (9.0, -1.0, -1.0, -1.0, false, T0 + 9),
        ];
        check(&points, 3, (None, None), true, &want);
        // Raw points keep non-finite values as they are.
        let want = [
            (1.0, NAN, NAN, NAN, false, T0 + 1),
            (2.0, INF, INF, INF, false, T0 + 2),
            (3.0, -INF, -INF, -INF, false, T0 + 3),
        ];
        check(&points, 10, (Some(1), Some(3)), false, &want);
        // A finite mean can overflow, as in 0.4.0: the value is inf, the range finite.
        let big = series(&[f64::MAX, f64::MAX, 0.0]);
        let want = [
            (0.0, f64::MAX, f64::MAX, f64::MAX, false, T0),
            (1.0, INF, 0.0, f64::MAX, true, T0 + 1),
            (2.0, 0.0, 0.0, 0.0, false, T0 + 2),
        ];
        check(&big, 1, (None, None), true, &want);
    }

    #[test]
    fn signed_zeros_keep_the_first_seen() {
        // 0.4.0 compares with `<` and `>`, so the first of tied zeros stays.
        let sampled = downsample(&series(&[0.0, -0.0, 1.0]), pc(1));
        let bucket = sampled.points[1];
        assert_eq!(
            (bucket.min.to_bits(), bucket.max.to_bits()),
            (0.0f64.to_bits(), 1.0f64.to_bits())
        );
        let sampled = downsample(&series(&[-0.0, 0.0, -1.0]), pc(1));
        let bucket = sampled.points[1];
        assert_eq!(
            (bucket.min.to_bits(), bucket.max.to_bits()),
            ((-1.0f64).to_bits(), (-0.0f64).to_bits())
        );
    }

    #[test]
    fn bookends_only_when_no_bucket_sits_on_the_end_steps() {
        // Nine points into five: k = 2, the last bucket is the last point alone, so its
        // mean step is the last step and no end bookend is added.
        let nine = series(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let sampled = downsample(&nine, pc(5));
        assert_eq!(sampled.points.len(), 6);
        assert!(!sampled.points[0].downsampled);
        assert!(sampled.points.iter().skip(1).all(|p| p.downsampled));
        assert_eq!(sampled.points[5].step, 8.0);
        // Steps near 2^53: the first bucket's mean step rounds down to the first step, so
        // no front bookend either.
        let a = 9_007_199_254_740_982.0;
        let points: Vec<_> = [a, a + 1.0, a + 2.0, a + 3.0]
            .iter()
            .map(|&step| MetricPoint { step, value: 1.0, ts: T0 })
            .collect();
        let sampled = downsample(&points, pc(2));
        let steps: Vec<f64> = sampled.points.iter().map(|p| p.step).collect();
        assert_eq!(steps, [a, a + 2.0, a + 3.0]);
        assert!(sampled.points[0].downsampled);
    }

    /// The test series of the reference cases, as written to 0.4.0's storage by the
    /// generating script: (step, value, ts) for index `i`.
    fn reference_series(n: i32, point: impl Fn(i32) -> (f64, f64, i64)) -> Vec<MetricPoint> {
        (0..n)
            .map(|i| {
                let (step, value, ts) = point(i);
                MetricPoint { step, value, ts }
            })
            .collect()
    }

    /// Expected outputs computed by goodseed 0.4.0's `storage.downsample_metrics` on these
    /// series, written with `LocalStorage.log_metric_points` (floats printed with `repr`,
    /// which round-trips). 0.4.0 cannot store NaN (`y REAL NOT NULL` turns it into NULL
    /// and refuses it), so these cases use infinities only.
    #[test]
    #[rustfmt::skip] // Tables of 0.4.0's output, one point a line.
    fn matches_goodseed_0_4_0() {
        let a = reference_series(10, |i| {
            (f64::from(i), f64::from(i * i) * 0.1, T0 + i64::from(i) * 7)
        });
        check(&a, 3, (None, None), true, &[
            (0.0, 0.0, 0.0, 0.0, false, 1700000000),
            (1.5, 0.35, 0.0, 0.9, true, 1700000014),
            (5.5, 3.15, 1.6, 4.9, true, 1700000042),
            (8.5, 7.25, 6.4, 8.1, true, 1700000063),
            (9.0, 8.1, 8.1, 8.1, false, 1700000063),
        ]);

        let b = reference_series(37, |i| {
            (f64::from(i) * 0.1 + 0.3, f64::from((i * 7919) % 1000) / 7.0 - 50.0, T0 + i64::from(i))
        });
        check(&b, 5, (Some(3), Some(30)), true, &[
            (0.6000000000000001, 58.14285714285714, 58.14285714285714, 58.14285714285714, false, 1700000003),
            (0.95, 17.642857142857146, -22.857142857142858, 58.14285714285714, true, 1700000007),
            (1.75, 32.214285714285715, -46.0, 85.28571428571428, true, 1700000015),
            (2.55, 11.071428571428571, -42.0, 89.28571428571428, true, 1700000023),
            (3.1500000000000004, 48.78571428571429, 31.42857142857143, 66.14285714285714, true, 1700000029),
            (3.3, 31.42857142857143, 31.42857142857143, 31.42857142857143, false, 1700000030),
        ]);

        let c = reference_series(9, |i| {
            (f64::from(i), f64::from((i * 37) % 11) * 0.25 - 1.0, T0 + i64::from(i))
        });
        check(&c, 5, (None, None), true, &[
            (0.0, -1.0, -1.0, -1.0, false, 1700000000),
            (0.5, -0.5, -1.0, 0.0, true, 1700000001),
            (2.5, 0.125, -0.75, 1.0, true, 1700000003),
            (4.5, 0.75, 0.25, 1.25, true, 1700000005),
            (6.5, 0.0, -0.5, 0.5, true, 1700000007),
            (8.0, 1.5, 1.5, 1.5, true, 1700000008),
        ]);

        let d = reference_series(10, |i| {
            (9_007_199_254_740_982.0 + f64::from(i), f64::from(i), T0 + i64::from(i))
        });
        check(&d, 5, (None, None), true, &[
            (9007199254740982.0, 0.5, 0.0, 1.0, true, 1700000001),
            (9007199254740984.0, 2.5, 2.0, 3.0, true, 1700000003),
            (9007199254740986.0, 4.5, 4.0, 5.0, true, 1700000005),
            (9007199254740988.0, 6.5, 6.0, 7.0, true, 1700000007),
            (9007199254740990.0, 8.5, 8.0, 9.0, true, 1700000009),
            (9007199254740991.0, 9.0, 9.0, 9.0, false, 1700000009),
        ]);

        let e = series(&[INF, -INF, INF, -INF, 1.0, 2.0, INF, 4.0, -1.0, 0.0, 7.0, INF]);
        check(&e, 3, (None, None), true, &[
            (0.0, INF, INF, INF, false, 1700000000),
            (1.5, NAN, NAN, NAN, true, 1700000002),
            (5.5, 2.3333333333333335, 1.0, 4.0, true, 1700000006),
            (9.5, 2.0, -1.0, 7.0, true, 1700000010),
            (11.0, INF, INF, INF, false, 1700000011),
        ]);

        let f = reference_series(1000, |i| {
            (
                f64::from(i) * 0.37 + f64::from((i * 31) % 5) * 0.01,
                f64::from((i * 7919) % 1000) / 7.0 - 50.0 + f64::from(i % 13) * 1e-3,
                T0 + i64::from(i) * 3,
            )
        });
        check(&f, 7, (None, None), true, &[
            (0.0, -50.0, -50.0, -50.0, false, 1700000000),
            (47.194921875, 21.523786830357142, -50.0, 91.85714285714286, true, 1700000384),
            (141.9149609375, 21.291706473214287, -49.70728571428572, 92.72328571428572, true, 1700001152),
            (236.635, 21.059626116071435, -49.854142857142854, 92.57642857142858, true, 1700001920),
            (326.9151293103448, 21.599596059113306, -48.56142857142857, 92.42957142857142, true, 1700002652),
            (369.67, -38.41757142857143, -38.41757142857143, -38.41757142857143, false, 1700002997),
        ]);
        check(&f, 10, (Some(100), Some(899)), true, &[
            (37.0, 78.58042857142858, 78.58042857142858, 78.58042857142858, false, 1700000300),
            (60.51476562499999, 22.363119419642857, -48.70728571428572, 91.43057142857141, true, 1700000492),
            (107.87507812499999, 22.24707924107143, -46.988, 92.72328571428572, true, 1700000876),
            (155.23499999999999, 19.89889620535714, -49.70728571428572, 90.43057142857141, true, 1700001260),
            (202.59492187499998, 23.131070312500004, -47.988, 92.14985714285714, true, 1700001644),
            (249.95523437500003, 19.666714285714278, -49.854142857142854, 92.57642857142858, true, 1700002028),
            (297.31476562499995, 21.782715401785712, -48.988, 91.14985714285714, true, 1700002412),
            (326.9159375, 21.29171428571428, -43.70928571428571, 91.57642857142858, true, 1700002652),
            (332.67, -24.140857142857143, -24.140857142857143, -24.140857142857143, false, 1700002697),
        ]);
        check(&f, 1, (Some(-3), Some(5000)), true, &[
            (0.0, -50.0, -50.0, -50.0, false, 1700000000),
            (184.83500000000004, 21.36313685714286, -50.0, 92.72328571428572, true, 1700001500),
            (369.67, -38.41757142857143, -38.41757142857143, -38.41757142857143, false, 1700002997),
        ]);
    }

    #[test]
    fn streams_that_break_their_announcement_do_not_panic() {
        let points = series(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]);
        // Fewer than announced: the cut bucket uses what came.
        let mut short = Downsampler::new(100, pc(3));
        assert_eq!(short.bucket_size(), 64);
        points.iter().for_each(|&p| short.push(p));
        let sampled = short.finish();
        assert_eq!(
            bits(&sampled.points),
            expected_bits(&[
                (0.0, 1.0, 1.0, 1.0, false, T0),
                (4.5, 5.5, 1.0, 10.0, true, T0 + 9),
                (9.0, 10.0, 10.0, 10.0, false, T0 + 9),
            ])
        );
        assert!(sampled.downsampled);
        // More than announced: further buckets of the same size.
        let mut long = Downsampler::new(3, pc(2));
        points.iter().for_each(|&p| long.push(p));
        let steps: Vec<f64> = long.finish().points.iter().map(|p| p.step).collect();
        assert_eq!(steps, [0.0, 0.5, 2.0, 3.5, 5.5, 7.5, 9.0]);
        // More than announced when not downsampling: raw points.
        let mut raw = Downsampler::new(2, pc(5));
        points.iter().for_each(|&p| raw.push(p));
        assert_eq!(raw.finish().points.len(), 10);
        // Nothing pushed.
        assert_eq!(Downsampler::new(100, pc(3)).finish().points, []);
    }

    /// 0.4.0's algorithm transliterated over a slice, for the streaming one to agree with.
    fn reference(rows: &[MetricPoint], point_count: u32) -> Sampled {
        let raw_count = rows.len();
        let point_count = point_count as usize;
        if raw_count <= point_count {
            return Sampled {
                points: rows.iter().map(|&p| p.into()).collect(),
                downsampled: false,
            };
        }
        let mut k = 1;
        while raw_count.div_ceil(k) > point_count {
            k *= 2;
        }
        let mut points: Vec<SampledPoint> = Vec::new();
        for bucket in rows.chunks(k) {
            let (mut sum_step, mut sum_y, mut min_y, mut max_y, mut valid) =
                (0.0, 0.0, INF, -INF, 0);
            for r in bucket {
                sum_step += r.step;
                if r.value.is_finite() {
                    sum_y += r.value;
                    valid += 1;
                    if r.value < min_y {
                        min_y = r.value;
                    }
                    if r.value > max_y {
                        max_y = r.value;
                    }
                }
            }
            let n = bucket.len();
            let (value, min, max) =
                if valid > 0 { (sum_y / f64::from(valid), min_y, max_y) } else { (NAN, NAN, NAN) };
            points.push(SampledPoint {
                step: sum_step / n as f64,
                value,
                min,
                max,
                downsampled: true,
                ts: bucket[n / 2].ts,
            });
        }
        let (first, last) = (rows[0], rows[raw_count - 1]);
        if points[0].step != first.step {
            points.insert(0, first.into());
        }
        if points[points.len() - 1].step != last.step {
            points.push(last.into());
        }
        Sampled { points, downsampled: true }
    }

    fn any_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            3 => -100.0..100.0f64,
            1 => Just(NAN),
            1 => Just(INF),
            1 => Just(-INF),
            1 => Just(0.0),
            1 => Just(-0.0),
            2 => any::<f64>(),
        ]
    }

    /// Series with strictly increasing steps: small fractional steps, or whole steps just
    /// below 2^53 where means round.
    fn any_series() -> impl Strategy<Value = Vec<MetricPoint>> {
        let steps = prop_oneof![
            (-1e6..1e6f64, 0.001..1000.0f64).prop_map(|(start, max_gap)| (start, max_gap, false)),
            (Just(9_007_199_254_730_000.0), 1.0..4.0f64).prop_map(|(s, g)| (s, g, true)),
        ];
        (steps, proptest::collection::vec((0.0..1.0f64, any_value(), 0..100i64), 0..2000)).prop_map(
            |((start, max_gap, whole), rows)| {
                let mut step = start;
                let mut ts = T0;
                rows.into_iter()
                    .map(|(gap, value, dt)| {
                        let gap = if whole {
                            (gap * max_gap).floor() + 1.0
                        } else {
                            0.001 + gap * max_gap
                        };
                        step += gap;
                        ts += dt;
                        MetricPoint { step, value, ts }
                    })
                    .collect()
            },
        )
    }

    fn same_point(output: &SampledPoint, raw: &MetricPoint) -> bool {
        bits(&[*output]) == bits(&[SampledPoint::from(*raw)])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn downsampling_properties(
            points in any_series(),
            point_count in 1..300i64,
            first in proptest::option::of(-5..2100i64),
            last in proptest::option::of(-5..2100i64),
        ) {
            let window = Window::new(points.len() as u64, first, last);
            let rows = window.rows();
            prop_assert!(rows.start <= rows.end && rows.end <= window.total_count);
            let raw = &points[rows.start as usize..rows.end as usize];
            let point_count = pc(point_count);

            let mut downsampler = Downsampler::new(raw.len() as u64, point_count);
            let k = downsampler.bucket_size();
            raw.iter().for_each(|&p| downsampler.push(p));
            let streamed = downsampler.finish();
            let sampled = downsample(raw, point_count);
            prop_assert_eq!(bits(&streamed.points), bits(&sampled.points));
            prop_assert_eq!(streamed.downsampled, sampled.downsampled);
            let expected = reference(raw, point_count.get());
            prop_assert_eq!(bits(&sampled.points), bits(&expected.points));
            prop_assert_eq!(sampled.downsampled, expected.downsampled);

            let out = &sampled.points;
            prop_assert!(out.len() <= point_count.get() as usize + 2);
            prop_assert!(out.windows(2).all(|w| w[0].step <= w[1].step), "steps go back: {:?}", out);
            if !sampled.downsampled {
                prop_assert_eq!(bits(out), bits(&raw.iter().map(|&p| p.into()).collect::<Vec<_>>()));
                return Ok(());
            }
            let (first, last) = (raw[0], raw[raw.len() - 1]);
            let (head, tail) = (out[0], out[out.len() - 1]);
            prop_assert!(same_point(&head, &first) || (head.downsampled && head.step == first.step));
            prop_assert!(same_point(&tail, &last) || (tail.downsampled && tail.step == last.step));
            for p in out.iter().filter(|p| p.downsampled && p.min.is_finite()) {
                // The mean of finite values in [min, max] can leave that range: summing
                // rounds (0.1 + 0.1 + 0.1 = 0.30000000000000004, so the mean of three 0.1
                // is above 0.1), by at most k ulps of the largest magnitude; and the sum
                // can overflow to an infinity when the values are near f64::MAX.
                let magnitude = p.min.abs().max(p.max.abs());
                if p.value.is_finite() {
                    let slack = k as f64 * f64::EPSILON * magnitude;
                    prop_assert!(p.min - slack <= p.value && p.value <= p.max + slack, "{:?}", p);
                } else {
                    prop_assert!(magnitude >= f64::MAX / k as f64, "{:?}", p);
                }
            }
        }

        #[test]
        fn buckets_pushed_whole_give_the_same_output(
            points in any_series(),
            point_count in 1..300i64,
            whole in proptest::collection::vec(any::<bool>(), 64),
        ) {
            // Each bucket is pushed either point by point or as sums computed on the
            // side (with the due count the downsampler would use), in any mix.
            let expected = downsample(&points, pc(point_count));
            let mut downsampler = Downsampler::new(points.len() as u64, pc(point_count));
            let k = downsampler.bucket_size() as usize;
            if let (Some(&first), Some(&last)) = (points.first(), points.last()) {
                downsampler.set_first(first);
                downsampler.set_last(last);
            }
            for (i, chunk) in points.chunks(k).enumerate() {
                if k > 1 && whole[i % whole.len()] {
                    let mut sums = BucketSums::EMPTY;
                    chunk.iter().for_each(|&p| sums.add(p, chunk.len() as u64));
                    downsampler.push_bucket(sums);
                } else {
                    chunk.iter().for_each(|&p| downsampler.push(p));
                }
            }
            let sampled = downsampler.finish();
            prop_assert_eq!(bits(&sampled.points), bits(&expected.points));
            prop_assert_eq!(sampled.downsampled, expected.downsampled);
        }

        #[test]
        fn extremes_compose(
            points in any_series(),
            cuts in proptest::collection::vec(0..2000usize, 0..6),
        ) {
            // Sums over consecutive runs, their extremes merged in order, keep what one
            // pass over all the points keeps (bit for bit: -0.0 is not 0.0 here).
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(points.len())).collect();
            cuts.push(0);
            cuts.push(points.len());
            cuts.sort_unstable();
            let mut merged = BucketSums::EMPTY;
            for run in cuts.windows(2) {
                let mut part = BucketSums::EMPTY;
                points[run[0]..run[1]].iter().for_each(|&p| part.add(p, 0));
                merged.merge_extremes(&part);
            }
            let mut once = BucketSums::EMPTY;
            points.iter().for_each(|&p| once.add(p, 0));
            prop_assert_eq!(merged.finite, once.finite);
            prop_assert_eq!(merged.min.to_bits(), once.min.to_bits());
            prop_assert_eq!(merged.max.to_bits(), once.max.to_bits());
        }

        #[test]
        fn any_announcement_is_survived(
            points in any_series(),
            miscount in -40..40i64,
            point_count in 1..300i64,
        ) {
            // Announce a few points more or fewer than come (or the right number).
            let announced = (points.len() as u64).saturating_add_signed(miscount);
            let mut downsampler = Downsampler::new(announced, pc(point_count));
            points.iter().for_each(|&p| downsampler.push(p));
            let sampled = downsampler.finish();
            prop_assert_eq!(sampled.points.is_empty(), points.is_empty());
            if announced == points.len() as u64 {
                let whole = downsample(&points, pc(point_count));
                prop_assert_eq!(bits(&sampled.points), bits(&whole.points));
            }
        }
    }
}
