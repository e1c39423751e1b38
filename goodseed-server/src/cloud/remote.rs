//! The runs remote trainers write through the cloud API. While a trainer is alive (it
//! registers, sends data and heartbeats), the server holds its run's writer open, so the
//! store sees the run live (for SQLite: the writer lock is held). When nothing has come
//! for the idle time the writer is released without closing the run
//! ([`RunWriter::release`]): a run still `running` whose writer is gone is what the
//! store reports as crashed. A trainer that
//! comes back (after a network cut, or a restart of this server) reopens it with its
//! next call. Every writing call is one transaction through the store's port; points
//! are upserts by (series, step), so a batch sent twice changes nothing.
//!
//! How a run's status follows the calls: registering creates it `running`; a
//! heartbeat makes a run that had ended `running` again (a resumed trainer); `status`
//! ends it `finished` or `failed` (its `closed_at` is the trainer's own
//! `sys/closed_time` when that config has arrived); configs and points never change it,
//! so a retried batch arriving after the end does not reopen the run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, FieldPath, RunName, RunRef};
use goodseed_store::lifecycle::{self, EndState, NewRun, WriterIdentity};
use goodseed_store::{RunStore, RunWriter, StoreError, WriteBatch, meta_key};

/// How long a run's writer stays open with nothing from its trainer: four of goodseed
/// 0.4.0's heartbeats (every 15 s).
pub const DEFAULT_IDLE: Duration = Duration::from_secs(60);

/// What registering a run records beside its id.
#[derive(Debug, Clone, Default)]
pub(crate) struct Registration {
    pub(crate) name: Option<RunName>,
    /// ISO 8601, checked.
    pub(crate) created_at: Option<String>,
    pub(crate) modified_at: Option<String>,
}

/// The open writers of remote runs.
#[derive(Debug)]
pub(crate) struct RemoteRuns {
    store: Arc<dyn RunStore>,
    slots: Mutex<HashMap<RunRef, Arc<Mutex<Slot>>>>,
    idle: Duration,
    /// This server, as the writer of the runs it holds.
    identity: WriterIdentity,
}

#[derive(Debug)]
struct Slot {
    writer: Option<Box<dyn RunWriter>>,
    last_seen: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RemoteRuns {
    /// The registry, with a thread that closes idle writers (it stops when the registry
    /// is dropped).
    pub(crate) fn start(store: Arc<dyn RunStore>, idle: Duration) -> Arc<RemoteRuns> {
        let runs = Arc::new(RemoteRuns {
            store,
            slots: Mutex::new(HashMap::new()),
            idle,
            identity: WriterIdentity::this_process(),
        });
        let weak: Weak<RemoteRuns> = Arc::downgrade(&runs);
        let tick = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        // Without the thread idle writers stay open until the server stops: the runs
        // look live longer, nothing is lost.
        let _ = std::thread::Builder::new().name("goodseed-remote-idle".into()).spawn(move || {
            loop {
                std::thread::sleep(tick);
                match weak.upgrade() {
                    Some(runs) => runs.sweep(),
                    None => return,
                }
            }
        });
        runs
    }

    fn slot(&self, run: &RunRef) -> Arc<Mutex<Slot>> {
        let mut slots = lock(&self.slots);
        Arc::clone(slots.entry(run.clone()).or_insert_with(|| {
            Arc::new(Mutex::new(Slot { writer: None, last_seen: Instant::now() }))
        }))
    }

    /// The run's writer, reopening the run if it is not open. Reopening changes
    /// nothing in the run.
    fn writer<'s>(
        &self,
        run: &RunRef,
        slot: &'s mut Slot,
    ) -> Result<&'s mut dyn RunWriter, StoreError> {
        if slot.writer.is_none() {
            slot.writer = Some(self.store.resume_run(&run.project, &run.run_id)?);
        }
        slot.last_seen = Instant::now();
        Ok(slot.writer.as_deref_mut().expect("opened above"))
    }

    /// Makes sure the run exists: creates it (`running`) when it does not, and then
    /// keeps its writer open for the data that follows. True when it was created.
    pub(crate) fn register(&self, run: &RunRef, reg: &Registration) -> Result<bool, StoreError> {
        let slot = self.slot(run);
        let mut slot = lock(&slot);
        if slot.writer.is_some() || self.store.run_exists(&run.project, &run.run_id)? {
            return Ok(false);
        }
        let mut new = NewRun::new(run.run_id.clone(), run.project.clone());
        new.name = reg.name.clone();
        let created_at = reg.created_at.clone().unwrap_or_else(lifecycle::now_iso);
        let mut first = lifecycle::created(&new, &self.identity, &created_at);
        if let Some(modified) = &reg.modified_at {
            first.set_meta("modified_at", modified.clone());
        }
        match self.store.create_run(&run.project, &run.run_id, &first) {
            Ok(writer) => {
                slot.writer = Some(writer);
                slot.last_seen = Instant::now();
                Ok(true)
            }
            // Created by another caller between the two looks: it exists.
            Err(StoreError::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes a batch of configs or points into the run, in one transaction.
    pub(crate) fn write(&self, run: &RunRef, batch: &WriteBatch) -> Result<(), StoreError> {
        let slot = self.slot(run);
        let mut slot = lock(&slot);
        let writer = self.writer(run, &mut slot)?;
        writer.write(batch)
    }

    /// Where the run's files go (its writer opened as for a write): the caller copies
    /// without holding the run, so a long upload holds up no other call.
    pub(crate) fn blobs(
        &self,
        run: &RunRef,
    ) -> Result<Arc<dyn goodseed_store::artifacts::BlobSink>, StoreError> {
        let slot = self.slot(run);
        let mut slot = lock(&slot);
        let writer = self.writer(run, &mut slot)?;
        writer.blobs()
    }

    /// The trainer is alive: refreshes the heartbeat (a run that had ended is `running`
    /// again). True when someone asked the trainer to stop.
    pub(crate) fn heartbeat(&self, run: &RunRef) -> Result<bool, StoreError> {
        let slot = self.slot(run);
        let mut slot = lock(&slot);
        let writer = self.writer(run, &mut slot)?;
        let now = lifecycle::now_iso();
        let batch = if writer.meta(meta_key::STATUS)?.as_deref() == Some("running") {
            let mut b = WriteBatch::new();
            lifecycle::heartbeat(&mut b, &now);
            b
        } else {
            lifecycle::resumed(&[], &self.identity, &now)
        };
        writer.write(&batch)?;
        Ok(writer.meta(meta_key::STOP_REQUESTED_AT)?.is_some())
    }

    /// The trainer ended the run: records how, and closes its writer. A run that is
    /// not open and already ended so is left as it is (`goodseed upload` sends the
    /// status of every run it uploads, even with nothing new).
    pub(crate) fn end(&self, run: &RunRef, end: EndState) -> Result<(), StoreError> {
        let slot = self.slot(run);
        let mut slot = lock(&slot);
        if slot.writer.is_none() {
            let summary = self.store.run_summary(&run.project, &run.run_id)?;
            if summary.meta.status() == Some(end.as_str()) {
                return Ok(());
            }
        }
        let writer = self.writer(run, &mut slot)?;
        let sys_closed = FieldPath::parse("sys/closed_time").expect("a valid path");
        let closed_at = match writer.config(&sys_closed)? {
            Some(ConfigValue::Str(t) | ConfigValue::DateTime(t))
                if UtcMicros::parse_iso8601(&t).is_some() =>
            {
                t
            }
            _ => lifecycle::now_iso(),
        };
        let mut batch = WriteBatch::new();
        lifecycle::closed(&mut batch, end, &closed_at);
        writer.write(&batch)?;
        let closed = writer.close();
        slot.writer = None;
        closed
    }

    /// Closes the writers of runs nothing came for in [`RemoteRuns::idle`], and forgets
    /// slots no call is using.
    pub(crate) fn sweep(&self) {
        let slots: Vec<(RunRef, Arc<Mutex<Slot>>)> =
            lock(&self.slots).iter().map(|(k, v)| (k.clone(), Arc::clone(v))).collect();
        for (run, slot) in slots {
            // A slot in use is not idle.
            let Ok(mut s) = slot.try_lock() else { continue };
            if s.last_seen.elapsed() >= self.idle
                && let Some(mut w) = s.writer.take()
            {
                let _ = w.release();
            }
            let unused = s.writer.is_none();
            drop(s);
            if unused {
                let mut map = lock(&self.slots);
                // Two references: the map's and ours. More means a call holds it.
                if map.get(&run).is_some_and(|v| Arc::strong_count(v) == 2) {
                    map.remove(&run);
                }
            }
        }
    }

    /// How many runs have their writer open now.
    pub(crate) fn open_count(&self) -> usize {
        let slots: Vec<Arc<Mutex<Slot>>> = lock(&self.slots).values().cloned().collect();
        slots.iter().filter(|s| lock(s).writer.is_some()).count()
    }
}

impl Drop for RemoteRuns {
    fn drop(&mut self) {
        // Runs stay `running`, shown crashed while nobody can write them: their trainers
        // reopen them when this server is back.
        for slot in lock(&self.slots).values() {
            if let Some(mut w) = lock(slot).writer.take() {
                let _ = w.release();
            }
        }
    }
}
