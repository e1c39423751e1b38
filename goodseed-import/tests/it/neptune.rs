//! neptune-exporter's Parquet, written by pyarrow in the exporter's exact schema.

use std::collections::BTreeSet;
use std::path::Path;

use goodseed_core::ConfigValue;
use goodseed_import::{Outcome, neptune};
use goodseed_store::artifacts::ArtifactKind;
use goodseed_store::meta_key;
use serde_json::Value;

use super::*;

/// Makes the export of `producers/neptune_export.py` under `dir`; returns the project
/// directory's name.
fn export(dir: &Path, points: Option<u64>) -> String {
    let mut args = vec![dir.as_os_str().to_owned()];
    if let Some(n) = points {
        args.push("--points".into());
        args.push(n.to_string().into());
    }
    let out = goodseed_testkit::producers::run(&producer("neptune_export.py"), args);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    v["project_dir"].as_str().unwrap().to_owned()
}

/// 2025-03-01T12:00:00.250Z, the producer's first timestamp, in whole seconds.
const T0: i64 = 1_740_830_400;

#[test]
fn every_attribute_type_arrives_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let project_dir = export(tmp.path(), None);
    let (store, target) = store(tmp.path());
    let data = tmp.path().join("data");
    let report = neptune::import(&data, None, &target, &options(None, false), silent()).unwrap();

    // The half-written run is reported and left; the two complete ones are imported.
    assert_eq!(report.runs.len(), 3, "{report:#?}");
    assert_eq!(report_of(&report, "team/vision/SAN-1").outcome, Outcome::Imported);
    assert_eq!(report_of(&report, "team/vision/SAN-2").outcome, Outcome::Imported);
    let skipped = report.runs.iter().find(|r| r.run.is_none()).unwrap();
    assert!(
        matches!(&skipped.outcome, Outcome::Skipped(why) if why.contains("incomplete export") && why.contains("SAN-3")),
        "{skipped:?}"
    );

    let san1 = open(&store, "team/vision/SAN-1");
    let c = configs(san1.as_ref());
    // Parameters of their exact type.
    assert_eq!(c["params/lr"], ConfigValue::Float(0.001));
    assert_eq!(c["params/epochs"], ConfigValue::Int(12));
    assert_eq!(c["params/huge"], ConfigValue::Int(1 << 62));
    assert_eq!(c["params/optimizer"], ConfigValue::Str("adam".into()));
    assert_eq!(c["params/nesterov"], ConfigValue::Bool(true));
    assert_eq!(
        c["params/started"],
        ConfigValue::DateTime("2025-03-01T12:00:05.250000+00:00".into())
    );
    let set = |v: &[&str]| {
        ConfigValue::StringSet(v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>())
    };
    assert_eq!(c["params/layers"], set(&["conv", "fc", "pool"]));
    assert!(matches!(c["params/nan"], ConfigValue::Float(v) if v.is_nan()));
    // Neptune's own attributes under neptune/, and in the run's places.
    assert_eq!(c["neptune/sys/id"], ConfigValue::Str("SAN-1".into()));
    assert_eq!(c["neptune/sys/owner"], ConfigValue::Str("ada".into()));
    assert_eq!(c["neptune/project_id"], ConfigValue::Str("team/vision".into()));
    assert_eq!(c["neptune/run_id"], ConfigValue::Str("SAN-1".into()));
    assert_eq!(c["sys/tags"], set(&["aug", "resnet"]));
    assert_eq!(c["sys/description"], ConfigValue::Str("the first try".into()));
    assert_eq!(c["sys/id"], ConfigValue::Str("SAN-1".into()));
    let meta = san1.meta().unwrap();
    assert_eq!(meta.0["name"], "baseline");
    assert_eq!(meta.0["created_at"], "2025-03-01T12:00:00.250000+00:00");
    assert_eq!(meta.0["closed_at"], "2025-03-01T13:00:00.250000+00:00");
    assert_eq!(meta.0["status"], "finished");
    assert!(meta.0[meta_key::IMPORTED_FROM].starts_with("neptune:team/vision/SAN-1"));
    assert!(meta.0.contains_key(meta_key::IMPORTED_AT));

    // Float series at their steps and timestamps, NaN and infinity kept.
    let loss = points(san1.as_ref(), "train/loss");
    assert_eq!(loss.len(), 52);
    for (i, p) in loss.iter().take(50).enumerate() {
        assert_eq!((p.step, p.value, p.ts), (i as f64, 1.0 / (i as f64 + 1.0), T0 + i as i64));
    }
    assert!(loss[50].value.is_nan());
    assert_eq!(loss[51].value, f64::INFINITY);
    let acc = points(san1.as_ref(), "eval/acc");
    assert_eq!(
        acc.iter().map(|p| p.step).collect::<Vec<_>>(),
        (0..10).map(|i| f64::from(i) / 4.0).collect::<Vec<_>>()
    );
    // String series as text.
    let logs = texts(san1.as_ref(), "logs/stdout");
    assert_eq!(logs.len(), 10);
    assert_eq!(logs[3], (3.0, "epoch 3 ok ✓".to_owned(), T0 + 103));
    // Histograms.
    assert_eq!(san1.histogram_paths().unwrap(), vec!["weights/hist"]);
    let h = san1.histograms("weights/hist").unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[2].step, 2.0);
    assert_eq!(h[2].ts, T0 + 202);
    assert_eq!(h[2].histogram.kind, "COUNTING");
    assert_eq!(h[2].histogram.edges, vec![0.0, 0.5, 1.0, 2.0]);
    assert_eq!(h[2].histogram.counts, vec![2.0, 2.0, 1.5]);
    // Files: an artifact, and a file series whose bytes are the exporter's files.
    let files = san1.artifacts().unwrap();
    let source = files.iter().find(|a| a.name == "source/train").unwrap();
    assert_eq!(source.kind, ArtifactKind::Artifact);
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut san1.open_blob(&source.hash).unwrap().reader, &mut bytes)
        .unwrap();
    assert_eq!(bytes, b"print('train')\n");
    // A Neptune 2 artifact: its files' listing; a file set: each of its files.
    let names: Vec<&str> = files.iter().map(|a| a.name.as_str()).collect();
    for name in ["datasets/train", "source_code/files/main.py", "source_code/files/pkg/__init__.py"]
    {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let listing = files.iter().find(|a| a.name == "datasets/train").unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut san1.open_blob(&listing.hash).unwrap().reader, &mut bytes)
        .unwrap();
    assert!(
        bytes.starts_with(b"[{\"file_path\": \"s3://b/train.csv\""),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let images: Vec<_> = files.iter().filter(|a| a.kind == ArtifactKind::File).collect();
    assert_eq!(images.len(), 3);
    for img in images {
        assert_eq!(img.name, "images/samples");
        assert_eq!(img.media_type, "image/png");
        let on_disk = std::fs::read(
            tmp.path()
                .join("files")
                .join(&project_dir)
                .join(format!("SAN-1/images/{}.png", img.step.unwrap())),
        )
        .unwrap();
        assert_eq!(img.size, on_disk.len() as u64);
    }
    // The bad rows: reported with their reasons, the rest imported.
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    let has = |s: &str| problems.iter().any(|p| p.contains(s));
    assert!(has("nope.bin left out"), "{problems:#?}");
    assert!(has("\"../../etc/passwd\" is not a plain relative path"), "{problems:#?}");
    assert!(has("a histogram of 2 buckets needs 3 edges, not 2"), "{problems:#?}");
    assert!(has("unknown attribute_type \"mystery\""), "{problems:#?}");
    assert_eq!(report_of(&report, "team/vision/SAN-1").counts.skipped, 4);

    // The fork: its parent and step under neptune/, its decimal steps exact.
    let san2 = open(&store, "team/vision/SAN-2");
    let c = configs(san2.as_ref());
    assert_eq!(c["neptune/sys/forking/parent"], ConfigValue::Str("SAN-1".into()));
    assert_eq!(c["neptune/sys/forking/step"], ConfigValue::Float(2.5));
    let steps: Vec<String> =
        points(san2.as_ref(), "train/loss").iter().map(|p| p.step.to_string()).collect();
    assert_eq!(steps, ["2.5", "2.6", "2.7", "2.8", "2.9"]);

    // goodseed 0.4.0 reads both runs whole.
    let dump = read_by_0_4_0(&tmp.path().join("projects"));
    let d = dumped(&dump, "SAN-1");
    assert_eq!(
        d["metrics"].as_array().unwrap().iter().filter(|p| p["path"] == "train/loss").count(),
        51,
        "0.4.0 sees every point but the NaN"
    );
    assert_eq!(d["strings"]["total"], 10);
    let tags = d["configs"].as_array().unwrap().iter().find(|c| c[0] == "sys/tags").unwrap();
    assert_eq!(tags[1], serde_json::json!({"type": "string_set", "value": ["aug", "resnet"]}));
}

#[test]
fn importing_again_skips_updates_in_place_and_finishes_what_was_cut_short() {
    let tmp = tempfile::tempdir().unwrap();
    export(tmp.path(), None);
    let (store, target) = store(tmp.path());
    let data = tmp.path().join("data");
    neptune::import(&data, None, &target, &options(None, false), silent()).unwrap();
    let count = |run: &str| open(&store, run).metric_count("train/loss").unwrap();
    assert_eq!(count("team/vision/SAN-1"), 52);

    // Again: everything is skipped, nothing written.
    let again = neptune::import(&data, None, &target, &options(None, false), silent()).unwrap();
    assert!(again.runs.iter().all(|r| matches!(&r.outcome, Outcome::Skipped(_))), "{again:#?}");
    assert_eq!(again.totals().points(), 0);

    // --update: written again in place, never doubled.
    let update = Target::new(store.clone(), true);
    let up = neptune::import(&data, None, &update, &options(None, true), silent()).unwrap();
    assert_eq!(report_of(&up, "team/vision/SAN-1").outcome, Outcome::Updated);
    assert_eq!(count("team/vision/SAN-1"), 52);
    assert_eq!(open(&store, "team/vision/SAN-1").histograms("weights/hist").unwrap().len(), 3);
    assert_eq!(open(&store, "team/vision/SAN-1").artifacts().unwrap().len(), 7);

    // An import cut short (its run left without `imported_at`, its writer gone) is
    // finished by the next one, without --update.
    let san2 = open(&store, "team/vision/SAN-2");
    assert!(san2.meta().unwrap().0.contains_key(meta_key::IMPORTED_AT));
    let (p, id) = (ProjectName::parse("team/vision").unwrap(), RunId::parse("SAN-2").unwrap());
    let mut w = store.resume_run(&p, &id).unwrap();
    let mut b = goodseed_store::WriteBatch::new();
    b.delete_meta(meta_key::IMPORTED_AT);
    w.write(&b).unwrap();
    drop(w);
    let done = neptune::import(&data, None, &target, &options(None, false), silent()).unwrap();
    assert_eq!(report_of(&done, "team/vision/SAN-2").outcome, Outcome::Completed);
    assert_eq!(count("team/vision/SAN-2"), 5);
    assert_eq!(open(&store, "team/vision/SAN-2").meta().unwrap().0["status"], "finished");
}

#[test]
fn a_run_of_that_id_from_elsewhere_is_never_written_over() {
    let tmp = tempfile::tempdir().unwrap();
    export(tmp.path(), None);
    let (store, target) = store(tmp.path());
    // A run SAN-2 of the same project, made by a trainer.
    let (p, id) = (ProjectName::parse("team/vision").unwrap(), RunId::parse("SAN-2").unwrap());
    let first = goodseed_store::lifecycle::created(
        &goodseed_store::lifecycle::NewRun::new(id.clone(), p.clone()),
        &goodseed_store::lifecycle::WriterIdentity::this_process(),
        "2025-01-01T00:00:00+00:00",
    );
    store.create_run(&p, &id, &first).unwrap().close().unwrap();
    let report =
        neptune::import(&tmp.path().join("data"), None, &target, &options(None, false), silent())
            .unwrap();
    let r = report_of(&report, "team/vision/SAN-2");
    assert!(
        matches!(&r.outcome, Outcome::Failed(why) if why.contains("exists and was not imported")),
        "{r:?}"
    );
    assert_eq!(open(&store, "team/vision/SAN-2").metric_paths().unwrap(), Vec::<String>::new());
    assert_eq!(report_of(&report, "team/vision/SAN-1").outcome, Outcome::Imported);
    // Into another project it goes.
    let other = neptune::import(
        &tmp.path().join("data"),
        None,
        &target,
        &options(Some("old/neptune"), false),
        silent(),
    )
    .unwrap();
    assert_eq!(report_of(&other, "old/neptune/SAN-2").outcome, Outcome::Imported);
}

#[test]
fn files_that_are_not_the_exporters_are_reported_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let project_dir = export(tmp.path(), None);
    let dir = tmp.path().join("data").join(&project_dir);
    std::fs::write(dir.join("JUNK-1_part_0.parquet"), b"not parquet at all").unwrap();
    // A Parquet file of another schema: its step a double.
    let script = tmp.path().join("other.py");
    std::fs::write(
        &script,
        "import sys, pyarrow as pa, pyarrow.parquet as pq\n\
         pq.write_table(pa.table({'project_id': ['p'], 'run_id': ['r'], 'attribute_path': ['a'], \
         'attribute_type': ['float_series'], 'step': [1.0]}), sys.argv[1])\n",
    )
    .unwrap();
    goodseed_testkit::producers::run(&script, [dir.join("OTHER-1_part_0.parquet")]);
    let (_, target) = store(tmp.path());
    let report =
        neptune::import(&tmp.path().join("data"), None, &target, &options(None, false), silent())
            .unwrap();
    let failed: Vec<String> = report
        .runs
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Failed(why) => Some(why.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 2, "{report:#?}");
    assert!(
        failed.iter().any(|f| f.contains("JUNK-1_part_0.parquet is not a readable Parquet file")),
        "{failed:?}"
    );
    assert!(
        failed
            .iter()
            .any(|f| f.contains("no column timestamp") || f.contains("column step is Float64")),
        "{failed:?}"
    );
    // The good runs are imported all the same.
    assert_eq!(report.count(|o| matches!(o, Outcome::Imported)), 2);

    // Not an export at all.
    let empty = tempfile::tempdir().unwrap();
    let err =
        neptune::import(empty.path(), None, &target, &options(None, false), silent()).unwrap_err();
    assert!(err.contains("no neptune-exporter runs"), "{err}");
    let err =
        neptune::import(&tmp.path().join("nope"), None, &target, &options(None, false), silent())
            .unwrap_err();
    assert!(err.contains("cannot read the export"), "{err}");
}

#[test]
fn a_store_that_keeps_no_histograms_or_files_gets_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    export(tmp.path(), None);
    let store: Arc<dyn RunStore> = Arc::new(goodseed_testkit::MemoryStore::new());
    let target = Target::new(store.clone(), false);
    let report =
        neptune::import(&tmp.path().join("data"), None, &target, &options(None, false), silent())
            .unwrap();
    let r = report_of(&report, "team/vision/SAN-1");
    assert_eq!(r.outcome, Outcome::Imported);
    assert_eq!(r.counts.metric_points, 62);
    assert_eq!(r.counts.histograms, 0);
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert!(
        problems.iter().any(|p| p.contains("keeps no histograms") && p.contains("(3 times)")),
        "{problems:#?}"
    );
    assert!(problems.iter().any(|p| p.contains("the store keeps no files")), "{problems:#?}");
    assert_eq!(open(&store, "team/vision/SAN-1").metric_count("train/loss").unwrap(), 52);
}

#[test]
fn a_million_points_stream_through_with_exact_values() {
    let tmp = tempfile::tempdir().unwrap();
    export(tmp.path(), Some(1_000_000));
    let (store, target) = store(tmp.path());
    let report =
        neptune::import(&tmp.path().join("data"), None, &target, &options(None, false), silent())
            .unwrap();
    let r = report_of(&report, "team/vision/SAN-4");
    assert_eq!(r.counts.metric_points, 1_000_000);
    let run = open(&store, "team/vision/SAN-4");
    for s in [0, 9] {
        let pts = points(run.as_ref(), &format!("metrics/m{s}"));
        assert_eq!(pts.len(), 100_000);
        for (k, p) in pts.iter().enumerate().step_by(997) {
            assert_eq!(p.step, k as f64);
            assert_eq!(p.value, k as f64 * 0.001 + f64::from(s), "m{s} at {k}");
            assert_eq!(p.ts, T0 + k as i64);
        }
    }
}

#[test]
fn the_export_imports_into_postgresql_through_the_same_port() {
    let tmp = tempfile::tempdir().unwrap();
    export(tmp.path(), None);
    let url = goodseed_testkit::postgres::shared().database();
    let pg =
        goodseed_postgres::PgStore::open(&url, 4).unwrap().with_blob_dir(tmp.path().join("blobs"));
    pg.migrate().unwrap();
    let store: Arc<dyn RunStore> = Arc::new(pg);
    let target = Target::new(store.clone(), false);
    let report =
        neptune::import(&tmp.path().join("data"), None, &target, &options(None, false), silent())
            .unwrap();
    assert!(
        report.problems.iter().all(|p| !p.reason.contains("keeps no")),
        "{:#?}",
        report.problems
    );
    let r = report_of(&report, "team/vision/SAN-1");
    assert_eq!(r.outcome, Outcome::Imported);
    assert_eq!(
        (r.counts.metric_points, r.counts.text_points, r.counts.histograms, r.counts.files),
        (62, 10, 3, 7)
    );
    let run = open(&store, "team/vision/SAN-1");
    assert_eq!(run.metric_count("train/loss").unwrap(), 52);
    assert_eq!(run.histograms("weights/hist").unwrap()[2].histogram.counts, vec![2.0, 2.0, 1.5]);
    assert_eq!(run.artifacts().unwrap().len(), 7);
    assert_eq!(
        configs(run.as_ref())["params/layers"],
        ConfigValue::StringSet(["conv", "fc", "pool"].map(String::from).into())
    );
    // Idempotent there too.
    let again =
        neptune::import(&tmp.path().join("data"), None, &target, &options(None, false), silent())
            .unwrap();
    assert!(again.runs.iter().all(|r| matches!(r.outcome, Outcome::Skipped(_))), "{again:#?}");
}
