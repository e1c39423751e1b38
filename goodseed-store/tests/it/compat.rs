//! Compatibility with goodseed 0.4.0, both ways, against the real package (see
//! `python.rs`): runs written by 0.4.0's `Run` read back through our catalog and reader
//! exactly as 0.4.0's own readers return them; runs written by our writer read by 0.4.0
//! exactly as we wrote them; and each side resuming the other's runs.
//!
//! Python dumps what its readers return in a tagged JSON form (`tests/python/gs_dump.py`):
//! floats as `repr`, config values as `{"type", "value"}`, times as ISO text. Our side is
//! put in the same form here, so a comparison is an equality of JSON values.
//!
//! The differences from 0.4.0 we keep on purpose are asserted explicitly, never skipped:
//! a NaN metric point is kept in `metric_nan_points`, which 0.4.0 does not see; files
//! without string-series tables are listed (0.4.0's listing drops them); integers beyond
//! 64 bits are kept as their exact text (0.4.0 reads them as Python ints).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, FieldPath, ProjectName, RunId, Step, python_float_repr};
use goodseed_store::{
    ProjectSummary, RunReader, RunStore, RunSummary, RunWriter, SqliteRunWriter, SqliteStore,
    TextPage, TextWindow, WriteBatch, run_file_path,
};
use serde_json::{Value, json};

use goodseed_testkit::python::run_python;

// ---------------------------------------------------------------------------------------
// Running the Python side.

/// Writes 0.4.0 fixture runs under `home` (all of them, or those named) and returns what
/// 0.4.0's readers then read from `home/projects`.
fn write_fixtures(home: &Path, only: Option<&str>) -> Value {
    let mut args: Vec<&OsStr> = vec![home.as_os_str()];
    if let Some(names) = only {
        args.extend([OsStr::new("--only"), OsStr::new(names)]);
    }
    parse("write_fixtures.py", &run_python("write_fixtures.py", args, &[]))
}

/// What 0.4.0's readers read from a projects directory.
fn read_with_0_4_0(root: &Path) -> Value {
    parse("read_runs.py", &run_python("read_runs.py", [root], &[]))
}

fn parse(script: &str, stdout: &str) -> Value {
    serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("{script} printed something other than JSON ({e}):\n{stdout}"))
}

/// The dump of one file, by its path relative to the projects directory.
fn file<'a>(dump: &'a Value, relative: &str) -> &'a Value {
    dump["files"]
        .as_array()
        .and_then(|files| files.iter().find(|f| f["relative_path"] == relative))
        .unwrap_or_else(|| panic!("0.4.0's dump has no file {relative}"))
}

// ---------------------------------------------------------------------------------------
// Our side, in the same tagged form.

fn pn(s: &str) -> ProjectName {
    ProjectName::parse(s).expect("valid project name")
}

fn rid(s: &str) -> RunId {
    RunId::parse(s).expect("valid run id")
}

fn fp(s: &str) -> FieldPath {
    FieldPath::parse(s).expect("valid field path")
}

/// A config value as `gs_dump.tag` writes 0.4.0's deserialized value.
fn tag_config(value: &ConfigValue) -> Value {
    match value {
        ConfigValue::Bool(b) => json!({"type": "bool", "value": if *b { "True" } else { "False" }}),
        ConfigValue::Int(i) => json!({"type": "int", "value": i.to_string()}),
        ConfigValue::Float(x) => json!({"type": "float", "value": python_float_repr(*x)}),
        ConfigValue::Str(s) => json!({"type": "str", "value": s}),
        ConfigValue::DateTime(s) => json!({"type": "datetime", "value": s}),
        ConfigValue::Null => json!({"type": "null"}),
        ConfigValue::StringSet(set) => json!({"type": "string_set", "value": set}),
        ConfigValue::Raw { type_tag, value } => {
            json!({"type": format!("raw:{type_tag}"), "value": value})
        }
        other => panic!("a ConfigValue variant this test does not know: {other:?}"),
    }
}

/// `repr(step)` as 0.4.0 returns it: a float for `REAL` columns, an int for the
/// `INTEGER` columns of older files.
fn step_repr(step: f64, integer_steps: bool) -> String {
    if integer_steps && step.fract() == 0.0 {
        format!("{}", step as i64)
    } else {
        python_float_repr(step)
    }
}

/// 0.4.0's `logged_at`: `datetime.fromtimestamp(ts, tz=utc).isoformat()`.
fn logged_at(ts: i64) -> String {
    UtcMicros::from_unix_seconds(ts).to_iso8601()
}

/// 0.4.0's `last_modified` for a file time.
fn mtime_iso(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).expect("file times after 1970");
    let secs = i64::try_from(d.as_secs()).expect("file time fits");
    UtcMicros::from_unix_float_parts(secs, d.subsec_nanos()).to_iso8601()
}

fn metric_json(path: &str, step: f64, value: f64, ts: i64, integer_steps: bool) -> Value {
    json!({
        "path": path,
        "step": step_repr(step, integer_steps),
        "value": python_float_repr(value),
        "logged_at": logged_at(ts),
    })
}

fn text_json(path: &str, step: f64, value: &str, ts: i64) -> Value {
    json!({"path": path, "step": python_float_repr(step), "value": value, "logged_at": logged_at(ts)})
}

fn text_page_json(page: &TextPage) -> Value {
    let points: Vec<Value> =
        page.points.iter().map(|(path, p)| text_json(path, p.step, &p.value, p.ts)).collect();
    json!({"points": points, "total": page.total})
}

/// One run as 0.4.0's `/api/runs` lists it.
fn listing_json(s: &RunSummary) -> Value {
    json!({
        "project": s.project,
        "run_id": s.run_id,
        "experiment_name": s.meta.name(),
        "created_at": s.meta.created_at(),
        "closed_at": s.meta.closed_at(),
        "status": s.status.as_str(),
        "trashed": s.meta.trashed(),
        "string_series_paths": s.text_paths,
        "metric_paths": s.metric_paths,
    })
}

/// One project as 0.4.0's `/api/projects` lists it.
fn project_json(p: &ProjectSummary) -> Value {
    json!({"name": p.name, "run_count": p.run_count, "last_modified": p.last_modified.map(mtime_iso)})
}

/// Compares two lists item by item, naming the first that differs.
fn assert_same_list(what: &str, ours: &[Value], theirs: &Value) {
    let theirs =
        theirs.as_array().unwrap_or_else(|| panic!("{what}: 0.4.0 returned no list: {theirs}"));
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(a, b, "{what}: item {i} differs (left: ours, right: goodseed 0.4.0)");
    }
    assert_eq!(ours.len(), theirs.len(), "{what}: number of items (ours, 0.4.0)");
}

/// Where our reading of a file differs from 0.4.0's, in the ways we differ on purpose.
#[derive(Debug, Default, PartialEq)]
struct Differences {
    /// Metric points with a NaN value, as `(path, step)`: kept by us, invisible to 0.4.0.
    nan_points: Vec<(String, f64)>,
    /// Series whose only points are NaN: listed by us, not by 0.4.0.
    nan_only_series: Vec<String>,
    /// Configs tagged `int` whose value is beyond 64 bits: 0.4.0 reads a Python int, we
    /// keep the exact digits as [`ConfigValue::Raw`].
    huge_ints: Vec<String>,
}

/// Checks that our reader returns for one file what 0.4.0's readers returned for it (the
/// dump of that file), apart from the [`Differences`] it returns.
fn assert_reads_like_0_4_0(reader: &dyn RunReader, theirs: &Value) -> Differences {
    let file = theirs["relative_path"].as_str().expect("relative_path").to_owned();
    let mut diff = Differences::default();

    let meta = reader.meta().expect("meta");
    let ours_meta: serde_json::Map<String, Value> =
        meta.0.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    assert_eq!(Value::Object(ours_meta), theirs["meta"], "{file}: run_meta");

    // Configs, in table order.
    let configs = reader.configs().expect("configs");
    let their_configs = theirs["configs"].as_array().expect("0.4.0 read the configs");
    assert_eq!(configs.len(), their_configs.len(), "{file}: number of configs");
    for ((path, value), theirs) in configs.iter().zip(their_configs) {
        assert_eq!(json!(path), theirs[0], "{file}: config order");
        let what = format!("{file}: config {path}");
        match value {
            ConfigValue::Raw { type_tag, value: Some(digits) } if type_tag == "int" => {
                assert_eq!(theirs[1], json!({"type": "int", "value": digits}), "{what}");
                assert!(digits.parse::<i64>().is_err(), "{what}: {digits} fits in 64 bits");
                diff.huge_ints.push(path.clone());
            }
            _ => assert_eq!(tag_config(value), theirs[1], "{what}"),
        }
    }

    // Metric points, all series, ordered by path then step.
    let integer_steps = reader.integer_steps().expect("integer_steps");
    let mut points = Vec::new();
    let mut finite_paths = BTreeSet::new();
    reader
        .visit_metrics(None, &mut |path, p| {
            if p.value.is_nan() {
                diff.nan_points.push((path.to_owned(), p.step));
            } else {
                finite_paths.insert(path.to_owned());
                points.push(metric_json(path, p.step, p.value, p.ts, integer_steps));
            }
            true
        })
        .expect("metrics");
    assert_same_list(&format!("{file}: metrics"), &points, &theirs["metrics"]);
    let nan_paths: BTreeSet<&String> = diff.nan_points.iter().map(|(p, _)| p).collect();
    diff.nan_only_series =
        nan_paths.into_iter().filter(|p| !finite_paths.contains(*p)).cloned().collect();

    // Text points, whole and paged the ways 0.4.0's server pages them.
    let text = |path: Option<&str>, window| {
        text_page_json(&reader.text_points(path, window).expect("text points"))
    };
    assert_eq!(text(None, TextWindow::All), theirs["strings"], "{file}: text points");
    assert_eq!(text(None, TextWindow::Tail(3)), theirs["strings_tail_all"], "{file}: text tail");
    assert_eq!(
        text(None, TextWindow::Page { limit: 2, offset: 1 }),
        theirs["strings_page_all"],
        "{file}: text page"
    );
    for key in ["strings_tail_path", "strings_page_path"] {
        let Some(their_page) = theirs.get(key) else { continue };
        let path = their_page["path"].as_str().expect("path");
        let window = if key == "strings_tail_path" {
            TextWindow::Tail(2)
        } else {
            TextWindow::Page { limit: 2, offset: 1 }
        };
        let mut ours = text(Some(path), window);
        ours["path"] = json!(path);
        assert_eq!(&ours, their_page, "{file}: {key}");
    }

    // The paths the listing shows, where 0.4.0 could read them.
    let summary = &theirs["summary"];
    if summary.get("error").is_none() {
        let metric_paths: Vec<String> = reader
            .metric_paths()
            .expect("metric paths")
            .into_iter()
            .filter(|p| !diff.nan_only_series.contains(p))
            .collect();
        assert_eq!(json!(metric_paths), summary["metric_paths"], "{file}: metric paths");
        let text_paths = reader.text_paths().expect("text paths");
        assert_eq!(json!(text_paths), summary["string_series_paths"], "{file}: text paths");
    }
    diff
}

/// Opens each file 0.4.0 dumped through our catalog and compares, returning the
/// differences by relative path.
fn compare_all(catalog: &SqliteStore, dump: &Value) -> BTreeMap<String, Differences> {
    let mut out = BTreeMap::new();
    for theirs in dump["files"].as_array().expect("files") {
        let relative = theirs["relative_path"].as_str().expect("relative_path");
        if theirs["meta"].get("error").is_some() {
            continue; // Not a run for 0.4.0 either; the listing test covers these.
        }
        let project = theirs["project"].as_str().expect("project");
        let stem = theirs["stem"].as_str().expect("stem");
        let reader = catalog
            .open_run(&pn(project), &rid(stem))
            .unwrap_or_else(|e| panic!("we cannot open {relative}: {e}"));
        out.insert(relative.to_owned(), assert_reads_like_0_4_0(&*reader, theirs));
    }
    out
}

/// Our listing of every readable run, in order, as 0.4.0 lists runs.
fn our_listing(catalog: &SqliteStore) -> Vec<Value> {
    let listing = catalog.list_runs(None).expect("list runs");
    listing.runs.iter().map(|r| listing_json(r)).collect()
}

fn our_projects(catalog: &SqliteStore) -> Vec<Value> {
    catalog.list_projects().expect("list projects").iter().map(project_json).collect()
}

/// True when the run is one file, with no `-wal` or `-shm` beside it.
fn is_single_file(path: &Path) -> bool {
    let beside = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p).exists()
    };
    path.is_file() && !beside("-wal") && !beside("-shm")
}

fn now_micros() -> UtcMicros {
    UtcMicros::from(SystemTime::now())
}

// ---------------------------------------------------------------------------------------
// Writing runs with our writer, remembering what a reader must then see.

/// A write batch that also records what the run must hold once it is written: the last
/// write to each meta key, config path and (series, step) wins, as in 0.4.0.
#[derive(Default)]
struct Recorder {
    batch: WriteBatch,
    meta: BTreeMap<String, String>,
    /// Configs in table order: `INSERT OR REPLACE` moves an overwritten path to the end.
    configs: Vec<(String, ConfigValue)>,
    metrics: HashMap<(String, u64), (f64, f64, i64)>,
    texts: HashMap<(String, u64), (f64, String, i64)>,
}

impl Recorder {
    fn meta(&mut self, key: &str, value: &str) {
        self.batch.set_meta(key, value);
        self.meta.insert(key.to_owned(), value.to_owned());
    }

    fn config(&mut self, path: &str, value: impl Into<ConfigValue>) {
        let value = value.into();
        self.batch.config(fp(path), value.clone());
        self.configs.retain(|(p, _)| p != path);
        self.configs.push((path.to_owned(), value));
    }

    fn metric(&mut self, path: &str, step: f64, value: f64, ts: i64) {
        let step = Step::new(step).expect("finite step");
        let series = self.batch.metric_series(&fp(path));
        self.batch.metric(series, step, value, ts);
        self.metrics.insert((path.to_owned(), step.get().to_bits()), (step.get(), value, ts));
    }

    fn text(&mut self, path: &str, step: f64, value: &str, ts: i64) {
        let step = Step::new(step).expect("finite step");
        let series = self.batch.text_series(&fp(path));
        self.batch.text(series, step, value, ts);
        self.texts.insert((path.to_owned(), step.get().to_bits()), (step.get(), value.into(), ts));
    }

    fn create(&mut self, path: &Path) -> SqliteRunWriter {
        let writer = SqliteRunWriter::create(path, &self.batch).expect("create run");
        self.meta.insert("schema_version".into(), "1".into());
        self.batch.clear();
        writer
    }

    fn flush(&mut self, writer: &mut SqliteRunWriter) {
        writer.write(&self.batch).expect("write batch");
        self.batch.clear();
    }

    /// The metric points 0.4.0 must read: ordered by path then step, NaN left out.
    ///
    /// SQLite stores a `REAL` equal to an integer as an integer, so a `-0.0` value reads
    /// back as `0.0`, for 0.4.0 and for us alike.
    fn expected_metrics(&self) -> Vec<Value> {
        let mut rows: Vec<(&String, f64, f64, i64)> = self
            .metrics
            .iter()
            .filter(|(_, (_, v, _))| !v.is_nan())
            .map(|((path, _), (step, value, ts))| (path, *step, *value + 0.0, *ts))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(b.0).then(a.1.total_cmp(&b.1)));
        rows.iter()
            .map(|(path, step, value, ts)| metric_json(path, *step, *value, *ts, false))
            .collect()
    }

    /// The NaN points, as `(path, step)` in path and step order.
    fn expected_nan_points(&self) -> Vec<(String, f64)> {
        let mut rows: Vec<(String, f64)> = self
            .metrics
            .iter()
            .filter(|(_, (_, v, _))| v.is_nan())
            .map(|((path, _), (step, _, _))| (path.clone(), *step))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        rows
    }

    fn expected_texts(&self) -> Vec<Value> {
        let mut rows: Vec<(&String, &(f64, String, i64))> =
            self.texts.iter().map(|((path, _), row)| (path, row)).collect();
        rows.sort_by(|a, b| a.0.cmp(b.0).then(a.1.0.total_cmp(&b.1.0)));
        rows.iter().map(|(path, (step, value, ts))| text_json(path, *step, value, *ts)).collect()
    }

    fn expected_configs(&self) -> Vec<Value> {
        self.configs.iter().map(|(path, value)| json!([path, tag_config(value)])).collect()
    }

    fn expected_meta(&self) -> Value {
        json!(self.meta)
    }
}

/// The meta keys and system configs 0.4.0's `Run` writes when it creates a run.
fn start_run(rec: &mut Recorder, project: &str, run: &str, name: &str, created: &str) {
    rec.meta("run_id", run);
    rec.meta("project", project);
    rec.meta("created_at", created);
    rec.meta("status", "running");
    rec.meta("name", name);
    rec.config("sys/id", run);
    rec.config("sys/creation_time", created);
    rec.config("sys/state", "running");
    rec.config("sys/name", name);
}

/// What 0.4.0's `Run.close` writes.
fn finish_run(rec: &mut Recorder, status: &str) {
    let closed = now_micros().to_iso8601();
    rec.meta("status", status);
    rec.meta("closed_at", &closed);
    rec.config("sys/state", status);
    rec.config("sys/closed_time", closed.as_str());
}

fn set(items: &[&str]) -> ConfigValue {
    ConfigValue::StringSet(items.iter().map(|s| (*s).to_owned()).collect())
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn python_written_runs_read_back_identically() {
    let home = tempfile::tempdir().expect("temp dir");
    let theirs = write_fixtures(home.path(), None);
    // 0.4.0 cannot store a NaN metric: the whole batch is rolled back.
    let nan_note = theirs["notes"]["nan_metric"].as_str().expect("note");
    assert!(nan_note.starts_with("IntegrityError"), "0.4.0 stored a NaN metric? {nan_note}");

    let catalog = SqliteStore::new(home.path().join("projects"));
    let listing = catalog.list_runs(None).expect("list runs");
    assert!(listing.unreadable.is_empty(), "unreadable: {:?}", listing.unreadable);

    // The listing, run for run and in order. 0.4.0's own listing drops the older file,
    // because its `read_run_summary` fails without string-series tables; we list it.
    let legacy = file(&theirs, "legacy/runs/old-run.sqlite");
    let legacy_error = legacy["summary"]["error"].as_str().expect("0.4.0 fails on it");
    assert!(legacy_error.contains("no such table: string_series"), "{legacy_error}");
    let ours: Vec<Value> =
        listing.runs.iter().filter(|r| r.project != "legacy").map(|r| listing_json(r)).collect();
    assert_same_list("runs listing", &ours, &theirs["scan_runs"]);
    let old = listing.runs.iter().find(|r| r.project == "legacy").expect("legacy run listed");
    assert_eq!(
        listing_json(old),
        json!({
            "project": "legacy",
            "run_id": "old-run",
            "experiment_name": "Old experiment",
            "created_at": "2024-05-01T10:00:00+00:00",
            "closed_at": "2024-05-01T11:00:00.500000+00:00",
            "status": "finished",
            "trashed": false,
            "string_series_paths": [],
            "metric_paths": ["acc", "loss"],
        })
    );
    assert_same_list("projects listing", &our_projects(&catalog), &theirs["scan_projects"]);

    // Every file, value for value.
    let diffs = compare_all(&catalog, &theirs);
    assert_eq!(diffs.len(), 7, "files compared: {:?}", diffs.keys());
    for (relative, diff) in &diffs {
        assert_eq!(diff.nan_points, [], "{relative}");
        let want_huge: &[&str] = if relative == "compat/runs/py-huge-int.sqlite" {
            &["int_huge", "int_neg_huge"]
        } else {
            &[]
        };
        assert_eq!(diff.huge_ints, want_huge, "{relative}");
    }

    // A few values checked against what the script logged, not only against 0.4.0's
    // reading of them.
    let reader = catalog.open_run(&pn("compat"), &rid("py-all-types")).expect("open");
    let configs: HashMap<String, ConfigValue> =
        reader.configs().expect("configs").into_iter().collect();
    assert_eq!(configs["f_small"], ConfigValue::Float(1e-5));
    assert_eq!(configs["f_big"], ConfigValue::Float(1e16));
    assert_eq!(configs["f_neg_inf"], ConfigValue::Float(f64::NEG_INFINITY));
    assert!(matches!(configs["f_nan"], ConfigValue::Float(x) if x.is_nan()));
    assert_eq!(configs["int_i64_min"], ConfigValue::Int(i64::MIN));
    assert_eq!(configs["int_neg"], ConfigValue::Int(-43));
    assert_eq!(configs["dt_offset"], ConfigValue::DateTime("2025-06-01T08:30:00+05:30".into()));
    assert_eq!(configs["parameters/optimizer/betas/1"], ConfigValue::Float(0.999));
    assert_eq!(configs["none_value"], ConfigValue::Null);
    assert_eq!(configs["sys/tags"], set(&["added-later", "baseline", "größe", "ω", "🌱 seedling"]));
    for path in ["train/loss", "train/acc", "lr"] {
        assert_eq!(reader.metric_count(path).expect("count"), 5000, "{path}");
    }
    let mut ooo = Vec::new();
    reader
        .visit_metrics(Some("eval/ooo"), &mut |_, p| {
            ooo.push((p.step, p.value));
            true
        })
        .expect("eval/ooo");
    assert_eq!(
        ooo,
        [(-1.0, -10.0), (1.0, 10.0), (2.0, 20.0), (3.0, -1.5), (4.0, 40.0), (5.0, 50.0)]
    );
    let old = catalog.open_run(&pn("legacy"), &rid("old-run")).expect("open legacy");
    assert!(old.integer_steps().expect("integer_steps"));
    let huge = catalog.open_run(&pn("compat"), &rid("py-huge-int")).expect("open");
    let huge: HashMap<String, ConfigValue> = huge.configs().expect("configs").into_iter().collect();
    assert_eq!(
        huge["int_huge"],
        ConfigValue::Raw { type_tag: "int".into(), value: Some("18446744073709551616".into()) }
    );
    assert_eq!(huge["int_fits"], ConfigValue::Int(i64::MAX));
}

/// Writes, with our writer, a run holding what 0.4.0's `Run` writes plus every kind of
/// value, and returns what a reader must see.
fn write_rust_run(path: &Path, project: &str, run: &str) -> Recorder {
    let created = now_micros();
    let t0 = created.unix_seconds();
    let mut rec = Recorder::default();
    start_run(&mut rec, project, run, "Rüst ✓ 🌱", &created.to_iso8601());
    rec.config("sys/description", "written by goodseed-store");
    rec.config("sys/tags", set(&["rust", "größe", "🌱 seedling", "Z"]));
    let configs: Vec<(&str, ConfigValue)> = vec![
        ("flag_true", true.into()),
        ("flag_false", false.into()),
        ("int_zero", 0i64.into()),
        ("int_neg", (-42i64).into()),
        ("int_big", ((1i64 << 53) + 1).into()),
        ("int_i64_max", i64::MAX.into()),
        ("int_i64_min", i64::MIN.into()),
        ("f_tenth", 0.1.into()),
        ("f_small", 1e-5.into()),
        ("f_big", 1e16.into()),
        ("f_whole", 3.0.into()),
        ("f_neg_zero", (-0.0).into()),
        ("f_inf", f64::INFINITY.into()),
        ("f_neg_inf", f64::NEG_INFINITY.into()),
        ("f_nan", f64::NAN.into()),
        ("f_subnormal", 5e-324.into()),
        ("f_third", (1.0 / 3.0).into()),
        ("f_max", f64::MAX.into()),
        ("s_unicode", "héllo wörld ☃ 🌱 \"quoted\" \\ back".into()),
        ("s_empty", "".into()),
        ("s_multiline", "line1\nline2\ttab".into()),
        ("dt_aware", ConfigValue::DateTime("2025-01-31T12:00:00.123456+00:00".into())),
        ("dt_naive", ConfigValue::DateTime("2024-02-29T23:59:59".into())),
        ("dt_offset", ConfigValue::DateTime("2025-06-01T08:30:00+05:30".into())),
        ("none_value", ConfigValue::Null),
        ("misc/empty_set", set(&[])),
        ("parameters/optimizer/name", "adam".into()),
        ("parameters/optimizer/lr", 3e-4.into()),
        ("parameters/layers/0/width", 128i64.into()),
    ];
    for (path, value) in configs {
        rec.config(path, value);
    }
    let mut writer = rec.create(path);

    for i in 0..2000u32 {
        let x = f64::from(i);
        rec.metric("train/loss", x, 1.0 / (x + 1.0), t0 + i64::from(i / 500));
        rec.metric("train/acc", x, x / 2000.0, t0);
    }
    for s in [0.5, 1.5, 2.25, 0.001, 1.0] {
        rec.metric("eval/frac", s, s * 2.0, t0);
    }
    let nonfinite = [f64::INFINITY, f64::NEG_INFINITY, 1e308, -0.0, 5e-324, 7.0];
    for (step, value) in nonfinite.into_iter().enumerate() {
        rec.metric("eval/nonfinite", step as f64, value, t0);
    }
    for s in [5.0, 1.0, 3.0] {
        rec.metric("eval/ooo", s, s * 10.0, t0);
    }
    for value in [1.0, 2.0, 3.0] {
        rec.metric("eval/overwrite", 2.0, value, t0); // The last write in a batch wins.
    }
    for (step, value) in [(0.0, 1.0), (1.0, f64::NAN), (2.0, 2.0), (3.0, 1.0), (4.0, f64::NAN)] {
        rec.metric("eval/nan", step, value, t0);
    }
    rec.metric("eval/only_nan", 0.0, f64::NAN, t0);
    for (step, text) in [(0.0, "first ☃"), (1.0, "second 🌱"), (2.0, "overwritten")] {
        rec.text("logs/text", step, text, t0);
    }
    for i in 0..4u32 {
        rec.text("logs/other", f64::from(i), &format!("other {i}"), t0 + 1);
    }
    rec.flush(&mut writer);

    // A second batch: out-of-order steps, overwrites across batches, NaN both ways.
    for s in [-1.0, 2.0, 4.0] {
        rec.metric("eval/ooo", s, s * 10.0, t0 + 2);
    }
    rec.metric("eval/ooo", 3.0, -1.5, t0 + 2);
    rec.metric("eval/nan", 3.0, f64::NAN, t0 + 2); // A finite point becomes NaN.
    rec.metric("eval/nan", 4.0, 4.0, t0 + 2); // A NaN point becomes finite.
    rec.text("logs/text", 2.0, "", t0 + 2);
    rec.text("logs/text", 1.5, "multi\nline", t0 + 2);
    rec.text("logs/text", -3.0, "late but early", t0 + 2);
    rec.config("int_neg", -43i64);
    // Tags edited the way 0.4.0's `run["sys/tags"].add/remove` does: read, modify, write.
    let Some(ConfigValue::StringSet(mut tags)) = writer.config(&fp("sys/tags")).expect("tags")
    else {
        panic!("sys/tags is not a string set");
    };
    tags.insert("added-later".into());
    tags.insert("ω".into());
    tags.remove("Z");
    rec.config("sys/tags", ConfigValue::StringSet(tags));
    rec.flush(&mut writer);

    finish_run(&mut rec, "finished");
    rec.flush(&mut writer);
    writer.close().expect("close");
    rec
}

#[test]
fn rust_written_runs_read_by_0_4_0() {
    let home = tempfile::tempdir().expect("temp dir");
    let root = home.path().join("projects");
    let path = run_file_path(&root, &pn("rust/compat"), &rid("rust-all-types"));
    let rec = write_rust_run(&path, "rust/compat", "rust-all-types");
    assert!(is_single_file(&path), "a closed run must be a single file");

    let theirs = read_with_0_4_0(&root);
    let theirs_file = file(&theirs, "rust/compat/runs/rust-all-types.sqlite");
    for key in ["meta", "summary", "configs", "metrics", "strings"] {
        assert!(theirs_file[key].get("error").is_none(), "0.4.0 failed on {key}: {theirs_file}");
    }

    // 0.4.0 reads exactly what we wrote (but the NaN points)...
    assert_eq!(theirs_file["meta"], rec.expected_meta(), "run_meta");
    assert_same_list("configs", &rec.expected_configs(), &theirs_file["configs"]);
    assert_same_list("metrics", &rec.expected_metrics(), &theirs_file["metrics"]);
    assert_same_list("text points", &rec.expected_texts(), &theirs_file["strings"]["points"]);

    // ...and so do we, with the NaN points at their steps.
    let catalog = SqliteStore::new(&root);
    let diffs = compare_all(&catalog, &theirs);
    let diff = &diffs["rust/compat/runs/rust-all-types.sqlite"];
    let nan_points = rec.expected_nan_points();
    assert_eq!(
        nan_points,
        [
            ("eval/nan".to_owned(), 1.0),
            ("eval/nan".to_owned(), 3.0),
            ("eval/only_nan".to_owned(), 0.0)
        ]
    );
    assert_eq!(diff.nan_points, nan_points, "our reader returns the NaN points");
    assert_eq!(diff.nan_only_series, ["eval/only_nan"]);
    assert!(diff.huge_ints.is_empty());
    let reader = catalog.open_run(&pn("rust/compat"), &rid("rust-all-types")).expect("open");
    let mut nan_series = Vec::new();
    reader
        .visit_metrics(Some("eval/nan"), &mut |_, p| {
            nan_series.push((p.step, python_float_repr(p.value)));
            true
        })
        .expect("eval/nan");
    let want: Vec<(f64, String)> =
        [(0.0, "1.0"), (1.0, "nan"), (2.0, "2.0"), (3.0, "nan"), (4.0, "4.0")]
            .into_iter()
            .map(|(s, v)| (s, v.to_owned()))
            .collect();
    assert_eq!(nan_series, want);

    // The listing matches 0.4.0's, but for the series holding only NaN, which we list.
    let listing = catalog.list_runs(None).expect("list");
    assert_eq!(listing.runs.len(), 1);
    let mut ours = listing_json(&listing.runs[0]);
    let metric_paths = ours["metric_paths"].as_array_mut().expect("paths");
    let before = metric_paths.len();
    metric_paths.retain(|p| p != "eval/only_nan");
    assert_eq!(before - 1, metric_paths.len(), "we list the NaN-only series");
    assert_same_list("runs listing", &[ours], &theirs["scan_runs"]);
}

#[test]
fn python_resumes_rust_run() {
    let home = tempfile::tempdir().expect("temp dir");
    let root = home.path().join("projects");
    let (project, run) = ("rust/resume", "rust-resumed");
    let path = run_file_path(&root, &pn(project), &rid(run));
    let t0 = now_micros().unix_seconds();
    let mut rec = Recorder::default();
    start_run(&mut rec, project, run, "resumed by python", &now_micros().to_iso8601());
    rec.config("hp/lr", 0.1);
    rec.config("sys/tags", set(&["rust"]));
    let mut writer = rec.create(&path);
    for i in 0..1000u32 {
        let value = if i == 7 { f64::NAN } else { 1.0 / f64::from(i + 1) };
        rec.metric("train/loss", f64::from(i), value, t0);
    }
    for i in 0..4u32 {
        rec.text("logs/text", f64::from(i), &format!("rust line {i}"), t0);
    }
    rec.flush(&mut writer);
    finish_run(&mut rec, "finished");
    rec.flush(&mut writer);
    writer.close().expect("close");
    let rust_closed_at = rec.meta["closed_at"].clone();

    let logged = parse(
        "resume_run.py",
        &run_python("resume_run.py", [home.path(), Path::new(project), Path::new(run)], &[]),
    );
    assert!(is_single_file(&path), "0.4.0 left a single file on close");

    let catalog = SqliteStore::new(&root);
    let reader = catalog.open_run(&pn(project), &rid(run)).expect("open");
    let meta = reader.meta().expect("meta");
    assert_eq!(meta.status(), Some("finished"));
    let closed_at = meta.closed_at().expect("closed_at");
    assert!(closed_at >= rust_closed_at.as_str(), "{closed_at} before {rust_closed_at}");
    assert!(UtcMicros::parse_iso8601(closed_at).is_some(), "{closed_at}");
    let configs: HashMap<String, ConfigValue> =
        reader.configs().expect("configs").into_iter().collect();
    assert_eq!(configs["sys/state"], ConfigValue::Str("finished".into()));
    assert_eq!(configs["hp/lr"], ConfigValue::Float(0.5));
    assert_eq!(configs["hp/extra/depth"], ConfigValue::Int(3));
    assert_eq!(configs["resumed_by"], ConfigValue::Str("goodseed 0.4.0".into()));
    assert_eq!(configs["sys/tags"], set(&["resumed-ü", "rust"]));
    assert_eq!(configs["sys/name"], ConfigValue::Str("resumed by python".into()));

    // Old points and new ones; 0.4.0's finite value at step 7 replaces our NaN there.
    let mut points: HashMap<(String, u64), String> = HashMap::new();
    reader
        .visit_metrics(None, &mut |path, p| {
            points.insert((path.to_owned(), p.step.to_bits()), python_float_repr(p.value));
            true
        })
        .expect("metrics");
    let point = |path: &str, step: f64| points.get(&(path.to_owned(), step.to_bits())).cloned();
    assert_eq!(point("train/loss", 0.0).as_deref(), Some("1.0"));
    assert_eq!(point("train/loss", 999.0).as_deref(), Some("0.001"));
    assert_eq!(point("train/loss", 7.0).as_deref(), Some("0.7"));
    for m in logged["metrics"].as_array().expect("logged metrics") {
        let path = m["path"].as_str().expect("path");
        let step: f64 = m["step"].as_str().and_then(|s| s.parse().ok()).expect("step");
        assert_eq!(point(path, step).as_deref(), m["value"].as_str(), "{path} at {step}");
    }
    assert_eq!(reader.metric_count("train/loss").expect("count"), 1010);
    let texts = reader.text_points(None, TextWindow::All).expect("texts");
    let texts: Vec<(&str, f64, &str)> =
        texts.points.iter().map(|(path, p)| (path.as_str(), p.step, p.value.as_str())).collect();
    assert!(texts.contains(&("logs/text", 0.0, "rust line 0")));
    for t in logged["texts"].as_array().expect("logged texts") {
        let step: f64 = t["step"].as_str().and_then(|s| s.parse().ok()).expect("step");
        let entry = (t["path"].as_str().expect("path"), step, t["value"].as_str().expect("value"));
        assert!(texts.contains(&entry), "{entry:?} in {texts:?}");
    }

    // And 0.4.0 reads the resumed file as we do.
    let theirs = read_with_0_4_0(&root);
    let diffs = compare_all(&catalog, &theirs);
    assert_eq!(diffs[&format!("{project}/runs/{run}.sqlite")], Differences::default());
}

/// Whether the file's downsampling pyramid describes its points: its watermark (the
/// largest rowids it was written against) matches the tables.
fn pyramid_is_current(path: &Path) -> bool {
    let uri = format!("file:{}?mode=ro&immutable=1", path.display());
    let conn = rusqlite::Connection::open_with_flags(
        uri,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .expect("open");
    let stored: Option<(i64, i64)> = conn
        .query_row("SELECT points_rowid, nan_rowid FROM metric_pyramid_watermark", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .ok();
    let live: (i64, i64) = conn
        .query_row(
            "SELECT (SELECT COALESCE(MAX(rowid), 0) FROM metric_points),
                    (SELECT COALESCE(MAX(rowid), 0) FROM metric_nan_points)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("rowids");
    stored == Some(live)
}

/// Every downsampled answer on `path` equals, bit for bit, the downsampler over the
/// points the reader returns.
fn assert_downsampling_matches_points(reader: &dyn RunReader, path: &str) {
    use goodseed_core::downsample::{PointCount, Window, downsample};
    let canon = |x: f64| if x.is_nan() { f64::NAN.to_bits() } else { x.to_bits() };
    let mut points = Vec::new();
    reader
        .visit_metrics(Some(path), &mut |_, p| {
            points.push(p);
            true
        })
        .expect("points");
    let n = points.len() as u64;
    let windows = [(None, None), (Some(0), None), (Some(256), None), (Some(128), Some(700))];
    for pc in [1, 2, 3, 5, 8, 13, 50, 100, 1000] {
        let count = PointCount::new(pc).expect("valid");
        for (first, last) in windows {
            let window = Window::new(n, first, last);
            let rows = window.rows();
            let want = downsample(&points[rows.start as usize..rows.end as usize], count);
            let (got_window, got) =
                reader.downsample_metric(path, first, last, count).expect("downsample");
            let what = format!("{path}: pointCount={pc} window={first:?}..={last:?}");
            assert_eq!(got_window, window, "{what}");
            let bits = |s: &goodseed_core::downsample::Sampled| -> Vec<_> {
                s.points
                    .iter()
                    .map(|p| (canon(p.step), canon(p.value), canon(p.min), canon(p.max), p.ts))
                    .collect()
            };
            assert_eq!(bits(&got), bits(&want), "{what}");
            assert_eq!(got.downsampled, want.downsampled, "{what}");
        }
    }
}

#[test]
fn python_resumes_a_run_with_a_pyramid_and_we_notice() {
    let home = tempfile::tempdir().expect("temp dir");
    let root = home.path().join("projects");
    let (project, run) = ("rust/pyramid", "pyramid-run");
    let path = run_file_path(&root, &pn(project), &rid(run));
    let t0 = now_micros().unix_seconds();
    let mut rec = Recorder::default();
    start_run(&mut rec, project, run, "pyramid", &now_micros().to_iso8601());
    let mut writer = rec.create(&path);
    // 1,000 points on the series 0.4.0 then appends to (from step 1000) and rewrites
    // (steps 5 and 7), 3,000 on one it leaves alone; NaN and infinities in both.
    for i in 0..3000u32 {
        let x = f64::from(i);
        let special = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0];
        let value = if i % 97 == 3 { special[(i / 97 % 4) as usize] } else { (x * 0.01).sin() };
        if i < 1000 {
            rec.metric("train/loss", x, value, t0 + i64::from(i));
        }
        rec.metric("train/acc", x * 0.5 + 0.25, value * 2.0, t0 + i64::from(i / 3));
        if i % 700 == 699 {
            rec.flush(&mut writer);
        }
    }
    rec.flush(&mut writer);
    finish_run(&mut rec, "finished");
    rec.flush(&mut writer);
    writer.close().expect("close");
    assert!(pyramid_is_current(&path), "our writer keeps the pyramid current");
    let catalog = SqliteStore::new(&root);
    {
        let reader = catalog.open_run(&pn(project), &rid(run)).expect("open");
        assert_downsampling_matches_points(reader.as_ref(), "train/loss");
        assert_downsampling_matches_points(reader.as_ref(), "train/acc");
    }

    run_python("resume_run.py", [home.path(), Path::new(project), Path::new(run)], &[]);
    assert!(!pyramid_is_current(&path), "0.4.0's rows move the watermark");
    let reader = catalog.open_run(&pn(project), &rid(run)).expect("open");
    assert_eq!(reader.metric_count("train/loss").expect("count"), 1010);
    assert_downsampling_matches_points(reader.as_ref(), "train/loss");
    assert_downsampling_matches_points(reader.as_ref(), "train/acc");
    drop(reader);

    // Our writer resuming the run rebuilds the pyramid.
    let mut writer = SqliteRunWriter::open_existing(&path).expect("resume");
    for i in 0..300u32 {
        rec.metric("train/loss", 2000.0 + f64::from(i), f64::from(i).sqrt(), t0);
    }
    rec.flush(&mut writer);
    writer.close().expect("close");
    assert!(pyramid_is_current(&path), "rebuilt on resume");
    let reader = catalog.open_run(&pn(project), &rid(run)).expect("open");
    assert_eq!(reader.metric_count("train/loss").expect("count"), 1310);
    assert_downsampling_matches_points(reader.as_ref(), "train/loss");
    assert_downsampling_matches_points(reader.as_ref(), "train/acc");
    assert_downsampling_matches_points(reader.as_ref(), "py/new");
}

#[test]
fn rust_resumes_python_run() {
    let home = tempfile::tempdir().expect("temp dir");
    let root = home.path().join("projects");
    let before = write_fixtures(home.path(), Some("py-small"));
    let path = run_file_path(&root, &pn("compat"), &rid("py-small"));
    let before_points =
        file(&before, "compat/runs/py-small.sqlite")["metrics"].as_array().expect("metrics").len();
    assert_eq!(before_points, 20);

    // What 0.4.0's resume does, then more data, then its close.
    let mut writer = SqliteRunWriter::open_existing(&path).expect("open existing");
    let last = writer.last_steps().expect("last steps");
    assert_eq!(last.get("train/loss"), Some(&19.0));
    assert_eq!(last.get("logs/text"), Some(&0.0));
    let t0 = now_micros().unix_seconds();
    let mut rec = Recorder::default();
    rec.meta("status", "running");
    rec.config("sys/state", "running");
    rec.flush(&mut writer);
    for i in 20..30u32 {
        let value = if i == 25 { f64::NAN } else { f64::from(i) / 100.0 };
        rec.metric("train/loss", f64::from(i), value, t0);
    }
    rec.metric("train/loss", 3.0, -3.0, t0); // Overwrites a point 0.4.0 wrote.
    rec.text("logs/text", 1.0, "rust says hi ✓", t0);
    rec.config("hp/lr", 0.02);
    let Some(ConfigValue::StringSet(mut tags)) = writer.config(&fp("sys/tags")).expect("tags")
    else {
        panic!("sys/tags is not a string set");
    };
    assert_eq!(tags, BTreeSet::from(["py".to_owned()]));
    tags.insert("rust-resumed".into());
    rec.config("sys/tags", ConfigValue::StringSet(tags));
    rec.flush(&mut writer);
    finish_run(&mut rec, "finished");
    rec.flush(&mut writer);
    writer.close().expect("close");
    assert!(is_single_file(&path), "a closed run must be a single file");

    let theirs = read_with_0_4_0(&root);
    let theirs_file = file(&theirs, "compat/runs/py-small.sqlite");
    let metrics = theirs_file["metrics"].as_array().expect("0.4.0 read the metrics");
    assert_eq!(metrics.len(), 20 + 10 - 1, "all but the NaN point");
    let at = |step: &str| metrics.iter().find(|m| m["step"] == step).map(|m| m["value"].clone());
    assert_eq!(at("3.0"), Some(json!("-3.0")));
    assert_eq!(at("24.0"), Some(json!("0.24")));
    assert_eq!(at("25.0"), None);
    assert_eq!(theirs_file["meta"]["status"], "finished");
    assert_eq!(theirs_file["meta"]["closed_at"], rec.meta["closed_at"].as_str());
    let configs: HashMap<&str, &Value> = theirs_file["configs"]
        .as_array()
        .expect("configs")
        .iter()
        .map(|c| (c[0].as_str().expect("path"), &c[1]))
        .collect();
    assert_eq!(configs["hp/lr"], &json!({"type": "float", "value": "0.02"}));
    assert_eq!(
        configs["sys/tags"],
        &json!({"type": "string_set", "value": ["py", "rust-resumed"]})
    );
    assert_eq!(configs["sys/state"], &json!({"type": "str", "value": "finished"}));
    let texts = &theirs_file["strings"]["points"];
    assert_eq!(texts[1]["value"], "rust says hi ✓");

    let catalog = SqliteStore::new(&root);
    let diffs = compare_all(&catalog, &theirs);
    let diff = &diffs["compat/runs/py-small.sqlite"];
    assert_eq!(diff.nan_points, [("train/loss".to_owned(), 25.0)]);
    assert!(diff.nan_only_series.is_empty() && diff.huge_ints.is_empty());
    assert_same_list("runs listing", &our_listing(&catalog), &theirs["scan_runs"]);
}

#[test]
fn catalog_lists_a_mixed_directory_like_0_4_0() {
    let home = tempfile::tempdir().expect("temp dir");
    let root = home.path().join("projects");
    write_fixtures(home.path(), Some("py-nested,py-deep,py-trashed"));

    // Two runs of ours, one of them beside 0.4.0's in a nested project.
    for (project, run) in [("mixed", "rust-a"), ("ws/proj", "rust-b")] {
        let mut rec = Recorder::default();
        start_run(&mut rec, project, run, run, &now_micros().to_iso8601());
        let mut writer = rec.create(&run_file_path(&root, &pn(project), &rid(run)));
        rec.metric("loss", 0.0, 0.5, now_micros().unix_seconds());
        rec.text("notes", 0.0, "hello", now_micros().unix_seconds());
        rec.flush(&mut writer);
        finish_run(&mut rec, "finished");
        rec.flush(&mut writer);
        writer.close().expect("close");
    }
    // Files that look like runs and are not.
    let runs_dir = root.join("mixed").join("runs");
    std::fs::write(runs_dir.join("empty.sqlite"), b"").expect("write");
    std::fs::write(runs_dir.join("x.sqlite"), b"this is not a database\n").expect("write");
    let other = rusqlite::Connection::open(runs_dir.join("other-schema.sqlite")).expect("open");
    other
        .execute_batch("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO things (name) VALUES ('a');")
        .expect("other schema");
    other.close().map_err(|(_, e)| e).expect("close");

    let theirs = read_with_0_4_0(&root);
    let catalog = SqliteStore::new(&root);
    let listing = catalog.list_runs(None).expect("list");
    let ours: Vec<Value> = listing.runs.iter().map(|r| listing_json(r)).collect();
    assert_eq!(ours.len(), 5);
    assert_same_list("runs listing", &ours, &theirs["scan_runs"]);
    assert_same_list("projects listing", &our_projects(&catalog), &theirs["scan_projects"]);

    // 0.4.0 skips the bad files silently (its summary fails on each); we say why.
    let mut unreadable: Vec<(String, String)> =
        listing.unreadable.iter().map(|u| (u.location.clone(), u.reason.clone())).collect();
    unreadable.sort();
    let want = [
        ("mixed/runs/empty.sqlite", "empty file"),
        ("mixed/runs/other-schema.sqlite", "without goodseed's run_meta table"),
        ("mixed/runs/x.sqlite", "not an SQLite database"),
    ];
    assert_eq!(unreadable.len(), want.len(), "{unreadable:?}");
    for ((path, reason), (want_path, want_reason)) in unreadable.iter().zip(want) {
        assert_eq!(path, want_path);
        assert!(reason.contains(want_reason), "{path}: {reason}");
        assert!(file(&theirs, path)["summary"].get("error").is_some(), "0.4.0 read {path}?");
        let u = listing.unreadable.iter().find(|u| u.location == *path);
        let u = u.expect("listed");
        assert_eq!(
            (u.project.as_str(), u.id.as_str()),
            ("mixed", Path::new(path).file_stem().and_then(OsStr::to_str).expect("stem"))
        );
    }
    let diffs = compare_all(&catalog, &theirs);
    assert_eq!(diffs.len(), 5);
    assert!(diffs.values().all(|d| *d == Differences::default()), "{diffs:?}");

    // Trash and restore through our catalog; 0.4.0 sees the same flags.
    catalog.set_trashed(&pn("ws/proj"), &rid("py-nested"), true).expect("trash");
    catalog.set_trashed(&pn("mixed"), &rid("rust-a"), true).expect("trash");
    catalog.set_trashed(&pn("ws/proj"), &rid("py-trashed"), false).expect("restore");
    let theirs = read_with_0_4_0(&root);
    let flags: BTreeMap<String, bool> = theirs["scan_runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| {
            (r["run_id"].as_str().expect("id").to_owned(), r["trashed"].as_bool().expect("flag"))
        })
        .collect();
    let want: BTreeMap<String, bool> = [
        ("py-deep", false),
        ("py-nested", true),
        ("py-trashed", false),
        ("rust-a", true),
        ("rust-b", false),
    ]
    .into_iter()
    .map(|(id, flag)| (id.to_owned(), flag))
    .collect();
    assert_eq!(flags, want);
    assert_eq!(file(&theirs, "ws/proj/runs/py-trashed.sqlite")["meta"].get("trashed"), None);
    assert_same_list("runs listing after trash", &our_listing(&catalog), &theirs["scan_runs"]);
}
