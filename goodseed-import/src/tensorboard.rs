//! TensorBoard event files (`events.out.tfevents.*`), one run per directory.
//!
//! Each file is [`tfrecord`](crate::tfrecord) frames, each an `Event` protobuf (its wall
//! time, step, and a `Summary` of tagged values). What becomes what:
//!
//! - scalars, old style (`simple_value`) and new (a one-value float, double or integer
//!   `tensor`, plugin `scalars` or none): metric points at the event's step;
//! - text (plugin `text`, a string tensor): text points, several strings joined by new
//!   lines;
//! - images (`image`, or plugin `images`: width, height, then encoded images) and audio
//!   (`audio`): a file series at the tag, each file kept with the run;
//! - histograms (`histo`, or plugin `histograms`: a k×3 tensor of left edge, right edge
//!   and count): histograms, the unbounded outer edges clamped to the data's min and max;
//! - hparams (plugin `hparams`, its session start): configs of their type.
//!
//! Wall times are kept to the second; the run was created at its first event and closed
//! at its last. The messages are declared here with prost (only the fields read).

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, FieldPath, Histogram, ProjectName, RunName, Step};
use goodseed_store::lifecycle::NewRun;
use prost::Message as _;

use crate::target::{RunImport, now};
use crate::tfrecord::Records;
use crate::{Opened, Options, Outcome, Problems, Progress, Report, RunReport, Shared, Target};

/// The protobuf messages of TensorFlow's event files, as far as they are read here.
pub mod proto {
    /// One record of an event file.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Event {
        /// Unix seconds.
        #[prost(double, tag = "1")]
        pub wall_time: f64,
        /// The global step.
        #[prost(int64, tag = "2")]
        pub step: i64,
        /// The first event of a file (`brain.Event:2`).
        #[prost(string, optional, tag = "3")]
        pub file_version: Option<String>,
        /// Tagged values.
        #[prost(message, optional, tag = "5")]
        pub summary: Option<Summary>,
    }

    /// Values logged at one step.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Summary {
        /// The values.
        #[prost(message, repeated, tag = "1")]
        pub value: Vec<Value>,
    }

    /// One tagged value.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        /// The tag (`loss`, `train/acc`).
        #[prost(string, tag = "1")]
        pub tag: String,
        /// An old-style scalar.
        #[prost(float, optional, tag = "2")]
        pub simple_value: Option<f32>,
        /// An old-style image.
        #[prost(message, optional, tag = "4")]
        pub image: Option<Image>,
        /// An old-style histogram.
        #[prost(message, optional, tag = "5")]
        pub histo: Option<HistogramProto>,
        /// An old-style audio clip.
        #[prost(message, optional, tag = "6")]
        pub audio: Option<Audio>,
        /// A new-style value: a tensor read as its plugin says.
        #[prost(message, optional, tag = "8")]
        pub tensor: Option<TensorProto>,
        /// Which plugin wrote it (and its data).
        #[prost(message, optional, tag = "9")]
        pub metadata: Option<SummaryMetadata>,
    }

    /// An encoded image.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Image {
        /// Its height in pixels.
        #[prost(int32, tag = "1")]
        pub height: i32,
        /// Its width in pixels.
        #[prost(int32, tag = "2")]
        pub width: i32,
        /// PNG (or JPEG, GIF) bytes.
        #[prost(bytes = "vec", tag = "4")]
        pub encoded_image_string: Vec<u8>,
    }

    /// An encoded audio clip.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Audio {
        /// WAV bytes (as `content_type` says).
        #[prost(bytes = "vec", tag = "4")]
        pub encoded_audio_string: Vec<u8>,
        /// Its media type.
        #[prost(string, tag = "5")]
        pub content_type: String,
    }

    /// An old-style histogram: bucket `i` is `(bucket_limit[i-1], bucket_limit[i]]`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HistogramProto {
        /// The least value.
        #[prost(double, tag = "1")]
        pub min: f64,
        /// The greatest value.
        #[prost(double, tag = "2")]
        pub max: f64,
        /// The right edge of each bucket.
        #[prost(double, repeated, tag = "6")]
        pub bucket_limit: Vec<f64>,
        /// The count of each bucket.
        #[prost(double, repeated, tag = "7")]
        pub bucket: Vec<f64>,
    }

    /// Which plugin wrote a value.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SummaryMetadata {
        /// The plugin and its data.
        #[prost(message, optional, tag = "1")]
        pub plugin_data: Option<PluginData>,
    }

    /// A plugin's name and its own data.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PluginData {
        /// `scalars`, `text`, `images`, `histograms`, `hparams`, …
        #[prost(string, tag = "1")]
        pub plugin_name: String,
        /// The plugin's protobuf.
        #[prost(bytes = "vec", tag = "2")]
        pub content: Vec<u8>,
    }

    /// A tensor.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        /// Its element type (TensorFlow's `DataType`).
        #[prost(int32, tag = "1")]
        pub dtype: i32,
        /// Its shape.
        #[prost(message, optional, tag = "2")]
        pub tensor_shape: Option<TensorShape>,
        /// Its elements packed little-endian (instead of the typed lists).
        #[prost(bytes = "vec", tag = "4")]
        pub tensor_content: Vec<u8>,
        /// `DT_FLOAT` elements.
        #[prost(float, repeated, tag = "5")]
        pub float_val: Vec<f32>,
        /// `DT_DOUBLE` elements.
        #[prost(double, repeated, tag = "6")]
        pub double_val: Vec<f64>,
        /// `DT_INT32` (and smaller) elements.
        #[prost(int32, repeated, tag = "7")]
        pub int_val: Vec<i32>,
        /// `DT_STRING` elements.
        #[prost(bytes = "vec", repeated, tag = "8")]
        pub string_val: Vec<Vec<u8>>,
        /// `DT_INT64` elements.
        #[prost(int64, repeated, tag = "10")]
        pub int64_val: Vec<i64>,
        /// `DT_BOOL` elements.
        #[prost(bool, repeated, tag = "11")]
        pub bool_val: Vec<bool>,
    }

    /// A tensor's shape.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorShape {
        /// Its dimensions.
        #[prost(message, repeated, tag = "2")]
        pub dim: Vec<Dim>,
    }

    /// One dimension.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dim {
        /// Its size.
        #[prost(int64, tag = "1")]
        pub size: i64,
    }

    /// The hparams plugin's data.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HParamsPluginData {
        /// The start of a session: its hyperparameters.
        #[prost(message, optional, tag = "3")]
        pub session_start_info: Option<SessionStartInfo>,
    }

    /// A session's hyperparameters.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SessionStartInfo {
        /// Name to value.
        #[prost(btree_map = "string, message", tag = "1")]
        pub hparams: std::collections::BTreeMap<String, PbValue>,
    }

    /// `google.protobuf.Value`, the kinds an hparam takes.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PbValue {
        /// A number.
        #[prost(double, optional, tag = "2")]
        pub number_value: Option<f64>,
        /// A string.
        #[prost(string, optional, tag = "3")]
        pub string_value: Option<String>,
        /// A boolean.
        #[prost(bool, optional, tag = "4")]
        pub bool_value: Option<bool>,
    }

    /// TensorFlow's element types read here.
    pub mod dtype {
        /// 32-bit float.
        pub const FLOAT: i32 = 1;
        /// 64-bit float.
        pub const DOUBLE: i32 = 2;
        /// 32-bit integer.
        pub const INT32: i32 = 3;
        /// Bytes.
        pub const STRING: i32 = 7;
        /// 64-bit integer.
        pub const INT64: i32 = 9;
        /// Boolean.
        pub const BOOL: i32 = 10;
        /// 16-bit float.
        pub const HALF: i32 = 19;
    }
}

/// The prefix of an event file's name.
const EVENTS_PREFIX: &str = "events.out.tfevents.";

/// One directory of event files: one run.
#[derive(Debug)]
struct RunDir {
    dir: PathBuf,
    /// Relative to the log directory (`.` for the log directory itself).
    rel: String,
    files: Vec<(PathBuf, u64)>,
}

/// Imports every directory under `logdir` that holds event files, as one run each (the
/// log directory's own files as a run too). The project is [`Options::project`], else
/// the log directory's name.
///
/// # Errors
/// When `logdir` cannot be read or holds no event file.
pub fn import(
    logdir: &Path,
    target: &Target,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report, String> {
    let meta = std::fs::metadata(logdir)
        .map_err(|e| format!("cannot read the log directory {}: {e}", logdir.display()))?;
    if !meta.is_dir() {
        return Err(format!(
            "{} is not a directory: give TensorBoard's --logdir",
            logdir.display()
        ));
    }
    let mut runs = Vec::new();
    find(logdir, logdir, &mut runs)?;
    if runs.is_empty() {
        return Err(format!(
            "no TensorBoard event files ({EVENTS_PREFIX}*) under {}",
            logdir.display()
        ));
    }
    let project = match &options.project {
        Some(p) => p.clone(),
        None => {
            let canonical = logdir.canonicalize().unwrap_or_else(|_| logdir.to_path_buf());
            let name =
                canonical.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            ProjectName::parse(&name).map_err(|e| {
                format!("the log directory's name is no project name ({e}): name one with -p")
            })?
        }
    };
    progress.set_total(runs.iter().flat_map(|r| &r.files).map(|f| f.1).sum());
    let shared = Shared::default();
    crate::each_parallel(runs, options.workers(), |run| {
        let mut problems = Problems::default();
        let share = crate::RunProgress::new(progress);
        let report = import_dir(&run, &project, target, &share, &mut problems);
        share.top_up(run.files.iter().map(|f| f.1).sum());
        shared.finish(report, problems);
    });
    Ok(shared.into_report())
}

/// Every directory under `dir` with event files, in path order.
fn find(root: &Path, dir: &Path, out: &mut Vec<RunDir>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for e in entries.filter_map(Result::ok) {
        let Ok(t) = e.file_type() else { continue };
        let name = e.file_name().to_string_lossy().into_owned();
        if t.is_dir() && !name.starts_with('.') {
            dirs.push(e.path());
        } else if t.is_file() && name.starts_with(EVENTS_PREFIX) {
            files.push((e.path(), e.metadata().map_or(0, |m| m.len())));
        }
    }
    files.sort();
    dirs.sort();
    if !files.is_empty() {
        let rel = dir.strip_prefix(root).unwrap_or(dir);
        let rel = if rel.as_os_str().is_empty() {
            ".".to_owned()
        } else {
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/")
        };
        out.push(RunDir { dir: dir.to_path_buf(), rel, files });
    }
    for d in dirs {
        find(root, &d, out)?;
    }
    Ok(())
}

fn import_dir(
    run: &RunDir,
    project: &ProjectName,
    target: &Target,
    progress: &dyn Progress,
    problems: &mut Problems,
) -> RunReport {
    let shown_dir = run.dir.display().to_string();
    let mut report = RunReport {
        source: shown_dir.clone(),
        run: None,
        outcome: Outcome::Imported,
        counts: crate::Counts::default(),
    };
    let canonical = run.dir.canonicalize().unwrap_or_else(|_| run.dir.clone());
    let run_id = crate::run_id_from(&run.rel.replace('/', "-"));
    report.run = Some(format!("{project}/{run_id}"));
    let source = format!("tensorboard:{}", canonical.display());
    let mut new = NewRun::new(run_id.clone(), project.clone());
    let name = if run.rel == "." {
        canonical.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    } else {
        run.rel.clone()
    };
    new.name = RunName::parse(&name).ok();
    if let Ok(p) = FieldPath::parse("tensorboard/dir") {
        new.configs.push((p, ConfigValue::Str(canonical.display().to_string())));
    }
    let mut imp = match target.open(project, &run_id, &new, &now(), &source) {
        Ok(Opened::Write(imp)) => imp,
        Ok(Opened::Skip(why)) => {
            report.outcome = Outcome::Skipped(why);
            return report;
        }
        Err(e) => {
            report.outcome = Outcome::Failed(e);
            return report;
        }
    };
    progress.working_on(imp.shown());
    let mut state = State::default();
    let mut failed = None;
    for (path, _) in &run.files {
        if let Err(e) = read_file(path, &mut imp, &mut state, progress, problems) {
            failed = Some(e);
            break;
        }
    }
    report.counts.skipped = state.skipped;
    if let Some(e) = failed {
        report.outcome = Outcome::Failed(e);
        return report;
    }
    if let Some(first) = state.first_wall {
        let iso = UtcMicros::from_unix_float_parts(first.0, first.1).to_iso8601();
        if let Err(e) = imp.created_at(&iso) {
            report.outcome = Outcome::Failed(e);
            return report;
        }
    }
    let closed = state
        .last_wall
        .map(|(s, n)| UtcMicros::from_unix_float_parts(s, n).to_iso8601())
        .unwrap_or_else(now);
    match imp.finish(&closed) {
        Ok((counts, outcome)) => {
            let skipped = report.counts.skipped;
            report.counts = counts;
            report.counts.skipped = skipped;
            report.outcome = outcome;
        }
        Err(e) => report.outcome = Outcome::Failed(e),
    }
    report
}

/// What one run's files have shown so far.
#[derive(Default)]
struct State {
    first_wall: Option<(i64, u32)>,
    last_wall: Option<(i64, u32)>,
    skipped: u64,
    paths: HashMap<String, Result<FieldPath, String>>,
}

/// Splits unix seconds into whole seconds and nanoseconds.
fn split_time(t: f64) -> Option<(i64, u32)> {
    if !(0.0..=1e12).contains(&t) {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (s, n) = (t.floor() as i64, ((t - t.floor()) * 1e9) as u32);
    Some((s, n.min(999_999_999)))
}

/// Reads one event file into the run. An unreadable record is a problem and the rest is
/// read; an error is returned only when the run cannot be written.
fn read_file(
    path: &Path,
    imp: &mut RunImport,
    state: &mut State,
    progress: &dyn Progress,
    problems: &mut Problems,
) -> Result<(), String> {
    let shown = path.display().to_string();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            problems.add(shown, format!("cannot open: {e}"));
            state.skipped += 1;
            return Ok(());
        }
    };
    let mut records = Records::new(BufReader::with_capacity(1 << 20, file));
    let mut told = 0;
    let mut n = 0u64;
    loop {
        let event = match records.next_record() {
            None => break,
            Some(Ok(data)) => proto::Event::decode(data),
            Some(Err(e)) => {
                state.skipped += 1;
                problems.add(shown.clone(), e.to_string());
                continue;
            }
        };
        n += 1;
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                state.skipped += 1;
                problems.add(shown.clone(), format!("record {n} is no Event: {e}"));
                continue;
            }
        };
        if let Some(t) = split_time(event.wall_time) {
            if state.first_wall.is_none_or(|f| t < f) {
                state.first_wall = Some(t);
            }
            if state.last_wall.is_none_or(|l| t > l) {
                state.last_wall = Some(t);
            }
        }
        if let Some(summary) = event.summary {
            let step = match Step::try_from(event.step) {
                Ok(step) => step,
                Err(e) => {
                    state.skipped += 1;
                    problems.add(shown.clone(), e.to_string());
                    continue;
                }
            };
            let ts = split_time(event.wall_time).map_or(0, |t| t.0);
            for value in summary.value {
                if let Err(reason) = one_value(value, step, ts, imp, state) {
                    if let Some(fatal) = imp.failed() {
                        return Err(fatal.to_owned());
                    }
                    state.skipped += 1;
                    problems.add(format!("{shown} (record {n})"), reason);
                }
            }
        }
        if n.is_multiple_of(4096) {
            let at = records.offset();
            progress.advance(at - told);
            told = at;
        }
    }
    let size = std::fs::metadata(path).map_or(records.offset(), |m| m.len());
    progress.advance(size.saturating_sub(told));
    Ok(())
}

/// Imports one tagged value; an error says why it was left out.
fn one_value(
    value: proto::Value,
    step: Step,
    ts: i64,
    imp: &mut RunImport,
    state: &mut State,
) -> Result<(), String> {
    let plugin = value
        .metadata
        .as_ref()
        .and_then(|m| m.plugin_data.as_ref())
        .map(|p| p.plugin_name.as_str())
        .unwrap_or("");
    if plugin == "hparams" {
        return hparams(&value, imp);
    }
    // tensorboardX files text under `<tag>/text_summary`; TensorBoard and tbparse show
    // `<tag>`.
    let tag = match plugin {
        "text" => value.tag.strip_suffix("/text_summary").unwrap_or(&value.tag),
        _ => &value.tag,
    };
    let path = tag_path(&mut state.paths, tag)?;
    if let Some(v) = value.simple_value {
        return imp.metric(path, step, f64::from(v), ts);
    }
    if let Some(image) = value.image {
        let name = format!("{}.png", value.tag);
        return imp
            .file_bytes(path.as_str(), Some(step), &image.encoded_image_string)
            .map_err(|e| format!("image {name} not kept: {e}"));
    }
    if let Some(h) = value.histo {
        return imp.histogram(path, step, old_histogram(&h)?, ts);
    }
    if let Some(audio) = value.audio {
        return imp
            .file_bytes(path.as_str(), Some(step), &audio.encoded_audio_string)
            .map_err(|e| format!("audio {} not kept: {e}", value.tag));
    }
    let Some(tensor) = value.tensor else {
        return Err(format!("value {:?} holds nothing this importer reads", value.tag));
    };
    match plugin {
        "text" => {
            let strings = strings(&tensor)?;
            imp.text(path, step, &strings.join("\n"), ts)
        }
        "images" => {
            let strings = tensor.string_val;
            if strings.len() < 3 {
                return Err(format!("image {} holds no image", value.tag));
            }
            let many = strings.len() > 3;
            let base = path.to_string();
            for (k, bytes) in strings.iter().skip(2).enumerate() {
                let name = if many { format!("{base}/{k}") } else { base.clone() };
                let p = tag_path(&mut state.paths, &name)?;
                imp.file_bytes(p.as_str(), Some(step), bytes)
                    .map_err(|e| format!("image {name} not kept: {e}"))?;
            }
            Ok(())
        }
        "histograms" => imp.histogram(path, step, new_histogram(&tensor)?, ts),
        "scalars" | "" => imp.metric(path, step, scalar(&tensor)?, ts),
        other => Err(format!("plugin {other:?} of {} is not imported", value.tag)),
    }
}

/// The field path of a tag, parsed once per run (see `crate::cached_path`).
fn tag_path<'a>(
    paths: &'a mut HashMap<String, Result<FieldPath, String>>,
    tag: &str,
) -> Result<&'a FieldPath, String> {
    crate::cached_path(paths, tag).map_err(|e| format!("tag {tag:?} is no field path: {e}"))
}

/// A one-value numeric tensor as a float.
fn scalar(t: &proto::TensorProto) -> Result<f64, String> {
    use proto::dtype;
    let content = &t.tensor_content;
    let v = match t.dtype {
        dtype::FLOAT => t.float_val.first().map(|v| f64::from(*v)).or_else(|| {
            content
                .get(..4)
                .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap_or_default())))
        }),
        dtype::DOUBLE => t.double_val.first().copied().or_else(|| {
            content.get(..8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()))
        }),
        dtype::INT32 => t.int_val.first().map(|v| f64::from(*v)).or_else(|| {
            content
                .get(..4)
                .map(|b| f64::from(i32::from_le_bytes(b.try_into().unwrap_or_default())))
        }),
        #[allow(clippy::cast_precision_loss)]
        dtype::INT64 => t.int64_val.first().map(|v| *v as f64).or_else(|| {
            content.get(..8).map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()) as f64)
        }),
        dtype::BOOL => t.bool_val.first().map(|b| if *b { 1.0 } else { 0.0 }),
        dtype::HALF => t.int_val.first().map(|bits| half_to_f64(*bits as u16)).or_else(|| {
            content
                .get(..2)
                .map(|b| half_to_f64(u16::from_le_bytes(b.try_into().unwrap_or_default())))
        }),
        other => return Err(format!("a scalar tensor of type {other} is not read")),
    };
    v.ok_or_else(|| "an empty scalar tensor".to_owned())
}

/// An IEEE half-precision float.
fn half_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// A string tensor's strings.
fn strings(t: &proto::TensorProto) -> Result<Vec<String>, String> {
    if t.dtype != proto::dtype::STRING {
        return Err(format!("a text tensor of type {}, not strings", t.dtype));
    }
    Ok(t.string_val.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())
}

/// An old-style histogram: `bucket_limit` are right edges, the first bucket starting at
/// `min`; limits outside the data (TensorFlow's ±1e12 and ±`DBL_MAX`) are clamped to
/// `min` and `max`.
fn old_histogram(h: &proto::HistogramProto) -> Result<Histogram, String> {
    if h.bucket.len() != h.bucket_limit.len() {
        return Err(format!(
            "a histogram of {} counts and {} limits",
            h.bucket.len(),
            h.bucket_limit.len()
        ));
    }
    let (lo, hi) = (h.min, h.max);
    let mut edges = Vec::with_capacity(h.bucket.len() + 1);
    // No value is below `min`: a bucket whose limit is lower holds nothing, and becomes
    // an empty bucket at `min` rather than stretching the axis to TensorFlow's ±1e12.
    edges.push(lo);
    for &limit in &h.bucket_limit {
        let prev = edges.last().copied().unwrap_or(lo);
        edges.push(limit.clamp(prev, hi.max(prev)));
    }
    let out = Histogram { kind: String::new(), edges, counts: h.bucket.clone() };
    out.check()?;
    Ok(out)
}

/// A new-style histogram: a k×3 double tensor of left edge, right edge and count.
fn new_histogram(t: &proto::TensorProto) -> Result<Histogram, String> {
    let values: Vec<f64> = match t.dtype {
        proto::dtype::DOUBLE if !t.double_val.is_empty() => t.double_val.clone(),
        proto::dtype::DOUBLE => t
            .tensor_content
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()))
            .collect(),
        proto::dtype::FLOAT if !t.float_val.is_empty() => {
            t.float_val.iter().map(|v| f64::from(*v)).collect()
        }
        proto::dtype::FLOAT => t
            .tensor_content
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap_or_default())))
            .collect(),
        other => return Err(format!("a histogram tensor of type {other}")),
    };
    if values.is_empty() || !values.len().is_multiple_of(3) {
        return Err(format!("a histogram tensor of {} values, not k×3", values.len()));
    }
    let mut edges = vec![values[0]];
    let mut counts = Vec::new();
    for row in values.chunks_exact(3) {
        let prev = edges.last().copied().unwrap_or(row[0]);
        edges.push(row[1].max(prev));
        counts.push(row[2]);
    }
    let out = Histogram { kind: String::new(), edges, counts };
    out.check()?;
    Ok(out)
}

/// The hyperparameters of a session start, as configs under `hparams/`.
fn hparams(value: &proto::Value, imp: &mut RunImport) -> Result<(), String> {
    let content = value
        .metadata
        .as_ref()
        .and_then(|m| m.plugin_data.as_ref())
        .map(|p| p.content.as_slice())
        .unwrap_or_default();
    let data = proto::HParamsPluginData::decode(content)
        .map_err(|e| format!("hparams data is unreadable: {e}"))?;
    let Some(start) = data.session_start_info else { return Ok(()) };
    for (name, v) in start.hparams {
        let path = FieldPath::parse(&format!("hparams/{name}"))
            .map_err(|e| format!("hparam {name:?} is no field path: {e}"))?;
        let value = if let Some(b) = v.bool_value {
            ConfigValue::Bool(b)
        } else if let Some(s) = v.string_value {
            ConfigValue::Str(s)
        } else if let Some(n) = v.number_value {
            number(n)
        } else {
            ConfigValue::Null
        };
        imp.config(path, value)?;
    }
    Ok(())
}

/// A protobuf number as an int when it is a whole one that fits, else a float.
fn number(n: f64) -> ConfigValue {
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        ConfigValue::Int(n as i64)
    } else {
        ConfigValue::Float(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves() {
        assert_eq!(half_to_f64(0x3c00), 1.0);
        assert_eq!(half_to_f64(0xc000), -2.0);
        assert_eq!(half_to_f64(0x7c00), f64::INFINITY);
        assert!(half_to_f64(0x7e00).is_nan());
    }

    #[test]
    fn old_histograms_clamp_their_outer_limits() {
        let h = proto::HistogramProto {
            min: -1.0,
            max: 3.0,
            bucket_limit: vec![-1e12, 0.0, 2.0, f64::MAX],
            bucket: vec![0.0, 1.0, 4.0, 2.0],
        };
        let got = old_histogram(&h).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.edges, vec![-1.0, -1.0, 0.0, 2.0, 3.0]);
        assert_eq!(got.counts, vec![0.0, 1.0, 4.0, 2.0]);
        let bad = proto::HistogramProto { bucket: vec![1.0], ..h };
        assert!(old_histogram(&bad).is_err());
    }

    #[test]
    fn new_histograms_are_k_by_3() {
        let t = proto::TensorProto {
            dtype: proto::dtype::DOUBLE,
            double_val: vec![0.0, 1.0, 5.0, 1.0, 2.0, 3.0],
            ..Default::default()
        };
        let got = new_histogram(&t).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.edges, vec![0.0, 1.0, 2.0]);
        assert_eq!(got.counts, vec![5.0, 3.0]);
        let t = proto::TensorProto { double_val: vec![0.0, 1.0], ..t };
        assert!(new_histogram(&t).is_err());
    }

    #[test]
    fn hparam_numbers() {
        assert_eq!(number(3.0), ConfigValue::Int(3));
        assert_eq!(number(0.1), ConfigValue::Float(0.1));
    }
}
