//! Runs written through the SDK, read back by goodseed 0.4.0's own readers.

use goodseed_sdk::{Auto, Run};

use goodseed_testkit::python;

fn find<'a>(list: &'a [serde_json::Value], path: &str) -> &'a serde_json::Value {
    list.iter()
        .find(|pair| pair[0] == path)
        .map(|pair| &pair[1])
        .unwrap_or(&serde_json::Value::Null)
}

#[test]
fn goodseed_0_4_0_reads_runs_written_by_the_sdk() {
    let home = tempfile::tempdir().expect("temp");
    let run = Run::builder()
        .monitoring(false)
        .home(home.path())
        .project("team/sdk")
        .run_id("from-rust")
        .name("written by the Rust SDK")
        .description("differential test")
        .tags(["rust", "sdk"])
        .config(&serde_json::json!({"optimizer": {"lr": 0.001, "name": "adam"}, "epochs": 3}))
        .expect("config")
        .capture_git(false)
        .create()
        .expect("create");
    for step in 0..3u32 {
        run.log_metrics(step, [("train/loss", 1.0 / f64::from(step + 1)), ("train/acc", 0.5)])
            .expect("log");
        run.log_text("logs/stdout", Auto, format!("epoch {step}")).expect("text");
    }
    run.log_metric("train/loss", 3u32, f64::NAN).expect("NaN is kept for us");
    run.add_tags(["done"]).expect("tags");
    run.finish().expect("finish");

    let projects = home.path().join("projects");
    let out = python::run_python("read_runs.py", [&projects], &[]);
    let dump: serde_json::Value = serde_json::from_str(&out).expect("JSON from 0.4.0");
    let files = dump["files"].as_array().expect("files");
    assert_eq!(files.len(), 1);
    let f = &files[0];
    assert_eq!(f["project"], "team/sdk");
    let meta = &f["meta"];
    assert_eq!(meta["run_id"], "from-rust");
    assert_eq!(meta["name"], "written by the Rust SDK");
    assert_eq!(meta["status"], "finished");
    assert_eq!(meta["schema_version"], "1");
    assert!(meta["closed_at"].is_string());

    let configs = f["configs"].as_array().expect("configs, read without error");
    let str_value = |v: &str| serde_json::json!({"type": "str", "value": v});
    assert_eq!(find(configs, "sys/id"), &str_value("from-rust"));
    assert_eq!(find(configs, "sys/state"), &str_value("finished"));
    assert_eq!(find(configs, "sys/name"), &str_value("written by the Rust SDK"));
    assert_eq!(find(configs, "sys/description"), &str_value("differential test"));
    assert_eq!(
        find(configs, "sys/tags"),
        &serde_json::json!({"type": "string_set", "value": ["done", "rust", "sdk"]})
    );
    assert_eq!(
        find(configs, "optimizer/lr"),
        &serde_json::json!({"type": "float", "value": "0.001"})
    );
    assert_eq!(find(configs, "epochs"), &serde_json::json!({"type": "int", "value": "3"}));

    let metrics = f["metrics"].as_array().expect("metrics, read without error");
    let loss: Vec<(&str, &str)> = metrics
        .iter()
        .filter(|p| p["path"] == "train/loss")
        .map(|p| (p["step"].as_str().expect("step"), p["value"].as_str().expect("value")))
        .collect();
    // 0.4.0 sees every finite point; the NaN lives in our side table, invisible to it.
    assert_eq!(loss, [("0.0", "1.0"), ("1.0", "0.5"), ("2.0", "0.3333333333333333")]);
    let text = f["strings"]["points"].as_array().expect("text");
    assert_eq!(text.len(), 3);
    assert_eq!(text[2]["value"], "epoch 2");
    let listed = dump["scan_runs"].as_array().expect("0.4.0's run listing");
    assert_eq!(listed[0]["run_id"], "from-rust");
    assert_eq!(listed[0]["experiment_name"], "written by the Rust SDK");
}
