//! Ours, for sweeps: runs grouped by the values of one or more configs, and each group's
//! curve of a metric as the runs' mean (or median) with a band (the standard deviation,
//! the range, or the interquartile range) around it.
//!
//! `GET /api/groups?project=P&by=<key>[&by=<key>…][&metric=<path>][&stat=mean|median]
//! [&band=std|minmax|iqr|none][&pointCount=N]` (and the listing's conditions: `filter=`,
//! `q=`, `status=`, `tag=`, `trashed=`) answers the groups (their values, in order, and
//! their runs) and, with `metric=`, each group's curve.
//!
//! Curves are aligned by step: the group's steps, from the least to the greatest any of
//! its runs logged, are cut into `pointCount` bins of equal width; each run is read
//! downsampled on the server (as charts read it) and gives a bin the mean of its values
//! there, gaps inside its own steps filled by a straight line between its neighbours (a
//! run logged every 100 steps still counts in the bins between), nothing outside them (a
//! run that stopped early does not drag the mean after its end: `n` says how many runs
//! each point stands for). Non-finite values are left out, as a chart leaves them.

use std::cmp::Ordering;
use std::sync::Arc;

use goodseed_core::{ConfigValue, ProjectName, RunId};
use goodseed_store::{RunStore, RunSummary};

use crate::body::{blocking, json_response};
use crate::error::ApiError;
use crate::json::Json;
use crate::query::Query;
use crate::runs::ListingQuery;

/// The most config keys one grouping names.
pub(crate) const MAX_BY: usize = 4;
/// The most groups an answer draws curves for (the groups beyond are listed, not drawn).
pub(crate) const MAX_CURVES: usize = 100;
/// The most runs whose series one answer reads: beyond, each group's curve is drawn
/// from an evenly spread sample of its runs (said in `curve.read`).
pub(crate) const MAX_CURVE_RUNS: usize = 10_000;
/// Bins of a curve when `pointCount` is not given, and the most it may ask.
pub(crate) const DEFAULT_BINS: usize = 200;
pub(crate) const MAX_BINS: usize = 2_000;

/// The line through a group's runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stat {
    Mean,
    Median,
}

/// The band around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Band {
    /// The center ± one standard deviation of the runs (population).
    Std,
    /// The least and greatest run.
    MinMax,
    /// The first and third quartiles.
    Iqr,
    None,
}

impl Stat {
    pub(crate) fn parse(text: &str) -> Result<Stat, String> {
        match text {
            "mean" => Ok(Stat::Mean),
            "median" => Ok(Stat::Median),
            _ => Err(format!("stat must be mean or median, got {text:?}")),
        }
    }
}

impl Band {
    pub(crate) fn parse(text: &str) -> Result<Band, String> {
        match text {
            "std" => Ok(Band::Std),
            "minmax" => Ok(Band::MinMax),
            "iqr" => Ok(Band::Iqr),
            "none" => Ok(Band::None),
            _ => Err(format!("band must be std, minmax, iqr or none, got {text:?}")),
        }
    }
}

/// One group: the value of each `by` key its runs share (`None`: they lack it) and its
/// runs, in listing order.
#[derive(Debug)]
pub(crate) struct Group<'a> {
    pub(crate) values: Vec<Option<&'a ConfigValue>>,
    pub(crate) runs: Vec<&'a RunSummary>,
}

/// Groups `runs` by the values of `by`, in the order of those values (numbers by value,
/// then booleans, then text, then runs without the key; the first key first).
pub(crate) fn group<'a>(runs: &'a [std::sync::Arc<RunSummary>], by: &[String]) -> Vec<Group<'a>> {
    let mut index: std::collections::HashMap<Vec<Option<String>>, usize> = Default::default();
    let mut groups: Vec<Group<'a>> = Vec::new();
    for r in runs {
        let values: Vec<Option<&ConfigValue>> = by.iter().map(|k| config(r, k)).collect();
        let key: Vec<Option<String>> = values.iter().map(|v| v.map(identity)).collect();
        let at = *index.entry(key).or_insert_with(|| {
            groups.push(Group { values, runs: Vec::new() });
            groups.len() - 1
        });
        groups[at].runs.push(r);
    }
    groups.sort_by(|a, b| {
        a.values
            .iter()
            .zip(&b.values)
            .map(|(x, y)| order(*x, *y))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    groups
}

fn config<'a>(r: &'a RunSummary, key: &str) -> Option<&'a ConfigValue> {
    r.configs.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok().map(|i| &r.configs[i].1)
}

/// What makes two values the same group: the number for ints and floats (a 1 and a 1.0
/// are one group, as a browser reading the JSON sees them), else their JSON text.
fn identity(v: &ConfigValue) -> String {
    match v {
        ConfigValue::Int(i) => format!("{}", *i as f64),
        ConfigValue::Float(x) => format!("{x}"),
        other => {
            let mut j = Json::default();
            crate::encode::config_value(&mut j, other);
            j.finish()
        }
    }
}

fn order(a: Option<&ConfigValue>, b: Option<&ConfigValue>) -> Ordering {
    fn rank(v: Option<&ConfigValue>) -> (u8, f64, String) {
        match v {
            Some(ConfigValue::Int(i)) => (0, *i as f64, String::new()),
            Some(ConfigValue::Float(x)) if !x.is_nan() => (0, *x, String::new()),
            Some(ConfigValue::Bool(b)) => (1, f64::from(u8::from(*b)), String::new()),
            Some(ConfigValue::Str(s) | ConfigValue::DateTime(s)) => (2, 0.0, s.clone()),
            Some(other) => (3, 0.0, identity(other)),
            None => (4, 0.0, String::new()),
        }
    }
    let (a, b) = (rank(a), rank(b));
    a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then_with(|| a.2.cmp(&b.2))
}

/// One run's series as `(step, value)` points, in step order.
pub(crate) type Series = Vec<(f64, f64)>;

/// A group's curve over `steps` (each bin's middle): the center, the band's low and high
/// edges (NaN where no run has a value) and how many runs each bin stands for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Curve {
    pub(crate) steps: Vec<f64>,
    pub(crate) center: Vec<f64>,
    pub(crate) lo: Vec<f64>,
    pub(crate) hi: Vec<f64>,
    pub(crate) n: Vec<u32>,
}

/// The curve of `runs` over `bins` bins.
pub(crate) fn curve(runs: &[&[(f64, f64)]], bins: usize, stat: Stat, band: Band) -> Curve {
    let bins = bins.max(1);
    let finite =
        || runs.iter().flat_map(|s| s.iter()).filter(|(s, v)| s.is_finite() && v.is_finite());
    let first = finite().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let last = finite().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    if !first.is_finite() {
        return Curve { steps: vec![], center: vec![], lo: vec![], hi: vec![], n: vec![] };
    }
    // One bin per step when there are fewer steps than bins (integer steps stay whole).
    let bins = if last == first {
        1
    } else if last - first < bins as f64 && last.fract() == 0.0 && first.fract() == 0.0 {
        (last - first) as usize + 1
    } else {
        bins
    };
    let width = if bins == 1 { 1.0 } else { (last - first) / (bins as f64 - 1.0) };
    // Bin i holds the steps nearest to first + i × width.
    let bin_of = |step: f64| (((step - first) / width).round() as usize).min(bins - 1);
    let binned: Vec<Vec<f64>> = runs.iter().map(|s| bin_run(s, bins, &bin_of)).collect();
    let mut out = Curve {
        steps: (0..bins).map(|i| first + i as f64 * width).collect(),
        center: Vec::with_capacity(bins),
        lo: Vec::with_capacity(bins),
        hi: Vec::with_capacity(bins),
        n: Vec::with_capacity(bins),
    };
    let mut column: Vec<f64> = Vec::with_capacity(runs.len());
    for i in 0..bins {
        column.clear();
        column.extend(binned.iter().map(|b| b[i]).filter(|v| !v.is_nan()));
        column.sort_by(f64::total_cmp);
        let n = column.len();
        out.n.push(n as u32);
        if n == 0 {
            out.center.push(f64::NAN);
            out.lo.push(f64::NAN);
            out.hi.push(f64::NAN);
            continue;
        }
        let mean = column.iter().sum::<f64>() / n as f64;
        let center = match stat {
            Stat::Mean => mean,
            Stat::Median => quantile(&column, 0.5),
        };
        let (lo, hi) = match band {
            Band::Std => {
                let var = column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
                (center - var.sqrt(), center + var.sqrt())
            }
            Band::MinMax => (column[0], column[n - 1]),
            Band::Iqr => (quantile(&column, 0.25), quantile(&column, 0.75)),
            Band::None => (center, center),
        };
        out.center.push(center);
        out.lo.push(lo);
        out.hi.push(hi);
    }
    out
}

/// One run's value in each bin: the mean of its finite values there, a straight line
/// between its neighbours across the bins it skipped, NaN outside its own steps.
fn bin_run(series: &[(f64, f64)], bins: usize, bin_of: &dyn Fn(f64) -> usize) -> Vec<f64> {
    let mut sum = vec![0.0; bins];
    let mut count = vec![0u32; bins];
    for &(s, v) in series {
        if s.is_finite() && v.is_finite() {
            let b = bin_of(s);
            sum[b] += v;
            count[b] += 1;
        }
    }
    let mut out: Vec<f64> = sum
        .iter()
        .zip(&count)
        .map(|(s, c)| if *c > 0 { s / f64::from(*c) } else { f64::NAN })
        .collect();
    let mut prev: Option<usize> = None;
    for i in 0..bins {
        if out[i].is_nan() {
            continue;
        }
        if let Some(p) = prev
            && i > p + 1
        {
            let (a, b) = (out[p], out[i]);
            for (k, v) in out.iter_mut().enumerate().take(i).skip(p + 1) {
                let t = (k - p) as f64 / (i - p) as f64;
                *v = a + (b - a) * t;
            }
        }
        prev = Some(i);
    }
    out
}

/// The `q` quantile of sorted values, interpolated between the nearest two.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64)
}

/// `GET /api/groups` (see the module's documentation).
pub(crate) async fn groups(
    req: actix_web::HttpRequest,
    state: actix_web::web::Data<crate::state::AppState>,
) -> Result<actix_web::HttpResponse, ApiError> {
    let query = Query::parse(req.query_string());
    let project =
        query.get("project").ok_or_else(|| ApiError::bad_request("project= is needed")).and_then(
            |p| ProjectName::parse(p).map_err(|e| ApiError::bad_request(format!("project: {e}"))),
        )?;
    let by: Vec<String> = query.all("by").map(str::to_owned).collect();
    if by.is_empty() || by.len() > MAX_BY || by.iter().any(String::is_empty) {
        return Err(ApiError::bad_request(format!(
            "groups need from 1 to {MAX_BY} by=<config key> parameters, got {}",
            by.len()
        )));
    }
    let metric = query.get("metric").map(str::to_owned);
    let stat = Stat::parse(query.get("stat").unwrap_or("mean")).map_err(ApiError::bad_request)?;
    let band = Band::parse(query.get("band").unwrap_or("std")).map_err(ApiError::bad_request)?;
    let bins = match query.get("pointCount") {
        None => DEFAULT_BINS,
        Some(text) => {
            text.parse::<usize>().ok().filter(|n| (2..=MAX_BINS).contains(n)).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "pointCount must be from 2 to {MAX_BINS}, got {text:?}"
                ))
            })?
        }
    };
    let conditions = ListingQuery::parse(&query)?;
    let store = Arc::clone(&state.store);
    let metrics = Arc::clone(&state.metrics);
    let cache = Arc::clone(&state.series);
    let j = blocking(move || {
        let listing = store
            .list_runs(Some(&project))
            .map_err(|e| crate::error::store_error(project.as_str(), "*", e))?;
        let runs = match &conditions {
            Some(q) => q.apply(metrics.fill(&*store, listing.runs)).0,
            // The table's default: runs not in the trash.
            None => listing.runs.into_iter().filter(|r| !r.meta.trashed()).collect(),
        };
        let groups = group(&runs, &by);
        // The runs read for each group drawn: all of them within MAX_CURVE_RUNS in all,
        // else an evenly spread sample, the same share for each group.
        let drawn: Vec<usize> = groups.iter().take(MAX_CURVES).map(|g| g.runs.len()).collect();
        let quota = sample_quota(&drawn, MAX_CURVE_RUNS);
        let curves: Vec<Option<(Curve, usize, usize)>> = match &metric {
            None => Vec::new(),
            Some(path) => {
                let count = goodseed_core::downsample::PointCount::new((bins * 2) as i64)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                groups
                    .iter()
                    .enumerate()
                    .map(|(i, g)| {
                        (i < MAX_CURVES).then(|| {
                            let read = spread(&g.runs, quota);
                            let series = read_series(&*store, &cache, &read, path, count);
                            let with = series.iter().filter(|s| !s.is_empty()).count();
                            let slices: Vec<&[(f64, f64)]> =
                                series.iter().map(|s| s.as_slice()).collect();
                            (curve(&slices, bins, stat, band), with, read.len())
                        })
                    })
                    .collect()
            }
        };
        let mut j = Json::with_capacity(1024 + curves.len() * bins * 64);
        j.begin_object().key("project").str(project.as_str());
        j.key("by").begin_array();
        for k in &by {
            j.str(k);
        }
        j.end_array();
        j.key("metric").opt_str(metric.as_deref());
        j.key("stat").str(match stat {
            Stat::Mean => "mean",
            Stat::Median => "median",
        });
        j.key("band").str(match band {
            Band::Std => "std",
            Band::MinMax => "minmax",
            Band::Iqr => "iqr",
            Band::None => "none",
        });
        j.key("runs").i64(runs.len() as i64);
        j.key("groups").begin_array();
        for (i, g) in groups.iter().enumerate() {
            j.begin_object().key("values").begin_array();
            for v in &g.values {
                match v {
                    Some(v) => crate::encode::config_value(&mut j, v),
                    None => {
                        j.null();
                    }
                }
            }
            j.end_array();
            j.key("runs").begin_array();
            for r in &g.runs {
                j.str(&r.id);
            }
            j.end_array();
            if let Some(Some((c, with, read))) = curves.get(i) {
                j.key("curve").begin_object();
                j.key("with_metric").i64(*with as i64);
                j.key("read").i64(*read as i64);
                let column = |j: &mut Json, name: &str, xs: &[f64]| {
                    j.key(name).begin_array();
                    for x in xs {
                        if x.is_finite() {
                            j.f64(*x);
                        } else {
                            j.null();
                        }
                    }
                    j.end_array();
                };
                column(&mut j, "steps", &c.steps);
                column(&mut j, "center", &c.center);
                column(&mut j, "lo", &c.lo);
                column(&mut j, "hi", &c.hi);
                j.key("n").begin_array();
                for n in &c.n {
                    j.i64(i64::from(*n));
                }
                j.end_array().end_object();
            } else if metric.is_some() {
                j.key("curve").null();
            }
            j.end_object();
        }
        j.end_array().end_object();
        Ok(j)
    })
    .await?;
    Ok(json_response(j))
}

/// How many runs of each group to read so that at most `budget` are read in all: every
/// run when they fit, else the largest per-group share that fits (a group smaller than
/// it is read whole).
pub(crate) fn sample_quota(sizes: &[usize], budget: usize) -> usize {
    if sizes.iter().sum::<usize>() <= budget {
        return usize::MAX;
    }
    // The largest q with sum(min(size, q)) <= budget.
    let (mut lo, mut hi) = (1usize, sizes.iter().copied().max().unwrap_or(1));
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if sizes.iter().map(|s| (*s).min(mid)).sum::<usize>() <= budget {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// At most `n` of `runs`, evenly spread over them (their order kept).
fn spread<'a>(runs: &[&'a RunSummary], n: usize) -> Vec<&'a RunSummary> {
    if runs.len() <= n {
        return runs.to_vec();
    }
    (0..n).map(|k| runs[k * runs.len() / n]).collect()
}

/// Closed runs' downsampled series, kept by their version (which changes with any write,
/// so a kept series is never stale): a group's curve asked again, with another band or
/// grouping, reads no file. Bounded by points held; past the bound the oldest half goes.
#[derive(Debug, Default)]
pub(crate) struct SeriesCache {
    inner: std::sync::Mutex<SeriesCacheInner>,
}

type SeriesKey = (String, String, String, u32);

#[derive(Debug, Default)]
struct SeriesCacheInner {
    /// (project, id, path, points asked) → (version, when kept, series).
    entries: std::collections::HashMap<SeriesKey, (goodseed_store::RunVersion, u64, Arc<Series>)>,
    points: usize,
    clock: u64,
}

/// Points the series cache holds at most (16 bytes each: 16 MiB).
const CACHE_POINTS: usize = 1 << 20;

impl SeriesCache {
    fn get(&self, r: &RunSummary, path: &str, count: u32) -> Option<Arc<Series>> {
        let version = r.version?;
        let inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (r.project.clone(), r.id.clone(), path.to_owned(), count);
        inner.entries.get(&key).filter(|(v, ..)| *v == version).map(|(.., s)| Arc::clone(s))
    }

    fn put(&self, r: &RunSummary, path: &str, count: u32, series: &Arc<Series>) {
        let Some(version) = r.version else { return };
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.clock += 1;
        let now = inner.clock;
        let key = (r.project.clone(), r.id.clone(), path.to_owned(), count);
        if let Some((.., old)) = inner.entries.insert(key, (version, now, Arc::clone(series))) {
            inner.points -= old.len();
        }
        inner.points += series.len();
        if inner.points > CACHE_POINTS {
            let mut ages: Vec<u64> = inner.entries.values().map(|(_, t, _)| *t).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            inner.entries.retain(|_, (_, t, _)| *t > cut);
            inner.points = inner.entries.values().map(|(.., s)| s.len()).sum();
        }
    }
}

/// Each run's series of `path`, downsampled as charts read it (a run that cannot be read,
/// or lacks the metric, gives an empty series), read on as many threads as there are
/// cores: a thousand runs are a thousand files.
fn read_series(
    store: &dyn RunStore,
    cache: &SeriesCache,
    runs: &[&RunSummary],
    path: &str,
    count: goodseed_core::downsample::PointCount,
) -> Vec<Arc<Series>> {
    let read = |r: &RunSummary| -> Arc<Series> {
        if r.metric_paths.binary_search_by(|p| p.as_str().cmp(path)).is_err() {
            return Arc::default();
        }
        if let Some(kept) = cache.get(r, path, count.get()) {
            return kept;
        }
        let (Ok(project), Ok(id)) = (ProjectName::parse(&r.project), RunId::parse(&r.id)) else {
            return Arc::default();
        };
        let Ok(reader) = store.open_run(&project, &id) else { return Arc::default() };
        match reader.downsample_metric(path, None, None, count) {
            Ok((_, sampled)) => {
                let series: Arc<Series> =
                    Arc::new(sampled.points.iter().map(|p| (p.step, p.value)).collect());
                cache.put(r, path, count.get(), &series);
                series
            }
            Err(_) => Arc::default(),
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    if runs.len() < 16 || threads == 1 {
        return runs.iter().map(|r| read(r)).collect();
    }
    let chunk = runs.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|r| read(r)).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(steps: std::ops::Range<u32>, f: impl Fn(f64) -> f64) -> Series {
        steps.map(|s| (f64::from(s), f(f64::from(s)))).collect()
    }

    #[test]
    fn the_mean_and_its_spread_over_runs_aligned_by_step() {
        let runs = [line(0..10, |s| s), line(0..10, |s| s + 2.0), line(0..10, |s| s + 4.0)];
        let runs: Vec<&[(f64, f64)]> = runs.iter().map(Vec::as_slice).collect();
        let c = curve(&runs, 200, Stat::Mean, Band::Std);
        assert_eq!(c.steps, (0..10).map(f64::from).collect::<Vec<_>>(), "a bin per step");
        assert_eq!(c.center, (0..10).map(|s| f64::from(s) + 2.0).collect::<Vec<_>>());
        let sd = (8.0f64 / 3.0).sqrt();
        assert!((c.hi[3] - (5.0 + sd)).abs() < 1e-12 && (c.lo[3] - (5.0 - sd)).abs() < 1e-12);
        assert!(c.n.iter().all(|n| *n == 3));
        let m = curve(&runs, 200, Stat::Median, Band::MinMax);
        assert_eq!((m.center[0], m.lo[0], m.hi[0]), (2.0, 0.0, 4.0));
        let q = curve(&runs, 200, Stat::Median, Band::Iqr);
        assert_eq!((q.lo[0], q.hi[0]), (1.0, 3.0));
    }

    #[test]
    fn a_run_logged_sparsely_is_interpolated_and_a_short_run_counts_only_where_it_ran() {
        // Every step; every 4th step; only the first half.
        let dense = line(0..9, |_| 1.0);
        let sparse: Series = vec![(0.0, 0.0), (4.0, 4.0), (8.0, 8.0)];
        let short = line(0..5, |_| 10.0);
        let c = curve(&[&dense, &sparse, &short], 200, Stat::Mean, Band::None);
        assert_eq!(c.n, [3, 3, 3, 3, 3, 2, 2, 2, 2]);
        assert_eq!(c.center[2], (1.0 + 2.0 + 10.0) / 3.0, "sparse run interpolated at step 2");
        assert_eq!(c.center[6], (1.0 + 6.0) / 2.0);
    }

    #[test]
    fn many_steps_are_binned_and_nan_left_out() {
        let mut a = line(0..10_000, |s| s);
        a[5].1 = f64::NAN;
        let c = curve(&[&a], 100, Stat::Mean, Band::Std);
        assert_eq!(c.steps.len(), 100);
        assert_eq!((c.steps[0], c.steps[99]), (0.0, 9999.0));
        assert!(c.center.iter().all(|v| v.is_finite()));
        // Each bin's mean is near its middle step.
        assert!(c.center.iter().zip(&c.steps).all(|(v, s)| (v - s).abs() < 60.0));
        let empty = curve(&[&[], &[(1.0, f64::NAN)]], 100, Stat::Mean, Band::Std);
        assert!(empty.steps.is_empty());
    }

    #[test]
    fn large_groups_are_sampled_evenly_within_the_budget() {
        assert_eq!(sample_quota(&[10, 20], 100), usize::MAX, "all fit");
        let q = sample_quota(&[50_000, 5_000, 100], 10_000);
        assert!(50_000.min(q) + 5_000.min(q) + 100 <= 10_000 && q >= 4_900, "{q}");
        let runs: Vec<RunSummary> = (0..100).map(|i| summary(&format!("r{i}"), &[])).collect();
        let refs: Vec<&RunSummary> = runs.iter().collect();
        let picked: Vec<&str> = spread(&refs, 4).iter().map(|r| r.id.as_str()).collect();
        assert_eq!(picked, ["r0", "r25", "r50", "r75"]);
        assert_eq!(spread(&refs[..3], 4).len(), 3);
    }

    #[test]
    fn the_series_cache_keeps_closed_runs_by_version_and_stays_bounded() {
        let cache = SeriesCache::default();
        let mut r = summary("a", &[]);
        let series = Arc::new(vec![(0.0, 1.0); 10]);
        cache.put(&r, "loss", 100, &series);
        assert!(cache.get(&r, "loss", 100).is_none(), "a live run (no version) is not kept");
        r.version = Some(goodseed_store::RunVersion(7));
        cache.put(&r, "loss", 100, &series);
        assert_eq!(cache.get(&r, "loss", 100).as_deref(), Some(&*series));
        assert!(cache.get(&r, "loss", 50).is_none() && cache.get(&r, "acc", 100).is_none());
        r.version = Some(goodseed_store::RunVersion(8));
        assert!(cache.get(&r, "loss", 100).is_none(), "written since: read again");
        let big = Arc::new(vec![(0.0, 1.0); CACHE_POINTS / 4]);
        for i in 0..10 {
            let mut other = summary(&format!("r{i}"), &[]);
            other.version = Some(goodseed_store::RunVersion(1));
            cache.put(&other, "loss", 100, &big);
        }
        let inner = cache.inner.lock().expect("lock");
        assert!(inner.points <= CACHE_POINTS, "{} points kept", inner.points);
    }

    fn summary(id: &str, cfg: &[(&str, ConfigValue)]) -> RunSummary {
        let configs = cfg.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        crate::runs::test_summary(id, Default::default(), configs)
    }

    #[test]
    fn groups_come_in_the_order_of_their_values_and_missing_last() {
        let mk = |id: &str, cfg: &[(&str, ConfigValue)]| Arc::new(summary(id, cfg));
        let runs = vec![
            mk("a", &[("lr", ConfigValue::Float(0.1)), ("opt", ConfigValue::Str("sgd".into()))]),
            mk("b", &[("lr", ConfigValue::Float(0.01)), ("opt", ConfigValue::Str("adam".into()))]),
            mk("c", &[("lr", ConfigValue::Float(0.1)), ("opt", ConfigValue::Str("sgd".into()))]),
            mk("d", &[("opt", ConfigValue::Str("adam".into()))]),
            mk("e", &[("lr", ConfigValue::Float(0.01)), ("opt", ConfigValue::Str("sgd".into()))]),
            mk("f", &[("lr", ConfigValue::Int(1)), ("opt", ConfigValue::Str("sgd".into()))]),
            mk("g", &[("lr", ConfigValue::Float(1.0)), ("opt", ConfigValue::Str("sgd".into()))]),
            mk(
                "h",
                &[("lr", ConfigValue::Str("1".into())), ("opt", ConfigValue::Str("sgd".into()))],
            ),
        ];
        let g = group(&runs, &["lr".into(), "opt".into()]);
        let ids: Vec<Vec<&str>> =
            g.iter().map(|g| g.runs.iter().map(|r| r.id.as_str()).collect()).collect();
        assert_eq!(
            ids,
            [vec!["b"], vec!["e"], vec!["a", "c"], vec!["f", "g"], vec!["h"], vec!["d"]],
            "an int and a float of one value are one group; text is not a number"
        );
        assert_eq!(g[5].values[0], None);
    }
}
