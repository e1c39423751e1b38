//! What a trainer started by `goodseed agent` gets from its environment: the run's
//! config (`GOODSEED_CONFIG`, over the trainer's own defaults) read back typed with
//! `Run::config_as`, and `GOODSEED_RESUME` to carry on a run. Environment variables are
//! the process's, so each case runs in a child process (this test binary again).

use std::path::Path;
use std::process::Command;

use goodseed_core::{ProjectName, RunId};
use goodseed_sdk::{Run, SdkError};
use goodseed_store::{StoreLocation, open_store};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Model {
    layers: Vec<u32>,
    act: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Config {
    lr: f64,
    epochs: i64,
    model: Model,
}

fn defaults() -> Config {
    Config { lr: 0.1, epochs: 3, model: Model { layers: vec![64, 32], act: "gelu".into() } }
}

/// The child: a trainer with its defaults, which prints the config it runs with (as
/// JSON) or the error it got, and finishes.
#[test]
#[allow(clippy::print_stdout, reason = "stdout is how the child answers")]
fn child_trainer_with_defaults() {
    let Some(home) = std::env::var_os("GOODSEED_TEST_AGENT_HOME") else { return };
    let made = Run::builder()
        .home(home)
        .capture_git(false)
        .monitoring(false)
        .config(&defaults())
        .and_then(goodseed_sdk::RunBuilder::create);
    let run = match made {
        Ok(run) => run,
        Err(e) => {
            println!("error: {e}");
            return;
        }
    };
    match run.config_as::<Config>() {
        Ok(config) => println!("{}", serde_json::to_string(&config).expect("json")),
        Err(e) => println!("error: {e}"),
    }
    run.finish().expect("finish");
}

/// Runs the child with `env`; its one line of output.
fn trainer(home: &Path, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--exact", "agent_env::child_trainer_with_defaults", "--nocapture"])
        .env("GOODSEED_TEST_AGENT_HOME", home)
        .env_remove("GOODSEED_CONFIG")
        .env_remove("GOODSEED_RESUME")
        .env_remove("GOODSEED_RUN_ID");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find(|l| l.starts_with('{') || l.starts_with("error: "))
        .unwrap_or_else(|| panic!("the child said nothing: {stdout}"))
        .to_owned()
}

#[test]
fn a_trainer_runs_with_the_config_it_is_given_and_resumes_when_told() {
    let home = tempfile::tempdir().expect("home");
    let given = r#"{"lr": 0.01, "model": {"layers": [8, 4]}}"#;
    let env =
        [("GOODSEED_PROJECT", "agent"), ("GOODSEED_RUN_ID", "trial-1"), ("GOODSEED_CONFIG", given)];
    let said: Config = serde_json::from_str(&trainer(home.path(), &env)).expect("a config");
    let want =
        Config { lr: 0.01, epochs: 3, model: Model { layers: vec![8, 4], act: "gelu".into() } };
    assert_eq!(said, want, "GOODSEED_CONFIG over the trainer's defaults");
    // The run holds it too.
    let store = open_store(&StoreLocation::Projects(home.path().join("projects")));
    let (p, r) = (ProjectName::parse("agent").expect("p"), RunId::parse("trial-1").expect("r"));
    let configs = store.open_run(&p, &r).expect("open").configs().expect("configs");
    let get = |path: &str| configs.iter().find(|(k, _)| k == path).map(|(_, v)| v.clone());
    assert_eq!(get("lr"), Some(goodseed_core::ConfigValue::Float(0.01)));
    assert_eq!(get("model/layers/1"), Some(goodseed_core::ConfigValue::Int(4)));

    // Resumed with a patch: what the run held, then the patch.
    let env = [
        ("GOODSEED_PROJECT", "agent"),
        ("GOODSEED_RUN_ID", "trial-1"),
        ("GOODSEED_RESUME", "1"),
        ("GOODSEED_CONFIG", r#"{"epochs": 5}"#),
    ];
    let said: Config = serde_json::from_str(&trainer(home.path(), &env)).expect("a config");
    assert_eq!(said, Config { epochs: 5, ..want });
    let summary = store.run_summary(&p, &r).expect("summary");
    assert_eq!(summary.meta.status(), Some("finished"));
}

#[test]
fn a_bad_config_or_resume_without_a_run_is_refused_with_the_reason() {
    let home = tempfile::tempdir().expect("home");
    for (config, why) in [("[1, 2]", "a JSON object is needed"), ("{lr: 1}", "not JSON")] {
        let said = trainer(home.path(), &[("GOODSEED_CONFIG", config)]);
        assert!(said.starts_with("error: invalid GOODSEED_CONFIG") && said.contains(why), "{said}");
    }
    let said = trainer(home.path(), &[("GOODSEED_RESUME", "1")]);
    assert!(said.contains("GOODSEED_RESUME") && said.contains("run's id"), "{said}");
    let said = trainer(home.path(), &[("GOODSEED_RESUME", "yes"), ("GOODSEED_RUN_ID", "nope")]);
    assert!(said.starts_with("error: cannot resume run"), "{said}");
    // A config that does not fit the trainer's type is named.
    let said = trainer(home.path(), &[("GOODSEED_CONFIG", r#"{"lr": "fast"}"#)]);
    assert!(said.starts_with("error: invalid config") && said.contains("does not fit"), "{said}");
}

#[test]
fn config_as_reads_what_the_run_was_given_and_logged() {
    let home = tempfile::tempdir().expect("home");
    let run = Run::builder()
        .home(home.path())
        .project("p")
        .capture_git(false)
        .monitoring(false)
        .handle_signals(false)
        .config(&defaults())
        .expect("config")
        .create()
        .expect("create");
    run.set_config("epochs", 7).expect("set");
    run.log_config_under("model", &serde_json::json!({"act": "relu"})).expect("log");
    let config: Config = run.config_as().expect("typed");
    assert_eq!(config.epochs, 7);
    assert_eq!(config.model.act, "relu");
    run.set_config("lr", "fast").expect("set");
    let err = run.config_as::<Config>().expect_err("lr is text now");
    assert!(matches!(err, SdkError::Setting { .. }), "{err:?}");
    assert!(
        err.to_string().contains("does not fit") && err.to_string().contains("Config"),
        "{err}"
    );
    run.finish().expect("finish");
}
