//! The store's error type.

use std::path::PathBuf;

/// What can go wrong in the store.
///
/// Database errors carry a message and the file, never a rusqlite type, so callers do not
/// depend on the backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No run with this project and id exists in the catalog.
    #[error("run not found: {project}/{run_id}")]
    NotFound {
        /// The project asked for.
        project: String,
        /// The run id asked for.
        run_id: String,
    },
    /// A new run's file already exists.
    #[error("run file already exists: {}", path.display())]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },
    /// The file exists but is not a goodseed run (no `run_meta` table, not SQLite, empty).
    #[error("{} is not a readable goodseed run: {reason}", path.display())]
    NotARun {
        /// The file.
        path: PathBuf,
        /// Why, in a few words.
        reason: String,
    },
    /// Deleting a run that is not in the trash: only trashed runs can be deleted.
    #[error("run {project}/{run_id} is not in the trash; only trashed runs can be deleted")]
    NotTrashed {
        /// The project.
        project: String,
        /// The run id.
        run_id: String,
    },
    /// Another writer has the run open (its writer lock is held).
    #[error("run {} is being written by another writer", path.display())]
    Locked {
        /// The run file.
        path: PathBuf,
    },
    /// The writer was already closed.
    #[error("run writer for {} is closed", path.display())]
    Closed {
        /// The file.
        path: PathBuf,
    },
    /// A path resolved outside the data directory (a symlink, for example).
    #[error("{what} leads outside the data directory")]
    OutsideRoot {
        /// What was refused, without revealing where it pointed.
        what: String,
    },
    /// The database reported an error.
    #[error("database error on {}: {message}", path.display())]
    Database {
        /// The file.
        path: PathBuf,
        /// SQLite's message.
        message: String,
        /// Whether SQLite reported the file busy or locked by another connection.
        busy: bool,
    },
    /// A filesystem operation failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done ("reading", "creating", …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub(crate) fn db(path: &std::path::Path, err: rusqlite::Error) -> StoreError {
        let busy = matches!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        StoreError::Database { path: path.to_owned(), message: err.to_string(), busy }
    }

    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        StoreError::Io { action, path: path.to_owned(), source }
    }

    /// True for [`StoreError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}
