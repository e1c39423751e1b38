//! A remote run's sync thread: uploads what the writer committed (it looks every 200
//! ms and after each batch it sent), keeps the run alive on the server with heartbeats
//! (whose answer carries a stop request to [`crate::Run::should_stop`]), retries with
//! back-off while the server cannot be reached, and when the run closes sends the rest
//! and the run's status, for a bounded time.

use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use goodseed_core::{ProjectName, RunId};
use goodseed_store::RunStore;
use goodseed_store::lifecycle::EndState;

use super::{UploadError, Uploader};
use crate::queue::Shared;

/// How often an idle sync thread looks for newly committed rows.
const LOOK_EVERY: Duration = Duration::from_millis(200);
/// How often a live run's sync reads its pending rows from the start again when steps
/// were written twice (the only way to find rows written again behind its cursor).
const REREAD_EVERY: Duration = Duration::from_secs(2);
/// The longest wait between two attempts while the server cannot be reached.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One line on stderr (the console capture, when on, records it too).
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "goodseed: {line}");
}

#[derive(Debug, Default)]
struct State {
    /// The run closed: send the rest, then this status.
    closing: Option<EndState>,
    /// Stop now (the close waited long enough).
    give_up: bool,
    /// Everything was sent and the status too.
    done: bool,
    /// The last failure, for the message at close.
    error: Option<String>,
}

#[derive(Debug, Default)]
struct Signal {
    state: Mutex<State>,
    changed: Condvar,
}

impl Signal {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The run's sync thread, from the run's side.
#[derive(Debug)]
pub(crate) struct SyncHandle {
    signal: Arc<Signal>,
    thread: Mutex<Option<JoinHandle<()>>>,
    store: Arc<dyn RunStore>,
    project: ProjectName,
    run_id: RunId,
    url: String,
    timeout: Duration,
}

/// Starts the sync thread of a run.
pub(crate) fn start(
    uploader: Uploader,
    run: Arc<Shared>,
    heartbeat_every: Duration,
    (store, project, run_id): (Arc<dyn RunStore>, ProjectName, RunId),
    timeout: Duration,
) -> std::io::Result<SyncHandle> {
    let signal = Arc::new(Signal::default());
    let url = uploader.client().remote().url.clone();
    let worker = Worker {
        up: uploader,
        run,
        signal: Arc::clone(&signal),
        heartbeat_every,
        reread: (0, Instant::now()),
    };
    let thread = std::thread::Builder::new()
        .name(format!("goodseed-sync-{run_id}"))
        .spawn(move || worker.run())?;
    Ok(SyncHandle {
        signal,
        thread: Mutex::new(Some(thread)),
        store,
        project,
        run_id,
        url,
        timeout,
    })
}

impl SyncHandle {
    /// The run closed as `end`: waits (at most the upload timeout) for the rest to be
    /// sent and the status with it. What could not be sent stays in the file, and one
    /// line on stderr says how much and how to send it. Returns the rows left.
    pub(crate) fn finish(&self, end: EndState) -> u64 {
        let deadline = Instant::now() + self.timeout;
        let mut st = self.signal.lock();
        st.closing.get_or_insert(end);
        self.signal.changed.notify_all();
        while !st.done && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            st = self
                .signal
                .changed
                .wait_timeout(st, left)
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
        if st.done {
            drop(st);
            if let Some(t) = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take() {
                let _ = t.join();
            }
            return 0;
        }
        st.give_up = true;
        let why = st.error.clone().unwrap_or_else(|| "the upload did not end in time".to_owned());
        drop(st);
        self.signal.changed.notify_all();
        // The thread may be inside a request: it is left to end on its own.
        let left = self
            .store
            .open_uploads(&self.project, &self.run_id)
            .and_then(|mut u| u.count_pending())
            .unwrap_or(u64::MAX);
        let (project, run, url) = (&self.project, &self.run_id, &self.url);
        let count = if left == u64::MAX { "some".to_owned() } else { left.to_string() };
        say(&format!(
            "{count} row(s) of run {project}/{run} are not on {url} yet ({why}); they are kept \
             in {}. Send them with: goodseed sync --dir {} -p {project} -r {run} --to {url}",
            self.store.location(),
            self.store.location(),
        ));
        left
    }
}

struct Worker {
    up: Uploader,
    run: Arc<Shared>,
    signal: Arc<Signal>,
    heartbeat_every: Duration,
    /// The writer's rewrite epoch at the last read from the start, and when.
    reread: (u64, Instant),
}

impl Worker {
    fn run(mut self) {
        let mut failures = 0u32;
        let mut next_try = Instant::now();
        let mut last_beat: Option<Instant> = None;
        let mut down_said = false;
        loop {
            let (closing, give_up) = {
                let st = self.signal.lock();
                (st.closing, st.give_up)
            };
            if give_up {
                return;
            }
            if Instant::now() >= next_try {
                match self.attempt(closing) {
                    Ok(Attempt::Sent) => {
                        if down_said {
                            say(&format!(
                                "{} answers again: uploading",
                                self.up.client().remote().url
                            ));
                            down_said = false;
                        }
                        failures = 0;
                        continue;
                    }
                    Ok(Attempt::Idle) => failures = 0,
                    Ok(Attempt::Done) => {
                        let mut st = self.signal.lock();
                        st.done = true;
                        self.signal.changed.notify_all();
                        return;
                    }
                    Err(e) => {
                        failures += 1;
                        self.run.counters.upload_errors.fetch_add(1, Ordering::Relaxed);
                        let retry = e.is_retryable();
                        let wait = if retry {
                            (Duration::from_millis(250) * 2u32.pow(failures.min(7)))
                                .min(MAX_BACKOFF)
                        } else {
                            MAX_BACKOFF
                        };
                        next_try = Instant::now() + wait;
                        if !down_said {
                            say(&format!(
                                "cannot upload run {}: {e}; training goes on, what is logged \
                                 waits in the local file and is sent when the server answers",
                                self.up.report_name(),
                            ));
                            down_said = true;
                        }
                        self.signal.lock().error = Some(e.to_string());
                    }
                }
            }
            if closing.is_none()
                && last_beat.is_none_or(|t| t.elapsed() >= self.heartbeat_every)
                && let Some(answer) = self.up.heartbeat()
            {
                // A failed heartbeat waits for the next one, as a failed upload does.
                if answer.unwrap_or(false) {
                    self.run.stop_requested.store(true, Ordering::Relaxed);
                }
                last_beat = Some(Instant::now());
            }
            let until_try = next_try.saturating_duration_since(Instant::now());
            let wait = until_try.max(Duration::from_millis(1)).min(LOOK_EVERY);
            let st = self.signal.lock();
            if st.closing.is_none() && !st.give_up {
                let _ = self.signal.changed.wait_timeout(st, wait);
            }
        }
    }

    /// One look: send a batch if there is one; at close, send the rest and the status.
    fn attempt(&mut self, closing: Option<EndState>) -> Result<Attempt, UploadError> {
        let n = self.up.step()?;
        if n > 0 {
            self.run.counters.rows_uploaded.fetch_add(n as u64, Ordering::Relaxed);
            return Ok(Attempt::Sent);
        }
        let Some(end) = closing else {
            // Steps written again behind what was read are found from the start: looked
            // for while idle once such steps were written, at most every REREAD_EVERY.
            let epoch = self.run.rewrite_epoch.load(Ordering::SeqCst);
            if epoch != self.reread.0 && self.reread.1.elapsed() >= REREAD_EVERY {
                self.reread = (epoch, Instant::now());
                self.up.rewind();
                let n = self.up.step()?;
                if n > 0 {
                    self.run.counters.rows_uploaded.fetch_add(n as u64, Ordering::Relaxed);
                    return Ok(Attempt::Sent);
                }
            }
            // Files, a chunk or a record at a time, between point batches.
            if self.up.artifacts_step()? > 0 {
                return Ok(Attempt::Sent);
            }
            return Ok(Attempt::Idle);
        };
        // Rows written again behind what was read are found from the start.
        self.up.rewind();
        let n = self.up.step()?;
        if n > 0 {
            self.run.counters.rows_uploaded.fetch_add(n as u64, Ordering::Relaxed);
            return Ok(Attempt::Sent);
        }
        if self.up.artifacts_step()? > 0 {
            return Ok(Attempt::Sent);
        }
        self.up.send_status(end.as_str(), Some(end.ended_by()))?;
        Ok(Attempt::Done)
    }
}

enum Attempt {
    Sent,
    Idle,
    Done,
}
