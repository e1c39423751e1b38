//! `goodseed export PROJECT/RUN`: a run's points as CSV or JSON, streamed from the store
//! point by point (a series of millions of points is never held in memory).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};

use anyhow::Context as _;
use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, MetricPoint, RunStatus, python_float_repr};
use goodseed_store::{RunMeta, RunReader, RunStore, TextWindow};

use crate::cli::{ExportArgs, ExportFormat};
use crate::progress::Progress;
use crate::run_ref::{self, RunRef};
use crate::store::open_store;

/// Text points are read this many at a time.
const TEXT_PAGE: u64 = 10_000;

/// Points are counted for the progress line in batches of this many.
const PROGRESS_BATCH: u64 = 4096;

/// Runs `goodseed export`, writing to `out` or to `--output`.
pub(crate) fn run(args: ExportArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let run = run_ref::parse(&args.run)?;
    let opened = open_store(args.data.dir)?;
    let store = &*opened.store;
    let reader = store
        .open_run(&run.project, &run.run_id)
        .map_err(|e| run_ref::store_error(e, &opened.dir))?;
    let (metrics, texts) = select_series(reader.as_ref(), &run, &args.paths, args.format)?;
    let export = Export { run: &run, reader: reader.as_ref(), metrics, texts };

    let Some(path) = args.output else {
        return export.write(args.format, store, out);
    };
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut file = BufWriter::new(file);
    let result = export
        .write(args.format, store, &mut file)
        .and_then(|()| file.flush().with_context(|| format!("writing {}", path.display())));
    if result.is_err() {
        // Leave no half-written export that looks like a whole one.
        drop(file);
        let _ = std::fs::remove_file(&path);
    }
    result
}

/// The series to export: every one, or those named with `--path` (each must exist; a
/// text series only in JSON, as CSV holds metrics only).
fn select_series(
    reader: &dyn RunReader,
    run: &RunRef,
    wanted: &[String],
    format: ExportFormat,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let reading = || format!("reading run {run}");
    let metrics = reader.metric_paths().with_context(reading)?;
    let texts = reader.text_paths().with_context(reading)?;
    if wanted.is_empty() {
        return Ok((metrics, texts));
    }
    let wanted: BTreeSet<&str> = wanted.iter().map(String::as_str).collect();
    let (mut chosen_metrics, mut chosen_texts) = (Vec::new(), Vec::new());
    for path in wanted {
        if metrics.iter().any(|m| m == path) {
            chosen_metrics.push(path.to_owned());
        } else if texts.iter().any(|t| t == path) {
            if format == ExportFormat::Csv {
                anyhow::bail!(
                    "{path:?} in run {run} is a text series; CSV holds metrics only, \
                     use --format json"
                );
            }
            chosen_texts.push(path.to_owned());
        } else {
            let known: Vec<&str> = metrics.iter().chain(&texts).map(String::as_str).collect();
            let shown = if known.is_empty() {
                "it has none".to_owned()
            } else if known.len() > 10 {
                format!("it has {} series: {}, …", known.len(), known[..10].join(", "))
            } else {
                format!("it has: {}", known.join(", "))
            };
            anyhow::bail!("run {run} has no series {path:?} ({shown})");
        }
    }
    Ok((chosen_metrics, chosen_texts))
}

/// One run's export.
struct Export<'a> {
    run: &'a RunRef,
    reader: &'a dyn RunReader,
    metrics: Vec<String>,
    texts: Vec<String>,
}

/// A failed write to the export's destination.
fn context_writing(err: io::Error) -> anyhow::Error {
    anyhow::Error::new(err).context("writing the export")
}

impl Export<'_> {
    fn write(
        &self,
        format: ExportFormat,
        store: &dyn RunStore,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        let integer_steps = self.reader.integer_steps().unwrap_or(false);
        let step = |s: f64| step_text(s, integer_steps);
        match format {
            ExportFormat::Csv => {
                writeln!(out, "path,step,value,logged_at").map_err(context_writing)?;
                self.each_metric(out, &mut |out, path, p| {
                    writeln!(
                        out,
                        "{},{},{},{}",
                        csv_field(path),
                        step(p.step),
                        python_float_repr(p.value),
                        logged_at(p.ts)
                    )
                })
            }
            ExportFormat::Json => {
                let reading = || format!("reading run {}", self.run);
                let meta = self.reader.meta().with_context(reading)?;
                let (status, _) = run_ref::status(store, self.run, &meta).with_context(reading)?;
                write!(out, "{{\"run\": ").map_err(context_writing)?;
                write_run(out, self.run, &meta, &status).map_err(context_writing)?;
                write!(out, ",\n\"configs\": ").map_err(context_writing)?;
                let mut configs = self.reader.configs().with_context(reading)?;
                configs.sort_by(|a, b| a.0.cmp(&b.0));
                write_configs(out, &configs).map_err(context_writing)?;
                write!(out, ",\n\"metrics\": [").map_err(context_writing)?;
                let mut first = true;
                self.each_metric(out, &mut |out, path, p| {
                    let sep = if std::mem::take(&mut first) { "\n" } else { ",\n" };
                    write!(
                        out,
                        "{sep}{{\"path\": {}, \"step\": {}, \"value\": {}, \"logged_at\": \"{}\"}}",
                        json_str(path),
                        step(p.step),
                        json_f64(p.value),
                        logged_at(p.ts)
                    )
                })?;
                write!(out, "{}],\n\"text\": [", if first { "" } else { "\n" })
                    .map_err(context_writing)?;
                let wrote = self.each_text(out, &step)?;
                writeln!(out, "{}]}}", if wrote { "\n" } else { "" }).map_err(context_writing)
            }
        }
    }

    /// Streams every chosen metric point to `row`, counting them on a progress line.
    fn each_metric(
        &self,
        out: &mut dyn Write,
        row: &mut dyn FnMut(&mut dyn Write, &str, MetricPoint) -> io::Result<()>,
    ) -> anyhow::Result<()> {
        // Counting costs a pass over each series' index: only for a progress line.
        let mut total = 0;
        if Progress::is_shown() {
            for path in &self.metrics {
                total += self.reader.metric_count(path)?;
            }
        }
        let mut progress = Progress::new("exported", "points", total);
        let mut failed: Option<io::Error> = None;
        let mut pending = 0;
        for path in &self.metrics {
            self.reader
                .visit_metrics(Some(path), &mut |path, point| {
                    if let Err(e) = row(out, path, point) {
                        failed = Some(e);
                        return false;
                    }
                    pending += 1;
                    if pending == PROGRESS_BATCH {
                        progress.advance(pending);
                        pending = 0;
                    }
                    true
                })
                .with_context(|| format!("reading metric {path:?} of run {}", self.run))?;
            if let Some(e) = failed.take() {
                return Err(context_writing(e));
            }
        }
        Ok(())
    }

    /// Writes every chosen text point as JSON objects, a page at a time; true if any.
    fn each_text(&self, out: &mut dyn Write, step: &dyn Fn(f64) -> String) -> anyhow::Result<bool> {
        let mut wrote = false;
        for path in &self.texts {
            let mut offset = 0;
            loop {
                let page = self
                    .reader
                    .text_points(Some(path), TextWindow::Page { limit: TEXT_PAGE, offset })
                    .with_context(|| format!("reading text {path:?} of run {}", self.run))?;
                for (path, p) in &page.points {
                    let sep = if std::mem::replace(&mut wrote, true) { ",\n" } else { "\n" };
                    write!(
                        out,
                        "{sep}{{\"path\": {}, \"step\": {}, \"value\": {}, \"logged_at\": \"{}\"}}",
                        json_str(path),
                        step(p.step),
                        json_str(&p.value),
                        logged_at(p.ts)
                    )
                    .map_err(context_writing)?;
                }
                let got = page.points.len() as u64;
                offset += got;
                if got < TEXT_PAGE {
                    break;
                }
            }
        }
        Ok(wrote)
    }
}

/// The `"run"` object: who the run is, its derived status, and its whole `run_meta`.
fn write_run(
    out: &mut dyn Write,
    run: &RunRef,
    meta: &RunMeta,
    status: &RunStatus,
) -> io::Result<()> {
    let opt = |v: Option<&str>| v.map_or_else(|| "null".to_owned(), json_str);
    write!(
        out,
        "{{\"project\": {}, \"run_id\": {}, \"name\": {}, \"status\": {}, \"created_at\": {}, \
         \"closed_at\": {}, \"trashed\": {}, \"meta\": {{",
        json_str(run.project.as_str()),
        json_str(run.run_id.as_str()),
        opt(meta.name()),
        json_str(status.as_str()),
        opt(meta.created_at()),
        opt(meta.closed_at()),
        meta.trashed(),
    )?;
    for (i, (key, value)) in meta.0.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        write!(out, "{sep}{}: {}", json_str(key), json_str(value))?;
    }
    write!(out, "}}}}")
}

/// The `"configs"` object: path → value, typed as JSON allows.
fn write_configs(out: &mut dyn Write, configs: &[(String, ConfigValue)]) -> io::Result<()> {
    write!(out, "{{")?;
    for (i, (path, value)) in configs.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        write!(out, "{sep}{}: {}", json_str(path), config_json(value))?;
    }
    write!(out, "}}")
}

/// A config value as JSON: booleans, numbers (NaN and infinities as strings), strings,
/// `null`, and string sets as arrays; a value of an unknown type as its stored text.
fn config_json(value: &ConfigValue) -> String {
    match value {
        ConfigValue::Bool(b) => b.to_string(),
        ConfigValue::Int(i) => i.to_string(),
        ConfigValue::Float(x) => json_f64(*x),
        ConfigValue::Str(s) | ConfigValue::DateTime(s) => json_str(s),
        ConfigValue::StringSet(set) => {
            let items: Vec<String> = set.iter().map(|s| json_str(s)).collect();
            format!("[{}]", items.join(", "))
        }
        ConfigValue::Raw { value: Some(v), .. } => json_str(v),
        _ => "null".to_owned(),
    }
}

/// A JSON string.
fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

/// A float as Python writes it, NaN and infinities as goodseed's HTTP API sends them.
fn json_f64(x: f64) -> String {
    if x.is_nan() {
        "\"NaN\"".to_owned()
    } else if x.is_infinite() {
        if x > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" }.to_owned()
    } else {
        python_float_repr(x)
    }
}

/// A step as Python writes the float (`3.0`); a whole number for files that store steps
/// as integers (before 0.4.0).
fn step_text(step: f64, integer_steps: bool) -> String {
    if integer_steps && step.fract() == 0.0 && step.abs() < 1e15 {
        format!("{}", step as i64)
    } else {
        python_float_repr(step)
    }
}

/// Unix seconds as ISO 8601 UTC.
fn logged_at(ts: i64) -> String {
    UtcMicros::from_unix_seconds(ts).to_iso8601()
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_csv_fields_that_need_it() {
        let cases = [
            ("train/loss", "train/loss"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
        ];
        for (text, want) in cases {
            assert_eq!(csv_field(text), want, "{text:?}");
        }
    }

    #[test]
    fn writes_floats_as_python_and_the_http_api_do() {
        let cases = [
            (0.1, "0.1"),
            (3.0, "3.0"),
            (1e-5, "1e-05"),
            (f64::NAN, "\"NaN\""),
            (f64::INFINITY, "\"Infinity\""),
            (f64::NEG_INFINITY, "\"-Infinity\""),
        ];
        for (x, want) in cases {
            assert_eq!(json_f64(x), want, "{x}");
        }
    }

    #[test]
    fn writes_config_values_as_json() {
        let cases = [
            (ConfigValue::Bool(false), "false"),
            (ConfigValue::Int(7), "7"),
            (ConfigValue::Float(f64::NAN), "\"NaN\""),
            (ConfigValue::Str("é\"".into()), "\"é\\\"\""),
            (ConfigValue::Null, "null"),
            (ConfigValue::StringSet(["b".to_owned(), "a".to_owned()].into()), "[\"a\", \"b\"]"),
            (
                ConfigValue::Raw { type_tag: "int".into(), value: Some("1".repeat(30)) },
                "\"111111111111111111111111111111\"",
            ),
        ];
        for (value, want) in cases {
            assert_eq!(config_json(&value), want, "{value:?}");
        }
    }
}
