//! Answers about closed runs, kept for reuse. A closed run's data does not change (and
//! when it does, its reader, and so its version, changes), so the same request gets
//! the same bytes: a chart reloaded, or many clients polling one finished run, costs a
//! map lookup. Bounded in bytes, least recently used out first.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

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
