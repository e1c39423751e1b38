//! Our SDK in remote mode against the real server: a run written locally and uploaded by
//! its sync thread; the server down at the start, or gone at the end; stop requests
//! from the server; keys refused at once. What the server holds is compared point for
//! point with the trainer's own file.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goodseed_core::{ProjectName, RunId};
use goodseed_sdk::remote::{Remote, upload_run};
use goodseed_sdk::{Run, SdkError};
use goodseed_store::tokens::{SqliteTokenStore, TokenScope, TokenStore};
use goodseed_store::{RunReader, StoreLocation, TextWindow, open_store};

use crate::support::TestServer;

const FULL: &str = "remote-mode-full-token-000";

fn serve(dir: &Path, port: u16) -> TestServer {
    let tokens: Arc<dyn TokenStore> = Arc::new(SqliteTokenStore::in_data_dir(dir));
    TestServer::start_at(dir, port, |o| goodseed_server::ServerOptions {
        token: Some(FULL.into()),
        tokens: Some(tokens),
        ..o
    })
}

fn key(dir: &Path, workspace: &str, read_only: bool) -> String {
    let scope = TokenScope::new(workspace, None, read_only).expect("scope");
    SqliteTokenStore::in_data_dir(dir).create(&scope, None).expect("token").secret
}

fn builder(home: &Path, remote: Remote) -> goodseed_sdk::RunBuilder {
    Run::builder()
        .home(home)
        .monitoring(false)
        .capture_git(false)
        .capture_host(false)
        .capture_command_line(false)
        .remote(remote)
        .heartbeat_interval(Duration::from_millis(200))
}

/// A port nothing listens on (yet).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Logs a bit of everything: configs, metrics with NaN, ±inf, -0.0, fractional and
/// negative steps, text.
fn log_everything(run: &Run, steps: u32) {
    run.set_config("lr", 0.001).expect("config");
    run.log_config(&serde_json::json!({"model": {"layers": [64, 32], "act": "gelu"}}))
        .expect("config");
    for i in 0..steps {
        run.log_metrics(i, [("train/loss", 1.0 / f64::from(i + 1)), ("train/acc", f64::from(i))])
            .expect("log");
    }
    for (step, v) in
        [(0.5, f64::NAN), (1.5, f64::INFINITY), (-2.0, -0.0), (2.25, f64::NEG_INFINITY)]
    {
        run.log_metric("eval/odd", step, v).expect("log");
    }
    run.log_text("logs/out", 0u32, "first ☃").expect("text");
    run.log_text("logs/out", 1u32, "").expect("text");
}

/// Every value of a run, in a form that compares exactly (bits of floats).
fn contents(reader: &dyn RunReader) -> (Vec<String>, Vec<String>, Vec<String>) {
    let configs = reader
        .configs()
        .expect("configs")
        .into_iter()
        .map(|(p, v)| format!("{p}={}:{:?}", v.type_tag(), v.encode()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut metrics = Vec::new();
    reader
        .visit_metrics(None, &mut |path, p| {
            metrics.push(format!("{path}@{:x}={:x}/{}", p.step.to_bits(), p.value.to_bits(), p.ts));
            true
        })
        .expect("metrics");
    let texts = reader
        .text_points(None, TextWindow::All)
        .expect("texts")
        .points
        .into_iter()
        .map(|(path, p)| format!("{path}@{}={:?}/{}", p.step, p.value, p.ts))
        .collect();
    (configs, metrics, texts)
}

fn assert_same(local_home: &Path, server_dir: &Path, project: &str, run: &str) {
    let (p, r) = (ProjectName::parse(project).expect("p"), RunId::parse(run).expect("r"));
    let local = open_store(&StoreLocation::Projects(local_home.join("projects")));
    let remote = open_store(&StoreLocation::Projects(server_dir.to_owned()));
    let l = contents(&*local.open_run(&p, &r).expect("local run"));
    let s = contents(&*remote.open_run(&p, &r).expect("the server's copy"));
    // The server's configs are the trainer's (the sys/* ones included).
    assert_eq!(s.0, l.0, "configs");
    for (what, server, trainer) in [("metric points", &s.1, &l.1), ("text points", &s.2, &l.2)] {
        let first = server.iter().zip(trainer).position(|(a, b)| a != b);
        assert!(
            first.is_none() && server.len() == trainer.len(),
            "{what}: the server holds {} and the trainer {}; first difference: {:?}",
            server.len(),
            trainer.len(),
            first.map(|i| (&server[i], &trainer[i]))
        );
    }
    let (ls, rs) =
        (local.run_summary(&p, &r).expect("summary"), remote.run_summary(&p, &r).expect("summary"));
    for key in ["run_id", "project", "name", "status", "created_at", "closed_at"] {
        assert_eq!(rs.meta.get(key), ls.meta.get(key), "meta {key}");
    }
    let mut uploads = local.open_uploads(&p, &r).expect("uploads");
    assert_eq!(uploads.count_pending().expect("count"), 0, "every local row is marked uploaded");
}

#[test]
fn a_remote_run_arrives_whole_and_ends_as_the_trainer_ended_it() {
    let dir = tempfile::tempdir().expect("server dir");
    let server = serve(dir.path(), 0);
    let home = tempfile::tempdir().expect("trainer home");
    let remote =
        Remote::new(format!("http://127.0.0.1:{}", server.port), key(dir.path(), "team", false))
            .expect("remote");
    // A project without a workspace gets the key's, as 0.4.0 does.
    let run = builder(home.path(), remote.clone())
        .project("vision")
        .run_id("r1")
        .name("first ✓")
        .tags(["a", "b"])
        .create()
        .expect("create");
    assert_eq!(run.project().as_str(), "team/vision");
    log_everything(&run, 20_000);
    run.finish().expect("finish");
    assert_same(home.path(), dir.path(), "team/vision", "r1");
    let stats = run.stats();
    assert_eq!(stats.upload_errors, 0);
    assert!(stats.rows_uploaded >= 40_006, "{stats:?}");
    // A failed run ends failed there too; a resumed one goes on in the same run.
    let run = builder(home.path(), remote.clone())
        .project("team/vision")
        .run_id("r2")
        .create()
        .expect("create");
    log_everything(&run, 10);
    run.fail().expect("fail");
    assert_same(home.path(), dir.path(), "team/vision", "r2");
    let again = builder(home.path(), remote).project("team/vision").resume("r2").expect("resume");
    again.log_metric("train/loss", 100u32, 0.01).expect("log");
    again.finish().expect("finish");
    assert_same(home.path(), dir.path(), "team/vision", "r2");
}

/// Steps logged again while their first values are on their way: the marks of a live
/// run skip reading rows back only while no step was written twice, so every value
/// written again is sent again and the server ends with the last ones.
#[test]
fn steps_logged_again_while_their_batch_is_on_its_way_are_sent_again() {
    let dir = tempfile::tempdir().expect("server dir");
    let server = serve(dir.path(), 0);
    let home = tempfile::tempdir().expect("trainer home");
    let remote =
        Remote::new(format!("http://127.0.0.1:{}", server.port), key(dir.path(), "team", false))
            .expect("remote");
    let run = builder(home.path(), remote)
        .project("team/p")
        .run_id("rewritten")
        .create()
        .expect("create");
    let mut rng = goodseed_testkit::rng::Rng(7);
    for i in 0..60_000u32 {
        run.log_metrics(i, [("a", f64::from(i)), ("b", -f64::from(i))]).expect("log");
        if i % 7 == 0 {
            // A step already written (and perhaps already read by the sync) again.
            let back = rng.below(u64::from(i) + 1) as u32;
            run.log_metric("a", back, f64::from(i) + 0.5).expect("log again");
            run.log_text("t", back, format!("again {i}")).expect("text again");
        }
        if i % 2_000 == 0 {
            // Let the sync read and send what is there, so rewrites race its marks.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    run.finish().expect("finish");
    assert_same(home.path(), dir.path(), "team/p", "rewritten");
}

/// A step written again after it reached the server gets there while the run goes on,
/// not only when it closes.
#[test]
fn a_step_written_again_reaches_the_server_while_the_run_is_live() {
    let dir = tempfile::tempdir().expect("server dir");
    let server = serve(dir.path(), 0);
    let home = tempfile::tempdir().expect("trainer home");
    let remote =
        Remote::new(format!("http://127.0.0.1:{}", server.port), key(dir.path(), "team", false))
            .expect("remote");
    let run =
        builder(home.path(), remote).project("team/p").run_id("live").create().expect("create");
    let (p, r) = (ProjectName::parse("team/p").expect("p"), RunId::parse("live").expect("r"));
    let on_server = |step: f64| -> Option<f64> {
        let store = open_store(&StoreLocation::Projects(dir.path().to_owned()));
        let reader = store.open_run(&p, &r).ok()?;
        let mut found = None;
        reader
            .visit_metrics(None, &mut |path, point| {
                if path == "m" && point.step == step {
                    found = Some(point.value);
                }
                true
            })
            .ok()?;
        found
    };
    let wait_for = |step: f64, value: f64| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while on_server(step) != Some(value) {
            assert!(Instant::now() < deadline, "step {step} never became {value} on the server");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    for i in 0..100u32 {
        run.log_metric("m", i, f64::from(i)).expect("log");
    }
    wait_for(99.0, 99.0);
    run.log_metric("m", 5u32, -5.0).expect("log again");
    wait_for(5.0, -5.0);
    run.finish().expect("finish");
    assert_same(home.path(), dir.path(), "team/p", "live");
}

#[test]
fn a_stop_asked_on_the_server_reaches_the_remote_trainer() {
    let dir = tempfile::tempdir().expect("server dir");
    let server = serve(dir.path(), 0);
    let home = tempfile::tempdir().expect("trainer home");
    let remote =
        Remote::new(format!("http://127.0.0.1:{}", server.port), key(dir.path(), "team", false))
            .expect("remote");
    let run = builder(home.path(), remote)
        .project("team/p")
        .run_id("stoppable")
        .create()
        .expect("create");
    run.log_metric("m", 0u32, 1.0).expect("log");
    let auth = format!("Bearer {FULL}");
    let deadline = Instant::now() + Duration::from_secs(20);
    // The run exists on the server once the sync thread registered it.
    loop {
        let r = server.request(
            "POST",
            "/api/runs/team/p/stoppable/stop",
            &[("Authorization", &auth)],
            "",
        );
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never registered: {}", r.body);
        std::thread::sleep(Duration::from_millis(50));
    }
    while !run.should_stop() {
        assert!(Instant::now() < deadline, "the stop never reached the trainer");
        std::thread::sleep(Duration::from_millis(50));
    }
    run.finish().expect("finish");
    // It ended stopped, in 0.4.0's status `finished`, on the trainer and on the server.
    let (p, r) = (ProjectName::parse("team/p").expect("p"), RunId::parse("stoppable").expect("r"));
    for place in [home.path().join("projects"), dir.path().to_owned()] {
        let summary =
            open_store(&StoreLocation::Projects(place)).run_summary(&p, &r).expect("summary");
        assert_eq!(summary.meta.status(), Some("finished"));
        assert_eq!(summary.meta.get("ended_by"), Some("stopped"));
    }
}

#[test]
fn a_server_down_at_the_start_gets_everything_once_it_answers() {
    let dir = tempfile::tempdir().expect("server dir");
    let port = free_port();
    let home = tempfile::tempdir().expect("trainer home");
    let remote = Remote::new(format!("http://127.0.0.1:{port}"), key(dir.path(), "team", false))
        .expect("remote");
    // Nothing answers: the run starts all the same (the project names its workspace).
    let run = builder(home.path(), remote.clone())
        .project("team/p")
        .run_id("offline")
        .create()
        .expect("create without the server");
    log_everything(&run, 5000);
    run.flush().expect("flush");
    assert!(run.stats().upload_errors > 0 || run.stats().rows_uploaded == 0);
    let server = serve(dir.path(), port);
    run.finish().expect("finish");
    assert_same(home.path(), dir.path(), "team/p", "offline");
    drop(server);
    // Without the server and without a workspace in the project, starting is refused:
    // the workspace would have to come from the server.
    let err = builder(home.path(), remote).project("p").create().expect_err("no workspace");
    assert!(err.to_string().contains("workspace/project"), "{err}");
}

#[test]
fn a_server_gone_at_the_end_leaves_the_rest_in_the_file_for_goodseed_sync() {
    let dir = tempfile::tempdir().expect("server dir");
    let server = serve(dir.path(), 0);
    let port = server.port;
    let home = tempfile::tempdir().expect("trainer home");
    let remote = Remote::new(format!("http://127.0.0.1:{port}"), key(dir.path(), "team", false))
        .expect("remote");
    let run = builder(home.path(), remote.clone())
        .project("team/p")
        .run_id("late")
        .upload_timeout(Duration::from_secs(1))
        .create()
        .expect("create");
    run.log_metric("m", 0u32, 1.0).expect("log");
    run.flush().expect("flush");
    let deadline = Instant::now() + Duration::from_secs(20);
    while run.stats().rows_uploaded == 0 {
        assert!(Instant::now() < deadline, "nothing was uploaded");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);
    log_everything(&run, 3000);
    // Asked to stop (on the trainer's own files, the server being gone): it ends stopped.
    let local = open_store(&StoreLocation::Projects(home.path().join("projects")));
    let (p, r) = (ProjectName::parse("team/p").expect("p"), RunId::parse("late").expect("r"));
    local.request_stop(&p, &r).expect("stop");
    let started = Instant::now();
    run.finish().expect("finish does not fail for a server that is gone");
    assert!(started.elapsed() < Duration::from_secs(15), "finish waited {:?}", started.elapsed());
    let left = local.open_uploads(&p, &r).expect("uploads").count_pending().expect("count");
    assert!(left > 3000, "{left} rows left");
    // The server back, `goodseed sync`'s library sends the rest, once.
    let server = serve(dir.path(), port);
    let mut calls = 0;
    let report = upload_run(&*local, &p, &r, &remote, &mut |_| calls += 1).expect("upload");
    assert_eq!(report.remaining, 0);
    assert!(calls > 0 && report.points > 3000, "{report:?}");
    assert_same(home.path(), dir.path(), "team/p", "late");
    let again = upload_run(&*local, &p, &r, &remote, &mut |_| {}).expect("upload");
    assert_eq!((again.requests, again.points), (0, 0), "nothing is sent twice");
    // How it ended went with its status.
    let there = open_store(&StoreLocation::Projects(dir.path().to_owned()));
    let meta = there.run_summary(&p, &r).expect("summary").meta.clone();
    assert_eq!((meta.status(), meta.get("ended_by")), (Some("finished"), Some("stopped")));
    drop(server);
}

#[test]
fn a_wrong_or_read_only_key_is_refused_when_the_run_is_created() {
    let dir = tempfile::tempdir().expect("server dir");
    let server = serve(dir.path(), 0);
    let home = tempfile::tempdir().expect("trainer home");
    let url = format!("http://127.0.0.1:{}", server.port);
    let wrong =
        Remote::new(&url, "gs_000000000000_000000000000000000000000000000000000000000000000")
            .expect("remote");
    match builder(home.path(), wrong).project("team/p").create() {
        Err(SdkError::Remote(e)) => assert!(e.to_string().contains("401"), "{e}"),
        other => panic!("{other:?}"),
    }
    let reader = Remote::new(&url, key(dir.path(), "team", true)).expect("remote");
    let err = builder(home.path(), reader).project("team/p").create().expect_err("read-only");
    assert!(err.to_string().contains("read-only"), "{err}");
    // Nothing was created, here or there.
    assert!(!home.path().join("projects").exists());
    for bad in ["ftp://x", "http://", "localhost:8765"] {
        assert!(Remote::new(bad, "k").is_err(), "{bad}");
    }
    assert!(Remote::new("http://h", "").is_err());
    assert!(Remote::new("http://h", "a b").is_err());
}
