//! The store's error type.

/// What can go wrong in the store.
///
/// Errors carry a location for people to read (a file, a database), never a backend
/// type or a path to act on, so callers do not depend on the backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No run with this project and id exists in the store.
    #[error("run not found: {project}/{run_id}")]
    NotFound {
        /// The project asked for.
        project: String,
        /// The run id asked for.
        run_id: String,
    },
    /// A new run's id is already taken.
    #[error("run file already exists: {location}")]
    AlreadyExists {
        /// Where the run that has it is kept.
        location: String,
    },
    /// The run exists but cannot be read as a goodseed run (for SQLite: no `run_meta`
    /// table, not SQLite, empty).
    #[error("{location} is not a readable goodseed run: {reason}")]
    NotARun {
        /// Where it is kept.
        location: String,
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
    #[error("run {location} is being written by another writer")]
    Locked {
        /// Where the run is kept.
        location: String,
    },
    /// Resuming a run that another writer may be writing: its writer is alive, or it
    /// says `running` and nothing tells whether its writer is (goodseed 0.4.0's runs).
    #[error("run {location} is being written by another writer{holder}")]
    Live {
        /// Where the run is kept.
        location: String,
        /// Who holds it, when the run says (" (pid 123 on host)"), else why it counts
        /// as live (" (its status is running)").
        holder: String,
    },
    /// The writer was already closed.
    #[error("run writer for {location} is closed")]
    Closed {
        /// Where the run is kept.
        location: String,
    },
    /// A name resolved outside the store (a symlink out of the data directory).
    #[error("{what} leads outside the data directory")]
    OutsideRoot {
        /// What was refused, without revealing where it pointed.
        what: String,
    },
    /// The database reported an error.
    #[error("database error on {location}: {message}")]
    Database {
        /// Where the run is kept.
        location: String,
        /// The database's message.
        message: String,
        /// Whether the database reported the run busy or locked by another connection.
        busy: bool,
    },
    /// A request of interactive control, or an edit of a run, that cannot be made or
    /// settled, and why.
    #[error("{reason}")]
    BadRequest {
        /// Why, for people.
        reason: String,
    },
    /// No token with this id (or it was revoked already).
    #[error("no token {id:?} (see `goodseed token list`)")]
    TokenNotFound {
        /// The id asked for.
        id: String,
    },
    /// No artifact with this id in the run, or no blob with this hash.
    #[error("no artifact {what} in {location}")]
    NoSuchArtifact {
        /// The id or hash asked for.
        what: String,
        /// Where the run is kept.
        location: String,
    },
    /// What this store cannot do (yet), named.
    #[error("{what} is not supported by the store at {location}")]
    Unsupported {
        /// What was asked.
        what: &'static str,
        /// The store.
        location: String,
    },
    /// An operation of the operating system failed.
    #[error("{action} {location}")]
    Io {
        /// What was being done ("reading", "creating", …).
        action: &'static str,
        /// The file or directory, for people to read.
        location: String,
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
        StoreError::Database { location: shown(path), message: err.to_string(), busy }
    }

    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        StoreError::Io { action, location: shown(path), source }
    }

    /// True for [`StoreError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }

    /// True when the error says "try again later": the run is busy or locked by another
    /// connection, or its writer holds it.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            StoreError::Database { busy: true, .. }
                | StoreError::Locked { .. }
                | StoreError::Live { .. }
        )
    }
}

/// A path as errors show it.
pub(crate) fn shown(path: &std::path::Path) -> String {
    path.display().to_string()
}
