//! The queue between logging threads and a run's writer thread.
//!
//! Logging calls take one uncontended mutex, append to in-memory buffers and return: no
//! allocation in the steady state (the writer hands its emptied buffers back), no
//! syscall unless the writer must be woken. The writer swaps the buffers out in O(1)
//! under the same mutex, so it holds it only for moments. When the buffers hold
//! `capacity` points, loggers wait (back-pressure), and the wait is counted in
//! [`Stats`]; nothing accepted is ever dropped.
//!
//! While the writer cannot write (a full disk, say), loggers do not wait on it forever:
//! once its writes have failed for [`FAILING_GRACE`] with nothing written, logging calls
//! are refused at once with an error (they log nothing, and are counted), until a write
//! succeeds again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use goodseed_core::{ConfigValue, FieldPath, Step};

/// How long the writer may fail to write anything before logging calls are refused
/// (and how long a logging call waits for room from a failing writer).
pub(crate) const FAILING_GRACE: Duration = Duration::from_secs(2);

/// One queued metric point. `series` indexes [`Series::paths`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetricOp {
    pub(crate) series: u32,
    pub(crate) step: Step,
    pub(crate) value: f64,
    pub(crate) ts: i64,
}

/// One queued text point.
#[derive(Debug, Clone)]
pub(crate) struct TextOp {
    pub(crate) series: u32,
    pub(crate) step: Step,
    pub(crate) value: String,
    pub(crate) ts: i64,
}

/// The series of one kind (metric or text) a run has seen: validated once, then found
/// by the text the caller passes, with their auto-increment step counters.
#[derive(Debug, Default)]
pub(crate) struct Series {
    by_text: HashMap<Box<str>, u32>,
    by_path: HashMap<FieldPath, u32>,
    pub(crate) paths: Vec<FieldPath>,
    next_auto: Vec<f64>,
    /// Points logged at or before their series' newest step: ones that may write a row
    /// again (remote mode's marks must then check what they mark).
    pub(crate) rewrites: u64,
}

impl Series {
    /// The id of a series, registering it on first use.
    pub(crate) fn id(&mut self, text: &str) -> Result<u32, goodseed_core::IdentError> {
        if let Some(&id) = self.by_text.get(text) {
            return Ok(id);
        }
        let path = FieldPath::parse(text)?;
        let id = match self.by_path.get(&path) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.paths.len()).expect("fewer than 2^32 series");
                self.by_path.insert(path.clone(), id);
                self.paths.push(path);
                self.next_auto.push(0.0);
                id
            }
        };
        self.by_text.insert(text.into(), id);
        Ok(id)
    }

    /// The step to use: the given one (which moves the counter past it, as 0.4.0 does),
    /// or the series' next auto-increment step.
    pub(crate) fn step(&mut self, id: u32, step: Option<Step>) -> Step {
        let next = &mut self.next_auto[id as usize];
        match step {
            Some(s) => {
                if s.get() + 1.0 > *next {
                    *next = s.get() + 1.0;
                } else {
                    self.rewrites += 1;
                }
                s
            }
            None => {
                let s = Step::new(*next).unwrap_or(Step::ZERO);
                *next += 1.0;
                s
            }
        }
    }

    /// Continues auto-increment steps after a resumed run's last steps.
    pub(crate) fn resume_after(
        &mut self,
        path: &str,
        last: f64,
    ) -> Result<(), goodseed_core::IdentError> {
        let id = self.id(path)?;
        let next = &mut self.next_auto[id as usize];
        *next = next.max(last + 1.0);
        Ok(())
    }
}

/// Everything the mutex guards.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) metrics: Vec<MetricOp>,
    pub(crate) texts: Vec<TextOp>,
    pub(crate) configs: Vec<(FieldPath, ConfigValue)>,
    pub(crate) meta: Vec<(String, Option<String>)>,
    /// Records of files the run's file thread copied, and changes to them.
    pub(crate) artifacts: Vec<goodseed_store::artifacts::ArtifactOp>,
    pub(crate) metric_series: Series,
    pub(crate) text_series: Series,
    /// Incremented by every logging call; `committed` catches up with it.
    pub(crate) logged: u64,
    pub(crate) committed: u64,
    /// A flush is waiting for the writer.
    pub(crate) flush_requested: bool,
    /// The writer was told to close the run, with this status.
    pub(crate) closing: Option<goodseed_store::lifecycle::EndState>,
    /// The writer finished (the run is closed, or the writer could not go on).
    pub(crate) writer_done: bool,
    /// How the writer closed the run: the end asked for, or `Stopped` for a run asked
    /// to stop that was finished.
    pub(crate) ended: Option<goodseed_store::lifecycle::EndState>,
    /// The writer's last error, while it persists.
    pub(crate) writer_error: Option<String>,
    /// When the writer's writes started failing with nothing written since; `None` once
    /// a write succeeds.
    pub(crate) failing_since: Option<Instant>,
    /// How many times the writer found it could write nothing (its smallest transaction
    /// failed).
    pub(crate) stalls: u64,
    /// Set once the writer has been woken for the current backlog.
    pub(crate) writer_woken: bool,
    /// Remote mode: batches the server confirmed, for the writer thread to mark uploaded
    /// between its transactions (so marks never wait for the writer's lock).
    /// Each with the [`Shared::rewrite_epoch`] seen before the rows were read.
    pub(crate) marks: Vec<(goodseed_store::uploads::Pending, u64)>,
}

impl State {
    /// Points waiting for the writer.
    pub(crate) fn queued(&self) -> usize {
        self.metrics.len() + self.texts.len()
    }
}

/// Counters a run exposes through [`crate::Run::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) points_logged: AtomicU64,
    pub(crate) points_written: AtomicU64,
    pub(crate) batches_written: AtomicU64,
    pub(crate) backpressure_waits: AtomicU64,
    pub(crate) backpressure_nanos: AtomicU64,
    pub(crate) write_errors: AtomicU64,
    pub(crate) points_refused: AtomicU64,
    pub(crate) monitoring_samples_dropped: AtomicU64,
    pub(crate) console_lines_dropped: AtomicU64,
    pub(crate) rows_uploaded: AtomicU64,
    pub(crate) upload_errors: AtomicU64,
}

/// A snapshot of a run's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Metric and text points accepted by logging calls.
    pub points_logged: u64,
    /// Points committed to the run file.
    pub points_written: u64,
    /// Transactions the writer committed.
    pub batches_written: u64,
    /// Logging calls that had to wait because the queue was full.
    pub backpressure_waits: u64,
    /// Total time logging calls spent waiting for room in the queue.
    pub backpressure_wait: Duration,
    /// Failed write attempts (each retried).
    pub write_errors: u64,
    /// Points of logging calls refused with [`crate::SdkError::Writer`] because the
    /// writer had been failing for a while (a full disk): never written.
    pub points_refused: u64,
    /// Hardware samples dropped because the queue was full (the sampler never waits).
    pub monitoring_samples_dropped: u64,
    /// Console lines dropped because the queue and the capture's own buffer were full.
    pub console_lines_dropped: u64,
    /// Rows (configs and points) a remote server confirmed (remote mode).
    pub rows_uploaded: u64,
    /// Upload attempts that failed and wait for a retry (remote mode).
    pub upload_errors: u64,
}

/// The state shared by a run's handles and its writer thread.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// The writer waits here for work.
    pub(crate) work: Condvar,
    /// Loggers wait here for room, and flushes for their commit.
    pub(crate) progress: Condvar,
    pub(crate) counters: Counters,
    /// Set by the writer thread once it sees `stop_requested_at` in the run file; read
    /// by [`crate::Run::should_stop`] without taking the lock.
    pub(crate) stop_requested: AtomicBool,
    /// Moves before and after the writer writes points that may write a row again
    /// (a step logged twice): a mark of rows read while it stood still needs no check.
    pub(crate) rewrite_epoch: AtomicU64,
    /// Points in the queue that make the writer start a transaction at once.
    pub(crate) batch_points: usize,
    /// Points in the queue at which loggers wait.
    pub(crate) capacity: usize,
}

impl Shared {
    pub(crate) fn new(capacity: usize, state: State) -> Shared {
        let capacity = capacity.max(1);
        Shared {
            state: Mutex::new(state),
            work: Condvar::new(),
            progress: Condvar::new(),
            counters: Counters::default(),
            stop_requested: AtomicBool::new(false),
            rewrite_epoch: AtomicU64::new(0),
            batch_points: (capacity / 4).clamp(1, 50_000),
            capacity,
        }
    }

    /// Locks the state. A panic while holding the lock leaves the buffers consistent
    /// (every push is a single step), so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the queue has room for `incoming` more points (or the writer is
    /// gone), counting the wait. Returns the guard, or gives it back as an error when
    /// the writer has been failing for [`FAILING_GRACE`] (then the caller logs nothing).
    pub(crate) fn wait_for_room<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        incoming: usize,
    ) -> Result<MutexGuard<'a, State>, MutexGuard<'a, State>> {
        if self.refusing(&state) {
            return Err(state);
        }
        if state.queued() + incoming <= self.capacity || state.queued() == 0 {
            return Ok(state);
        }
        let start = Instant::now();
        self.counters.backpressure_waits.fetch_add(1, Ordering::Relaxed);
        let mut refused = false;
        while state.queued() + incoming > self.capacity && state.queued() > 0 && !state.writer_done
        {
            self.work.notify_one();
            state.writer_woken = true;
            state = match state.failing_since {
                // A failing writer may never make room: wait until the grace is over.
                Some(since) => {
                    let left = FAILING_GRACE.saturating_sub(since.elapsed());
                    if left.is_zero() {
                        refused = true;
                        break;
                    }
                    self.progress
                        .wait_timeout(state, left)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0)
                }
                None => self.progress.wait(state).unwrap_or_else(PoisonError::into_inner),
            };
        }
        let waited = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.counters.backpressure_nanos.fetch_add(waited, Ordering::Relaxed);
        if refused { Err(state) } else { Ok(state) }
    }

    /// Whether logging calls are refused now: the writer has written nothing for
    /// [`FAILING_GRACE`] while its writes fail. Costs a branch while writes succeed.
    pub(crate) fn refusing(&self, state: &State) -> bool {
        state.failing_since.is_some_and(|since| since.elapsed() >= FAILING_GRACE)
    }

    /// Counts the points of a refused logging call.
    pub(crate) fn refused(&self, points: usize) {
        self.counters.points_refused.fetch_add(points as u64, Ordering::Relaxed);
    }

    /// Called after a logging call appended: wakes the writer once the backlog is worth
    /// a transaction (a syscall only then, not on every call).
    pub(crate) fn after_append(&self, state: &mut State, points: usize) {
        state.logged += 1;
        self.counters.points_logged.fetch_add(points as u64, Ordering::Relaxed);
        if !state.writer_woken && state.queued() >= self.batch_points {
            state.writer_woken = true;
            self.work.notify_one();
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            points_logged: c.points_logged.load(Ordering::Relaxed),
            points_written: c.points_written.load(Ordering::Relaxed),
            batches_written: c.batches_written.load(Ordering::Relaxed),
            backpressure_waits: c.backpressure_waits.load(Ordering::Relaxed),
            backpressure_wait: Duration::from_nanos(c.backpressure_nanos.load(Ordering::Relaxed)),
            write_errors: c.write_errors.load(Ordering::Relaxed),
            points_refused: c.points_refused.load(Ordering::Relaxed),
            monitoring_samples_dropped: c.monitoring_samples_dropped.load(Ordering::Relaxed),
            console_lines_dropped: c.console_lines_dropped.load(Ordering::Relaxed),
            rows_uploaded: c.rows_uploaded.load(Ordering::Relaxed),
            upload_errors: c.upload_errors.load(Ordering::Relaxed),
        }
    }
}
