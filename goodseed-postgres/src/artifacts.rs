//! The records of a run's checkpoints, artifacts and files in `goodseed_artifacts`
//! (migration 9); their bytes in the store's blob directory
//! ([`PgStore::with_blob_dir`](crate::PgStore::with_blob_dir)), kept as the SQLite store
//! keeps them ([`BlobDir`]): `<blob dir>/runs/<run row>.files/<sha256>`, identical files
//! shared through `<blob dir>/index/`. Every server over the database must see the same
//! directory (a shared file system) to serve the files.

use std::path::Path;

use goodseed_store::artifacts::{
    Artifact, ArtifactChange, ArtifactEdit, ArtifactKind, ArtifactOp, ContentHash,
    known_media_type, metrics_from_json, metrics_json,
};
use goodseed_store::blobs::BlobDir;
use postgres::GenericClient;

/// The blobs of run row `run` under `root`, shared with the other runs through the
/// index.
pub(crate) fn blob_dir(root: &Path, run: i64) -> BlobDir {
    BlobDir::new(root.join("runs").join(format!("{run}.files")), Some(root.join("index")))
}

fn step_key(step: Option<goodseed_core::Step>) -> f64 {
    step.map_or(0.0, goodseed_core::Step::get)
}

/// Writes a batch's records and changes in the writer's transaction; returns the hashes
/// of the records deleted or replaced.
pub(crate) fn write(
    tx: &mut impl GenericClient,
    run: i64,
    ops: &[ArtifactOp],
    now: &str,
) -> Result<Vec<ContentHash>, postgres::Error> {
    let mut deleted = Vec::new();
    for op in ops {
        match op {
            ArtifactOp::Add(a) => {
                let (kind, step) = (a.kind.as_str(), step_key(a.step));
                let old = tx.query_opt(
                    "SELECT sha256 FROM goodseed_artifacts
                     WHERE run = $1 AND kind = $2 AND name = $3 AND step = $4",
                    &[&run, &kind, &a.name, &step],
                )?;
                deleted.extend(old.and_then(|r| ContentHash::parse(r.get::<_, &str>(0))));
                let size = i64::try_from(a.blob.size).unwrap_or(i64::MAX);
                let (w, h) = (
                    a.blob.width.and_then(|w| i32::try_from(w).ok()),
                    a.blob.height.and_then(|h| i32::try_from(h).ok()),
                );
                tx.execute(
                    "INSERT INTO goodseed_artifacts
                         (run, kind, name, step, sha256, size, media_type, width, height,
                          metrics, in_place, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                     ON CONFLICT (run, kind, name, step) DO UPDATE SET
                         sha256 = excluded.sha256, size = excluded.size,
                         media_type = excluded.media_type, width = excluded.width,
                         height = excluded.height, metrics = excluded.metrics,
                         in_place = excluded.in_place, created_at = excluded.created_at,
                         uploaded = FALSE",
                    &[
                        &run,
                        &kind,
                        &a.name,
                        &step,
                        &a.blob.hash.as_str(),
                        &size,
                        &a.blob.media_type,
                        &w,
                        &h,
                        &metrics_json(&a.metrics),
                        &a.in_place,
                        &now,
                    ],
                )?;
            }
            ArtifactOp::Change(ArtifactChange::Delete { kind, name, step }) => {
                let gone = tx.query_opt(
                    "DELETE FROM goodseed_artifacts
                     WHERE run = $1 AND kind = $2 AND name = $3 AND step = $4 RETURNING sha256",
                    &[&run, &kind.as_str(), name, &step_key(*step)],
                )?;
                deleted.extend(gone.and_then(|r| ContentHash::parse(r.get::<_, &str>(0))));
            }
            ArtifactOp::Change(ArtifactChange::MarkBest { name, step }) => {
                let id: Option<i64> = tx
                    .query_opt(
                        "SELECT id FROM goodseed_artifacts
                         WHERE run = $1 AND kind = 'checkpoint' AND name = $2 AND step = $3",
                        &[&run, name, &step.get()],
                    )?
                    .map(|r| r.get(0));
                if let Some(id) = id {
                    mark_best(tx, run, id)?;
                }
            }
        }
    }
    Ok(deleted)
}

fn mark_best(tx: &mut impl GenericClient, run: i64, id: i64) -> Result<(), postgres::Error> {
    tx.execute(
        "UPDATE goodseed_artifacts SET best = (id = $2), uploaded = FALSE
         WHERE run = $1 AND kind = 'checkpoint' AND (best OR id = $2)",
        &[&run, &id],
    )?;
    Ok(())
}

/// An edit from outside the writer: `None` when the run has no such record, else the
/// hash of a deleted one.
pub(crate) fn edit(
    tx: &mut impl GenericClient,
    run: i64,
    id: i64,
    edit: ArtifactEdit,
) -> Result<Option<Option<ContentHash>>, postgres::Error> {
    match edit {
        ArtifactEdit::Delete => Ok(tx
            .query_opt(
                "DELETE FROM goodseed_artifacts WHERE run = $1 AND id = $2 RETURNING sha256",
                &[&run, &id],
            )?
            .map(|r| ContentHash::parse(r.get::<_, &str>(0)))),
        ArtifactEdit::MarkBest => {
            let found = tx
                .query_opt(
                    "SELECT 1 FROM goodseed_artifacts WHERE run = $1 AND id = $2 AND kind = 'checkpoint'",
                    &[&run, &id],
                )?
                .is_some();
            if !found {
                return Ok(None);
            }
            mark_best(tx, run, id)?;
            Ok(Some(None))
        }
    }
}

/// Every record the run keeps in the store: its hash, and whether it is a directory.
pub(crate) fn referenced(
    client: &mut impl GenericClient,
    run: i64,
) -> Result<Vec<(ContentHash, bool)>, postgres::Error> {
    let rows = client.query(
        "SELECT DISTINCT sha256, media_type = $2 FROM goodseed_artifacts
         WHERE run = $1 AND in_place IS NULL",
        &[&run, &goodseed_core::media::TREE],
    )?;
    Ok(rows
        .iter()
        .filter_map(|r| ContentHash::parse(r.get::<_, &str>(0)).map(|h| (h, r.get::<_, bool>(1))))
        .collect())
}

/// Whether a record of the run names the blob and holds it in the store.
pub(crate) fn names_stored(
    client: &mut impl GenericClient,
    run: i64,
    hash: &ContentHash,
) -> Result<bool, postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM goodseed_artifacts WHERE run = $1 AND sha256 = $2 AND in_place IS NULL LIMIT 1",
            &[&run, &hash.as_str()],
        )?
        .is_some())
}

/// The run's records past `after` (all of them: 0), or only those not uploaded.
pub(crate) fn list(
    client: &mut impl GenericClient,
    run: i64,
    after: i64,
    pending_only: bool,
) -> Result<Vec<Artifact>, postgres::Error> {
    let rows = client.query(
        "SELECT id, kind, name, step, sha256, size, media_type, width, height, metrics, best,
                in_place, created_at
         FROM goodseed_artifacts
         WHERE run = $1 AND id > $2 AND (NOT $3 OR NOT uploaded) ORDER BY id",
        &[&run, &after, &pending_only],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let (Some(kind), Some(hash)) =
            (ArtifactKind::parse(r.get(1)), ContentHash::parse(r.get::<_, &str>(4)))
        else {
            continue;
        };
        out.push(Artifact {
            id: r.get(0),
            kind,
            name: r.get(2),
            step: kind.has_step().then(|| r.get(3)),
            hash,
            size: u64::try_from(r.get::<_, i64>(5)).unwrap_or(0),
            media_type: known_media_type(r.get(6)),
            width: r.get::<_, Option<i32>>(7).and_then(|w| u32::try_from(w).ok()),
            height: r.get::<_, Option<i32>>(8).and_then(|h| u32::try_from(h).ok()),
            metrics: metrics_from_json(r.get(9)),
            best: r.get(10),
            in_place: r.get(11),
            created_at: r.get(12),
        });
    }
    Ok(out)
}

/// Marks the records of `sent` uploaded that are still as they were read.
pub(crate) fn mark_uploaded(
    client: &mut impl GenericClient,
    run: i64,
    sent: &[Artifact],
) -> Result<u64, postgres::Error> {
    let mut marked = 0;
    for a in sent {
        marked += client.execute(
            "UPDATE goodseed_artifacts SET uploaded = TRUE
             WHERE run = $1 AND id = $2 AND sha256 = $3 AND best = $4 AND created_at = $5
               AND NOT uploaded",
            &[&run, &a.id, &a.hash.as_str(), &a.best, &a.created_at],
        )?;
    }
    Ok(marked)
}

/// What is wrong with the run's blobs.
pub(crate) fn check(
    client: &mut impl GenericClient,
    run: i64,
    blobs: &BlobDir,
    deep: bool,
) -> Result<Vec<String>, postgres::Error> {
    Ok(blobs.check_records(&list(client, run, 0, false)?, deep))
}
