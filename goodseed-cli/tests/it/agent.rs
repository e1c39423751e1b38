//! `goodseed agent`: requests carried out by the real binary, with the demo's real
//! trainer (`goodseed demo-trainer`, which reads GOODSEED_CONFIG through the SDK) as the
//! trainer command, on a real data directory.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use goodseed_core::{ConfigValue, Liveness, ProjectName, RunId, RunStatus};
use goodseed_store::requests::{
    NewRequest, Request, RequestKind, RequestState, RequestStore, SqliteRequestStore,
};
use goodseed_store::{RunStore, SqliteStore, meta_key};

use crate::support::{goodseed, outcome};

const PROJECT: &str = "team/iris";

fn project() -> ProjectName {
    ProjectName::parse(PROJECT).expect("project")
}

fn requests(projects: &Path) -> SqliteRequestStore {
    SqliteRequestStore::in_data_dir(projects)
}

fn ask(projects: &Path, kind: RequestKind, run: &str, patch: Option<&str>) -> Request {
    let mut request = NewRequest::new(kind, RunId::parse(run).expect("run id"), "test");
    if let Some(patch) = patch {
        request = request.with_config_patch(patch).expect("patch");
    }
    requests(projects).ask(&project(), &request).expect("ask")
}

fn request(projects: &Path, id: i64) -> Request {
    requests(projects).get(&project(), id).expect("get").expect("kept")
}

/// Trains a source run directly, as a user's trainer would (the demo trainer, 5 epochs).
fn train_source(home: &Path, run: &str) {
    let (code, out, err) = outcome(
        goodseed()
            .arg("demo-trainer")
            .env("GOODSEED_HOME", home)
            .env("GOODSEED_PROJECT", PROJECT)
            .env("GOODSEED_RUN_ID", run)
            .env("GOODSEED_CONFIG", r#"{"epochs": 5, "hidden": 8}"#),
    );
    assert_eq!(code, 0, "{out}{err}");
}

/// `goodseed agent --once` over the data directory, the demo trainer as its command.
fn agent_once(projects: &Path, extra: &[&str]) -> (i32, String, String) {
    outcome(
        goodseed()
            .args(["agent", "-p", PROJECT, "--poll", "0.05", "--once", "--name", "test-agent"])
            .args(extra)
            .arg("--dir")
            .arg(projects)
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_goodseed"))
            .arg("demo-trainer"),
    )
}

fn config(store: &SqliteStore, run: &str) -> Vec<(String, ConfigValue)> {
    let run = RunId::parse(run).expect("run id");
    store.open_run(&project(), &run).expect("open").configs().expect("configs")
}

fn value<'a>(configs: &'a [(String, ConfigValue)], path: &str) -> &'a ConfigValue {
    configs.iter().find(|(p, _)| p == path).map(|(_, v)| v).unwrap_or_else(|| panic!("{path}"))
}

#[test]
fn agent_clones_resumes_deletes_and_refuses_with_reasons() {
    let home = tempfile::tempdir().expect("home");
    let projects = home.path().join("projects");
    train_source(home.path(), "source");

    let clone = ask(&projects, RequestKind::Clone, "source", Some(r#"{"lr": 0.05, "epochs": 3}"#));
    let ghost = ask(&projects, RequestKind::Delete, "ghost", None);
    let finished = ask(&projects, RequestKind::Stop, "source", None);
    let bad_patch =
        ask(&projects, RequestKind::Clone, "source", Some(r#"{"hidden": "many", "epochs": 2}"#));
    let (code, out, err) = agent_once(&projects, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("test-agent carries out the requests of team/iris with 1 slot(s)"),
        "{out}"
    );

    // The clone: a new run, the source's config with the patch over it, trained whole.
    let done = request(&projects, clone.id);
    assert_eq!(done.state, RequestState::Done, "{done:?}\n{out}{err}");
    let clone_id = format!("source-clone-{}", clone.id);
    assert_eq!(done.result_run.as_deref(), Some(clone_id.as_str()));
    let store = SqliteStore::new(&projects);
    let configs = config(&store, &clone_id);
    assert_eq!(value(&configs, "lr"), &ConfigValue::Float(0.05));
    assert_eq!(value(&configs, "epochs"), &ConfigValue::Int(3));
    assert_eq!(value(&configs, "hidden"), &ConfigValue::Int(8), "kept from the source");
    let run = RunId::parse(&clone_id).expect("id");
    let summary = store.run_summary(&project(), &run).expect("summary");
    assert_eq!(summary.status, RunStatus::Finished);
    let reader = store.open_run(&project(), &run).expect("open");
    assert_eq!(reader.metric_count("val/accuracy").expect("count"), 3, "three epochs");
    assert_eq!(reader.meta().expect("meta").get(meta_key::ENDED_BY), Some("completed"));

    // Refused, each with its reason, and the agent went on.
    let failed = |id| {
        let r = request(&projects, id);
        assert_eq!(r.state, RequestState::Failed, "{r:?}");
        r.message.unwrap_or_default()
    };
    assert!(failed(ghost.id).contains("there is no run ghost in team/iris"));
    assert!(failed(finished.id).contains("the run is not running (it is finished)"));
    let why = failed(bad_patch.id);
    assert!(why.contains("the trainer exited with code"), "{why}");
    assert!(out.contains(&format!("request {} (clone source) failed", bad_patch.id)), "{out}");

    // Resume the clone: trained again on the same run, the request done.
    let resume = ask(&projects, RequestKind::Resume, &clone_id, None);
    let (code, out, err) = agent_once(&projects, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(request(&projects, resume.id).state, RequestState::Done, "{out}{err}");
    let summary = store.run_summary(&project(), &run).expect("summary");
    assert_eq!(summary.status, RunStatus::Finished);
    assert_eq!(
        store
            .open_run(&project(), &run)
            .expect("open")
            .metric_count("val/accuracy")
            .expect("count"),
        3
    );

    // Delete the source: to the trash.
    let delete = ask(&projects, RequestKind::Delete, "source", None);
    let (code, out, err) = agent_once(&projects, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let deleted = request(&projects, delete.id);
    assert_eq!(deleted.state, RequestState::Done);
    assert_eq!(deleted.message.as_deref(), Some("moved to the trash"));
    let source = RunId::parse("source").expect("id");
    assert!(store.open_run(&project(), &source).expect("open").meta().expect("meta").trashed());
}

/// A background agent, killed on drop.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(60), "waited a minute for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_stop_reaches_a_busy_agent_and_stopping_the_agent_leaves_work_pending() {
    let home = tempfile::tempdir().expect("home");
    let projects = home.path().join("projects");
    train_source(home.path(), "source");
    // Two long clones for one slot (20 ms an epoch, 100,000 epochs).
    let patch = r#"{"epochs": 100000}"#;
    let first = ask(&projects, RequestKind::Clone, "source", Some(patch));
    let second = ask(&projects, RequestKind::Clone, "source", Some(patch));
    let agent = background_agent(&projects, "a1", &["--grace", "20"], &["--pace-ms", "20"]);
    let store = SqliteStore::new(&projects);
    let first_run = RunId::parse(&format!("source-clone-{}", first.id)).expect("id");
    let live = |run: &RunId| {
        store
            .run_summary(&project(), run)
            .is_ok_and(|s| s.status == RunStatus::Running && s.liveness == Liveness::Live)
    };
    wait_for("the first clone to train", || live(&first_run));
    assert_eq!(request(&projects, second.id).state, RequestState::Pending, "one slot");

    // The only slot is busy, and a stop still gets through: the trainer ends the run as
    // stopped, its request is done, and the second clone takes the slot.
    let stop = ask(&projects, RequestKind::Stop, first_run.as_str(), None);
    wait_for("the stop to be carried out", || {
        request(&projects, stop.id).state == RequestState::Done
    });
    wait_for("the first clone to end", || request(&projects, first.id).state == RequestState::Done);
    let meta = store.open_run(&project(), &first_run).expect("open").meta().expect("meta");
    assert_eq!(meta.status(), Some("finished"));
    assert_eq!(meta.get(meta_key::ENDED_BY), Some("stopped"));
    let second_run = RunId::parse(&format!("source-clone-{}", second.id)).expect("id");
    wait_for("the second clone to train", || live(&second_run));

    // SIGTERM to the agent: its trainer is asked to stop, ends as stopped, and the
    // request goes back to pending for the next agent.
    let mut agent = agent;
    terminate(&agent.0);
    let status = agent.0.wait().expect("wait");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut agent.0.stdout.take().expect("stdout"), &mut out).ok();
    assert!(status.success(), "{status:?}\n{out}");
    assert!(out.contains("stopping: asking 1 trainer(s) to stop"), "{out}");
    assert!(out.contains("a1 stopped; 1 request(s) left pending for the next agent"), "{out}");
    assert_eq!(request(&projects, second.id).state, RequestState::Pending);
    let meta = store.open_run(&project(), &second_run).expect("open").meta().expect("meta");
    assert_eq!(meta.get(meta_key::ENDED_BY), Some("stopped"));

    // The next agent resumes the second clone (its run, not a third one) and, asked to
    // stop it, leaves it stopped.
    let mut next = background_agent(&projects, "a2", &[], &["--pace-ms", "20"]);
    wait_for("the second clone to be claimed again", || {
        request(&projects, second.id).claimed_by.as_deref() == Some("a2")
    });
    wait_for("the second clone to train again", || live(&second_run));
    let stop = ask(&projects, RequestKind::Stop, second_run.as_str(), None);
    wait_for("the second clone to end", || {
        request(&projects, second.id).state == RequestState::Done
    });
    assert_eq!(request(&projects, stop.id).state, RequestState::Done);
    let _ = next.0.kill();
    let _ = next.0.wait();
    let runs = store.list_runs(Some(&project())).expect("list").runs.len();
    assert_eq!(runs, 3, "the source and two clones, none twice");
}

#[test]
fn agent_arguments_are_checked() {
    let dir = tempfile::tempdir().expect("dir");
    let run = |args: &[&str]| {
        outcome(
            goodseed().arg("agent").args(args).arg("--dir").arg(dir.path()).args(["--", "true"]),
        )
    };
    let (code, _, err) = run(&["-p", "team/p", "--slots", "3", "--gpus", "0,1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--slots 3 needs at least 3 GPUs, and --gpus gives 2"), "{err}");
    let (code, _, err) = run(&["-p", "../etc"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--project"), "{err}");
    let (code, _, err) = run(&["-p", "team/p", "--grace", "1e30"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--grace must be a number of seconds from 0 to 86400"), "{err}");
    let (code, _, err) = run(&["-p", "team/p", "--poll=-1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--poll"), "{err}");
    let (code, _, err) = run(&["-p", "team/p", "--gpus", "0,0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("GPU 0 twice"), "{err}");
    let (code, _, err) = outcome(goodseed().args(["agent", "-p", "team/p"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("TRAINER"), "no trainer command: {err}");
}

#[test]
fn each_slot_gets_its_gpus() {
    let home = tempfile::tempdir().expect("home");
    let projects = home.path().join("projects");
    train_source(home.path(), "source");
    let script = home.path().join("trainer.sh");
    // A trainer that records what it was given.
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"$GOODSEED_RUN_ID $CUDA_VISIBLE_DEVICES $GOODSEED_RESUME\" >> \"$GOODSEED_HOME/seen\"\nsleep 1\n",
    )
    .expect("script");
    let ids: Vec<i64> =
        (0..2).map(|_| ask(&projects, RequestKind::Clone, "source", None).id).collect();
    let (code, out, err) = outcome(
        goodseed()
            .args(["agent", "-p", PROJECT, "--poll", "0.05", "--once", "--gpus", "0,1,2,3"])
            .args(["--slots", "2", "--dir"])
            .arg(&projects)
            .args(["--", "sh"])
            .arg(&script),
    );
    assert_eq!(code, 0, "{out}{err}");
    let seen = std::fs::read_to_string(home.path().join("seen")).expect("seen");
    let mut lines: Vec<&str> = seen.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [format!("source-clone-{} 0,1 ", ids[0]), format!("source-clone-{} 2,3 ", ids[1])],
        "{out}"
    );
    assert!(out.contains("with CUDA_VISIBLE_DEVICES=0,1"), "{out}");
}

fn sweep(projects: &Path, args: &[&str]) -> (i32, String, String) {
    outcome(goodseed().arg("sweep").args(args).arg("--dir").arg(projects))
}

#[test]
fn a_sweep_is_trained_by_the_agent_and_its_best_trial_found() {
    let home = tempfile::tempdir().expect("home");
    let projects = home.path().join("projects");
    let file = home.path().join("lr.toml");
    std::fs::write(
        &file,
        "[base]\nepochs = 3\nhidden = 8\n[parameters]\nlr = [0.01, 0.1]\noptimizer = [\"sgd\", \"adam\"]\n",
    )
    .expect("sweep file");
    let file = file.to_str().expect("utf-8");

    // A dry run queues nothing.
    let (code, out, err) = sweep(&projects, &["create", "-p", PROJECT, file, "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(r#"lr-1  {"epochs":3,"hidden":8,"lr":0.01,"optimizer":"sgd"}"#), "{out}");
    assert!(out.contains("4 trial(s); nothing queued"), "{out}");
    let (code, out, err) = sweep(&projects, &["create", "-p", PROJECT, file]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("sweep lr in team/iris: 4 trial(s) queued"), "{out}");
    let (code, _, err) = sweep(&projects, &["create", "-p", PROJECT, file]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("there is a sweep lr in team/iris already"), "{err}");

    let (code, out, err) = agent_once(&projects, &["--slots", "2"]);
    assert_eq!(code, 0, "{out}{err}");
    let store = SqliteStore::new(&projects);
    for (i, (lr, optimizer)) in
        [(0.01, "sgd"), (0.01, "adam"), (0.1, "sgd"), (0.1, "adam")].into_iter().enumerate()
    {
        let run = format!("lr-{}", i + 1);
        let configs = config(&store, &run);
        assert_eq!(value(&configs, "lr"), &ConfigValue::Float(lr), "{run}");
        assert_eq!(value(&configs, "optimizer"), &ConfigValue::Str(optimizer.into()), "{run}");
        assert_eq!(value(&configs, "epochs"), &ConfigValue::Int(3), "{run}");
        let id = RunId::parse(&run).expect("id");
        let summary = store.run_summary(&project(), &id).expect("summary");
        assert_eq!(summary.status, RunStatus::Finished, "{run}");
    }
    let (code, out, err) =
        sweep(&projects, &["status", "-p", PROJECT, "lr", "--metric", "val/accuracy"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("sweep lr in team/iris: 4 trial(s): 0 pending, 0 claimed, 4 done, 0 failed"),
        "{out}"
    );
    assert!(out.contains("best: lr-"), "{out}");
    assert!(
        out.lines().filter(|l| l.contains("val/accuracy") && l.contains("at step")).count() >= 4,
        "{out}"
    );

    // Cancelled before an agent came: every trial fails as cancelled, none is trained.
    let later = home.path().join("later.toml");
    std::fs::write(&later, "method = \"list\"\n[[trials]]\nlr = 0.5\n[[trials]]\nlr = 0.6\n")
        .expect("sweep file");
    let (code, out, err) =
        sweep(&projects, &["create", "-p", PROJECT, later.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = sweep(&projects, &["cancel", "-p", PROJECT, "later"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("2 pending trial(s) cancelled, 0 running trial(s) asked to stop"),
        "{out}"
    );
    let (code, out, err) = agent_once(&projects, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("trainer started"), "{out}");
    let (_, out, _) = sweep(&projects, &["status", "-p", PROJECT, "later"]);
    assert!(out.contains("0 done, 2 failed") && out.contains("(the sweep was cancelled)"), "{out}");

    // Bad names and files say why.
    let (code, _, err) = sweep(&projects, &["status", "-p", PROJECT, "nope"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("there is no sweep \"nope\" in team/iris (sweeps there: later, lr)"),
        "{err}"
    );
    let bad = home.path().join("bad.toml");
    std::fs::write(&bad, "method = \"random\"\n[parameters]\nlr = [1]\n").expect("file");
    let (code, _, err) = sweep(&projects, &["create", "-p", PROJECT, bad.to_str().expect("utf-8")]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.toml") && err.contains("a random sweep needs count"), "{err}");
}

#[test]
fn saved_configs_are_saved_from_a_run_and_used_by_a_sweep() {
    let home = tempfile::tempdir().expect("home");
    let projects = home.path().join("projects");
    train_source(home.path(), "source");
    let config =
        |args: &[&str]| outcome(goodseed().arg("config").args(args).arg("--dir").arg(&projects));

    let (code, out, err) = config(&["save", "small", "--from", "team/iris/source"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("saved the config small in team/iris"), "{out}");
    let (code, out, err) = config(&["list", "-p", PROJECT]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("small  {")
            && out.contains("from source")
            && out.ends_with("1 saved config(s) in team/iris\n"),
        "{out}"
    );
    let (code, out, err) = config(&["show", "small", "-p", PROJECT]);
    assert_eq!(code, 0, "{out}{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!((shown["epochs"].as_i64(), shown["hidden"].as_i64()), (Some(5), Some(8)), "{out}");
    assert!(shown.get("sys").is_none(), "the run's own sys/ values are left out: {out}");

    // A sweep's base.
    let file = home.path().join("from-small.toml");
    std::fs::write(&file, "base = \"small\"\n[parameters]\nlr = [0.3]\n").expect("file");
    let (code, out, err) = outcome(
        goodseed()
            .args(["sweep", "create", "-p", PROJECT, "--dry-run"])
            .arg(&file)
            .arg("--dir")
            .arg(&projects),
    );
    assert_eq!(code, 0, "{out}{err}");
    let line = out.lines().next().unwrap_or_default();
    let trial: serde_json::Value =
        serde_json::from_str(line.split_once("  ").map(|(_, j)| j).unwrap_or_default())
            .expect("JSON");
    assert_eq!((trial["epochs"].as_i64(), trial["lr"].as_f64()), (Some(5), Some(0.3)), "{out}");

    // Refused, saying why.
    let (code, _, err) = config(&["save", "has space", "--from", "team/iris/source"]);
    assert_eq!(code, 1);
    assert!(err.contains("1 to 100 letters"), "{err}");
    let (code, _, err) = config(&["save", "x", "--from", "team/iris/nope"]);
    assert_ne!(code, 0);
    assert!(err.contains("nope"), "{err}");
    let (code, out, err) = config(&["rm", "small", "-p", PROJECT]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = config(&["show", "small", "-p", PROJECT]);
    assert_eq!(code, 1);
    assert!(
        err.contains("there is no saved config \"small\" in team/iris (saved there: none)"),
        "{err}"
    );
}

/// Sends SIGTERM to a child.
fn terminate(child: &Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
}

/// `goodseed agent` in the background on the demo trainer (`trainer` its extra args).
fn background_agent(projects: &Path, name: &str, extra: &[&str], trainer: &[&str]) -> Agent {
    Agent(
        goodseed()
            .args(["agent", "-p", PROJECT, "--poll", "0.05", "--name", name])
            .args(extra)
            .arg("--dir")
            .arg(projects)
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_goodseed"))
            .arg("demo-trainer")
            .args(trainer)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("agent"),
    )
}

#[test]
fn an_agent_killed_with_claimed_work_leaves_it_to_the_next() {
    let home = tempfile::tempdir().expect("home");
    let projects = home.path().join("projects");
    train_source(home.path(), "source");
    let clone = ask(&projects, RequestKind::Clone, "source", Some(r#"{"epochs": 100000}"#));
    let run = RunId::parse(&format!("source-clone-{}", clone.id)).expect("id");
    let store = SqliteStore::new(&projects);
    let live = |run: &RunId| {
        store
            .run_summary(&project(), run)
            .is_ok_and(|s| s.status == RunStatus::Running && s.liveness == Liveness::Live)
    };
    let mut first = background_agent(&projects, "gpu-1", &[], &["--pace-ms", "20"]);
    // Training (points logged), not only created.
    wait_for("the clone to train", || {
        live(&run)
            && store
                .open_run(&project(), &run)
                .and_then(|r| r.metric_count("val/accuracy"))
                .is_ok_and(|n| n > 2)
    });
    // SIGKILL: no shutdown. Its trainer goes with it (closed as killed), its claim stays.
    first.0.kill().expect("kill");
    first.0.wait().expect("wait");
    // Its trainer goes with it (a parent-death SIGTERM): the run is no longer live,
    // closed as killed or, when the signal beat the SDK's handler, left to be resumed
    // as a dead writer's run.
    wait_for("the trainer to end with its agent", || {
        store
            .run_summary(&project(), &run)
            .is_ok_and(|s| s.liveness == Liveness::Dead || s.status != RunStatus::Running)
    });
    let left = request(&projects, clone.id);
    assert_eq!((left.state, left.claimed_by.as_deref()), (RequestState::Claimed, Some("gpu-1")));

    // The next agent of that name takes it back and resumes the same run.
    let mut next = background_agent(&projects, "gpu-1", &[], &["--pace-ms", "20"]);
    wait_for("the clone to train again", || live(&run));
    let stop = ask(&projects, RequestKind::Stop, run.as_str(), None);
    wait_for("the clone to end", || request(&projects, clone.id).state == RequestState::Done);
    assert_eq!(request(&projects, stop.id).state, RequestState::Done);
    let _ = next.0.kill();
    let _ = next.0.wait();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut next.0.stdout.take().expect("stdout"), &mut out).ok();
    assert!(out.contains("took back 1 request(s) it had claimed before"), "{out}");
    assert_eq!(store.list_runs(Some(&project())).expect("list").runs.len(), 2, "no third run");
}

#[test]
fn a_trainer_that_ignores_a_stop_is_killed_after_the_grace_and_marked_killed() {
    let home = tempfile::tempdir().expect("home");
    let projects = home.path().join("projects");
    train_source(home.path(), "source");
    let clone = ask(&projects, RequestKind::Clone, "source", Some(r#"{"epochs": 100000}"#));
    let run = RunId::parse(&format!("source-clone-{}", clone.id)).expect("id");
    let store = SqliteStore::new(&projects);
    let mut agent = background_agent(
        &projects,
        "stubborn",
        &["--grace", "1"],
        &["--pace-ms", "20", "--ignore-stop"],
    );
    wait_for("the clone to train", || {
        store.run_summary(&project(), &run).is_ok_and(|s| s.status == RunStatus::Running)
    });
    let started = std::time::Instant::now();
    terminate(&agent.0);
    let status = agent.0.wait().expect("wait");
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took >= Duration::from_secs(1), "the grace was given: {took:?}");
    let meta = store.open_run(&project(), &run).expect("open").meta().expect("meta");
    assert_eq!(meta.status(), Some("failed"));
    assert_eq!(meta.get(meta_key::ENDED_BY), Some("killed"), "{meta:?}");
    assert_eq!(meta.get(meta_key::ENDED_BY_SIGNAL), Some("SIGTERM"), "{meta:?}");
    assert_eq!(request(&projects, clone.id).state, RequestState::Pending, "left for the next");
}

#[test]
fn two_agents_at_once_carry_out_each_request_once() {
    let home = tempfile::tempdir().expect("home");
    let projects = home.path().join("projects");
    train_source(home.path(), "source");
    let ids: Vec<i64> = (0..6)
        .map(|i| {
            let patch = format!(r#"{{"epochs": 2, "lr": 0.0{}}}"#, i + 1);
            ask(&projects, RequestKind::Clone, "source", Some(&patch)).id
        })
        .collect();
    let start = |name: &str| {
        goodseed()
            .args(["agent", "-p", PROJECT, "--poll", "0.05", "--once", "--name", name, "--dir"])
            .arg(&projects)
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_goodseed"))
            .arg("demo-trainer")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("agent")
    };
    let (a, b) = (start("a"), start("b"));
    let (a, b) = (a.wait_with_output().expect("a"), b.wait_with_output().expect("b"));
    assert!(a.status.success() && b.status.success());
    let mut by = std::collections::BTreeMap::new();
    for id in &ids {
        let r = request(&projects, *id);
        assert_eq!(r.state, RequestState::Done, "{r:?}");
        *by.entry(r.claimed_by.unwrap_or_default()).or_insert(0) += 1;
    }
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let started =
        text(&a).matches("trainer started").count() + text(&b).matches("trainer started").count();
    assert_eq!(started, 6, "each started once:\n{}\n{}", text(&a), text(&b));
    let store = SqliteStore::new(&projects);
    assert_eq!(store.list_runs(Some(&project())).expect("list").runs.len(), 7, "{by:?}");
}
