//! Answers about closed runs, kept for reuse. A closed run's data does not change (and
//! when it does, its reader, and so its version, changes), so the same request gets
//! the same bytes: a chart reloaded, or many clients polling one finished run, costs a
//! map lookup. Bounded in bytes, least recently used out first.
//!
//! [`ListingCache`] does the same for run listings, whose summaries the store hands out
//! unchanged while their runs do not change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use goodseed_store::RunSummary;

/// Total bytes kept.
const BUDGET: usize = 64 * 1024 * 1024;
/// Answers larger than this are not kept (a full million-point series is streamed).
pub(crate) const MAX_ENTRY: usize = 8 * 1024 * 1024;

/// What identifies an answer: the run, its version, and the request target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) project: String,
    pub(crate) run: String,
    pub(crate) version: goodseed_store::RunVersion,
    pub(crate) target: String,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, (Bytes, u64)>,
    bytes: usize,
    clock: u64,
}

/// The cache.
#[derive(Debug, Default)]
pub(crate) struct ResponseCache {
    inner: Mutex<Inner>,
}

impl ResponseCache {
    pub(crate) fn get(&self, key: &Key) -> Option<Bytes> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.clock += 1;
        let clock = inner.clock;
        let (body, used) = inner.entries.get_mut(key)?;
        *used = clock;
        Some(body.clone())
    }

    pub(crate) fn put(&self, key: Key, body: Bytes) {
        if body.len() > MAX_ENTRY {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.clock += 1;
        let clock = inner.clock;
        inner.bytes += body.len();
        if let Some((old, _)) = inner.entries.insert(key, (body, clock)) {
            inner.bytes -= old.len();
        }
        while inner.bytes > BUDGET {
            let Some(oldest) =
                inner.entries.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((gone, _)) = inner.entries.remove(&oldest) {
                inner.bytes -= gone.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str) -> Arc<RunSummary> {
        Arc::new(RunSummary {
            project: "p".into(),
            id: id.into(),
            run_id: id.into(),
            meta: goodseed_store::RunMeta::default(),
            status: goodseed_core::RunStatus::Finished,
            liveness: goodseed_core::Liveness::Unknown,
            metric_paths: Vec::new(),
            text_paths: Vec::new(),
            tags: Vec::new(),
            version: None,
            location: id.into(),
            last_write: None,
            configs: Vec::new(),
            metrics: Vec::new(),
        })
    }

    #[test]
    fn a_listing_is_reused_only_for_the_same_summaries_query_and_total() {
        let cache = ListingCache::default();
        let (a, b) = (summary("a"), summary("b"));
        let runs = vec![Arc::clone(&a), Arc::clone(&b)];
        cache.put("", runs.clone(), None, Bytes::from_static(b"one"));
        assert_eq!(cache.get("", &runs, None).as_deref(), Some(&b"one"[..]));
        // An equal summary in a new `Arc` is a run that changed (or may have).
        let changed = vec![Arc::clone(&a), summary("b")];
        assert_eq!(cache.get("", &changed, None), None);
        assert_eq!(cache.get("", &runs[..1], None), None);
        assert_eq!(cache.get("limit=1", &runs, None), None);
        assert_eq!(cache.get("", &runs, Some(2)), None);
        // A query's new answer replaces its old one; few queries are kept.
        cache.put("", changed.clone(), None, Bytes::from_static(b"two"));
        assert_eq!(cache.get("", &runs, None), None);
        for q in ["a", "b", "c", "d"] {
            cache.put(q, runs.clone(), None, Bytes::from_static(b"x"));
        }
        assert_eq!(cache.get("", &changed, None), None, "the oldest query went");
        assert!(cache.get("d", &runs, None).is_some());
    }

    fn key(target: &str) -> Key {
        Key {
            project: "p".into(),
            run: "r".into(),
            version: goodseed_store::RunVersion(1),
            target: target.into(),
        }
    }

    #[test]
    fn keeps_answers_within_budget() {
        let cache = ResponseCache::default();
        cache.put(key("a"), Bytes::from_static(b"A"));
        assert_eq!(cache.get(&key("a")), Some(Bytes::from_static(b"A")));
        assert_eq!(
            cache.get(&Key { version: goodseed_store::RunVersion(2), ..key("a") }),
            None,
            "a new version misses"
        );
        cache.put(key("big"), Bytes::from(vec![0; MAX_ENTRY + 1]));
        assert_eq!(cache.get(&key("big")), None, "oversized answers are not kept");
        for i in 0..10 {
            cache.put(key(&i.to_string()), Bytes::from(vec![0; MAX_ENTRY]));
        }
        let kept = (0..10).filter(|i| cache.get(&key(&i.to_string())).is_some()).count();
        assert_eq!(kept, BUDGET / MAX_ENTRY, "least recently used out first");
        assert_eq!(cache.get(&key("a")), None);
    }
}

/// The last run listings answered, by query: the summaries they were made of (the
/// store hands out the same `Arc` while a run and its liveness did not move, and the
/// `Arc`s kept here cannot be freed and their addresses reused) and the bytes. A listing
/// of the same summaries is answered with the same bytes without encoding them again:
/// for 10,000 runs that is most of the work.
#[derive(Debug, Default)]
pub(crate) struct ListingCache {
    entries: Mutex<Vec<ListingEntry>>,
}

#[derive(Debug)]
struct ListingEntry {
    query: String,
    runs: Vec<Arc<RunSummary>>,
    total: Option<usize>,
    body: Bytes,
}

/// Listings kept (one per distinct query: the UI asks a few).
const LISTINGS: usize = 4;
/// Listings larger than this are not kept (100,000 runs take about 40 MiB).
const MAX_LISTING: usize = 64 * 1024 * 1024;
/// The most bytes all kept listings take together; the oldest go first.
const LISTINGS_BUDGET: usize = 96 * 1024 * 1024;

impl ListingCache {
    /// The bytes answered before for the same query, summaries and total.
    pub(crate) fn get(
        &self,
        query: &str,
        runs: &[Arc<RunSummary>],
        total: Option<usize>,
    ) -> Option<Bytes> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .find(|e| {
                e.query == query
                    && e.total == total
                    && e.runs.len() == runs.len()
                    && e.runs.iter().zip(runs).all(|(a, b)| Arc::ptr_eq(a, b))
            })
            .map(|e| e.body.clone())
    }

    /// Keeps an answer, replacing the query's last one (and the oldest query's beyond
    /// [`LISTINGS`]).
    pub(crate) fn put(
        &self,
        query: &str,
        runs: Vec<Arc<RunSummary>>,
        total: Option<usize>,
        body: Bytes,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|e| e.query != query);
        if body.len() > MAX_LISTING {
            return;
        }
        while !entries.is_empty()
            && (entries.len() >= LISTINGS
                || entries.iter().map(|e| e.body.len()).sum::<usize>() + body.len()
                    > LISTINGS_BUDGET)
        {
            entries.remove(0);
        }
        entries.push(ListingEntry { query: query.to_owned(), runs, total, body });
    }
}
