//! Access tokens of the team server: each scoped to a workspace (the first part of
//! `workspace/project`), optionally to one project of it, and read-only or not. A token
//! is shown once when it is made and kept only as its SHA-256 hash; checking one costs
//! an indexed read, so a revoked token stops working at the next request.
//!
//! [`TokenStore`] is the port; [`SqliteTokenStore`] keeps tokens in
//! `<data dir>/.goodseed-server/tokens.sqlite` beside the runs (a folder no listing of
//! runs looks into).
//!
//! ```
//! use goodseed_store::tokens::{SqliteTokenStore, TokenScope, TokenStore};
//!
//! let dir = tempfile::tempdir()?;
//! let tokens = SqliteTokenStore::in_data_dir(dir.path());
//! let made = tokens.create(&TokenScope::new("team", None, false)?, Some("gpu box"))?;
//! let found = tokens.verify(&made.secret)?.expect("a token just made is valid");
//! assert_eq!(found.scope.workspace(), "team");
//! tokens.revoke(&made.info.id)?;
//! assert!(tokens.verify(&made.secret)?.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use goodseed_core::{IdentError, ProjectName};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

/// What a token may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenScope {
    workspace: String,
    project: Option<ProjectName>,
    read_only: bool,
}

impl TokenScope {
    /// A scope over one workspace, or one project of it (`project` is the name within
    /// the workspace: `vision` for `team/vision`). The workspace is one segment of a
    /// project name; both are checked by the core's rules for project names.
    pub fn new(
        workspace: &str,
        project: Option<&str>,
        read_only: bool,
    ) -> Result<TokenScope, ScopeError> {
        let ws = ProjectName::parse(workspace)?;
        if ws.segments().count() != 1 {
            return Err(ScopeError::Workspace(workspace.to_owned()));
        }
        let project = project.map(|p| ProjectName::parse(&format!("{ws}/{p}"))).transpose()?;
        Ok(TokenScope { workspace: ws.to_string(), project, read_only })
    }

    /// The workspace.
    pub fn workspace(&self) -> &str {
        &self.workspace
    }

    /// The one project (its full name, `workspace/project`), if the token is limited to
    /// one.
    pub fn project(&self) -> Option<&ProjectName> {
        self.project.as_ref()
    }

    /// Whether the token may only read.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Whether the token reaches runs of `project` (to read; writing needs
    /// [`TokenScope::may_write`] too).
    pub fn reaches(&self, project: &ProjectName) -> bool {
        match &self.project {
            Some(p) => p == project,
            None => {
                let mut segments = project.segments();
                segments.next() == Some(self.workspace.as_str()) && segments.next().is_some()
            }
        }
    }

    /// Whether the token may write into runs of `project`.
    pub fn may_write(&self, project: &ProjectName) -> bool {
        !self.read_only && self.reaches(project)
    }
}

impl std::fmt::Display for TokenScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.project {
            Some(p) => write!(f, "project {p}")?,
            None => write!(f, "workspace {}", self.workspace)?,
        }
        if self.read_only {
            f.write_str(", read-only")?;
        }
        Ok(())
    }
}

/// A scope that cannot be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// The workspace has more than one segment.
    #[error("a workspace is one segment of a project name, without `/`: {0:?}")]
    Workspace(String),
    /// The workspace or project breaks the rules of project names.
    #[error(transparent)]
    Name(#[from] IdentError),
}

/// A token as the store keeps it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The token's id: public, shown in listings and used to revoke it; the secret
    /// starts with it.
    pub id: String,
    /// What it reaches.
    pub scope: TokenScope,
    /// What it is for, as its maker said.
    pub label: Option<String>,
    /// When it was made (ISO 8601).
    pub created_at: String,
}

/// A token just made: the only time its secret is known.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// What the store keeps.
    pub info: TokenInfo,
    /// The secret to hand to the trainer (`GOODSEED_API_KEY`): `gs_<id>_<random>`.
    pub secret: String,
}

/// Where tokens are kept.
pub trait TokenStore: Send + Sync + std::fmt::Debug {
    /// Makes a token; its secret is in the answer and nowhere else.
    fn create(&self, scope: &TokenScope, label: Option<&str>) -> Result<NewToken>;

    /// Every token not revoked, oldest first.
    fn list(&self) -> Result<Vec<TokenInfo>>;

    /// Revokes a token by id: it stops working at once. [`StoreError::TokenNotFound`]
    /// when no such token exists (or it was revoked already).
    fn revoke(&self, id: &str) -> Result<()>;

    /// The token a secret is, if it is one and not revoked. The comparison of hashes
    /// takes the same time whatever they hold.
    fn verify(&self, secret: &str) -> Result<Option<TokenInfo>>;
}

/// The folder of the data directory the server keeps its own state in.
pub const SERVER_STATE_DIR: &str = ".goodseed-server";

const TOKENS_DDL: &str = "
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    workspace TEXT NOT NULL,
    project TEXT,
    read_only INTEGER NOT NULL,
    label TEXT,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
";

/// Tokens in a SQLite file (rollback journal: nothing left beside it).
#[derive(Debug)]
pub struct SqliteTokenStore {
    path: PathBuf,
    /// One connection, opened on first use (a server with no tokens never creates
    /// the file).
    conn: Mutex<Option<Connection>>,
}

impl SqliteTokenStore {
    /// Tokens of the data directory `dir` (a projects directory).
    pub fn in_data_dir(dir: &Path) -> SqliteTokenStore {
        SqliteTokenStore::at(&dir.join(SERVER_STATE_DIR).join("tokens.sqlite"))
    }

    /// Tokens in the file at `path`.
    pub fn at(path: &Path) -> SqliteTokenStore {
        SqliteTokenStore { path: path.to_owned(), conn: Mutex::new(None) }
    }

    /// Runs `f` on the connection, opening it first. A read of a file that does not
    /// exist finds no tokens rather than creating it.
    fn with<T>(
        &self,
        create: bool,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
        none: impl FnOnce() -> T,
    ) -> Result<T> {
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            if !create && !self.path.exists() {
                return Ok(none());
            }
            *guard = Some(self.open(create)?);
        }
        let conn = guard.as_ref().expect("opened above");
        f(conn).map_err(|e| StoreError::db(&self.path, e))
    }

    fn open(&self, create: bool) -> Result<Connection> {
        if create && let Some(dir) = self.path.parent() {
            create_private_dir(dir)?;
        }
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn = Connection::open_with_flags(&self.path, flags)
            .map_err(|e| StoreError::db(&self.path, e))?;
        conn.execute_batch(&format!("PRAGMA busy_timeout=5000; {TOKENS_DDL}"))
            .map_err(|e| StoreError::db(&self.path, e))?;
        restrict_to_owner(&self.path)?;
        Ok(conn)
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| StoreError::io("creating", dir, e))
}

fn restrict_to_owner(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| StoreError::io("restricting", path, e))?;
    }
    Ok(())
}

/// The hex SHA-256 of a secret: what a token store keeps instead of it.
pub fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `n` random bytes as hex, from the operating system's generator.
fn random_hex(n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Io {
        action: "drawing random bytes for",
        location: "a token".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let mut out = String::with_capacity(2 * n);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    Ok(out)
}

/// The id a secret claims (`gs_<id>_…`), if it has our shape: a token store looks the
/// token up by it, then compares hashes with [`hashes_match`].
pub fn claimed_id(secret: &str) -> Option<&str> {
    let rest = secret.strip_prefix("gs_")?;
    let (id, random) = rest.split_once('_')?;
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    (id.len() == 12 && hex(id) && random.len() == 48 && hex(random)).then_some(id)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a stored hash is the hash of `secret`, compared in the same time whatever
/// they hold.
pub fn hashes_match(stored: &str, secret: &str) -> bool {
    constant_time_eq(stored.as_bytes(), hash(secret).as_bytes())
}

/// A new token's id and secret (`gs_<id>_<random>`), from the operating system's
/// generator: every token store makes them this way.
pub fn mint() -> Result<(String, String)> {
    let id = random_hex(6)?;
    let secret = format!("gs_{id}_{}", random_hex(24)?);
    Ok((id, secret))
}

impl TokenScope {
    /// The scope a stored row describes (`project` is the full `workspace/project`
    /// name). Rows are written from checked scopes; a row changed by hand into
    /// something that is not one reaches nothing rather than failing every check.
    pub fn from_stored(workspace: &str, project: Option<&str>, read_only: bool) -> TokenScope {
        let project_in_ws = project.and_then(|p| p.strip_prefix(&format!("{workspace}/")));
        TokenScope::new(workspace, project_in_ws, read_only)
            .ok()
            .filter(|s| s.project.is_some() == project.is_some())
            .unwrap_or(TokenScope { workspace: String::new(), project: None, read_only: true })
    }
}

fn info_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(TokenInfo, String)> {
    let workspace: String = row.get("workspace")?;
    let project: Option<String> = row.get("project")?;
    let read_only: bool = row.get("read_only")?;
    let scope = TokenScope::from_stored(&workspace, project.as_deref(), read_only);
    Ok((
        TokenInfo {
            id: row.get("id")?,
            scope,
            label: row.get("label")?,
            created_at: row.get("created_at")?,
        },
        row.get("hash")?,
    ))
}

impl TokenStore for SqliteTokenStore {
    fn create(&self, scope: &TokenScope, label: Option<&str>) -> Result<NewToken> {
        let (id, secret) = mint()?;
        let created_at = crate::lifecycle::now_iso();
        let info = TokenInfo {
            id: id.clone(),
            scope: scope.clone(),
            label: label.map(str::to_owned),
            created_at: created_at.clone(),
        };
        self.with(
            true,
            |c| {
                c.execute(
                    "INSERT INTO tokens (id, hash, workspace, project, read_only, label, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        id,
                        hash(&secret),
                        scope.workspace,
                        scope.project.as_ref().map(ProjectName::as_str),
                        scope.read_only,
                        label,
                        created_at
                    ],
                )
            },
            || 0,
        )?;
        Ok(NewToken { info, secret })
    }

    fn list(&self) -> Result<Vec<TokenInfo>> {
        self.with(
            false,
            |c| {
                let mut stmt = c.prepare(
                    "SELECT * FROM tokens WHERE revoked_at IS NULL ORDER BY created_at, id",
                )?;
                let rows = stmt.query_map([], |r| info_from_row(r).map(|(i, _)| i))?;
                rows.collect()
            },
            Vec::new,
        )
    }

    fn revoke(&self, id: &str) -> Result<()> {
        let now = crate::lifecycle::now_iso();
        let changed = self.with(
            false,
            |c| {
                c.execute(
                    "UPDATE tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                    params![now, id],
                )
            },
            || 0,
        )?;
        if changed == 0 {
            return Err(StoreError::TokenNotFound { id: id.to_owned() });
        }
        Ok(())
    }

    fn verify(&self, secret: &str) -> Result<Option<TokenInfo>> {
        let Some(id) = claimed_id(secret) else {
            return Ok(None);
        };
        let found = self.with(
            false,
            |c| {
                c.query_row(
                    "SELECT * FROM tokens WHERE id = ?1 AND revoked_at IS NULL",
                    [id],
                    info_from_row,
                )
                .optional()
            },
            || None,
        )?;
        Ok(found.and_then(|(info, stored)| hashes_match(&stored, secret).then_some(info)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pn(s: &str) -> ProjectName {
        ProjectName::parse(s).expect("project")
    }

    #[test]
    fn scopes() {
        let ws = TokenScope::new("team", None, false).expect("scope");
        assert!(ws.reaches(&pn("team/a")) && ws.may_write(&pn("team/a/b")));
        assert!(!ws.reaches(&pn("teams/a")) && !ws.reaches(&pn("other/team")));
        assert!(!ws.reaches(&pn("team")), "a workspace alone is not one of its projects");
        let one = TokenScope::new("team", Some("vision"), true).expect("scope");
        assert_eq!(one.project().map(ProjectName::as_str), Some("team/vision"));
        assert!(one.reaches(&pn("team/vision")) && !one.may_write(&pn("team/vision")));
        assert!(!one.reaches(&pn("team/nlp")) && !one.reaches(&pn("team/vision/sub")));
        assert_eq!(one.to_string(), "project team/vision, read-only");
        for (ws, p) in
            [("", None), ("a/b", None), ("..", None), ("team", Some("")), ("t", Some("../x"))]
        {
            assert!(TokenScope::new(ws, p, false).is_err(), "{ws:?} {p:?}");
        }
    }

    #[test]
    fn tokens_are_kept_hashed_checked_and_revoked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteTokenStore::in_data_dir(dir.path());
        // No file is made by looking.
        assert_eq!(store.list().expect("list"), []);
        assert!(store.verify("gs_000000000000_".to_owned().as_str()).expect("verify").is_none());
        assert!(!dir.path().join(SERVER_STATE_DIR).exists());

        let scope = TokenScope::new("team", Some("p"), false).expect("scope");
        let a = store.create(&scope, Some("box 1")).expect("create");
        let b = store.create(&TokenScope::new("other", None, true).expect("s"), None).expect("b");
        assert!(claimed_id(&a.secret).is_some(), "{}", a.secret);
        assert_ne!(a.secret, b.secret);
        assert_eq!(store.verify(&a.secret).expect("verify"), Some(a.info.clone()));
        assert_eq!(store.list().expect("list").len(), 2);
        // The file holds no secret, and only its owner may read it.
        let file = dir.path().join(SERVER_STATE_DIR).join("tokens.sqlite");
        let bytes = std::fs::read(&file).expect("read");
        let random = &a.secret[a.secret.len() - 48..];
        assert!(!bytes.windows(48).any(|w| w == random.as_bytes()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        // A secret with a known id but other random part, or another shape: nothing.
        let mut forged = a.secret.clone();
        forged.replace_range(forged.len() - 1.., if forged.ends_with('0') { "1" } else { "0" });
        for wrong in [forged.as_str(), "", "gs_", &a.secret[..a.secret.len() - 1], "Bearer x"] {
            assert_eq!(store.verify(wrong).expect("verify"), None, "{wrong:?}");
        }
        // A second handle on the same file (the CLI beside a running server) sees a
        // revocation at once.
        let other = SqliteTokenStore::in_data_dir(dir.path());
        other.revoke(&a.info.id).expect("revoke");
        assert_eq!(store.verify(&a.secret).expect("verify"), None);
        assert!(matches!(other.revoke(&a.info.id), Err(StoreError::TokenNotFound { .. })));
        assert!(matches!(other.revoke("nope"), Err(StoreError::TokenNotFound { .. })));
        assert_eq!(store.list().expect("list"), [b.info]);
    }
}
