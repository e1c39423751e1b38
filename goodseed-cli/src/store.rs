//! The composition root: the one place the CLI picks the store every command works on.
//! Commands get a [`DataStore`] and use the store's port ([`RunStore`]) only.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use goodseed_store::tokens::TokenStore;
use goodseed_store::{RunStore, StoreLocation, open_store as open_location, open_token_store};

use crate::home;

/// A command's store and the data directory it was opened on (for messages).
pub(crate) struct DataStore {
    pub(crate) store: Arc<dyn RunStore>,
    pub(crate) dir: PathBuf,
}

/// The store of the data directory `dir` names (see [`home::projects_dir`]).
pub(crate) fn open_store(dir: Option<OsString>) -> anyhow::Result<DataStore> {
    Ok(open_projects(home::projects_dir(dir)?))
}

/// The store of a projects directory.
pub(crate) fn open_projects(dir: PathBuf) -> DataStore {
    DataStore { store: open_location(&StoreLocation::Projects(dir.clone())), dir }
}

/// The keys of the cloud API kept in the data directory `dir` names.
pub(crate) fn open_tokens(dir: Option<OsString>) -> anyhow::Result<Arc<dyn TokenStore>> {
    Ok(open_token_store(&StoreLocation::Projects(home::projects_dir(dir)?)))
}

impl DataStore {
    /// The keys of the cloud API kept beside this store's runs.
    pub(crate) fn tokens(&self) -> Arc<dyn TokenStore> {
        open_token_store(&StoreLocation::Projects(self.dir.clone()))
    }
}

/// What is wrong with a data directory, when something is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirProblem {
    /// Nothing is there (yet).
    Missing,
    /// Something other than a directory is there.
    NotADirectory,
}

impl DataStore {
    /// What is wrong with the data directory, for the commands to say the same thing.
    pub(crate) fn problem(&self) -> Option<DirProblem> {
        match std::fs::metadata(&self.dir) {
            Ok(m) if m.is_dir() => None,
            Ok(_) => Some(DirProblem::NotADirectory),
            Err(_) => Some(DirProblem::Missing),
        }
    }
}
