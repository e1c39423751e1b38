//! [`PgRequestStore`]: requests of interactive control in the same database as the runs,
//! so whichever server a browser asks through, and whichever agent claims, they see the
//! same requests. A claim is one `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED)`:
//! two agents at once get two different requests, never the same one.

use std::sync::Arc;

use goodseed_core::{ProjectName, RunId};
use goodseed_store::requests::{
    NewRequest, Outcome, Request, RequestKind, RequestState, RequestStore, SavedConfig, SavedView,
    check_saved_config, check_saved_view, not_claimed_error,
};
use goodseed_store::{Result, StoreError};

use crate::db_error;
use crate::store::{PgStore, Shared};

/// Requests in a PostgreSQL database (the `goodseed_requests` table).
pub struct PgRequestStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PgRequestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRequestStore")
            .field("location", &self.shared.location)
            .finish_non_exhaustive()
    }
}

impl PgRequestStore {
    /// The requests of a store's database, through its pool.
    pub fn of(store: &PgStore) -> PgRequestStore {
        PgRequestStore { shared: Arc::clone(&store.shared) }
    }

    fn err(&self, e: &postgres::Error) -> StoreError {
        db_error(&self.shared.location, e)
    }

    fn row(&self, r: &postgres::Row) -> Result<Request> {
        let bad = |what: &str, value: &str| StoreError::Database {
            location: self.shared.location.clone(),
            message: format!("a request's {what} {value:?} is not one goodseed writes"),
            busy: false,
        };
        let (project, kind, run_id, state): (String, String, String, String) =
            (r.get("project"), r.get("kind"), r.get("run_id"), r.get("state"));
        Ok(Request {
            id: r.get("id"),
            project: ProjectName::parse(&project).map_err(|_| bad("project", &project))?,
            kind: RequestKind::parse(&kind).ok_or_else(|| bad("kind", &kind))?,
            run_id: RunId::parse(&run_id).map_err(|_| bad("run id", &run_id))?,
            config_patch: r.get("config_patch"),
            checkpoint: r.get("checkpoint"),
            state: RequestState::parse(&state).ok_or_else(|| bad("state", &state))?,
            asked_by: r.get("asked_by"),
            asked_at: r.get("asked_at"),
            claimed_by: r.get("claimed_by"),
            claimed_at: r.get("claimed_at"),
            settled_at: r.get("settled_at"),
            message: r.get("message"),
            result_run: r.get("result_run"),
            sweep: r.get("sweep"),
        })
    }
}

impl PgRequestStore {
    fn saved(&self, r: &postgres::Row) -> Result<SavedConfig> {
        let project: String = r.get("project");
        Ok(SavedConfig {
            project: ProjectName::parse(&project).map_err(|_| StoreError::Database {
                location: self.shared.location.clone(),
                message: format!("a saved config's project {project:?} is not one goodseed writes"),
                busy: false,
            })?,
            name: r.get("name"),
            config: r.get("config"),
            from_run: r.get("from_run"),
            saved_by: r.get("saved_by"),
            saved_at: r.get("saved_at"),
        })
    }
}

impl RequestStore for PgRequestStore {
    fn ask(&self, project: &ProjectName, request: &NewRequest) -> Result<Request> {
        request.check().map_err(|e| StoreError::BadRequest { reason: e.0 })?;
        crate::off_runtime(|| {
            let now = goodseed_store::lifecycle::now_iso();
            let mut conn = self.shared.conn()?;
            let row = conn
                .query_one(
                    "INSERT INTO goodseed_requests (project, kind, run_id, config_patch, checkpoint,
                         state, asked_by, asked_at, sweep)
                     VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8) RETURNING *",
                    &[
                        &project.as_str(),
                        &request.kind.as_str(),
                        &request.run_id.as_str(),
                        &request.config_patch,
                        &request.checkpoint,
                        &request.asked_by,
                        &now,
                        &request.sweep,
                    ],
                )
                .map_err(|e| self.err(&e))?;
            self.row(&row)
        })
    }

    fn list(&self, project: &ProjectName) -> Result<Vec<Request>> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let rows = conn
                .query(
                    "SELECT * FROM goodseed_requests WHERE project = $1 ORDER BY id",
                    &[&project.as_str()],
                )
                .map_err(|e| self.err(&e))?;
            rows.iter().map(|r| self.row(r)).collect()
        })
    }

    fn get(&self, project: &ProjectName, id: i64) -> Result<Option<Request>> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let row = conn
                .query_opt(
                    "SELECT * FROM goodseed_requests WHERE project = $1 AND id = $2",
                    &[&project.as_str(), &id],
                )
                .map_err(|e| self.err(&e))?;
            row.map(|r| self.row(&r)).transpose()
        })
    }

    fn claim(
        &self,
        project: &ProjectName,
        agent: &str,
        kinds: &[RequestKind],
    ) -> Result<Option<Request>> {
        let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        crate::off_runtime(|| {
            let now = goodseed_store::lifecycle::now_iso();
            let mut conn = self.shared.conn()?;
            let row = conn
                .query_opt(
                    "UPDATE goodseed_requests SET state = 'claimed', claimed_by = $2, claimed_at = $3
                     WHERE id = (SELECT id FROM goodseed_requests
                                 WHERE project = $1 AND state = 'pending' AND kind = ANY($4)
                                 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                     RETURNING *",
                    &[&project.as_str(), &agent, &now, &kinds],
                )
                .map_err(|e| self.err(&e))?;
            row.map(|r| self.row(&r)).transpose()
        })
    }

    fn settle(
        &self,
        project: &ProjectName,
        id: i64,
        agent: &str,
        outcome: &Outcome,
    ) -> Result<Request> {
        let state = outcome.state();
        let settled = crate::off_runtime(|| {
            let now = goodseed_store::lifecycle::now_iso();
            let mut conn = self.shared.conn()?;
            let row = conn
                .query_opt(
                    "UPDATE goodseed_requests SET state = $4, settled_at = $5, message = $6,
                         result_run = $7
                     WHERE project = $1 AND id = $2 AND state = 'claimed' AND claimed_by = $3
                     RETURNING *",
                    &[
                        &project.as_str(),
                        &id,
                        &agent,
                        &state.as_str(),
                        &now,
                        &outcome.message,
                        &outcome.result_run,
                    ],
                )
                .map_err(|e| self.err(&e))?;
            row.map(|r| self.row(&r)).transpose()
        })?;
        match settled {
            Some(r) => Ok(r),
            None => Err(not_claimed_error(self.get(project, id)?, project, id, agent)),
        }
    }

    fn release(&self, project: &ProjectName, agent: &str) -> Result<u64> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            conn.execute(
                "UPDATE goodseed_requests SET state = 'pending', claimed_by = NULL, claimed_at = NULL
                 WHERE project = $1 AND state = 'claimed' AND claimed_by = $2",
                &[&project.as_str(), &agent],
            )
            .map_err(|e| self.err(&e))
        })
    }

    fn cancel_sweep(&self, project: &ProjectName, sweep: &str, message: &str) -> Result<u64> {
        crate::off_runtime(|| {
            let now = goodseed_store::lifecycle::now_iso();
            let mut conn = self.shared.conn()?;
            conn.execute(
                "UPDATE goodseed_requests SET state = 'failed', settled_at = $3, message = $4
                 WHERE project = $1 AND sweep = $2 AND state = 'pending'",
                &[&project.as_str(), &sweep, &now, &message],
            )
            .map_err(|e| self.err(&e))
        })
    }

    fn save_config(
        &self,
        project: &ProjectName,
        name: &str,
        config: &str,
        from_run: Option<&RunId>,
        saved_by: &str,
    ) -> Result<SavedConfig> {
        check_saved_config(name, config).map_err(|e| StoreError::BadRequest { reason: e.0 })?;
        let from_run = from_run.map(RunId::as_str);
        crate::off_runtime(|| {
            let now = goodseed_store::lifecycle::now_iso();
            let mut conn = self.shared.conn()?;
            let row = conn
                .query_one(
                    "INSERT INTO goodseed_saved_configs (project, name, config, from_run,
                         saved_by, saved_at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (project, name) DO UPDATE SET config = excluded.config,
                         from_run = excluded.from_run, saved_by = excluded.saved_by,
                         saved_at = excluded.saved_at
                     RETURNING *",
                    &[&project.as_str(), &name, &config, &from_run, &saved_by, &now],
                )
                .map_err(|e| self.err(&e))?;
            self.saved(&row)
        })
    }

    fn saved_configs(&self, project: &ProjectName) -> Result<Vec<SavedConfig>> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let rows = conn
                .query(
                    "SELECT * FROM goodseed_saved_configs WHERE project = $1 ORDER BY name",
                    &[&project.as_str()],
                )
                .map_err(|e| self.err(&e))?;
            rows.iter().map(|r| self.saved(r)).collect()
        })
    }

    fn saved_config(&self, project: &ProjectName, name: &str) -> Result<Option<SavedConfig>> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let row = conn
                .query_opt(
                    "SELECT * FROM goodseed_saved_configs WHERE project = $1 AND name = $2",
                    &[&project.as_str(), &name],
                )
                .map_err(|e| self.err(&e))?;
            row.map(|r| self.saved(&r)).transpose()
        })
    }

    fn delete_saved_config(&self, project: &ProjectName, name: &str) -> Result<bool> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            conn.execute(
                "DELETE FROM goodseed_saved_configs WHERE project = $1 AND name = $2",
                &[&project.as_str(), &name],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(&e))
        })
    }

    fn save_view(
        &self,
        project: &ProjectName,
        name: &str,
        layout: &str,
        saved_by: &str,
    ) -> Result<SavedView> {
        check_saved_view(name, layout).map_err(|e| StoreError::BadRequest { reason: e.0 })?;
        crate::off_runtime(|| {
            let now = goodseed_store::lifecycle::now_iso();
            let mut conn = self.shared.conn()?;
            conn.execute(
                "INSERT INTO goodseed_saved_views (project, name, layout, saved_by, saved_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (project, name) DO UPDATE SET layout = excluded.layout,
                     saved_by = excluded.saved_by, saved_at = excluded.saved_at",
                &[&project.as_str(), &name, &layout, &saved_by, &now],
            )
            .map_err(|e| self.err(&e))?;
            Ok(SavedView {
                name: name.to_owned(),
                layout: layout.to_owned(),
                saved_by: saved_by.to_owned(),
                saved_at: now,
            })
        })
    }

    fn views(&self, project: &ProjectName) -> Result<Vec<SavedView>> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            let rows = conn
                .query(
                    "SELECT name, layout, saved_by, saved_at FROM goodseed_saved_views
                     WHERE project = $1 ORDER BY name",
                    &[&project.as_str()],
                )
                .map_err(|e| self.err(&e))?;
            Ok(rows
                .iter()
                .map(|r| SavedView {
                    name: r.get(0),
                    layout: r.get(1),
                    saved_by: r.get(2),
                    saved_at: r.get(3),
                })
                .collect())
        })
    }

    fn delete_view(&self, project: &ProjectName, name: &str) -> Result<bool> {
        crate::off_runtime(|| {
            let mut conn = self.shared.conn()?;
            conn.execute(
                "DELETE FROM goodseed_saved_views WHERE project = $1 AND name = $2",
                &[&project.as_str(), &name],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(&e))
        })
    }
}
