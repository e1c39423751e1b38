//! A run's writer thread: drains the queue into transactions through the store, keeps
//! the heartbeat, and closes the run.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use goodseed_core::{ConfigValue, FieldPath};
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

/// How many failed attempts in a row a closing run makes before it gives up (about 3 s
/// of back-off).
const CLOSE_ATTEMPTS: u32 = 5;

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

/// A stretch of failed writes, as told on stderr.
struct Outage {
    started: Instant,
    attempts: u64,
    refused_before: u64,
}

struct WriterThread {
    shared: Arc<Shared>,
    writer: Box<dyn RunWriter>,
    pace: Pace,
    /// Reused for every transaction.
    batch: WriteBatch,
    /// What is taken from the queue and not written yet, in logging order (the queue's
    /// buffers, swapped in while nothing is pending).
    metrics: Vec<MetricOp>,
    texts: Vec<TextOp>,
    meta: Vec<(String, Option<String>)>,
    configs: Vec<(FieldPath, ConfigValue)>,
    artifacts: Vec<goodseed_store::artifacts::ArtifactOp>,
    /// A heartbeat to record with the next transaction.
    beat: Option<String>,
    /// How the run ends and when, once it is closing: recorded with the last points.
    closing: Option<(EndState, String)>,
    /// The series paths known so far, by id, and their reference in the current batch.
    metric_paths: Vec<FieldPath>,
    metric_refs: Vec<Option<SeriesRef>>,
    text_paths: Vec<FieldPath>,
    text_refs: Vec<Option<SeriesRef>>,
    /// Points per transaction: halved by each failure (a transaction too large for the
    /// space left then gets through once some space is back), doubled by each success.
    chunk: usize,
    /// The logging sequence number everything pending covers.
    taken: u64,
    last_commit: Instant,
    last_heartbeat: Instant,
    /// When `stop_requested_at` was last read; `None` once a stop request was seen
    /// (there is nothing more to learn).
    last_stop_check: Option<Instant>,
    /// Failed attempts in a row of the smallest transaction (one point, or none): the
    /// writer is stuck, and backs off.
    stuck: u32,
    outage: Option<Outage>,
    /// Remote mode: marks confirmed rows uploaded.
    marker: Option<Box<dyn RunUploads>>,
    marks: Vec<(Pending, u64)>,
    /// The rewrites counted in what was taken from the queue so far, and whether what
    /// is being written holds some.
    rewrites_taken: u64,
    rewriting: bool,
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
            meta: Vec::new(),
            configs: Vec::new(),
            artifacts: Vec::new(),
            beat: None,
            closing: None,
            metric_paths: Vec::new(),
            metric_refs: Vec::new(),
            text_paths: Vec::new(),
            text_refs: Vec::new(),
            chunk: usize::MAX,
            taken: 0,
            last_commit: Instant::now(),
            last_heartbeat: Instant::now(),
            last_stop_check: Some(Instant::now()),
            stuck: 0,
            outage: None,
            marker: None,
            marks: Vec::new(),
            rewrites_taken: 0,
            rewriting: false,
        }
    }

    /// Marks what the server confirmed (remote mode). A mark that fails leaves its rows
    /// pending: the sync finds and sends them again.
    fn mark(&mut self) {
        let epoch = self.shared.rewrite_epoch.load(Ordering::SeqCst);
        for (batch, read_at) in std::mem::take(&mut self.marks) {
            // No step was written twice since the rows were read: the writer marks them
            // without reading them again; else the marker checks each row.
            let vouched = if read_at == epoch {
                self.writer.mark_uploaded_unchanged(&batch)
            } else {
                Ok(None)
            };
            if let (Ok(None), Some(marker)) = (vouched, self.marker.as_mut()) {
                let _ = marker.mark_uploaded(&batch);
            }
        }
    }

    fn pending_points(&self) -> usize {
        self.metrics.len() + self.texts.len()
    }

    fn run(mut self) {
        loop {
            let (seq, closing) = self.take_work();
            if self.last_heartbeat.elapsed() >= self.pace.heartbeat_interval || closing.is_some() {
                self.beat = Some(lifecycle::now_iso());
                self.last_heartbeat = Instant::now();
                if closing.is_none() {
                    self.check_stop();
                }
            } else if self.until_stop_check() == Some(Duration::ZERO) {
                // A busy writer never waits in `take_work`: check here, between commits.
                self.check_stop();
            }
            if let Some(end) = closing
                && self.closing.is_none()
            {
                let end = self.final_end(end);
                self.shared.lock().ended = Some(end);
                self.closing = Some((end, lifecycle::now_iso()));
            }
            if self.commit(seq) {
                self.mark();
                if closing.is_some() {
                    let closed = self.writer.close();
                    self.finish(closed.err().map(|e| e.to_string()));
                    return;
                }
            } else if closing.is_some() && self.stuck >= CLOSE_ATTEMPTS {
                self.give_up();
                return;
            } else {
                // Back off before retrying; new data keeps queueing meanwhile.
                let backoff = Duration::from_millis(50 << self.stuck.min(6));
                std::thread::sleep(backoff);
            }
        }
    }

    /// Waits for something to write, then moves it out of the queue into what is
    /// pending. Returns the logging sequence number covered and whether the run is
    /// closing.
    fn take_work(&mut self) -> (u64, Option<EndState>) {
        let shared = Arc::clone(&self.shared);
        let mut st = shared.lock();
        loop {
            let has_data = st.queued() > 0
                || !st.configs.is_empty()
                || !st.meta.is_empty()
                || !st.artifacts.is_empty();
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
                || self.stuck > 0
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
        // While writes fail, what is pending grows with each look at the queue; once it
        // holds a queue's worth, leave new points queued, so loggers meet back-pressure
        // (and, past the grace, refusal) instead of the process growing without bound.
        if self.stuck > 0 && st.closing.is_none() && self.pending_points() >= shared.capacity {
            return (self.taken, None);
        }
        if self.metrics.is_empty() {
            std::mem::swap(&mut st.metrics, &mut self.metrics);
        } else {
            self.metrics.append(&mut st.metrics);
        }
        if self.texts.is_empty() {
            std::mem::swap(&mut st.texts, &mut self.texts);
        } else {
            self.texts.append(&mut st.texts);
        }
        self.configs.append(&mut st.configs);
        self.artifacts.append(&mut st.artifacts);
        self.meta.append(&mut st.meta);
        self.metric_paths.extend_from_slice(&st.metric_series.paths[self.metric_paths.len()..]);
        self.text_paths.extend_from_slice(&st.text_series.paths[self.text_paths.len()..]);
        st.flush_requested = false;
        st.writer_woken = false;
        let rewrites = st.metric_series.rewrites + st.text_series.rewrites;
        if rewrites != self.rewrites_taken {
            self.rewrites_taken = rewrites;
            self.rewriting = true;
        }
        let seq = st.logged;
        self.taken = seq;
        let closing = st.closing;
        drop(st);
        shared.progress.notify_all();
        self.metric_refs.resize(self.metric_paths.len(), None);
        self.text_refs.resize(self.text_paths.len(), None);
        (seq, closing)
    }

    /// How a closing run ends: a run finished after someone asked it to stop (a request
    /// seen before, or found by one last look now) ends `stopped`.
    fn final_end(&mut self, end: EndState) -> EndState {
        if end != EndState::Finished {
            return end;
        }
        if !self.shared.stop_requested.load(Ordering::Relaxed) {
            self.check_stop();
        }
        if self.shared.stop_requested.load(Ordering::Relaxed) { EndState::Stopped } else { end }
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

    /// Fills the batch with the first `metrics` and `texts` pending points, the pending
    /// meta keys and configs, and, when `last`, how the run ends. Text values move into
    /// the batch (and back after a failure, [`WriterThread::restore_texts`]).
    fn build(&mut self, metrics: usize, texts: usize, last: bool) {
        let batch = &mut self.batch;
        batch.clear();
        self.metric_refs.fill(None);
        self.text_refs.fill(None);
        for (key, value) in &self.meta {
            match value {
                Some(v) => batch.set_meta(key, v.clone()),
                None => batch.delete_meta(key),
            }
        }
        for (path, value) in &self.configs {
            batch.config(path.clone(), value.clone());
        }
        for op in &self.artifacts {
            match op {
                goodseed_store::artifacts::ArtifactOp::Add(a) => batch.artifact(a.clone()),
                goodseed_store::artifacts::ArtifactOp::Change(c) => {
                    batch.artifact_change(c.clone())
                }
            }
        }
        if let Some(now) = &self.beat {
            lifecycle::heartbeat(batch, now);
        }
        for m in &self.metrics[..metrics] {
            let i = m.series as usize;
            let r = *self.metric_refs[i]
                .get_or_insert_with(|| batch.metric_series(&self.metric_paths[i]));
            batch.metric(r, m.step, m.value, m.ts);
        }
        for t in &mut self.texts[..texts] {
            let i = t.series as usize;
            let r =
                *self.text_refs[i].get_or_insert_with(|| batch.text_series(&self.text_paths[i]));
            batch.text(r, t.step, std::mem::take(&mut t.value), t.ts);
        }
        if last && let Some((end, now)) = &self.closing {
            lifecycle::closed(batch, *end, now);
        }
    }

    /// Puts the text values the batch took back into the pending points.
    fn restore_texts(&mut self, texts: usize) {
        for (t, (_, row)) in self.texts[..texts].iter_mut().zip(self.batch.text_entries()) {
            t.value.clone_from(&row.value);
        }
    }

    /// Writes what is pending, in one transaction while writes succeed, in smaller ones
    /// after failures (a failed transaction of several points is tried again at once at
    /// half the size). True once everything logged up to `seq` is committed.
    fn commit(&mut self, seq: u64) -> bool {
        loop {
            let metrics = self.metrics.len().min(self.chunk);
            let texts = self.texts.len().min(self.chunk - metrics);
            let last = metrics == self.metrics.len() && texts == self.texts.len();
            self.build(metrics, texts, last);
            if self.batch.is_empty() {
                self.committed(seq);
                return true;
            }
            if self.rewriting {
                self.shared.rewrite_epoch.fetch_add(1, Ordering::SeqCst);
            }
            match self.writer.write(&self.batch) {
                Ok(()) => {
                    let points = metrics + texts;
                    self.metrics.drain(..metrics);
                    self.texts.drain(..texts);
                    self.meta.clear();
                    self.configs.clear();
                    self.artifacts.clear();
                    self.beat = None;
                    let counters = &self.shared.counters;
                    counters.points_written.fetch_add(points as u64, Ordering::Relaxed);
                    counters.batches_written.fetch_add(1, Ordering::Relaxed);
                    self.chunk = self.chunk.saturating_mul(2);
                    self.stuck = 0;
                    self.last_commit = Instant::now();
                    let mut st = self.shared.lock();
                    st.failing_since = None;
                    st.writer_error = None;
                    drop(st);
                    if last {
                        self.committed(seq);
                        return true;
                    }
                }
                Err(e) => {
                    self.restore_texts(texts);
                    self.shared.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                    let points = metrics + texts;
                    if points > 1 {
                        self.chunk = points / 2;
                        continue;
                    }
                    self.chunk = 1;
                    self.stalled(&e.to_string());
                    return false;
                }
            }
        }
    }

    /// Everything logged up to `seq` is committed.
    fn committed(&mut self, seq: u64) {
        if std::mem::take(&mut self.rewriting) {
            // After the points that may write rows again: marks of rows read while
            // they were being written check them.
            self.shared.rewrite_epoch.fetch_add(1, Ordering::SeqCst);
        }
        let mut st = self.shared.lock();
        st.committed = st.committed.max(seq);
        st.writer_error = None;
        st.failing_since = None;
        drop(st);
        self.shared.progress.notify_all();
        if let Some(outage) = self.outage.take() {
            let refused =
                self.shared.counters.points_refused.load(Ordering::Relaxed) - outage.refused_before;
            tell(&format!(
                "run {} is written again, after {} failed attempts in {:.1} s ({refused} \
                 points refused meanwhile)",
                self.writer.location(),
                outage.attempts,
                outage.started.elapsed().as_secs_f64(),
            ));
        }
    }

    /// The smallest transaction failed: nothing can be written now.
    fn stalled(&mut self, message: &str) {
        self.stuck += 1;
        let mut st = self.shared.lock();
        st.writer_error = Some(message.to_owned());
        st.stalls += 1;
        st.failing_since.get_or_insert_with(Instant::now);
        drop(st);
        self.shared.progress.notify_all();
        match &mut self.outage {
            Some(outage) => outage.attempts += 1,
            None => {
                self.outage = Some(Outage {
                    started: Instant::now(),
                    attempts: 1,
                    refused_before: self.shared.counters.points_refused.load(Ordering::Relaxed),
                });
                tell(&format!(
                    "cannot write run: {}; retrying, with what was logged kept in memory \
                     (logging calls fail once nothing could be written for {} s)",
                    with_location(message, self.writer.location()),
                    crate::queue::FAILING_GRACE.as_secs(),
                ));
            }
        }
    }

    /// The run is closing and cannot be written. Records that it failed if even that
    /// can be written; otherwise lets go of it without closing, so the store shows it as
    /// crashed (never `running` with no writer).
    fn give_up(mut self) {
        let lost = self.pending_points();
        let message = self.shared.lock().writer_error.clone().unwrap_or_default();
        self.batch.clear();
        lifecycle::closed(&mut self.batch, EndState::Failed, &lifecycle::now_iso());
        let ended = if self.writer.write(&self.batch).is_ok() {
            let _ = self.writer.close();
            "it is marked failed"
        } else {
            // Dropped unclosed below, as a writer that died: the store derives crashed.
            "it will show as crashed"
        };
        tell(&format!(
            "cannot finish run: {}; closed with {lost} points not written, {ended}",
            with_location(&message, self.writer.location()),
        ));
        self.finish(Some(format!("{message} ({lost} points could not be written; {ended})")));
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

/// A store error as said to people: the store's errors name the run's location; one
/// that does not gets it in front.
fn with_location(message: &str, location: &str) -> String {
    if message.contains(location) { message.to_owned() } else { format!("{location}: {message}") }
}

/// One line on stderr, the way the SDK tells a person what the code is told by errors.
/// A failed write to stderr is ignored. (The crate's unit tests print it through the
/// test harness, which keeps it out of their output unless they fail; the integration
/// tests read the real stderr of a child process.)
pub(crate) fn tell(line: &str) {
    #[cfg(test)]
    #[allow(clippy::print_stderr, reason = "captured by the test harness")]
    {
        eprintln!("goodseed: {line}");
    }
    #[cfg(not(test))]
    {
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), "goodseed: {line}");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use goodseed_core::{ConfigValue, FieldPath, ProjectName, RunId};
    use goodseed_store::{LastSteps, RunWriter, StoreError, WriteBatch};

    use super::{Pace, spawn};
    use crate::queue::{Shared, State};
    use crate::run::{Inner, Live};
    use crate::{Run, SdkError};

    /// What the [`Flaky`] writer lets through.
    #[derive(Debug)]
    struct Disk {
        /// Every write fails (a full disk).
        full: AtomicBool,
        /// Writes of more points than this fail (the space left takes no more).
        room: AtomicUsize,
        /// The steps of every metric point written, in order.
        written: Mutex<Vec<f64>>,
        closed: AtomicBool,
    }

    impl Disk {
        fn written(&self) -> Vec<f64> {
            self.written.lock().expect("lock").clone()
        }
    }

    /// A store writer that fails as its [`Disk`] says.
    #[derive(Debug)]
    struct Flaky(Arc<Disk>);

    impl RunWriter for Flaky {
        fn write(&mut self, batch: &WriteBatch) -> goodseed_store::Result<()> {
            let disk = &self.0;
            if disk.full.load(Ordering::SeqCst)
                || batch.metric_len() > disk.room.load(Ordering::SeqCst)
            {
                return Err(StoreError::Database {
                    location: "flaky.sqlite".to_owned(),
                    message: "database or disk is full".to_owned(),
                    busy: false,
                });
            }
            let mut written = disk.written.lock().expect("lock");
            written.extend(batch.metric_entries().map(|(_, m)| m.step.get()));
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
            self.0.closed.store(true, Ordering::SeqCst);
            Ok(())
        }
        fn release(&mut self) -> goodseed_store::Result<()> {
            Ok(())
        }
    }

    /// A run over a [`Flaky`] writer whose disk is full.
    fn flaky_run(capacity: usize) -> (Run, Arc<Disk>) {
        let disk = Arc::new(Disk {
            full: AtomicBool::new(true),
            room: AtomicUsize::new(usize::MAX),
            written: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        });
        let shared = Arc::new(Shared::new(capacity, State::default()));
        let pace = Pace {
            flush_interval: Duration::from_millis(10),
            heartbeat_interval: Duration::from_secs(3600),
        };
        let writer = Box::new(Flaky(Arc::clone(&disk)));
        let thread = spawn(Arc::clone(&shared), writer, pace, "flaky", None).expect("spawn");
        let run = Run::from_inner(Inner::new(
            RunId::parse("flaky").expect("id"),
            ProjectName::parse("p").expect("project"),
            Some(Live {
                shared,
                thread: Mutex::new(Some(thread)),
                location: "flaky.sqlite".to_owned(),
                tags: Mutex::new(BTreeSet::new()),
                monitor: Mutex::new(None),
                sync: None,
                files: Err("the flaky test store keeps no files".to_owned()),
            }),
        ));
        (run, disk)
    }

    /// Logs steps from `from` until a call is refused; returns the steps accepted and the
    /// refusal.
    fn log_until_refused(run: &Run, from: u32) -> (Vec<f64>, SdkError) {
        let mut accepted = Vec::new();
        for step in from.. {
            match run.log_metric("x", step, 1.0) {
                Ok(()) => accepted.push(f64::from(step)),
                Err(e) => return (accepted, e),
            }
        }
        unreachable!("a failing writer refuses logging calls")
    }

    /// Flushes until the writer has caught up (a flush fails while writes keep failing).
    fn flush_until_written(run: &Run) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Err(e) = run.flush() {
            assert!(Instant::now() < deadline, "the writer never caught up: {e}");
        }
    }

    #[test]
    fn a_failing_store_refuses_logging_calls_and_loses_nothing_accepted() {
        let (run, disk) = flaky_run(100);
        // The store fails: the writer keeps at most a queue's worth for its retry, the
        // queue fills, and the logger, after waiting a while, is told.
        let (accepted, err) = log_until_refused(&run, 0);
        assert!(matches!(err, SdkError::Writer { .. }), "{err}");
        assert!(err.to_string().contains("disk is full"), "{err}");
        let stuck = run.stats();
        assert!(stuck.backpressure_waits > 0, "{stuck:?}");
        assert!(stuck.points_logged <= 3 * 100 + 1, "bounded while failing: {stuck:?}");
        assert_eq!(stuck.points_logged, accepted.len() as u64);
        assert_eq!(stuck.points_refused, 1);
        // From now on calls are refused at once, configs and text included, and each
        // refusal logs nothing.
        for step in 0..1_000u32 {
            let e = run.log_metrics(step, [("x", 1.0), ("y", 2.0)]).expect_err("refused");
            assert!(matches!(e, SdkError::Writer { .. }), "{e}");
        }
        assert!(matches!(run.log_text("t", 0u32, "line"), Err(SdkError::Writer { .. })));
        assert!(matches!(run.set_config("c", 1), Err(SdkError::Writer { .. })));
        assert!(matches!(run.add_tags(["t"]), Err(SdkError::Writer { .. })));
        assert!(run.tags().is_empty(), "a refused tag change changes nothing");
        let later = run.stats();
        assert_eq!(later.points_logged, stuck.points_logged);
        assert_eq!(later.points_refused, 1 + 2_000 + 1);
        let err = run.flush().expect_err("flush reports the failure");
        assert!(matches!(err, SdkError::Writer { .. }), "{err}");

        // The disk frees up: everything accepted is written, in order, and logging works
        // again.
        disk.full.store(false, Ordering::SeqCst);
        flush_until_written(&run);
        run.log_metric("x", 10_000u32, 1.0).expect("accepted again");
        run.finish().expect("finish");
        let mut expected = accepted;
        expected.push(10_000.0);
        assert_eq!(disk.written(), expected);
        assert_eq!(run.stats().points_written, expected.len() as u64);
        assert!(disk.closed.load(Ordering::SeqCst));
    }

    #[test]
    fn a_batch_too_large_for_the_space_left_is_written_in_smaller_ones() {
        let (run, disk) = flaky_run(1_000);
        let (accepted, _) = log_until_refused(&run, 0);
        assert!(accepted.len() >= 1_000, "a queue's worth waits: {}", accepted.len());
        // Space comes back, but only for 7 points per transaction: what waits is
        // written all the same, in transactions small enough.
        disk.room.store(7, Ordering::SeqCst);
        disk.full.store(false, Ordering::SeqCst);
        flush_until_written(&run);
        assert_eq!(disk.written(), accepted);
        // As space grows, so do the transactions again.
        disk.room.store(usize::MAX, Ordering::SeqCst);
        for step in 0..5_000u32 {
            run.log_metric("y", step, 1.0).expect("log");
        }
        run.finish().expect("finish");
        assert_eq!(disk.written().len(), accepted.len() + 5_000);
        let stats = run.stats();
        assert!(stats.batches_written < 1_000, "transactions grow back: {stats:?}");
    }

    #[test]
    fn closing_on_a_store_that_keeps_failing_says_what_was_lost_and_lets_go() {
        let (run, disk) = flaky_run(1_000);
        for step in 0..10u32 {
            run.log_metric("x", step, 1.0).expect("log");
        }
        let err = run.finish().expect_err("the run could not be written");
        assert!(matches!(err, SdkError::Writer { .. }), "{err}");
        assert!(err.to_string().contains("10 points could not be written"), "{err}");
        // Not even the end could be written: the writer was let go without closing, as
        // a dead writer is (the store then derives `crashed`).
        assert!(err.to_string().contains("show as crashed"), "{err}");
        assert!(!disk.closed.load(Ordering::SeqCst));
        assert!(disk.written().is_empty());
    }

    #[test]
    fn closing_marks_the_run_failed_when_only_its_points_cannot_be_written() {
        let (run, disk) = flaky_run(1_000);
        disk.room.store(0, Ordering::SeqCst);
        disk.full.store(false, Ordering::SeqCst);
        for step in 0..10u32 {
            run.log_metric("x", step, 1.0).expect("log");
        }
        let err = run.finish().expect_err("the points could not be written");
        assert!(err.to_string().contains("marked failed"), "{err}");
        assert!(disk.closed.load(Ordering::SeqCst), "closed after recording the failure");
    }

    #[test]
    fn a_full_queue_drops_hardware_samples_and_never_stalls() {
        let (run, disk) = flaky_run(10);
        let plan = crate::monitor::Plan {
            hardware: true,
            gpu: false,
            stdout: false,
            stderr: false,
            traceback: false,
            interval: Duration::from_millis(100),
        };
        run.start_monitoring("monitoring/test", &plan);
        // The store fails: a logger fills the queue and waits there (until it is told
        // the writer keeps failing).
        let logger = {
            let run = run.clone();
            std::thread::spawn(move || {
                for step in 0..200u32 {
                    match run.log_metric("x", step, 1.0) {
                        Ok(()) | Err(SdkError::Writer { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while run.stats().monitoring_samples_dropped < 3 {
            assert!(Instant::now() < deadline, "samples are not dropped: {:?}", run.stats());
            std::thread::sleep(Duration::from_millis(20));
        }
        // The sampler never waited: it keeps sampling (and dropping) while the logger waits.
        disk.full.store(false, Ordering::SeqCst);
        logger.join().expect("logger");
        run.finish().expect("finish");
        assert!(run.stats().monitoring_samples_dropped >= 3);
    }
}
