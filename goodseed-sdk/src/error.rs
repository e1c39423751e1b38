//! The SDK's error type.

use goodseed_core::flatten::FlattenError;
use goodseed_core::{IdentError, StepError};
use goodseed_store::StoreError;

/// What can go wrong creating a run or logging into it. A logging call that returns an
/// error logged nothing; everything logged before it is kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdkError {
    /// A project name, run id, path or display name broke its rules.
    #[error(transparent)]
    Invalid(#[from] IdentError),
    /// A step that cannot be stored (NaN, infinite, or a whole number beyond 2^53).
    #[error(transparent)]
    Step(#[from] StepError),
    /// A config value could not be flattened.
    #[error(transparent)]
    Config(#[from] FlattenError),
    /// An explicit run id that is already taken.
    #[error(
        "run file already exists: {location} (choose another run id, resume the run, or \
         delete the file)"
    )]
    AlreadyExists {
        /// Where the run that has the id is kept.
        location: String,
    },
    /// Resuming (or opening) a run that does not exist.
    #[error("cannot resume run: no run {project}/{run_id} in {store}")]
    NotFound {
        /// The project asked for.
        project: String,
        /// The run id asked for.
        run_id: String,
        /// The store looked in.
        store: String,
    },
    /// The run is open in another writer (another process, or another `Run` here).
    #[error("run {location} is being written by another writer{holder}")]
    Live {
        /// Where the run is kept.
        location: String,
        /// Who holds it, when the run says (" (pid 123 on host)").
        holder: String,
    },
    /// The run was finished; nothing more can be logged into it.
    #[error("run {run_id} is finished: nothing more can be logged into it")]
    Closed {
        /// The run.
        run_id: String,
    },
    /// The run's background writer cannot write (disk full, a read-only file, ...).
    /// What was logged before stays queued and is retried until the run closes. A
    /// logging call that returns it (once the writer has written nothing for 2 s)
    /// logged nothing; the run takes calls again as soon as a write succeeds. From
    /// `finish()`, it says how many points could not be written.
    #[error("run {run_id} cannot write to its file: {message}")]
    Writer {
        /// The run.
        run_id: String,
        /// The store's last error.
        message: String,
    },
    /// Adding or removing tags at a path that holds something other than a string set.
    #[error("cannot use {path} as tags: it holds a `{type_tag}` value, not a string set")]
    NotAStringSet {
        /// The config path.
        path: String,
        /// The type it holds.
        type_tag: String,
    },
    /// No free generated run id.
    #[error(transparent)]
    NoFreeRunId(#[from] goodseed_core::names::NamesError),
    /// A setting (of the builder, or from the environment) that cannot be used.
    #[error("invalid {name}: {message}")]
    Setting {
        /// The setting (an environment variable's name, say).
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// No home directory to put `~/.goodseed` in, and no `GOODSEED_HOME`.
    #[error("cannot find a home directory for ~/.goodseed: set GOODSEED_HOME or the run's home")]
    NoHome,
    /// A file given to a checkpoint, artifact or file-series call cannot be logged.
    #[error("cannot log {path}: {message}")]
    File {
        /// The file, as given.
        path: String,
        /// Why.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server of remote mode refused the key or the run (an address that does not
    /// answer is not an error: the run is uploaded when it does).
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
}

/// The SDK's result type.
pub type Result<T, E = SdkError> = std::result::Result<T, E>;
