//! The runs table at scale (`cargo bench -p goodseed-server --bench catalog`, or
//! `cargo xtask bench`): one project of 10,000 runs and one of 100,000, each run a real
//! SQLite file with a sweep's configs, a few metrics and tags, written through the
//! store. The data is generated once under `target/bench-data/` (it takes minutes for
//! 100,000 runs) and reused while its format marker matches.
//!
//! Our server (this process, port 0, watching the directory as `goodseed serve` does)
//! answers over keep-alive HTTP, timed request by request; medians are reported beside
//! the targets of the UI-for-sweeps issue:
//!
//! - the whole listing of a project (`GET /api/runs?project=`): 10,000 runs <= 20 ms,
//!   100,000 <= 200 ms;
//! - a page of 50 (`limit=50`): <= 5 ms at 10,000, <= 10 ms at 100,000; also sorted and
//!   filtered by name, status, a search, configs and metrics' summaries (reported);
//! - a new run, and a change to a closed run, made by another process's store: visible
//!   in the listing within 1 s;
//! - the curves of a group of 1,000 runs (`GET /api/groups?…&metric=`): <= 500 ms.
//!
//! `GOODSEED_BENCH_CATALOG_SIZES=10000` measures only the sizes named.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark report is its output

use std::time::{Duration, Instant};

mod http;
mod sweep;

use sweep::{created_at, first_batch, fixture, start_server};

use goodseed_core::{ProjectName, RunId};
use goodseed_store::{RunStore, SqliteStore};
use http::Conn as Client;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// The median time of `n` requests for `target` (after `warm` untimed ones).
fn time(client: &mut Client, target: &str, n: usize, warm: usize) -> (Duration, usize) {
    let mut size = 0;
    for _ in 0..warm {
        let (status, body) = client.get(target);
        assert_eq!(status, 200, "{target}: {}", String::from_utf8_lossy(&body));
        size = body.len();
    }
    let times = (0..n)
        .map(|_| {
            let t = Instant::now();
            let (status, body) = client.get(target);
            let took = t.elapsed();
            assert_eq!(status, 200, "{target}");
            size = body.len();
            took
        })
        .collect();
    (median(times), size)
}

/// How long until `target`'s answer holds `needle`, polling every millisecond.
fn until_seen(client: &mut Client, target: &str, needle: &str, since: Instant) -> Duration {
    loop {
        let (_, body) = client.get(target);
        if String::from_utf8_lossy(&body).contains(needle) {
            return since.elapsed();
        }
        assert!(since.elapsed() < Duration::from_secs(30), "{needle} never appeared in {target}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn report(name: &str, took: Duration, target: &str) {
    println!("{name:<66} {:>10.2} ms   (target {target})", took.as_secs_f64() * 1e3);
}

fn measure(n: usize, full_target: &str, page_target: &str) {
    let dir = fixture(n);
    let project = format!("sweep/n{n}");
    let started = Instant::now();
    let port = start_server(&dir);
    let mut client = Client::new(port);
    let (status, _) = client.get(&format!("/api/runs?project={project}&limit=1"));
    assert_eq!(status, 200);
    println!("\n{n} runs in one project (first listing after start: {:.0?})", started.elapsed());
    let reps = if n > 50_000 { 9 } else { 31 };
    let (full, size) = time(&mut client, &format!("/api/runs?project={project}"), reps, 2);
    report(
        &format!("GET /api/runs?project= (all {n}, {:.1} MB)", size as f64 / 1e6),
        full,
        full_target,
    );
    let page = |q: &str| format!("/api/runs?project={project}&limit=50{q}");
    let (took, _) = time(&mut client, &page(""), 101, 5);
    report("a page of 50 (limit=50)", took, page_target);
    let (took, _) = time(&mut client, &page("&offset=5000"), 101, 5);
    report("a page of 50 at offset 5,000", took, page_target);
    let (took, _) = time(&mut client, &page("&sort=name"), 51, 3);
    report("a page of 50 sorted by name", took, "reported");
    let (took, _) = time(&mut client, &page("&status=failed"), 51, 3);
    report("a page of 50 of the failed runs (status=failed)", took, "reported");
    let (took, _) = time(&mut client, &page("&q=trial%2099"), 51, 3);
    report("a page of 50 of a search (q=trial 99)", took, "reported");
    let conditions = "&filter=optimizer%20%3D%20adam&filter=lr%20in%20%5B0.0003%2C%200.003%5D";
    let (took, _) = time(&mut client, &page(conditions), 51, 3);
    report("a page of 50 filtered (optimizer = adam, lr in [0.0003, 0.003])", took, "reported");
    let (took, _) = time(&mut client, &page("&sort=-config.lr"), 51, 3);
    report("a page of 50 sorted by a config (sort=-config.lr)", took, "reported");
    let (took, _) = time(&mut client, &page("&filter=train/loss.min%20%3C%200.15"), 51, 3);
    report("a page of 50 filtered on a metric (train/loss.min < 0.15)", took, "reported");
    let (took, _) = time(&mut client, &page("&sort=metric.train/loss.min"), 51, 3);
    report("a page of 50 sorted by a metric (sort=metric.train/loss.min)", took, "reported");

    // Groups: the curves of the first 1,000 runs (created before the 1,001st), grouped
    // by a config, each run read downsampled and binned by step on the server; and the
    // groups of the whole project without curves.
    let cut = created_at(1_000);
    let first_1000 = format!("filter=created_at%20%3C%20{}", cut.replace('+', "%2B"));
    let groups = format!("/api/groups?project={project}&metric=val/acc&{first_1000}");
    let t = Instant::now();
    let (status, body) = client.get(&format!("{groups}&by=optimizer"));
    let cold = t.elapsed();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("\"runs\": 1000"), "1,000 runs grouped");
    report("1,000 runs' mean curves ± std (by optimizer, 2 groups), first ask", cold, "<= 500 ms");
    let (took, _) = time(&mut client, &format!("{groups}&by=optimizer"), 11, 1);
    report("  the same asked again (closed runs' series kept)", took, "<= 500 ms");
    let (took, _) =
        time(&mut client, &format!("{groups}&by=layers&by=seed&stat=median&band=iqr"), 11, 1);
    report("1,000 runs' median curves, quartiles (18 groups)", took, "reported");
    let (took, _) =
        time(&mut client, &format!("/api/groups?project={project}&by=optimizer&by=lr"), 11, 1);
    report(&format!("GET /api/groups, all {n} runs by two configs, no curves"), took, "reported");

    // Another process's store (a trainer) creates a run, then trashes an old one.
    let other = SqliteStore::new(&dir);
    let pn = ProjectName::parse(&project).expect("project");
    let fresh = format!("new-{}", std::process::id());
    let t = Instant::now();
    let mut w = other
        .create_run(&pn, &RunId::parse(&fresh).expect("id"), &first_batch(&project, &fresh, n))
        .expect("create");
    w.close().expect("close");
    let seen = until_seen(&mut client, &page(&format!("&q={fresh}")), &fresh, t);
    report("a new run visible in the listing", seen, "<= 1 s");
    let old = RunId::parse("trial-000003").expect("id");
    let t = Instant::now();
    other.set_trashed(&pn, &old, true).expect("trash");
    let seen = until_seen(
        &mut client,
        &page("&q=trial-000003&trashed=true"),
        "\"run_id\": \"trial-000003\"",
        t,
    );
    report("a change to a closed run (trashed) visible", seen, "<= 1 s");
    // Leave the data as generated.
    other.set_trashed(&pn, &old, false).expect("restore");
    other.set_trashed(&pn, &RunId::parse(&fresh).expect("id"), true).expect("trash");
    let fresh = goodseed_core::RunRef { project: pn, run_id: RunId::parse(&fresh).expect("id") };
    other.delete_runs(&[fresh]).expect("delete");
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sizes: Vec<usize> = std::env::var("GOODSEED_BENCH_CATALOG_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000]);
    for n in sizes {
        match n {
            10_000 => measure(n, "<= 20 ms", "<= 5 ms"),
            100_000 => measure(n, "<= 200 ms", "<= 10 ms"),
            _ => measure(n, "reported", "reported"),
        }
    }
}
