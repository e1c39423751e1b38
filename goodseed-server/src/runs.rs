//! Ours, beside 0.4.0's API: filtering, sorting and paging of `GET /api/runs`, and
//! `GET /api/runs/<project>/<run>/summary`.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use goodseed_core::parse_python_int;
use goodseed_store::overview::RunOverview;
use goodseed_store::{RunReader, RunSummary, RunVersion};

use crate::encode::{logged_at, step};
use crate::error::ApiError;
use crate::filter::Condition;
use crate::json::Json;
use crate::query::Query;

/// The parameters that turn a 0.4.0 listing into ours (and add `total`).
const LISTING_PARAMS: &[&str] =
    &["status", "tag", "q", "trashed", "sort", "limit", "offset", "filter"];

/// The most `filter=` conditions one listing takes.
const MAX_FILTERS: usize = 32;

/// The states `status` may ask for.
const STATES: &[&str] = &["running", "finished", "failed", "crashed", "stale", "unknown"];

/// The largest page `limit` allows.
pub(crate) const MAX_LIMIT: i64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum SortKey {
    CreatedAt,
    RunId,
    Name,
    Status,
    /// A config's value (`config.<key>`): numbers, then text, then runs without it.
    Config(String),
    /// A metric's summary (`metric.<path>.<agg>`), runs without it (or NaN) last.
    Metric(String, crate::filter::Agg),
}

/// What to do to a listing: filters, an order, a page.
#[derive(Debug, Default)]
pub(crate) struct ListingQuery {
    status: Option<String>,
    tags: Vec<String>,
    q: Option<String>,
    /// Conditions on values (`filter=`), all of which must hold.
    filters: Vec<Condition>,
    trashed: Option<bool>,
    /// `None` keeps 0.4.0's order (newest first, ties in path order).
    sort: Option<(SortKey, bool)>,
    limit: Option<usize>,
    offset: usize,
}

impl ListingQuery {
    /// Reads and checks the parameters; `None` when none is given (0.4.0's answer).
    pub(crate) fn parse(query: &Query) -> Result<Option<ListingQuery>, ApiError> {
        if !LISTING_PARAMS.iter().any(|p| query.get(p).is_some()) {
            return Ok(None);
        }
        let mut out = ListingQuery::default();
        if let Some(s) = query.get("status") {
            if !STATES.contains(&s) {
                return Err(ApiError::bad_request(format!(
                    "status must be one of {}, got {s:?}",
                    STATES.join(", ")
                )));
            }
            out.status = Some(s.to_owned());
        }
        out.tags = query.all("tag").map(str::to_owned).collect();
        out.q = query.get("q").map(str::to_lowercase);
        for text in query.all("filter") {
            if out.filters.len() == MAX_FILTERS {
                return Err(ApiError::bad_request(format!(
                    "at most {MAX_FILTERS} filter conditions in one listing"
                )));
            }
            out.filters.push(Condition::parse(text).map_err(ApiError::bad_request)?);
        }
        out.trashed = match query.get("trashed") {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "trashed must be true or false, got {other:?}"
                )));
            }
        };
        if let Some(s) = query.get("sort") {
            let (desc, name) = match s.strip_prefix('-') {
                Some(name) => (true, name),
                None => (false, s),
            };
            let key = match name {
                "created_at" => SortKey::CreatedAt,
                "run_id" => SortKey::RunId,
                "name" => SortKey::Name,
                "status" => SortKey::Status,
                _ if name.starts_with("config.") && name.len() > "config.".len() => {
                    SortKey::Config(name["config.".len()..].to_owned())
                }
                _ if name.starts_with("metric.") => match crate::filter::metric_field(name) {
                    Some((path, agg)) => SortKey::Metric(path, agg),
                    None => {
                        return Err(ApiError::bad_request(format!(
                            "sort by a metric is metric.<path>.<last|min|max|mean|last_step|\
                             min_step|max_step>, got {s:?}"
                        )));
                    }
                },
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "sort must be one of created_at, run_id, name, status, config.<key> or \
                         metric.<path>.<agg> (with - for descending), got {s:?}"
                    )));
                }
            };
            out.sort = Some((key, desc));
        }
        if let Some(text) = query.get("limit") {
            let limit = parse_python_int(text).filter(|l| (1..=MAX_LIMIT).contains(l)).ok_or_else(
                || {
                    ApiError::bad_request(format!(
                        "limit must be an integer from 1 to {MAX_LIMIT}, got {text:?}"
                    ))
                },
            )?;
            out.limit = Some(limit as usize);
        }
        if let Some(text) = query.get("offset") {
            let offset = parse_python_int(text).filter(|o| *o >= 0).ok_or_else(|| {
                ApiError::bad_request(format!("offset must be an integer >= 0, got {text:?}"))
            })?;
            out.offset = usize::try_from(offset).unwrap_or(usize::MAX);
        }
        Ok(Some(out))
    }

    fn matches(&self, r: &RunSummary) -> bool {
        if self.status.as_deref().is_some_and(|s| s != r.status.as_str()) {
            return false;
        }
        if self.trashed.is_some_and(|t| t != r.meta.trashed()) {
            return false;
        }
        if !self.tags.iter().all(|t| r.tags.binary_search(t).is_ok()) {
            return false;
        }
        if let Some(q) = &self.q {
            let hit = |s: &str| crate::filter::contains_folded(s, q);
            if !hit(&r.run_id)
                && !r.meta.name().is_some_and(hit)
                && !crate::filter::config_value_matches(r, q)
            {
                return false;
            }
        }
        self.filters.iter().all(|c| c.holds(r))
    }

    /// Whether the listing needs metrics' summaries (to filter or sort by them).
    pub(crate) fn reads_metrics(&self) -> bool {
        self.filters.iter().any(Condition::reads_metrics)
            || matches!(self.sort, Some((SortKey::Metric(..), _)))
    }

    /// Filters, sorts and pages a listing (in 0.4.0's order); returns the page and the
    /// number of runs that matched before paging.
    pub(crate) fn apply(&self, runs: Vec<Arc<RunSummary>>) -> (Vec<Arc<RunSummary>>, usize) {
        let upto = self.limit.map(|l| self.offset.saturating_add(l));
        let (ordered, total) = self.order(runs, upto);
        (self.page(&ordered), total)
    }

    /// As [`ListingQuery::apply`], reusing the order `cache` keeps for this query over the
    /// same runs: the next page of a table, or a page after the count of its conditions,
    /// is not filtered and sorted again.
    pub(crate) fn apply_cached(
        &self,
        runs: Vec<Arc<RunSummary>>,
        cache: &OrderCache,
        key: &str,
    ) -> (Vec<Arc<RunSummary>>, usize) {
        let upto = self.limit.map(|l| self.offset.saturating_add(l));
        if let Some((ordered, total)) = cache.get(key, &runs, upto) {
            return (self.page(&ordered), total);
        }
        // Ask for more than this page, so the next pages come from the cache too.
        let ahead = upto.map(|u| u.saturating_mul(4).max(1_000));
        let (ordered, total) = self.order(runs.clone(), ahead);
        let ordered = Arc::new(ordered);
        cache.put(key, runs, ahead, Arc::clone(&ordered), total);
        (self.page(&ordered), total)
    }

    fn page(&self, ordered: &[Arc<RunSummary>]) -> Vec<Arc<RunSummary>> {
        ordered.iter().skip(self.offset).take(self.limit.unwrap_or(usize::MAX)).cloned().collect()
    }

    /// The runs the conditions keep, in the order asked (only the first `upto` of them
    /// when given), and how many they keep.
    fn order(
        &self,
        runs: Vec<Arc<RunSummary>>,
        upto: Option<usize>,
    ) -> (Vec<Arc<RunSummary>>, usize) {
        let mut runs: Vec<Arc<RunSummary>> = runs.into_iter().filter(|r| self.matches(r)).collect();
        let total = runs.len();
        if let Some((key, desc)) = &self.sort {
            // Each run's key read once (a meta lookup or an allocation per comparison is
            // most of the cost at 100,000 runs); runs without a value last in both
            // directions; ties keep 0.4.0's order (newest first, then path order).
            let order = match key {
                SortKey::Metric(path, agg) => sorted(
                    &runs,
                    upto,
                    |r| {
                        crate::filter::metric_of(r, path)
                            .map(|s| agg.value(s))
                            .filter(|x| !x.is_nan())
                    },
                    |a, b| match (a, b) {
                        (Some(x), Some(y)) => {
                            let o = x.total_cmp(y);
                            if *desc { o.reverse() } else { o }
                        }
                        (a, b) => b.is_some().cmp(&a.is_some()),
                    },
                ),
                SortKey::Config(k) => sorted(
                    &runs,
                    upto,
                    |r| crate::filter::config_rank(r, k),
                    |a, b| {
                        // Kind 3: no value.
                        (a.0 == 3).cmp(&(b.0 == 3)).then_with(|| {
                            let o = a.partial_cmp(b).unwrap_or(Ordering::Equal);
                            if *desc { o.reverse() } else { o }
                        })
                    },
                ),
                key => sorted(
                    &runs,
                    upto,
                    |r| text_key(key, r),
                    |a, b| {
                        let o = a.cmp(b);
                        if *desc { o.reverse() } else { o }
                    },
                ),
            };
            let mut slots: Vec<Option<Arc<RunSummary>>> = runs.drain(..).map(Some).collect();
            runs.extend(order.into_iter().filter_map(|i| slots[i].take()));
        } else if let Some(upto) = upto {
            runs.truncate(upto);
        }
        (runs, total)
    }
}

/// The last few orders of listings (conditions and sort applied, before paging), by
/// query, with the runs they were made from: a listing of the very same runs (the same
/// summaries: a change to a run makes a new one) reuses its order. At 100,000 runs the
/// conditions cost tens of milliseconds; a table asks for the count, then its pages.
#[derive(Debug, Default)]
pub(crate) struct OrderCache {
    entries: std::sync::Mutex<std::collections::VecDeque<OrderEntry>>,
}

#[derive(Debug)]
struct OrderEntry {
    key: String,
    /// The runs the order was made from (held, so their addresses stay theirs).
    input: Vec<Arc<RunSummary>>,
    /// How far the order goes (`None`: all of it).
    upto: Option<usize>,
    ordered: Arc<Vec<Arc<RunSummary>>>,
    total: usize,
}

/// Orders kept.
const ORDERS_KEPT: usize = 4;

impl OrderCache {
    fn get(
        &self,
        key: &str,
        runs: &[Arc<RunSummary>],
        upto: Option<usize>,
    ) -> Option<(Arc<Vec<Arc<RunSummary>>>, usize)> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = entries.iter().find(|e| e.key == key)?;
        let far_enough = match (e.upto, upto) {
            (None, _) => true,
            (Some(have), Some(want)) => want <= have || e.ordered.len() == e.total,
            (Some(_), None) => e.ordered.len() == e.total,
        };
        let same =
            e.input.len() == runs.len() && e.input.iter().zip(runs).all(|(a, b)| Arc::ptr_eq(a, b));
        (far_enough && same).then(|| (Arc::clone(&e.ordered), e.total))
    }

    fn put(
        &self,
        key: &str,
        input: Vec<Arc<RunSummary>>,
        upto: Option<usize>,
        ordered: Arc<Vec<Arc<RunSummary>>>,
        total: usize,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.retain(|e| e.key != key);
        entries.push_front(OrderEntry { key: key.to_owned(), input, upto, ordered, total });
        entries.truncate(ORDERS_KEPT);
    }
}

/// The key of a listing's order: its project and the parameters that choose and order
/// runs (not the page, nor the columns).
pub(crate) fn order_key(query: &crate::query::Query) -> String {
    let mut parts: Vec<String> = ["project", "status", "tag", "q", "filter", "trashed", "sort"]
        .iter()
        .flat_map(|name| query.all(name).map(move |v| format!("{name}={v}")))
        .collect();
    parts.sort();
    parts.join("\u{0}")
}

/// The order of runs by a key read once per run, in `cmp`'s order, ties in their order
/// before: the positions, first to last; with `upto`, only the first `upto` of them (found
/// in linear time, then sorted: a page near the start of 100,000 runs sorts a page).
fn sorted<'a, K>(
    runs: &'a [Arc<RunSummary>],
    upto: Option<usize>,
    key: impl Fn(&'a RunSummary) -> K,
    cmp: impl Fn(&K, &K) -> Ordering,
) -> Vec<usize> {
    let mut keyed: Vec<(K, usize)> = runs.iter().enumerate().map(|(i, r)| (key(r), i)).collect();
    let order = |a: &(K, usize), b: &(K, usize)| cmp(&a.0, &b.0).then(a.1.cmp(&b.1));
    match upto {
        Some(k) if k < keyed.len() => {
            if k == 0 {
                return Vec::new();
            }
            keyed.select_nth_unstable_by(k - 1, order);
            keyed.truncate(k);
        }
        _ => {}
    }
    keyed.sort_unstable_by(order);
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// The text a run sorts by under `key` (not a config key).
fn text_key<'a>(key: &SortKey, r: &'a RunSummary) -> &'a str {
    match key {
        SortKey::CreatedAt => r.meta.created_at().unwrap_or(""),
        SortKey::RunId => &r.run_id,
        SortKey::Name => r.meta.name().unwrap_or(""),
        SortKey::Status => r.status.as_str(),
        SortKey::Config(_) | SortKey::Metric(..) => "",
    }
}

/// Metrics' summaries read through readers, for runs whose backend does not keep them
/// in its summaries (PostgreSQL), kept per closed run by its version.
#[derive(Debug, Default)]
pub(crate) struct MetricsCache {
    entries: std::sync::Mutex<std::collections::HashMap<RunKey, (RunVersion, Arc<RunSummary>)>>,
}

/// A run by its project and id.
type RunKey = (String, String);

/// Runs kept at most in [`MetricsCache`].
const METRICS_CACHED: usize = 200_000;

impl MetricsCache {
    /// The runs, each with its metrics' summaries: as the store gave them when it keeps
    /// them, else read through the run's reader (a run that cannot be read stays as it
    /// is: without them, it fails conditions on them).
    pub(crate) fn fill(
        &self,
        store: &dyn goodseed_store::RunStore,
        runs: Vec<Arc<RunSummary>>,
    ) -> Vec<Arc<RunSummary>> {
        use goodseed_store::MetricSummary;
        runs.into_iter()
            .map(|r| {
                if !r.metrics.is_empty() || !r.metric_paths.iter().any(|p| MetricSummary::covers(p))
                {
                    return r;
                }
                let key = (r.project.clone(), r.id.clone());
                let lock =
                    || self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(version) = r.version
                    && let Some((v, filled)) = lock().get(&key)
                    && *v == version
                {
                    return Arc::clone(filled);
                }
                let read = (|| {
                    let project = goodseed_core::ProjectName::parse(&r.project).ok()?;
                    let id = goodseed_core::RunId::parse(&r.id).ok()?;
                    let reader = store.open_run(&project, &id).ok()?;
                    MetricSummary::of_run(&*reader, &r.metric_paths).ok()
                })();
                let Some(metrics) = read else { return r };
                let mut filled = (*r).clone();
                filled.metrics = metrics;
                let filled = Arc::new(filled);
                if let Some(version) = r.version {
                    let mut entries = lock();
                    if entries.len() >= METRICS_CACHED {
                        entries.clear();
                    }
                    entries.insert(key, (version, Arc::clone(&filled)));
                }
                filled
            })
            .collect()
    }
}

/// Writes `GET .../summary`'s answer for a run: `summary` from the store (state and
/// tags), the rest from the run's overview ([`RunOverview`]), as `goodseed show` sees it.
pub(crate) fn summary_json(
    summary: &RunSummary,
    reader: &dyn RunReader,
) -> goodseed_store::Result<Json> {
    let m = &summary.meta;
    let configs = reader.configs()?;
    let overview = RunOverview::of(summary, &configs, reader, SystemTime::now())?;
    let mut j = Json::with_capacity(1024);
    j.begin_object();
    j.key("project").str(&summary.project);
    j.key("run_id").str(&summary.run_id);
    j.key("name").opt_str(m.name());
    j.key("status").str(m.status().unwrap_or("unknown"));
    j.key("state").str(summary.status.as_str());
    j.key("ended_by").opt_str(goodseed_store::lifecycle::ended_by(m, &summary.status).as_deref());
    j.key("created_at").opt_str(m.created_at());
    j.key("closed_at").opt_str(m.closed_at());
    j.key("duration_seconds");
    match overview.duration {
        Some(d) => j.f64(d.micros as f64 / 1e6),
        None => j.null(),
    };
    j.key("trashed").bool(m.trashed());
    j.key("tags").begin_array();
    for t in &summary.tags {
        j.str(t);
    }
    j.end_array();
    j.key("host").opt_str(overview.hosts.first().map(String::as_str));
    j.key("git");
    match &overview.git {
        None => j.null(),
        Some(git) => {
            j.begin_object();
            j.key("commit").opt_str(git.commit.as_deref());
            j.key("dirty");
            match git.dirty {
                Some(d) => j.bool(d),
                None => j.null(),
            };
            j.key("branch").opt_str(git.branch.as_deref());
            j.key("message").opt_str(git.message.as_deref());
            j.end_object()
        }
    };
    j.key("last").begin_object();
    let integer = reader.integer_steps()?;
    for (path, p) in &overview.last {
        j.key(path).begin_object().key("step");
        step(&mut j, p.step, integer);
        j.key("value").f64(p.value);
        j.key("logged_at").str(&logged_at(p.ts));
        j.end_object();
    }
    j.end_object();
    // Ours, after the fields above: every host the run ran on.
    j.key("hosts").begin_array();
    for host in &overview.hosts {
        j.str(host);
    }
    j.end_array();
    j.key("stop_requested").bool(m.get(goodseed_store::meta_key::STOP_REQUESTED_AT).is_some());
    j.key("last_write_at").opt_str(summary.last_write.map(|t| t.to_iso8601()).as_deref());
    j.end_object();
    Ok(j)
}

/// A run's summary for tests: its id, meta and configs, nothing else.
#[cfg(test)]
pub(crate) fn test_summary(
    id: &str,
    meta: std::collections::BTreeMap<String, String>,
    mut configs: Vec<(String, goodseed_core::ConfigValue)>,
) -> RunSummary {
    configs.sort_by(|a, b| a.0.cmp(&b.0));
    RunSummary {
        project: "p".into(),
        id: id.into(),
        run_id: id.into(),
        meta: goodseed_store::RunMeta(meta),
        status: goodseed_core::RunStatus::Finished,
        liveness: goodseed_core::Liveness::Unknown,
        metric_paths: vec![],
        text_paths: vec![],
        tags: vec![],
        version: None,
        location: String::new(),
        last_write: None,
        configs,
        metrics: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(i: usize) -> Arc<RunSummary> {
        Arc::new(test_summary(&format!("r{i}"), Default::default(), vec![]))
    }

    #[test]
    fn a_page_sorted_alone_is_the_start_of_the_whole_order() {
        // Keys with many ties (ties keep the runs' order), in a scrambled order.
        let runs: Vec<Arc<RunSummary>> = (0..1000).map(run).collect();
        let key = |r: &RunSummary| r.id[1..].parse::<usize>().expect("n").wrapping_mul(7919) % 37;
        let whole = sorted(&runs, None, key, |a, b| a.cmp(b));
        for upto in [0, 1, 5, 50, 999, 1000, 5000] {
            let part = sorted(&runs, Some(upto), key, |a, b| a.cmp(b));
            assert_eq!(part, whole[..upto.min(1000)], "the first {upto}");
        }
    }
}

#[cfg(test)]
mod order_cache_tests {
    use super::*;

    fn runs(n: usize) -> Vec<Arc<RunSummary>> {
        (0..n)
            .map(|i| {
                let mut meta = std::collections::BTreeMap::new();
                meta.insert("name".to_owned(), format!("trial {:04}", (i * 7919) % n));
                Arc::new(test_summary(&format!("r{i}"), meta, vec![]))
            })
            .collect()
    }

    fn query(text: &str) -> ListingQuery {
        ListingQuery::parse(&crate::query::Query::parse(text)).expect("parse").expect("ours")
    }

    #[test]
    fn pages_from_the_cache_are_the_pages_computed_afresh_and_a_change_is_seen() {
        let cache = OrderCache::default();
        let mut all = runs(5_000);
        let key = order_key(&crate::query::Query::parse("sort=name"));
        for (offset, limit) in
            [(0, 1), (0, 100), (100, 100), (950, 100), (3_000, 100), (4_990, 100)]
        {
            let q = query(&format!("sort=name&offset={offset}&limit={limit}"));
            let fresh = q.apply(all.clone());
            let cached = q.apply_cached(all.clone(), &cache, &key);
            let ids = |p: &(Vec<Arc<RunSummary>>, usize)| -> (Vec<String>, usize) {
                (p.0.iter().map(|r| r.id.clone()).collect(), p.1)
            };
            assert_eq!(ids(&cached), ids(&fresh), "offset {offset} limit {limit}");
        }
        // A run renamed is a new summary: the order is made again.
        let renamed = {
            let mut r = (*all[0]).clone();
            r.meta.0.insert("name".into(), "aaa first".into());
            Arc::new(r)
        };
        all[0] = renamed;
        let q = query("sort=name&limit=1");
        let (page, _) = q.apply_cached(all.clone(), &cache, &key);
        assert_eq!(page[0].id, "r0", "the renamed run sorts first");
    }
}
