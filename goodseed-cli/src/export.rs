//! `goodseed export PROJECT/RUN`: a run's points as CSV or JSON, streamed from the store
//! point by point (a series of millions of points is never held in memory).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};

use anyhow::Context as _;
use goodseed_core::{ConfigValue, MetricPoint, RunStatus, python_float_repr};
use goodseed_server::encode::{self, LoggedAt};
use goodseed_server::json::Json;
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
    let opened = open_store(args.data.location()?)?;
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
                        encode::logged_at(p.ts)
                    )
                })
            }
            ExportFormat::Json => {
                let reading = || format!("reading run {}", self.run);
                let meta = self.reader.meta().with_context(reading)?;
                let (status, _) = run_ref::status(store, self.run, &meta).with_context(reading)?;
                write!(out, "{{\"run\": {}", run_json(self.run, &meta, &status))
                    .map_err(context_writing)?;
                let mut configs = self.reader.configs().with_context(reading)?;
                configs.sort_by(|a, b| a.0.cmp(&b.0));
                write!(out, ",\n\"configs\": {}", configs_json(&configs))
                    .map_err(context_writing)?;
                write!(out, ",\n\"metrics\": [").map_err(context_writing)?;
                let mut first = true;
                let mut times = LoggedAt::default();
                self.each_metric(out, &mut |out, path, p| {
                    let sep = if std::mem::take(&mut first) { "\n" } else { ",\n" };
                    let mut j = Json::with_capacity(128);
                    encode::metric_point(&mut j, path, &p, integer_steps, &mut times);
                    write!(out, "{sep}{}", j.finish())
                })?;
                write!(out, "{}],\n\"text\": [", if first { "" } else { "\n" })
                    .map_err(context_writing)?;
                let wrote = self.each_text(out, integer_steps)?;
                write!(out, "{}]", if wrote { "\n" } else { "" }).map_err(context_writing)?;
                self.histograms(out, integer_steps)?;
                writeln!(out, "}}").map_err(context_writing)
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

    /// Writes `,"histograms": [...]` when the run has histogram series (ours: imports
    /// bring them), each `{path, step, logged_at, kind, edges, counts}` in path then step
    /// order.
    fn histograms(&self, out: &mut dyn Write, integer_steps: bool) -> anyhow::Result<()> {
        let reading = || format!("reading the histograms of run {}", self.run);
        let paths = self.reader.histogram_paths().with_context(reading)?;
        if paths.is_empty() {
            return Ok(());
        }
        write!(out, ",\n\"histograms\": [").map_err(context_writing)?;
        let mut first = true;
        for path in &paths {
            for h in self.reader.histograms(path).with_context(reading)? {
                let sep = if std::mem::take(&mut first) { "\n" } else { ",\n" };
                let mut j = Json::with_capacity(64 + 40 * h.histogram.edges.len());
                encode::histogram_point(&mut j, Some(path), &h, integer_steps);
                write!(out, "{sep}{}", j.finish()).map_err(context_writing)?;
            }
        }
        write!(out, "\n]").map_err(context_writing)
    }

    /// Writes every chosen text point as JSON objects, a page at a time; true if any.
    fn each_text(&self, out: &mut dyn Write, integer_steps: bool) -> anyhow::Result<bool> {
        let mut wrote = false;
        let mut times = LoggedAt::default();
        for path in &self.texts {
            let mut offset = 0;
            loop {
                let page = self
                    .reader
                    .text_points(Some(path), TextWindow::Page { limit: TEXT_PAGE, offset })
                    .with_context(|| format!("reading text {path:?} of run {}", self.run))?;
                for (path, p) in &page.points {
                    let sep = if std::mem::replace(&mut wrote, true) { ",\n" } else { "\n" };
                    let mut j = Json::with_capacity(128);
                    encode::text_point(&mut j, path, p, integer_steps, &mut times);
                    write!(out, "{sep}{}", j.finish()).map_err(context_writing)?;
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
fn run_json(run: &RunRef, meta: &RunMeta, status: &RunStatus) -> String {
    let mut j = Json::with_capacity(512);
    j.begin_object();
    j.key("project").str(run.project.as_str());
    j.key("run_id").str(run.run_id.as_str());
    j.key("name").opt_str(meta.name());
    j.key("status").str(status.as_str());
    j.key("created_at").opt_str(meta.created_at());
    j.key("closed_at").opt_str(meta.closed_at());
    j.key("trashed").bool(meta.trashed());
    j.key("meta").begin_object();
    for (key, value) in &meta.0 {
        j.key(key).str(value);
    }
    j.end_object().end_object();
    j.finish()
}

/// The `"configs"` object: path → value, typed as the HTTP API sends them.
fn configs_json(configs: &[(String, ConfigValue)]) -> String {
    let mut j = Json::with_capacity(64 + configs.len() * 48);
    j.begin_object();
    for (path, value) in configs {
        j.key(path);
        encode::config_value(&mut j, value);
    }
    j.end_object();
    j.finish()
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

/// A CSV text field, quoted when it holds a comma, a quote or a line break (RFC 4180),
/// and neutralised when a spreadsheet would read it as a formula (it starts with `=`,
/// `+`, `-`, `@`, a tab or a carriage return): a `'` is put before it and the field is
/// quoted, as OWASP recommends. Only text fields (paths) get this; numbers are ours.
fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula {
        format!("\"'{}\"", text.replace('"', "\"\"")).into()
    } else if text.contains([',', '"', '\n', '\r']) {
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
            ("=HYPERLINK(\"http://x\")", "\"'=HYPERLINK(\"\"http://x\"\")\""),
            ("+1", "\"'+1\""),
            ("-loss", "\"'-loss\""),
            ("@sum", "\"'@sum\""),
            ("\tx", "\"'\tx\""),
            ("\rx", "\"'\rx\""),
            ("a=b", "a=b"),
        ];
        for (text, want) in cases {
            assert_eq!(csv_field(text), want, "{text:?}");
        }
    }
}
