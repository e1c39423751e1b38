//! SDK benchmarks, reported as a table (`cargo bench -p goodseed-sdk`, or
//! `cargo xtask bench`):
//!
//! 1. End-to-end ingest: 200,000 steps x 10 metrics from the logging thread until
//!    everything is committed and the run is closed; points/s, and this process's peak
//!    RSS afterwards (measured first, in a fresh process).
//! 2. The cost of one `log_metrics` call of 10 metrics as the training thread sees it:
//!    p50/p99/p99.9 over 1,000,000 calls, each timed on its own (timer overhead
//!    included, and reported beside it).
//! 3. Monitoring: the hardware sampler's CPU time at a 1 s interval (its thread's own
//!    time, from `/proc`), the call latency above with monitoring on, and the console
//!    tee's throughput: a child process prints 1,000,000 lines into a captured stdout
//!    (its terminal is `/dev/null`), timed at the printer and until every line is in
//!    the run.
//! 4. The same ingest through goodseed 0.4.0, when a Python with goodseed 0.4.0 is found
//!    (`GOODSEED_PYTHON`, or the test venv under `target/`), for comparison.
//!
//! A custom harness, because criterion reports means, and the target is a tail latency.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark report is its output

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use goodseed_sdk::Run;

const STEPS: u32 = 200_000;
const METRICS: [&str; 10] = [
    "train/loss",
    "train/acc",
    "train/lr",
    "train/grad_norm",
    "train/tokens",
    "val/loss",
    "val/acc",
    "sys/gpu_util",
    "sys/mem",
    "sys/step_time",
];

fn builder(home: &Path) -> goodseed_sdk::RunBuilder {
    Run::builder().home(home).project("bench").capture_git(false).monitoring(false)
}

fn values(step: u32) -> [(&'static str, f64); 10] {
    let x = f64::from(step);
    let mut out = [("", 0.0); 10];
    for (i, name) in METRICS.iter().enumerate() {
        out[i] = (name, x.mul_add(1e-6, i as f64));
    }
    out
}

fn ingest(home: &Path) -> Duration {
    let run = builder(home).create().expect("create");
    let start = Instant::now();
    for step in 0..STEPS {
        run.log_metrics(step, values(step)).expect("log");
    }
    run.finish().expect("finish");
    let took = start.elapsed();
    let stats = run.stats();
    assert_eq!(stats.points_written, u64::from(STEPS) * 10);
    took
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn call_latency(home: &Path, monitored: bool) -> (Vec<u64>, u64) {
    const CALLS: u32 = 1_000_000;
    let run = if monitored {
        builder(home).monitoring(true).monitoring_interval(Duration::from_secs(1))
    } else {
        builder(home)
    }
    .create()
    .expect("create");
    // Warm up: series registered, buffers at their working size.
    for step in 0..20_000 {
        run.log_metrics(step, values(step)).expect("log");
    }
    let mut nanos = Vec::with_capacity(CALLS as usize);
    for step in 20_000..20_000 + CALLS {
        let v = values(step);
        let t = Instant::now();
        run.log_metrics(step, v).expect("log");
        nanos.push(t.elapsed().as_nanos() as u64);
    }
    run.finish().expect("finish");
    nanos.sort_unstable();
    // What the timer itself costs, to read the numbers against.
    let mut timer: Vec<u64> = (0..100_000)
        .map(|_| {
            let t = Instant::now();
            black_box(());
            t.elapsed().as_nanos() as u64
        })
        .collect();
    timer.sort_unstable();
    (nanos, timer[timer.len() / 2])
}

/// CPU seconds a thread of this process has used, found by its name (`comm`, 15
/// characters at most), from its scheduler statistics (nanoseconds on a CPU).
fn thread_cpu_seconds(name: &str) -> Option<f64> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        return Some(stat.split_whitespace().next()?.parse::<f64>().ok()? / 1e9);
    }
    None
}

/// The sampler's share of one core at a 1 s interval, over `seconds`.
fn sampler_cost(home: &Path, seconds: u64) -> Option<f64> {
    let run = Run::builder()
        .home(home)
        .project("bench")
        .run_id("sampled")
        .capture_git(false)
        .capture_stdout(false)
        .capture_stderr(false)
        .monitoring_interval(Duration::from_secs(1))
        .create()
        .expect("create");
    std::thread::sleep(Duration::from_millis(200));
    let before = thread_cpu_seconds("goodseed-sample")?;
    std::thread::sleep(Duration::from_secs(seconds));
    let after = thread_cpu_seconds("goodseed-sample")?;
    run.finish().expect("finish");
    Some((after - before) / seconds as f64 * 100.0)
}

/// The child side of the console benchmark: prints `lines` lines into a captured stdout.
fn console_child(home: &Path, lines: u32) {
    use std::io::Write as _;
    let run = Run::builder()
        .home(home)
        .project("bench")
        .run_id("console")
        .capture_git(false)
        .capture_hardware(false)
        .create()
        .expect("create");
    let start = Instant::now();
    {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
        for i in 0..lines {
            writeln!(out, "epoch 3 step {i}: loss 0.1234 acc 0.9876").expect("print");
        }
    }
    let printed = start.elapsed();
    run.finish().expect("finish");
    let all = start.elapsed();
    let stats = run.stats();
    eprintln!(
        "{} {} {} {}",
        printed.as_secs_f64(),
        all.as_secs_f64(),
        stats.points_written,
        stats.console_lines_dropped
    );
}

/// Console capture: (lines/s at the printer, lines/s until all are in the run, lines in
/// the run, dropped).
fn console_throughput(home: &Path, lines: u32) -> Option<(f64, f64, u64, u64)> {
    let out = std::process::Command::new(std::env::current_exe().ok()?)
        .env("GOODSEED_BENCH_CONSOLE_CHILD", home)
        .env("GOODSEED_BENCH_CONSOLE_LINES", lines.to_string())
        .stdout(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let f: Vec<&str> = text.lines().last()?.split_whitespace().collect();
    let printed: f64 = f.first()?.parse().ok()?;
    let all: f64 = f.get(1)?.parse().ok()?;
    Some((
        f64::from(lines) / printed,
        f64::from(lines) / all,
        f.get(2)?.parse().ok()?,
        f.get(3)?.parse().ok()?,
    ))
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn python_with_goodseed() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GOODSEED_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/goodseed-0.4.0-venv/bin/python");
    venv.exists().then_some(venv)
}

/// The same ingest through goodseed 0.4.0's `Run.log_metrics`; points/s.
fn goodseed_0_4_0(python: &Path, home: &Path, steps: u32) -> Option<f64> {
    let script = format!(
        r#"
import time, goodseed, sys, io
names = {names:?}
run = goodseed.Run(project="bench", storage="local", goodseed_home={home:?}, git_ref=False,
                   capture_hardware_metrics=False, capture_stdout=False, capture_stderr=False,
                   capture_traceback=False)
t = time.perf_counter()
for step in range({steps}):
    run.log_metrics({{n: step * 1e-6 + i for i, n in enumerate(names)}}, step=step)
run.close()
sys.stderr.write(repr({steps} * 10 / (time.perf_counter() - t)) + "\n")
"#,
        names = METRICS,
        home = home.display().to_string(),
    );
    let out = std::process::Command::new(python).args(["-c", &script]).output().ok()?;
    String::from_utf8_lossy(&out.stderr).lines().last()?.trim().parse().ok()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing useful.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Some(home) = std::env::var_os("GOODSEED_BENCH_CONSOLE_CHILD") {
        let lines = std::env::var("GOODSEED_BENCH_CONSOLE_LINES")
            .ok()
            .and_then(|l| l.parse().ok())
            .unwrap_or(1_000_000);
        return console_child(Path::new(&home), lines);
    }
    let home = tempfile::tempdir().expect("temp dir");

    let took = ingest(home.path());
    let rss = peak_rss_mib();
    let rate = f64::from(STEPS) * 10.0 / took.as_secs_f64();
    println!("end-to-end ingest, {STEPS} steps x 10 metrics, to committed and closed:");
    println!("  {:.2} s, {:.0} points/s (target >= 1,000,000)", took.as_secs_f64(), rate);
    match rss {
        Some(mib) => println!("  peak RSS of the process: {mib:.1} MiB (target <= 50)"),
        None => println!("  peak RSS: not available on this OS"),
    }

    let (nanos, timer) = call_latency(home.path(), false);
    println!("one log_metrics call of 10 metrics, {} calls:", nanos.len());
    println!(
        "  p50 {} ns, p99 {} ns (target <= 1000), p99.9 {} ns, max {} ns (timer alone: {} ns)",
        pct(&nanos, 0.5),
        pct(&nanos, 0.99),
        pct(&nanos, 0.999),
        nanos[nanos.len() - 1],
        timer
    );

    let (monitored, _) = call_latency(home.path(), true);
    println!(
        "  with monitoring on (1 s samples, console capture): p50 {} ns, p99 {} ns, p99.9 {} ns",
        pct(&monitored, 0.5),
        pct(&monitored, 0.99),
        pct(&monitored, 0.999)
    );
    match sampler_cost(home.path(), 10) {
        Some(pct) => println!(
            "hardware sampler at a 1 s interval: {pct:.3}% of one core over 10 s (target < 0.5%)"
        ),
        None => println!("hardware sampler cost: not measurable here (no /proc)"),
    }
    match console_throughput(home.path(), 1_000_000) {
        Some((printer, all, written, dropped)) => println!(
            "console capture, 1,000,000 lines: {printer:.0} lines/s at the printer (target >= 1,000,000), {all:.0} lines/s until all are in the run ({written} written, {dropped} dropped)"
        ),
        None => println!("console capture: the child process failed"),
    }

    match python_with_goodseed() {
        Some(python) => {
            let steps = 20_000;
            match goodseed_0_4_0(&python, home.path(), steps) {
                Some(py) => println!(
                    "goodseed 0.4.0, same workload ({steps} steps x 10 metrics): {py:.0} points/s; \
                     ours is {:.0}x",
                    rate / py
                ),
                None => println!("goodseed 0.4.0: the comparison script failed"),
            }
        }
        None => {
            println!("goodseed 0.4.0: no Python with goodseed 0.4.0 found (set GOODSEED_PYTHON)")
        }
    }
}
