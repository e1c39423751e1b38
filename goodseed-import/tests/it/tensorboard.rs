//! TensorBoard event files written by tensorboardX, compared with what tbparse reads
//! back from them.

use goodseed_core::ConfigValue;
use goodseed_import::{Outcome, tensorboard};
use goodseed_store::artifacts::ArtifactKind;

use super::*;

/// Writes the logs of `producers/tensorboard_logs.py` under `dir`; returns what tbparse
/// read back.
fn logs(dir: &Path) -> Value {
    let out = goodseed_testkit::producers::run(&producer("tensorboard_logs.py"), [dir]);
    serde_json::from_str(out.trim()).unwrap()
}

/// The run id a log directory gets.
fn run_of(report: &Report, name_end: &str) -> String {
    report
        .runs
        .iter()
        .find(|r| r.source.ends_with(name_end))
        .and_then(|r| r.run.clone())
        .unwrap_or_else(|| panic!("no run from {name_end}: {report:#?}"))
}

#[test]
fn scalars_text_histograms_images_and_hparams_arrive_as_tbparse_reads_them() {
    let tmp = tempfile::tempdir().unwrap();
    let logdir = tmp.path().join("runs");
    let expected = logs(&logdir);
    let (store, target) = store(tmp.path());
    let report = tensorboard::import(&logdir, &target, &options(None, false), silent()).unwrap();
    assert_eq!(report.runs.len(), 3, "{report:#?}");
    assert!(report.runs.iter().all(|r| r.outcome == Outcome::Imported), "{report:#?}");
    assert!(report.problems.is_empty(), "{:#?}", report.problems);

    for (dir, run_dir) in
        [("lr0.1", "/runs/lr0.1"), ("lr0.01", "/runs/lr0.01"), ("lr0.1/hp", "/runs/lr0.1/hp")]
    {
        let run_id = run_of(&report, run_dir);
        assert!(run_id.starts_with("runs/"), "the project is the log directory's name: {run_id}");
        let run = open(&store, &run_id);
        assert_eq!(run.meta().unwrap().0["name"], dir);
        // Every scalar, value by value, at its step and wall time (to the second).
        let want = expected[dir]["scalars"].as_array().unwrap();
        let mut got_n = 0;
        for tag in run.metric_paths().unwrap() {
            got_n += points(run.as_ref(), &tag).len();
        }
        let own: Vec<&Value> = want
            .iter()
            // tbparse reads subdirectories too: hp's own scalar is not lr0.1's.
            .filter(|w| !(dir == "lr0.1" && w[0] == "hparam/acc"))
            .collect();
        assert_eq!(got_n, own.len(), "{dir}");
        for w in own {
            let tag = w[0].as_str().unwrap();
            let step = w[1].as_f64().unwrap();
            let p = points(run.as_ref(), tag).into_iter().find(|p| p.step == step).unwrap();
            match w[2].as_f64() {
                Some(v) => assert_eq!(p.value, v, "{dir} {tag} at {step}"),
                None => assert!(p.value.is_nan(), "{dir} {tag} at {step}"),
            }
            assert_eq!(p.ts, w[3].as_f64().unwrap().floor() as i64, "{dir} {tag} at {step}");
        }
    }

    let run = open(&store, &run_of(&report, "/runs/lr0.1"));
    // Text.
    let want = &expected["lr0.1"]["text"][0];
    let got = texts(run.as_ref(), want[0].as_str().unwrap());
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].0, got[0].1.as_str()),
        (want[1].as_f64().unwrap(), want[2].as_str().unwrap())
    );
    // Histograms: the same counts; the right edges tbparse gives, the outer ones clamped
    // to the data.
    let hist = run.histograms("weights").unwrap();
    let want = expected["lr0.1"]["histograms"].as_array().unwrap();
    assert_eq!(hist.len(), want.len());
    for (h, w) in hist.iter().zip(want) {
        assert_eq!(h.step, w[1].as_f64().unwrap());
        let counts: Vec<f64> =
            w[2].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let limits: Vec<f64> =
            w[3].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(h.histogram.counts, counts);
        let (first, last) = (h.histogram.edges[0], *h.histogram.edges.last().unwrap());
        for (edge, limit) in h.histogram.edges[1..].iter().zip(&limits) {
            let clamped = (*limit < first && *edge == first) || (*limit > last && *edge == last);
            assert!(*edge == *limit || clamped, "edge {edge} for limit {limit}");
        }
        assert!(first > -10.0 && last < 10.0, "the data's range, not TensorFlow's: {first} {last}");
        assert_eq!(counts.iter().sum::<f64>(), 1000.0);
    }
    // Images: a file series of PNGs, one per step.
    let images: Vec<_> =
        run.artifacts().unwrap().into_iter().filter(|a| a.kind == ArtifactKind::File).collect();
    assert_eq!(images.iter().map(|a| a.step.unwrap()).collect::<Vec<_>>(), vec![0.0, 1.0, 2.0]);
    assert!(images.iter().all(|a| a.name == "samples"
        && a.media_type == "image/png"
        && a.width == Some(5)
        && a.height == Some(4)));
    // Hparams: configs of their type.
    let hp = open(&store, &run_of(&report, "/runs/lr0.1/hp"));
    let c = configs(hp.as_ref());
    assert_eq!(c["hparams/lr"], ConfigValue::Float(0.1));
    assert_eq!(c["hparams/optimizer"], ConfigValue::Str("adam".into()));
    assert_eq!(c["hparams/aug"], ConfigValue::Bool(true));
    assert_eq!(c["hparams/layers"], ConfigValue::Int(3));
    for (k, v) in expected["lr0.1/hp"]["hparams"].as_object().unwrap() {
        assert!(c.contains_key(&format!("hparams/{k}")), "{k} = {v}");
    }
    // Two event files of one directory make one run.
    let two = open(&store, &run_of(&report, "/runs/lr0.01"));
    assert_eq!(two.metric_count("train/loss").unwrap(), 15);

    // goodseed 0.4.0 reads them; importing again skips them all.
    read_by_0_4_0(&tmp.path().join("projects"));
    let again = tensorboard::import(&logdir, &target, &options(None, false), silent()).unwrap();
    assert!(again.runs.iter().all(|r| matches!(r.outcome, Outcome::Skipped(_))), "{again:#?}");
}

#[test]
fn damaged_event_files_lose_only_their_damaged_records() {
    let tmp = tempfile::tempdir().unwrap();
    let logdir = tmp.path().join("runs");
    logs(&logdir);
    let dir = logdir.join("lr0.01");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    // The first file: a byte of a record's data flipped (that record fails its CRC);
    // the second: cut in the middle of its last record (a writer still writing).
    let mut first = std::fs::read(&files[0]).unwrap();
    let at = first.len() - 10;
    first[at] ^= 0x40;
    std::fs::write(&files[0], &first).unwrap();
    let second = std::fs::read(&files[1]).unwrap();
    std::fs::write(&files[1], &second[..second.len() - 5]).unwrap();

    let (store, target) = store(tmp.path());
    let report =
        tensorboard::import(&dir, &target, &options(Some("tb/damaged"), false), silent()).unwrap();
    let r = &report.runs[0];
    assert_eq!(r.outcome, Outcome::Imported, "{report:#?}");
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert!(problems.iter().any(|p| p.contains("fails its CRC")), "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("ends inside the record")), "{problems:#?}");
    let run = open(&store, r.run.as_deref().unwrap());
    // 15 scalars written, the last of each file lost.
    assert_eq!(run.metric_count("train/loss").unwrap(), 13);
    assert_eq!(r.counts.skipped, 2);

    // Not a log directory.
    let empty = tempfile::tempdir().unwrap();
    let err =
        tensorboard::import(empty.path(), &target, &options(None, false), silent()).unwrap_err();
    assert!(err.contains("no TensorBoard event files"), "{err}");
}
