//! The runs table in a real browser at scale (`cargo bench -p goodseed-server --bench ui`,
//! or `cargo xtask bench`): the sweep of the catalog bench (10,000 and 100,000 runs,
//! generated once under `target/bench-data/`), served by our server as `goodseed serve`
//! serves it, and `web/tests/bench.mjs` driving the system Chromium through
//! playwright-core. Targets of the UI-for-sweeps issue, from the user's action to the
//! answer on screen (medians of five tries):
//!
//! - the table interactive (its first rows, then a sort by a click answered): <= 500 ms;
//! - a filter or a sort answered: <= 300 ms;
//! - a group of 1,000 runs' mean curves drawn: <= 500 ms.
//!
//! Needs node, Chromium (`GOODSEED_CHROMIUM`, else `/usr/bin/chromium`) and the build's
//! `node_modules` (the build installs them); without them it says what is missing and
//! measures nothing. `GOODSEED_BENCH_UI_SIZES=10000` measures only the sizes named.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark report is its output

use std::path::Path;
use std::process::Command;

mod http;
mod sweep;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let web = Path::new(env!("OUT_DIR")).join("web");
    let chromium =
        std::env::var("GOODSEED_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let missing: Vec<&str> = [
        (!node).then_some("node on the PATH"),
        (!Path::new(&chromium).exists()).then_some("Chromium (GOODSEED_CHROMIUM)"),
        (!web.join("node_modules/playwright-core").exists())
            .then_some("playwright-core in the build's web/node_modules"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        eprintln!("ui bench: nothing measured, missing {}", missing.join(", "));
        return;
    }
    let sizes: Vec<usize> = std::env::var("GOODSEED_BENCH_UI_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000]);
    for n in sizes {
        let dir = sweep::fixture(n);
        let started = std::time::Instant::now();
        let port = sweep::start_server(&dir);
        // The server's first listing reads every run's summary (the catalog bench reports
        // it): done before the browser is timed.
        let (status, _) =
            http::Conn::new(port).get(&format!("/api/runs?project=sweep/n{n}&limit=1"));
        assert_eq!(status, 200);
        println!(
            "\n{n} runs in one project, in Chromium (server ready after {:.1?})",
            started.elapsed()
        );
        let status = Command::new("node")
            .arg(web.join("tests/bench.mjs"))
            .current_dir(&web)
            .env("GOODSEED_URL", format!("http://127.0.0.1:{port}"))
            .env("GOODSEED_PROJECT", format!("sweep/n{n}"))
            .env("GOODSEED_RUNS", n.to_string())
            .env("GOODSEED_CUT", sweep::created_at(1_000))
            .env("GOODSEED_CHROMIUM", &chromium)
            .status()
            .expect("run node");
        assert!(status.success(), "web/tests/bench.mjs failed");
    }
}
