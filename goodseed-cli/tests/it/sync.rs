//! `goodseed sync` and `goodseed upload` against a real `goodseed serve` (the binary, on
//! port 0, with a key from `goodseed token create`): runs written by our SDK and by
//! goodseed 0.4.0 arrive whole; a second sync sends nothing; a sync killed half way
//! resumes without losing or doubling a point.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use goodseed_core::{ProjectName, RunId};
use goodseed_sdk::Run;

use crate::support::{Serve, goodseed, outcome};
use goodseed_store::{StoreLocation, TextWindow, open_store};

/// `goodseed serve` over `dir`, and its address.
struct Server {
    _serve: Serve,
    url: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        Server::start_on(dir, 0)
    }

    /// On a given port (0: any), as a server started again is.
    fn start_on(dir: &Path, port: u16) -> Server {
        let port = port.to_string();
        let serve =
            Serve::start([OsStr::new("--port"), port.as_ref(), "--dir".as_ref(), dir.as_os_str()]);
        Server { url: serve.url.clone(), _serve: serve }
    }
}

fn key(server_dir: &Path, workspace: &str) -> String {
    let (code, stdout, stderr) = outcome(
        goodseed().args(["token", "create", "--workspace", workspace, "--dir"]).arg(server_dir),
    );
    assert_eq!(code, 0, "{stderr}");
    stdout.trim().to_owned()
}

fn local_run(home: &Path, project: &str, run_id: &str, steps: u32) {
    let run = Run::builder()
        .home(home)
        .project(project)
        .run_id(run_id)
        .monitoring(false)
        .capture_git(false)
        .capture_host(false)
        .capture_command_line(false)
        .create()
        .expect("create");
    run.set_config("lr", 0.1).expect("config");
    for i in 0..steps {
        run.log_metrics(i, [("a", f64::from(i)), ("b", -f64::from(i))]).expect("log");
    }
    run.log_metric("odd", 0.5, f64::NAN).expect("log");
    run.log_text("t", 0u32, "text ☃").expect("text");
    run.finish().expect("finish");
}

/// Every value of every run, comparable.
fn everything(dir: &Path) -> Vec<String> {
    let store = open_store(&StoreLocation::Projects(dir.to_owned()));
    let mut out = Vec::new();
    for s in store.list_runs(None).expect("list").runs {
        let (p, r) = (ProjectName::parse(&s.project).expect("p"), RunId::parse(&s.id).expect("r"));
        let reader = store.open_run(&p, &r).expect("open");
        out.push(format!("{p}/{r} status={:?}", s.meta.status()));
        let mut configs: Vec<String> = reader
            .configs()
            .expect("configs")
            .into_iter()
            .map(|(k, v)| format!("{p}/{r} {k}={:?}", v.encode()))
            .collect();
        configs.sort();
        out.extend(configs);
        reader
            .visit_metrics(None, &mut |path, pt| {
                out.push(format!("{p}/{r} {path}@{}={:x}", pt.step, pt.value.to_bits()));
                true
            })
            .expect("metrics");
        for (path, pt) in reader.text_points(None, TextWindow::All).expect("texts").points {
            out.push(format!("{p}/{r} {path}@{}={}", pt.step, pt.value));
        }
    }
    out.sort();
    out
}

fn sync(home: &Path, server: &Server, key: &str, extra: &[&str]) -> (i32, String, String) {
    outcome(
        goodseed()
            .arg("sync")
            .arg(home.join("projects"))
            .args(["--to", &server.url, "--token", key])
            .args(extra),
    )
}

#[test]
fn sync_sends_local_runs_once_and_resumes_after_being_killed() {
    let server_dir = tempfile::tempdir().expect("server");
    let server = Server::start(server_dir.path());
    let key = key(server_dir.path(), "team");
    let home = tempfile::tempdir().expect("home");
    local_run(home.path(), "team/a", "r1", 300);
    local_run(home.path(), "team/b", "r2", 10);
    // A run of goodseed 0.4.0, written in its local mode.
    let py = goodseed_testkit::python::run_python(
        "cloud_client.py",
        [OsStr::new("local"), home.path().as_os_str(), OsStr::new("team/py"), OsStr::new("py-run")],
        &[],
    );
    assert!(py.contains("pending"), "{py}");

    let (code, stdout, stderr) = sync(home.path(), &server, &key, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("team/a/r1: sent ") && stdout.contains("team/py/py-run: sent "),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("3 run(s) sent to {} (", server.url)), "{stdout}");
    assert_eq!(everything(server_dir.path()), everything(&home.path().join("projects")));
    // Again: nothing to send.
    let (code, stdout, _) = sync(home.path(), &server, &key, &[]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with(&format!("0 run(s) sent to {}", server.url)), "{stdout}");
    assert!(stdout.contains("3 already there"), "{stdout}");

    // A large run, and a sync killed while it sends.
    local_run(home.path(), "team/big", "large", 300_000);
    let mut child = goodseed()
        .arg("sync")
        .arg(home.path().join("projects"))
        .args(["-p", "team/big", "-r", "large", "--to", &server.url, "--token", &key])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sync starts");
    let server_store = open_store(&StoreLocation::Projects(server_dir.path().to_owned()));
    let (p, r) = (ProjectName::parse("team/big").expect("p"), RunId::parse("large").expect("r"));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let arrived = server_store.open_run(&p, &r).and_then(|x| x.metric_count("a")).unwrap_or(0);
        if arrived > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "nothing arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let local = open_store(&StoreLocation::Projects(home.path().join("projects")));
    let left = local.open_uploads(&p, &r).expect("uploads").count_pending().expect("count");
    // Resumed: the rest arrives, nothing twice (points are keyed by step there).
    let (code, stdout, stderr) = sync(home.path(), &server, &key, &["-p", "team/big"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(everything(server_dir.path()), everything(&home.path().join("projects")));
    assert_eq!(local.open_uploads(&p, &r).expect("uploads").count_pending().expect("count"), 0);
    assert!(left > 0, "the sync was killed half way, not after it ended");
}

#[test]
fn sync_and_upload_refuse_clearly() {
    let server_dir = tempfile::tempdir().expect("server");
    let server = Server::start(server_dir.path());
    let home = tempfile::tempdir().expect("home");
    local_run(home.path(), "team/a", "r1", 3);
    local_run(home.path(), "solo", "r2", 3);
    let (code, _, stderr) = outcome(goodseed().arg("sync").arg(home.path().join("projects")));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--to URL"), "{stderr}");
    let (code, _, stderr) = sync(
        home.path(),
        &server,
        "gs_000000000000_000000000000000000000000000000000000000000000000",
        &[],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("401") && stderr.contains("Invalid API key"), "{stderr}");
    // A run outside any workspace cannot go; the others do, and the exit code says one failed.
    let key = key(server_dir.path(), "team");
    let (code, stdout, stderr) = sync(home.path(), &server, &key, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.contains("solo/r2") && stderr.contains("no workspace"), "{stderr}");
    assert!(stdout.contains("team/a/r1: sent"), "{stdout}");
    let (code, _, stderr) = sync(home.path(), &server, &key, &["-r", "r1"]);
    assert_eq!(code, 2, "-r needs -p: {stderr}");
    let (code, _, stderr) = sync(home.path(), &server, &key, &["-p", "team/a", "-r", "nope"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no run team/a/nope"), "{stderr}");

    // 0.4.0's spelling, its lines.
    local_run(home.path(), "team/c", "r3", 3);
    let projects: PathBuf = home.path().join("projects");
    let local = open_store(&StoreLocation::Projects(projects.clone()));
    let (p, r) = (ProjectName::parse("team/c").expect("p"), RunId::parse("r3").expect("r"));
    let pending = local.open_uploads(&p, &r).expect("uploads").count_pending().expect("count");
    let (code, stdout, stderr) = outcome(
        goodseed()
            .args(["upload", "-p", "team/c", "--dir"])
            .arg(&projects)
            .env("GOODSEED_API_URL", &server.url)
            .env("GOODSEED_API_KEY", &key),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        format!(
            "Uploading run 'r3' from team/c/runs/r3.sqlite ...\nDone. Uploaded {pending} item(s).\n"
        )
    );
    let (code, stdout, _) =
        outcome(goodseed().args(["upload", "-p", "team/c", "--dir"]).arg(&projects));
    assert_eq!(
        (code, stdout.as_str()),
        (1, "Error: No API key. Set GOODSEED_API_KEY or pass --api-key.\n")
    );
}

/// `goodseed serve` killed (SIGKILL) while a remote trainer logs into it, then started
/// again on the same port: the trainer never notices but for a line on stderr, and the
/// server ends with every point once. Points the killed server had committed stay; the
/// rest come from the trainer's file.
#[test]
fn a_server_killed_during_ingest_loses_nothing_the_trainer_logged() {
    let server_dir = tempfile::tempdir().expect("server");
    let server = Server::start(server_dir.path());
    let key = key(server_dir.path(), "team");
    let url = server.url.clone();
    let port: u16 = url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    let home = tempfile::tempdir().expect("home");
    let run = Run::builder()
        .home(home.path())
        .project("team/k")
        .run_id("through")
        .monitoring(false)
        .capture_git(false)
        .capture_host(false)
        .capture_command_line(false)
        .upload_timeout(Duration::from_secs(120))
        .remote(goodseed_sdk::remote::Remote::new(&url, &key).expect("remote"))
        .create()
        .expect("create");
    let server_store = open_store(&StoreLocation::Projects(server_dir.path().to_owned()));
    let (p, r) = (ProjectName::parse("team/k").expect("p"), RunId::parse("through").expect("r"));
    let arrived = || server_store.open_run(&p, &r).and_then(|x| x.metric_count("a")).unwrap_or(0);
    let mut server = Some(server);
    let mut kills = 0;
    for step in 0..60_000u32 {
        run.log_metrics(step, [("a", f64::from(step)), ("b", f64::from(step) * 2.0)]).expect("log");
        // Twice, while points are flowing: kill it, and start it again.
        if (step == 20_000 || step == 40_000) && server.is_some() {
            run.flush().expect("flush");
            let deadline = Instant::now() + Duration::from_secs(60);
            while arrived() == 0 {
                assert!(Instant::now() < deadline, "nothing arrived");
                std::thread::sleep(Duration::from_millis(20));
            }
            // Dropping it kills it (SIGKILL) and waits for it.
            drop(server.take().expect("server"));
            kills += 1;
            std::thread::sleep(Duration::from_millis(300));
            server = Some(Server::start_on(server_dir.path(), port));
        }
    }
    run.finish().expect("finish");
    assert_eq!(kills, 2);
    let reader = server_store.open_run(&p, &r).expect("the run");
    assert_eq!(reader.metric_count("a").expect("count"), 60_000);
    let mut n = 0;
    reader
        .visit_metrics(Some("b"), &mut |_, pt| {
            assert_eq!(pt.value, pt.step * 2.0);
            n += 1;
            true
        })
        .expect("visit");
    assert_eq!(n, 60_000);
    assert_eq!(server_store.run_summary(&p, &r).expect("summary").status.as_str(), "finished");
    let local = open_store(&StoreLocation::Projects(home.path().join("projects")));
    assert_eq!(local.open_uploads(&p, &r).expect("uploads").count_pending().expect("count"), 0);
    assert_eq!(everything(server_dir.path()), everything(&home.path().join("projects")));
}

#[test]
fn sync_says_which_histograms_stay_local() {
    let server_dir = tempfile::tempdir().expect("server");
    let server = Server::start(server_dir.path());
    let key = key(server_dir.path(), "team");
    let home = tempfile::tempdir().expect("home");
    local_run(home.path(), "team/hist", "h-1", 3);
    // A histogram series, as an import writes one.
    let store = open_store(&StoreLocation::Projects(home.path().join("projects")));
    let (p, r) = (ProjectName::parse("team/hist").expect("p"), RunId::parse("h-1").expect("r"));
    let mut w = store.resume_run(&p, &r).expect("resume");
    let mut b = goodseed_store::WriteBatch::new();
    let h =
        goodseed_core::Histogram { kind: String::new(), edges: vec![0.0, 1.0], counts: vec![4.0] };
    b.histogram(
        goodseed_core::FieldPath::parse("w/fc").expect("path"),
        goodseed_core::Step::ZERO,
        h,
        1,
    );
    w.write(&b).expect("write");
    w.close().expect("close");
    let (code, out, err) = sync(home.path(), &server, &key, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("team/hist/h-1: sent"), "{out}");
    assert!(err.contains("note: team/hist/h-1: its 1 histogram series (w/fc) stay here"), "{err}");
}
