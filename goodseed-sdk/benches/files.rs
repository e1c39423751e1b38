//! Checkpoint copies, reported as a table (`cargo bench -p goodseed-sdk --bench files`,
//! or `cargo xtask bench`):
//!
//! - copy throughput: a 1 GiB file into a run's store (read, SHA-256 on a second thread,
//!   written, synced, renamed), beside `cp` of the same file and `cp` followed by an
//!   fsync of the copy (what the store's copy guarantees), the median of five rounds
//!   each, the file in the page cache for all (`GOODSEED_BENCH_MIB` changes the size);
//! - the training loop while it copies: `log_metrics` of 10 metrics, call latency
//!   percentiles while a 1 GiB checkpoint is registered, beside the same loop with no
//!   copy, and how long `log_checkpoint` itself took to return.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark report is its output

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use goodseed_sdk::Run;
use goodseed_store::artifacts::BlobSink;
use goodseed_store::blobs::BlobDir;

fn mib() -> u64 {
    std::env::var("GOODSEED_BENCH_MIB").ok().and_then(|s| s.parse().ok()).unwrap_or(1024)
}

/// A file of `mib` MiB of bytes that do not compress or repeat.
fn make_file(path: &Path, mib: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&block).expect("write");
    }
    f.flush().expect("flush");
    drop(f);
    // Read once, so every copy starts from the page cache.
    let _ = std::fs::read(path).map(drop);
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn timed(mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn copy_throughput(dir: &Path, src: &Path, mib: u64) {
    let rounds = 5;
    let mut cp = Vec::new();
    let mut cp_sync = Vec::new();
    let mut ours = Vec::new();
    for round in 0..rounds {
        let dst = dir.join(format!("cp-{round}"));
        cp.push(timed(|| {
            let ok = Command::new("cp").arg(src).arg(&dst).status().expect("cp");
            assert!(ok.success());
        }));
        let _ = std::fs::remove_file(&dst);
        cp_sync.push(timed(|| {
            let ok = Command::new("cp").arg(src).arg(&dst).status().expect("cp");
            assert!(ok.success());
            std::fs::File::open(&dst).expect("open").sync_all().expect("fsync");
        }));
        let _ = std::fs::remove_file(&dst);
        let blobs = BlobDir::new(dir.join(format!("run-{round}.files")), None);
        ours.push(timed(|| {
            let blob = blobs.ingest(src, &mut |_| {}).expect("ingest");
            blobs.unpin(&blob.hash);
        }));
        blobs.remove_all().expect("tidy");
        // Let writeback of one round not land on the next.
        let _ = Command::new("sync").status();
    }
    let (cp, cp_sync, ours) = (median(cp), median(cp_sync), median(ours));
    let rate = |s: f64| mib as f64 / s;
    println!("copy of a {mib} MiB file, median of {rounds} rounds (page cache warm):");
    println!("  cp:                    {cp:.2} s ({:.0} MiB/s)", rate(cp));
    println!("  cp + fsync:            {cp_sync:.2} s ({:.0} MiB/s)", rate(cp_sync));
    println!(
        "  goodseed (hash, sync): {ours:.2} s ({:.0} MiB/s): {:+.0}% beside cp + fsync, {:+.0}% beside cp (target: within 20%)",
        rate(ours),
        (ours / cp_sync - 1.0) * 100.0,
        (ours / cp - 1.0) * 100.0,
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// Logs 10 metrics per step for `seconds` (or until `until` says stop); per-call times.
fn train(run: &Run, seconds: f64, mut until: impl FnMut() -> bool) -> Vec<Duration> {
    let names: Vec<String> = (0..10).map(|i| format!("train/m{i}")).collect();
    let mut times = Vec::with_capacity(1 << 20);
    let start = Instant::now();
    let mut step = 0u64;
    while start.elapsed().as_secs_f64() < seconds && !until() {
        let t = Instant::now();
        run.log_metrics(step, names.iter().map(|n| (n.as_str(), step as f64 * 1e-3))).expect("log");
        times.push(t.elapsed());
        step += 1;
        if step.is_multiple_of(64) {
            // A training step takes time: about 16k steps a second here.
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    times.sort();
    times
}

fn latency_while_copying(home: &Path, src: &Path, mib: u64) {
    let builder =
        || Run::builder().home(home).project("bench").capture_git(false).monitoring(false);
    let quiet = builder().create().expect("run");
    let base = train(&quiet, 3.0, || false);
    quiet.finish().expect("finish");

    let run = builder().create().expect("run");
    let t = Instant::now();
    run.log_checkpoint(src, 0u32, &[("val/loss", 0.5)]).expect("checkpoint");
    let call = t.elapsed();
    let report = std::sync::Arc::new(std::sync::Mutex::new(None));
    let waiter = {
        let (run, report) = (run.clone(), std::sync::Arc::clone(&report));
        std::thread::spawn(move || {
            let r = run.wait_for_files().expect("wait");
            *report.lock().expect("lock") = Some(r);
        })
    };
    let copying = train(&run, 120.0, || report.lock().expect("lock").is_some());
    let copy_time = t.elapsed();
    waiter.join().expect("waiter");
    run.finish().expect("finish");
    let line = |what: &str, xs: &[Duration]| {
        println!(
            "  {what}: {} calls, p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.2} ms",
            xs.len(),
            percentile(xs, 0.5).as_secs_f64() * 1e6,
            percentile(xs, 0.99).as_secs_f64() * 1e6,
            percentile(xs, 0.999).as_secs_f64() * 1e6,
            xs[xs.len() - 1].as_secs_f64() * 1e3,
        );
    };
    println!("log_metrics (10 metrics a call) while a {mib} MiB checkpoint is copied:");
    println!(
        "  log_checkpoint returned in {:.1} µs; the copy took {:.2} s",
        call.as_secs_f64() * 1e6,
        copy_time.as_secs_f64()
    );
    line("no copy  ", &base);
    line("copying  ", &copying);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mib = mib();
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("checkpoint.bin");
    make_file(&src, mib);
    println!("checkpoints and artifacts, 2-core machine:");
    copy_throughput(dir.path(), &src, mib);
    latency_while_copying(&dir.path().join("home"), &src, mib);
}
