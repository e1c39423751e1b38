//! Changes to a store's runs, told by a store that can tell them as they commit, whoever
//! made them ([`crate::RunStore::watch`]): the PostgreSQL store hears every server's
//! commits through the database's `LISTEN`/`NOTIFY`. A store that cannot tell (run files,
//! which other processes write without telling anyone) has no feed, and its watchers
//! look for changes themselves.
//!
//! A [`ChangeFeed`] coalesces: a watcher that takes changes every so often gets each
//! changed run once, however many times it changed, and memory stays bounded however
//! long it does not take them (past [`MAX_PENDING`] runs the feed says "everything").
//!
//! ```
//! use std::time::Duration;
//! use goodseed_core::{ProjectName, RunId, RunRef};
//! use goodseed_store::changes::{ChangeFeed, Changes};
//!
//! let feed = ChangeFeed::new();
//! let run = RunRef { project: ProjectName::parse("team/p")?, run_id: RunId::parse("calm-otter")? };
//! feed.changed(run.clone());
//! feed.changed(run.clone());
//! assert_eq!(feed.wait(Duration::ZERO), Changes::Runs([run].into()));
//! assert_eq!(feed.wait(Duration::from_millis(1)), Changes::Runs(Default::default()));
//! feed.lost();
//! assert_eq!(feed.wait(Duration::ZERO), Changes::Everything);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use goodseed_core::RunRef;

/// The most changed runs a feed keeps apart; past that it says [`Changes::Everything`].
pub const MAX_PENDING: usize = 10_000;

/// What changed since a watcher last took changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    /// These runs were created, written, closed, trashed, restored, asked to stop or
    /// deleted (none: nothing changed while the watcher waited).
    Runs(HashSet<RunRef>),
    /// Anything may have changed: the feed was interrupted (its database connection was
    /// lost and made again), or too many runs changed to keep apart.
    Everything,
}

#[derive(Debug, Default)]
struct Pending {
    runs: HashSet<RunRef>,
    everything: bool,
}

#[derive(Debug, Default)]
struct Inner {
    pending: Mutex<Pending>,
    wake: Condvar,
}

/// One watcher's feed of changes: the store adds to it, the watcher takes from it.
/// Clones share the feed.
#[derive(Debug, Clone, Default)]
pub struct ChangeFeed {
    inner: Arc<Inner>,
}

impl ChangeFeed {
    /// An empty feed.
    pub fn new() -> ChangeFeed {
        ChangeFeed::default()
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.inner.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The store's side: `run` changed.
    pub fn changed(&self, run: RunRef) {
        let mut pending = self.pending();
        if !pending.everything {
            pending.runs.insert(run);
            if pending.runs.len() > MAX_PENDING {
                pending.runs = HashSet::new();
                pending.everything = true;
            }
        }
        drop(pending);
        self.inner.wake.notify_all();
    }

    /// The store's side: changes may have been missed.
    pub fn lost(&self) {
        let mut pending = self.pending();
        pending.runs = HashSet::new();
        pending.everything = true;
        drop(pending);
        self.inner.wake.notify_all();
    }

    /// The watcher's side: waits up to `timeout` for a change, then takes every change
    /// since the last call (an empty [`Changes::Runs`] when none came).
    pub fn wait(&self, timeout: Duration) -> Changes {
        let deadline = Instant::now() + timeout;
        let mut pending = self.pending();
        while !pending.everything && pending.runs.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            pending = self
                .inner
                .wake
                .wait_timeout(pending, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let taken = std::mem::take(&mut *pending);
        if taken.everything { Changes::Everything } else { Changes::Runs(taken.runs) }
    }

    /// Whether only the store still holds the feed (its watcher dropped every clone).
    pub fn abandoned(&self) -> bool {
        Arc::strong_count(&self.inner) == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use goodseed_core::{ProjectName, RunId};

    fn run(i: usize) -> RunRef {
        RunRef {
            project: ProjectName::parse("p").expect("project"),
            run_id: RunId::parse(&format!("r-{i}")).expect("run"),
        }
    }

    #[test]
    fn a_waiting_watcher_wakes_on_the_first_change_from_another_thread() {
        let feed = ChangeFeed::new();
        let store_side = feed.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            store_side.changed(run(1));
        });
        // Generous: the wait ends when the change comes, not at the timeout.
        assert_eq!(feed.wait(Duration::from_secs(60)), Changes::Runs([run(1)].into()));
        t.join().expect("thread");
    }

    #[test]
    fn too_many_runs_become_everything_and_memory_stays_bounded() {
        let feed = ChangeFeed::new();
        for i in 0..=MAX_PENDING {
            feed.changed(run(i));
        }
        assert_eq!(feed.pending().runs.len(), 0);
        feed.changed(run(1));
        assert_eq!(feed.wait(Duration::ZERO), Changes::Everything);
        assert_eq!(feed.wait(Duration::ZERO), Changes::Runs(HashSet::new()));
    }

    #[test]
    fn a_feed_knows_when_its_watcher_is_gone() {
        let feed = ChangeFeed::new();
        let watcher = feed.clone();
        assert!(!feed.abandoned());
        drop(watcher);
        assert!(feed.abandoned());
    }
}
