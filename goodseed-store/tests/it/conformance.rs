//! The store's conformance suite: behaviour every backend must have, written once against
//! the port ([`RunStore`] and the writers and readers it hands out) and run against each
//! implementation: SQLite on real files, the test kit's in-memory store, and PostgreSQL
//! (`goodseed-postgres`, each test on a fresh database of the test kit's private
//! cluster).

use std::collections::BTreeSet;

use goodseed_core::downsample::PointCount;
use goodseed_core::{ConfigValue, FieldPath, ProjectName, RunId, Step};
use goodseed_store::{
    RunStore, RunWriter, SqliteStore, StoreError, TextFilter, TextOrder, TextWindow, WriteBatch,
    run_file_path,
};
use goodseed_testkit::MemoryStore;

/// A fresh store of one backend. Everything the suite does goes through its
/// [`RunStore`]; `create` and `resume` only name the run as text.
pub(crate) trait Backend {
    fn store(&self) -> &dyn RunStore;

    fn create(
        &self,
        project: &str,
        run: &str,
        first: &WriteBatch,
    ) -> Result<Box<dyn RunWriter>, StoreError> {
        self.store().create_run(&pn(project), &rid(run), first)
    }

    fn resume(&self, project: &str, run: &str) -> Result<Box<dyn RunWriter>, StoreError> {
        self.store().resume_run(&pn(project), &rid(run))
    }

    fn catalog(&self) -> &dyn RunStore {
        self.store()
    }
}

/// SQLite files in a temp dir.
pub(crate) struct Sqlite {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) catalog: SqliteStore,
}

impl Sqlite {
    pub(crate) fn new() -> Sqlite {
        let dir = tempfile::tempdir().expect("temp dir");
        let catalog = SqliteStore::new(dir.path());
        Sqlite { dir, catalog }
    }

    /// A store that lists from its index (`SqliteStore::watched`).
    pub(crate) fn watched() -> Sqlite {
        let dir = tempfile::tempdir().expect("temp dir");
        let catalog = SqliteStore::new(dir.path()).watched();
        assert_eq!(catalog.watch_problem(), None);
        Sqlite { dir, catalog }
    }

    pub(crate) fn path(&self, project: &str, run: &str) -> std::path::PathBuf {
        run_file_path(self.dir.path(), &pn(project), &rid(run))
    }
}

impl Backend for Sqlite {
    fn store(&self) -> &dyn RunStore {
        &self.catalog
    }
}

/// The test kit's store in memory.
pub(crate) struct Memory(MemoryStore);

/// PostgreSQL: a fresh database of the test kit's private cluster.
pub(crate) struct Postgres(goodseed_postgres::PgStore);

impl Postgres {
    pub(crate) fn new() -> Postgres {
        let url = goodseed_testkit::postgres::shared().database();
        Postgres(goodseed_postgres::PgStore::connect(&url).expect("connect to PostgreSQL"))
    }
}

impl Backend for Postgres {
    fn store(&self) -> &dyn RunStore {
        &self.0
    }
}

impl Backend for Memory {
    fn store(&self) -> &dyn RunStore {
        &self.0
    }
}

pub(crate) fn pn(s: &str) -> ProjectName {
    ProjectName::parse(s).expect("valid project")
}
pub(crate) fn rid(s: &str) -> RunId {
    RunId::parse(s).expect("valid run id")
}
pub(crate) fn fp(s: &str) -> FieldPath {
    FieldPath::parse(s).expect("valid path")
}
pub(crate) fn step(x: f64) -> Step {
    Step::new(x).expect("finite step")
}

/// The meta a new run gets.
pub(crate) fn new_run(run: &str, created_at: &str) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.set_meta("run_id", run);
    b.set_meta("project", "p");
    b.set_meta("created_at", created_at);
    b.set_meta("status", "running");
    b
}

/// [`new_run`] for a run that is closed at once (`finished`): one that may be resumed.
pub(crate) fn finished_run(run: &str, created_at: &str) -> WriteBatch {
    let mut b = new_run(run, created_at);
    b.set_meta("status", "finished");
    b
}

const TS: i64 = 1_700_000_000;

/// Runs every conformance test against each backend, each on a fresh instance.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::super::$name(&super::super::Sqlite::new());
                }
            )*
        }
        mod sqlite_watched {
            $(
                #[test]
                fn $name() {
                    super::super::$name(&super::super::Sqlite::watched());
                }
            )*
        }
        mod memory {
            $(
                #[test]
                fn $name() {
                    super::super::$name(&super::super::Memory(goodseed_testkit::MemoryStore::new()));
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::super::$name(&super::super::Postgres::new());
                }
            )*
        }
    };
}

mod backends {
    conformance!(
        configs_round_trip,
        metrics_round_trip_with_overwrites,
        nan_is_data,
        text_series_paging,
        downsampling_reads_one_window,
        listing_and_summaries,
        trash_and_restore,
        stop_requests_reach_the_writer,
        not_found_is_typed,
        existing_run_is_not_overwritten,
        resume_continues,
        writing_after_close_fails,
        a_writer_dropped_unclosed_leaves_its_run_crashed,
        delete_refuses_untrashed_and_live_runs,
        integrity_check_passes_a_good_run,
        points_after_a_step,
        summaries_carry_tags,
        resume_follows_the_stores_rules,
        deleting_is_all_or_nothing,
        one_summary_without_a_listing,
        batches_read_back_from_outside_the_crate,
        text_is_searched_whole,
        uploads_are_read_in_order_and_marked_once,
        a_row_written_again_after_it_was_read_stays_pending,
        a_writer_marks_what_its_caller_vouches_for,
        every_value_round_trips_exactly,
        metrics_are_summarised,
        edits_reach_readers_listings_and_uploads_beside_a_writer,
        histograms_round_trip_or_are_refused_whole,
    );
}

fn histograms_round_trip_or_are_refused_whole(b: &impl Backend) {
    use goodseed_core::Histogram;
    let h = |c: f64| Histogram {
        kind: "COUNTING".into(),
        edges: vec![-0.5, 0.0, 1e-300],
        counts: vec![c, 1.5],
    };
    let mut w =
        b.create("p", "h", &finished_run("h", "2025-01-01T00:00:00+00:00")).expect("create");
    let mut batch = WriteBatch::new();
    batch.histogram(fp("w/fc"), step(1.0), h(2.0), TS);
    batch.histogram(fp("w/fc"), step(0.0), h(1.0), TS);
    batch.histogram(fp("w/fc"), step(1.0), h(3.0), TS + 1); // the same step later: wins
    batch.histogram(fp("a"), step(0.5), h(0.0), TS);
    let loss = batch.metric_series(&fp("loss"));
    batch.metric(loss, step(0.0), 1.0, TS);
    let result = w.write(&batch);
    let r = b.catalog().open_run(&pn("p"), &rid("h")).expect("open");
    if !b.store().keeps_histograms() {
        assert!(matches!(result, Err(StoreError::Unsupported { .. })), "{result:?}");
        assert_eq!(r.metric_count("loss").expect("count"), 0, "refused whole");
        assert_eq!(r.histogram_paths().expect("paths"), Vec::<String>::new());
        return;
    }
    result.expect("write");
    assert_eq!(r.histogram_paths().expect("paths"), ["a", "w/fc"]);
    let got = r.histograms("w/fc").expect("histograms");
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].step, got[0].ts, &got[0].histogram), (0.0, TS, &h(1.0)));
    assert_eq!((got[1].step, got[1].ts, &got[1].histogram), (1.0, TS + 1, &h(3.0)));
    assert_eq!(r.histograms("nope").expect("none"), []);

    // A histogram of the wrong shape: the whole batch refused, naming it.
    let mut bad = WriteBatch::new();
    let loss = bad.metric_series(&fp("loss"));
    bad.metric(loss, step(1.0), 0.5, TS);
    bad.histogram(
        fp("x"),
        step(0.0),
        Histogram { kind: String::new(), edges: vec![0.0], counts: vec![1.0] },
        TS,
    );
    match w.write(&bad) {
        Err(StoreError::BadRequest { reason }) => {
            assert!(
                reason.contains("histogram x at step 0") && reason.contains("needs 2 edges"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.metric_count("loss").expect("count"), 1);

    // Resumed, a step written again is replaced; the run keeps its histograms when closed.
    w.close().expect("close");
    let mut w = b.resume("p", "h").expect("resume");
    let mut again = WriteBatch::new();
    again.histogram(fp("w/fc"), step(0.0), h(9.0), TS + 9);
    w.write(&again).expect("write");
    w.close().expect("close");
    let r = b.catalog().open_run(&pn("p"), &rid("h")).expect("open");
    let got = r.histograms("w/fc").expect("histograms");
    assert_eq!(got.iter().map(|p| p.histogram.counts[0]).collect::<Vec<_>>(), [9.0, 3.0]);
}

fn configs_round_trip(b: &impl Backend) {
    let values = vec![
        ("b", ConfigValue::Bool(true)),
        ("i", ConfigValue::Int(-42)),
        (
            "big",
            ConfigValue::Raw { type_tag: "int".into(), value: Some("18446744073709551615".into()) },
        ),
        ("f", ConfigValue::Float(1e-5)),
        ("inf", ConfigValue::Float(f64::INFINITY)),
        ("s", ConfigValue::Str("héllo\nworld".into())),
        ("d", ConfigValue::DateTime("2025-01-02T03:04:05.000006+00:00".into())),
        ("n", ConfigValue::Null),
        ("tags", ConfigValue::StringSet(BTreeSet::from(["b".into(), "ä".into()]))),
        ("future", ConfigValue::Raw { type_tag: "tensor".into(), value: Some("[1]".into()) }),
        ("nested/deep/key", ConfigValue::Int(1)),
    ];
    let mut batch = new_run("r1", "2025-01-01T00:00:00+00:00");
    for (p, v) in &values {
        batch.config(fp(p), v.clone());
    }
    batch.config(fp("nan"), ConfigValue::Float(f64::NAN));
    let mut w = b.create("p", "r1", &batch).expect("create");
    // Overwrite one.
    let mut again = WriteBatch::new();
    again.config(fp("i"), ConfigValue::Int(7));
    w.write(&again).expect("write");
    assert_eq!(w.config(&fp("i")).expect("config"), Some(ConfigValue::Int(7)));
    assert_eq!(w.config(&fp("missing")).expect("config"), None);
    w.close().expect("close");

    let reader = b.catalog().open_run(&pn("p"), &rid("r1")).expect("open");
    let got = reader.configs().expect("configs");
    for (p, want) in &values {
        let want = if *p == "i" { ConfigValue::Int(7) } else { want.clone() };
        let found = got.iter().find(|(k, _)| k == p).map(|(_, v)| v.clone());
        assert_eq!(found, Some(want), "config {p}");
    }
    let nan = got.iter().find(|(k, _)| k == "nan").map(|(_, v)| v.clone());
    assert!(matches!(nan, Some(ConfigValue::Float(x)) if x.is_nan()), "{nan:?}");
}

/// Every value a run file holds reads back bit for bit: NaN, ±infinity and -0.0
/// values, fractional and 2^53 steps, every config type and unknown type tags, text
/// with NUL and unicode, unicode paths and meta.
fn every_value_round_trips_exactly(b: &impl Backend) {
    let mut batch = new_run("exact", "2025-01-01T00:00:00+00:00");
    batch.set_meta("name", "nul\0 and ☃");
    let values = [
        0.1,
        -0.0,
        0.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        5e-324,
        f64::MAX,
    ];
    let steps = [
        -1.5,
        0.25,
        1.0 / 3.0,
        1e-300,
        9_007_199_254_740_992.0,
        9_007_199_254_740_994.0,
        1e300,
        -0.0,
        7.0,
    ];
    let m = batch.metric_series(&fp("métriques/λ ☃"));
    for (s, v) in steps.iter().zip(values) {
        batch.metric(m, step(*s), v, -TS);
    }
    let t = batch.text_series(&fp("logs/日本"));
    batch.text(t, step(0.5), "a\0b \u{1F600} \r\n", i64::MAX);
    batch.text(t, step(9_007_199_254_740_992.0), "", i64::MIN);
    let configs = [
        ("c/int", ConfigValue::Int(i64::MIN)),
        ("c/float", ConfigValue::Float(-0.0)),
        ("c/tiny", ConfigValue::Float(5e-324)),
        ("c/str", ConfigValue::Str("nul\0 ☃".into())),
        ("c/empty", ConfigValue::Str(String::new())),
        ("c/bool", ConfigValue::Bool(false)),
        ("c/null", ConfigValue::Null),
        ("c/set", ConfigValue::StringSet(BTreeSet::from(["".into(), "z".into(), "日".into()]))),
        ("c/when", ConfigValue::DateTime("1999-12-31T23:59:59.999999+00:00".into())),
        (
            "c/unknown",
            ConfigValue::Raw { type_tag: "histogram".into(), value: Some("{\"b\":[1]}".into()) },
        ),
        // No value reads as null whatever the tag, as 0.4.0 reads it.
        ("c/unknown-none", ConfigValue::Null),
    ];
    for (p, v) in &configs {
        batch.config(fp(p), v.clone());
    }
    batch.config(fp("c/unknown-none"), ConfigValue::Raw { type_tag: "weird".into(), value: None });
    let mut w = b.create("p", "exact", &batch).expect("create");
    w.close().expect("close");

    let r = b.catalog().open_run(&pn("p"), &rid("exact")).expect("open");
    assert_eq!(r.meta().expect("meta").name(), Some("nul\0 and ☃"));
    let mut got = Vec::new();
    r.visit_metrics(Some("métriques/λ ☃"), &mut |_, p| {
        got.push((p.step.to_bits(), p.value.to_bits(), p.ts));
        true
    })
    .expect("visit");
    let mut want: Vec<(u64, u64, i64)> =
        steps.iter().zip(values).map(|(s, v)| (s.to_bits(), v.to_bits(), -TS)).collect();
    want.sort_by(|a, b| f64::from_bits(a.0).total_cmp(&f64::from_bits(b.0)));
    // -0.0 sorts before 0.0 under total_cmp but is the same step as nothing else here.
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(f64::from_bits(g.0), f64::from_bits(w.0), "step order");
        // Bit for bit, but for the sign of a zero: a run file's REAL column stores -0.0
        // as 0 (SQLite keeps integral reals as integers), so files cannot hold it.
        let (got, want) = (f64::from_bits(g.1), f64::from_bits(w.1));
        let same = g.1 == w.1 || (got == 0.0 && want == 0.0);
        assert!(
            same && g.2 == w.2,
            "step {}: {got:?} at {} for {want:?}",
            f64::from_bits(w.0),
            g.2
        );
    }
    assert_eq!(r.metric_count("métriques/λ ☃").expect("count"), steps.len() as u64);
    let page = r.text_points(Some("logs/日本"), TextWindow::All).expect("text");
    let texts: Vec<(f64, &str, i64)> =
        page.points.iter().map(|(_, p)| (p.step, p.value.as_str(), p.ts)).collect();
    assert_eq!(
        texts,
        [(0.5, "a\0b \u{1F600} \r\n", i64::MAX), (9_007_199_254_740_992.0, "", i64::MIN)]
    );
    let got = r.configs().expect("configs");
    for (p, want) in &configs {
        let found = got.iter().find(|(k, _)| k == p).map(|(_, v)| v.clone());
        match (want, &found) {
            (ConfigValue::Float(x), Some(ConfigValue::Float(y))) => {
                assert_eq!(x.to_bits(), y.to_bits(), "config {p}");
            }
            _ => assert_eq!(found.as_ref(), Some(want), "config {p}"),
        }
    }
    let listing = b.catalog().list_runs(None).expect("list");
    assert_eq!(listing.runs[0].metric_paths, ["métriques/λ ☃"]);
    assert_eq!(listing.runs[0].text_paths, ["logs/日本"]);
}

fn metrics_round_trip_with_overwrites(b: &impl Backend) {
    let mut batch = new_run("r1", "2025-01-01T00:00:00+00:00");
    let loss = batch.metric_series(&fp("train/loss"));
    let acc = batch.metric_series(&fp("val/acc"));
    for i in 0..100u32 {
        batch.metric(loss, Step::from(i), 1.0 / f64::from(i + 1), TS + i64::from(i));
    }
    batch.metric(acc, step(0.5), 0.25, TS);
    batch.metric(acc, step(-1.0), f64::NEG_INFINITY, TS);
    batch.metric(acc, step(0.5), 0.75, TS + 1); // same step later in the batch: wins
    let mut w = b.create("p", "r1", &batch).expect("create");
    let mut more = WriteBatch::new();
    let loss2 = more.metric_series(&fp("train/loss"));
    more.metric(loss2, Step::from(3u32), 42.0, TS + 500);
    let inf = more.metric_series(&fp("inf"));
    more.metric(inf, Step::ZERO, f64::INFINITY, TS);
    w.write(&more).expect("write");
    let last = w.last_steps().expect("last steps");
    assert_eq!(last.get("train/loss"), Some(&99.0));
    assert_eq!(last.get("val/acc"), Some(&0.5));
    w.close().expect("close");

    let r = b.catalog().open_run(&pn("p"), &rid("r1")).expect("open");
    assert_eq!(r.metric_paths().expect("paths"), ["inf", "train/loss", "val/acc"]);
    assert_eq!(r.metric_count("train/loss").expect("count"), 100);
    assert_eq!(r.metric_count("nope").expect("count"), 0);
    let mut acc_points = Vec::new();
    r.visit_metrics(Some("val/acc"), &mut |_, p| {
        acc_points.push((p.step, p.value, p.ts));
        true
    })
    .expect("visit");
    assert_eq!(acc_points, [(-1.0, f64::NEG_INFINITY, TS), (0.5, 0.75, TS + 1)]);
    let mut all = Vec::new();
    r.visit_metrics(None, &mut |path, p| {
        all.push((path.to_owned(), p.step));
        true
    })
    .expect("visit all");
    assert_eq!(all.len(), 103);
    assert_eq!(all[0], ("inf".to_owned(), 0.0));
    assert_eq!(all[4], ("train/loss".to_owned(), 3.0));
    let mut third = None;
    r.visit_metrics(Some("train/loss"), &mut |_, p| {
        third = Some(p.value);
        p.step < 3.0
    })
    .expect("visit");
    assert_eq!(third, Some(42.0), "overwrite of step 3 in a later batch, and early stop");
}

fn nan_is_data(b: &impl Backend) {
    let mut batch = new_run("r1", "2025-01-01T00:00:00+00:00");
    let loss = batch.metric_series(&fp("loss"));
    let only_nan = batch.metric_series(&fp("only_nan"));
    batch.metric(loss, Step::from(0u32), 1.0, TS);
    batch.metric(loss, Step::from(1u32), f64::NAN, TS);
    batch.metric(loss, Step::from(2u32), 0.5, TS);
    batch.metric(loss, Step::from(3u32), 0.25, TS);
    batch.metric(only_nan, Step::from(0u32), f64::NAN, TS);
    let mut w = b.create("p", "r1", &batch).expect("a NaN never fails the batch");
    // Overwrite a NaN with a value, and a value with a NaN.
    let mut more = WriteBatch::new();
    let loss = more.metric_series(&fp("loss"));
    more.metric(loss, Step::from(1u32), 0.75, TS);
    more.metric(loss, Step::from(3u32), f64::NAN, TS);
    more.metric(loss, Step::from(4u32), f64::NAN, TS);
    w.write(&more).expect("write");
    assert_eq!(w.last_steps().expect("last").get("loss"), Some(&4.0));
    w.close().expect("close");

    let r = b.catalog().open_run(&pn("p"), &rid("r1")).expect("open");
    assert_eq!(r.metric_paths().expect("paths"), ["loss", "only_nan"]);
    let mut got = Vec::new();
    r.visit_metrics(Some("loss"), &mut |_, p| {
        got.push(format!("{}={}", p.step, p.value));
        true
    })
    .expect("visit");
    assert_eq!(got, ["0=1", "1=0.75", "2=0.5", "3=NaN", "4=NaN"]);
    assert_eq!(r.metric_count("loss").expect("count"), 5);
    assert_eq!(r.metric_count("only_nan").expect("count"), 1);
    let last = r.last_metric_point("loss").expect("last").expect("a point");
    assert!(last.step == 4.0 && last.value.is_nan(), "the newest point is a NaN: {last:?}");
    let (window, sampled) = r
        .downsample_metric("loss", None, None, PointCount::new(2).expect("pc"))
        .expect("downsample");
    assert_eq!(window.total_count, 5);
    assert!(sampled.downsampled);
    let listing = b.catalog().list_runs(None).expect("list");
    assert_eq!(listing.runs[0].metric_paths, ["loss", "only_nan"]);
}

fn text_series_paging(b: &impl Backend) {
    let mut batch = new_run("r1", "2025-01-01T00:00:00+00:00");
    let out = batch.text_series(&fp("logs/stdout"));
    let err = batch.text_series(&fp("logs/stderr"));
    for i in 0..10u32 {
        batch.text(out, Step::from(i), format!("line {i}"), TS);
    }
    batch.text(err, Step::from(0u32), "oops", TS);
    batch.text(out, Step::from(9u32), "line 9 again", TS);
    let mut w = b.create("p", "r1", &batch).expect("create");
    w.close().expect("close");

    let r = b.catalog().open_run(&pn("p"), &rid("r1")).expect("open");
    assert_eq!(r.text_paths().expect("paths"), ["logs/stderr", "logs/stdout"]);
    let values = |path: Option<&str>, window| {
        let page = r.text_points(path, window).expect("text");
        (page.points.into_iter().map(|(_, p)| p.value).collect::<Vec<_>>(), page.total)
    };
    let (all, total) = values(Some("logs/stdout"), TextWindow::All);
    assert_eq!((all.len(), total), (10, 10));
    assert_eq!(all[9], "line 9 again");
    assert_eq!(
        values(Some("logs/stdout"), TextWindow::Page { limit: 2, offset: 3 }),
        (vec!["line 3".to_owned(), "line 4".to_owned()], 10)
    );
    assert_eq!(
        values(Some("logs/stdout"), TextWindow::Tail(2)),
        (vec!["line 8".to_owned(), "line 9 again".to_owned()], 10)
    );
    let (every, total) = values(None, TextWindow::All);
    assert_eq!((every[0].as_str(), total), ("oops", 11));
    // 0.4.0's tail over all series keeps path order and takes the last steps of the
    // first paths.
    assert_eq!(values(None, TextWindow::Tail(2)).0, ["oops", "line 9 again"]);
    assert_eq!(values(None, TextWindow::Page { limit: 1, offset: 1 }).0, ["line 0"]);
    assert_eq!(values(Some("nope"), TextWindow::All), (vec![], 0));

    // Ours: all series by step (ties by path), as a console interleaves them.
    let by_step = |window| {
        let page = r.text_points_in(None, window, TextOrder::Step).expect("text");
        let got = page.points.into_iter().map(|(path, p)| format!("{path}@{}={}", p.step, p.value));
        (got.collect::<Vec<_>>(), page.total)
    };
    let (every, total) = by_step(TextWindow::All);
    assert_eq!(total, 11);
    assert_eq!(every[..3], ["logs/stderr@0=oops", "logs/stdout@0=line 0", "logs/stdout@1=line 1"]);
    assert_eq!(
        by_step(TextWindow::Page { limit: 2, offset: 1 }).0,
        ["logs/stdout@0=line 0", "logs/stdout@1=line 1"]
    );
    assert_eq!(
        by_step(TextWindow::Tail(2)).0,
        ["logs/stdout@8=line 8", "logs/stdout@9=line 9 again"]
    );
    let filter = TextFilter { contains: Some("O".into()), min_level: None };
    let page = r.search_text_in(None, &filter, TextWindow::All, TextOrder::Step).expect("search");
    assert_eq!(page.total, 1, "only oops holds an o");
    // One series is in step order whatever the order asked.
    let one = r.text_points_in(Some("logs/stdout"), TextWindow::Tail(1), TextOrder::Step);
    assert_eq!(one.expect("text").points[0].1.value, "line 9 again");
}

fn downsampling_reads_one_window(b: &impl Backend) {
    let mut batch = new_run("r1", "2025-01-01T00:00:00+00:00");
    let s = batch.metric_series(&fp("x"));
    for i in 0..1000u32 {
        batch.metric(s, Step::from(i), f64::from(i), TS);
    }
    let mut w = b.create("p", "r1", &batch).expect("create");
    w.close().expect("close");
    let r = b.catalog().open_run(&pn("p"), &rid("r1")).expect("open");
    let pc = |n| PointCount::new(n).expect("pc");
    let (window, sampled) = r.downsample_metric("x", Some(100), Some(199), pc(10)).expect("ds");
    assert_eq!(
        (window.first_point_index, window.last_point_index, window.total_count),
        (100, 199, 1000)
    );
    assert!(sampled.downsampled);
    assert_eq!(sampled.points.first().map(|p| p.step), Some(100.0));
    assert_eq!(sampled.points.last().map(|p| p.step), Some(199.0));
    assert!(sampled.points.len() <= 12);
    let (_, raw) = r.downsample_metric("x", Some(-5), Some(3), pc(10)).expect("ds");
    assert_eq!(raw.points.iter().map(|p| p.step).collect::<Vec<_>>(), [0.0, 1.0, 2.0, 3.0]);
    assert!(!raw.downsampled);
    let (window, none) = r.downsample_metric("x", Some(5), Some(2), pc(10)).expect("ds");
    assert!(none.points.is_empty());
    assert_eq!((window.first_point_index, window.last_point_index), (5, 2));
    let (window, none) = r.downsample_metric("missing", None, None, pc(10)).expect("ds");
    assert_eq!((window.total_count, none.points.len()), (0, 0));
}

fn listing_and_summaries(b: &impl Backend) {
    let mut first = new_run("old", "2025-01-01T00:00:00+00:00");
    first.set_meta("name", "the first");
    let m = first.metric_series(&fp("m"));
    first.metric(m, Step::ZERO, 1.0, TS);
    b.create("p", "old", &first).expect("create").close().expect("close");
    let second = new_run("new", "2025-02-01T00:00:00+00:00");
    let mut live = b.create("p", "new", &second).expect("create");
    let other = new_run("x", "2025-03-01T00:00:00+00:00");
    b.create("team/vision", "x", &other).expect("create").close().expect("close");

    let listing = b.catalog().list_runs(None).expect("list");
    let ids: Vec<_> =
        listing.runs.iter().map(|r| (r.project.as_str(), r.run_id.as_str())).collect();
    assert_eq!(ids, [("team/vision", "x"), ("p", "new"), ("p", "old")], "newest first");
    assert!(listing.unreadable.is_empty(), "{:?}", listing.unreadable);
    let old = &listing.runs[2];
    assert_eq!(
        (old.meta.name(), old.metric_paths.as_slice()),
        (Some("the first"), &["m".to_owned()][..])
    );
    assert_eq!(old.status.as_str(), "running");

    let only_p = b.catalog().list_runs(Some(&pn("p"))).expect("list");
    assert_eq!(only_p.runs.len(), 2);
    let projects = b.catalog().list_projects().expect("projects");
    let mut names: Vec<_> = projects.iter().map(|p| (p.name.as_str(), p.run_count)).collect();
    names.sort_unstable();
    assert_eq!(names, [("p", 2), ("team/vision", 1)]);

    // A change is seen on the next listing.
    let mut finish = WriteBatch::new();
    finish.set_meta("status", "finished");
    live.write(&finish).expect("write");
    let listing = b.catalog().list_runs(Some(&pn("p"))).expect("list");
    assert_eq!(listing.runs[0].status.as_str(), "finished");
    live.close().expect("close");
}

fn summaries_carry_tags(b: &impl Backend) {
    let mut tagged = new_run("tagged", "2025-01-01T00:00:00+00:00");
    tagged.config(fp("sys/tags"), ConfigValue::StringSet(BTreeSet::from(["z".into(), "a".into()])));
    b.create("p", "tagged", &tagged).expect("create").close().expect("close");
    let mut odd = new_run("odd", "2025-01-02T00:00:00+00:00");
    odd.config(fp("sys/tags"), ConfigValue::Str("not a set".into()));
    b.create("p", "odd", &odd).expect("create").close().expect("close");
    b.create("p", "none", &finished_run("none", "2025-01-03T00:00:00+00:00"))
        .expect("create")
        .close()
        .expect("close");
    let tags = || -> Vec<(String, Vec<String>)> {
        let listing = b.catalog().list_runs(None).expect("list");
        listing.runs.iter().map(|r| (r.run_id.clone(), r.tags.clone())).collect()
    };
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        tags(),
        [("none".into(), s(&[])), ("odd".into(), s(&[])), ("tagged".into(), s(&["a", "z"]))]
    );
    // A change of tags is seen on the next listing.
    let mut w = b.resume("p", "none").expect("resume");
    let mut add = WriteBatch::new();
    add.config(fp("sys/tags"), ConfigValue::StringSet(BTreeSet::from(["new".into()])));
    w.write(&add).expect("write");
    w.close().expect("close");
    assert_eq!(tags()[0], ("none".into(), s(&["new"])));
}

fn trash_and_restore(b: &impl Backend) {
    b.create("p", "r1", &new_run("r1", "2025-01-01T00:00:00+00:00"))
        .expect("create")
        .close()
        .expect("close");
    let c = b.catalog();
    let trashed = || c.list_runs(None).expect("list").runs[0].meta.trashed();
    assert!(!trashed());
    c.set_trashed(&pn("p"), &rid("r1"), true).expect("trash");
    assert!(trashed());
    assert_eq!(
        c.open_run(&pn("p"), &rid("r1")).expect("open").meta().expect("meta").get("trashed"),
        Some("true")
    );
    c.set_trashed(&pn("p"), &rid("r1"), false).expect("restore");
    assert!(!trashed());
    c.set_trashed(&pn("p"), &rid("r1"), false).expect("restoring twice is fine");
}

fn stop_requests_reach_the_writer(b: &impl Backend) {
    let mut w = b.create("p", "r1", &new_run("r1", "2025-01-01T00:00:00+00:00")).expect("create");
    assert_eq!(w.meta("stop_requested_at").expect("meta"), None);
    assert_eq!(w.meta("status").expect("meta").as_deref(), Some("running"));
    let c = b.catalog();
    c.request_stop(&pn("p"), &rid("r1")).expect("request stop");
    let at = w.meta("stop_requested_at").expect("meta").expect("the writer sees the request");
    assert!(goodseed_core::time::UtcMicros::parse_iso8601(&at).is_some(), "an ISO 8601 time: {at}");
    // The writer keeps writing, and readers see the key too.
    let mut more = WriteBatch::new();
    more.set_meta("status", "finished");
    w.write(&more).expect("write after a stop request");
    w.close().expect("close");
    let meta = c.open_run(&pn("p"), &rid("r1")).expect("open").meta().expect("meta");
    assert_eq!(meta.get("stop_requested_at"), Some(at.as_str()));
    assert_eq!(meta.status(), Some("finished"));
    let err = c.request_stop(&pn("p"), &rid("nope")).expect_err("missing run");
    assert!(err.is_not_found(), "{err}");
    let err = w.meta("status").expect_err("closed");
    assert!(matches!(err, StoreError::Closed { .. }), "{err}");
}

fn edits_reach_readers_listings_and_uploads_beside_a_writer(b: &impl Backend) {
    use goodseed_store::lifecycle::RunEdit;
    let mut first = new_run("r1", "2025-01-01T00:00:00+00:00");
    first.config(
        goodseed_store::lifecycle::tags_path(),
        ConfigValue::StringSet(["old".to_owned()].into()),
    );
    let mut w = b.create("p", "r1", &first).expect("create");
    let c = b.catalog();
    let edit = RunEdit {
        name: Some("renamed".into()),
        description: Some("what it tries".into()),
        tags: Some(["x".to_owned(), "y".to_owned()].into()),
        note: Some("lr too high: diverged at 3k".into()),
    };
    c.edit_run(&pn("p"), &rid("r1"), &edit).expect("edit beside the writer");
    // The writer goes on.
    let mut more = WriteBatch::new();
    more.config(fp("lr"), ConfigValue::Float(0.1));
    w.write(&more).expect("write after an edit");
    w.close().expect("close");
    let r = c.open_run(&pn("p"), &rid("r1")).expect("open");
    assert_eq!(r.meta().expect("meta").name(), Some("renamed"));
    let configs: std::collections::HashMap<String, ConfigValue> =
        r.configs().expect("configs").into_iter().collect();
    assert_eq!(configs["sys/name"], ConfigValue::Str("renamed".into()));
    assert_eq!(configs["sys/description"], ConfigValue::Str("what it tries".into()));
    assert_eq!(
        configs["sys/tags"],
        ConfigValue::StringSet(["x".to_owned(), "y".to_owned()].into())
    );
    assert_eq!(configs["sys/note"], ConfigValue::Str("lr too high: diverged at 3k".into()));
    assert_eq!(configs["lr"], ConfigValue::Float(0.1));
    let listed = c.list_runs(Some(&pn("p"))).expect("list");
    assert_eq!(listed.runs[0].tags, ["x", "y"]);
    assert_eq!(listed.runs[0].meta.name(), Some("renamed"));
    // Only what the edit names changes; an edit of tags alone keeps the rest.
    c.edit_run(
        &pn("p"),
        &rid("r1"),
        &RunEdit { tags: Some(Default::default()), ..RunEdit::default() },
    )
    .expect("clear the tags");
    let r = c.open_run(&pn("p"), &rid("r1")).expect("open");
    let configs: std::collections::HashMap<String, ConfigValue> =
        r.configs().expect("configs").into_iter().collect();
    assert_eq!(configs["sys/tags"], ConfigValue::StringSet(Default::default()));
    assert_eq!(configs["sys/name"], ConfigValue::Str("renamed".into()));
    // A sync sends the edit.
    let mut u = c.open_uploads(&pn("p"), &rid("r1")).expect("uploads");
    let pending = all_pending(&mut *u, 100);
    assert!(pending.configs.iter().any(|p| p.path == "sys/note"), "the note is pending upload");
    // Bad edits and missing runs.
    let bad = RunEdit { name: Some(String::new()), ..RunEdit::default() };
    let err = c.edit_run(&pn("p"), &rid("r1"), &bad).expect_err("empty name");
    assert!(matches!(err, StoreError::BadRequest { .. }), "{err}");
    let err = c.edit_run(&pn("p"), &rid("nope"), &edit).expect_err("missing run");
    assert!(err.is_not_found(), "{err}");
}

fn not_found_is_typed(b: &impl Backend) {
    let c = b.catalog();
    let err = c.open_run(&pn("p"), &rid("nope")).expect_err("missing run");
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.to_string(), "run not found: p/nope");
    let err = c.set_trashed(&pn("p"), &rid("nope"), true).expect_err("missing run");
    assert!(err.is_not_found(), "{err}");
    assert!(c.list_runs(None).expect("list").runs.is_empty());
}

fn existing_run_is_not_overwritten(b: &impl Backend) {
    let mut first = new_run("r1", "2025-01-01T00:00:00+00:00");
    first.config(fp("keep"), ConfigValue::Int(1));
    b.create("p", "r1", &first).expect("create").close().expect("close");
    let err = b.create("p", "r1", &new_run("r1", "2026-01-01T00:00:00+00:00")).expect_err("exists");
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    let r = b.catalog().open_run(&pn("p"), &rid("r1")).expect("open");
    assert_eq!(r.configs().expect("configs").len(), 1, "the first run is intact");
}

fn resume_continues(b: &impl Backend) {
    let mut first = finished_run("r1", "2025-01-01T00:00:00+00:00");
    let s = first.metric_series(&fp("loss"));
    first.metric(s, Step::from(5u32), 1.0, TS);
    b.create("p", "r1", &first).expect("create").close().expect("close");
    let mut w = b.resume("p", "r1").expect("resume");
    assert_eq!(w.last_steps().expect("last").get("loss"), Some(&5.0));
    let mut more = WriteBatch::new();
    let s = more.metric_series(&fp("loss"));
    more.metric(s, Step::from(6u32), 2.0, TS);
    w.write(&more).expect("write");
    w.close().expect("close");
    let r = b.catalog().open_run(&pn("p"), &rid("r1")).expect("open");
    assert_eq!(r.metric_count("loss").expect("count"), 2);
    assert!(b.resume("p", "missing").is_err());
}

fn writing_after_close_fails(b: &impl Backend) {
    let mut w = b.create("p", "r1", &new_run("r1", "2025-01-01T00:00:00+00:00")).expect("create");
    w.close().expect("close");
    w.close().expect("closing twice is fine");
    let mut batch = WriteBatch::new();
    batch.set_meta("x", "y");
    let err = w.write(&batch).expect_err("closed");
    assert!(matches!(err, StoreError::Closed { .. }), "{err}");
}

/// A writer that goes away without closing (the SDK's writer when it gives up on a run
/// it cannot write, or a thread that panicked) leaves what it committed and lets the run
/// show as crashed, never `running` with nobody writing it; the run can be resumed.
fn a_writer_dropped_unclosed_leaves_its_run_crashed(b: &impl Backend) {
    use goodseed_core::RunStatus;
    let mut w = b.create("p", "r1", &new_run("r1", "2025-01-01T00:00:00+00:00")).expect("create");
    let mut batch = WriteBatch::new();
    let s = batch.metric_series(&fp("loss"));
    batch.metric(s, step(0.0), 1.5, TS);
    w.write(&batch).expect("write");
    let status =
        |b: &dyn RunStore| b.run_summary(&pn("p"), &rid("r1")).expect("summary").status.clone();
    assert_eq!(status(b.catalog()), RunStatus::Running);
    drop(w);
    assert_eq!(status(b.catalog()), RunStatus::Crashed);
    let r = b.catalog().open_run(&pn("p"), &rid("r1")).expect("open");
    let mut points = Vec::new();
    r.visit_metrics(Some("loss"), &mut |_, p| {
        points.push((p.step, p.value));
        true
    })
    .expect("read");
    assert_eq!(points, [(0.0, 1.5)]);
    let mut w = b.resume("p", "r1").expect("a crashed run can be resumed");
    let mut end = WriteBatch::new();
    end.set_meta("status", "finished");
    w.write(&end).expect("write");
    w.close().expect("close");
    assert_eq!(status(b.catalog()), RunStatus::Finished);
}

fn delete_refuses_untrashed_and_live_runs(b: &impl Backend) {
    let c = b.catalog();
    let mut closed = new_run("closed", "2025-01-01T00:00:00+00:00");
    closed.set_meta("status", "finished");
    b.create("p", "closed", &closed).expect("create").close().expect("close");
    let mut live =
        b.create("p", "live", &new_run("live", "2025-01-02T00:00:00+00:00")).expect("create");

    let err = c.delete_run(&pn("p"), &rid("closed")).expect_err("not trashed");
    assert!(matches!(err, StoreError::NotTrashed { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "run p/closed is not in the trash; only trashed runs can be deleted"
    );
    c.set_trashed(&pn("p"), &rid("live"), true).expect("trash while live");
    let err = c.delete_run(&pn("p"), &rid("live")).expect_err("live");
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    let err = c.delete_run(&pn("p"), &rid("nope")).expect_err("missing");
    assert!(err.is_not_found(), "{err}");
    let ids = |c: &dyn RunStore| -> Vec<String> {
        c.list_runs(None).expect("list").runs.iter().map(|r| r.run_id.clone()).collect()
    };
    assert_eq!(ids(c), ["live", "closed"], "nothing was deleted");
    let mut more = WriteBatch::new();
    more.set_meta("x", "still writing");
    live.write(&more).expect("the live writer goes on");

    // Readers and listings of a run do not keep it from being deleted, nor outlive it.
    c.open_run(&pn("p"), &rid("closed")).expect("open").meta().expect("meta");
    c.set_trashed(&pn("p"), &rid("closed"), true).expect("trash");
    c.delete_run(&pn("p"), &rid("closed")).expect("delete a trashed run");
    assert_eq!(ids(c), ["live"]);
    assert!(c.open_run(&pn("p"), &rid("closed")).expect_err("gone").is_not_found());
    assert!(c.delete_run(&pn("p"), &rid("closed")).expect_err("gone").is_not_found());

    // Once its writer has closed, the trashed run can go too.
    live.close().expect("close");
    c.delete_run(&pn("p"), &rid("live")).expect("delete after close");
    assert!(ids(c).is_empty());
}

fn integrity_check_passes_a_good_run(b: &impl Backend) {
    let mut batch = new_run("r1", "2025-01-01T00:00:00+00:00");
    let m = batch.metric_series(&fp("m"));
    for i in 0..1000u32 {
        batch.metric(m, Step::from(i), f64::from(i), TS);
    }
    batch.metric(m, Step::from(1000u32), f64::NAN, TS);
    let mut w = b.create("p", "r1", &batch).expect("create");
    let live = b.catalog().open_run(&pn("p"), &rid("r1")).expect("open");
    assert_eq!(live.integrity_check().expect("check while live"), ["ok"]);
    w.close().expect("close");
    let closed = b.catalog().open_run(&pn("p"), &rid("r1")).expect("open");
    assert_eq!(closed.integrity_check().expect("check"), ["ok"]);
}

/// One write in a generated history: (series 0..3, step 0..40, value or NaN).
type Op = (u8, u8, Option<i16>);

/// Any history of batches reads back as a model map says: last write per (series, step)
/// wins across and within batches, NaN included, in step order, with the right counts.
pub(crate) fn matches_model(b: &impl Backend, batches: &[Vec<Op>]) {
    use std::collections::BTreeMap;
    let mut model: BTreeMap<(u8, u8), f64> = BTreeMap::new();
    let mut writer: Option<Box<dyn RunWriter>> = None;
    for ops in batches {
        let mut batch = if writer.is_none() {
            new_run("r1", "2025-01-01T00:00:00+00:00")
        } else {
            WriteBatch::new()
        };
        for &(series, s, value) in ops {
            let r = batch.metric_series(&fp(&format!("s{series}")));
            let v = value.map_or(f64::NAN, f64::from);
            batch.metric(r, Step::from(s), v, TS);
            model.insert((series, s), v);
        }
        match &mut writer {
            None => writer = Some(b.create("p", "r1", &batch).expect("create")),
            Some(w) => w.write(&batch).expect("write"),
        }
    }
    if let Some(mut w) = writer {
        w.close().expect("close");
    } else {
        return;
    }
    let r = b.catalog().open_run(&pn("p"), &rid("r1")).expect("open");
    let mut got: Vec<String> = Vec::new();
    r.visit_metrics(None, &mut |path, p| {
        got.push(format!("{path}@{}={}", p.step, p.value));
        true
    })
    .expect("visit");
    let want: Vec<String> =
        model.iter().map(|((series, s), v)| format!("s{series}@{s}={v}")).collect();
    assert_eq!(got, want);
    for series in 0..3u8 {
        let n = model.keys().filter(|(s, _)| *s == series).count() as u64;
        assert_eq!(r.metric_count(&format!("s{series}")).expect("count"), n);
    }
}

mod sqlite_model {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn histories_read_back_as_the_model_says(
            batches in proptest::collection::vec(
                proptest::collection::vec((0u8..3, 0u8..40, proptest::option::weighted(0.9, any::<i16>())), 0..160),
                1..5,
            )
        ) {
            super::matches_model(&super::Sqlite::new(), &batches);
            super::matches_model(&super::Memory(goodseed_testkit::MemoryStore::new()), &batches);
            super::matches_model(&super::Postgres::new(), &batches);
        }
    }
}

fn points_after_a_step(b: &impl Backend) {
    let mut batch = new_run("r1", "2025-01-01T00:00:00+00:00");
    let s = batch.metric_series(&fp("x"));
    for i in 0..10u32 {
        batch.metric(s, Step::from(i), if i == 7 { f64::NAN } else { f64::from(i) }, TS);
    }
    b.create("p", "r1", &batch).expect("create").close().expect("close");
    let r = b.catalog().open_run(&pn("p"), &rid("r1")).expect("open");
    let after = |from: Option<f64>| {
        let mut steps = Vec::new();
        r.visit_metrics_after("x", from, &mut |p| {
            steps.push(p.step);
            true
        })
        .expect("visit");
        steps
    };
    assert_eq!(after(None).len(), 10);
    assert_eq!(after(Some(6.0)), [7.0, 8.0, 9.0], "NaN points included");
    assert_eq!(after(Some(6.5)), [7.0, 8.0, 9.0]);
    assert!(after(Some(9.0)).is_empty());
    let last = r.last_metric_point("x").expect("last").expect("a point");
    assert_eq!((last.step, last.value, last.ts), (9.0, 9.0, TS));
    assert_eq!(r.last_metric_point("missing").expect("last"), None);
    let mut none = 0;
    r.visit_metrics_after("missing", None, &mut |_| {
        none += 1;
        true
    })
    .expect("visit");
    assert_eq!(none, 0);
}

fn resume_follows_the_stores_rules(b: &impl Backend) {
    // A live writer keeps the run: no second writer.
    let mut live =
        b.create("p", "live", &new_run("live", "2025-01-01T00:00:00+00:00")).expect("create");
    let err = b.resume("p", "live").expect_err("live");
    assert!(matches!(err, StoreError::Live { .. }), "{err}");
    assert!(err.is_busy());
    // Closed but still `running`, with nothing to tell its writer is gone (goodseed
    // 0.4.0's runs): refused too.
    live.close().expect("close");
    let err = b.resume("p", "live").expect_err("running, unknown writer");
    assert!(err.to_string().contains("(its status is running)"), "{err}");
    // A closed run resumes; the resumed writer holds it in turn.
    b.create("p", "done", &finished_run("done", "2025-01-02T00:00:00+00:00"))
        .expect("create")
        .close()
        .expect("close");
    let mut w = b.resume("p", "done").expect("resume a finished run");
    let err = b.resume("p", "done").expect_err("held by the resumed writer");
    assert!(matches!(err, StoreError::Live { .. }), "{err}");
    w.close().expect("close");
    let err = b.resume("p", "missing").expect_err("missing");
    assert!(err.is_not_found(), "{err}");
    // Released (let go without ending it, as a writer that died): everything written is
    // there, the run reads as crashed, and it resumes.
    let mut first = new_run("let-go", "2025-01-03T00:00:00+00:00");
    let m = first.metric_series(&fp("m"));
    first.metric(m, step(0.0), 1.0, 0);
    let mut held = b.create("p", "let-go", &first).expect("create");
    held.release().expect("release");
    held.release().expect("releasing twice is not an error");
    let s = b.store().run_summary(&pn("p"), &rid("let-go")).expect("summary");
    assert_eq!((s.status.as_str(), s.meta.status()), ("crashed", Some("running")));
    let r = b.store().open_run(&pn("p"), &rid("let-go")).expect("open");
    assert_eq!(r.metric_count("m").expect("count"), 1);
    let mut again = b.resume("p", "let-go").expect("a released run resumes");
    let err = b.resume("p", "let-go").expect_err("held again");
    assert!(matches!(err, StoreError::Live { .. }), "{err}");
    again.close().expect("close");
    // Ids: taken once, whatever the run holds.
    assert!(b.store().run_exists(&pn("p"), &rid("done")).expect("exists"));
    assert!(!b.store().run_exists(&pn("p"), &rid("nope")).expect("exists"));
    assert!(!b.store().run_exists(&pn("q"), &rid("done")).expect("exists"), "per project");
}

fn deleting_is_all_or_nothing(b: &impl Backend) {
    let c = b.catalog();
    for id in ["a", "b", "c"] {
        b.create("p", id, &finished_run(id, "2025-01-01T00:00:00+00:00"))
            .expect("create")
            .close()
            .expect("close");
    }
    c.set_trashed(&pn("p"), &rid("a"), true).expect("trash");
    c.set_trashed(&pn("p"), &rid("b"), true).expect("trash");
    let refs = |ids: &[&str]| -> Vec<goodseed_core::RunRef> {
        ids.iter().map(|id| goodseed_core::RunRef::new(pn("p"), rid(id))).collect()
    };
    // One not in the trash, one missing: nothing goes.
    let err = c.delete_runs(&refs(&["a", "b", "c"])).expect_err("c is not trashed");
    assert!(matches!(err, StoreError::NotTrashed { .. }), "{err}");
    let err = c.delete_runs(&refs(&["a", "nope"])).expect_err("nope is missing");
    assert!(err.is_not_found(), "{err}");
    assert_eq!(c.list_runs(None).expect("list").runs.len(), 3, "nothing was deleted");
    c.delete_runs(&refs(&["a", "b", "a"])).expect("both trashed (a named twice)");
    let left: Vec<String> =
        c.list_runs(None).expect("list").runs.iter().map(|r| r.id.clone()).collect();
    assert_eq!(left, ["c"]);
    c.delete_runs(&[]).expect("nothing to delete");
}

fn one_summary_without_a_listing(b: &impl Backend) {
    let c = b.catalog();
    let mut first = new_run("r1", "2025-01-01T00:00:00+00:00");
    first.set_meta("name", "one");
    first.config(fp("sys/tags"), ConfigValue::StringSet(BTreeSet::from(["t".into()])));
    let m = first.metric_series(&fp("m"));
    first.metric(m, Step::ZERO, 1.0, TS);
    let mut w = b.create("team/p", "r1", &first).expect("create");
    let live = c.run_summary(&pn("team/p"), &rid("r1")).expect("summary");
    let listed = c.list_runs(Some(&pn("team/p"))).expect("list").runs[0].clone();
    assert_eq!(*live, *listed, "the same summary as the listing's");
    assert_eq!((live.id.as_str(), live.run_id.as_str()), ("r1", "r1"));
    assert_eq!((live.meta.name(), live.tags.as_slice()), (Some("one"), &["t".to_owned()][..]));
    assert_eq!(live.version, None, "a run being written has no version");
    assert!(!live.location.is_empty());
    let mut done = WriteBatch::new();
    done.set_meta("status", "finished");
    w.write(&done).expect("write");
    w.close().expect("close");
    let closed = c.run_summary(&pn("team/p"), &rid("r1")).expect("summary");
    assert_eq!(closed.status.as_str(), "finished");
    let version = closed.version.expect("a closed run has a version");
    let reader = c.open_run(&pn("team/p"), &rid("r1")).expect("open");
    assert_eq!(reader.version(), Some(version), "reader and summary agree");
    // A change makes a new version.
    c.set_trashed(&pn("team/p"), &rid("r1"), true).expect("trash");
    let trashed = c.run_summary(&pn("team/p"), &rid("r1")).expect("summary");
    assert!(trashed.meta.trashed());
    assert_ne!(trashed.version, Some(version));
    let err = c.run_summary(&pn("team/p"), &rid("nope")).expect_err("missing");
    assert!(err.is_not_found(), "{err}");
    assert!(c.run_summary(&pn("p"), &rid("r1")).expect_err("other project").is_not_found());
    c.check_available().expect("the store is there");
}

/// A backend in another crate (a remote writer, say) sees a batch as it was built.
fn batches_read_back_from_outside_the_crate(b: &impl Backend) {
    let mut batch = new_run("r1", "2025-01-01T00:00:00+00:00");
    batch.delete_meta("gone");
    batch.config(fp("lr"), ConfigValue::Float(0.1));
    let loss = batch.metric_series(&fp("loss"));
    batch.metric(loss, Step::from(2u32), 0.5, TS);
    let out = batch.text_series(&fp("out"));
    batch.text(out, Step::ZERO, "hi", TS + 1);
    let meta: Vec<_> = batch.meta_entries().collect();
    assert_eq!(meta.last(), Some(&("gone", None)));
    assert_eq!(meta[0], ("run_id", Some("r1")));
    let configs: Vec<_> = batch.config_entries().map(|(p, v)| (p.as_str(), v.clone())).collect();
    assert_eq!(configs, [("lr", ConfigValue::Float(0.1))]);
    let metrics: Vec<_> =
        batch.metric_entries().map(|(p, r)| (p.as_str(), r.step.get(), r.value, r.ts)).collect();
    assert_eq!(metrics, [("loss", 2.0, 0.5, TS)]);
    let texts: Vec<_> =
        batch.text_entries().map(|(p, r)| (p.as_str(), r.value.as_str(), r.ts)).collect();
    assert_eq!(texts, [("out", "hi", TS + 1)]);
    assert_eq!(batch.metric_paths(), [fp("loss")]);
    assert_eq!(batch.text_paths(), [fp("out")]);
    // And the store writes what the batch says.
    b.create("p", "r1", &batch).expect("create").close().expect("close");
    let r = b.catalog().open_run(&pn("p"), &rid("r1")).expect("open");
    assert_eq!(r.metric_count("loss").expect("count"), 1);
    assert_eq!(r.text_points(Some("out"), TextWindow::All).expect("text").total, 1);
}

fn text_is_searched_whole(b: &impl Backend) {
    use goodseed_store::{LogLevel, TextFilter};
    let mut batch = new_run("r1", "2025-01-01T00:00:00+00:00");
    let log = batch.text_series(&fp("logs/tracing"));
    let out = batch.text_series(&fp("logs/stdout"));
    let levels = ["INFO", "DEBUG", "WARN", "ERROR", "TRACE"];
    for i in 0..25_000u32 {
        let level = levels[i as usize % levels.len()];
        batch.text(log, Step::from(i), format!("{level} train: step {i} loss Low"), TS);
    }
    batch.text(out, Step::ZERO, "printed: LOSS low", TS);
    b.create("p", "r1", &batch).expect("create").close().expect("close");
    let r = b.catalog().open_run(&pn("p"), &rid("r1")).expect("open");
    let search = |path: Option<&str>, contains: Option<&str>, level: Option<LogLevel>, window| {
        let filter = TextFilter { contains: contains.map(str::to_owned), min_level: level };
        let page = r.search_text(path, &filter, window).expect("search");
        (page.points.into_iter().map(|(_, p)| p.value).collect::<Vec<_>>(), page.total)
    };
    // Case-insensitive, across pages the search reads on its own, in every series.
    let (found, total) =
        search(None, Some("loss low"), None, TextWindow::Page { limit: 2, offset: 0 });
    assert_eq!(total, 25_001);
    assert_eq!(found.len(), 2);
    // At or above a level: ERROR and WARN.
    let (found, total) =
        search(Some("logs/tracing"), None, Some(LogLevel::Warn), TextWindow::Tail(2));
    assert_eq!(total, 10_000);
    assert_eq!(found, ["WARN train: step 24997 loss Low", "ERROR train: step 24998 loss Low"]);
    let (found, total) =
        search(Some("logs/tracing"), Some("step 2499"), Some(LogLevel::Error), TextWindow::All);
    let want = ["ERROR train: step 24993 loss Low", "ERROR train: step 24998 loss Low"];
    assert_eq!((found, total), (want.map(str::to_owned).to_vec(), 2));
    let (found, total) = search(Some("logs/tracing"), Some("absent"), None, TextWindow::All);
    assert_eq!((found.len(), total), (0, 0));
    let (found, _) = search(Some("logs/stdout"), None, Some(LogLevel::Trace), TextWindow::All);
    assert!(found.is_empty(), "a line without a level is not a log line of any level");
    let (found, total) =
        search(Some("logs/tracing"), None, None, TextWindow::Page { limit: 3, offset: 24_998 });
    assert_eq!((found.len(), total), (2, 25_000));
}

/// Everything pending of a run, read in batches of `limit` points.
fn all_pending(
    u: &mut dyn goodseed_store::uploads::RunUploads,
    limit: usize,
) -> goodseed_store::uploads::Pending {
    let mut all = goodseed_store::uploads::Pending::default();
    loop {
        let p = u.pending(limit).expect("pending");
        assert!(p.metrics.len() + p.texts.len() <= limit, "at most the limit");
        if p.metrics.is_empty() && p.texts.is_empty() {
            all.configs = p.configs;
            return all;
        }
        if all.metrics.is_empty() && all.texts.is_empty() {
            // As the first rows were read: a mark checks what changed since.
            all.read_at = p.read_at;
        }
        all.metrics.extend(p.metrics);
        all.texts.extend(p.texts);
    }
}

fn uploads_are_read_in_order_and_marked_once(b: &impl Backend) {
    let mut first = new_run("up", "2025-01-01T00:00:00+00:00");
    first.config(fp("lr"), ConfigValue::Float(0.1));
    let m = first.metric_series(&fp("loss"));
    for i in 0..10 {
        first.metric(m, step(f64::from(i)), f64::from(i) / 10.0, TS + i64::from(i));
    }
    first.metric(m, step(10.0), f64::NAN, TS);
    let t = first.text_series(&fp("log"));
    first.text(t, step(0.5), "line ☃", TS);
    let mut w = b.create("p", "up", &first).expect("create");
    let mut u = b.store().open_uploads(&pn("p"), &rid("up")).expect("uploads");
    assert_eq!(u.count_pending().expect("count"), 13);
    let all = all_pending(&mut *u, 4);
    assert_eq!(all.configs.len(), 1);
    assert_eq!((all.configs[0].path.as_str(), all.configs[0].type_tag.as_str()), ("lr", "float"));
    assert_eq!(all.configs[0].value.as_deref(), Some("0.1"));
    let steps: Vec<f64> = all.metrics.iter().map(|p| p.step).collect();
    assert_eq!(steps, (0..=10).map(f64::from).collect::<Vec<_>>(), "in the order written");
    assert!(all.metrics[10].value.is_nan(), "NaN points are pending too");
    assert_eq!(
        (all.metrics[3].value, all.metrics[3].ts, &*all.metrics[3].path),
        (0.3, TS + 3, "loss")
    );
    assert_eq!(all.texts.len(), 1);
    assert_eq!((all.texts[0].step, all.texts[0].value.as_str()), (0.5, "line ☃"));
    // Read past the end: nothing more until it starts over.
    assert!(u.pending(100).expect("pending").metrics.is_empty());
    assert_eq!(u.mark_uploaded(&all).expect("mark"), 13);
    assert_eq!(u.count_pending().expect("count"), 0);
    assert_eq!(u.mark_uploaded(&all).expect("mark again"), 0, "marked once");
    // New rows after the marks are pending; a second handle (a later `goodseed sync`)
    // sees the marks.
    let mut more = WriteBatch::new();
    let m = more.metric_series(&fp("loss"));
    more.metric(m, step(11.0), 1.1, TS);
    w.write(&more).expect("write");
    w.close().expect("close");
    let mut later = b.store().open_uploads(&pn("p"), &rid("up")).expect("uploads");
    assert_eq!(later.count_pending().expect("count"), 1);
    let p = all_pending(&mut *later, 100);
    assert_eq!((p.configs.len(), p.metrics.len(), p.metrics[0].step), (0, 1, 11.0));
    assert_eq!(later.mark_uploaded(&p).expect("mark"), 1);
    assert_eq!(later.count_pending().expect("count"), 0);
    // The data itself is unchanged by the marks.
    let r = b.store().open_run(&pn("p"), &rid("up")).expect("open");
    assert_eq!(r.metric_count("loss").expect("count"), 12);
    let err = b.store().open_uploads(&pn("p"), &rid("nope")).expect_err("missing");
    assert!(err.is_not_found(), "{err}");
}

/// A live run's writer marks a batch its sync read, without reading it again, when the
/// caller vouches nothing of it was written again; rows written after the read (past the
/// batch) stay pending. A backend that cannot says so, and the reader marks instead.
fn a_writer_marks_what_its_caller_vouches_for(b: &impl Backend) {
    let mut first = new_run("vouched", "2025-01-01T00:00:00+00:00");
    let m = first.metric_series(&fp("m"));
    let t = first.text_series(&fp("t"));
    for i in 0..5 {
        first.metric(m, step(f64::from(i)), if i == 2 { f64::NAN } else { 1.0 }, TS);
        first.text(t, step(f64::from(i)), format!("line {i}"), TS);
    }
    first.config(fp("c"), ConfigValue::Int(1));
    let mut w = b.create("p", "vouched", &first).expect("create");
    let mut u = b.store().open_uploads(&pn("p"), &rid("vouched")).expect("uploads");
    let sent = all_pending(&mut *u, 100);
    assert_eq!(sent.len(), 11);
    let mut later = WriteBatch::new();
    let m = later.metric_series(&fp("m"));
    later.metric(m, step(5.0), 2.0, TS);
    w.write(&later).expect("write");
    let marked = match w.mark_uploaded_unchanged(&sent).expect("mark") {
        Some(n) => n,
        None => u.mark_uploaded(&sent).expect("mark"),
    };
    assert_eq!(marked, 11);
    assert_eq!(u.count_pending().expect("count"), 1, "the point written after the read");
    w.close().expect("close");
    let r = b.store().open_run(&pn("p"), &rid("vouched")).expect("open");
    assert_eq!(r.metric_count("m").expect("count"), 6, "marks change no data");
}

fn a_row_written_again_after_it_was_read_stays_pending(b: &impl Backend) {
    let mut first = new_run("again", "2025-01-01T00:00:00+00:00");
    let m = first.metric_series(&fp("m"));
    for i in 0..5 {
        first.metric(m, step(f64::from(i)), 1.0, TS);
    }
    first.config(fp("c"), ConfigValue::Int(1));
    let mut w = b.create("p", "again", &first).expect("create");
    let mut u = b.store().open_uploads(&pn("p"), &rid("again")).expect("uploads");
    let sent = all_pending(&mut *u, 100);
    assert_eq!(sent.len(), 6);
    // While the batch is on its way, the trainer writes step 2 and the config again.
    let mut again = WriteBatch::new();
    let m = again.metric_series(&fp("m"));
    again.metric(m, step(2.0), 9.0, TS);
    again.config(fp("c"), ConfigValue::Int(2));
    w.write(&again).expect("write");
    assert_eq!(u.mark_uploaded(&sent).expect("mark"), 4, "the unchanged rows only");
    assert_eq!(u.count_pending().expect("count"), 2);
    // The new value is found (from the start), sent and marked.
    u.rewind();
    let next = all_pending(&mut *u, 100);
    assert_eq!(next.configs.len(), 1);
    assert_eq!(next.configs[0].value.as_deref(), Some("2"));
    assert_eq!(next.metrics.len(), 1);
    assert_eq!((next.metrics[0].step, next.metrics[0].value), (2.0, 9.0));
    assert_eq!(u.mark_uploaded(&next).expect("mark"), 2);
    assert_eq!(u.count_pending().expect("count"), 0);
    // Read by one reader and marked by another (a live run's writer thread marks what
    // its sync thread read): the rewritten row is still found and left pending.
    let mut reader = b.store().open_uploads(&pn("p"), &rid("again")).expect("uploads");
    let mut marker = b.store().open_uploads(&pn("p"), &rid("again")).expect("uploads");
    let mut more = WriteBatch::new();
    let m = more.metric_series(&fp("m"));
    for i in 5..8 {
        more.metric(m, step(f64::from(i)), 1.0, TS);
    }
    w.write(&more).expect("write");
    let sent = all_pending(&mut *reader, 100);
    assert_eq!(sent.metrics.len(), 3);
    let mut again = WriteBatch::new();
    let m = again.metric_series(&fp("m"));
    again.metric(m, step(6.0), 7.0, TS);
    w.write(&again).expect("write");
    assert_eq!(marker.mark_uploaded(&sent).expect("mark"), 2, "the unchanged rows only");
    assert_eq!(marker.count_pending().expect("count"), 1);
    w.close().expect("close");
}

/// Each metric at a glance: in the listing where the backend keeps it, and through
/// `MetricSummary::of_run` everywhere (what the server reads when it does not); a live
/// run's summary follows its writes.
fn metrics_are_summarised(b: &impl Backend) {
    use goodseed_store::MetricSummary;
    let mut w = b.create("p", "r1", &new_run("r1", "2025-01-01T00:00:00+00:00")).expect("create");
    let write = |w: &mut Box<dyn RunWriter>, points: &[(u32, f64)]| {
        let mut batch = WriteBatch::new();
        let acc = batch.metric_series(&fp("val/acc"));
        let cpu = batch.metric_series(&fp("monitoring/abc/cpu"));
        // A series whose first values are not finite: its min and max come later.
        let late = batch.metric_series(&fp("val/late"));
        for &(s, v) in points {
            batch.metric(acc, Step::from(s), v, TS);
            batch.metric(cpu, Step::from(s), 50.0, TS);
            batch.metric(late, Step::from(s), if s < 5 { f64::NAN } else { -v }, TS);
        }
        w.write(&batch).expect("write");
    };
    let check = |want: &MetricSummary, after: &str| {
        let same = |got: &MetricSummary| {
            let eq = |x: f64, y: f64| x == y || (x.is_nan() && y.is_nan());
            eq(got.last, want.last)
                && eq(got.last_step, want.last_step)
                && eq(got.min, want.min)
                && eq(got.min_step, want.min_step)
                && eq(got.max, want.max)
                && eq(got.max_step, want.max_step)
                && eq(got.mean_last, want.mean_last)
                && got.finite == want.finite
        };
        let listing = b.catalog().list_runs(None).expect("list");
        assert!(listing.unreadable.is_empty(), "{after}: {:?}", listing.unreadable);
        let listed = listing.runs[0].clone();
        let r = b.catalog().open_run(&pn("p"), &rid("r1")).expect("open");
        let read = MetricSummary::of_run(&*r, &r.metric_paths().expect("paths")).expect("read");
        let paths: Vec<&str> = read.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["val/acc", "val/late"], "{after}: monitoring is not summarised");
        assert!(same(&read[0].1), "{after}: read {:?}, want {want:?}", read[0].1);
        if !listed.metrics.is_empty() {
            // Kept by the store (incrementally while live): what reading it whole gives.
            assert_eq!(listed.metrics.len(), 2, "{after}");
            for ((p, got), (_, whole)) in listed.metrics.iter().zip(&read) {
                let eq = |x: f64, y: f64| x == y || (x.is_nan() && y.is_nan());
                let fields = |m: &MetricSummary| {
                    [m.last, m.last_step, m.min, m.min_step, m.max, m.max_step, m.mean_last]
                };
                assert!(
                    fields(got).iter().zip(fields(whole)).all(|(a, b)| eq(*a, b))
                        && got.finite == whole.finite,
                    "{after}: {p} listed {got:?}, read whole {whole:?}"
                );
            }
        }
    };
    write(&mut w, &[(0, 0.2), (1, 0.5), (2, 0.5), (3, 0.1)]);
    let mut want = MetricSummary {
        last_step: 3.0,
        last: 0.1,
        min: 0.1,
        min_step: 3.0,
        max: 0.5,
        max_step: 1.0,
        mean_last: 1.3 / 4.0,
        finite: 4,
    };
    check(&want, "the first points");
    // More, live: a new best, a NaN and an infinity (neither is a min, max or in the mean).
    write(&mut w, &[(4, 0.9), (5, f64::INFINITY), (6, f64::NAN)]);
    want = MetricSummary {
        last_step: 6.0,
        last: f64::NAN,
        max: 0.9,
        max_step: 4.0,
        mean_last: 2.2 / 5.0,
        finite: 5,
        ..want
    };
    check(&want, "a new best, inf and NaN");
    // Many more: the mean is of the last ten finite values.
    let more: Vec<(u32, f64)> = (7..27).map(|s| (s, f64::from(s) / 100.0)).collect();
    write(&mut w, &more);
    let last_ten: f64 = (17..27).map(|s| f64::from(s) / 100.0).sum::<f64>() / 10.0;
    want = MetricSummary {
        last_step: 26.0,
        last: 0.26,
        min: 0.07,
        min_step: 7.0,
        mean_last: last_ten,
        finite: 25,
        ..want
    };
    check(&want, "twenty more");
    w.close().expect("close");
    check(&want, "closed");
}
