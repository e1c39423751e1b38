//! CSV files of metrics (trackio's shape): a header, a step column (`step`, or
//! `global_step`, `_step`, `iteration`; without one each row is the next step from 0),
//! an optional time column (`timestamp`, `time`, `wall_time`: unix seconds or ISO 8601),
//! and one column per metric. A column whose first value is a number is a metric (empty
//! cells are no point; `nan` and `inf` are kept); one whose first value is not is a text
//! series. One run per file, named after it.

use std::fs::File;
use std::path::Path;

use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, FieldPath, ProjectName, RunName, Step};
use goodseed_store::lifecycle::NewRun;

use crate::target::now;
use crate::{Opened, Options, Outcome, Problems, Progress, Report, RunReport, Shared, Target};

/// The project runs go to without [`Options::project`].
pub const DEFAULT_PROJECT: &str = "imported";

const STEP_COLUMNS: [&str; 4] = ["step", "global_step", "_step", "iteration"];
const TIME_COLUMNS: [&str; 3] = ["timestamp", "time", "wall_time"];

/// Imports each CSV file as a run.
///
/// # Errors
/// When no file is given.
pub fn import(
    files: &[&Path],
    target: &Target,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report, String> {
    if files.is_empty() {
        return Err("no CSV file given".into());
    }
    let project = match &options.project {
        Some(p) => p.clone(),
        None => ProjectName::parse(DEFAULT_PROJECT).map_err(|e| e.to_string())?,
    };
    let sizes: Vec<u64> =
        files.iter().map(|f| std::fs::metadata(f).map_or(0, |m| m.len())).collect();
    progress.set_total(sizes.iter().sum());
    let shared = Shared::default();
    let items: Vec<(&Path, u64)> = files.iter().copied().zip(sizes).collect();
    crate::each_parallel(items, options.workers(), |(file, size)| {
        let mut problems = Problems::default();
        let report = import_file(file, &project, target, progress, &mut problems);
        progress.advance(size);
        shared.finish(report, problems);
    });
    Ok(shared.into_report())
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unknown,
    Metric,
    Text,
}

fn import_file(
    file: &Path,
    project: &ProjectName,
    target: &Target,
    progress: &dyn Progress,
    problems: &mut Problems,
) -> RunReport {
    let shown = file.display().to_string();
    let mut report = RunReport {
        source: shown.clone(),
        run: None,
        outcome: Outcome::Imported,
        counts: crate::Counts::default(),
    };
    let fail = |mut report: RunReport, why: String| {
        report.outcome = Outcome::Failed(why);
        report
    };
    let reader = match File::open(file) {
        Ok(f) => f,
        Err(e) => return fail(report, format!("cannot open {shown}: {e}")),
    };
    let mut csv = ::csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers = match csv.headers() {
        Ok(h) => h.clone(),
        Err(e) => return fail(report, format!("{shown} has no readable header: {e}")),
    };
    let find = |names: &[&str]| {
        headers.iter().position(|h| names.iter().any(|n| clean(h).eq_ignore_ascii_case(n)))
    };
    let step_col = find(&STEP_COLUMNS);
    let time_col = find(&TIME_COLUMNS);
    let mut columns: Vec<(usize, Result<FieldPath, String>, Kind)> = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        if Some(i) == step_col || Some(i) == time_col {
            continue;
        }
        let path = FieldPath::parse(clean(h)).map_err(|e| format!("column {h:?}: {e}"));
        columns.push((i, path, Kind::Unknown));
    }
    if columns.is_empty() {
        return fail(report, format!("{shown} has no metric column"));
    }
    let canonical = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let run_id = crate::run_id_from(&stem);
    report.run = Some(format!("{project}/{run_id}"));
    let mut new = NewRun::new(run_id.clone(), project.clone());
    new.name = RunName::parse(&stem).ok();
    if let Ok(p) = FieldPath::parse("csv/file") {
        new.configs.push((p, ConfigValue::Str(canonical.display().to_string())));
    }
    let source = format!("csv:{}", canonical.display());
    let mut imp = match target.open(project, &run_id, &new, &now(), &source) {
        Ok(Opened::Write(imp)) => imp,
        Ok(Opened::Skip(why)) => {
            report.outcome = Outcome::Skipped(why);
            return report;
        }
        Err(e) => return fail(report, e),
    };
    progress.working_on(imp.shown());
    let default_ts = UtcMicros::from(std::time::SystemTime::now()).unix_seconds();
    let (mut first_ts, mut last_ts) = (None::<i64>, None::<i64>);
    let mut skipped = 0;
    let mut record = ::csv::StringRecord::new();
    let mut row = 0u64;
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                skipped += 1;
                problems.add(shown.clone(), format!("unreadable row: {e}"));
                if e.is_io_error() {
                    break;
                }
                continue;
            }
        }
        row += 1;
        let line = record.position().map_or(row + 1, ::csv::Position::line);
        let at = format!("{shown}:{line}");
        #[allow(clippy::cast_precision_loss)]
        let step = match step_col.map(|c| record.get(c).unwrap_or("").trim()) {
            None => Step::new((row - 1) as f64).map_err(|e| e.to_string()),
            Some(text) => text
                .parse::<f64>()
                .map_err(|_| format!("step {text:?} is not a number"))
                .and_then(|v| Step::new(v).map_err(|e| e.to_string())),
        };
        let step = match step {
            Ok(s) => s,
            Err(why) => {
                skipped += 1;
                problems.add(at, why);
                continue;
            }
        };
        let ts = match time_col.map(|c| record.get(c).unwrap_or("").trim()) {
            None | Some("") => default_ts,
            Some(text) => match parse_time(text) {
                Some(t) => t,
                None => {
                    problems.add(at.clone(), format!("time {text:?} is neither unix seconds nor ISO 8601; the import time is used"));
                    default_ts
                }
            },
        };
        first_ts = Some(first_ts.map_or(ts, |f| f.min(ts)));
        last_ts = Some(last_ts.map_or(ts, |l| l.max(ts)));
        for (i, path, kind) in &mut columns {
            let cell = record.get(*i).unwrap_or("").trim();
            if cell.is_empty() {
                continue;
            }
            let path = match path {
                Ok(p) => p,
                Err(why) => {
                    skipped += 1;
                    problems.add(shown.clone(), why.clone());
                    continue;
                }
            };
            let number = parse_number(cell);
            if *kind == Kind::Unknown {
                *kind = if number.is_some() { Kind::Metric } else { Kind::Text };
            }
            let result = match (*kind, number) {
                (Kind::Metric, Some(v)) => imp.metric(path, step, v, ts),
                (Kind::Metric, None) => {
                    Err(format!("{cell:?} in the metric column {path} is not a number"))
                }
                _ => imp.text(path, step, cell, ts),
            };
            if let Err(why) = result {
                if let Some(fatal) = imp.failed() {
                    return fail(report, fatal.to_owned());
                }
                skipped += 1;
                problems.add(at.clone(), why);
            }
        }
    }
    if let Some(t) = first_ts.filter(|t| *t != default_ts)
        && let Err(e) = imp.created_at(&UtcMicros::from_unix_seconds(t).to_iso8601())
    {
        return fail(report, e);
    }
    let closed = last_ts.map_or_else(now, |t| UtcMicros::from_unix_seconds(t).to_iso8601());
    match imp.finish(&closed) {
        Ok((counts, outcome)) => {
            report.counts = counts;
            report.outcome = outcome;
        }
        Err(e) => return fail(report, e),
    }
    report.counts.skipped = skipped;
    report
}

/// A header cell without spaces around it or a byte-order mark before it (spreadsheets
/// write one).
fn clean(header: &str) -> &str {
    header.trim().trim_start_matches('\u{feff}').trim()
}

/// A number as Python and trackio write them (`nan`, `inf`, `-inf` included).
fn parse_number(text: &str) -> Option<f64> {
    match text.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "infinity" | "+inf" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => text.parse::<f64>().ok().filter(|v| v.is_finite()),
    }
}

/// Unix seconds (a number) or ISO 8601 text, as unix seconds.
fn parse_time(text: &str) -> Option<i64> {
    if let Ok(v) = text.parse::<f64>() {
        #[allow(clippy::cast_possible_truncation)]
        return (v.is_finite() && v.abs() < 1e12).then(|| v.floor() as i64);
    }
    let normalised =
        if text.len() == 19 { format!("{text}+00:00") } else { text.replace('Z', "+00:00") };
    UtcMicros::parse_iso8601(&normalised).map(UtcMicros::unix_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_times() {
        assert_eq!(parse_number("0.5"), Some(0.5));
        assert!(parse_number("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_number("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_number("adam"), None);
        assert_eq!(parse_time("1700000000.9"), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20"), Some(1_700_000_000));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(clean("\u{feff}step "), "step");
    }
}
