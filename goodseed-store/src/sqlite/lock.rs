//! The writer lock: `<run>.sqlite.lock` beside a run file, held with an exclusive
//! `flock` for as long as a writer has the run open.
//!
//! A second writer (another process, or another writer in this process) is refused. A
//! reader tells a live run from a dead one by trying a shared lock: a run stored as
//! running whose lock file exists but is free lost its writer without closing: it
//! crashed. The lock file is removed when the writer closes; a crash leaves it behind,
//! free, which is exactly the evidence. Readers open it read-only and never create it.
//!
//! The lock is a separate file because closing any descriptor of the database file in a
//! process drops that process's POSIX locks on it, SQLite's included.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::{Result, StoreError};

/// `<run file>.lock`.
pub fn lock_path(run_file: &Path) -> PathBuf {
    let mut s = run_file.as_os_str().to_owned();
    s.push(".lock");
    s.into()
}

/// An exclusive writer lock on one run, released (and its file removed) on drop.
#[derive(Debug)]
pub(crate) struct WriterLock {
    file: Option<File>,
    path: PathBuf,
    /// Whether the lock file was there before this lock (left by a writer that died).
    found: bool,
}

impl WriterLock {
    /// Takes the lock, or fails with [`StoreError::Locked`] if a writer holds it.
    pub(crate) fn acquire(run_file: &Path) -> Result<WriterLock> {
        let path = lock_path(run_file);
        // Loop in case the holder removed the file between our open and our lock: a
        // lock on an unlinked file would lock nothing.
        let found = path.exists();
        for _ in 0..10 {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| StoreError::io("creating the writer lock", &path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(StoreError::Locked { location: crate::error::shown(run_file) });
                }
                Err(TryLockError::Error(e)) => {
                    return Err(StoreError::io("taking the writer lock", &path, e));
                }
            }
            if same_file(&file, &path) {
                return Ok(WriterLock { file: Some(file), path, found });
            }
        }
        Err(StoreError::Locked { location: crate::error::shown(run_file) })
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, path: &Path) -> bool {
    path.exists()
}

impl WriterLock {
    /// Releases the lock without having used it: a lock file a dead writer left stays
    /// (it is the evidence that the run crashed), one this lock made goes.
    pub(crate) fn give_back(mut self) {
        let file = self.file.take();
        if !self.found {
            let _ = std::fs::remove_file(&self.path);
        }
        drop(file);
    }
}

impl WriterLock {
    /// Releases the lock and leaves its file, free: what a writer that died leaves, which
    /// readers take as "the run's writer is gone" (a run that says `running` then shows
    /// as crashed).
    pub(crate) fn abandon(mut self) {
        drop(self.file.take());
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        // Remove the file while still holding the lock, then release it.
        if let Some(file) = self.file.take() {
            let _ = std::fs::remove_file(&self.path);
            drop(file);
        }
    }
}

/// What the lock file says about a run's writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockState {
    /// No lock file: no writer of ours has the run open, or it closed cleanly.
    Absent,
    /// A writer holds the lock.
    Held,
    /// The lock file exists but nobody holds it: its writer died.
    Abandoned,
}

/// Probes the lock without creating anything.
pub(crate) fn probe(run_file: &Path) -> LockState {
    let Ok(file) = File::open(lock_path(run_file)) else {
        return LockState::Absent;
    };
    match file.try_lock_shared() {
        Ok(()) => LockState::Abandoned,
        Err(TryLockError::WouldBlock) => LockState::Held,
        // Locking unsupported here (some network filesystems): no evidence either way.
        Err(TryLockError::Error(_)) => LockState::Absent,
    }
}
