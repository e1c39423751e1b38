//! The PostgreSQL store's downsampling pyramid answers exactly as downsampling the raw
//! points does, across batches, a resumed writer and rewrites, and it is what answers.
//! Runs on the test kit's private PostgreSQL cluster.

use goodseed_core::downsample::{PointCount, Sampled, Window, downsample};
use goodseed_core::{FieldPath, MetricPoint, ProjectName, RunId, Step};
use goodseed_postgres::PgStore;
use goodseed_store::{RunReader, RunStore, WriteBatch};
use goodseed_testkit::postgres::shared;
use goodseed_testkit::rng::Rng;

fn value(rng: &mut Rng, i: u64) -> f64 {
    match rng.below(50) {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => f64::NEG_INFINITY,
        3 => -0.0,
        _ => (i as f64 * 0.37).sin() * 1e3 + rng.below(1000) as f64 / 7.0,
    }
}

fn first_batch() -> WriteBatch {
    let mut b = WriteBatch::new();
    b.set_meta("run_id", "tall-pine");
    b.set_meta("project", "team/p");
    b.set_meta("created_at", "2026-01-01T00:00:00+00:00");
    b.set_meta("status", "running");
    b
}

/// Appends `n` points to each of `paths`, in batches of random sizes; returns the steps
/// reached.
fn append(
    writer: &mut dyn goodseed_store::RunWriter,
    rng: &mut Rng,
    paths: &[&str],
    steps: &mut [f64],
    n: u64,
) {
    let mut left = n;
    while left > 0 {
        let size = (1 + rng.below(3000)).min(left);
        let mut b = WriteBatch::new();
        for (path, step) in paths.iter().zip(steps.iter_mut()) {
            let s = b.metric_series(&FieldPath::parse(path).expect("path"));
            for _ in 0..size {
                // Integer steps, and now and then a fractional one.
                *step += if rng.below(10) == 0 { 0.25 } else { 1.0 };
                let i = rng.next_u64();
                b.metric(
                    s,
                    Step::new(*step).expect("step"),
                    value(rng, i),
                    1_700_000_000 + (i % 1000) as i64,
                );
            }
        }
        writer.write(&b).expect("write");
        left -= size;
    }
}

fn all_points(reader: &dyn RunReader, path: &str) -> Vec<MetricPoint> {
    let mut points = Vec::new();
    reader
        .visit_metrics(Some(path), &mut |_, p| {
            points.push(p);
            true
        })
        .expect("points");
    points
}

fn bits(s: &Sampled) -> Vec<[u64; 5]> {
    let canon = |x: f64| if x.is_nan() { u64::MAX } else { x.to_bits() };
    s.points
        .iter()
        .map(|p| [canon(p.step), canon(p.value), canon(p.min), canon(p.max), p.ts as u64])
        .collect()
}

/// Compares the store's answers with downsampling the raw points, for many windows;
/// returns how many windows started on a bucket boundary of a level the pyramid keeps.
fn check(reader: &dyn RunReader, path: &str, rng: &mut Rng) -> usize {
    let points = all_points(reader, path);
    let n = points.len() as i64;
    let mut aligned = 0;
    let mut requests: Vec<(i64, Option<i64>, Option<i64>)> =
        vec![(1000, None, None), (1, None, None), (977, None, None), (128, Some(0), None)];
    for _ in 0..100 {
        let pc = 1 + rng.below(1500) as i64;
        let k = 128i64 << rng.below(5);
        let first = match rng.below(4) {
            0 => None,
            1 => Some(rng.below(n as u64 + 10) as i64 - 5),
            _ => Some(k * rng.below((n / k).max(1) as u64) as i64),
        };
        let last = match rng.below(3) {
            0 => None,
            _ => Some(first.unwrap_or(0) + rng.below(n as u64) as i64),
        };
        requests.push((pc, first, last));
    }
    for (pc, first, last) in requests {
        let count = PointCount::new(pc).expect("count");
        let (window, got) = reader.downsample_metric(path, first, last, count).expect("downsample");
        let expected_window = Window::new(n as u64, first, last);
        assert_eq!(window, expected_window, "{path} pc={pc} first={first:?} last={last:?}");
        let rows = window.rows();
        let expected = downsample(&points[rows.start as usize..rows.end as usize], count);
        assert_eq!(
            bits(&got),
            bits(&expected),
            "{path} pc={pc} first={first:?} last={last:?}: pyramid and raw points differ"
        );
        assert_eq!(got.downsampled, expected.downsampled);
        if first.unwrap_or(0) % 128 == 0 {
            aligned += 1;
        }
    }
    aligned
}

#[test]
fn the_pyramid_answers_as_the_raw_points_do_across_batches_resumes_and_rewrites() {
    let url = shared().database();
    let store = PgStore::connect(&url).expect("store");
    let (project, run) =
        (ProjectName::parse("team/p").expect("p"), RunId::parse("tall-pine").expect("r"));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let paths = ["a", "b"];
    let mut steps = [0.0, 0.0];
    let mut writer = store.create_run(&project, &run, &first_batch()).expect("create");
    append(&mut *writer, &mut rng, &paths, &mut steps, 12_000);
    let reader = store.open_run(&project, &run).expect("open");
    for path in paths {
        assert!(check(&*reader, path, &mut rng) > 0);
    }

    // A resumed writer carries on with the stored state.
    let mut done = WriteBatch::new();
    done.set_meta("status", "finished");
    writer.write(&done).expect("finish");
    writer.close().expect("close");
    drop(writer);
    let mut writer = store.resume_run(&project, &run).expect("resume");
    append(&mut *writer, &mut rng, &paths, &mut steps, 7_001);

    // A rewrite of an earlier step drops b's pyramid; b is then read raw, still right.
    let mut b = WriteBatch::new();
    let s = b.metric_series(&FieldPath::parse("b").expect("path"));
    b.metric(s, Step::from(5u32), 42.0, 1_700_000_000);
    writer.write(&b).expect("rewrite");
    append(&mut *writer, &mut rng, &paths, &mut steps, 500);
    let reader = store.open_run(&project, &run).expect("open");
    for path in paths {
        check(&*reader, path, &mut rng);
    }

    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("client");
    let kept = |client: &mut postgres::Client, path: &str| -> (bool, i64, i64) {
        let r = client
            .query_one(
                "SELECT s.pyramid IS NOT NULL, s.points,
                        (SELECT count(*) FROM goodseed_metric_pyramid WHERE series = s.id)
                 FROM goodseed_series s WHERE s.path = $1",
                &[&path],
            )
            .expect("series");
        (r.get(0), r.get(1), r.get(2))
    };
    let (indexed, n, rows) = kept(&mut client, "a");
    assert!(indexed, "a keeps its pyramid");
    assert_eq!(rows, n / 128, "one bucket row per 128 points");
    let (indexed, _, rows) = kept(&mut client, "b");
    assert!(!indexed && rows == 0, "b's pyramid is gone after the rewrite");

    // The pyramid is what answers: spoil one stored bucket and the answer follows it.
    // 100 points of ~19,500: buckets of 256, the second level, kept at bytes 56.. of the
    // rows whose seq + 1 is even.
    let before = reader
        .downsample_metric("a", None, None, PointCount::new(100).expect("count"))
        .expect("before")
        .1;
    let spoiled = client
        .execute(
            "UPDATE goodseed_metric_pyramid SET buckets = overlay(buckets placing
                 '\\x0000000000005940'::bytea from 65 for 8)
             WHERE series = (SELECT id FROM goodseed_series WHERE path = 'a') AND seq = 7",
            &[],
        )
        .expect("spoil");
    assert_eq!(spoiled, 1);
    let after = reader
        .downsample_metric("a", None, None, PointCount::new(100).expect("count"))
        .expect("after")
        .1;
    assert_ne!(bits(&before), bits(&after), "a request of buckets of 256 reads the pyramid");

    // Closing folds b's pyramid again from its points: it answers as the raw points do,
    // and is what answers.
    writer.close().expect("close");
    let (indexed, n, rows) = kept(&mut client, "b");
    assert!(indexed, "b has a pyramid again after the close");
    assert_eq!(rows, n / 128, "one bucket row per 128 points");
    let reader = store.open_run(&project, &run).expect("open");
    assert!(check(&*reader, "b", &mut rng) > 0);
    let before = reader
        .downsample_metric("b", None, None, PointCount::new(100).expect("count"))
        .expect("before")
        .1;
    client
        .execute(
            "UPDATE goodseed_metric_pyramid SET buckets = overlay(buckets placing
                 '\\x0000000000005940'::bytea from 65 for 8)
             WHERE series = (SELECT id FROM goodseed_series WHERE path = 'b') AND seq = 7",
            &[],
        )
        .expect("spoil");
    let after = reader
        .downsample_metric("b", None, None, PointCount::new(100).expect("count"))
        .expect("after")
        .1;
    assert_ne!(bits(&before), bits(&after), "b's folded pyramid is what answers");
}
