//! A run's writer thread: drains the queue into transactions through the store, keeps
//! the heartbeat, and closes the run.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use goodseed_core::FieldPath;
use goodseed_store::lifecycle::{self, EndState};
use goodseed_store::uploads::{Pending, RunUploads};
use goodseed_store::{RunWriter, SeriesRef, WriteBatch, meta_key};

use crate::queue::{MetricOp, Shared, TextOp};

/// How the writer paces itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Queued data is committed at least this often.
    pub(crate) flush_interval: Duration,
    /// `heartbeat_at` is refreshed this often.
    pub(crate) heartbeat_interval: Duration,
}

/// How often the writer reads `stop_requested_at` (one indexed read) until it sees it.
const STOP_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// Starts the writer thread of a run. `marker` (remote mode) marks the rows the server
/// confirmed, between the writer's transactions.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    writer: Box<dyn RunWriter>,
    pace: Pace,
    run_id: &str,
    marker: Option<Box<dyn RunUploads>>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(format!("goodseed-writer-{run_id}")).spawn(move || {
        let mut thread = WriterThread::new(shared, writer, pace);
        thread.marker = marker;
        thread.run();
    })
}

struct WriterThread {
    shared: Arc<Shared>,
    writer: Box<dyn RunWriter>,
    pace: Pace,
    batch: WriteBatch,
    /// Buffers swapped with the queue's.
    metrics: Vec<MetricOp>,
    texts: Vec<TextOp>,
    /// The series paths known so far, by id, and their reference in the current batch.
    metric_paths: Vec<FieldPath>,
    metric_refs: Vec<Option<SeriesRef>>,
    text_paths: Vec<FieldPath>,
    text_refs: Vec<Option<SeriesRef>>,
    /// Points in the batch (kept across failed attempts).
    batch_points: u64,
    /// The logging sequence number the batch covers.
    taken: u64,
    last_commit: Instant,
    last_heartbeat: Instant,
    /// When `stop_requested_at` was last read; `None` once a stop request was seen
    /// (there is nothing more to learn).
    last_stop_check: Option<Instant>,
    failures: u32,
    /// Remote mode: marks confirmed rows uploaded.
    marker: Option<Box<dyn RunUploads>>,
    marks: Vec<Pending>,
}

impl WriterThread {
    fn new(shared: Arc<Shared>, writer: Box<dyn RunWriter>, pace: Pace) -> WriterThread {
        WriterThread {
            shared,
            writer,
            pace,
            batch: WriteBatch::new(),
            metrics: Vec::new(),
            texts: Vec::new(),
            metric_paths: Vec::new(),
            metric_refs: Vec::new(),
            text_paths: Vec::new(),
            text_refs: Vec::new(),
            batch_points: 0,
            taken: 0,
            last_commit: Instant::now(),
            last_heartbeat: Instant::now(),
            last_stop_check: Some(Instant::now()),
            failures: 0,
            marker: None,
            marks: Vec::new(),
        }
    }

    /// Marks what the server confirmed (remote mode). A mark that fails leaves its rows
    /// pending: the sync finds and sends them again.
    fn mark(&mut self) {
        if let Some(marker) = self.marker.as_mut() {
            for batch in self.marks.drain(..) {
                let _ = marker.mark_uploaded(&batch);
            }
        }
        self.marks.clear();
    }

    fn run(mut self) {
        loop {
            let (seq, closing) = self.take_work();
            if self.last_heartbeat.elapsed() >= self.pace.heartbeat_interval || closing.is_some() {
                lifecycle::heartbeat(&mut self.batch, &lifecycle::now_iso());
                self.last_heartbeat = Instant::now();
                if closing.is_none() {
                    self.check_stop();
                }
            } else if self.until_stop_check() == Some(Duration::ZERO) {
                // A busy writer never waits in `take_work`: check here, between commits.
                self.check_stop();
            }
            if let Some(end) = closing {
                lifecycle::closed(&mut self.batch, end, &lifecycle::now_iso());
            }
            if self.commit(seq) {
                self.mark();
                if closing.is_some() {
                    let closed = self.writer.close();
                    self.finish(closed.err().map(|e| e.to_string()));
                    return;
                }
            } else if closing.is_some() && self.failures >= 5 {
                // Give up: the run cannot be written. Keep the error for the caller.
                let _ = self.writer.close();
                let lost = self.batch_points;
                let message = self.shared.lock().writer_error.clone().unwrap_or_default();
                self.finish(Some(format!("{message} ({lost} points could not be written)")));
                return;
            } else {
                // Back off before retrying; new data keeps queueing meanwhile.
                let backoff = Duration::from_millis(50 << self.failures.min(6));
                std::thread::sleep(backoff);
            }
        }
    }

    /// Waits for something to write, then moves it out of the queue into the batch.
    /// Returns the logging sequence number covered and whether the run is closing.
    fn take_work(&mut self) -> (u64, Option<EndState>) {
        let shared = Arc::clone(&self.shared);
        let mut st = shared.lock();
        loop {
            let has_data = st.queued() > 0 || !st.configs.is_empty() || !st.meta.is_empty();
            if !st.marks.is_empty() {
                self.marks.append(&mut st.marks);
                break;
            }
            let due = self.last_commit.elapsed() >= self.pace.flush_interval;
            let beat_due = self.last_heartbeat.elapsed() >= self.pace.heartbeat_interval;
            if st.closing.is_some()
                || st.flush_requested
                || st.queued() >= shared.batch_points
                || (has_data && due)
                || beat_due
                || self.failures > 0
            {
                break;
            }
            let until_stop = self.until_stop_check();
            if until_stop == Some(Duration::ZERO) {
                // Read the run file without holding the queue's lock, then look again.
                drop(st);
                self.check_stop();
                st = shared.lock();
                continue;
            }
            let until_flush = self.pace.flush_interval.saturating_sub(self.last_commit.elapsed());
            let until_beat =
                self.pace.heartbeat_interval.saturating_sub(self.last_heartbeat.elapsed());
            let wait = if has_data { until_flush.min(until_beat) } else { until_beat };
            // Waking to check for a stop request does not commit: only the check runs.
            let wait = until_stop.map_or(wait, |s| wait.min(s));
            st = shared
                .work
                .wait_timeout(st, wait.max(Duration::from_millis(1)))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        // While writes fail, the batch waiting for its retry keeps growing with each
        // look at the queue; once it holds a queue's worth, leave new points queued, so
        // loggers meet back-pressure instead of the process growing without bound.
        if self.failures > 0 && st.closing.is_none() && self.batch_points >= shared.capacity as u64
        {
            return (self.taken, None);
        }
        std::mem::swap(&mut st.metrics, &mut self.metrics);
        std::mem::swap(&mut st.texts, &mut self.texts);
        let configs = std::mem::take(&mut st.configs);
        let meta = std::mem::take(&mut st.meta);
        self.metric_paths.extend_from_slice(&st.metric_series.paths[self.metric_paths.len()..]);
        self.text_paths.extend_from_slice(&st.text_series.paths[self.text_paths.len()..]);
        st.flush_requested = false;
        st.writer_woken = false;
        let seq = st.logged;
        self.taken = seq;
        let closing = st.closing;
        drop(st);
        shared.progress.notify_all();

        self.metric_refs.resize(self.metric_paths.len(), None);
        self.text_refs.resize(self.text_paths.len(), None);
        for (key, value) in meta {
            match value {
                Some(v) => self.batch.set_meta(&key, v),
                None => self.batch.delete_meta(&key),
            }
        }
        for (path, value) in configs {
            self.batch.config(path, value);
        }
        self.batch_points += (self.metrics.len() + self.texts.len()) as u64;
        for m in self.metrics.drain(..) {
            let i = m.series as usize;
            let r = *self.metric_refs[i]
                .get_or_insert_with(|| self.batch.metric_series(&self.metric_paths[i]));
            self.batch.metric(r, m.step, m.value, m.ts);
        }
        for t in self.texts.drain(..) {
            let i = t.series as usize;
            let r = *self.text_refs[i]
                .get_or_insert_with(|| self.batch.text_series(&self.text_paths[i]));
            self.batch.text(r, t.step, t.value, t.ts);
        }
        (seq, closing)
    }

    /// Time left until the next read of `stop_requested_at`; `None` once a request was
    /// seen.
    fn until_stop_check(&self) -> Option<Duration> {
        self.last_stop_check.map(|t| STOP_CHECK_INTERVAL.saturating_sub(t.elapsed()))
    }

    /// Reads `stop_requested_at` through the writer's connection and raises the run's
    /// flag once it is there. A failed read (the file busy, say) is retried next time.
    fn check_stop(&mut self) {
        if self.last_stop_check.is_none() {
            return;
        }
        if let Ok(Some(_)) = self.writer.meta(meta_key::STOP_REQUESTED_AT) {
            self.shared.stop_requested.store(true, Ordering::Relaxed);
            self.last_stop_check = None;
        } else {
            self.last_stop_check = Some(Instant::now());
        }
    }

    /// Writes the batch. On success everything logged up to `seq` is committed.
    fn commit(&mut self, seq: u64) -> bool {
        let result = if self.batch.is_empty() { Ok(()) } else { self.writer.write(&self.batch) };
        let counters = &self.shared.counters;
        match result {
            Ok(()) => {
                if !self.batch.is_empty() {
                    counters.points_written.fetch_add(self.batch_points, Ordering::Relaxed);
                    counters.batches_written.fetch_add(1, Ordering::Relaxed);
                }
                self.batch.clear();
                self.batch_points = 0;
                self.metric_refs.fill(None);
                self.text_refs.fill(None);
                self.failures = 0;
                self.last_commit = Instant::now();
                let mut st = self.shared.lock();
                st.committed = st.committed.max(seq);
                st.writer_error = None;
                drop(st);
                self.shared.progress.notify_all();
                true
            }
            Err(e) => {
                counters.write_errors.fetch_add(1, Ordering::Relaxed);
                self.failures += 1;
                self.shared.lock().writer_error = Some(e.to_string());
                self.shared.progress.notify_all();
                false
            }
        }
    }

    fn finish(&self, error: Option<String>) {
        let mut st = self.shared.lock();
        st.writer_done = true;
        if error.is_some() {
            st.writer_error = error;
        }
        drop(st);
        self.shared.progress.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use goodseed_core::{ConfigValue, FieldPath, ProjectName, RunId};
    use goodseed_store::{LastSteps, RunWriter, StoreError, WriteBatch};

    use super::{Pace, spawn};
    use crate::queue::{Shared, State};
    use crate::run::{Inner, Live};
    use crate::{Run, SdkError};

    /// A store writer that fails while `failing` is set (a full disk, say).
    #[derive(Debug)]
    struct Flaky {
        failing: Arc<AtomicBool>,
        written: Arc<AtomicUsize>,
    }

    impl RunWriter for Flaky {
        fn write(&mut self, batch: &WriteBatch) -> goodseed_store::Result<()> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(StoreError::Database {
                    location: "flaky.sqlite".to_owned(),
                    message: "database or disk is full".to_owned(),
                    busy: false,
                });
            }
            self.written.fetch_add(batch.metric_len(), Ordering::SeqCst);
            Ok(())
        }
        fn config(&self, _: &FieldPath) -> goodseed_store::Result<Option<ConfigValue>> {
            Ok(None)
        }
        fn last_steps(&self) -> goodseed_store::Result<LastSteps> {
            Ok(LastSteps::new())
        }
        fn meta(&self, _: &str) -> goodseed_store::Result<Option<String>> {
            Ok(None)
        }
        fn location(&self) -> &str {
            "flaky.sqlite"
        }
        fn close(&mut self) -> goodseed_store::Result<()> {
            Ok(())
        }
        fn release(&mut self) -> goodseed_store::Result<()> {
            Ok(())
        }
    }

    use std::sync::atomic::Ordering;

    fn flaky_run(capacity: usize) -> (Run, Arc<AtomicBool>, Arc<AtomicUsize>) {
        let failing = Arc::new(AtomicBool::new(true));
        let written = Arc::new(AtomicUsize::new(0));
        let writer = Flaky { failing: Arc::clone(&failing), written: Arc::clone(&written) };
        let shared = Arc::new(Shared::new(capacity, State::default()));
        let pace = Pace {
            flush_interval: Duration::from_millis(10),
            heartbeat_interval: Duration::from_secs(3600),
        };
        let thread =
            spawn(Arc::clone(&shared), Box::new(writer), pace, "flaky", None).expect("spawn");
        let run = Run::from_inner(Inner {
            run_id: RunId::parse("flaky").expect("id"),
            project: ProjectName::parse("p").expect("project"),
            live: Some(Live {
                shared,
                thread: Mutex::new(Some(thread)),
                location: "flaky.sqlite".to_owned(),
                tags: Mutex::new(BTreeSet::new()),
                monitor: Mutex::new(None),
                sync: None,
            }),
        });
        (run, failing, written)
    }

    #[test]
    fn a_failing_store_applies_backpressure_and_loses_nothing() {
        let (run, failing, written) = flaky_run(100);
        let logger = {
            let run = run.clone();
            std::thread::spawn(move || {
                for step in 0..1_000u32 {
                    run.log_metric("x", step, 1.0).expect("logging waits, it does not fail");
                }
            })
        };
        // The store fails: the writer holds one queue's worth for its retry, the queue
        // fills, and the logger waits instead of memory growing.
        let deadline = Instant::now() + Duration::from_secs(10);
        while run.stats().backpressure_waits == 0 {
            assert!(Instant::now() < deadline, "no back-pressure: {:?}", run.stats());
            std::thread::sleep(Duration::from_millis(10));
        }
        // The writer stops taking once its retry batch holds a queue's worth (so up to
        // twice the capacity, the last take included) and the queue holds the third.
        // Counted in the writer's attempts, not in time: after two more failed attempts
        // it holds what it will hold, and two attempts later nothing has grown.
        let after_errors = |n: u64| {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let stats = run.stats();
                if stats.write_errors >= n {
                    return stats;
                }
                assert!(Instant::now() < deadline, "the writer stopped retrying: {stats:?}");
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        let stuck = after_errors(run.stats().write_errors + 2);
        let later = after_errors(stuck.write_errors + 2);
        assert_eq!(later.points_logged, stuck.points_logged, "nothing grows while failing");
        assert!(stuck.points_logged <= 3 * 100 + 1, "bounded while failing: {stuck:?}");
        assert!(later.write_errors > 0);
        let err = run.flush().expect_err("flush reports the failure");
        assert!(matches!(err, SdkError::Writer { .. }), "{err}");
        assert!(err.to_string().contains("disk is full"), "{err}");

        // The disk frees up: everything logged is written, nothing lost.
        failing.store(false, Ordering::SeqCst);
        logger.join().expect("logger");
        run.flush().expect("flush");
        run.finish().expect("finish");
        assert_eq!(written.load(Ordering::SeqCst), 1_000);
        assert_eq!(run.stats().points_written, 1_000);
    }

    #[test]
    fn closing_on_a_store_that_keeps_failing_says_what_was_lost() {
        let (run, _failing, written) = flaky_run(1_000);
        for step in 0..10u32 {
            run.log_metric("x", step, 1.0).expect("log");
        }
        let err = run.finish().expect_err("the run could not be written");
        assert!(err.to_string().contains("could not be written"), "{err}");
        assert_eq!(written.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_full_queue_drops_hardware_samples_and_never_stalls() {
        let (run, failing, _written) = flaky_run(10);
        let plan = crate::monitor::Plan {
            hardware: true,
            gpu: false,
            stdout: false,
            stderr: false,
            traceback: false,
            interval: Duration::from_millis(100),
        };
        run.start_monitoring("monitoring/test", &plan);
        // The store fails: a logger fills the queue and waits there.
        let logger = {
            let run = run.clone();
            std::thread::spawn(move || {
                for step in 0..200u32 {
                    run.log_metric("x", step, 1.0).expect("log");
                }
            })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while run.stats().monitoring_samples_dropped < 3 {
            assert!(Instant::now() < deadline, "samples are not dropped: {:?}", run.stats());
            std::thread::sleep(Duration::from_millis(20));
        }
        // The sampler never waited: it keeps sampling (and dropping) while the logger waits.
        failing.store(false, Ordering::SeqCst);
        logger.join().expect("logger");
        run.finish().expect("finish");
        assert!(run.stats().monitoring_samples_dropped >= 3);
    }
}
