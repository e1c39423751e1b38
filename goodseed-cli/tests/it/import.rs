//! `goodseed import`: the importers from the command line (their formats are tested in
//! goodseed-import against the real producers): the lines and the summary, the exit
//! codes, idempotence, and a PostgreSQL store reached through `--store`.

use crate::support::{goodseed, outcome};

fn csv(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("trial-1.csv");
    std::fs::write(&file, "step,loss,acc\n0,1.0,0.5\n1,0.5,oops\n2,0.25,0.75\n").expect("write");
    file
}

#[test]
fn import_prints_a_line_per_run_what_was_left_out_and_a_summary() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = csv(tmp.path());
    let data = tmp.path().join("data");
    let (code, out, err) = outcome(
        goodseed()
            .args(["import", "csv"])
            .arg(&file)
            .args(["-p", "old/trackio", "--dir"])
            .arg(&data),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("imported   old/trackio/trial-1  (5 metric points, 0 text"), "{out}");
    assert!(out.contains("left out (1):\n"), "{out}");
    assert!(
        out.contains("trial-1.csv:3: \"oops\" in the metric column acc is not a number"),
        "{out}"
    );
    assert!(out.contains("1 run(s) imported into"), "{out}");
    assert!(out.contains("(0 updated, 0 skipped, 0 failed): 5 metric points"), "{out}");
    // The run is there, as any run.
    let (code, shown, _) =
        outcome(goodseed().args(["show", "old/trackio/trial-1", "--dir"]).arg(&data));
    assert_eq!(code, 0);
    assert!(shown.contains("status:   finished"), "{shown}");

    // Again: skipped; with --update: written again, never doubled.
    let (code, out, _) = outcome(
        goodseed()
            .args(["import", "csv"])
            .arg(&file)
            .args(["-p", "old/trackio", "--dir"])
            .arg(&data),
    );
    assert_eq!(code, 0);
    assert!(out.starts_with("skipped    old/trackio/trial-1"), "{out}");
    assert!(out.contains("was imported before (--update imports it again)"), "{out}");
    let (code, out, _) = outcome(
        goodseed()
            .args(["import", "csv", "--update"])
            .arg(&file)
            .args(["-p", "old/trackio", "--dir"])
            .arg(&data),
    );
    assert_eq!(code, 0);
    assert!(out.starts_with("updated    old/trackio/trial-1  (5 metric points"), "{out}");
    let (_, exported, _) =
        outcome(goodseed().args(["export", "old/trackio/trial-1", "--dir"]).arg(&data));
    assert_eq!(exported.lines().count(), 1 + 5, "{exported}");
}

#[test]
fn import_errors_name_what_is_wrong() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    // No such export: exit 1, one line.
    let (code, _, err) = outcome(
        goodseed().args(["import", "neptune"]).arg(tmp.path().join("nope")).arg("--dir").arg(&data),
    );
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: importing the neptune export: cannot read the export"),
        "{err}"
    );
    // Not TensorBoard logs.
    let (code, _, err) =
        outcome(goodseed().args(["import", "tensorboard"]).arg(tmp.path()).arg("--dir").arg(&data));
    assert_eq!(code, 1);
    assert!(err.contains("no TensorBoard event files (events.out.tfevents.*) under"), "{err}");
    // A bad project name is a usage error.
    let file = csv(tmp.path());
    let (code, _, err) = outcome(
        goodseed().args(["import", "csv"]).arg(&file).args(["-p", "a//b", "--dir"]).arg(&data),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid project name"), "{err}");
    // A file that cannot be read fails its run, not the others: exit 1 after the summary.
    let (code, out, err) = outcome(
        goodseed()
            .args(["import", "csv"])
            .arg(tmp.path().join("missing.csv"))
            .arg(&file)
            .arg("--dir")
            .arg(&data),
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("imported   imported/trial-1"), "{out}");
    assert!(out.contains("failed     -  ") && out.contains("missing.csv: cannot open"), "{out}");
    assert!(err.contains("1 run(s) could not be imported"), "{err}");
}

#[test]
fn import_into_postgresql() {
    let url = goodseed_testkit::postgres::shared().database();
    let tmp = tempfile::tempdir().expect("tmp");
    let file = csv(tmp.path());
    let (code, out, err) =
        outcome(goodseed().args(["import", "csv"]).arg(&file).args(["--store", &url]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("imported   imported/trial-1  (5 metric points"), "{out}");
    let (code, shown, err) =
        outcome(goodseed().args(["show", "imported/trial-1", "--store", &url]));
    assert_eq!(code, 0, "{err}");
    assert!(shown.contains("loss") && shown.contains("0.25"), "{shown}");
}
