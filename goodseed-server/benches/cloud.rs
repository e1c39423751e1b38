//! Team-server benchmarks, reported as a table (`cargo bench -p goodseed-server --bench
//! cloud`, or `cargo xtask bench`). The server is a process of its own (this binary run
//! again, serving a temp directory on port 0), so its memory is its own; trainers are
//! our SDK in remote mode in this process.
//!
//! - one remote trainer, 200,000 steps x 10 metrics: from the first logging call to the
//!   server holding every point (`finish` returns once the server confirmed the last
//!   rows and the status), beside the same run written locally only; the median of
//!   five rounds (`GOODSEED_BENCH_ROUNDS`), since the machine is shared;
//!   `GOODSEED_BENCH_ONLY=one` measures only this;
//! - eight remote trainers at once, 100,000 steps x 10 metrics each: aggregate points/s
//!   into the one server, and the server's peak RSS; and eight `goodseed sync`s of runs
//!   written beforehand (the server's ingest without the trainers' own writing);
//! - `goodseed sync` (its library, `upload_run`) of a 1,000,000-point run;
//! - goodseed 0.4.0's own client in cloud mode against our server, when a Python with
//!   goodseed 0.4.0 is found (`GOODSEED_PYTHON`, or the test venv under `target/`).

#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark report is its output

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goodseed_core::{ProjectName, RunId};
use goodseed_sdk::Run;
use goodseed_sdk::remote::{Remote, upload_run};
use goodseed_server::ServerOptions;
use goodseed_store::{StoreLocation, open_store};

const TOKEN: &str = "cloud-bench-token-0123456789";
const METRICS: usize = 10;

/// The child side: a server over a directory, its port on stdout.
fn server_process(dir: &str) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    println!("{port}");
    let _ = std::io::stdout().flush();
    let store = open_store(&StoreLocation::Projects(dir.into()));
    let options = ServerOptions { port, token: Some(TOKEN.into()), ..ServerOptions::default() };
    goodseed_server::run(listener, store, options).expect("serve");
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = Command::new(std::env::current_exe().expect("this binary"))
            .env("GOODSEED_BENCH_CLOUD_SERVER", dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("server process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port");
        let port: u16 = line.trim().parse().expect("a port");
        Server { child, url: format!("http://127.0.0.1:{port}") }
    }

    /// The server process's peak resident memory so far, MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    fn remote(&self) -> Remote {
        Remote::new(&self.url, TOKEN).expect("remote")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn builder(home: &Path, run_id: &str) -> goodseed_sdk::RunBuilder {
    Run::builder()
        .home(home)
        .project("team/bench")
        .run_id(run_id)
        .monitoring(false)
        .capture_git(false)
        .capture_host(false)
        .capture_command_line(false)
        .upload_timeout(Duration::from_secs(600))
}

fn names() -> Vec<String> {
    (0..METRICS).map(|i| format!("train/m{i}")).collect()
}

/// Logs `steps` x 10 metrics and finishes; the time from the first call to `finish`
/// returning, and to the end of the logging loop.
fn train(run: Run, steps: u32) -> (Duration, Duration) {
    let names = names();
    let started = Instant::now();
    for step in 0..steps {
        let x = f64::from(step);
        run.log_metrics(step, names.iter().enumerate().map(|(i, n)| (n.as_str(), x + i as f64)))
            .expect("log");
    }
    let logged = started.elapsed();
    run.finish().expect("finish");
    (started.elapsed(), logged)
}

/// Points of every metric the server holds for a run.
fn points_on_server(dir: &Path, run_id: &str) -> u64 {
    let store = open_store(&StoreLocation::Projects(dir.to_owned()));
    let reader = store
        .open_run(&ProjectName::parse("team/bench").expect("p"), &RunId::parse(run_id).expect("r"))
        .expect("the run is on the server");
    names().iter().map(|n| reader.metric_count(n).expect("count")).sum()
}

fn python_with_goodseed() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GOODSEED_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/goodseed-0.4.0-venv/bin/python");
    venv.exists().then_some(venv)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Ok(dir) = std::env::var("GOODSEED_BENCH_CLOUD_SERVER") {
        return server_process(&dir);
    }
    println!("team server (goodseed's cloud API), 2-core machine:");
    // `GOODSEED_BENCH_ONLY=one` (or `eight`): that figure alone (for profiling).
    let only = std::env::var("GOODSEED_BENCH_ONLY").unwrap_or_default();
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    if only != "eight" {
        one_trainer(home);
    }
    if only == "one" {
        return;
    }

    eight_trainers(home);
    if only == "eight" {
        return;
    }
    rest();
}

/// One trainer, locally then remotely, five rounds (the machine is shared: the median
/// round is reported).
fn one_trainer(home: &Path) {
    let steps = 200_000;
    let points = u64::from(steps) * METRICS as u64;
    let mut rounds = Vec::new();
    let mut server_rss = 0f64;
    // `GOODSEED_BENCH_ROUNDS`: how many (default 5).
    let round_count: usize = std::env::var("GOODSEED_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5);
    for round in 0..round_count {
        let local =
            train(builder(home, &format!("local-{round}")).create().expect("create"), steps);
        let dir = tempfile::tempdir().expect("server dir");
        let server = Server::start(dir.path());
        let run_id = format!("remote-{round}");
        let run = builder(home, &run_id).remote(server.remote()).create().expect("create");
        let remote = train(run, steps);
        assert_eq!(points_on_server(dir.path(), &run_id), points, "every point arrived");
        server_rss = server_rss.max(server.peak_rss_mib());
        rounds.push((local, remote));
    }
    let extra = |((local, _), (remote, _)): &((Duration, Duration), (Duration, Duration))| {
        remote.as_secs_f64() - local.as_secs_f64()
    };
    let mut sorted = rounds.clone();
    sorted.sort_by(|a, b| extra(a).total_cmp(&extra(b)));
    let ((local, local_loop), (remote, remote_loop)) = sorted[sorted.len() / 2];
    println!(
        "one trainer, {steps} steps x {METRICS} metrics ({points} points), median of {round_count} rounds:"
    );
    println!(
        "  local only: committed and closed in {:.2} s ({:.0} points/s; logging loop {:.2} s)",
        local.as_secs_f64(),
        points as f64 / local.as_secs_f64(),
        local_loop.as_secs_f64()
    );
    println!(
        "  remote: on the server in {:.2} s, {:+.2} s beside local (target <= +2 s; logging loop {:.2} s)",
        remote.as_secs_f64(),
        remote.as_secs_f64() - local.as_secs_f64(),
        remote_loop.as_secs_f64()
    );
    println!(
        "  rounds (local / remote, s): {}",
        rounds
            .iter()
            .map(|((l, _), (r, _))| format!("{:.2} / {:.2}", l.as_secs_f64(), r.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  server peak RSS {server_rss:.0} MiB");
}

/// Eight trainers at once into one server.
fn eight_trainers(home: &Path) {
    let dir = tempfile::tempdir().expect("server dir");
    let server = Server::start(dir.path());
    let steps = 100_000;
    let started = Instant::now();
    let trainers: Vec<_> = (0..8)
        .map(|i| {
            let run = builder(home, &format!("eight-{i}")).remote(server.remote()).create();
            std::thread::spawn(move || train(run.expect("create"), steps))
        })
        .collect();
    for t in trainers {
        t.join().expect("trainer");
    }
    let took = started.elapsed();
    let total = 8 * u64::from(steps) * METRICS as u64;
    let arrived: u64 = (0..8).map(|i| points_on_server(dir.path(), &format!("eight-{i}"))).sum();
    assert_eq!(arrived, total, "every point arrived");
    println!("eight trainers at once, {steps} steps x {METRICS} metrics each ({total} points):");
    println!(
        "  all on the server in {:.2} s: {:.0} points/s (target >= 500,000), server peak RSS {:.0} MiB (target <= 200)",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64(),
        server.peak_rss_mib()
    );
}

/// Eight syncs of written runs, one sync of a million points, goodseed 0.4.0's client.
fn rest() {
    let steps = 100_000;
    let total = 8 * u64::from(steps) * METRICS as u64;
    // Eight syncs of runs already written: the server's ingest alone.
    let written = tempfile::tempdir().expect("home");
    for i in 0..8 {
        let run = builder(written.path(), &format!("sync-{i}")).create().expect("create");
        train(run, steps);
    }
    let dir = tempfile::tempdir().expect("server dir");
    let server = Server::start(dir.path());
    let local = Arc::new(open_store(&StoreLocation::Projects(written.path().join("projects"))));
    let started = Instant::now();
    let syncs: Vec<_> = (0..8)
        .map(|i| {
            let (local, remote) = (Arc::clone(&local), server.remote());
            std::thread::spawn(move || {
                let p = ProjectName::parse("team/bench").expect("p");
                let r = RunId::parse(&format!("sync-{i}")).expect("r");
                upload_run(&**local, &p, &r, &remote, &mut |_| {}).expect("upload")
            })
        })
        .collect();
    for s in syncs {
        assert_eq!(s.join().expect("sync").remaining, 0);
    }
    let took = started.elapsed();
    println!(
        "  eight syncs of written runs at once: {:.2} s, {:.0} points/s, server peak RSS {:.0} MiB",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64(),
        server.peak_rss_mib()
    );

    // goodseed sync of one 1,000,000-point run.
    let run = builder(written.path(), "million").create().expect("create");
    train(run, 100_000);
    let p = ProjectName::parse("team/bench").expect("p");
    let r = RunId::parse("million").expect("r");
    let started = Instant::now();
    let report = upload_run(&**local, &p, &r, &server.remote(), &mut |_| {}).expect("upload");
    let took = started.elapsed();
    assert_eq!((report.points, report.remaining), (1_000_000, 0));
    println!(
        "goodseed sync of a 1,000,000-point run: {:.2} s, {} requests (target <= 3 s)",
        took.as_secs_f64(),
        report.requests
    );

    // goodseed 0.4.0's client against our server.
    match python_with_goodseed() {
        Some(python) => {
            let steps = 20_000;
            let py_home = tempfile::tempdir().expect("home");
            let out = Command::new(python)
                .arg(
                    Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../goodseed-testkit/python/cloud_client.py"),
                )
                .args(["bench"])
                .arg(py_home.path())
                .args(["team/bench", "python", &steps.to_string()])
                .env("GOODSEED_API_URL", &server.url)
                .env("GOODSEED_API_KEY", TOKEN)
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .stderr(Stdio::null())
                .output()
                .expect("python");
            let text = String::from_utf8_lossy(&out.stdout);
            let answer: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_default();
            let seconds = answer["seconds"].as_f64().unwrap_or(f64::NAN);
            let n = steps * METRICS as u64;
            println!(
                "goodseed 0.4.0 in cloud mode into our server, {steps} steps x {METRICS} metrics: {seconds:.2} s to close ({:.0} points/s end to end; logging loop {:.2} s), {} rows left",
                n as f64 / seconds,
                answer["logged"].as_f64().unwrap_or(f64::NAN),
                answer["pending"]
            );
            assert_eq!(points_on_server(dir.path(), "python"), n, "0.4.0's run arrived whole");
        }
        None => {
            println!("goodseed 0.4.0: no Python with goodseed 0.4.0 found (set GOODSEED_PYTHON)")
        }
    }
}
