//! [`PgTokenStore`]: the team server's access tokens in the same database as its runs,
//! so every server over it accepts the same keys and a revocation reaches them all at
//! the next request. Kept as `goodseed-store`'s SQLite tokens are: the SHA-256 of each
//! secret, never the secret.

use std::sync::Arc;

use goodseed_store::tokens::{
    NewToken, TokenInfo, TokenScope, TokenStore, claimed_id, hash, hashes_match, mint,
};
use goodseed_store::{Result, StoreError};

use crate::db_error;
use crate::store::{PgStore, Shared};

/// Access tokens in a PostgreSQL database (the `goodseed_tokens` table).
pub struct PgTokenStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PgTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTokenStore")
            .field("location", &self.shared.location)
            .finish_non_exhaustive()
    }
}

impl PgTokenStore {
    /// The tokens of a store's database, through its pool.
    pub fn of(store: &PgStore) -> PgTokenStore {
        PgTokenStore { shared: Arc::clone(&store.shared) }
    }

    fn err(&self, e: &postgres::Error) -> StoreError {
        db_error(&self.shared.location, e)
    }
}

fn info(row: &postgres::Row) -> (TokenInfo, String) {
    let workspace: String = row.get("workspace");
    let project: Option<String> = row.get("project");
    (
        TokenInfo {
            id: row.get("id"),
            scope: TokenScope::from_stored(&workspace, project.as_deref(), row.get("read_only")),
            label: row.get("label"),
            created_at: row.get("created_at"),
        },
        row.get("hash"),
    )
}

impl TokenStore for PgTokenStore {
    fn create(&self, scope: &TokenScope, label: Option<&str>) -> Result<NewToken> {
        crate::off_runtime(|| {
            let (id, secret) = mint()?;
            let created_at = goodseed_store::lifecycle::now_iso();
            let mut conn = self.shared.conn()?;
            conn.execute(
                "INSERT INTO goodseed_tokens (id, hash, workspace, project, read_only, label, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &id,
                    &hash(&secret),
                    &scope.workspace(),
                    &scope.project().map(|p| p.as_str()),
                    &scope.read_only(),
                    &label,
                    &created_at,
                ],
            )
            .map_err(|e| self.err(&e))?;
            let info =
                TokenInfo { id, scope: scope.clone(), label: label.map(str::to_owned), created_at };
            Ok(NewToken { info, secret })
        })
    }

    fn list(&self) -> Result<Vec<TokenInfo>> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let rows = conn
                .query(
                    "SELECT * FROM goodseed_tokens WHERE revoked_at IS NULL ORDER BY created_at, id",
                    &[],
                )
                .map_err(|e| self.err(&e))?;
            Ok(rows.iter().map(|r| info(r).0).collect())
        })
    }

    fn revoke(&self, id: &str) -> Result<()> {
        crate::off_runtime(|| {
            let now = goodseed_store::lifecycle::now_iso();
            let mut conn = self.shared.conn()?;
            let changed = conn
                .execute(
                    "UPDATE goodseed_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                    &[&now, &id],
                )
                .map_err(|e| self.err(&e))?;
            if changed == 0 {
                return Err(StoreError::TokenNotFound { id: id.to_owned() });
            }
            Ok(())
        })
    }

    fn verify(&self, secret: &str) -> Result<Option<TokenInfo>> {
        crate::off_runtime(|| {
            let Some(id) = claimed_id(secret) else {
                return Ok(None);
            };
            let mut conn = self.shared.conn()?;
            let row = conn
                .query_opt(
                    "SELECT * FROM goodseed_tokens WHERE id = $1 AND revoked_at IS NULL",
                    &[&id],
                )
                .map_err(|e| self.err(&e))?;
            Ok(row
                .map(|r| info(&r))
                .and_then(|(info, stored)| hashes_match(&stored, secret).then_some(info)))
        })
    }
}
