//! The records of a run's checkpoints, artifacts and files in its file: the table
//! `goodseed_artifacts`, ours (0.4.0 reads none of it), made by the first write that
//! needs it. The blobs are beside the file, `<run_id>.files/<sha256>` ([`BlobDir`]).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::artifacts::{
    Artifact, ArtifactChange, ArtifactEdit, ArtifactKind, ArtifactOp, ContentHash,
    known_media_type, metrics_from_json, metrics_json,
};
use crate::blobs::BlobDir;

pub(crate) const TABLE: &str = "goodseed_artifacts";

/// `step` is 0 for artifacts (which have none) so the key can be unique.
const DDL: &str = "CREATE TABLE IF NOT EXISTS goodseed_artifacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    step REAL NOT NULL DEFAULT 0,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    metrics TEXT NOT NULL DEFAULT '{}',
    best INTEGER NOT NULL DEFAULT 0,
    in_place TEXT,
    created_at TEXT NOT NULL,
    uploaded INTEGER NOT NULL DEFAULT 0,
    UNIQUE (kind, name, step)
);
CREATE INDEX IF NOT EXISTS goodseed_artifacts_sha256 ON goodseed_artifacts (sha256);";

/// The blob directory of the run kept in `run_file`.
pub(crate) fn blob_dir_of(run_file: &Path) -> PathBuf {
    run_file.with_extension("files")
}

/// The index of identical files shared by the runs under `root`.
pub(crate) fn blob_index_of(root: &Path) -> PathBuf {
    root.join(".goodseed-server").join("blobs")
}

/// Whether the run file has the table.
pub(crate) fn has_table(conn: &Connection) -> rusqlite::Result<bool> {
    super::schema::has_table(conn, TABLE)
}

fn step_key(step: Option<goodseed_core::Step>) -> f64 {
    step.map_or(0.0, goodseed_core::Step::get)
}

/// Writes a batch's records and changes; returns the hashes of the records deleted (their
/// blobs may go once the transaction commits, see [`unreferenced`]).
pub(crate) fn write(
    tx: &rusqlite::Transaction<'_>,
    ops: &[ArtifactOp],
    now: &str,
) -> rusqlite::Result<Vec<ContentHash>> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    tx.execute_batch(DDL)?;
    let mut deleted = Vec::new();
    for op in ops {
        let a = match op {
            ArtifactOp::Add(a) => a,
            ArtifactOp::Change(change) => {
                apply_change(tx, change, &mut deleted)?;
                continue;
            }
        };
        let mut replaced = tx.prepare_cached(
            "SELECT sha256 FROM goodseed_artifacts WHERE kind = ?1 AND name = ?2 AND step = ?3",
        )?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO goodseed_artifacts
                 (kind, name, step, sha256, size, media_type, width, height, metrics,
                  in_place, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (kind, name, step) DO UPDATE SET
                 sha256 = excluded.sha256, size = excluded.size,
                 media_type = excluded.media_type, width = excluded.width,
                 height = excluded.height, metrics = excluded.metrics,
                 in_place = excluded.in_place, created_at = excluded.created_at,
                 uploaded = 0",
        )?;
        let (kind, step) = (a.kind.as_str(), step_key(a.step));
        if let Some(old) =
            replaced.query_row(params![kind, a.name, step], |r| r.get::<_, String>(0)).optional()?
        {
            deleted.extend(ContentHash::parse(&old));
        }
        insert.execute(params![
            kind,
            a.name,
            step,
            a.blob.hash.as_str(),
            a.blob.size as i64,
            a.blob.media_type,
            a.blob.width,
            a.blob.height,
            metrics_json(&a.metrics),
            a.in_place,
            now,
        ])?;
    }
    Ok(deleted)
}

fn apply_change(
    tx: &rusqlite::Transaction<'_>,
    change: &ArtifactChange,
    deleted: &mut Vec<ContentHash>,
) -> rusqlite::Result<()> {
    match change {
        ArtifactChange::Delete { kind, name, step } => {
            let gone = tx
                .query_row(
                    "DELETE FROM goodseed_artifacts WHERE kind = ?1 AND name = ?2 AND step = ?3
                     RETURNING sha256",
                    params![kind.as_str(), name, step_key(*step)],
                    |r| r.get::<_, String>(0),
                )
                .optional()?;
            deleted.extend(gone.as_deref().and_then(ContentHash::parse));
        }
        ArtifactChange::MarkBest { name, step } => {
            mark_best(tx, "name = ?1 AND step = ?2", params![name, step.get()])?;
        }
    }
    Ok(())
}

/// Makes the checkpoint matching `which` the only best one; nothing changes when no
/// checkpoint matches. Returns whether one did.
fn mark_best(
    tx: &rusqlite::Transaction<'_>,
    which: &str,
    args: impl rusqlite::Params + Clone,
) -> rusqlite::Result<bool> {
    let found: Option<i64> = tx
        .query_row(
            &format!("SELECT id FROM goodseed_artifacts WHERE kind = 'checkpoint' AND {which}"),
            args,
            |r| r.get(0),
        )
        .optional()?;
    let Some(id) = found else { return Ok(false) };
    tx.execute(
        "UPDATE goodseed_artifacts SET best = (id = ?1), uploaded = 0
         WHERE kind = 'checkpoint' AND (best != 0 OR id = ?1)",
        [id],
    )?;
    Ok(true)
}

/// Applies an edit asked from outside the writer; `Ok(None)` when the run has no such
/// record, else the hash of a deleted record.
pub(crate) fn edit(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    edit: ArtifactEdit,
) -> rusqlite::Result<Option<Option<ContentHash>>> {
    if !has_table(tx)? {
        return Ok(None);
    }
    match edit {
        ArtifactEdit::Delete => Ok(tx
            .query_row("DELETE FROM goodseed_artifacts WHERE id = ?1 RETURNING sha256", [id], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            .map(|h| ContentHash::parse(&h))),
        ArtifactEdit::MarkBest => Ok(mark_best(tx, "id = ?1", [id])?.then_some(None)),
    }
}

/// Every record the run keeps in the store: its hash, and whether it is a directory
/// (see [`BlobDir::kept`]).
pub(crate) fn referenced(conn: &Connection) -> rusqlite::Result<Vec<(ContentHash, bool)>> {
    if !has_table(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT sha256, media_type = ?1 FROM goodseed_artifacts WHERE in_place IS NULL",
    )?;
    let rows = stmt.query_map([goodseed_core::media::TREE], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (h, tree) = row?;
        out.extend(ContentHash::parse(&h).map(|h| (h, tree)));
    }
    Ok(out)
}

/// Whether a record of the run names the blob and holds it in the store.
pub(crate) fn names_stored(conn: &Connection, hash: &ContentHash) -> rusqlite::Result<bool> {
    if !has_table(conn)? {
        return Ok(false);
    }
    conn.prepare_cached("SELECT 1 FROM goodseed_artifacts WHERE sha256 = ?1 AND in_place IS NULL")?
        .exists([hash.as_str()])
}

/// The run's records in the order registered. Rows a store could not have written (an
/// unknown kind, a bad hash) are skipped: a file may hold anything.
pub(crate) fn list(conn: &Connection) -> rusqlite::Result<Vec<Artifact>> {
    list_after(conn, 0)
}

/// The run's records with an id past `after`.
pub(crate) fn list_after(conn: &Connection, after: i64) -> rusqlite::Result<Vec<Artifact>> {
    list_where(conn, "id > ?1", after)
}

/// The run's records not uploaded yet.
pub(crate) fn list_pending(conn: &Connection) -> rusqlite::Result<Vec<Artifact>> {
    list_where(conn, "uploaded = 0 AND ?1 = ?1", 0)
}

/// Marks the records of `sent` uploaded that are still as they were read.
pub(crate) fn mark_uploaded(
    tx: &rusqlite::Transaction<'_>,
    sent: &[Artifact],
) -> rusqlite::Result<u64> {
    if sent.is_empty() || !has_table(tx)? {
        return Ok(0);
    }
    let mut stmt = tx.prepare_cached(
        "UPDATE goodseed_artifacts SET uploaded = 1
         WHERE id = ?1 AND sha256 = ?2 AND best = ?3 AND created_at = ?4 AND uploaded = 0",
    )?;
    let mut marked = 0;
    for a in sent {
        marked += stmt.execute(params![a.id, a.hash.as_str(), a.best, a.created_at])? as u64;
    }
    Ok(marked)
}

fn list_where(conn: &Connection, filter: &str, arg: i64) -> rusqlite::Result<Vec<Artifact>> {
    if !has_table(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, kind, name, step, sha256, size, media_type, width, height, metrics, best,
                in_place, created_at
         FROM goodseed_artifacts WHERE {filter} ORDER BY id"
    ))?;
    let rows = stmt.query_map([arg], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, f64>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, Option<i64>>(7)?,
            r.get::<_, Option<i64>>(8)?,
            r.get::<_, String>(9)?,
            r.get::<_, i64>(10)?,
            r.get::<_, Option<String>>(11)?,
            r.get::<_, String>(12)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, kind, name, step, hash, size, media, w, h, metrics, best, in_place, at) = row?;
        let (Some(kind), Some(hash)) = (ArtifactKind::parse(&kind), ContentHash::parse(&hash))
        else {
            continue;
        };
        out.push(Artifact {
            id,
            kind,
            name,
            step: kind.has_step().then_some(step),
            hash,
            size: u64::try_from(size).unwrap_or(0),
            media_type: known_media_type(&media),
            width: w.and_then(|w| u32::try_from(w).ok()),
            height: h.and_then(|h| u32::try_from(h).ok()),
            metrics: metrics_from_json(&metrics),
            best: best != 0,
            in_place,
            created_at: at,
        });
    }
    Ok(out)
}

/// What is wrong with the run's blobs (see [`crate::RunReader::check_blobs`]).
pub(crate) fn check(
    conn: &Connection,
    blobs: &BlobDir,
    deep: bool,
) -> rusqlite::Result<Vec<String>> {
    Ok(blobs.check_records(&list(conn)?, deep))
}

/// The id of the record of this kind, name and step.
pub(crate) fn id_of(
    conn: &Connection,
    kind: ArtifactKind,
    name: &str,
    step: Option<goodseed_core::Step>,
) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT id FROM goodseed_artifacts WHERE kind = ?1 AND name = ?2 AND step = ?3",
        params![kind.as_str(), name, step_key(step)],
        |r| r.get(0),
    )
    .optional()
}
