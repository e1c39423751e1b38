//! Ours: which hyperparameters matter. `GET /api/importance?project=P&metric=<path>.<agg>`
//! (and the listing's `filter=` conditions) answers, for every config that varies among
//! the project's runs, how it goes with the metric: a correlation (Spearman's for numbers
//! and booleans, the correlation ratio η for text, which has no direction) and an
//! importance from a small random forest of regression trees fitted to predict the metric
//! from all the configs at once (each config's share of the variance its splits remove,
//! averaged over the trees), so a config that matters only together with another still
//! shows. Everything comes from the runs' summaries: no run is opened.
//!
//! The forest is deterministic (a fixed seed): the same runs give the same answer.

use std::collections::{BTreeMap, HashMap};

use goodseed_core::ConfigValue;

/// Trees in the forest.
const TREES: usize = 64;
/// The deepest a tree grows.
const MAX_DEPTH: usize = 6;
/// The fewest runs a leaf holds.
const MIN_LEAF: usize = 2;
/// The most runs the forest is fitted on (a sample beyond: the answer's shape does not
/// change, its cost stays bounded).
pub(crate) const MAX_RUNS: usize = 20_000;

/// One config's column over the runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Column {
    /// Numbers (ints, floats, booleans as 0 and 1); NaN where a run lacks it.
    Number(Vec<f64>),
    /// Text, as category indices into the names; `None` where a run lacks it.
    Category { codes: Vec<Option<usize>>, names: Vec<String> },
}

/// What the answer says of one config.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Param {
    pub(crate) key: String,
    /// `number` or `category`.
    pub(crate) kind: &'static str,
    /// Spearman's rank correlation (numbers), or η (categories, in 0..1); `None` when it
    /// cannot be told (fewer than three runs with the value, or no spread).
    pub(crate) correlation: Option<f64>,
    /// Its share of the forest's variance reduction, 0..1 over all params.
    pub(crate) importance: f64,
    /// How many distinct values the runs have.
    pub(crate) distinct: usize,
    /// How many runs have it.
    pub(crate) runs: usize,
}

/// Builds the columns of the configs that vary over `rows` (each run's configs by key),
/// leaving out what cannot inform: keys only one value (or only one run) has, text unique
/// to every run (names, paths), and sets.
pub(crate) fn columns(rows: &[&[(String, ConfigValue)]]) -> Vec<(String, Column)> {
    let mut keys: BTreeMap<&str, ()> = BTreeMap::new();
    for row in rows {
        for (k, _) in row.iter() {
            if !k.starts_with("sys/")
                && !k.starts_with("source_code/")
                && !k.starts_with("monitoring/")
            {
                keys.insert(k.as_str(), ());
            }
        }
    }
    let mut out = Vec::new();
    for key in keys.into_keys() {
        let values: Vec<Option<&ConfigValue>> = rows
            .iter()
            .map(|row| row.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok().map(|i| &row[i].1))
            .collect();
        let numeric = values.iter().flatten().all(|v| {
            matches!(
                v,
                ConfigValue::Int(_)
                    | ConfigValue::Float(_)
                    | ConfigValue::Bool(_)
                    | ConfigValue::Null
            )
        });
        let column = if numeric {
            Column::Number(
                values
                    .iter()
                    .map(|v| match v {
                        Some(ConfigValue::Int(i)) => *i as f64,
                        Some(ConfigValue::Float(x)) => *x,
                        Some(ConfigValue::Bool(b)) => f64::from(u8::from(*b)),
                        _ => f64::NAN,
                    })
                    .collect(),
            )
        } else {
            let mut names: Vec<String> = Vec::new();
            let mut index: HashMap<String, usize> = HashMap::new();
            let codes = values
                .iter()
                .map(|v| {
                    let text = match v {
                        Some(ConfigValue::Str(s) | ConfigValue::DateTime(s)) => s.clone(),
                        Some(ConfigValue::Int(i)) => i.to_string(),
                        Some(ConfigValue::Float(x)) => x.to_string(),
                        Some(ConfigValue::Bool(b)) => b.to_string(),
                        _ => return None,
                    };
                    Some(*index.entry(text.clone()).or_insert_with(|| {
                        names.push(text);
                        names.len() - 1
                    }))
                })
                .collect::<Vec<_>>();
            let present = codes.iter().flatten().count();
            if names.len() == present && present > 2 {
                continue; // different for every run: an id, not a parameter
            }
            Column::Category { codes, names }
        };
        if distinct(&column) >= 2 {
            out.push((key.to_owned(), column));
        }
    }
    out
}

fn distinct(c: &Column) -> usize {
    match c {
        Column::Number(xs) => {
            let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
            v.sort_by(f64::total_cmp);
            v.dedup();
            v.len()
        }
        Column::Category { codes, .. } => {
            let mut v: Vec<usize> = codes.iter().flatten().copied().collect();
            v.sort_unstable();
            v.dedup();
            v.len()
        }
    }
}

/// The answer for `columns` against `target` (one value per run, all finite).
pub(crate) fn analyse(columns: &[(String, Column)], target: &[f64]) -> Vec<Param> {
    let n = target.len();
    // Trees split on numbers: a category becomes its rank by mean target (the order that
    // makes a threshold on it a best partition, for regression); a missing value goes
    // below every present one.
    let features: Vec<Vec<f64>> = columns
        .iter()
        .map(|(_, c)| match c {
            Column::Number(xs) => {
                let low = xs.iter().copied().filter(|x| !x.is_nan()).fold(f64::INFINITY, f64::min);
                xs.iter().map(|x| if x.is_nan() { low - 1.0 } else { *x }).collect()
            }
            Column::Category { codes, names } => {
                let mut sums = vec![(0.0, 0usize); names.len()];
                for (c, y) in codes.iter().zip(target) {
                    if let Some(c) = c {
                        sums[*c].0 += y;
                        sums[*c].1 += 1;
                    }
                }
                let mut order: Vec<usize> = (0..names.len()).collect();
                order.sort_by(|a, b| {
                    let m = |i: usize| sums[i].0 / sums[i].1.max(1) as f64;
                    m(*a).total_cmp(&m(*b))
                });
                let mut rank = vec![0.0; names.len()];
                for (r, c) in order.into_iter().enumerate() {
                    rank[c] = r as f64;
                }
                codes.iter().map(|c| c.map_or(-1.0, |c| rank[c])).collect()
            }
        })
        .collect();
    let gains = forest(&features, target);
    let total: f64 = gains.iter().sum();
    columns
        .iter()
        .zip(&gains)
        .map(|((key, c), gain)| Param {
            key: key.clone(),
            kind: match c {
                Column::Number(_) => "number",
                Column::Category { .. } => "category",
            },
            correlation: match c {
                Column::Number(xs) => spearman(xs, target),
                Column::Category { codes, .. } => eta(codes, target),
            },
            importance: if total > 0.0 { gain / total } else { 0.0 },
            distinct: distinct(c),
            runs: match c {
                Column::Number(xs) => xs.iter().filter(|x| !x.is_nan()).count(),
                Column::Category { codes, .. } => codes.iter().flatten().count(),
            }
            .min(n),
        })
        .collect()
}

/// Spearman's rank correlation over the runs that have the value.
fn spearman(xs: &[f64], ys: &[f64]) -> Option<f64> {
    let pairs: Vec<(f64, f64)> =
        xs.iter().zip(ys).filter(|(x, _)| !x.is_nan()).map(|(x, y)| (*x, *y)).collect();
    if pairs.len() < 3 {
        return None;
    }
    let rx = ranks(&pairs.iter().map(|p| p.0).collect::<Vec<_>>());
    let ry = ranks(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
    pearson(&rx, &ry)
}

/// Ranks from 1, ties sharing their mean rank.
fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|a, b| xs[*a].total_cmp(&xs[*b]));
    let mut out = vec![0.0; xs.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && xs[order[j + 1]] == xs[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for k in &order[i..=j] {
            out[*k] = rank;
        }
        i = j + 1;
    }
    out
}

fn pearson(xs: &[f64], ys: &[f64]) -> Option<f64> {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// The correlation ratio η: how much of the target's spread lies between the categories.
fn eta(codes: &[Option<usize>], ys: &[f64]) -> Option<f64> {
    let pairs: Vec<(usize, f64)> =
        codes.iter().zip(ys).filter_map(|(c, y)| c.map(|c| (c, *y))).collect();
    if pairs.len() < 3 {
        return None;
    }
    let mean = pairs.iter().map(|p| p.1).sum::<f64>() / pairs.len() as f64;
    let mut groups: HashMap<usize, (f64, usize)> = HashMap::new();
    for (c, y) in &pairs {
        let g = groups.entry(*c).or_default();
        g.0 += y;
        g.1 += 1;
    }
    let total: f64 = pairs.iter().map(|(_, y)| (y - mean) * (y - mean)).sum();
    let between: f64 = groups
        .values()
        .map(|(sum, k)| {
            let m = sum / *k as f64;
            *k as f64 * (m - mean) * (m - mean)
        })
        .sum();
    (total > 0.0).then(|| (between / total).sqrt().clamp(0.0, 1.0))
}

/// A small, fixed-seed generator (xorshift64*): the forest's bootstrap and feature draws.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Fits [`TREES`] regression trees on bootstrap samples, each split choosing among a
/// random third of the features; returns each feature's total variance reduction.
fn forest(features: &[Vec<f64>], target: &[f64]) -> Vec<f64> {
    let (p, n) = (features.len(), target.len());
    let mut gains = vec![0.0; p];
    if p == 0 || n < 2 * MIN_LEAF {
        return gains;
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let tried = p.div_ceil(3).max(1);
    for _ in 0..TREES {
        let sample: Vec<usize> = (0..n).map(|_| rng.below(n)).collect();
        grow(features, target, sample, 0, tried, &mut rng, &mut gains);
    }
    gains
}

/// Splits `rows` at the best threshold of a few random features, recursively, adding
/// each split's variance reduction (times its runs) to its feature's gain.
fn grow(
    features: &[Vec<f64>],
    target: &[f64],
    rows: Vec<usize>,
    depth: usize,
    tried: usize,
    rng: &mut Rng,
    gains: &mut [f64],
) {
    if depth >= MAX_DEPTH || rows.len() < 2 * MIN_LEAF {
        return;
    }
    let n = rows.len() as f64;
    let (sum, sum2) =
        rows.iter().fold((0.0, 0.0), |(s, s2), &i| (s + target[i], s2 + target[i] * target[i]));
    let sse = sum2 - sum * sum / n;
    if sse <= 1e-12 * n {
        return;
    }
    // (feature, threshold, reduction)
    let mut best: Option<(usize, f64, f64)> = None;
    let mut candidates: Vec<usize> = (0..features.len()).collect();
    for k in 0..tried.min(candidates.len()) {
        let pick = k + rng.below(candidates.len() - k);
        candidates.swap(k, pick);
        let f = candidates[k];
        let mut sorted: Vec<(f64, f64)> =
            rows.iter().map(|&i| (features[f][i], target[i])).collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (mut ls, mut ls2) = (0.0, 0.0);
        for j in 0..sorted.len() - 1 {
            ls += sorted[j].1;
            ls2 += sorted[j].1 * sorted[j].1;
            let left = (j + 1) as f64;
            if j + 1 < MIN_LEAF || sorted.len() - j - 1 < MIN_LEAF || sorted[j].0 == sorted[j + 1].0
            {
                continue;
            }
            let right = n - left;
            let (rs, rs2) = (sum - ls, sum2 - ls2);
            let split_sse = (ls2 - ls * ls / left) + (rs2 - rs * rs / right);
            let reduction = sse - split_sse;
            if best.is_none_or(|b| reduction > b.2) {
                best = Some((f, (sorted[j].0 + sorted[j + 1].0) / 2.0, reduction));
            }
        }
    }
    let Some((f, threshold, reduction)) = best.filter(|b| b.2 > 0.0) else { return };
    gains[f] += reduction;
    let (left, right): (Vec<usize>, Vec<usize>) =
        rows.into_iter().partition(|&i| features[f][i] <= threshold);
    grow(features, target, left, depth + 1, tried, rng, gains);
    grow(features, target, right, depth + 1, tried, rng, gains);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs of a sweep where the metric follows lr strongly, the optimizer somewhat,
    /// and the seed not at all; and a key every run has alike.
    fn sweep() -> (Vec<Vec<(String, ConfigValue)>>, Vec<f64>) {
        let mut rows = Vec::new();
        let mut target = Vec::new();
        let mut rng = Rng(7);
        for i in 0..300 {
            let lr: f64 = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2][i % 5];
            let opt = if i % 3 == 0 { "adam" } else { "sgd" };
            let seed = (i / 15 % 4) as i64;
            let noise = (rng.below(1000) as f64 / 1000.0 - 0.5) * 0.05;
            target.push(lr.log10() * -0.3 + if opt == "adam" { 0.1 } else { 0.0 } + noise);
            let mut row = vec![
                ("lr".to_owned(), ConfigValue::Float(lr)),
                ("opt".to_owned(), ConfigValue::Str(opt.into())),
                ("seed".to_owned(), ConfigValue::Int(seed)),
                ("same".to_owned(), ConfigValue::Int(1)),
                ("name".to_owned(), ConfigValue::Str(format!("run {i}"))),
                ("sys/tags".to_owned(), ConfigValue::Str("x".into())),
            ];
            row.sort_by(|a, b| a.0.cmp(&b.0));
            rows.push(row);
        }
        (rows, target)
    }

    #[test]
    fn the_parameter_that_drives_the_metric_ranks_first() {
        let (rows, target) = sweep();
        let refs: Vec<&[(String, ConfigValue)]> = rows.iter().map(Vec::as_slice).collect();
        let cols = columns(&refs);
        let keys: Vec<&str> = cols.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["lr", "opt", "seed"], "constant, unique and sys/ keys left out");
        let mut params = analyse(&cols, &target);
        params.sort_by(|a, b| b.importance.total_cmp(&a.importance));
        let order: Vec<&str> = params.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(order, ["lr", "opt", "seed"], "{params:#?}");
        let lr = &params[0];
        assert!(lr.importance > 0.7, "{lr:?}");
        assert!(lr.correlation.is_some_and(|c| c < -0.9), "lr lowers the metric: {lr:?}");
        let opt = &params[1];
        assert_eq!((opt.kind, opt.distinct, opt.runs), ("category", 2, 300));
        assert!(opt.correlation.is_some_and(|c| (0.1..=1.0).contains(&c)), "{opt:?}");
        assert!(params[2].importance < 0.05, "the seed does not matter: {params:#?}");
        let total: f64 = params.iter().map(|p| p.importance).sum();
        assert!((total - 1.0).abs() < 1e-9);
        // Deterministic.
        assert_eq!(analyse(&cols, &target), analyse(&cols, &target));
    }

    #[test]
    fn too_little_to_tell_says_so() {
        let rows = [
            vec![("lr".to_owned(), ConfigValue::Float(0.1))],
            vec![("lr".to_owned(), ConfigValue::Float(0.2))],
        ];
        let refs: Vec<&[(String, ConfigValue)]> = rows.iter().map(Vec::as_slice).collect();
        let cols = columns(&refs);
        let params = analyse(&cols, &[1.0, 2.0]);
        assert_eq!(params.len(), 1);
        assert_eq!((params[0].correlation, params[0].importance), (None, 0.0));
        assert!(analyse(&[], &[]).is_empty());
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
        assert_eq!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
    }
}
