//! Checkpoints, artifacts and files of a run on the SQLite store: blobs kept once under
//! their hash beside the run, records read back, edits, collection of unreferenced
//! blobs, removal with the run, the listing not walking blob directories, `doctor`'s
//! findings, and goodseed 0.4.0 still reading the run.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use goodseed_core::Step;
use goodseed_store::artifacts::{
    ArtifactChange, ArtifactEdit, ArtifactKind, BlobRef, ContentHash, NewArtifact,
};
use goodseed_store::{RunStore, StoreError, WriteBatch};
use goodseed_testkit::python::run_python;

use crate::conformance::{Backend, Sqlite, finished_run, fp, new_run, pn, rid};

const CREATED: &str = "2025-01-01T00:00:00+00:00";

fn checkpoint(name: &str, step: u32, blob: BlobRef, loss: f64) -> NewArtifact {
    NewArtifact {
        kind: ArtifactKind::Checkpoint,
        name: name.into(),
        step: Some(Step::from(step)),
        blob,
        metrics: vec![("val/loss".into(), loss)],
        in_place: None,
    }
}

fn files_in(dir: &Path) -> HashSet<String> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write source");
    p
}

fn blob_dir(s: &Sqlite, project: &str, run: &str) -> std::path::PathBuf {
    s.path(project, run).with_extension("files")
}

#[test]
fn checkpoints_are_kept_once_read_back_and_served_by_hash() {
    let s = Sqlite::new();
    let src = tempfile::tempdir().expect("src");
    let mut w = s.create("p", "r", &new_run("r", CREATED)).expect("create");
    let sink = w.blobs().expect("a SQLite run keeps files");
    let a = sink.ingest(&write_file(src.path(), "e1.pt", b"epoch one"), &mut |_| {}).expect("a");
    let same = sink.ingest(&write_file(src.path(), "e2.pt", b"epoch one"), &mut |_| {}).expect("b");
    assert_eq!(a.hash, same.hash);
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x40\0\0\0\x20\x08\x06\0\0\0rest";
    let img = sink.ingest(&write_file(src.path(), "s.png", png), &mut |_| {}).expect("png");
    let mut b = WriteBatch::new();
    b.artifact(checkpoint("model.pt", 1, a.clone(), 0.5));
    b.artifact(checkpoint("model.pt", 2, same.clone(), f64::NAN));
    b.artifact(NewArtifact {
        kind: ArtifactKind::File,
        name: "samples/images".into(),
        step: Some(Step::from(2u32)),
        blob: img.clone(),
        metrics: vec![],
        in_place: None,
    });
    b.artifact_change(ArtifactChange::MarkBest { name: "model.pt".into(), step: Step::from(1u32) });
    w.write(&b).expect("write");
    assert_eq!(files_in(&blob_dir(&s, "p", "r")).len(), 2, "two distinct files, kept once");
    w.close().expect("close");

    let r = s.catalog.open_run(&pn("p"), &rid("r")).expect("open");
    let listed = r.artifacts().expect("artifacts");
    assert_eq!(listed.len(), 3);
    let (c1, c2, f) = (&listed[0], &listed[1], &listed[2]);
    assert_eq!(
        (c1.kind, c1.name.as_str(), c1.step),
        (ArtifactKind::Checkpoint, "model.pt", Some(1.0))
    );
    assert!(c1.best && !c2.best);
    assert_eq!(c1.metrics["val/loss"], 0.5);
    assert!(c2.metrics["val/loss"].is_nan());
    assert_eq!(c1.size, 9);
    assert_eq!((f.media_type.as_str(), f.width, f.height), ("image/png", Some(64), Some(32)));
    let mut bytes = Vec::new();
    let mut blob = r.open_blob(&c1.hash).expect("blob");
    blob.reader.read_to_end(&mut bytes).expect("read");
    assert_eq!((bytes.as_slice(), blob.len), (&b"epoch one"[..], 9));
    let stranger = ContentHash::from_digest(&[7; 32]);
    assert!(matches!(r.open_blob(&stranger), Err(StoreError::NoSuchArtifact { .. })));
    assert!(r.check_blobs(true).expect("check").is_empty());
}

#[test]
fn edits_and_deletes_collect_blobs_no_record_names() {
    let s = Sqlite::new();
    let src = tempfile::tempdir().expect("src");
    let mut w = s.create("p", "r", &new_run("r", CREATED)).expect("create");
    let sink = w.blobs().expect("sink");
    let a = sink.ingest(&write_file(src.path(), "a", b"aaa"), &mut |_| {}).expect("a");
    let b_ = sink.ingest(&write_file(src.path(), "b", b"bbb"), &mut |_| {}).expect("b");
    let mut b = WriteBatch::new();
    b.artifact(checkpoint("c", 1, a.clone(), 1.0));
    b.artifact(checkpoint("c", 2, b_.clone(), 0.5));
    b.artifact(checkpoint("copy-of-1", 3, a.clone(), 1.0));
    w.write(&b).expect("write");

    // Deleting one of two records naming a blob keeps it; the writer collects the rest.
    let mut b = WriteBatch::new();
    b.artifact_change(ArtifactChange::Delete {
        kind: ArtifactKind::Checkpoint,
        name: "c".into(),
        step: Some(Step::from(1u32)),
    });
    b.artifact_change(ArtifactChange::Delete {
        kind: ArtifactKind::Checkpoint,
        name: "c".into(),
        step: Some(Step::from(2u32)),
    });
    w.write(&b).expect("delete");
    assert_eq!(files_in(&blob_dir(&s, "p", "r")), HashSet::from([a.hash.to_string()]));

    // From outside while live: the record goes at once, the blob when the writer closes.
    let id = s.catalog.open_run(&pn("p"), &rid("r")).expect("open").artifacts().expect("ls")[0].id;
    s.catalog.edit_artifact(&pn("p"), &rid("r"), id, ArtifactEdit::Delete).expect("delete");
    assert_eq!(files_in(&blob_dir(&s, "p", "r")).len(), 1, "the live writer collects it");
    w.close().expect("close");
    assert!(files_in(&blob_dir(&s, "p", "r")).is_empty());

    let err = s.catalog.edit_artifact(&pn("p"), &rid("r"), 999, ArtifactEdit::MarkBest);
    assert!(matches!(err, Err(StoreError::NoSuchArtifact { .. })), "{err:?}");
}

#[test]
fn a_closed_runs_records_are_edited_and_its_blobs_collected_at_once() {
    let s = Sqlite::new();
    let src = tempfile::tempdir().expect("src");
    let mut w = s.create("p", "r", &new_run("r", CREATED)).expect("create");
    let sink = w.blobs().expect("sink");
    let a = sink.ingest(&write_file(src.path(), "a", b"aaa"), &mut |_| {}).expect("a");
    let b_ = sink.ingest(&write_file(src.path(), "b", b"bbb"), &mut |_| {}).expect("b");
    let mut b = WriteBatch::new();
    b.artifact(checkpoint("c", 1, a.clone(), 1.0));
    b.artifact(checkpoint("c", 2, b_.clone(), 0.5));
    w.write(&b).expect("write");
    w.close().expect("close");
    let ids: Vec<i64> = s
        .catalog
        .open_run(&pn("p"), &rid("r"))
        .expect("open")
        .artifacts()
        .expect("ls")
        .iter()
        .map(|a| a.id)
        .collect();
    s.catalog.edit_artifact(&pn("p"), &rid("r"), ids[1], ArtifactEdit::MarkBest).expect("best");
    s.catalog.edit_artifact(&pn("p"), &rid("r"), ids[0], ArtifactEdit::Delete).expect("rm");
    let left = s.catalog.open_run(&pn("p"), &rid("r")).expect("open").artifacts().expect("ls");
    assert_eq!(left.len(), 1);
    assert!(left[0].best);
    assert_eq!(files_in(&blob_dir(&s, "p", "r")), HashSet::from([b_.hash.to_string()]));
    assert!(!s.path("p", "r").with_extension("sqlite.lock").exists(), "no lock left behind");
    assert_eq!(
        files_in(s.path("p", "r").parent().expect("runs")),
        HashSet::from(["r.sqlite".to_owned(), "r.files".to_owned()]),
        "still one run file"
    );
}

#[test]
fn identical_files_of_two_runs_are_stored_once_and_go_with_the_last_run() {
    use std::os::unix::fs::MetadataExt;
    let s = Sqlite::new();
    let src = tempfile::tempdir().expect("src");
    let file = write_file(src.path(), "same.pt", &[42u8; 100_000]);
    for run in ["one", "two"] {
        let mut w = s.create("p", run, &new_run(run, CREATED)).expect("create");
        let blob = w.blobs().expect("sink").ingest(&file, &mut |_| {}).expect("ingest");
        let mut b = WriteBatch::new();
        b.artifact(checkpoint("c", 1, blob, 1.0));
        w.write(&b).expect("write");
        w.close().expect("close");
    }
    let hash = files_in(&blob_dir(&s, "p", "one")).into_iter().next().expect("one blob");
    let one = std::fs::metadata(blob_dir(&s, "p", "one").join(&hash)).expect("one");
    let two = std::fs::metadata(blob_dir(&s, "p", "two").join(&hash)).expect("two");
    assert_eq!((one.ino(), one.nlink()), (two.ino(), 3), "one copy: two runs and the index");

    // The listing walks no blob directory, and sees two runs.
    assert_eq!(s.catalog.list_runs(None).expect("list").runs.len(), 2);
    assert!(s.catalog.list_runs(None).expect("list").unreadable.is_empty());

    for run in ["one", "two"] {
        s.catalog.set_trashed(&pn("p"), &rid(run), true).expect("trash");
        s.catalog.delete_run(&pn("p"), &rid(run)).expect("rm");
        assert!(!blob_dir(&s, "p", run).exists(), "{run}'s blobs go with it");
    }
    let index = s.dir.path().join(".goodseed-server").join("blobs");
    assert!(files_in(&index).is_empty(), "the index entry went with the last run");
}

#[test]
fn a_crash_mid_copy_registers_nothing_and_the_next_writer_tidies() {
    let s = Sqlite::new();
    let src = tempfile::tempdir().expect("src");
    let w = s.create("p", "r", &new_run("r", CREATED)).expect("create");
    let sink = w.blobs().expect("sink");
    let orphan = sink.ingest(&write_file(src.path(), "o", b"never registered"), &mut |_| {});
    let orphan = orphan.expect("copied");
    // What a copy cut short by a crash leaves: a temporary file, and no record.
    std::fs::write(blob_dir(&s, "p", "r").join(".tmp-12345"), b"half a checkp").expect("half");
    drop(w); // the process dies: no close
    let r = s.catalog.open_run(&pn("p"), &rid("r")).expect("open");
    assert!(r.artifacts().expect("ls").is_empty(), "nothing registered");
    let problems = r.check_blobs(false).expect("check");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("unfinished copy"), "{problems:?}");
    drop(r);
    let mut w = s.resume("p", "r").expect("resume");
    assert!(files_in(&blob_dir(&s, "p", "r")).is_empty(), "leftover and orphan {orphan:?} gone");
    w.close().expect("close");
}

#[test]
fn bad_records_are_refused_naming_the_problem() {
    let s = Sqlite::new();
    let src = tempfile::tempdir().expect("src");
    let mut w = s.create("p", "r", &new_run("r", CREATED)).expect("create");
    let blob = w.blobs().expect("sink").ingest(&write_file(src.path(), "a", b"a"), &mut |_| {});
    let mut bad = checkpoint("c", 1, blob.expect("blob"), 1.0);
    bad.step = None;
    let mut b = WriteBatch::new();
    b.artifact(bad);
    let err = w.write(&b).expect_err("no step");
    assert!(err.to_string().contains("needs a step"), "{err}");
    w.close().expect("close");
}

#[test]
fn blob_damage_is_reported() {
    let s = Sqlite::new();
    let src = tempfile::tempdir().expect("src");
    let mut w = s.create("p", "r", &new_run("r", CREATED)).expect("create");
    let blob = w.blobs().expect("sink").ingest(&write_file(src.path(), "a", b"abc"), &mut |_| {});
    let blob = blob.expect("blob");
    let mut b = WriteBatch::new();
    b.artifact(checkpoint("c", 1, blob.clone(), 1.0));
    w.write(&b).expect("write");
    w.close().expect("close");
    let path = blob_dir(&s, "p", "r").join(blob.hash.as_str());
    std::fs::write(&path, b"abd").expect("damage");
    let r = s.catalog.open_run(&pn("p"), &rid("r")).expect("open");
    assert!(r.check_blobs(false).expect("shallow").is_empty());
    let deep = r.check_blobs(true).expect("deep");
    assert!(deep[0].contains("corrupt"), "{deep:?}");
    std::fs::remove_file(&path).expect("rm");
    assert!(r.check_blobs(false).expect("check")[0].contains("missing"));
}

#[test]
fn goodseed_0_4_0_still_reads_a_run_with_artifacts() {
    let s = Sqlite::new();
    let src = tempfile::tempdir().expect("src");
    let mut first = finished_run("r", CREATED);
    let m = first.metric_series(&fp("train/loss"));
    first.metric(m, Step::ZERO, 0.25, 1_700_000_000);
    let mut w = s.create("p", "r", &first).expect("create");
    let blob = w.blobs().expect("sink").ingest(&write_file(src.path(), "a", b"w"), &mut |_| {});
    let mut b = WriteBatch::new();
    b.artifact(checkpoint("c", 0, blob.expect("blob"), 0.25));
    w.write(&b).expect("write");
    w.close().expect("close");
    let out = run_python("read_runs.py", [s.dir.path()], &[]);
    let read: serde_json::Value = serde_json::from_str(&out).expect("json");
    let text = read.to_string();
    assert!(text.contains("train/loss"), "0.4.0 reads the run's metric: {text}");
    assert!(!text.contains("goodseed_artifacts"), "and knows nothing of ours");
}

/// The same on PostgreSQL: records in the database, bytes in its blob directory.
mod postgres {
    use super::*;
    use goodseed_postgres::PgStore;

    fn store() -> (tempfile::TempDir, PgStore) {
        let blobs = tempfile::tempdir().expect("blob dir");
        let url = goodseed_testkit::postgres::shared().database();
        let store = PgStore::connect(&url).expect("connect").with_blob_dir(blobs.path());
        (blobs, store)
    }

    fn run_dirs(blobs: &Path) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(blobs.join("runs"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn records_and_blobs_round_trip_edits_collect_and_deletes_take_the_files() {
        let (blobs, store) = store();
        let src = tempfile::tempdir().expect("src");
        let mut w = store.create_run(&pn("p"), &rid("r"), &new_run("r", CREATED)).expect("create");
        let sink = w.blobs().expect("a blob directory was given");
        let a = sink.ingest(&write_file(src.path(), "a.pt", b"epoch one"), &mut |_| {}).expect("a");
        let b_ =
            sink.ingest(&write_file(src.path(), "b.pt", b"epoch two"), &mut |_| {}).expect("b");
        let mut b = WriteBatch::new();
        b.artifact(checkpoint("model.pt", 1, a.clone(), 0.5));
        b.artifact(checkpoint("model.pt", 2, b_.clone(), f64::NAN));
        b.artifact(checkpoint("again", 3, a.clone(), 0.25));
        b.artifact_change(ArtifactChange::MarkBest {
            name: "again".into(),
            step: Step::from(3u32),
        });
        w.write(&b).expect("write");
        // A delete by the writer: the blob stays while another record names it.
        let mut d = WriteBatch::new();
        d.artifact_change(ArtifactChange::Delete {
            kind: ArtifactKind::Checkpoint,
            name: "model.pt".into(),
            step: Some(Step::from(1u32)),
        });
        w.write(&d).expect("delete");
        let dirs = run_dirs(blobs.path());
        assert_eq!(dirs.len(), 1);
        assert_eq!(files_in(&dirs[0]).len(), 2);

        let r = store.open_run(&pn("p"), &rid("r")).expect("open");
        let listed = r.artifacts().expect("ls");
        assert_eq!(listed.len(), 2);
        assert!(listed[1].best && listed[1].name == "again");
        assert!(listed[0].metrics["val/loss"].is_nan());
        let mut bytes = Vec::new();
        r.open_blob(&listed[1].hash).expect("blob").reader.read_to_end(&mut bytes).expect("read");
        assert_eq!(bytes, b"epoch one");
        assert_eq!(r.artifacts_after(listed[0].id).expect("after").len(), 1);
        assert!(r.check_blobs(true).expect("check").is_empty());
        // Uploads: pending, marked once.
        let mut up = store.open_uploads(&pn("p"), &rid("r")).expect("uploads");
        let pending = up.pending_artifacts().expect("pending");
        assert_eq!(pending.len(), 2);
        assert_eq!(up.mark_artifacts_uploaded(&pending).expect("mark"), 2);
        assert!(up.pending_artifacts().expect("pending").is_empty());

        // From outside while held: the record goes, the blob when the writer lets go.
        store.edit_artifact(&pn("p"), &rid("r"), listed[0].id, ArtifactEdit::Delete).expect("rm");
        assert_eq!(files_in(&dirs[0]).len(), 2);
        w.close().expect("close");
        assert_eq!(files_in(&dirs[0]), HashSet::from([a.hash.to_string()]));
        let err = store.edit_artifact(&pn("p"), &rid("r"), 999_999, ArtifactEdit::MarkBest);
        assert!(matches!(err, Err(StoreError::NoSuchArtifact { .. })), "{err:?}");

        // Closed: an edit collects at once; deleting the run takes its files.
        let last = store.open_run(&pn("p"), &rid("r")).expect("open").artifacts().expect("ls");
        store.edit_artifact(&pn("p"), &rid("r"), last[0].id, ArtifactEdit::Delete).expect("rm");
        assert!(files_in(&dirs[0]).is_empty());
        store.set_trashed(&pn("p"), &rid("r"), true).expect("trash");
        store.delete_run(&pn("p"), &rid("r")).expect("delete");
        assert!(!dirs[0].exists());
    }

    #[test]
    fn without_a_blob_directory_files_are_refused_naming_the_setting() {
        let url = goodseed_testkit::postgres::shared().database();
        let store = PgStore::connect(&url).expect("connect");
        let mut w = store.create_run(&pn("p"), &rid("r"), &new_run("r", CREATED)).expect("create");
        let err = w.blobs().expect_err("no blob directory");
        assert!(err.to_string().contains("GOODSEED_BLOB_DIR"), "{err}");
        w.close().expect("close");
    }
}
