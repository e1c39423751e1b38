//! Checkpoints, artifacts and file series through the SDK: copied in the background,
//! registered with the run, kept by retention rules, refused when bad, and read back
//! byte for byte through the store.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use goodseed_sdk::{Checkpoint, Goal, Retention, Run, RunBuilder, SdkError, Step};
use goodseed_store::artifacts::{Artifact, ArtifactKind};
use goodseed_store::{RunReader, StoreLocation, open_store};

fn builder(home: &Path) -> RunBuilder {
    Run::builder().home(home).project("p").capture_git(false).monitoring(false)
}

fn reader(home: &Path, run: &Run) -> Arc<dyn RunReader> {
    open_store(&StoreLocation::Projects(home.join("projects")))
        .open_run(run.project(), run.run_id())
        .expect("open")
}

fn save(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("save");
    p
}

fn bytes_of(r: &dyn RunReader, a: &Artifact) -> Vec<u8> {
    let mut out = Vec::new();
    r.open_blob(&a.hash).expect("blob").reader.read_to_end(&mut out).expect("read");
    out
}

fn checkpoints(r: &dyn RunReader) -> Vec<Artifact> {
    r.artifacts()
        .expect("artifacts")
        .into_iter()
        .filter(|a| a.kind == ArtifactKind::Checkpoint)
        .collect()
}

#[test]
fn keep_best_keeps_the_best_checkpoints_byte_for_byte_and_marks_the_best() {
    let home = tempfile::tempdir().expect("home");
    let out = tempfile::tempdir().expect("out");
    let run = builder(home.path()).create().expect("run");
    run.keep_checkpoints(Retention::best(2, "val/loss", Goal::Min)).expect("rule");
    let losses = [0.9, 0.4, 0.7, 0.2, 0.5];
    for (epoch, loss) in losses.iter().enumerate() {
        run.log_metric("val/loss", epoch, *loss).expect("metric");
        // One file per epoch, as trainers save them.
        let path =
            save(out.path(), &format!("epoch-{epoch}.ckpt"), format!("weights {epoch}").as_bytes());
        run.log_checkpoint(&path, epoch, &[("val/loss", *loss)]).expect("checkpoint");
    }
    run.finish().expect("finish");
    let r = reader(home.path(), &run);
    let kept = checkpoints(&*r);
    let steps: Vec<f64> = kept.iter().filter_map(|c| c.step).collect();
    assert_eq!(steps, [1.0, 3.0], "the two lowest losses");
    let best: Vec<_> = kept.iter().filter(|c| c.best).collect();
    assert_eq!(best.len(), 1);
    assert_eq!(best[0].step, Some(3.0));
    assert_eq!(best[0].name, "epoch-3.ckpt");
    assert_eq!(
        bytes_of(&*r, best[0]),
        std::fs::read(out.path().join("epoch-3.ckpt")).expect("src")
    );
    assert_eq!(best[0].metrics["val/loss"], 0.2);
    let blobs = home.path().join("projects/p/runs").join(format!("{}.files", run.run_id()));
    assert_eq!(std::fs::read_dir(&blobs).expect("blobs").count(), 2, "deleted ones' blobs went");
    assert!(out.path().join("epoch-0.ckpt").exists(), "the trainer's own files are never touched");
}

#[test]
fn keep_last_and_identical_checkpoints_stored_once() {
    let home = tempfile::tempdir().expect("home");
    let out = tempfile::tempdir().expect("out");
    let run = builder(home.path()).create().expect("run");
    run.keep_checkpoints(Retention::last(2)).expect("rule");
    for epoch in 0..4u32 {
        let path = save(out.path(), &format!("e{epoch}"), b"the same weights every epoch");
        run.log_checkpoint_with(Checkpoint::new(&path, Step::from(epoch)).name("model"))
            .expect("checkpoint");
    }
    let report = run.wait_for_files().expect("wait");
    assert_eq!((report.registered, report.deleted), (4, 2));
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    run.finish().expect("finish");
    let r = reader(home.path(), &run);
    let kept = checkpoints(&*r);
    assert_eq!(kept.iter().filter_map(|c| c.step).collect::<Vec<_>>(), [2.0, 3.0]);
    assert_eq!(kept[0].hash, kept[1].hash);
    let blobs = home.path().join("projects/p/runs").join(format!("{}.files", run.run_id()));
    assert_eq!(std::fs::read_dir(&blobs).expect("blobs").count(), 1, "one copy of the bytes");
}

#[test]
fn artifacts_and_image_series_are_registered_with_their_types() {
    let home = tempfile::tempdir().expect("home");
    let out = tempfile::tempdir().expect("out");
    let run = builder(home.path()).create().expect("run");
    let csv = save(out.path(), "preds.csv", b"id,label\n1,cat\n");
    run.log_artifact("predictions", &csv).expect("artifact");
    for step in 0..3u32 {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x10\0\0\0\x08\x08\x06\0\0\0".to_vec();
        png.push(step as u8);
        let p = save(out.path(), &format!("s{step}.png"), &png);
        run.log_file("samples/grid", step, &p).expect("file");
    }
    let big = save(out.path(), "in-place.bin", &[1u8; 4096]);
    run.log_checkpoint_with(Checkpoint::new(&big, Step::from(7u32)).in_place()).expect("in place");
    run.mark_best_checkpoint("in-place.bin", 7u32).expect("best");
    run.finish().expect("finish");
    let r = reader(home.path(), &run);
    let all = r.artifacts().expect("artifacts");
    let artifact = all.iter().find(|a| a.kind == ArtifactKind::Artifact).expect("artifact");
    assert_eq!((artifact.name.as_str(), artifact.step), ("predictions", None));
    assert_eq!(artifact.media_type, "text/csv");
    let files: Vec<_> = all.iter().filter(|a| a.kind == ArtifactKind::File).collect();
    assert_eq!(files.len(), 3);
    assert!(
        files
            .iter()
            .all(|f| f.name == "samples/grid" && f.width == Some(16) && f.height == Some(8))
    );
    let placed = all.iter().find(|a| a.in_place.is_some()).expect("in place");
    assert!(placed.best);
    assert_eq!(placed.size, 4096);
    assert!(placed.in_place.as_deref().expect("path").ends_with("in-place.bin"));
    assert!(r.open_blob(&placed.hash).is_err(), "a file registered in place is never served");
}

#[test]
fn bad_files_are_refused_at_once_naming_the_problem() {
    let home = tempfile::tempdir().expect("home");
    let out = tempfile::tempdir().expect("out");
    let run = builder(home.path()).create().expect("run");
    let err = run.log_checkpoint(out.path().join("missing.pt"), 1u32, &[]).expect_err("missing");
    assert!(matches!(err, SdkError::File { .. }), "{err}");
    assert!(err.to_string().contains("missing.pt"), "{err}");
    let err = run.log_file("samples/x", 1u32, out.path()).expect_err("dir");
    assert!(err.to_string().contains("directory"), "{err}");
    let file = save(out.path(), "a.pt", b"x");
    let err = run.log_checkpoint(&file, goodseed_sdk::Auto, &[]).expect_err("auto step");
    assert!(err.to_string().contains("explicit step"), "{err}");
    let err = run.log_file("bad\u{1}series", 0u32, &file).expect_err("series");
    assert!(err.to_string().contains("bad"), "{err}");
    let err = run.log_artifact("", &file).expect_err("empty name");
    assert!(err.to_string().contains("empty"), "{err}");
    run.finish().expect("finish");
    let err = run.log_artifact("late", &file).expect_err("closed");
    assert!(matches!(err, SdkError::Closed { .. }), "{err}");
    assert!(reader(home.path(), &run).artifacts().expect("ls").is_empty());
}

#[test]
fn a_file_saved_over_while_queued_is_refused_not_registered_half() {
    let home = tempfile::tempdir().expect("home");
    let out = tempfile::tempdir().expect("out");
    let run = builder(home.path()).create().expect("run");
    // A large copy keeps the file thread busy while the next file is saved over.
    let big = save(out.path(), "big.bin", &vec![7u8; 96 << 20]);
    run.log_checkpoint(&big, 0u32, &[]).expect("big");
    let small = save(out.path(), "model.pt", b"epoch 1");
    run.log_checkpoint(&small, 1u32, &[]).expect("small");
    std::fs::write(&small, b"epoch 2, longer").expect("save over");
    let report = run.wait_for_files().expect("wait");
    assert_eq!(report.registered, 1, "{report:?}");
    assert_eq!(report.failures.len(), 1);
    assert!(report.failures[0].contains("changed while it was copied"), "{report:?}");
    run.finish().expect("finish");
    let listed = reader(home.path(), &run).artifacts().expect("ls");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "big.bin");
}

#[test]
fn a_store_without_file_storage_says_so() {
    let run = Run::builder()
        .store(Arc::new(goodseed_testkit::MemoryStore::new()))
        .project("p")
        .capture_git(false)
        .monitoring(false)
        .create()
        .expect("run");
    let out = tempfile::tempdir().expect("out");
    let file = save(out.path(), "a.pt", b"x");
    let err = run.log_checkpoint(&file, 0u32, &[]).expect_err("unsupported");
    assert!(err.to_string().contains("not supported"), "{err}");
    run.finish().expect("finish");
}

fn save_tree(root: &Path, files: &[(&str, &[u8])]) {
    for (rel, bytes) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("save");
    }
}

#[test]
fn a_directory_checkpoint_keeps_every_file_and_retention_takes_only_what_no_other_needs() {
    let home = tempfile::tempdir().expect("home");
    let out = tempfile::tempdir().expect("out");
    let run = builder(home.path()).create().expect("run");
    run.keep_checkpoints(Retention::last(1)).expect("rule");
    // Two epochs: the tokenizer is the same file in both.
    for epoch in 0..2u32 {
        let dir = out.path().join(format!("epoch-{epoch}"));
        let weights = format!("weights of epoch {epoch}").into_bytes();
        save_tree(
            &dir,
            &[
                ("model.safetensors", &weights),
                ("tokenizer/vocab.json", b"{\"a\": 1}"),
                ("config.json", format!("{{\"epoch\": {epoch}}}").as_bytes()),
            ],
        );
        run.log_checkpoint(&dir, epoch, &[("loss", 1.0)]).expect("directory checkpoint");
    }
    let report = run.wait_for_files().expect("wait");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    run.finish().expect("finish");
    let r = reader(home.path(), &run);
    let kept = checkpoints(&*r);
    assert_eq!(kept.len(), 1);
    let c = &kept[0];
    assert_eq!((c.name.as_str(), c.step), ("epoch-1", Some(1.0)));
    assert_eq!(c.media_type, goodseed_core::media::TREE);
    let total = "weights of epoch 1".len() + "{\"a\": 1}".len() + "{\"epoch\": 1}".len();
    assert_eq!(c.size, total as u64);
    assert!(r.check_blobs(true).expect("check").is_empty());
    // Every file of the kept directory can be read back; epoch 0's own files are gone,
    // the shared tokenizer stays.
    let blobs = home.path().join("projects/p/runs").join(format!("{}.files", run.run_id()));
    let names: Vec<String> = std::fs::read_dir(&blobs)
        .expect("blobs")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 4, "three files and the manifest: {names:?}");

    // A symlink inside is refused; a directory cannot be registered in place, nor be a
    // file of a series.
    let bad = out.path().join("with-link");
    save_tree(&bad, &[("a.bin", b"a")]);
    std::os::unix::fs::symlink(out.path().join("epoch-0/config.json"), bad.join("link.json"))
        .expect("symlink");
    let run = builder(home.path()).create().expect("run");
    run.log_checkpoint(&bad, 0u32, &[]).expect("queued");
    let report = run.wait_for_files().expect("wait");
    assert_eq!(report.registered, 0);
    assert!(report.failures[0].contains("symlink"), "{:?}", report.failures);
    let err = run
        .log_checkpoint_with(
            Checkpoint::new(out.path().join("epoch-1"), Step::from(1u32)).in_place(),
        )
        .expect_err("in place");
    assert!(err.to_string().contains("not registered in place"), "{err}");
    let err = run.log_file("samples/x", 0u32, out.path().join("epoch-1")).expect_err("series");
    assert!(err.to_string().contains("cannot be a directory"), "{err}");
    run.finish().expect("finish");
}
