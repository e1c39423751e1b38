//! The team server on PostgreSQL beside the same server on files, on the same data,
//! reported as a table (`cargo bench -p goodseed-postgres`, or `cargo xtask bench`). The
//! database is a private cluster of the test kit's (initdb + pg_ctl under target/) that
//! syncs its commits to disk (`Cluster::start_durable`); each
//! server is a process of its own (this binary run again), so its memory is its own.
//!
//! - ingest through the team server: eight `goodseed sync`s at once of runs written
//!   beforehand (100,000 steps x 10 metrics each), points/s into the server;
//! - a 10,000,000-point run (1,000,000 steps x 10 metrics) synced into the server, then
//!   every point read back through `GET .../metrics`: the server's peak RSS;
//! - the first `pointCount=1000` request on one of its 1,000,000-point series, on fresh
//!   server processes (no cached answer), median of 5;
//! - `GET /api/runs?project=…` over 10,000 runs, warm, median of 20
//!   (`GOODSEED_BENCH_ONLY=listing` measures only this).

#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark report is its output

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goodseed_core::{FieldPath, ProjectName, RunId, Step};
use goodseed_postgres::PgStore;
use goodseed_sdk::Run;
use goodseed_sdk::remote::{Remote, upload_run};
use goodseed_server::ServerOptions;
use goodseed_store::{RunStore, StoreLocation, WriteBatch, open_store};

const TOKEN: &str = "postgres-bench-token-0123456789";
const METRICS: usize = 10;
const PROJECT: &str = "team/bench";

/// Where a server keeps its runs: a directory of run files, or a database.
#[derive(Debug, Clone)]
enum Backend {
    Files(String),
    Postgres(String),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Files(_) => "files",
            Backend::Postgres(_) => "PostgreSQL",
        }
    }

    fn location(&self) -> &str {
        match self {
            Backend::Files(l) | Backend::Postgres(l) => l,
        }
    }

    fn open(&self) -> Arc<dyn RunStore> {
        match self {
            Backend::Files(dir) => open_store(&StoreLocation::Projects(dir.into())),
            Backend::Postgres(url) => Arc::new(PgStore::connect(url).expect("database")),
        }
    }
}

/// The child side: a server over a location, its port on stdout.
fn server_process(location: &str) {
    let backend = if location.starts_with("postgresql://") {
        Backend::Postgres(location.to_owned())
    } else {
        Backend::Files(location.to_owned())
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let store = backend.open();
    println!("{port}");
    let _ = std::io::stdout().flush();
    let options = ServerOptions { port, token: Some(TOKEN.into()), ..ServerOptions::default() };
    goodseed_server::run(listener, store, options).expect("serve");
}

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(backend: &Backend) -> Server {
        let mut child = Command::new(std::env::current_exe().expect("this binary"))
            .env("GOODSEED_BENCH_PG_SERVER", backend.location())
            .stdout(Stdio::piped())
            .spawn()
            .expect("server process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port");
        let port: u16 = line.trim().parse().expect("a port");
        Server { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn remote(&self) -> Remote {
        Remote::new(self.url(), TOKEN).expect("remote")
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
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GETs over one keep-alive connection; each answer read whole.
struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    fn new(server: &Server) -> Client {
        Client { agent: ureq::Agent::new_with_defaults(), base: server.url() }
    }

    /// The answer's body length.
    fn get(&self, target: &str) -> usize {
        let mut answer = self
            .agent
            .get(format!("{}{target}", self.base))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .call()
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        let mut body = Vec::new();
        answer.body_mut().as_reader().read_to_end(&mut body).expect("body");
        body.len()
    }

    /// Median time of `n` requests, after one to warm up.
    fn median(&self, target: &str, n: usize) -> Duration {
        let size = self.get(target);
        if std::env::var_os("GOODSEED_BENCH_ONLY").is_some() {
            println!("  {target}: {size} bytes");
        }
        let mut times: Vec<Duration> = (0..n)
            .map(|_| {
                let t = Instant::now();
                self.get(target);
                t.elapsed()
            })
            .collect();
        times.sort();
        times[n / 2]
    }
}

fn builder(home: &Path, run_id: &str) -> goodseed_sdk::RunBuilder {
    Run::builder()
        .home(home)
        .project(PROJECT)
        .run_id(run_id)
        .monitoring(false)
        .capture_git(false)
        .capture_host(false)
        .capture_command_line(false)
}

/// Writes a run of `steps` x 10 metrics locally.
fn write_run(home: &Path, run_id: &str, steps: u32) {
    let run = builder(home, run_id).create().expect("create");
    let names: Vec<String> = (0..METRICS).map(|i| format!("train/m{i}")).collect();
    for step in 0..steps {
        let x = f64::from(step);
        run.log_metrics(
            step,
            names.iter().enumerate().map(|(i, n)| (n.as_str(), x.sin() + i as f64)),
        )
        .expect("log");
    }
    run.finish().expect("finish");
}

fn ids(run: &str) -> (ProjectName, RunId) {
    (ProjectName::parse(PROJECT).expect("project"), RunId::parse(run).expect("run"))
}

/// Syncs runs written under `home` into `server` at once; points/s.
fn sync_at_once(home: &Path, server: &Server, runs: &[String]) -> (Duration, u64) {
    let local = open_store(&StoreLocation::Projects(home.join("projects")));
    let started = Instant::now();
    let syncs: Vec<_> = runs
        .iter()
        .map(|run| {
            let (local, remote, run) = (Arc::clone(&local), server.remote(), run.clone());
            std::thread::spawn(move || {
                let (p, r) = ids(&run);
                let report = upload_run(&*local, &p, &r, &remote, &mut |_| {}).expect("upload");
                assert_eq!(report.remaining, 0, "{run}: every row confirmed");
                report.points
            })
        })
        .collect();
    let points = syncs.into_iter().map(|s| s.join().expect("sync")).sum();
    (started.elapsed(), points)
}

/// Makes `n` small finished runs (configs, one point) straight through the store.
fn many_runs(store: &dyn RunStore, n: usize) {
    let project = ProjectName::parse("team/many").expect("project");
    let loss = FieldPath::parse("train/loss").expect("path");
    for i in 0..n {
        let run = format!("run-{i:05}");
        let mut b = WriteBatch::new();
        b.set_meta("run_id", &run);
        b.set_meta("project", "team/many");
        b.set_meta("created_at", "2026-01-01T00:00:00+00:00");
        b.set_meta("status", "finished");
        b.config(FieldPath::parse("lr").expect("path"), goodseed_core::ConfigValue::Float(1e-3));
        b.config(
            FieldPath::parse("seed").expect("path"),
            goodseed_core::ConfigValue::Int(i as i64),
        );
        let s = b.metric_series(&loss);
        b.metric(s, Step::from(0u32), 0.5, 1_700_000_000);
        let mut writer =
            store.create_run(&project, &RunId::parse(&run).expect("run"), &b).expect("create");
        writer.close().expect("close");
    }
}

struct Figures {
    ingest: f64,
    ingest_rss: f64,
    big_sync: Duration,
    big_rss: f64,
    first_downsample: Duration,
    listing: Duration,
}

fn measure(backend: &Backend, listing: &Backend, home: &Path, eight: &[String]) -> Figures {
    // Ingest of eight runs at once.
    let server = Server::start(backend);
    let (took, points) = sync_at_once(home, &server, eight);
    let ingest = points as f64 / took.as_secs_f64();
    let ingest_rss = server.peak_rss_mib();
    drop(server);

    // The 10,000,000-point run: synced, then every point read back.
    let server = Server::start(backend);
    let (big_sync, points) = sync_at_once(home, &server, &["big".to_owned()]);
    assert_eq!(points, 10_000_000);
    let client = Client::new(&server);
    for i in 0..METRICS {
        let bytes = client.get(&format!("/api/runs/{PROJECT}/big/metrics?path=train/m{i}"));
        assert!(bytes > 1_000_000 * 10, "the whole series");
    }
    let big_rss = server.peak_rss_mib();
    drop(server);

    // The first downsampling request of a fresh server.
    let target = format!("/api/runs/{PROJECT}/big/metrics?path=train/m3&pointCount=1000");
    let mut firsts: Vec<Duration> = (0..5)
        .map(|_| {
            let server = Server::start(backend);
            let client = Client::new(&server);
            client.get("/api/health");
            // The server lists its runs once when it starts; let that finish.
            std::thread::sleep(Duration::from_millis(1000));
            let t = Instant::now();
            client.get(&target);
            t.elapsed()
        })
        .collect();
    firsts.sort();

    let listing = listing_warm(listing);
    Figures { ingest, ingest_rss, big_sync, big_rss, first_downsample: firsts[2], listing }
}

/// `GET /api/runs?project=…` over the 10,000 runs of `listing`, warm: median of 20.
fn listing_warm(listing: &Backend) -> Duration {
    let server = Server::start(listing);
    Client::new(&server).median("/api/runs?project=team/many", 20)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Ok(location) = std::env::var("GOODSEED_BENCH_PG_SERVER") {
        return server_process(&location);
    }
    // A server that syncs its commits to disk, as a production database does.
    let cluster = goodseed_testkit::postgres::Cluster::start_durable();
    let cluster = &cluster;
    // GOODSEED_BENCH_ONLY=listing: only the listing of 10,000 runs.
    if std::env::var("GOODSEED_BENCH_ONLY").is_ok_and(|v| v == "listing") {
        let dir = tempfile::tempdir().expect("listing dir");
        let backends = [
            Backend::Files(dir.path().display().to_string()),
            Backend::Postgres(cluster.database()),
        ];
        for b in &backends {
            let store = b.open();
            many_runs(&*store, 10_000);
            println!("GET /api/runs, 10,000 runs, warm, {}: {:.1?}", b.name(), listing_warm(b));
            let project = ProjectName::parse("team/many").expect("project");
            let mut times: Vec<Duration> = (0..21)
                .map(|_| {
                    let t = Instant::now();
                    store.list_runs(Some(&project)).expect("list");
                    t.elapsed()
                })
                .collect();
            times.sort();
            println!("  of which the store's list_runs, in process: {:.1?}", times[10]);
        }
        return;
    }
    // GOODSEED_BENCH_ONLY=ingest: only eight syncs at once into PostgreSQL.
    if std::env::var("GOODSEED_BENCH_ONLY").is_ok_and(|v| v == "ingest") {
        let home = tempfile::tempdir().expect("home");
        let eight: Vec<String> = (0..8).map(|i| format!("sync-{i}")).collect();
        for run in &eight {
            write_run(home.path(), run, 100_000);
        }
        let server = Server::start(&Backend::Postgres(cluster.database()));
        let (took, points) = sync_at_once(home.path(), &server, &eight);
        println!(
            "ingest into PostgreSQL, eight syncs at once: {:.0} points/s",
            points as f64 / took.as_secs_f64()
        );
        return;
    }
    let started = Instant::now();
    let home = tempfile::tempdir().expect("home");
    let eight: Vec<String> = (0..8).map(|i| format!("sync-{i}")).collect();
    for run in &eight {
        write_run(home.path(), run, 100_000);
    }
    write_run(home.path(), "big", 1_000_000);
    let files = tempfile::tempdir().expect("server dir");
    let many_files = tempfile::tempdir().expect("listing dir");
    let backends = [
        (
            Backend::Files(files.path().display().to_string()),
            Backend::Files(many_files.path().display().to_string()),
        ),
        (Backend::Postgres(cluster.database()), Backend::Postgres(cluster.database())),
    ];
    for (_, listing) in &backends {
        many_runs(&*listing.open(), 10_000);
    }
    eprintln!("data written in {:.0?}", started.elapsed());

    // A sync marks what it sent in the runs it reads: each backend gets a copy of them.
    let figures: Vec<Figures> = backends
        .iter()
        .map(|(b, l)| {
            let copy = tempfile::tempdir().expect("copy");
            let status = Command::new("cp")
                .arg("-a")
                .arg(home.path().join("projects"))
                .arg(copy.path())
                .status()
                .expect("cp");
            assert!(status.success(), "copy the written runs");
            measure(b, l, copy.path(), &eight)
        })
        .collect();
    println!("team server on files and on PostgreSQL 15 (private cluster, same machine), 2 cores:");
    println!("{:<78} {:>12} {:>12}", "", backends[0].0.name(), backends[1].0.name());
    let row = |name: &str, f: &dyn Fn(&Figures) -> String| {
        println!("{name:<78} {:>12} {:>12}", f(&figures[0]), f(&figures[1]));
    };
    row("ingest, eight syncs at once, 8 x 1,000,000 points (target >= 500,000 points/s)", &|f| {
        format!("{:.0}/s", f.ingest)
    });
    row("  server peak RSS, MiB", &|f| format!("{:.0}", f.ingest_rss));
    row("sync of a 10,000,000-point run, s", &|f| format!("{:.1}", f.big_sync.as_secs_f64()));
    row("  then all of it read back: server peak RSS, MiB (target <= 200)", &|f| {
        format!("{:.0}", f.big_rss)
    });
    row(
        "first pointCount=1000 on a 1,000,000-point series, fresh server (target <= 25 ms)",
        &|f| format!("{:.1?}", f.first_downsample),
    );
    row("GET /api/runs, 10,000 runs, warm (target <= 20 ms)", &|f| format!("{:.1?}", f.listing));
}
