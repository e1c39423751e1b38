//! CSV files of metrics, in trackio's shape.

use goodseed_import::{Outcome, csv};

use super::*;

#[test]
fn a_step_column_and_a_column_per_metric() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("baseline.csv");
    std::fs::write(
        &file,
        "step,timestamp,train/loss,val/acc,phase\n\
         0,2023-11-14T22:13:20Z,1.5,,warmup\n\
         1,2023-11-14T22:13:21Z,0.75,0.5,train\n\
         2,2023-11-14T22:13:22Z,nan,oops,train\n\
         x,2023-11-14T22:13:23Z,0.1,0.9,train\n\
         10,1700000030,0.25,0.875,done\n",
    )
    .unwrap();
    let no_step = tmp.path().join("plain.csv");
    std::fs::write(&no_step, "loss\n3\n2\n1\n").unwrap();
    let (store, target) = store(tmp.path());
    let report = csv::import(&[&file, &no_step], &target, &options(None, false), silent()).unwrap();
    assert_eq!(report_of(&report, "imported/baseline").outcome, Outcome::Imported);
    let run = open(&store, "imported/baseline");
    let loss = points(run.as_ref(), "train/loss");
    assert_eq!(loss.iter().map(|p| p.step).collect::<Vec<_>>(), vec![0.0, 1.0, 2.0, 10.0]);
    assert_eq!(loss[1].value, 0.75);
    assert!(loss[2].value.is_nan());
    assert_eq!(loss[0].ts, 1_700_000_000);
    assert_eq!(loss[3].ts, 1_700_000_030);
    let acc = points(run.as_ref(), "val/acc");
    assert_eq!(
        acc.iter().map(|p| (p.step, p.value)).collect::<Vec<_>>(),
        vec![(1.0, 0.5), (10.0, 0.875)]
    );
    let phase = texts(run.as_ref(), "phase");
    assert_eq!(
        phase.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(),
        ["warmup", "train", "train", "done"]
    );
    assert_eq!(run.meta().unwrap().0["created_at"], "2023-11-14T22:13:20+00:00");
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert!(
        problems.iter().any(|p| p.contains("baseline.csv:4")
            && p.contains("\"oops\" in the metric column val/acc is not a number")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("baseline.csv:5") && p.contains("step \"x\" is not a number")),
        "{problems:#?}"
    );
    // Without a step column, rows are steps 0, 1, 2.
    let plain = open(&store, "imported/plain");
    assert_eq!(
        points(plain.as_ref(), "loss").iter().map(|p| (p.step, p.value)).collect::<Vec<_>>(),
        vec![(0.0, 3.0), (1.0, 2.0), (2.0, 1.0)]
    );
    read_by_0_4_0(&tmp.path().join("projects"));

    // A file that is not there, and one with no metric column: reported, not fatal.
    let header_only = tmp.path().join("empty.csv");
    std::fs::write(&header_only, "step\n1\n").unwrap();
    let missing = tmp.path().join("missing.csv");
    let report =
        csv::import(&[&header_only, &missing, &file], &target, &options(None, false), silent())
            .unwrap();
    let failed: Vec<_> =
        report.runs.iter().filter(|r| matches!(r.outcome, Outcome::Failed(_))).collect();
    assert_eq!(failed.len(), 2, "{report:#?}");
    assert!(matches!(&report_of(&report, "imported/baseline").outcome, Outcome::Skipped(_)));
}
