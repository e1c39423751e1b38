//! The on-disk schema: goodseed 0.4.0's DDL, plus the one table we add for NaN values.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::{Result, StoreError};

/// The schema version 0.4.0 stamps in `run_meta`.
pub(crate) const SCHEMA_VERSION: &str = "1";

/// goodseed 0.4.0's DDL, statement for statement.
pub(crate) const DDL: &str = "
CREATE TABLE IF NOT EXISTS run_meta (
    key TEXT PRIMARY KEY,
    value TEXT
);

CREATE TABLE IF NOT EXISTS configs (
    path TEXT PRIMARY KEY,
    type_tag TEXT NOT NULL,
    value TEXT,
    updated_at TEXT NOT NULL,
    uploaded INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS metric_series (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS metric_points (
    series_id INTEGER NOT NULL REFERENCES metric_series(id),
    step REAL NOT NULL,
    y REAL NOT NULL,
    ts INTEGER NOT NULL,
    uploaded INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (series_id, step)
);

CREATE TABLE IF NOT EXISTS string_series (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS string_points (
    series_id INTEGER NOT NULL REFERENCES string_series(id),
    step REAL NOT NULL,
    value TEXT NOT NULL,
    ts INTEGER NOT NULL,
    uploaded INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (series_id, step)
);
";

/// Where NaN metric values live. SQLite stores a NaN bound as REAL as NULL, which
/// `metric_points.y REAL NOT NULL` refuses, so 0.4.0 loses the whole batch. We keep NaN
/// points here instead (created on the first NaN), so 0.4.0 still reads the file and we
/// read the NaN back at its step. See docs/FORMAT.md.
pub(crate) const NAN_TABLE: &str = "metric_nan_points";

pub(crate) const NAN_DDL: &str = "
CREATE TABLE IF NOT EXISTS metric_nan_points (
    series_id INTEGER NOT NULL REFERENCES metric_series(id),
    step REAL NOT NULL,
    ts INTEGER NOT NULL,
    uploaded INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (series_id, step)
);
";

/// How long a connection waits on another one's lock before reporting busy.
pub(crate) const BUSY_TIMEOUT_MS: u32 = 5000;

/// Opens a connection for writing and sets the writer's PRAGMAs: WAL,
/// `synchronous=NORMAL`, and no automatic checkpoint (the writer checkpoints from a
/// thread of its own, see `writer.rs`).
pub(crate) fn open_writer(path: &Path, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| StoreError::db(path, e))?;
    conn.execute_batch(&format!(
        "PRAGMA busy_timeout={BUSY_TIMEOUT_MS};
         PRAGMA journal_mode=WAL;
         PRAGMA synchronous=NORMAL;
         PRAGMA temp_store=MEMORY;
         PRAGMA cache_size=-8000;
         PRAGMA wal_autocheckpoint=0;"
    ))
    .map_err(|e| StoreError::db(path, e))?;
    Ok(conn)
}

/// How a reader opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadMode {
    /// The run was closed (no `-wal` beside it): open with `immutable=1`, which takes no
    /// locks and creates no `-wal`/`-shm` files.
    Closed,
    /// A writer may be live: open read-only and share its WAL.
    Live,
}

impl ReadMode {
    /// Chooses the mode for a run file. A run is live while its WAL holds frames or a
    /// writer holds its lock. An empty `-wal` without a writer is what a closed run
    /// looks like after goodseed 0.4.0's readers opened it (they leave `-wal` and `-shm`
    /// behind): everything is in the main file, so it is read as closed.
    pub(crate) fn for_file(path: &Path) -> ReadMode {
        ReadMode::for_stamp(path, std::fs::metadata(wal_path(path)).ok().map(|m| m.len()))
    }

    /// The same, when the size of the `-wal` (if any) is already known.
    pub(crate) fn for_stamp(path: &Path, wal_size: Option<u64>) -> ReadMode {
        let live = match wal_size {
            None => false,
            Some(0) => super::lock::probe(path) == super::lock::LockState::Held,
            Some(_) => true,
        };
        if live { ReadMode::Live } else { ReadMode::Closed }
    }
}

/// `<file>-wal`.
pub(crate) fn wal_path(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push("-wal");
    s.into()
}

/// `<file>-shm`.
pub(crate) fn shm_path(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push("-shm");
    s.into()
}

/// The `file:` URI for a path, with the characters URIs reserve (and every non-ASCII
/// byte) percent-escaped.
pub(crate) fn file_uri(path: &Path, mode: ReadMode) -> String {
    use std::fmt::Write as _;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'%') {
            uri.push(b as char);
        } else {
            let _ = write!(uri, "%{b:02X}");
        }
    }
    uri.push_str(match mode {
        ReadMode::Closed => "?mode=ro&immutable=1",
        ReadMode::Live => "?mode=ro",
    });
    uri
}

pub(crate) fn reader_flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// Opens a read-only connection (used for one-off reads such as catalog summaries).
pub(crate) fn open_reader(path: &Path, mode: ReadMode) -> Result<Connection> {
    let conn = Connection::open_with_flags(file_uri(path, mode), reader_flags())
        .map_err(|e| StoreError::db(path, e))?;
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS.into()))
        .map_err(|e| StoreError::db(path, e))?;
    Ok(conn)
}

/// True when the connection's schema has this table.
pub(crate) fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
        .query_row([name], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
}

/// Checks that a file is a goodseed run, turning SQLite's errors into a short reason.
pub(crate) fn check_is_run(conn: &Connection, path: &Path) -> Result<()> {
    match has_table(conn, "run_meta") {
        Ok(true) => Ok(()),
        Ok(false) => Err(StoreError::NotARun {
            location: crate::error::shown(path),
            reason: "SQLite file without goodseed's run_meta table".to_owned(),
        }),
        Err(e) => Err(not_a_run(path, e)),
    }
}

/// True for the errors SQLite reports on a damaged file: corrupt, or not a database.
pub(crate) fn is_damage(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// Classifies an error from opening or reading a run file.
pub(crate) fn not_a_run(path: &Path, err: rusqlite::Error) -> StoreError {
    let reason = match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => "not an SQLite database".to_owned(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => "database is corrupt or truncated".to_owned(),
        Some(rusqlite::ErrorCode::CannotOpen) => "cannot be opened".to_owned(),
        _ => return StoreError::db(path, err),
    };
    StoreError::NotARun { location: crate::error::shown(path), reason }
}
