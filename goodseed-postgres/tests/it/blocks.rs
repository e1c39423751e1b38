//! Metric points kept in blocks: large writes split into several blocks, points written
//! into a block's steps (growing it past its limit splits it), every point read back as
//! a model of the series says, and a damaged block reported, not misread.

use std::collections::BTreeMap;

use goodseed_core::{FieldPath, ProjectName, RunId, Step};
use goodseed_postgres::PgStore;
use goodseed_store::{RunStore, WriteBatch};
use goodseed_testkit::postgres::shared;

fn batch(points: &[(f64, f64)]) -> WriteBatch {
    let mut b = WriteBatch::new();
    let s = b.metric_series(&FieldPath::parse("m").expect("path"));
    for &(step, value) in points {
        b.metric(s, Step::new(step).expect("step"), value, 1_700_000_000);
    }
    b
}

#[test]
fn blocks_split_grow_and_read_back_as_the_series_was_written() {
    let url = shared().database();
    let store = PgStore::connect(&url).expect("connect");
    let (p, r) = (ProjectName::parse("team/p").expect("p"), RunId::parse("blocks").expect("r"));
    let mut first = WriteBatch::new();
    first.set_meta("run_id", "blocks");
    first.set_meta("project", "team/p");
    first.set_meta("status", "running");
    let mut w = store.create_run(&p, &r, &first).expect("create");
    let mut model: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    let key = |step: f64| (step * 4.0) as i64;
    let mut write = |w: &mut Box<dyn goodseed_store::RunWriter>, points: Vec<(f64, f64)>| {
        for &(step, value) in &points {
            model.insert(key(step), (step, value));
        }
        w.write(&batch(&points)).expect("write");
    };
    // 40,000 points at once: three blocks.
    write(&mut w, (0..40_000).map(|i| (f64::from(i), f64::from(i))).collect());
    // Three new steps between each pair of the first block's: it grows past twice its
    // limit and is split; some of its steps are written again on the way.
    write(
        &mut w,
        (0..16_000)
            .flat_map(|i| (0..4).map(move |k| (f64::from(i) + f64::from(k) / 4.0, -f64::from(i))))
            .collect(),
    );
    // Half steps into the second block only: it grows past its limit but not past
    // twice it, and stays one block.
    write(&mut w, (16_384..24_384).map(|i| (f64::from(i) + 0.5, 1.0)).collect());
    // Before every block, between two, and past the end.
    write(
        &mut w,
        vec![(-3.0, 3.0), (-1.0, 1.0), (16_383.5, 2.0), (39_999.5, 0.5), (50_000.0, 5.0)],
    );
    let reader = store.open_run(&p, &r).expect("open");
    let mut read = Vec::new();
    reader
        .visit_metrics(Some("m"), &mut |_, point| {
            read.push((point.step, point.value));
            true
        })
        .expect("read");
    let want: Vec<(f64, f64)> = model.values().copied().collect();
    assert_eq!(read.len(), want.len());
    assert!(
        read == want,
        "first difference at {:?}",
        read.iter().zip(&want).position(|(a, b)| a != b)
    );
    assert_eq!(reader.metric_count("m").expect("count"), want.len() as u64);
    assert_eq!(reader.integrity_check().expect("check"), ["ok"]);
    // Reads from a point's place, across blocks, as the file store's reads are.
    let mut after = Vec::new();
    reader
        .visit_metrics_after("m", Some(39_998.0), &mut |point| {
            after.push(point.step);
            true
        })
        .expect("after");
    assert_eq!(after, vec![39_999.0, 39_999.5, 50_000.0]);
    let last = reader.last_metric_point("m").expect("last").expect("a point");
    assert_eq!((last.step, last.value), (50_000.0, 5.0));
    w.close().expect("close");
    // 3 blocks; the first grown to 64,384 points and split in 4; one before them all,
    // one between two, one appended.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("client");
    let blocks: i64 = client
        .query_one("SELECT count(*) FROM goodseed_metric_blocks", &[])
        .expect("blocks")
        .get(0);
    assert_eq!(blocks, 9);

    // A damaged block is reported by the check and fails a read that meets it.
    client
        .execute(
            "UPDATE goodseed_metric_blocks SET points = substring(points from 1 for 30)
             WHERE first_step = (SELECT max(first_step) FROM goodseed_metric_blocks)",
            &[],
        )
        .expect("damage");
    let problems = reader.integrity_check().expect("check");
    assert!(problems.iter().any(|p| p.contains("torn")), "{problems:?}");
    let err = reader.visit_metrics(Some("m"), &mut |_, _| true).expect_err("torn block");
    assert!(err.to_string().contains("not a multiple of 24"), "{err}");
}
