//! Checkpoints, artifacts and file series of a run: the calls return at once, a thread
//! of the run's own copies each file into the store (the store's
//! [`BlobSink`](goodseed_store::artifacts::BlobSink): hashed, synced, named by its
//! SHA-256), then hands the record to the writer thread, which writes it with the run's
//! next transaction. A copy that fails or is cut short registers nothing; one whose
//! source changed while it was copied (a trainer saving over the file) is refused and
//! said so. Retention rules run on this thread after each checkpoint and delete only
//! checkpoints this run registered.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::SystemTime;

use goodseed_core::Step;
use goodseed_store::artifacts::{
    ArtifactChange, ArtifactKind, ArtifactOp, BlobRef, BlobSink, NewArtifact, Tree, TreeFile,
    describe_file,
};

use crate::queue::Shared;

/// Which way a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Lower is better (a loss).
    Min,
    /// Higher is better (an accuracy).
    Max,
}

/// Which checkpoints a run keeps: the best `k` by a metric, the last `n` by step, or
/// both (a checkpoint either rule keeps stays). Only checkpoints this run registered
/// are ever deleted, and for one registered in place only its record: never a file the
/// trainer wrote.
///
/// ```
/// use goodseed_sdk::{Goal, Retention};
/// let keep = Retention::best(3, "val/loss", Goal::Min).and_last(1);
/// # let _ = keep;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    best: Option<(usize, String, Goal)>,
    last: Option<usize>,
}

impl Retention {
    /// Keeps the `k` best checkpoints by `metric` (one without the metric, or with NaN,
    /// counts as worst), and marks the best one.
    pub fn best(k: usize, metric: impl Into<String>, goal: Goal) -> Retention {
        Retention { best: Some((k, metric.into(), goal)), last: None }
    }

    /// Keeps the `n` checkpoints of the highest steps.
    pub fn last(n: usize) -> Retention {
        Retention { best: None, last: Some(n) }
    }

    /// Also keeps the `n` checkpoints of the highest steps.
    pub fn and_last(mut self, n: usize) -> Retention {
        self.last = Some(n);
        self
    }
}

/// A checkpoint to register with [`Run::log_checkpoint_with`](crate::Run::log_checkpoint_with).
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub(crate) path: PathBuf,
    pub(crate) step: Step,
    pub(crate) name: Option<String>,
    pub(crate) metrics: Vec<(String, f64)>,
    pub(crate) in_place: bool,
}

impl Checkpoint {
    /// The checkpoint file at `path`, saved at `step`.
    pub fn new(path: impl Into<PathBuf>, step: Step) -> Checkpoint {
        Checkpoint { path: path.into(), step, name: None, metrics: Vec::new(), in_place: false }
    }

    /// Its name (by default the file's name); a checkpoint of the same name and step
    /// replaces it.
    pub fn name(mut self, name: impl Into<String>) -> Checkpoint {
        self.name = Some(name.into());
        self
    }

    /// A metric it was saved at (what keep-best rules rank by).
    pub fn metric(mut self, name: impl Into<String>, value: f64) -> Checkpoint {
        self.metrics.push((name.into(), value));
        self
    }

    /// Registers the file where it is, without copying it (its hash and size are still
    /// read): for files too large to copy, on storage the trainer manages. The server
    /// lists such a checkpoint but cannot serve it.
    pub fn in_place(mut self) -> Checkpoint {
        self.in_place = true;
        self
    }
}

/// What the run's file thread has done so far (see
/// [`Run::wait_for_files`](crate::Run::wait_for_files)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FilesReport {
    /// Files registered.
    pub registered: u64,
    /// Bytes copied into the store.
    pub bytes_copied: u64,
    /// Checkpoints deleted by the retention rule.
    pub deleted: u64,
    /// Files that could not be registered, each with why.
    pub failures: Vec<String>,
}

/// One file to register.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) kind: ArtifactKind,
    pub(crate) name: String,
    pub(crate) step: Option<Step>,
    pub(crate) path: PathBuf,
    pub(crate) metrics: Vec<(String, f64)>,
    pub(crate) in_place: bool,
    /// The file's size and modification time when the call was made: a copy of
    /// anything else is refused.
    pub(crate) seen: (u64, Option<SystemTime>),
    /// A directory: each file copied, and a manifest of them registered.
    pub(crate) tree: bool,
}

enum Message {
    File(Box<Job>),
    MarkBest { name: String, step: Step },
    Retain(Retention),
}

#[derive(Debug, Default)]
struct Progress {
    /// Messages sent and not yet handled.
    pending: u64,
    report: FilesReport,
}

/// The run's file thread and what it reports.
#[derive(Debug)]
pub(crate) struct Files {
    sender: Mutex<Option<Sender<Message>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    progress: Arc<(Mutex<Progress>, Condvar)>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Message")
    }
}

/// The size and modification time of a regular file, or why it cannot be logged.
pub(crate) fn stat_file(path: &Path) -> Result<(u64, Option<SystemTime>), String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.is_dir() {
        return Err("it is a directory (only a checkpoint or an artifact may be one)".into());
    }
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    Ok((meta.len(), meta.modified().ok()))
}

/// Whether `path` is a directory (a directory checkpoint or artifact), or why it cannot
/// be logged at all.
pub(crate) fn is_directory(path: &Path) -> Result<bool, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    Ok(meta.is_dir())
}

/// The regular files under `dir`, by their `/`-separated path relative to it, in path
/// order; a symlink or anything else that is not a file or a directory is refused.
fn walk(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_owned(), String::new())];
    while let Some((at, prefix)) = stack.pop() {
        let entries = std::fs::read_dir(&at).map_err(|e| format!("{}: {e}", at.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", at.display()))?;
            let name = entry
                .file_name()
                .into_string()
                .map_err(|n| format!("{}: a name that is not UTF-8", at.join(n).display()))?;
            let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            let kind = entry.file_type().map_err(|e| format!("{rel}: {e}"))?;
            if kind.is_dir() {
                stack.push((entry.path(), rel));
            } else if kind.is_file() {
                goodseed_store::artifacts::check_tree_path(&rel)?;
                out.push((rel, entry.path()));
            } else {
                return Err(format!("{rel} is not a regular file (a symlink?): not copied"));
            }
        }
    }
    out.sort();
    Ok(out)
}

impl Files {
    /// Starts the thread over the run's blob sink.
    pub(crate) fn start(
        sink: Arc<dyn BlobSink>,
        shared: Arc<Shared>,
        run_id: &str,
    ) -> std::io::Result<Files> {
        let (sender, receiver) = std::sync::mpsc::channel();
        let progress = Arc::new((Mutex::new(Progress::default()), Condvar::new()));
        let worker = Worker {
            sink,
            shared,
            progress: Arc::clone(&progress),
            retention: None,
            checkpoints: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("goodseed-files-{run_id}"))
            .spawn(move || worker.run(receiver))?;
        Ok(Files { sender: Mutex::new(Some(sender)), thread: Mutex::new(Some(thread)), progress })
    }

    fn send(&self, message: Message) -> bool {
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = sender.as_ref() else { return false };
        self.progress.0.lock().unwrap_or_else(PoisonError::into_inner).pending += 1;
        if sender.send(message).is_err() {
            self.progress.0.lock().unwrap_or_else(PoisonError::into_inner).pending -= 1;
            return false;
        }
        true
    }

    /// Queues a file; false once the run is closing.
    pub(crate) fn register(&self, job: Job) -> bool {
        self.send(Message::File(Box::new(job)))
    }

    /// Queues a mark of the best checkpoint (after the files queued before it).
    pub(crate) fn mark_best(&self, name: String, step: Step) -> bool {
        self.send(Message::MarkBest { name, step })
    }

    /// Sets the retention rule, applied at once to what this run registered.
    pub(crate) fn retain(&self, rule: Retention) -> bool {
        self.send(Message::Retain(rule))
    }

    /// Waits until every file queued so far is handled.
    pub(crate) fn wait(&self) -> FilesReport {
        let (lock, cond) = &*self.progress;
        let mut p = lock.lock().unwrap_or_else(PoisonError::into_inner);
        while p.pending > 0 {
            p = cond.wait(p).unwrap_or_else(PoisonError::into_inner);
        }
        p.report.clone()
    }

    /// Handles everything queued, then stops the thread (the run is closing).
    pub(crate) fn finish(&self) -> FilesReport {
        drop(self.sender.lock().unwrap_or_else(PoisonError::into_inner).take());
        let thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        self.progress.0.lock().unwrap_or_else(PoisonError::into_inner).report.clone()
    }
}

/// A checkpoint this run registered, as retention sees it.
#[derive(Debug, Clone)]
struct Registered {
    name: String,
    step: Step,
    metrics: Vec<(String, f64)>,
}

struct Worker {
    sink: Arc<dyn BlobSink>,
    shared: Arc<Shared>,
    progress: Arc<(Mutex<Progress>, Condvar)>,
    retention: Option<Retention>,
    checkpoints: Vec<Registered>,
}

impl Worker {
    fn run(mut self, messages: Receiver<Message>) {
        for message in messages {
            match message {
                Message::File(job) => self.file(*job),
                Message::MarkBest { name, step } => {
                    self.push(vec![ArtifactOp::Change(ArtifactChange::MarkBest { name, step })]);
                }
                Message::Retain(rule) => {
                    self.retention = Some(rule);
                    self.apply_retention();
                }
            }
            let (lock, cond) = &*self.progress;
            lock.lock().unwrap_or_else(PoisonError::into_inner).pending -= 1;
            cond.notify_all();
        }
    }

    fn report(&self, f: impl FnOnce(&mut FilesReport)) {
        f(&mut self.progress.0.lock().unwrap_or_else(PoisonError::into_inner).report);
    }

    fn fail(&self, job: &Job, why: &str) {
        let line = format!(
            "{} {:?} ({}) was not registered: {why}",
            job.kind.as_str(),
            job.name,
            job.path.display()
        );
        crate::writer::tell(&line);
        self.report(|r| r.failures.push(line));
    }

    fn file(&mut self, job: Job) {
        let blob = if job.tree {
            self.copy_tree(&job)
        } else if job.in_place {
            self.describe(&job)
        } else {
            self.copy(&job)
        };
        let Some(blob) = blob else { return };
        let copied = if job.in_place { 0 } else { blob.size };
        let new = NewArtifact {
            kind: job.kind,
            name: job.name.clone(),
            step: job.step,
            blob,
            metrics: job.metrics.clone(),
            in_place: job
                .in_place
                .then(|| std::path::absolute(&job.path).unwrap_or(job.path.clone()))
                .map(|p| p.display().to_string()),
        };
        if let Err(why) = new.check() {
            if !job.in_place {
                self.sink.unpin(&new.blob.hash);
            }
            self.fail(&job, &why);
            return;
        }
        let mut ops = vec![ArtifactOp::Add(new)];
        if job.kind == ArtifactKind::Checkpoint
            && let Some(step) = job.step
        {
            self.checkpoints.retain(|c| !(c.name == job.name && c.step == step));
            self.checkpoints.push(Registered { name: job.name, step, metrics: job.metrics });
            ops.extend(self.retention_ops());
        }
        let deleted = ops
            .iter()
            .filter(|o| matches!(o, ArtifactOp::Change(ArtifactChange::Delete { .. })))
            .count();
        self.push(ops);
        self.report(|r| {
            r.registered += 1;
            r.bytes_copied += copied;
            r.deleted += deleted as u64;
        });
    }

    fn copy(&self, job: &Job) -> Option<BlobRef> {
        let blob = match self.sink.ingest(&job.path, &mut |_| {}) {
            Ok(b) => b,
            Err(e) => {
                self.fail(job, &e.to_string());
                return None;
            }
        };
        // The bytes copied must be the file as it was when it was logged.
        let now = stat_file(&job.path).ok();
        if now != Some(job.seen) || blob.size != job.seen.0 {
            self.sink.unpin(&blob.hash);
            self.fail(job, "the file changed while it was copied (save each checkpoint to a file of its own, or wait with Run::wait_for_files before saving over it)");
            return None;
        }
        Some(blob)
    }

    /// Copies every file of a directory, then a manifest of them, which the record
    /// names (with the files' total size). The files stay pinned until the writer
    /// registers the record.
    fn copy_tree(&self, job: &Job) -> Option<BlobRef> {
        let files = match walk(&job.path) {
            Ok(f) => f,
            Err(e) => {
                self.fail(job, &e);
                return None;
            }
        };
        let mut tree = Tree::default();
        let unpin_all = |tree: &Tree| {
            for f in &tree.files {
                self.sink.unpin(&f.hash);
            }
        };
        for (rel, path) in files {
            let before = stat_file(&path);
            let blob = match self.sink.ingest(&path, &mut |_| {}) {
                Ok(b) => b,
                Err(e) => {
                    unpin_all(&tree);
                    self.fail(job, &format!("{rel}: {e}"));
                    return None;
                }
            };
            let after = stat_file(&path);
            let size = blob.size;
            tree.files.push(TreeFile { path: rel.clone(), hash: blob.hash, size });
            if before.is_err() || before != after || after.as_ref().is_ok_and(|a| a.0 != size) {
                unpin_all(&tree);
                self.fail(job, &format!("{rel} changed while it was copied"));
                return None;
            }
        }
        let manifest = std::env::temp_dir().join(format!(
            "goodseed-tree-{}-{}.json",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let made = std::fs::write(&manifest, tree.to_json())
            .map_err(|e| e.to_string())
            .and_then(|()| self.sink.ingest(&manifest, &mut |_| {}).map_err(|e| e.to_string()));
        let _ = std::fs::remove_file(&manifest);
        match made {
            Ok(mut blob) => {
                blob.size = tree.total();
                goodseed_core::media::TREE.clone_into(&mut blob.media_type);
                Some(blob)
            }
            Err(e) => {
                unpin_all(&tree);
                self.fail(job, &format!("the directory's manifest: {e}"));
                None
            }
        }
    }

    fn describe(&self, job: &Job) -> Option<BlobRef> {
        match describe_file(&job.path) {
            Ok(b) if b.size == job.seen.0 => Some(b),
            Ok(_) => {
                self.fail(job, "the file changed while it was read");
                None
            }
            Err(e) => {
                self.fail(job, &e.to_string());
                None
            }
        }
    }

    fn apply_retention(&mut self) {
        let ops = self.retention_ops();
        let deleted = ops
            .iter()
            .filter(|o| matches!(o, ArtifactOp::Change(ArtifactChange::Delete { .. })))
            .count();
        if !ops.is_empty() {
            self.push(ops);
        }
        self.report(|r| r.deleted += deleted as u64);
    }

    /// The deletes (and the mark of the best) the rule asks for; forgets the deleted.
    fn retention_ops(&mut self) -> Vec<ArtifactOp> {
        let Some(rule) = &self.retention else { return Vec::new() };
        let (keep, best) = kept(&self.checkpoints, rule);
        let mut ops = Vec::new();
        if let Some(b) = best {
            let c = &self.checkpoints[b];
            ops.push(ArtifactOp::Change(ArtifactChange::MarkBest {
                name: c.name.clone(),
                step: c.step,
            }));
        }
        let mut left = Vec::new();
        for (i, c) in self.checkpoints.drain(..).enumerate() {
            if keep.contains(&i) {
                left.push(c);
            } else {
                ops.push(ArtifactOp::Change(ArtifactChange::Delete {
                    kind: ArtifactKind::Checkpoint,
                    name: c.name,
                    step: Some(c.step),
                }));
            }
        }
        self.checkpoints = left;
        ops
    }

    /// Hands records and changes to the writer thread, with the run's next transaction.
    fn push(&self, ops: Vec<ArtifactOp>) {
        let mut st = self.shared.lock();
        st.artifacts.extend(ops);
        self.shared.after_append(&mut st, 0);
        drop(st);
        self.shared.work.notify_one();
    }
}

/// Which checkpoints a rule keeps (indices), and the best one when it ranks by a metric.
fn kept(checkpoints: &[Registered], rule: &Retention) -> (BTreeSet<usize>, Option<usize>) {
    let mut keep = BTreeSet::new();
    let mut best = None;
    if let Some((k, metric, goal)) = &rule.best {
        let value = |c: &Registered| {
            c.metrics
                .iter()
                .rev()
                .find(|(m, _)| m == metric)
                .map(|(_, v)| *v)
                .filter(|v| !v.is_nan())
        };
        let mut order: Vec<usize> = (0..checkpoints.len()).collect();
        // Best first; without the metric, last; ties: the later step first.
        order.sort_by(|&a, &b| {
            let (va, vb) = (value(&checkpoints[a]), value(&checkpoints[b]));
            let by_value = match (va, vb) {
                (Some(x), Some(y)) => match goal {
                    Goal::Min => x.total_cmp(&y),
                    Goal::Max => y.total_cmp(&x),
                },
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            by_value.then(checkpoints[b].step.get().total_cmp(&checkpoints[a].step.get()))
        });
        best = order.first().copied().filter(|&i| value(&checkpoints[i]).is_some());
        keep.extend(order.into_iter().take(*k));
    }
    if let Some(n) = rule.last {
        let mut order: Vec<usize> = (0..checkpoints.len()).collect();
        order.sort_by(|&a, &b| checkpoints[b].step.get().total_cmp(&checkpoints[a].step.get()));
        keep.extend(order.into_iter().take(n));
    }
    (keep, best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ck(name: &str, step: u32, loss: Option<f64>) -> Registered {
        Registered {
            name: name.into(),
            step: Step::from(step),
            metrics: loss.map(|l| vec![("val/loss".to_owned(), l)]).unwrap_or_default(),
        }
    }

    #[test]
    fn keep_best_ranks_by_the_metric_and_puts_missing_values_last() {
        let cs = [
            ck("a", 1, Some(0.5)),
            ck("b", 2, None),
            ck("c", 3, Some(0.2)),
            ck("d", 4, Some(f64::NAN)),
            ck("e", 5, Some(0.9)),
        ];
        let (keep, best) = kept(&cs, &Retention::best(2, "val/loss", Goal::Min));
        assert_eq!(keep, BTreeSet::from([0, 2]));
        assert_eq!(best, Some(2));
        let (keep, best) = kept(&cs, &Retention::best(1, "val/loss", Goal::Max));
        assert_eq!((keep, best), (BTreeSet::from([4]), Some(4)));
    }

    #[test]
    fn keep_last_and_both_rules_together() {
        let cs = [ck("a", 1, Some(0.1)), ck("a", 2, Some(0.5)), ck("a", 3, Some(0.7))];
        assert_eq!(kept(&cs, &Retention::last(2)).0, BTreeSet::from([1, 2]));
        let both = Retention::best(1, "val/loss", Goal::Min).and_last(1);
        assert_eq!(kept(&cs, &both).0, BTreeSet::from([0, 2]));
        assert_eq!(kept(&cs, &Retention::last(0)).0, BTreeSet::new());
    }

    #[test]
    fn no_metric_anywhere_marks_no_best() {
        let cs = [ck("a", 1, None), ck("a", 2, None)];
        let (keep, best) = kept(&cs, &Retention::best(1, "val/loss", Goal::Min));
        assert_eq!((keep, best), (BTreeSet::from([1]), None), "ties keep the later step");
    }
}
