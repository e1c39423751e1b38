//! The SDK end to end: real runs in temp dirs, read back through the store's catalog.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use goodseed_core::{ConfigValue, Liveness, ProjectName, RunId, RunStatus};
use goodseed_sdk::{Auto, Run, RunBuilder, SdkError};
use goodseed_store::{RunReader, RunStore, RunSummary, StoreLocation, open_store};

fn builder(home: &Path) -> RunBuilder {
    Run::builder().home(home).project("p").capture_git(false).monitoring(false)
}

fn catalog(home: &Path) -> Arc<dyn RunStore> {
    open_store(&StoreLocation::Projects(home.join("projects")))
}

fn summary(home: &Path, run_id: &str) -> Arc<RunSummary> {
    catalog(home)
        .list_runs(None)
        .expect("list")
        .runs
        .into_iter()
        .find(|r| r.run_id == run_id)
        .expect("run listed")
}

fn reader(home: &Path, run: &Run) -> Arc<dyn RunReader> {
    catalog(home).open_run(run.project(), run.run_id()).expect("open")
}

fn points(r: &dyn RunReader, path: &str) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    r.visit_metrics(Some(path), &mut |_, p| {
        out.push((p.step, p.value));
        true
    })
    .expect("visit");
    out
}

fn config(r: &dyn RunReader, path: &str) -> Option<ConfigValue> {
    r.configs().expect("configs").into_iter().find(|(p, _)| p == path).map(|(_, v)| v)
}

#[test]
fn a_run_logs_everything_and_reads_back() {
    let home = tempfile::tempdir().expect("temp");
    #[derive(serde::Serialize)]
    struct Opt {
        lr: f64,
        betas: (f64, f64),
    }
    let run = builder(home.path())
        .run_id("first")
        .name("baseline")
        .description("a test")
        .tags(["a", "b"])
        .config(&serde_json::json!({"model": {"layers": [64, 32], "act": "relu"}, "seed": 7}))
        .expect("config")
        .create()
        .expect("create");
    assert_eq!(run.run_id().as_str(), "first");
    run.log_metrics(0u32, [("train/loss", 1.0), ("train/acc", 0.1)]).expect("log");
    run.log_metrics(1u32, [("train/loss", f64::NAN), ("train/acc", f64::INFINITY)]).expect("log");
    run.log_metric("lr", Auto, 0.1).expect("log");
    run.log_metric("lr", Auto, 0.2).expect("log");
    run.log_metric("lr", 10u64, 0.3).expect("log");
    run.log_metric("lr", Auto, 0.4).expect("auto step goes past an explicit one");
    run.log_metric("frac", 0.5f64, 1.0).expect("fractional step");
    run.log_text("logs/out", Auto, "hello").expect("text");
    run.log_text("logs/out", Auto, "world").expect("text");
    run.set_config("best/acc", 0.9).expect("config");
    run.log_config_under("opt", &Opt { lr: 1e-3, betas: (0.9, 0.999) }).expect("config");
    run.add_tags(["c"]).expect("tags");
    run.remove_tags(["a"]).expect("tags");
    run.finish().expect("finish");
    assert_eq!(run.stats().points_written, 11, "9 metric points and 2 text points");

    let s = summary(home.path(), "first");
    assert_eq!(s.status, RunStatus::Finished);
    assert_eq!(s.meta.name(), Some("baseline"));
    assert!(s.meta.closed_at().is_some());
    assert_eq!(s.metric_paths, ["frac", "lr", "train/acc", "train/loss"]);
    let r = reader(home.path(), &run);
    let loss = points(&*r, "train/loss");
    assert_eq!(loss[0], (0.0, 1.0));
    assert!(loss[1].0 == 1.0 && loss[1].1.is_nan(), "NaN kept: {loss:?}");
    assert_eq!(points(&*r, "train/acc")[1], (1.0, f64::INFINITY));
    assert_eq!(points(&*r, "lr"), [(0.0, 0.1), (1.0, 0.2), (10.0, 0.3), (11.0, 0.4)]);
    assert_eq!(points(&*r, "frac"), [(0.5, 1.0)]);
    let text = r.text_points(Some("logs/out"), Default::default()).expect("text");
    let text: Vec<_> = text.points.iter().map(|(_, p)| (p.step, p.value.as_str())).collect();
    assert_eq!(text, [(0.0, "hello"), (1.0, "world")]);
    let str_cfg = |v: &str| Some(ConfigValue::Str(v.to_owned()));
    assert_eq!(config(&*r, "sys/id"), str_cfg("first"));
    assert_eq!(config(&*r, "sys/name"), str_cfg("baseline"));
    assert_eq!(config(&*r, "sys/description"), str_cfg("a test"));
    assert_eq!(config(&*r, "sys/state"), str_cfg("finished"));
    assert!(matches!(config(&*r, "sys/closed_time"), Some(ConfigValue::Str(_))));
    assert_eq!(
        config(&*r, "sys/tags"),
        Some(ConfigValue::StringSet(["b".to_owned(), "c".to_owned()].into()))
    );
    assert_eq!(config(&*r, "model/layers/1"), Some(ConfigValue::Int(32)));
    assert_eq!(config(&*r, "model/act"), str_cfg("relu"));
    assert_eq!(config(&*r, "seed"), Some(ConfigValue::Int(7)));
    assert_eq!(config(&*r, "best/acc"), Some(ConfigValue::Float(0.9)));
    assert_eq!(config(&*r, "opt/betas/1"), Some(ConfigValue::Float(0.999)));
    let host = r
        .configs()
        .expect("configs")
        .into_iter()
        .any(|(p, _)| p.starts_with("monitoring/") && p.ends_with("/hostname"));
    assert!(host, "host captured under monitoring/<hash>/");
    assert!(config(&*r, "sys/command_line").is_some());
    let files: Vec<_> = std::fs::read_dir(home.path().join("projects/p/runs"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["first.sqlite"], "a finished run is one file, its lock gone");
}

#[test]
fn bad_input_is_refused_and_logs_nothing() {
    let home = tempfile::tempdir().expect("temp");
    let run = builder(home.path()).run_id("r").create().expect("create");
    let err = run.log_metrics(0u32, [("good", 1.0), ("", 2.0)]).expect_err("empty path");
    assert_eq!(err.to_string(), r#"invalid field path "": it is empty"#);
    let err = run.log_metric("x", f64::NAN, 1.0).expect_err("NaN step");
    assert!(matches!(err, SdkError::Step(_)), "{err}");
    let err = run.log_metric("x", u64::MAX, 1.0).expect_err("huge step");
    assert!(err.to_string().contains("2^53"), "{err}");
    assert!(run.log_text("a\u{0}b", 0u32, "x").is_err());
    assert!(run.set_config("/", 1).is_err());
    run.log_metric("good", Auto, 3.0).expect("log");
    run.finish().expect("finish");
    let r = reader(home.path(), &run);
    assert_eq!(points(&*r, "good"), [(0.0, 3.0)], "the failed call logged nothing, moved no step");

    let bad = |b: RunBuilder| b.create().expect_err("refused").to_string();
    assert_eq!(
        bad(builder(home.path()).run_id("-x")),
        r#"invalid run id "-x": it must start and end with a letter or digit"#
    );
    assert!(bad(builder(home.path()).project("../up")).contains("segment \"..\""));
    assert!(bad(builder(home.path()).name("a\u{202E}b")).contains("run name"));
}

#[test]
fn logging_after_finish_fails_clearly() {
    let home = tempfile::tempdir().expect("temp");
    let run = builder(home.path()).run_id("r").create().expect("create");
    let clone = run.clone();
    run.finish().expect("finish");
    run.finish().expect("finishing twice is fine");
    let err = clone.log_metric("x", 0u32, 1.0).expect_err("closed");
    assert_eq!(err.to_string(), "run r is finished: nothing more can be logged into it");
    assert!(clone.set_config("x", 1).is_err());
    assert!(clone.log_text("t", 0u32, "x").is_err());
}

#[test]
fn existing_ids_are_refused_and_generated_ids_get_a_suffix() {
    let home = tempfile::tempdir().expect("temp");
    builder(home.path()).run_id("taken").create().expect("create").finish().expect("finish");
    let err = builder(home.path()).run_id("taken").create().expect_err("exists");
    let file = home.path().join("projects/p/runs/taken.sqlite");
    assert!(err.to_string().contains(&file.display().to_string()), "{err}");
    assert!(matches!(err, SdkError::AlreadyExists { .. }));

    // Generated ids are adjective-animal, and never collide with a run that exists.
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let run = builder(home.path()).create().expect("generated");
        let id = run.run_id().to_string();
        assert!(id.contains('-'), "adjective-animal: {id}");
        assert!(ids.insert(id), "a generated id was reused");
        run.finish().expect("finish");
    }
    assert_eq!(catalog(home.path()).list_runs(None).expect("list").runs.len(), 31);
}

#[test]
fn dropping_the_last_handle_finishes_and_a_panic_fails() {
    let home = tempfile::tempdir().expect("temp");
    {
        let run = builder(home.path()).run_id("dropped").create().expect("create");
        run.log_metric("x", 0u32, 1.0).expect("log");
    }
    assert_eq!(summary(home.path(), "dropped").status, RunStatus::Finished);

    let h = home.path().to_owned();
    let result = std::thread::spawn(move || {
        let run = builder(&h).run_id("panicked").create().expect("create");
        run.log_metric("x", 0u32, 1.0).expect("log");
        panic!("training diverged");
    })
    .join();
    assert!(result.is_err());
    let s = summary(home.path(), "panicked");
    assert_eq!(s.status, RunStatus::Failed);
    let r = catalog(home.path()).open_run(&pn("p"), &rid("panicked")).expect("open");
    assert_eq!(points(&*r, "x"), [(0.0, 1.0)], "what was logged before the panic is kept");
}

fn pn(s: &str) -> ProjectName {
    ProjectName::parse(s).expect("project")
}
fn rid(s: &str) -> RunId {
    RunId::parse(s).expect("run id")
}

#[test]
fn two_writers_on_one_run_are_refused() {
    let home = tempfile::tempdir().expect("temp");
    let run = builder(home.path()).run_id("busy").create().expect("create");
    assert_eq!(summary(home.path(), "busy").liveness, Liveness::Live);
    let err = builder(home.path()).resume("busy").expect_err("live");
    assert!(matches!(err, SdkError::Live { .. }), "{err}");
    assert!(err.to_string().contains(&format!("pid {}", std::process::id())), "{err}");
    run.finish().expect("finish");
    let again = builder(home.path()).resume("busy").expect("resumable once finished");
    again.finish().expect("finish");
}

#[test]
fn resume_continues_steps_tags_and_status() {
    let home = tempfile::tempdir().expect("temp");
    let run = builder(home.path()).run_id("r").tags(["x"]).create().expect("create");
    for _ in 0..3 {
        run.log_metric("loss", Auto, 1.0).expect("log");
    }
    run.fail().expect("fail");
    assert_eq!(summary(home.path(), "r").status, RunStatus::Failed);
    let run = builder(home.path()).resume("r").expect("resume");
    assert_eq!(run.tags(), ["x".to_owned()].into());
    run.log_metric("loss", Auto, 2.0).expect("log");
    run.add_tags(["resumed"]).expect("tags");
    run.finish().expect("finish");
    let r = reader(home.path(), &run);
    assert_eq!(points(&*r, "loss").last(), Some(&(3.0, 2.0)));
    assert_eq!(summary(home.path(), "r").status, RunStatus::Finished);
    assert!(matches!(builder(home.path()).resume("missing"), Err(SdkError::NotFound { .. })));
    let read = builder(home.path()).open_read_only("r").expect("read only");
    assert_eq!(read.metric_count("loss").expect("count"), 4);
}

/// Polls `done` until it holds or 5 s pass, calling `step` in between.
fn within_5s(mut done: impl FnMut() -> bool, mut step: impl FnMut()) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        step();
        std::thread::sleep(Duration::from_millis(5));
    }
    done()
}

#[test]
fn a_stop_request_reaches_should_stop() {
    let home = tempfile::tempdir().expect("temp");
    let c = catalog(home.path());
    let run = builder(home.path()).run_id("r").create().expect("create");
    assert!(!run.should_stop(), "a fresh run is not asked to stop");
    let mut step = 0u32;
    let mut train = || {
        run.log_metric("loss", step, 1.0).expect("log");
        step += 1;
    };
    for _ in 0..100 {
        train();
        std::thread::sleep(Duration::from_millis(3));
    }
    assert!(!run.should_stop(), "nobody asked yet");
    c.request_stop(&pn("p"), &rid("r")).expect("request stop");
    assert!(within_5s(|| run.should_stop(), &mut train), "the trainer sees the request");
    assert!(run.clone().should_stop(), "every clone sees it");
    run.finish().expect("a stopped run finishes normally");
    assert!(reader(home.path(), &run).meta().expect("meta").get("stop_requested_at").is_some());

    // An idle writer (nothing logged, long flush and heartbeat intervals) still looks,
    // without committing anything to do so.
    let idle = builder(home.path())
        .run_id("idle")
        .flush_interval(Duration::from_secs(3600))
        .heartbeat_interval(Duration::from_secs(3600))
        .create()
        .expect("create");
    let before = idle.stats().batches_written;
    c.request_stop(&pn("p"), &rid("idle")).expect("request stop");
    assert!(within_5s(|| idle.should_stop(), || {}), "an idle writer sees the request");
    assert_eq!(idle.stats().batches_written, before, "looking commits nothing");
    idle.finish().expect("finish");

    // Resuming starts afresh: the earlier request is gone.
    let resumed = builder(home.path()).resume("r").expect("resume");
    assert!(!resumed.should_stop());
    // The old request is gone from the run as soon as it is resumed, so nothing can
    // raise the flag but a new one, which does.
    assert_eq!(reader(home.path(), &resumed).meta().expect("meta").get("stop_requested_at"), None);
    assert!(!resumed.should_stop(), "the old request does not stop the resumed run");
    c.request_stop(&pn("p"), &rid("r")).expect("request stop");
    assert!(within_5s(|| resumed.should_stop(), || {}), "a new request does");
    resumed.finish().expect("finish");

    let disabled = builder(home.path()).disabled(true).create().expect("create");
    assert!(!disabled.should_stop());
    assert!(matches!(
        c.request_stop(&pn("p"), &rid("missing")),
        Err(e) if e.is_not_found()
    ));
}

#[test]
fn flush_makes_everything_visible_to_readers() {
    let home = tempfile::tempdir().expect("temp");
    let run = builder(home.path())
        .run_id("r")
        .flush_interval(Duration::from_secs(3600))
        .create()
        .expect("create");
    let r = reader(home.path(), &run);
    for i in 0..1000u32 {
        run.log_metric("x", i, f64::from(i)).expect("log");
    }
    run.flush().expect("flush");
    assert_eq!(r.metric_count("x").expect("count"), 1000);
    // Several threads share one run.
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let run = run.clone();
            std::thread::spawn(move || {
                for i in 0..500u32 {
                    run.log_metric(&format!("t{t}"), i, 1.0).expect("log");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    run.flush().expect("flush");
    for t in 0..4 {
        assert_eq!(r.metric_count(&format!("t{t}")).expect("count"), 500);
    }
    run.finish().expect("finish");
}

#[test]
fn a_tiny_queue_applies_backpressure_without_losing_points() {
    let home = tempfile::tempdir().expect("temp");
    let run = builder(home.path()).run_id("r").queue_capacity(16).create().expect("create");
    for i in 0..5_000u32 {
        run.log_metrics(i, [("a", 1.0), ("b", 2.0)]).expect("log");
    }
    run.finish().expect("finish");
    let stats = run.stats();
    assert!(stats.backpressure_waits > 0, "{stats:?}");
    assert_eq!(stats.points_written, 10_000);
    let r = reader(home.path(), &run);
    assert_eq!(r.metric_count("a").expect("count") + r.metric_count("b").expect("count"), 10_000);
}

#[test]
fn a_disabled_run_writes_nothing() {
    let home = tempfile::tempdir().expect("temp");
    let run = builder(home.path()).disabled(true).create().expect("create");
    assert!(run.is_disabled());
    run.log_metric("x", 0u32, 1.0).expect("no-op");
    run.set_config("a", 1).expect("no-op");
    run.flush().expect("no-op");
    run.finish().expect("no-op");
    assert!(run.location().is_none());
    assert!(!home.path().join("projects").exists());
}

/// The child side of `kill_9_keeps_everything_flushed`: logs forever, flushing every
/// 100 steps and saying so on stdout.
#[test]
#[allow(clippy::print_stdout)] // stdout is how the child tells the parent what is flushed
fn child_logger() {
    let Some(home) = std::env::var_os("GOODSEED_TEST_CHILD_HOME") else {
        return; // only does anything when spawned by the parent test
    };
    let run = builder(Path::new(&home)).run_id("killed").create().expect("create");
    for step in 0u32.. {
        run.log_metrics(step, [("a", f64::from(step)), ("b", -f64::from(step))]).expect("log");
        if step % 100 == 99 {
            run.flush().expect("flush");
            println!("flushed {step}");
        }
    }
}

#[test]
fn kill_9_keeps_everything_flushed() {
    let home = tempfile::tempdir().expect("temp");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "sdk::child_logger", "--nocapture", "--test-threads=1"])
        .env("GOODSEED_TEST_CHILD_HOME", home.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut last_flushed = 0;
    while let Some(Ok(line)) = lines.next() {
        if let Some(step) = line.strip_prefix("flushed ") {
            last_flushed = step.parse::<u32>().expect("step");
            if last_flushed >= 2_999 {
                break;
            }
        }
    }
    child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix
    child.wait().expect("reap");
    assert!(last_flushed >= 2_999);

    let path = home.path().join("projects/p/runs/killed.sqlite");
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the file opens");
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check");
    assert_eq!(check, "ok");
    drop(conn);
    let s = summary(home.path(), "killed");
    assert_eq!(s.status, RunStatus::Crashed, "a killed writer shows as crashed");
    let r = catalog(home.path()).open_run(&pn("p"), &rid("killed")).expect("open");
    let a = points(&*r, "a");
    assert!(a.len() > last_flushed as usize, "{} points, flushed up to {last_flushed}", a.len());
    for (i, (step, value)) in a.iter().enumerate().take(last_flushed as usize + 1) {
        assert_eq!((*step, *value), (i as f64, i as f64));
    }
    // A crashed run can be resumed, and then finishes normally.
    let resumed = builder(home.path()).resume("killed").expect("resume a crashed run");
    resumed.log_metric("a", Auto, -1.0).expect("log");
    resumed.finish().expect("finish");
    assert_eq!(summary(home.path(), "killed").status, RunStatus::Finished);
}
