//! The pyramid against the points: series written through the real writer, in random
//! batches, to real files, answered through the real reader, compared bit for bit with
//! the downsampler run over the points the reader returns.

use std::path::{Path, PathBuf};

use goodseed_core::downsample::{
    Downsampler, PointCount, Sampled, SampledPoint, Window, downsample,
};
use goodseed_core::{FieldPath, MetricPoint, Step};
use proptest::prelude::*;
use rusqlite::Connection;

use super::*;
use crate::{RunReader, RunWriter, SqliteRunReader, SqliteRunWriter, WriteBatch};

/// A small deterministic generator (splitmix64), so one proptest seed makes one case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

fn value(rng: &mut Rng) -> f64 {
    match rng.below(12) {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => f64::NEG_INFINITY,
        3 => -0.0,
        4 => 0.0,
        5 => f64::from_bits(rng.next()), // anything, NaN payloads and subnormals included
        6 => (rng.unit() - 0.5) * 1e300,
        _ => (rng.unit() - 0.5) * 200.0,
    }
}

/// `n` increasing steps: whole numbers with gaps, or fractions.
fn steps(rng: &mut Rng, n: usize) -> Vec<f64> {
    let whole = rng.chance(0.5);
    let mut step = if whole { rng.below(10) as f64 } else { (rng.unit() - 0.5) * 1e4 };
    (0..n)
        .map(|_| {
            let s = step;
            step += if whole { 1.0 + rng.below(3) as f64 } else { 0.001 + rng.unit() * 7.3 };
            s
        })
        .collect()
}

/// One metric point to write: (series index, step, value, ts).
type Write = (usize, f64, f64, i64);

fn path(i: usize) -> FieldPath {
    FieldPath::parse(&format!("m/{i}")).expect("valid path")
}

fn batch_of(writes: &[Write]) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for &(series, step, value, ts) in writes {
        let r = batch.metric_series(&path(series));
        batch.metric(r, Step::new(step).expect("finite step"), value, ts);
    }
    batch
}

/// Makes NaN comparable: every NaN is one NaN, other values compare by bits.
fn canon(x: f64) -> u64 {
    if x.is_nan() { f64::NAN.to_bits() } else { x.to_bits() }
}

type Bits = (u64, u64, u64, u64, bool, i64);

fn bits(points: &[SampledPoint]) -> Vec<Bits> {
    points
        .iter()
        .map(|p| (canon(p.step), canon(p.value), canon(p.min), canon(p.max), p.downsampled, p.ts))
        .collect()
}

/// A connection as the reader opens one.
fn read_only(path: &Path) -> Connection {
    schema::open_reader(path, schema::ReadMode::for_file(path)).expect("open read-only")
}

fn series_id_of(conn: &Connection, series: usize) -> Option<i64> {
    conn.query_row("SELECT id FROM metric_series WHERE path = ?1", [path(series).as_str()], |r| {
        r.get(0)
    })
    .optional()
    .expect("series id")
}

/// Every bucket row of a series, in order.
fn stored_rows(conn: &Connection, sid: i64) -> Vec<BucketRow> {
    let mut stmt = conn
        .prepare("SELECT seq, buckets FROM metric_pyramid WHERE series_id = ?1 ORDER BY seq")
        .expect("prepare");
    let rows = stmt
        .query_map([sid], |r| Ok(BucketRow { seq: r.get::<_, i64>(0)? as u64, bytes: r.get(1)? }))
        .expect("query");
    rows.collect::<rusqlite::Result<_>>().expect("rows")
}

/// What a fold of `points` from scratch stores: the state and the rows.
fn fold(points: &[MetricPoint], min_level: u32) -> (SeriesState, Vec<BucketRow>) {
    let mut state = SeriesState::new(min_level);
    let mut rows = Vec::new();
    for &p in points {
        state.push(p, &mut rows);
    }
    (state, rows)
}

/// The point counts and windows to ask a series of `n` points for.
fn requests(rng: &mut Rng, n: u64, min_level: u32) -> Vec<(i64, Option<i64>, Option<i64>)> {
    let n_i = i64::try_from(n).expect("small");
    let mut counts: Vec<i64> = vec![1, 2, 3, 5, 7, 10, 1000];
    counts.extend([n_i / 3, n_i / 2, n_i - 1, n_i, n_i + 1].into_iter().filter(|&c| c >= 1));
    for _ in 0..6 {
        counts.push(1 + rng.below(n.max(1)) as i64);
    }
    counts.sort_unstable();
    counts.dedup();
    let mut out = Vec::new();
    for pc in counts {
        out.push((pc, None, None));
        out.push((pc, Some(0), Some(n_i + 5)));
        // A window starting on a boundary of its own bucket size, ending anywhere.
        let level = min_level + rng.below(4) as u32;
        let k = 1i64 << level;
        if n_i > k {
            let first = k * rng.below((n / k as u64).max(1)) as i64;
            let last = first + rng.below((n_i - first) as u64) as i64;
            out.push((pc, Some(first), Some(last)));
            out.push((pc, Some(first), None));
            out.push((pc, Some(first), Some(first + k * (1 + rng.below(8) as i64) - 1)));
        }
        let (a, b) = (rng.below(n + 2) as i64 - 1, rng.below(n + 2) as i64 - 1);
        out.push((pc, Some(a.min(b)), Some(a.max(b))));
    }
    out
}

/// Checks every request on every series of the file against the points the reader
/// returns. `indexed[i]`: whether series `i` must be answered from a valid pyramid.
/// Returns how many answers came from the pyramid.
fn check_file(file: &Path, indexed: &[bool], min_level: u32, rng: &mut Rng) -> usize {
    let reader = SqliteRunReader::open(file).expect("reader");
    let conn = read_only(file);
    let mut from_pyramid = 0;
    for (i, &indexed) in indexed.iter().enumerate() {
        let p = path(i);
        let mut points = Vec::new();
        reader
            .visit_metrics(Some(p.as_str()), &mut |_, pt| {
                points.push(pt);
                true
            })
            .expect("points");
        let n = points.len() as u64;
        assert_eq!(reader.metric_count(p.as_str()).expect("count"), n, "count of {p}");
        let sid = series_id_of(&conn, i);
        let state = match sid {
            Some(sid) => valid_state(&conn, sid).ok().flatten(), // as readers take it
            None => None,
        };
        if indexed && n > 0 {
            let state = state.as_ref().unwrap_or_else(|| panic!("{p} is not indexed"));
            assert_eq!(state.len(), n, "{p}: the state's count");
            let sid = sid.expect("sid");
            let (scratch, rows) = fold(&points, state.min_level());
            assert_eq!(
                state.encode(),
                scratch.encode(),
                "{p}: stored state vs a fold from scratch"
            );
            assert!(stored_rows(&conn, sid) == rows, "{p}: stored buckets vs a fold from scratch");
        } else if !indexed {
            assert!(state.is_none(), "{p} is indexed but should not be");
        }
        for (pc, first, last) in requests(rng, n, min_level) {
            let count = PointCount::new(pc).expect("valid");
            let window = Window::new(n, first, last);
            let rows = window.rows();
            let expected = downsample(&points[rows.start as usize..rows.end as usize], count);
            let (got_window, got) =
                reader.downsample_metric(p.as_str(), first, last, count).expect("downsample");
            let what = format!("{p}: n={n} pointCount={pc} window={first:?}..={last:?}");
            assert_eq!(got_window, window, "{what}");
            assert_same(&got, &expected, &what);
            // The pyramid answers every window that starts on a boundary of its bucket
            // size, when that size is one of its levels.
            if let (Some(state), Some(sid)) = (&state, sid) {
                let k = Downsampler::new(rows.end - rows.start, count).bucket_size();
                let with_nan = series_has_nan(&conn, sid).expect("nan");
                let direct =
                    sample(&conn, sid, with_nan, state, rows.clone(), count).expect("sample");
                let should =
                    !rows.is_empty() && k >= 1 << state.min_level() && rows.start.is_multiple_of(k);
                assert_eq!(direct.is_some(), should, "{what}: k={k}, answered from the pyramid");
                if let Some(direct) = direct {
                    assert_same(&direct, &expected, &what);
                    from_pyramid += 1;
                }
            }
        }
    }
    from_pyramid
}

fn assert_same(got: &Sampled, expected: &Sampled, what: &str) {
    assert_eq!(bits(&got.points), bits(&expected.points), "{what}");
    assert_eq!(got.downsampled, expected.downsampled, "{what}");
}

struct Case {
    dir: tempfile::TempDir,
    file: PathBuf,
    min_level: u32,
    series: usize,
}

impl Case {
    fn new(min_level: u32, series: usize) -> Case {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("runs").join("r.sqlite");
        Case { dir, file, min_level, series }
    }
}

/// Writes `writes` in batches of random sizes, closing and resuming the writer now and
/// then, and checks the file after some batches (while the writer is open) and at the
/// end. `indexed` must say which series stay indexed throughout.
fn write_and_check(case: &Case, writes: &[Write], indexed: &[bool], rng: &mut Rng) -> usize {
    let mut writer = SqliteRunWriter::create_with(&case.file, &WriteBatch::new(), case.min_level)
        .expect("create");
    let mut at = 0;
    let mut from_pyramid = 0;
    while at < writes.len() {
        let most = if rng.chance(0.3) { 5 } else { 700 };
        let size = 1 + rng.below(most) as usize;
        let end = (at + size).min(writes.len());
        writer.write(&batch_of(&writes[at..end])).expect("write");
        at = end;
        if rng.chance(0.1) {
            writer.close().expect("close");
            writer =
                SqliteRunWriter::open_existing_with(&case.file, case.min_level).expect("resume");
        }
        if rng.chance(0.05) {
            from_pyramid += check_file(&case.file, indexed, case.min_level, rng);
        }
    }
    writer.close().expect("close");
    from_pyramid + check_file(&case.file, indexed, case.min_level, rng)
}

/// Random series, written step-major or series by series, in order.
fn ordered_writes(rng: &mut Rng, series: usize, max_len: u64) -> Vec<Write> {
    let mut per: Vec<Vec<Write>> = (0..series)
        .map(|i| {
            let n = rng.below(max_len + 1) as usize;
            let mut ts = 1_700_000_000 + rng.below(1000) as i64;
            steps(rng, n)
                .into_iter()
                .map(|s| {
                    ts += rng.below(3) as i64;
                    (i, s, value(rng), ts)
                })
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    // Interleave: take a few points of a random series at a time.
    while per.iter().any(|p| !p.is_empty()) {
        let i = rng.below(series as u64) as usize;
        let take = (1 + rng.below(40) as usize).min(per[i].len());
        out.extend(per[i].drain(..take));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn pyramid_answers_like_the_points(seed in any::<u64>(), min_level in 1..=4u32, series in 1..=3usize) {
        let mut rng = Rng(seed);
        let case = Case::new(min_level, series);
        let writes = ordered_writes(&mut rng, series, 1500);
        let answered = write_and_check(&case, &writes, &vec![true; series], &mut rng);
        let longest = (0..series).map(|i| writes.iter().filter(|w| w.0 == i).count()).max().unwrap_or(0);
        if longest >= 64 {
            prop_assert!(answered > 0, "the pyramid answered nothing");
        }
        drop(case.dir);
    }

    #[test]
    fn rewrites_unindex_a_series_until_it_is_reopened(seed in any::<u64>(), min_level in 1..=3u32) {
        let mut rng = Rng(seed);
        let case = Case::new(min_level, 2);
        let mut writes = ordered_writes(&mut rng, 2, 600);
        // Series 0 gets a step at or before its last one: an overwrite of a step it has,
        // or a step slipped in between two, NaN or not.
        let own: Vec<usize> = (0..writes.len()).filter(|&i| writes[i].0 == 0).collect();
        if own.len() >= 2 {
            let at = own[rng.below(own.len() as u64) as usize];
            let target = writes[at];
            let step = if rng.chance(0.5) { target.1 } else { target.1 - 0.0005 };
            let w = (0, step, value(&mut rng), target.3);
            // Written a few points after the target (or at the end): in its batch it is
            // only a later write, in a later batch a rewrite.
            let later = (at + 1 + rng.below(50) as usize).min(writes.len());
            writes.insert(later, w);
        }
        // Which series end unindexed depends on how the batches fall (a rewrite inside
        // one batch is only a later write of the same step there), so check answers,
        // not the index, while writing; after a reopen everything is indexed again.
        let mut writer = SqliteRunWriter::create_with(&case.file, &WriteBatch::new(), min_level).expect("create");
        let mut at = 0;
        while at < writes.len() {
            let end = (at + 1 + rng.below(300) as usize).min(writes.len());
            writer.write(&batch_of(&writes[at..end])).expect("write");
            at = end;
        }
        check_answers_only(&case, &mut rng);
        writer.close().expect("close");
        check_answers_only(&case, &mut rng);
        let mut writer = SqliteRunWriter::open_existing_with(&case.file, min_level).expect("resume");
        writer.close().expect("close");
        check_file(&case.file, &[true, true], min_level, &mut rng);
        drop(case.dir);
    }
}

/// Checks answers against the points with no claim about which series are indexed.
fn check_answers_only(case: &Case, rng: &mut Rng) {
    let conn = read_only(&case.file);
    let indexed: Vec<bool> = (0..case.series)
        .map(|i| {
            series_id_of(&conn, i)
                .is_some_and(|sid| valid_state(&conn, sid).expect("state").is_some())
        })
        .collect();
    check_file(&case.file, &indexed, case.min_level, rng);
}

#[test]
fn a_rewrite_in_a_later_batch_unindexes_only_its_series() {
    let mut rng = Rng(7);
    let case = Case::new(2, 2);
    let mut writer =
        SqliteRunWriter::create_with(&case.file, &WriteBatch::new(), 2).expect("create");
    let mk = |series: usize, range: std::ops::Range<u32>| -> Vec<Write> {
        range
            .map(|s| (series, f64::from(s), f64::from(s % 7) - 3.0, 1_700_000_000 + i64::from(s)))
            .collect()
    };
    writer.write(&batch_of(&[mk(0, 0..100), mk(1, 0..100)].concat())).expect("write");
    check_file(&case.file, &[true, true], 2, &mut rng);
    // An overwrite of step 50 of series 0, with a NaN, and more points for both.
    writer
        .write(&batch_of(&[vec![(0, 50.0, f64::NAN, 1)], mk(1, 100..150)].concat()))
        .expect("write");
    check_file(&case.file, &[false, true], 2, &mut rng);
    // Appends to the unindexed series keep it unindexed, and answered.
    writer.write(&batch_of(&mk(0, 100..180))).expect("write");
    check_file(&case.file, &[false, true], 2, &mut rng);
    // A rewrite of series 1's last step, alone in its batch.
    writer.write(&batch_of(&[(1, 149.0, 0.25, 5)])).expect("write");
    check_file(&case.file, &[false, false], 2, &mut rng);
    writer.close().expect("close");
    // The next writer rebuilds it.
    let mut writer = SqliteRunWriter::open_existing_with(&case.file, 2).expect("resume");
    check_file(&case.file, &[true, true], 2, &mut rng);
    writer.write(&batch_of(&mk(0, 180..260))).expect("write");
    writer.close().expect("close");
    check_file(&case.file, &[true, true], 2, &mut rng);
}

/// Another writer (goodseed 0.4.0 resuming the run, say) adds rows with `INSERT OR
/// REPLACE` and knows nothing of the pyramid.
fn foreign_insert(file: &Path, series: usize, step: f64, value: f64) {
    let conn = Connection::open(file).expect("open");
    let sid = series_id_of(&conn, series).expect("series");
    conn.execute(
        "INSERT OR REPLACE INTO metric_points (series_id, step, y, ts) VALUES (?1, ?2, ?3, 1)",
        (sid, step, value),
    )
    .expect("insert");
}

#[test]
fn rows_from_other_writers_invalidate_the_pyramid() {
    let mut rng = Rng(11);
    let case = Case::new(3, 2);
    let points = |series: usize, range: std::ops::Range<u32>| -> Vec<Write> {
        range
            .map(|s| {
                (
                    series,
                    f64::from(s) * 0.5,
                    (f64::from(s) * 0.37).sin(),
                    1_700_000_000 + i64::from(s),
                )
            })
            .collect()
    };
    let mut writer =
        SqliteRunWriter::create_with(&case.file, &WriteBatch::new(), 3).expect("create");
    writer.write(&batch_of(&[points(0, 0..500), points(1, 0..300)].concat())).expect("write");
    writer.close().expect("close");
    check_file(&case.file, &[true, true], 3, &mut rng);

    // An overwrite of an existing step: the watermark moves, no series is trusted.
    foreign_insert(&case.file, 0, 100.0, 42.0);
    check_file(&case.file, &[false, false], 3, &mut rng);
    // Resuming rebuilds them.
    let mut writer = SqliteRunWriter::open_existing_with(&case.file, 3).expect("resume");
    check_file(&case.file, &[true, true], 3, &mut rng);

    // Rows added while our writer is open: seen at its next transaction of points,
    // which drops the pyramid for the rest of the session.
    foreign_insert(&case.file, 1, 1000.0, -1.0);
    check_file(&case.file, &[false, false], 3, &mut rng);
    writer.write(&batch_of(&points(0, 500..700))).expect("write");
    check_file(&case.file, &[false, false], 3, &mut rng);
    writer.write(&batch_of(&points(1, 2001..2100))).expect("write");
    writer.close().expect("close");
    check_file(&case.file, &[false, false], 3, &mut rng);
    let mut writer = SqliteRunWriter::open_existing_with(&case.file, 3).expect("resume");
    writer.close().expect("close");
    check_file(&case.file, &[true, true], 3, &mut rng);
}

#[test]
fn files_without_a_pyramid_are_read_raw_and_get_one_when_resumed() {
    let mut rng = Rng(13);
    let case = Case::new(MIN_LEVEL, 1);
    let writes: Vec<Write> =
        (0..3000u32).map(|s| (0, f64::from(s), f64::from(s).sqrt(), 1_700_000_000)).collect();
    let mut writer = SqliteRunWriter::create(&case.file, &batch_of(&writes)).expect("create");
    writer.close().expect("close");
    check_file(&case.file, &[true], MIN_LEVEL, &mut rng);
    // As goodseed 0.4.0 makes files: none of our tables.
    let conn = Connection::open(&case.file).expect("open");
    conn.execute_batch(
        "DROP TABLE metric_pyramid; DROP TABLE metric_pyramid_series; DROP TABLE metric_pyramid_watermark;",
    )
    .expect("drop");
    drop(conn);
    check_file(&case.file, &[false], MIN_LEVEL, &mut rng);
    let mut writer = SqliteRunWriter::open_existing(&case.file).expect("resume");
    writer.close().expect("close");
    check_file(&case.file, &[true], MIN_LEVEL, &mut rng);
}

#[test]
fn pyramid_tables_of_another_layout_are_ignored_then_made_anew() {
    let mut rng = Rng(29);
    let case = Case::new(MIN_LEVEL, 1);
    let writes: Vec<Write> =
        (0..3000u32).map(|s| (0, f64::from(s), f64::from(s).cbrt(), 1_700_000_000)).collect();
    let mut writer = SqliteRunWriter::create(&case.file, &batch_of(&writes)).expect("create");
    writer.close().expect("close");
    // As a development build left them: same names, other columns, a matching watermark.
    let conn = Connection::open(&case.file).expect("open");
    conn.execute_batch(
        "DROP TABLE metric_pyramid; CREATE TABLE metric_pyramid (series_id, level, bucket);
         DROP TABLE metric_pyramid_series; CREATE TABLE metric_pyramid_series (sid, blob);",
    )
    .expect("mangle");
    drop(conn);
    // Readers answer from the points, exactly.
    check_file(&case.file, &[false], MIN_LEVEL, &mut rng);
    // A writer resuming the file makes the pyramid anew.
    let mut writer = SqliteRunWriter::open_existing(&case.file).expect("resume");
    writer.close().expect("close");
    check_file(&case.file, &[true], MIN_LEVEL, &mut rng);
}

#[test]
fn states_survive_encoding() {
    let mut rng = Rng(3);
    for min_level in [1, 2, 7] {
        let mut state = SeriesState::new(min_level);
        let mut rows = Vec::new();
        for i in 0..2000 {
            let encoded = state.encode();
            let decoded = SeriesState::decode(&encoded).expect("decodes");
            assert_eq!(decoded.encode(), encoded);
            assert_eq!(SeriesState::decode(&encoded[..encoded.len() - 1]), None);
            let v = value(&mut rng);
            state.push(
                MetricPoint { step: f64::from(i), value: as_stored(v), ts: i64::from(i) },
                &mut rows,
            );
        }
    }
    assert_eq!(SeriesState::decode(&[]), None);
    assert_eq!(SeriesState::decode(&[2, 7]), None);
}

#[test]
fn a_series_whose_steps_read_back_unordered_is_not_indexed() {
    let mut rng = Rng(17);
    let case = Case::new(2, 2);
    let writes: Vec<Write> = (0..100u32)
        .flat_map(|s| [(0, f64::from(s), f64::from(s), 1), (1, f64::from(s), -f64::from(s), 1)])
        .collect();
    let mut writer =
        SqliteRunWriter::create_with(&case.file, &batch_of(&writes), 2).expect("create");
    writer.close().expect("close");
    // Another program stores a step SQLite cannot make a number of: it reads as NaN,
    // after every number.
    let conn = Connection::open(&case.file).expect("open");
    let sid = series_id_of(&conn, 0).expect("series");
    conn.execute(
        "INSERT INTO metric_points (series_id, step, y, ts) VALUES (?1, 'later', 1.0, 1)",
        [sid],
    )
    .expect("insert");
    drop(conn);
    let mut writer = SqliteRunWriter::open_existing_with(&case.file, 2).expect("resume");
    writer.close().expect("close");
    check_file(&case.file, &[false, true], 2, &mut rng);
}
