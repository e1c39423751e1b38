//! neptune-exporter's Parquet export, imported run by run.
//!
//! The exporter writes `<data>/<project dir>/<run>_part_<n>.parquet` (the project and
//! run names made safe for file names, with a digest), one row per value in its schema
//! (`project_id`, `run_id`, `attribute_path`, `attribute_type`, `step` as
//! `decimal128(18,6)`, `timestamp` in ms, and one typed `*_value` column per kind), and
//! the files of `file` and `file_series` attributes under `<files>/<project dir>/`, at
//! the path `file_value.path` names. Parts are renamed from `.parquet.tmp` when a run
//! is done, `part_0` last: a run is complete when its `part_0` exists, and a run without
//! one is reported and left.
//!
//! Mapping: parameters become configs of their exact type (a `string_set` stays a set,
//! a `datetime` stays a datetime); `float_series` become metrics, `string_series` text,
//! `histogram_series` histograms, at their exact steps (a decimal step is the nearest
//! float, which prints back as the same decimal) and timestamps (kept to the second,
//! the format's resolution); `file` attributes become artifacts and `file_series` file
//! series; Neptune 2's `artifact` attributes keep the listing of their files (the
//! exporter's `files_list.json`) as an artifact, and `file_set` attributes (a directory)
//! each of their files as an artifact `<attribute>/<path in the set>`. Neptune's own `sys/*` attributes are kept under `neptune/sys/…` (its ids and
//! fork information among them: `neptune/sys/forking/parent`, `…/step`), with
//! `neptune/project_id` and `neptune/run_id`; `sys/name`, `sys/description`,
//! `sys/tags` and `sys/creation_time` also become the run's name, description, tags and
//! creation time. Everything is streamed: one record batch of one part at a time.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Component, Path, PathBuf};

use arrow_array::cast::AsArray as _;
use arrow_array::types::{Decimal128Type, Float64Type, Int64Type};
use arrow_array::{
    Array, BooleanArray, Decimal128Array, Float64Array, Int64Array, ListArray, RecordBatch,
    StringArray, StructArray,
};
use arrow_schema::{DataType, TimeUnit};
use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, FieldPath, Histogram, ProjectName, RunName, Step};
use goodseed_store::lifecycle::NewRun;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::target::{RunImport, now};
use crate::{Opened, Options, Outcome, Problems, Progress, Report, RunReport, Shared, Target};

/// Rows decoded at a time.
const ROWS_PER_BATCH: usize = 64 * 1024;

/// One run of the export: its parts in order.
#[derive(Debug)]
struct RunFiles {
    /// The project's directory (its name is also the files' directory).
    project_dir: PathBuf,
    /// The run's file prefix (`<run>` of `<run>_part_<n>.parquet`).
    prefix: String,
    /// `part_0`, `part_1`, … (may be empty: an incomplete export).
    parts: Vec<(u32, PathBuf, u64)>,
    /// `.parquet.tmp` parts left by an exporter that did not finish.
    unfinished: usize,
}

impl RunFiles {
    fn source(&self) -> String {
        self.project_dir.join(format!("{}_part_*.parquet", self.prefix)).display().to_string()
    }
}

/// Imports every complete run of the export at `export` (the exporter's data directory,
/// or one project directory in it), with files from `files` (the exporter's files
/// directory; by default `files` beside `export` when there is one).
///
/// # Errors
/// When `export` is no neptune-exporter export (it names what was looked for).
pub fn import(
    export: &Path,
    files: Option<&Path>,
    target: &Target,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report, String> {
    let meta = std::fs::metadata(export)
        .map_err(|e| format!("cannot read the export {}: {e}", export.display()))?;
    if !meta.is_dir() {
        return Err(format!(
            "{} is not a directory: give neptune-exporter's data directory (its --data-path)",
            export.display()
        ));
    }
    let files = files.map(Path::to_path_buf).or_else(|| {
        let guess = export.parent()?.join("files");
        guess.is_dir().then_some(guess)
    });
    let runs = find_runs(export)?;
    if runs.is_empty() {
        return Err(format!(
            "no neptune-exporter runs (<run>_part_<n>.parquet) in {} or its project \
             directories",
            export.display()
        ));
    }
    progress.set_total(runs.iter().flat_map(|r| &r.parts).map(|p| p.2).sum());
    let shared = Shared::default();
    crate::each_parallel(runs, options.workers(), |run| {
        let mut problems = Problems::default();
        let share = crate::RunProgress::new(progress);
        let report = import_run(&run, files.as_deref(), target, options, &share, &mut problems);
        share.top_up(run.parts.iter().map(|p| p.2).sum());
        shared.finish(report, problems);
    });
    Ok(shared.into_report())
}

/// The runs under `export`: its own parts, or those of its project directories.
fn find_runs(export: &Path) -> Result<Vec<RunFiles>, String> {
    let mut runs = runs_in(export)?;
    if runs.is_empty() {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(export)
            .map_err(|e| format!("cannot list {}: {e}", export.display()))?
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .collect();
        dirs.sort();
        for dir in dirs {
            runs.extend(runs_in(&dir)?);
        }
    }
    Ok(runs)
}

/// The runs whose parts are in `dir`, by prefix.
fn runs_in(dir: &Path) -> Result<Vec<RunFiles>, String> {
    let mut by_prefix: BTreeMap<String, RunFiles> = BTreeMap::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let (stem, tmp) = if let Some(s) = name.strip_suffix(".parquet") {
            (s, false)
        } else if let Some(s) = name.strip_suffix(".parquet.tmp") {
            (s, true)
        } else {
            continue;
        };
        let Some((prefix, n)) = stem.rsplit_once("_part_") else { continue };
        let Ok(n) = n.parse::<u32>() else { continue };
        let run = by_prefix.entry(prefix.to_owned()).or_insert_with(|| RunFiles {
            project_dir: dir.to_path_buf(),
            prefix: prefix.to_owned(),
            parts: Vec::new(),
            unfinished: 0,
        });
        if tmp {
            run.unfinished += 1;
        } else {
            let size = entry.metadata().map_or(0, |m| m.len());
            run.parts.push((n, entry.path(), size));
        }
    }
    let mut runs: Vec<RunFiles> = by_prefix.into_values().collect();
    for r in &mut runs {
        r.parts.sort_by_key(|p| p.0);
    }
    Ok(runs)
}

fn import_run(
    run: &RunFiles,
    files: Option<&Path>,
    target: &Target,
    options: &Options,
    progress: &dyn Progress,
    problems: &mut Problems,
) -> RunReport {
    let mut report = RunReport {
        source: run.source(),
        run: None,
        outcome: Outcome::Skipped(String::new()),
        counts: crate::Counts::default(),
    };
    if run.parts.first().is_none_or(|p| p.0 != 0) {
        report.outcome = Outcome::Skipped(format!(
            "incomplete export: no {}_part_0.parquet ({} part(s) still .parquet.tmp); the \
             exporter had not finished this run, export it again",
            run.prefix,
            run.unfinished + run.parts.len()
        ));
        return report;
    }
    let expected: Vec<u32> = (0..).take(run.parts.len()).collect();
    let found: Vec<u32> = run.parts.iter().map(|p| p.0).collect();
    if found != expected {
        problems.add(
            run.source(),
            format!("parts {found:?} are not numbered from 0 without gaps: a part is missing"),
        );
    }
    let mut state = RunState::default();
    let result = (|| -> Result<(), String> {
        for (_, path, size) in &run.parts {
            let shown = path.display().to_string();
            let file = File::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|e| format!("{shown} is not a readable Parquet file: {e}"))?;
            let rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
            check_schema(builder.schema().fields()).map_err(|e| format!("{shown}: {e}"))?;
            let reader = builder
                .with_batch_size(ROWS_PER_BATCH)
                .build()
                .map_err(|e| format!("cannot read {shown}: {e}"))?;
            let mut rows_done = 0u64;
            let mut bytes_told = 0u64;
            for batch in reader {
                let batch = batch.map_err(|e| format!("cannot read {shown}: {e}"))?;
                rows_done += batch.num_rows() as u64;
                let cols = Columns::of(&batch).map_err(|e| format!("{shown}: {e}"))?;
                if state.run.is_none() && batch.num_rows() > 0 {
                    match state.open(&cols, target, options, &mut report) {
                        Ok(true) => {}
                        Ok(false) => return Ok(()),
                        Err(e) => return Err(e),
                    }
                    if let Some(r) = &state.run {
                        progress.working_on(r.shown());
                    }
                }
                state.rows(&cols, &shown, run, files, problems)?;
                let told = (size * rows_done.min(rows)).checked_div(rows).unwrap_or(*size);
                progress.advance(told - bytes_told);
                bytes_told = told;
            }
            progress.advance(size - bytes_told);
        }
        Ok(())
    })();
    match (result, state.run.take()) {
        (Err(e), _) => report.outcome = Outcome::Failed(e),
        (Ok(()), None) if matches!(report.outcome, Outcome::Skipped(ref s) if s.is_empty()) => {
            report.outcome = Outcome::Skipped("the run's parts hold no rows".into());
        }
        (Ok(()), None) => {}
        (Ok(()), Some(run_import)) => {
            let closed = state.closed_at.clone().or_else(|| {
                run_import.last_ts.map(|t| UtcMicros::from_unix_seconds(t).to_iso8601())
            });
            let closed = closed.unwrap_or_else(now);
            match run_import.finish(&closed) {
                Ok((counts, outcome)) => {
                    report.counts = counts;
                    report.outcome = outcome;
                }
                Err(e) => report.outcome = Outcome::Failed(e),
            }
        }
    }
    report.counts.skipped += state.skipped;
    report
}

/// The columns of one record batch, typed.
struct Columns<'a> {
    project_id: &'a StringArray,
    run_id: &'a StringArray,
    path: &'a StringArray,
    kind: &'a StringArray,
    step: &'a Decimal128Array,
    step_scale: i8,
    /// Milliseconds since the epoch, as the column's unit says.
    timestamp: Timestamps<'a>,
    int: &'a Int64Array,
    float: &'a Float64Array,
    string: &'a StringArray,
    bool: &'a BooleanArray,
    datetime: Timestamps<'a>,
    string_set: &'a ListArray,
    file: &'a StructArray,
    histogram: &'a StructArray,
}

/// A timestamp column of any unit, read as unix microseconds.
struct Timestamps<'a> {
    values: &'a dyn Array,
    unit: TimeUnit,
}

impl Timestamps<'_> {
    fn micros(&self, i: usize) -> Option<i64> {
        if self.values.is_null(i) {
            return None;
        }
        use arrow_array::types::{
            TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
            TimestampSecondType,
        };
        Some(match self.unit {
            TimeUnit::Second => {
                self.values.as_primitive::<TimestampSecondType>().value(i).saturating_mul(1_000_000)
            }
            TimeUnit::Millisecond => {
                self.values.as_primitive::<TimestampMillisecondType>().value(i).saturating_mul(1000)
            }
            TimeUnit::Microsecond => {
                self.values.as_primitive::<TimestampMicrosecondType>().value(i)
            }
            TimeUnit::Nanosecond => {
                self.values.as_primitive::<TimestampNanosecondType>().value(i).div_euclid(1000)
            }
        })
    }
}

/// The columns the exporter writes, and the type each must have.
const COLUMNS: [(&str, &str); 14] = [
    ("project_id", "string"),
    ("run_id", "string"),
    ("attribute_path", "string"),
    ("attribute_type", "string"),
    ("step", "decimal128"),
    ("timestamp", "timestamp"),
    ("int_value", "int64"),
    ("float_value", "double"),
    ("string_value", "string"),
    ("bool_value", "bool"),
    ("datetime_value", "timestamp"),
    ("string_set_value", "list<string>"),
    ("file_value", "struct<path: string>"),
    ("histogram_value", "struct<type: string, edges: list<double>, values: list<double>>"),
];

/// Checks the file's schema against the exporter's, naming the first column that is
/// missing or of another type.
fn check_schema(fields: &arrow_schema::Fields) -> Result<(), String> {
    for (name, want) in COLUMNS {
        let Some(field) = fields.iter().find(|f| f.name() == name) else {
            return Err(format!("no column {name} ({want}): not neptune-exporter's schema"));
        };
        let ok = match (name, field.data_type()) {
            (_, DataType::Utf8) => want == "string",
            (_, DataType::Decimal128(_, s)) => want == "decimal128" && *s >= 0,
            (_, DataType::Timestamp(..)) => want == "timestamp",
            (_, DataType::Int64) => want == "int64",
            (_, DataType::Float64) => want == "double",
            (_, DataType::Boolean) => want == "bool",
            (_, DataType::List(inner)) => {
                want == "list<string>" && inner.data_type() == &DataType::Utf8
            }
            ("file_value", DataType::Struct(f)) => {
                f.iter().any(|f| f.name() == "path" && f.data_type() == &DataType::Utf8)
            }
            ("histogram_value", DataType::Struct(f)) => {
                let list_of_f64 = |t: &DataType| matches!(t, DataType::List(i) if i.data_type() == &DataType::Float64);
                f.iter().any(|f| f.name() == "type" && f.data_type() == &DataType::Utf8)
                    && f.iter().any(|f| f.name() == "edges" && list_of_f64(f.data_type()))
                    && f.iter().any(|f| f.name() == "values" && list_of_f64(f.data_type()))
            }
            _ => false,
        };
        if !ok {
            return Err(format!(
                "column {name} is {}, not {want} as neptune-exporter writes it",
                field.data_type()
            ));
        }
    }
    Ok(())
}

impl<'a> Columns<'a> {
    /// The batch's columns (the schema was checked: every one is there, of its type).
    fn of(batch: &'a RecordBatch) -> Result<Columns<'a>, String> {
        let col =
            |name: &str| batch.column_by_name(name).ok_or_else(|| format!("no column {name}"));
        let string = |name: &str| {
            col(name)?.as_string_opt::<i32>().ok_or_else(|| format!("column {name} is no string"))
        };
        let ts = |name: &str| -> Result<Timestamps<'a>, String> {
            let c = col(name)?;
            match c.data_type() {
                DataType::Timestamp(unit, _) => Ok(Timestamps { values: c.as_ref(), unit: *unit }),
                t => Err(format!("column {name} is {t}, not a timestamp")),
            }
        };
        let step = col("step")?;
        let step_scale = match step.data_type() {
            DataType::Decimal128(_, s) => *s,
            t => return Err(format!("column step is {t}, not decimal128")),
        };
        Ok(Columns {
            project_id: string("project_id")?,
            run_id: string("run_id")?,
            path: string("attribute_path")?,
            kind: string("attribute_type")?,
            step: step.as_primitive::<Decimal128Type>(),
            step_scale,
            timestamp: ts("timestamp")?,
            int: col("int_value")?.as_primitive::<Int64Type>(),
            float: col("float_value")?.as_primitive::<Float64Type>(),
            string: string("string_value")?,
            bool: col("bool_value")?.as_boolean_opt().ok_or("column bool_value is no bool")?,
            datetime: ts("datetime_value")?,
            string_set: col("string_set_value")?
                .as_list_opt::<i32>()
                .ok_or("column string_set_value is no list")?,
            file: col("file_value")?.as_struct_opt().ok_or("column file_value is no struct")?,
            histogram: col("histogram_value")?
                .as_struct_opt()
                .ok_or("column histogram_value is no struct")?,
        })
    }

    /// The step of row `i`, as the nearest float to its decimal.
    fn step(&self, i: usize) -> Result<Step, String> {
        if self.step.is_null(i) {
            return Err("no step".into());
        }
        let raw = self.step.value(i);
        let value = decimal_to_f64(raw, self.step_scale);
        Step::new(value).map_err(|e| e.to_string())
    }

    /// The timestamp of row `i` in unix seconds (rounded down).
    fn ts(&self, i: usize) -> Option<i64> {
        self.timestamp.micros(i).map(|us| us.div_euclid(1_000_000))
    }
}

/// `raw × 10^-scale` as the nearest `f64` (exact division of exact operands when `raw`
/// is below 2^53, which a `decimal128(18, 6)` always is).
fn decimal_to_f64(raw: i128, scale: i8) -> f64 {
    let scale = i32::from(scale);
    #[allow(clippy::cast_precision_loss)] // Exact below 2^53; the nearest float beyond.
    let v = raw as f64;
    if scale >= 0 { v / 10f64.powi(scale) } else { v * 10f64.powi(-scale) }
}

/// The state of one run's import across its parts.
#[derive(Default)]
struct RunState {
    run: Option<Box<RunImport>>,
    /// The Neptune run id (rows of other runs are skipped).
    neptune_run: String,
    /// Paths parsed, or why they are not field paths.
    paths: HashMap<String, Result<FieldPath, String>>,
    closed_at: Option<String>,
    skipped: u64,
}

impl RunState {
    /// Opens the target run from the first row; `Ok(false)` when it is skipped.
    fn open(
        &mut self,
        cols: &Columns<'_>,
        target: &Target,
        options: &Options,
        report: &mut RunReport,
    ) -> Result<bool, String> {
        let project_id = cols.project_id.value(0);
        let neptune_run = cols.run_id.value(0);
        let project = match &options.project {
            Some(p) => p.clone(),
            None => ProjectName::parse(project_id).map_err(|e| {
                format!(
                    "the Neptune project {project_id:?} is no goodseed project name ({e}): \
                         name one with -p"
                )
            })?,
        };
        let run_id = crate::run_id_from(neptune_run);
        report.run = Some(format!("{project}/{run_id}"));
        let mut new = NewRun::new(run_id.clone(), project.clone());
        let field = |p: &str| FieldPath::parse(p).expect("fixed paths are valid");
        new.configs.push((field("neptune/project_id"), ConfigValue::Str(project_id.to_owned())));
        new.configs.push((field("neptune/run_id"), ConfigValue::Str(neptune_run.to_owned())));
        let source = format!("neptune:{project_id}/{neptune_run}");
        self.neptune_run = neptune_run.to_owned();
        match target.open(&project, &run_id, &new, &now(), &source)? {
            Opened::Write(run) => {
                self.run = Some(run);
                Ok(true)
            }
            Opened::Skip(why) => {
                report.outcome = Outcome::Skipped(why);
                Ok(false)
            }
        }
    }

    /// Imports the rows of one batch.
    fn rows(
        &mut self,
        cols: &Columns<'_>,
        shown: &str,
        files: &RunFiles,
        files_root: Option<&Path>,
        problems: &mut Problems,
    ) -> Result<(), String> {
        for i in 0..cols.path.len() {
            if let Err(reason) = self.row(cols, i, files, files_root) {
                if let Some(fatal) = self.run.as_deref().and_then(RunImport::failed) {
                    return Err(fatal.to_owned());
                }
                self.skipped += 1;
                let attr = if cols.path.is_null(i) { "" } else { cols.path.value(i) };
                problems.add(format!("{shown} (row of {attr})"), reason);
            }
        }
        Ok(())
    }

    fn row(
        &mut self,
        cols: &Columns<'_>,
        i: usize,
        files: &RunFiles,
        files_root: Option<&Path>,
    ) -> Result<(), String> {
        if cols.run_id.is_null(i) || cols.run_id.value(i) != self.neptune_run {
            return Err(format!(
                "a row of another run ({:?}) in the parts of {}",
                cols.run_id.is_valid(i).then(|| cols.run_id.value(i)),
                self.neptune_run
            ));
        }
        if cols.kind.is_null(i) || cols.path.is_null(i) {
            return Err("no attribute_type or attribute_path".into());
        }
        let kind = cols.kind.value(i);
        let text_path = cols.path.value(i);
        let path = crate::cached_path(&mut self.paths, text_path)?;
        let Some(run) = self.run.as_deref_mut() else { return Ok(()) };
        match kind {
            "float_series" => {
                let step = cols.step(i)?;
                let value = value_or(cols.float, i, "float_value")?;
                let ts = series_ts(cols, i)?;
                run.metric(path, step, value, ts)
            }
            "string_series" => {
                let step = cols.step(i)?;
                if cols.string.is_null(i) {
                    return Err("no string_value".into());
                }
                let ts = series_ts(cols, i)?;
                run.text(path, step, cols.string.value(i), ts)
            }
            "histogram_series" => {
                let step = cols.step(i)?;
                let h = histogram(cols.histogram, i)?;
                let ts = series_ts(cols, i)?;
                run.histogram(path, step, h, ts)
            }
            // A Neptune 2 `artifact` is kept as the exporter keeps it: its files' listing
            // (`files_list.json`), a file like any other.
            "file" | "artifact" | "file_series" => {
                let step = if kind == "file_series" { Some(cols.step(i)?) } else { None };
                let src = file_path(cols.file, i, files, files_root, Want::File)?;
                run.file(path.as_str(), step, &src)
                    .map_err(|e| format!("file {} not kept: {e}", src.display()))
            }
            "file_set" => {
                let dir = file_path(cols.file, i, files, files_root, Want::Directory)?;
                file_set(run, path.as_str(), &dir)
            }
            _ => {
                let value = param(cols, i, kind)?;
                let path = path.clone();
                self.param(text_path, path, value)
            }
        }
    }

    /// A parameter: Neptune's `sys/*` under `neptune/`, the few the run has a place for
    /// there too.
    fn param(&mut self, text: &str, path: FieldPath, value: ConfigValue) -> Result<(), String> {
        let Some(run) = self.run.as_deref_mut() else { return Ok(()) };
        if !text.starts_with("sys/") {
            return run.config(path, value);
        }
        match (text, &value) {
            ("sys/name", ConfigValue::Str(name)) if !name.is_empty() => {
                let name = RunName::parse(name).map_err(|e| e.to_string())?;
                run.name(&name)?;
            }
            ("sys/description", ConfigValue::Str(d)) if !d.is_empty() => {
                let path = FieldPath::parse("sys/description").map_err(|e| e.to_string())?;
                run.config(path, value.clone())?;
            }
            ("sys/tags", ConfigValue::StringSet(_)) => {
                run.config(goodseed_store::lifecycle::tags_path(), value.clone())?;
            }
            ("sys/creation_time", ConfigValue::DateTime(iso)) => run.created_at(iso)?,
            ("sys/modification_time", ConfigValue::DateTime(iso)) => {
                self.closed_at = Some(iso.clone());
            }
            _ => {}
        }
        let kept = FieldPath::parse(&format!("neptune/{text}")).map_err(|e| e.to_string())?;
        run.config(kept, value)
    }
}

fn value_or(col: &Float64Array, i: usize, name: &str) -> Result<f64, String> {
    if col.is_null(i) { Err(format!("no {name}")) } else { Ok(col.value(i)) }
}

/// The row's timestamp in unix seconds; a series row must have one.
fn series_ts(cols: &Columns<'_>, i: usize) -> Result<i64, String> {
    cols.ts(i).ok_or_else(|| "no timestamp".to_owned())
}

/// A parameter's value, of the exact type its `attribute_type` names.
fn param(cols: &Columns<'_>, i: usize, kind: &str) -> Result<ConfigValue, String> {
    let missing = |c: &str| Err(format!("a {kind} parameter with no {c}"));
    Ok(match kind {
        "float" => {
            if cols.float.is_null(i) {
                return missing("float_value");
            }
            ConfigValue::Float(cols.float.value(i))
        }
        "int" => {
            if cols.int.is_null(i) {
                return missing("int_value");
            }
            ConfigValue::Int(cols.int.value(i))
        }
        "string" => {
            if cols.string.is_null(i) {
                return missing("string_value");
            }
            ConfigValue::Str(cols.string.value(i).to_owned())
        }
        "bool" => {
            if cols.bool.is_null(i) {
                return missing("bool_value");
            }
            ConfigValue::Bool(cols.bool.value(i))
        }
        "datetime" => match cols.datetime.micros(i) {
            Some(us) => ConfigValue::DateTime(UtcMicros(us).to_iso8601()),
            None => return missing("datetime_value"),
        },
        "string_set" => {
            if cols.string_set.is_null(i) {
                return missing("string_set_value");
            }
            let list = cols.string_set.value(i);
            let strings = list.as_string_opt::<i32>().ok_or("string_set_value holds no strings")?;
            ConfigValue::StringSet(strings.iter().flatten().map(str::to_owned).collect())
        }
        other => return Err(format!("unknown attribute_type {other:?}")),
    })
}

/// The histogram of row `i`.
fn histogram(col: &StructArray, i: usize) -> Result<Histogram, String> {
    if col.is_null(i) {
        return Err("no histogram_value".into());
    }
    let field = |name: &str| col.column_by_name(name).ok_or(format!("no histogram {name}"));
    let kind = field("type")?.as_string_opt::<i32>().ok_or("histogram type is no string")?;
    let floats = |name: &str| -> Result<Vec<f64>, String> {
        let list =
            field(name)?.as_list_opt::<i32>().ok_or(format!("histogram {name} is no list"))?;
        if list.is_null(i) {
            return Err(format!("a histogram with no {name}"));
        }
        let values = list.value(i);
        let values =
            values.as_primitive_opt::<Float64Type>().ok_or("histogram values are no floats")?;
        if values.null_count() > 0 {
            return Err(format!("a histogram with a null in its {name}"));
        }
        Ok(values.values().to_vec())
    };
    let h = Histogram {
        kind: if kind.is_null(i) { String::new() } else { kind.value(i).to_owned() },
        edges: floats("edges")?,
        counts: floats("values")?,
    };
    h.check()?;
    Ok(h)
}

/// Where the file of row `i` is: `<files>/<project dir name>/<file_value.path>`, the path
/// relative and never leaving that directory.
/// What a file value must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    File,
    Directory,
}

/// Keeps every regular file under `dir` (a Neptune file set, as the exporter downloads
/// it) as an artifact `<name>/<path in the set>`. Links are not followed; a file that
/// cannot be kept is said, after the others are.
fn file_set(run: &mut RunImport, name: &str, dir: &Path) -> Result<(), String> {
    let mut stack = vec![dir.to_path_buf()];
    let mut failed: Vec<String> = Vec::new();
    while let Some(at) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&at)
            .map_err(|e| format!("cannot list {}: {e}", at.display()))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for e in entries {
            let path = e.path();
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(path);
            } else if t.is_file() {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let member = format!("{name}/{}", rel.join("/"));
                if let Err(e) = run.file(&member, None, &path) {
                    if run.failed().is_some() {
                        return Err(e);
                    }
                    failed.push(format!("{}: {e}", path.display()));
                }
            } else {
                failed.push(format!("{} is not a regular file", path.display()));
            }
        }
    }
    match failed.len() {
        0 => Ok(()),
        n => Err(format!("{n} file(s) of the file set not kept: {}", failed.join("; "))),
    }
}

fn file_path(
    col: &StructArray,
    i: usize,
    files: &RunFiles,
    root: Option<&Path>,
    want: Want,
) -> Result<PathBuf, String> {
    if col.is_null(i) {
        return Err("no file_value".into());
    }
    let paths = col
        .column_by_name("path")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or("file_value has no path")?;
    if paths.is_null(i) {
        return Err("no file_value.path".into());
    }
    let rel = Path::new(paths.value(i));
    if rel.as_os_str().is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(format!(
            "file path {:?} is not a plain relative path inside the files directory",
            rel.display().to_string()
        ));
    }
    let Some(root) = root else {
        return Err(format!(
            "file {} left out: no files directory (give --files, the exporter's --files-path)",
            rel.display()
        ));
    };
    let dir_name = files.project_dir.file_name().ok_or("the project directory has no name")?;
    let full = root.join(dir_name).join(rel);
    let meta = std::fs::symlink_metadata(&full)
        .map_err(|e| format!("file {} left out: {e}", full.display()))?;
    match want {
        Want::File if !meta.is_file() => Err(format!("{} is not a regular file", full.display())),
        Want::Directory if !meta.is_dir() => {
            Err(format!("{} is not a directory (a file set)", full.display()))
        }
        _ => Ok(full),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_steps_are_the_nearest_float() {
        assert_eq!(decimal_to_f64(1_500_000, 6), 1.5);
        assert_eq!(decimal_to_f64(100_000, 6), 0.1);
        assert_eq!(decimal_to_f64(123_456_789, 6), 123.456789);
        assert_eq!(decimal_to_f64(-2_000_000, 6), -2.0);
        assert_eq!(decimal_to_f64(999_999_999_999_999_999, 6), 999_999_999_999.999999);
    }
}
