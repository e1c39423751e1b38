//! Import throughput (`cargo bench -p goodseed-import --bench import`, or `cargo xtask
//! bench`), beside the targets of the imports issue:
//!
//! - float series from neptune-exporter's Parquet: >= 1,000,000 points/s;
//! - scalars from TensorBoard event files: >= 500,000 points/s.
//!
//! The inputs are made once by the real producers (pyarrow in the exporter's schema,
//! tensorboardX; see `tests/producers/`) under `target/bench-data/import/` and reused:
//! one Neptune run of 2,000,000 points in 10 series, the same split into 8 runs of
//! 250,000, and one TensorBoard run of 1,000,000 scalars in 10 tags (about 35 s of
//! Python, once). Each case imports into a fresh SQLite store on the same disk, five
//! times; the median is reported, with the peak memory of this process.
//! `GOODSEED_BENCH_IMPORT_TRIES` sets the number of tries.

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)] // a report is its output

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goodseed_import::{Options, Outcome, Report, Silent, Target};
use goodseed_store::{RunStore, SqliteStore};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data/import")
}

fn producer(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/producers").join(name)
}

/// Makes `dir` with `make` unless a finished one is there (a marker file says so).
fn fixture(dir: &Path, make: impl FnOnce(&Path)) -> PathBuf {
    let marker = dir.join(".complete");
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        eprintln!("making {} (once)…", dir.display());
        make(dir);
        std::fs::write(&marker, b"1").unwrap();
    }
    dir.to_path_buf()
}

/// The peak resident memory of this process so far, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// Imports `tries` times into fresh stores; returns the median time and the points.
fn measure(name: &str, tries: usize, import: impl Fn(&Target) -> Report) -> (Duration, u64) {
    let out = data_dir().join("out");
    let mut times = Vec::new();
    let mut points = 0;
    for _ in 0..tries {
        let _ = std::fs::remove_dir_all(&out);
        let store: Arc<dyn RunStore> = Arc::new(SqliteStore::new(&out));
        let target = Target::new(store, false);
        let t = Instant::now();
        let report = import(&target);
        times.push(t.elapsed());
        assert!(
            report.runs.iter().all(|r| matches!(r.outcome, Outcome::Imported)),
            "{name}: {report:#?}"
        );
        points = report.totals().points();
    }
    let _ = std::fs::remove_dir_all(&out);
    times.sort();
    (times[times.len() / 2], points)
}

fn report(name: &str, (time, points): (Duration, u64), target: f64) {
    let rate = points as f64 / time.as_secs_f64();
    let verdict = if rate >= target { "met" } else { "NOT met" };
    println!(
        "{name:<52} {points:>9} points in {:>6.3} s: {rate:>10.0} points/s (target >= {target:.0}: {verdict})",
        time.as_secs_f64()
    );
}

fn main() {
    let tries: usize =
        std::env::var("GOODSEED_BENCH_IMPORT_TRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let neptune = fixture(&data_dir().join("neptune-2m"), |dir| {
        goodseed_testkit::producers::run(
            &producer("neptune_export.py"),
            [dir.as_os_str(), "--points".as_ref(), "2000000".as_ref(), "--only-points".as_ref()],
        );
    });
    let neptune_runs = fixture(&data_dir().join("neptune-8x250k"), |dir| {
        goodseed_testkit::producers::run(
            &producer("neptune_export.py"),
            [
                dir.as_os_str(),
                "--points".as_ref(),
                "2000000".as_ref(),
                "--only-points".as_ref(),
                "--runs".as_ref(),
                "8".as_ref(),
            ],
        );
    });
    let tensorboard = fixture(&data_dir().join("tensorboard-1m"), |dir| {
        goodseed_testkit::producers::run(
            &producer("tensorboard_logs.py"),
            [dir.as_os_str(), "--points".as_ref(), "1000000".as_ref()],
        );
    });
    println!("import throughput, median of {tries} (2 cores)");
    let one = Options { jobs: 1, ..Options::default() };
    let all = Options::default();
    report(
        "neptune parquet, 1 run x 2,000,000 float points",
        measure("neptune", tries, |t| {
            goodseed_import::neptune::import(&neptune.join("data"), None, t, &all, &Silent).unwrap()
        }),
        1_000_000.0,
    );
    report(
        "neptune parquet, 8 runs x 250,000, one at a time",
        measure("neptune runs", tries, |t| {
            goodseed_import::neptune::import(&neptune_runs.join("data"), None, t, &one, &Silent)
                .unwrap()
        }),
        1_000_000.0,
    );
    report(
        "neptune parquet, 8 runs x 250,000, one per core",
        measure("neptune runs", tries, |t| {
            goodseed_import::neptune::import(&neptune_runs.join("data"), None, t, &all, &Silent)
                .unwrap()
        }),
        1_000_000.0,
    );
    report(
        "tensorboard tfevents, 1 run x 1,000,000 scalars",
        measure("tensorboard", tries, |t| {
            goodseed_import::tensorboard::import(&tensorboard.join("bench"), t, &all, &Silent)
                .unwrap()
        }),
        500_000.0,
    );
    println!("peak memory of the benchmark process: {:.0} MiB", peak_rss_mib());
}
