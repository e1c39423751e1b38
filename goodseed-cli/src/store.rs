//! The composition root: the one place the CLI picks the store every command works on.
//! Commands get a [`DataStore`] and use the store's port ([`RunStore`]) only.
//!
//! A store is a data directory (SQLite files, the default) or a PostgreSQL database
//! (`--store postgresql://…` or `GOODSEED_STORE`, see `goodseed-postgres`). The
//! database's access tokens live in it; a data directory's beside its runs.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use goodseed_postgres::{PgStore, PgTokenStore, is_postgres_url};
use goodseed_store::tokens::TokenStore;
use goodseed_store::{RunStore, StoreLocation, open_store as open_location, open_token_store};

use crate::home;

/// Where a command's runs are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// A data directory named (or `None`: the default one, see [`home::projects_dir`]).
    Dir(Option<OsString>),
    /// A PostgreSQL connection string.
    Postgres(String),
}

impl Location {
    /// The location from `--dir`/`DIR` and `--store`/`GOODSEED_STORE`: a directory
    /// given explicitly and a store are refused together, as they name two places.
    pub(crate) fn from_args(
        dir: Option<OsString>,
        store: Option<String>,
    ) -> anyhow::Result<Location> {
        let dir = dir.filter(|d| !d.is_empty());
        match (dir, store.filter(|s| !s.is_empty())) {
            (Some(d), Some(s)) => anyhow::bail!(
                "both a data directory ({}) and a store ({}) were given (--store or \
                 GOODSEED_STORE): give one",
                PathBuf::from(d).display(),
                if is_postgres_url(&s) { "a PostgreSQL database".to_owned() } else { s }
            ),
            (None, Some(s)) if is_postgres_url(&s) => Ok(Location::Postgres(s)),
            (None, Some(s)) => Ok(Location::Dir(Some(s.into()))),
            (d, None) => Ok(Location::Dir(d)),
        }
    }
}

/// A command's store, and what messages call it.
pub(crate) struct DataStore {
    pub(crate) store: Arc<dyn RunStore>,
    /// The data directory, or the database as people may see it (no password).
    pub(crate) dir: PathBuf,
    /// The access tokens kept with the runs.
    tokens: Arc<dyn TokenStore>,
    /// The requests of interactive control kept with the runs.
    requests: Arc<dyn goodseed_store::requests::RequestStore>,
    /// The store is a database, not a directory.
    database: bool,
}

/// The store at a location. A database is reached and its schema brought up to date
/// first: an error says why it cannot be.
pub(crate) fn open_store(location: Location) -> anyhow::Result<DataStore> {
    match location {
        Location::Dir(dir) => Ok(open_projects(home::projects_dir(dir)?)),
        Location::Postgres(url) => {
            let store = with_blob_dir(PgStore::open(&url, goodseed_postgres::DEFAULT_POOL_SIZE)?);
            store
                .migrate()
                .with_context(|| format!("cannot open the store {}", store.location()))?;
            Ok(database(store))
        }
    }
}

/// The store at a location, for a server: a database that cannot be reached yet is
/// waited for, saying so in one line each time it is tried again.
pub(crate) fn open_store_waiting(
    location: Location,
    mut tell: impl FnMut(String),
) -> anyhow::Result<DataStore> {
    match location {
        Location::Postgres(url) => {
            let store = with_blob_dir(PgStore::open(&url, goodseed_postgres::DEFAULT_POOL_SIZE)?);
            store
                .migrate_waiting(|e, wait| {
                    tell(format!("{e}; trying again in {:.1} s", wait.as_secs_f64()))
                })
                .with_context(|| format!("cannot open the store {}", store.location()))?;
            Ok(database(store))
        }
        dir => open_store(dir),
    }
}

/// A database store keeps runs' files (checkpoints, artifacts) in the directory
/// `GOODSEED_BLOB_DIR` names (shared by every server and trainer over the database);
/// without it, it keeps none.
fn with_blob_dir(store: PgStore) -> PgStore {
    match std::env::var_os("GOODSEED_BLOB_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => store.with_blob_dir(dir),
        None => store,
    }
}

/// A database store whose schema is up to date.
pub(crate) fn database(store: PgStore) -> DataStore {
    let tokens: Arc<dyn TokenStore> = Arc::new(PgTokenStore::of(&store));
    let requests = Arc::new(goodseed_postgres::PgRequestStore::of(&store));
    let dir = PathBuf::from(store.location());
    DataStore { store: Arc::new(store), dir, tokens, requests, database: true }
}

/// The store of a projects directory.
pub(crate) fn open_projects(dir: PathBuf) -> DataStore {
    DataStore {
        store: open_location(&StoreLocation::Projects(dir.clone())),
        tokens: open_token_store(&StoreLocation::Projects(dir.clone())),
        requests: goodseed_store::open_request_store(&StoreLocation::Projects(dir.clone())),
        dir,
        database: false,
    }
}

impl DataStore {
    /// The same store for a long-running server: a data directory's lists from an index
    /// kept current by file-system notifications (`SqliteStore::watched`) instead of
    /// walking the directory for every listing. `tell` hears why it cannot be, if so
    /// (listings then walk the directory).
    pub(crate) fn watched(mut self, tell: impl FnOnce(String)) -> DataStore {
        if self.database {
            return self;
        }
        let store = goodseed_store::SqliteStore::new(&self.dir).watched();
        // A directory not there yet is said by the caller, and watched once it is.
        if let Some(problem) = store.watch_problem().filter(|_| self.dir.is_dir()) {
            tell(format!("{problem}: every listing walks the directory"));
        }
        self.store = Arc::new(store);
        self
    }
}

/// The keys of the cloud API kept with the runs at `location`.
pub(crate) fn open_tokens(location: Location) -> anyhow::Result<Arc<dyn TokenStore>> {
    Ok(open_store(location)?.tokens())
}

impl DataStore {
    /// The keys of the cloud API kept beside this store's runs.
    pub(crate) fn tokens(&self) -> Arc<dyn TokenStore> {
        Arc::clone(&self.tokens)
    }

    /// The requests of interactive control kept beside this store's runs.
    pub(crate) fn requests(&self) -> Arc<dyn goodseed_store::requests::RequestStore> {
        Arc::clone(&self.requests)
    }

    /// Whether the store is a database (else a data directory).
    pub(crate) fn is_database(&self) -> bool {
        self.database
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
    /// What is wrong with the data directory, for the commands to say the same thing
    /// (a database has no directory: never).
    pub(crate) fn problem(&self) -> Option<DirProblem> {
        if self.database {
            return None;
        }
        match std::fs::metadata(&self.dir) {
            Ok(m) if m.is_dir() => None,
            Ok(_) => Some(DirProblem::NotADirectory),
            Err(_) => Some(DirProblem::Missing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_a_database_or_a_directory_never_both() {
        let url = "postgresql://u:pw@h/db".to_owned();
        assert_eq!(
            Location::from_args(None, Some(url.clone())).ok(),
            Some(Location::Postgres(url.clone()))
        );
        assert_eq!(
            Location::from_args(None, Some("/data".into())).ok(),
            Some(Location::Dir(Some("/data".into())))
        );
        assert_eq!(
            Location::from_args(Some("/d".into()), None).ok(),
            Some(Location::Dir(Some("/d".into())))
        );
        assert_eq!(
            Location::from_args(Some("".into()), Some(String::new())).ok(),
            Some(Location::Dir(None))
        );
        let both = Location::from_args(Some("/d".into()), Some(url)).expect_err("two places");
        assert!(
            both.to_string().contains("give one") && !both.to_string().contains("pw"),
            "{both}"
        );
    }
}
