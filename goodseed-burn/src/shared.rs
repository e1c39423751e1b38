//! What a logger and the checkpointers made from it share: the run, how logging errors
//! are reported (never by panicking: training goes on), the interrupter a stop request
//! is forwarded to, and each epoch's final values, which a checkpoint is registered with.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use burn::train::Interrupter;
use goodseed_sdk::{Run, SdkError};

/// The reason given to burn's interrupter when the run is asked to stop.
pub(crate) const STOP_REASON: &str = "stop requested in goodseed";

pub(crate) struct Shared {
    pub(crate) run: Run,
    /// Logging calls that failed.
    errors: AtomicU64,
    /// Whether a closed run was said once (everything after it fails the same way).
    said_closed: AtomicBool,
    /// Whether another failure was said once.
    said_other: AtomicBool,
    interrupter: Mutex<Option<Interrupter>>,
    stop_forwarded: AtomicBool,
    /// Whether a metric logger feeds `epochs` (then a checkpoint waits for its epoch).
    pub(crate) fed: AtomicBool,
    epochs: Mutex<Epochs>,
    epoch_ended: Condvar,
}

/// Each epoch's final values (`valid/loss` → 0.21) and the splits whose epoch ended.
#[derive(Debug, Default)]
struct Epochs {
    finals: BTreeMap<usize, BTreeMap<String, f64>>,
    ended: BTreeMap<usize, BTreeSet<String>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("run", &self.run)
            .field("errors", &self.errors)
            .field("stop_forwarded", &self.stop_forwarded)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(run: &Run) -> Shared {
        Shared {
            run: run.clone(),
            errors: AtomicU64::new(0),
            said_closed: AtomicBool::new(false),
            said_other: AtomicBool::new(false),
            interrupter: Mutex::new(None),
            stop_forwarded: AtomicBool::new(false),
            fed: AtomicBool::new(false),
            epochs: Mutex::new(Epochs::default()),
            epoch_ended: Condvar::new(),
        }
    }

    /// Counts a failed logging call and says it through `log` the first time (a closed
    /// run once, any other failure once), never more: a hot loop must not flood the log.
    pub(crate) fn report(&self, what: &str, result: goodseed_sdk::Result<()>) {
        let Err(error) = result else { return };
        self.errors.fetch_add(1, Ordering::Relaxed);
        let said = match error {
            SdkError::Closed { .. } => &self.said_closed,
            _ => &self.said_other,
        };
        if !said.swap(true, Ordering::Relaxed) {
            log::error!(
                "goodseed: could not log {what} into run {}: {error} (training goes on; \
                 later failures are counted, not repeated)",
                self.run.run_id()
            );
        }
    }

    pub(crate) fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    pub(crate) fn set_interrupter(&self, interrupter: Interrupter) {
        *self.interrupter.lock().unwrap_or_else(PoisonError::into_inner) = Some(interrupter);
        self.forward_stop();
    }

    /// Stops burn's training through the interrupter once the run is asked to stop.
    pub(crate) fn forward_stop(&self) {
        if self.stop_forwarded.load(Ordering::Relaxed) || !self.run.should_stop() {
            return;
        }
        let interrupter = self.interrupter.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(interrupter) = interrupter.as_ref()
            && !self.stop_forwarded.swap(true, Ordering::Relaxed)
        {
            log::info!("goodseed: run {} was asked to stop; stopping training", self.run.run_id());
            interrupter.stop(Some(STOP_REASON));
        }
    }

    pub(crate) fn record_final(&self, epoch: usize, path: String, value: f64) {
        let mut epochs = self.epochs.lock().unwrap_or_else(PoisonError::into_inner);
        epochs.finals.entry(epoch).or_default().insert(path, value);
    }

    pub(crate) fn end_epoch(&self, epoch: usize, prefix: &str) {
        let mut epochs = self.epochs.lock().unwrap_or_else(PoisonError::into_inner);
        epochs.ended.entry(epoch).or_default().insert(prefix.to_owned());
        self.epoch_ended.notify_all();
    }

    /// The final values of `epoch`, once its validation split ended (burn checkpoints
    /// after it). The logger runs on burn's event thread, the checkpointer on its own:
    /// wait for the logger for at most `patience` when a logger feeds this, else take
    /// what is there.
    pub(crate) fn finals(&self, epoch: usize, patience: Duration) -> BTreeMap<String, f64> {
        let deadline = Instant::now() + patience;
        let mut epochs = self.epochs.lock().unwrap_or_else(PoisonError::into_inner);
        while self.fed.load(Ordering::Relaxed)
            && !epochs.ended.get(&epoch).is_some_and(|s| s.contains("valid"))
        {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            epochs = self
                .epoch_ended
                .wait_timeout(epochs, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        epochs.finals.get(&epoch).cloned().unwrap_or_default()
    }
}
