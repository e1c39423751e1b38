//! The sweep the table benchmarks read: one project of `n` runs (`sweep/n<n>`), each a
//! real SQLite file with a sweep's configs (lr, batch_size, optimizer, seed, layers),
//! tags and two metrics of ten steps, written through the store, generated once under
//! `target/bench-data/` and reused while its format marker matches.

#![allow(dead_code)] // each benchmark uses its part

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use goodseed_server::{ServerOptions, serve};

use goodseed_core::{FieldPath, ProjectName, RunId, Step};
use goodseed_store::{RunStore, SqliteStore, WriteBatch};

/// Bumped when the generated data changes shape: older data is generated again.
const FORMAT: &str = "catalog-v1";

pub(crate) fn fixture_dir(n: usize) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("bench-data").join(format!("catalog-{n}"))
}

pub(crate) fn first_batch(project: &str, run: &str, i: usize) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.set_meta("run_id", run);
    b.set_meta("project", project);
    b.set_meta("name", format!("trial {i}"));
    // Distinct, increasing creation times: the listing's default order.
    let secs = 1_700_000_000 + i as i64;
    let at = created_at(i);
    b.set_meta("created_at", &at);
    b.set_meta("closed_at", &at);
    b.set_meta("status", if i % 50 == 7 { "failed" } else { "finished" });
    let lrs = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2];
    let configs: [(&str, goodseed_core::ConfigValue); 5] = [
        ("lr", lrs[i % lrs.len()].into()),
        ("batch_size", (16i64 << (i % 4)).into()),
        ("optimizer", (if i.is_multiple_of(3) { "adam" } else { "sgd" }).into()),
        ("seed", ((i % 3) as i64).into()),
        ("layers", ((i / 3 % 6) as i64).into()),
    ];
    for (k, v) in configs {
        b.config(FieldPath::parse(k).expect("path"), v);
    }
    let tags = if i.is_multiple_of(10) { vec!["sweep", "best"] } else { vec!["sweep"] };
    b.config(
        goodseed_store::lifecycle::tags_path(),
        goodseed_core::ConfigValue::StringSet(tags.into_iter().map(str::to_owned).collect()),
    );
    let loss = b.metric_series(&FieldPath::parse("train/loss").expect("path"));
    let acc = b.metric_series(&FieldPath::parse("val/acc").expect("path"));
    for step in 0..10u32 {
        let x = f64::from(step) + 1.0;
        b.metric(loss, Step::from(step), 1.0 / x + (i % 97) as f64 * 1e-3, secs);
        b.metric(acc, Step::from(step), 1.0 - 1.0 / x, secs);
    }
    b
}

/// `n` runs in project `sweep/n<n>`, generated once.
pub(crate) fn fixture(n: usize) -> PathBuf {
    let dir = fixture_dir(n);
    let marker = dir.join(FORMAT);
    if marker.exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the fixture directory");
    let project = format!("sweep/n{n}");
    let store = SqliteStore::new(&dir);
    let pn = ProjectName::parse(&project).expect("project");
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..std::thread::available_parallelism().map_or(2, usize::from) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let run = format!("trial-{i:06}");
                    let id = RunId::parse(&run).expect("id");
                    let mut w = store
                        .create_run(&pn, &id, &first_batch(&project, &run, i))
                        .expect("create");
                    w.close().expect("close");
                    if i % 10_000 == 9_999 {
                        eprintln!("  {} runs written in {:.0?}", i + 1, started.elapsed());
                    }
                }
            });
        }
    });
    std::fs::write(&marker, b"").expect("marker");
    eprintln!("generated {n} runs in {:.1?} under {}", started.elapsed(), dir.display());
    dir
}

/// Serves `dir` as `goodseed serve` does (a watched store) on a free port, from a thread
/// of this process; returns the port once it answers.
pub(crate) fn start_server(dir: &Path) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let store = Arc::new(SqliteStore::new(dir).watched());
    let options = ServerOptions { port, ..ServerOptions::default() };
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            serve(listener, store, options).expect("serve").await.expect("server ran");
        });
    });
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(10));
    }
    port
}

/// The creation time of run `i` (ISO 8601): runs before it were created earlier.
pub(crate) fn created_at(i: usize) -> String {
    goodseed_core::time::UtcMicros((1_700_000_000 + i as i64) * 1_000_000).to_iso8601()
}
