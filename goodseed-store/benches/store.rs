//! Store benchmarks: writer throughput against a raw rusqlite insert loop into the same
//! schema, and catalog listing of 1,000 runs, warm and cold.
//!
//! Run with `cargo bench -p goodseed-store` (or `cargo xtask bench`).

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use goodseed_core::{ConfigValue, FieldPath, ProjectName, RunId, Step};
use goodseed_store::{
    RunStore, RunWriter, SqliteRunWriter, SqliteStore, WriteBatch, run_file_path,
};

const SERIES: usize = 10;
const STEPS: u32 = 200_000;
const POINTS: u64 = SERIES as u64 * STEPS as u64;
/// Steps per transaction: 5,000 steps x 10 series = 50,000 points.
const STEPS_PER_BATCH: u32 = 5_000;
const TS: i64 = 1_700_000_000;

fn series_paths() -> Vec<FieldPath> {
    (0..SERIES).map(|i| FieldPath::parse(&format!("train/metric_{i}")).expect("path")).collect()
}

fn value(step: u32, series: usize) -> f64 {
    f64::from(step).mul_add(1e-6, series as f64)
}

/// Our writer: 2,000,000 points in batches, as the SDK's writer thread sends them.
fn write_with_store(path: &Path, paths: &[FieldPath], batch: &mut WriteBatch) {
    let mut writer = SqliteRunWriter::create(path, &WriteBatch::new()).expect("create");
    let mut step = 0;
    while step < STEPS {
        batch.clear();
        let refs: Vec<_> = paths.iter().map(|p| batch.metric_series(p)).collect();
        for s in step..step + STEPS_PER_BATCH {
            for (i, r) in refs.iter().enumerate() {
                batch.metric(*r, Step::from(s), value(s, i), TS);
            }
        }
        writer.write(batch).expect("write");
        step += STEPS_PER_BATCH;
    }
    writer.close().expect("close");
}

/// The physical limit: the same schema (made by our writer), the same PRAGMAs (SQLite's
/// own automatic checkpoints), one prepared plain `INSERT` (which, unlike the store,
/// cannot overwrite a step) and one transaction per batch, rows in arrival order.
fn write_raw(path: &Path) {
    SqliteRunWriter::create(path, &WriteBatch::new()).expect("create").close().expect("close");
    let mut conn = rusqlite::Connection::open(path).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-8000;",
    )
    .expect("pragmas");
    for i in 0..SERIES {
        conn.execute("INSERT INTO metric_series (path) VALUES (?1)", [format!("train/metric_{i}")])
            .expect("series");
    }
    let mut step = 0;
    while step < STEPS {
        let tx = conn.transaction().expect("tx");
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO metric_points (series_id, step, y, ts) VALUES (?1, ?2, ?3, ?4)",
                )
                .expect("prepare");
            for s in step..step + STEPS_PER_BATCH {
                for i in 0..SERIES {
                    stmt.execute((i as i64 + 1, f64::from(s), value(s, i), TS)).expect("insert");
                }
            }
        }
        tx.commit().expect("commit");
        step += STEPS_PER_BATCH;
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").expect("checkpoint");
}

fn writer(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let paths = series_paths();
    let mut group = c.benchmark_group("writer");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .throughput(Throughput::Elements(POINTS));
    let mut n = 0;
    let mut fresh = |name: &str| {
        n += 1;
        let path = dir.path().join(format!("{name}-{n}.sqlite"));
        let _ = std::fs::remove_file(&path);
        path
    };
    let mut batch = WriteBatch::new();
    group.bench_function("store_2M_points_10_series", |b| {
        b.iter_batched(
            || fresh("store"),
            |path| {
                write_with_store(&path, &paths, &mut batch);
                std::fs::remove_file(&path).expect("rm");
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("raw_rusqlite_2M_points_10_series", |b| {
        b.iter_batched(
            || fresh("raw"),
            |path| {
                write_raw(&path);
                std::fs::remove_file(&path).expect("rm");
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

/// 1,000 runs in 10 projects, each with configs, 5 metrics of 200 points and a text series.
fn make_runs(root: &Path) {
    for i in 0..1000u32 {
        let project = ProjectName::parse(&format!("team/project-{}", i % 10)).expect("project");
        let run = RunId::parse(&format!("run-{i:04}")).expect("run id");
        let mut b = WriteBatch::new();
        b.set_meta("run_id", run.as_str());
        b.set_meta("project", project.as_str());
        b.set_meta("created_at", format!("2025-01-01T00:{:02}:{:02}+00:00", i / 60 % 60, i % 60));
        b.set_meta("status", "finished");
        b.set_meta("name", format!("run number {i}"));
        for k in 0..20 {
            b.config(FieldPath::parse(&format!("params/p{k}")).expect("path"), ConfigValue::Int(k));
        }
        for m in 0..5 {
            let s = b.metric_series(&FieldPath::parse(&format!("train/m{m}")).expect("path"));
            for step in 0..200u32 {
                b.metric(s, Step::from(step), f64::from(step), TS);
            }
        }
        let t = b.text_series(&FieldPath::parse("logs/stdout").expect("path"));
        b.text(t, Step::ZERO, "hello", TS);
        let mut w =
            SqliteRunWriter::create(&run_file_path(root, &project, &run), &b).expect("create");
        w.close().expect("close");
    }
}

fn catalog(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    make_runs(dir.path());
    let mut group = c.benchmark_group("catalog_1000_runs");
    group.sample_size(20);
    group.bench_function("list_runs_cold", |b| {
        b.iter_batched(
            || SqliteStore::new(dir.path()),
            |catalog| {
                let listing = catalog.list_runs(None).expect("list");
                assert_eq!(listing.runs.len(), 1000);
                black_box(listing)
            },
            BatchSize::PerIteration,
        );
    });
    let warm = SqliteStore::new(dir.path());
    warm.list_runs(None).expect("list");
    group.bench_function("list_runs_warm", |b| {
        b.iter(|| {
            let listing = warm.list_runs(None).expect("list");
            assert_eq!(listing.runs.len(), 1000);
            black_box(listing)
        });
    });
    group.bench_function("list_projects", |b| {
        b.iter(|| black_box(warm.list_projects().expect("projects")))
    });
    group.finish();
}

criterion_group!(benches, writer, catalog);
criterion_main!(benches);
