//! Server benchmarks, reported as a table (`cargo bench -p goodseed-server`, or
//! `cargo xtask bench`). A data generator writes, through the SDK:
//!
//! - 1,000 runs in 10 projects (5 metrics of 100 points, a text series, configs each);
//! - one run with a 1,000,000-point series;
//! - one small run (10 metrics of 100 points) for the throughput test.
//!
//! Then our server (in this process, port 0) answers each workload over keep-alive HTTP,
//! timed request by request, and goodseed 0.4.0's server (when a Python with goodseed
//! 0.4.0 is found: `GOODSEED_PYTHON`, or the test venv under `target/`) answers the same
//! workloads on the same data. Medians are reported. When `wrk` is installed, it loads
//! both servers with `wrk -t2 -c32` on the small run's metrics.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark report is its output

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod http;

use goodseed_sdk::Run;
use goodseed_server::{ServerOptions, serve};
use goodseed_store::SqliteStore;
use http::Conn;

fn builder(home: &Path, project: &str, run_id: &str) -> goodseed_sdk::RunBuilder {
    Run::builder()
        .monitoring(false)
        .home(home)
        .project(project)
        .run_id(run_id)
        .capture_git(false)
        .capture_command_line(false)
        .capture_host(false)
}

fn generate(home: &Path) {
    let started = Instant::now();
    for i in 0..1000u32 {
        let run = builder(home, &format!("team/p{}", i % 10), &format!("run-{i:04}"))
            .name(format!("run {i}"))
            .tags(["bench"])
            .config(
                &[("lr", 0.001), ("momentum", 0.9)]
                    .into_iter()
                    .collect::<std::collections::BTreeMap<_, _>>(),
            )
            .expect("config")
            .create()
            .expect("create");
        for step in 0..100u32 {
            let x = f64::from(step);
            run.log_metrics(
                step,
                [
                    ("train/loss", 1.0 / (x + 1.0)),
                    ("train/acc", x / 100.0),
                    ("val/loss", 0.5),
                    ("val/acc", 0.5),
                    ("lr", 1e-3),
                ],
            )
            .expect("log");
        }
        run.log_text("logs/stdout", 0u32, "hello").expect("text");
        run.finish().expect("finish");
    }
    let big = builder(home, "big", "million").create().expect("create");
    for step in 0..1_000_000u32 {
        big.log_metric("train/loss", step, (f64::from(step) * 1e-4).sin()).expect("log");
    }
    big.finish().expect("finish");
    let small = builder(home, "small", "r").create().expect("create");
    for step in 0..100u32 {
        let v = f64::from(step);
        let metrics: Vec<(String, f64)> =
            (0..10).map(|i| (format!("m{i}"), v + f64::from(i))).collect();
        small.log_metrics(step, metrics.iter().map(|(k, v)| (k.as_str(), *v))).expect("log");
    }
    small.finish().expect("finish");
    eprintln!("generated the data in {:.1?}", started.elapsed());
}

/// A server of its own over the data: a new catalog, so new readers and an empty answer
/// cache. Stopped on drop.
struct FreshServer {
    port: u16,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FreshServer {
    fn start(projects: &Path) -> FreshServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let catalog = Arc::new(SqliteStore::new(projects));
        let options = ServerOptions { port, workers: Some(1), ..ServerOptions::default() };
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = serve(listener, catalog, options).expect("serve");
                tx.send(server.handle()).expect("handle");
                server.await.expect("server ran");
            });
        });
        let handle = rx.recv().expect("server started");
        FreshServer { port, handle, thread: Some(thread) }
    }
}

impl Drop for FreshServer {
    fn drop(&mut self) {
        actix_web::rt::System::new().block_on(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Median over `n` fresh servers of the time their first request takes: nothing cached
/// in the server (the run's reader is opened by that request), the file in the OS page
/// cache. A server reads its run listing in the background when it starts; that is let
/// finish first, so it does not compete with the request.
fn first_request(projects: &Path, target: &str, n: usize) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let server = FreshServer::start(projects);
            std::thread::sleep(Duration::from_millis(500));
            let mut conn = Conn::new(server.port);
            let t = Instant::now();
            conn.get_ok(target);
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Median time of `n` requests (after one warm-up).
fn median(port: u16, target: &str, n: usize) -> (Duration, usize) {
    let mut conn = Conn::new(port);
    let size = conn.get_ok(target);
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            conn.get_ok(target);
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[times.len() / 2], size)
}

fn python_with_goodseed() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GOODSEED_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/goodseed-0.4.0-venv/bin/python");
    venv.exists().then_some(venv)
}

struct Python(Child);

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_python(python: &Path, projects: &Path) -> Option<(Python, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let child = Command::new(python)
        .args(["-m", "goodseed.cli", "serve"])
        .arg(projects)
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let guard = Python(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((guard, port))
}

fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

fn wrk(port: u16, target: &str) -> Option<String> {
    let out = Command::new("wrk")
        .args(["-t2", "-c32", "-d10s", "--latency"])
        .arg(format!("http://127.0.0.1:{port}{target}"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rps =
        text.lines().find(|l| l.starts_with("Requests/sec"))?.split_whitespace().nth(1)?.to_owned();
    let p99 = text
        .lines()
        .find(|l| l.trim_start().starts_with("99%"))?
        .split_whitespace()
        .nth(1)?
        .to_owned();
    Some(format!("{rps} req/s, p99 {p99}"))
}

/// The child side of the idle-RSS measurement: a server and nothing else.
fn idle_server(projects: &str) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    println!("{port}");
    let _ = std::io::stdout().flush();
    let catalog = Arc::new(SqliteStore::new(projects));
    // The stream benchmark opens its 1,000 streams from one address.
    let stream_limits = goodseed_server::StreamLimits { total: 100_000, per_client: 100_000 };
    let options = ServerOptions { port, stream_limits, ..ServerOptions::default() };
    goodseed_server::run(listener, catalog, options).expect("serve");
}

/// A server process of its own over the data: its RSS once idle (after answering a
/// listing), then its peak RSS after streaming the full 1,000,000-point series.
fn server_process_rss(projects: &Path) -> Option<(f64, f64)> {
    let mut child = Command::new(std::env::current_exe().ok()?)
        .env("GOODSEED_BENCH_IDLE_SERVER", projects)
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take()?).read_line(&mut line).ok()?;
    let port: u16 = line.trim().parse().ok()?;
    let read = |key: &str| -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with(key))?.to_owned();
        Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
    };
    Conn::new(port).get_ok("/api/projects");
    std::thread::sleep(Duration::from_millis(500));
    let idle = read("VmRSS:");
    Conn::new(port).get_ok("/api/runs/big/million/metrics?path=train/loss");
    let peak = read("VmHWM:");
    let _ = child.kill();
    let _ = child.wait();
    Some((idle?, peak?))
}

/// Median time from a committed point (the SDK's `flush` returned) to its live event.
fn live_latency(home: &Path, port: u16, run_id: &str) -> Duration {
    let run = builder(home, "live", run_id).create().expect("create");
    run.log_metric("x", 0u32, 0.0).expect("log");
    run.flush().expect("flush");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(stream, "GET /api/events?run=live/{run_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n")
        .expect("send");
    stream.set_read_timeout(Some(Duration::from_millis(5))).expect("timeout");
    let mut seen = String::new();
    let mut read_until = |needle: &str, seen: &mut String| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !seen.contains(needle) {
            assert!(Instant::now() < deadline, "no {needle} in {seen}");
            let mut buf = [0u8; 4096];
            if let Ok(n) = stream.read(&mut buf) {
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    };
    read_until("event: status", &mut seen);
    std::thread::sleep(Duration::from_millis(300)); // past the first look
    let mut times = Vec::new();
    for step in 1..=20u32 {
        run.log_metric("x", step, f64::from(step)).expect("log");
        run.flush().expect("flush");
        let t = Instant::now();
        read_until(&format!("\"step\": {step}.0"), &mut seen);
        times.push(t.elapsed());
    }
    run.finish().expect("finish");
    times.sort();
    times[times.len() / 2]
}

/// CPU seconds (user and system) a process has used, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

/// A server process of its own with `n` live streams open on one project: its CPU use
/// while they idle (over 10 s), its RSS, and the latency of a new point to one more
/// stream following a run.
fn streams_load(home: &Path, n: usize) -> Option<(f64, f64, Duration)> {
    let projects = home.join("projects");
    let mut child = Command::new(std::env::current_exe().ok()?)
        .env("GOODSEED_BENCH_IDLE_SERVER", &projects)
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take()?).read_line(&mut line).ok()?;
    let port: u16 = line.trim().parse().ok()?;
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        write!(s, "GET /api/events?project=small HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n")
            .ok()?;
        streams.push(s);
    }
    for s in &mut streams {
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let mut head = [0u8; 64];
        let got = s.read(&mut head).ok()?;
        assert!(String::from_utf8_lossy(&head[..got]).contains(" 200 "), "a stream was refused");
    }
    std::thread::sleep(Duration::from_secs(1));
    let before = cpu_seconds(child.id())?;
    std::thread::sleep(Duration::from_secs(10));
    let cpu = (cpu_seconds(child.id())? - before) / 10.0 * 100.0;
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
    let rss = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?;
    let rss = rss.parse::<f64>().ok()? / 1024.0;
    let latency = live_latency(home, port, &format!("follow-{n}"));
    drop(streams);
    let _ = child.kill();
    let _ = child.wait();
    Some((cpu, rss, latency))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Ok(projects) = std::env::var("GOODSEED_BENCH_IDLE_SERVER") {
        return idle_server(&projects);
    }
    let home = tempfile::tempdir().expect("temp dir");
    generate(home.path());
    let projects = home.path().join("projects");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let catalog = Arc::new(SqliteStore::new(&projects));
    let options = ServerOptions { port, ..ServerOptions::default() };
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            serve(listener, catalog, options).expect("serve").await.expect("server ran");
        });
    });
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(10));
    }

    let workloads: [(&str, &str, usize, usize); 4] = [
        ("GET /api/runs, 1,000 runs (target <= 10 ms)", "/api/runs", 50, 3),
        (
            "metrics, 1,000,000-point series, pointCount=1000 (target <= 25 ms)",
            "/api/runs/big/million/metrics?path=train/loss&pointCount=1000",
            30,
            3,
        ),
        (
            "metrics, 1,000,000-point series, full (target <= 1 s)",
            "/api/runs/big/million/metrics?path=train/loss",
            5,
            1,
        ),
        (
            "metric-paths of that run (target <= 2 ms)",
            "/api/runs/big/million/metric-paths",
            200,
            20,
        ),
    ];
    // The first downsampling of the big series reads it from SQLite (from its
    // downsampling pyramid); later ones (and any client asking the same of a closed run)
    // are answered from the cache. The first request, on fresh servers:
    let first_requests: Vec<(u32, Duration)> = [1000, 500, 2000, 10]
        .into_iter()
        .map(|count| {
            let target =
                format!("/api/runs/big/million/metrics?path=train/loss&pointCount={count}");
            (count, first_request(&projects, &target, 9))
        })
        .collect();
    // What any first request costs (opening the run's reader), for reference.
    let first_paths = first_request(&projects, "/api/runs/big/million/metric-paths", 9);
    let python = python_with_goodseed().and_then(|p| start_python(&p, &projects));
    println!("{:<72} {:>12} {:>14}", "workload (median)", "ours", "goodseed 0.4.0");
    for (name, target, n, n_py) in workloads {
        let (ours, size) = median(port, target, n);
        let theirs = python.as_ref().map(|(_, p)| median(*p, target, n_py).0);
        println!(
            "{name:<72} {:>12} {:>14}   ({size} bytes)",
            format!("{ours:.2?}"),
            theirs.map_or("-".to_owned(), |t| format!("{t:.2?}"))
        );
    }
    println!(
        "first request on a fresh server (new readers, no cached answer; file in the OS page cache), median of 9:"
    );
    for (count, took) in first_requests {
        let target = if count == 1000 { " (target <= 25 ms)" } else { "" };
        println!("  metrics, 1,000,000-point series, pointCount={count}{target}: {took:.2?}");
    }
    println!("  metric-paths of that run, for reference: {first_paths:.2?}");
    if let Some(mib) = rss_mib() {
        println!("RSS of this process (server, data generator and client): {mib:.1} MiB");
    }
    match server_process_rss(&projects) {
        Some((idle, peak)) => {
            println!(
                "idle RSS of a server process over this data: {idle:.1} MiB (target <= 15; goodseed 0.4.0 ~25)"
            );
            println!(
                "its peak RSS after streaming the full 1,000,000-point series: {peak:.1} MiB (target <= 100; goodseed 0.4.0 ~850)"
            );
        }
        None => println!("server process RSS: not measurable here"),
    }
    println!(
        "live update, commit to client (median of 20): {:.1?} (target <= 250 ms)",
        live_latency(home.path(), port, "follow")
    );
    for n in [10, 1_000] {
        match streams_load(home.path(), n) {
            Some((cpu, rss, latency)) => println!(
                "{n} live streams on one project, idle: server CPU {cpu:.1}% of a core, RSS {rss:.1} MiB; a new point to one more follower: {latency:.1?}"
            ),
            None => println!("{n} live streams: not measurable here"),
        }
    }
    let small = "/api/runs/small/r/metrics";
    match wrk(port, small) {
        Some(ours) => {
            let theirs =
                python.as_ref().and_then(|(_, p)| wrk(*p, small)).unwrap_or_else(|| "-".to_owned());
            println!(
                "wrk -t2 -c32 {small}: ours {ours}; goodseed 0.4.0 {theirs} (target >= 20,000 req/s, p99 <= 5 ms)"
            );
        }
        None => println!("wrk not installed: apt-get install wrk to run the throughput test"),
    }
}
