//! Two `goodseed serve --store postgresql://…` (the binary) over one database of the
//! test kit's private cluster, as two team servers behind a proxy: a trainer logs to
//! one, the API of the other shows the run live, its stop request reaches the trainer,
//! and `goodseed list`/`show`/`export --store` read it; a run synced from files exports
//! byte for byte as it does from the files.

use std::io::{BufRead as _, Read as _, Write as _};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use goodseed_sdk::Run;

use crate::support::{goodseed, outcome};
use goodseed_sdk::remote::Remote;

/// `goodseed serve --store URL` on port 0, and its port.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(store: &str) -> Server {
        let mut child = goodseed()
            .args(["serve", "--port", "0", "--store", store])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start goodseed serve");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("first line");
        let url = first
            .trim()
            .strip_prefix("Goodseed server running at http://127.0.0.1:")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        Server { child, port: url.parse().expect("port") }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A request; the status and body.
    fn call(&self, method: &str, target: &str) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        write!(
            s,
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("send");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("read");
        let status = answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn key(store: &str, workspace: &str) -> String {
    let (code, stdout, stderr) =
        outcome(goodseed().args(["token", "create", "--workspace", workspace, "--store", store]));
    assert_eq!(code, 0, "{stderr}");
    stdout.trim().to_owned()
}

fn builder(home: &Path) -> goodseed_sdk::RunBuilder {
    Run::builder()
        .home(home)
        .monitoring(false)
        .capture_git(false)
        .capture_host(false)
        .capture_command_line(false)
}

#[test]
fn two_servers_over_one_database_serve_one_trainer() {
    let db = goodseed_testkit::postgres::shared().database();
    let key = key(&db, "team");
    let (a, b) = (Server::start(&db), Server::start(&db));
    let home = tempfile::tempdir().expect("trainer home");
    let remote = Remote::new(a.url(), key).expect("remote");
    let run = builder(home.path())
        .project("team/vision")
        .run_id("on-a")
        .remote(remote)
        .heartbeat_interval(Duration::from_millis(200))
        .create()
        .expect("create");
    run.set_config("lr", 0.001).expect("config");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut step = 0u32;
    // Server b shows the run and its points as the trainer logs to server a.
    loop {
        run.log_metric("train/loss", step, 1.0 / f64::from(step + 1)).expect("log");
        step += 1;
        let (status, body) = b.call("GET", "/api/runs/team/vision/on-a/metrics?path=train/loss");
        if status == 200 && body.contains("\"step\": 10.0") {
            break;
        }
        assert!(Instant::now() < deadline, "server b never showed the points: {status} {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, body) = b.call("GET", "/api/runs?project=team/vision");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"on-a\"") && body.contains("\"running\""), "{body}");
    // A stop asked of server b reaches the trainer through server a.
    let (status, body) = b.call("POST", "/api/runs/team/vision/on-a/stop");
    assert_eq!(status, 200, "{body}");
    while !run.should_stop() {
        run.log_metric("train/loss", step, 0.0).expect("log");
        step += 1;
        assert!(Instant::now() < deadline, "the stop never reached the trainer");
        std::thread::sleep(Duration::from_millis(20));
    }
    run.finish().expect("finish");
    // Everything the trainer logged is in the database, whichever server is asked.
    let (code, stdout, stderr) =
        outcome(goodseed().args(["list", "--store", &db, "-p", "team/vision"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("on-a") && stdout.contains("finished"), "{stdout}");
    let (code, csv, stderr) = outcome(goodseed().args([
        "export",
        "team/vision/on-a",
        "--store",
        &db,
        "--path",
        "train/loss",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(csv.lines().count() as u32, step + 1, "a header and every step: {csv}");
    let (code, stdout, stderr) =
        outcome(goodseed().args(["show", "team/vision/on-a", "--store", &db]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("lr"), "{stdout}");
}

#[test]
fn a_run_synced_from_files_exports_as_the_files_do() {
    let db = goodseed_testkit::postgres::shared().database();
    let key = key(&db, "team");
    let server = Server::start(&db);
    let home = tempfile::tempdir().expect("home");
    let run = builder(home.path()).project("team/p").run_id("from-files").create().expect("create");
    run.set_config("model/name", "mlp ☃").expect("config");
    run.set_config("model/dropout", f64::NAN).expect("config");
    for i in 0..2_000u32 {
        run.log_metrics(i, [("a", f64::from(i) * 0.1), ("b", f64::INFINITY)]).expect("log");
    }
    run.log_metric("odd", 0.5, -0.0).expect("log");
    run.log_text("logs/out", 0u32, "line one\nline two").expect("text");
    run.finish().expect("finish");
    let projects = home.path().join("projects");
    let (code, _, stderr) = outcome(goodseed().arg("sync").arg(&projects).args([
        "--to",
        &server.url(),
        "--token",
        &key,
    ]));
    assert_eq!(code, 0, "{stderr}");
    for format in ["json", "csv"] {
        let (code, from_files, stderr) = outcome(
            goodseed()
                .args(["export", "team/p/from-files", "--format", format, "--dir"])
                .arg(&projects),
        );
        assert_eq!(code, 0, "{stderr}");
        let (code, from_db, stderr) = outcome(goodseed().args([
            "export",
            "team/p/from-files",
            "--format",
            format,
            "--store",
            &db,
        ]));
        assert_eq!(code, 0, "{stderr}");
        // The team server wrote the run: its own writer identity (pid, heartbeat) is in
        // the run's meta instead of the trainer's. Everything else is the same.
        let ours = |text: &str| -> String {
            text.split("\"meta\": {")
                .enumerate()
                .map(|(i, part)| {
                    if i == 0 {
                        part.to_owned()
                    } else {
                        part.split_once('}').map_or(String::new(), |(_, rest)| rest.to_owned())
                    }
                })
                .collect()
        };
        assert!(from_files.len() > 10_000, "{format}: a real export");
        assert_eq!(
            ours(&from_db),
            ours(&from_files),
            "{format} export differs between files and PostgreSQL"
        );
    }
    // A store that cannot be reached is said, in one line, without the password.
    let (code, _, stderr) =
        outcome(goodseed().args(["list", "--store", "postgresql://u:hunter2@127.0.0.1:1/none"]));
    assert_ne!(code, 0);
    assert!(
        stderr.contains("cannot reach the database") && !stderr.contains("hunter2"),
        "{stderr}"
    );
    let (code, _, stderr) = outcome(goodseed().args(["list", "--dir", "/x", "--store", &db]));
    assert_ne!(code, 0);
    assert!(stderr.contains("give one"), "{stderr}");
}
