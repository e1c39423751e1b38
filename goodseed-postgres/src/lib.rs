//! Goodseed's run store on PostgreSQL 15 or newer: the store's port
//! ([`goodseed_store::RunStore`], with its writer, reader and uploads) and the team
//! server's access tokens ([`PgTokenStore`]), for team servers that share one database.
//!
//! One database holds every run: `goodseed_runs` (one row per run: who writes it, its
//! last heartbeat, its generation), `goodseed_run_meta`, `goodseed_configs`,
//! `goodseed_series` (with each series' point count and last step, kept by the writer)
//! and the points: text points in `goodseed_text_points`, keyed by (series, step) as the
//! run files are, metric points packed in blocks of steps in `goodseed_metric_blocks`
//! (one row per series per write). Values round-trip exactly: steps and values are
//! `double precision` read and written in binary (NaN, ±infinity, -0.0 and 2^53 steps
//! included), config values keep their type tag and text, and user text is `bytea`.
//! See [`schema`] for the migrations.
//!
//! Liveness is kept in the database, so every server over it sees the same: a writer
//! takes a run by setting its random token in the run's row and proves it is alive with
//! a heartbeat (database time) on every write and every [`BEAT`] from a thread of the
//! store that opened it; a run whose holder has not beaten for
//! [`goodseed_store::HEARTBEAT_STALE_AFTER`] is dead (shown as crashed), as is one whose
//! writer let go without closing. Every write checks that the writer still holds the
//! run, so a writer taken for dead and replaced can never write over its successor.
//!
//! Listing keeps each run's summary under its generation: a warm listing reads one row
//! per run and loads only runs that changed since.
//!
//! ```no_run
//! use goodseed_postgres::PgStore;
//! use goodseed_store::RunStore;
//!
//! let store = PgStore::connect("postgresql://goodseed@127.0.0.1:5432/goodseed")?;
//! for run in store.list_runs(None)?.runs {
//!     println!("{}/{}: {}", run.project, run.run_id, run.status);
//! }
//! # Ok::<(), goodseed_store::StoreError>(())
//! ```

mod artifacts;
mod blocks;
mod notify;
mod reader;
mod requests;
pub mod schema;
mod store;
mod tokens;
mod uploads;
mod writer;

use std::str::FromStr;
use std::time::Duration;

use goodseed_store::StoreError;
use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;

pub use requests::PgRequestStore;
pub use store::PgStore;
pub use tokens::PgTokenStore;

/// How often a store's thread proves its open writers alive.
pub const BEAT: Duration = Duration::from_secs(10);

/// The connections a store keeps open at most, unless told otherwise.
pub const DEFAULT_POOL_SIZE: u32 = 16;

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;
type Conn = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// Whether a store location names a PostgreSQL database (`postgresql://…` or
/// `postgres://…`).
pub fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgresql://") || location.starts_with("postgres://")
}

/// A connection string parsed, and shown without its password.
#[derive(Clone)]
struct Target {
    config: postgres::Config,
    shown: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Target {
    fn parse(url: &str) -> Result<Target, StoreError> {
        let mut config = postgres::Config::from_str(url).map_err(|e| StoreError::Database {
            location: redact(url),
            message: format!("not a PostgreSQL connection string: {e}"),
            busy: false,
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("goodseed");
        }
        Ok(Target { config, shown: redact(url) })
    }
}

/// A connection string without its password, for people to read.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "a PostgreSQL database".to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let tail = tail.split('?').next().unwrap_or("");
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => format!("{scheme}://{authority}{tail}"),
    }
}

/// A database error, as the store reports it. "Busy" (try again later) covers the
/// database being unreachable, restarting or shutting down, as well as lock conflicts:
/// callers answer 503 and clients retry, so nothing they sent is lost.
fn db_error(location: &str, e: &postgres::Error) -> StoreError {
    use postgres::error::SqlState;
    let busy = match e.code() {
        Some(c) => {
            *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::LOCK_NOT_AVAILABLE
                || *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
                || c.code().starts_with("08")
        }
        // No answer from the server: the connection failed or was lost.
        None => {
            e.is_closed() || e.as_db_error().is_none() && std::error::Error::source(e).is_some()
        }
    };
    let message = match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None if e.is_closed() => "the connection to the database was lost".to_owned(),
        None => e.to_string(),
    };
    StoreError::Database { location: location.to_owned(), message, busy }
}

/// A pool that could not hand out a connection: the database cannot be reached (for
/// now: "busy", so a server answers 503 and clients retry).
fn pool_error(location: &str, e: &r2d2::Error) -> StoreError {
    StoreError::Database {
        location: location.to_owned(),
        message: format!("cannot reach the database: {e}"),
        busy: true,
    }
}

fn make_pool(target: &Target, size: u32) -> Pool {
    let manager = PostgresConnectionManager::new(target.config.clone(), NoTls);
    // Unchecked: a store over a database that is down still opens; every call then
    // says why it cannot reach it, and works again once it is back.
    r2d2::Pool::builder()
        .max_size(size.max(1))
        .min_idle(Some(0))
        .connection_timeout(Duration::from_secs(5))
        .test_on_check_out(true)
        .build_unchecked(manager)
}

/// Runs `f` where the `postgres` client may block: the client drives its connection
/// with a runtime of its own, which cannot start on a thread that already runs an async
/// runtime (a server's worker thread). There `f` runs on a thread of its own, which the
/// caller waits for; elsewhere it runs in place.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if in_runtime() {
        std::thread::scope(|s| match s.spawn(f).join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    } else {
        f()
    }
}

/// Whether this thread runs an async runtime.
pub(crate) fn in_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(redact("postgresql://u:secret@h:5432/db"), "postgresql://u@h:5432/db");
        assert_eq!(redact("postgres://h/db?password=x&sslmode=off"), "postgres://h/db");
        assert_eq!(redact("postgresql://u:p@h"), "postgresql://u@h");
        assert_eq!(redact("nonsense"), "a PostgreSQL database");
        assert!(is_postgres_url("postgresql://x") && is_postgres_url("postgres://x"));
        assert!(!is_postgres_url("/home/me/.goodseed"));
        let err = Target::parse("postgresql://u:pw@h:notaport/db").expect_err("bad port");
        assert!(!err.to_string().contains("pw"), "{err}");
    }
}
