//! `goodseed show PROJECT/RUN`: one run on a screen. Its status (crashed included),
//! metadata, the Git commit and host it ran from, every config, and the last value of
//! every metric.

use std::io::{self, Write};
use std::time::SystemTime;

use anyhow::Context as _;
use goodseed_core::{ConfigValue, MetricPoint, python_float_repr};
use goodseed_store::RunSummary;
use goodseed_store::overview::{DurationKind, RunOverview};

use crate::cli::RunArgs;
use crate::display::{self, elide, one_line, width};
use crate::run_ref::{self, RunRef};
use crate::store::open_store;

/// Context for a failed write to the output.
const WRITING: &str = "writing to standard output";

/// Config values longer than this many characters are cut with `…`.
const MAX_VALUE_CHARS: usize = 72;

/// Paths wider than this do not widen the path column further.
const MAX_PATH_COLUMN: usize = 40;

/// Runs `goodseed show`.
pub(crate) fn run(args: RunArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let run = run_ref::parse(&args.run)?;
    let opened = open_store(args.data.location()?)?;
    let store = &*opened.store;
    let reader = store
        .open_run(&run.project, &run.run_id)
        .map_err(|e| run_ref::store_error(e, &opened.dir))?;
    let reading = || format!("reading run {run}");
    let summary = store.run_summary(&run.project, &run.run_id).with_context(reading)?;
    let mut configs = reader.configs().with_context(reading)?;
    configs.sort_by(|a, b| a.0.cmp(&b.0));
    let overview = RunOverview::of(&summary, &configs, reader.as_ref(), SystemTime::now())
        .with_context(reading)?;

    let header = Header { run: &run, summary: &summary, overview: &overview };
    header.write(out).context(WRITING)?;
    write_configs(out, &configs).context(WRITING)?;
    write_metrics(out, &overview.last, reader.integer_steps().unwrap_or(false)).context(WRITING)
}

/// What the first block of `show` is made of.
struct Header<'a> {
    run: &'a RunRef,
    summary: &'a RunSummary,
    overview: &'a RunOverview,
}

impl Header<'_> {
    fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let meta = &self.summary.meta;
        let text = |v: Option<&str>| v.filter(|s| !s.is_empty()).map_or("-".to_owned(), one_line);
        let rows = [
            ("status", self.summary.status.to_string()),
            ("ended by", self.ended_by()),
            ("run id", text(Some(self.run.run_id.as_str()))),
            ("name", text(meta.name())),
            ("project", text(Some(self.run.project.as_str()))),
            ("created", text(meta.created_at())),
            ("closed", text(meta.closed_at())),
            ("duration", self.duration()),
            ("host", self.host()),
            ("tags", self.tags()),
            ("git", self.git()),
            ("trashed", if meta.trashed() { "yes" } else { "no" }.to_owned()),
        ];
        for (label, value) in rows {
            writeln!(out, "{:<10}{value}", format!("{label}:"))?;
        }
        Ok(())
    }

    /// How the run ended (`-` while it runs), with the signal that killed it.
    fn ended_by(&self) -> String {
        let meta = &self.summary.meta;
        match goodseed_store::lifecycle::ended_by(meta, &self.summary.status) {
            None => "-".to_owned(),
            Some(by) => match meta.get(goodseed_store::meta_key::ENDED_BY_SIGNAL) {
                Some(signal) if by == "killed" => format!("killed ({})", one_line(signal)),
                _ => one_line(&by),
            },
        }
    }

    /// How long it ran (see `overview::duration`), saying when it is not to its close.
    fn duration(&self) -> String {
        match self.overview.duration {
            None => "-".to_owned(),
            Some(d) => {
                let text = display::duration(d.micros);
                match d.kind {
                    DurationKind::Closed => text,
                    DurationKind::SoFar => format!("{text} so far"),
                    DurationKind::ToLastHeartbeat => format!("{text} (to its last heartbeat)"),
                }
            }
        }
    }

    fn host(&self) -> String {
        let hosts: Vec<String> = self.overview.hosts.iter().map(|h| one_line(h)).collect();
        if hosts.is_empty() { "-".to_owned() } else { hosts.join(", ") }
    }

    fn tags(&self) -> String {
        let tags = &self.summary.tags;
        if tags.is_empty() {
            "-".to_owned()
        } else {
            tags.iter().map(|t| one_line(t)).collect::<Vec<_>>().join(", ")
        }
    }

    /// `<commit id>`, with `(dirty)` or `(clean)` when the run recorded it.
    fn git(&self) -> String {
        let Some(git) = &self.overview.git else { return "-".to_owned() };
        let Some(commit) = &git.commit else { return "-".to_owned() };
        match git.dirty {
            Some(true) => format!("{} (dirty)", one_line(commit)),
            Some(false) => format!("{} (clean)", one_line(commit)),
            None => one_line(commit),
        }
    }
}

/// A config value as stored (0.4.0's text for its type), on one line and cut short.
fn config_text(value: &ConfigValue) -> String {
    match value {
        ConfigValue::Null => "null".to_owned(),
        ConfigValue::Str(s) if s.is_empty() => "\"\"".to_owned(),
        other => elide(&other.encode().unwrap_or_else(|| "null".to_owned()), MAX_VALUE_CHARS),
    }
}

/// Rows as aligned columns, each line indented by two spaces; the last column is not
/// padded.
fn write_table<const N: usize>(
    out: &mut dyn Write,
    header: [&str; N],
    rows: &[[String; N]],
) -> io::Result<()> {
    let mut widths = header.map(width);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    widths[0] = widths[0].min(MAX_PATH_COLUMN);
    let mut line = |cells: [&str; N]| {
        let mut text = String::from(" ");
        for (i, cell) in cells.iter().enumerate() {
            text.push(' ');
            text.push_str(cell);
            if i + 1 < N {
                let pad = widths[i].saturating_sub(width(cell)) + 1;
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{text}")
    };
    line(header)?;
    for row in rows {
        line(std::array::from_fn(|i| row[i].as_str()))?;
    }
    Ok(())
}

fn write_configs(out: &mut dyn Write, configs: &[(String, ConfigValue)]) -> io::Result<()> {
    writeln!(out, "\nconfigs ({}):", configs.len())?;
    let rows: Vec<[String; 2]> =
        configs.iter().map(|(path, value)| [one_line(path), config_text(value)]).collect();
    if rows.is_empty() {
        return writeln!(out, "  (none)");
    }
    write_table(out, ["PATH", "VALUE"], &rows)
}

fn write_metrics(
    out: &mut dyn Write,
    metrics: &[(String, MetricPoint)],
    integer_steps: bool,
) -> io::Result<()> {
    writeln!(out, "\nmetrics ({}):", metrics.len())?;
    let rows: Vec<[String; 3]> = metrics
        .iter()
        .map(|(path, p)| {
            [one_line(path), step_text(p.step, integer_steps), python_float_repr(p.value)]
        })
        .collect();
    if rows.is_empty() {
        return writeln!(out, "  (none)");
    }
    write_table(out, ["PATH", "LAST STEP", "LAST VALUE"], &rows)
}

/// A step for people: whole steps without a fractional part (`99`, not `99.0`).
fn step_text(step: f64, integer_steps: bool) -> String {
    if (integer_steps || step.fract() == 0.0) && step.abs() < 1e15 {
        format!("{}", step as i64)
    } else {
        python_float_repr(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_config_values_as_stored_on_one_line() {
        let cases = [
            (ConfigValue::Float(1e-5), "1e-05"),
            (ConfigValue::Float(f64::NAN), "nan"),
            (ConfigValue::Int(-3), "-3"),
            (ConfigValue::Bool(true), "true"),
            (ConfigValue::Null, "null"),
            (ConfigValue::Str(String::new()), "\"\""),
            (ConfigValue::Str("two\nlines".into()), "two\\nlines"),
            (ConfigValue::StringSet(["b".to_owned(), "a".to_owned()].into()), "[\"a\", \"b\"]"),
            (ConfigValue::Raw { type_tag: "tensor".into(), value: None }, "null"),
        ];
        for (value, want) in cases {
            assert_eq!(config_text(&value), want, "{value:?}");
        }
        let long = config_text(&ConfigValue::Str("x".repeat(500)));
        assert_eq!(long.chars().count(), MAX_VALUE_CHARS);
        assert!(long.ends_with("x…"));
    }

    #[test]
    fn shows_steps_as_whole_numbers_when_they_are() {
        assert_eq!(step_text(99.0, false), "99");
        assert_eq!(step_text(-0.0, false), "0");
        assert_eq!(step_text(0.5, false), "0.5");
        assert_eq!(step_text(1e300, false), "1e+300");
    }

    #[test]
    fn aligns_tables() {
        let mut out = Vec::new();
        let rows = [["a".to_owned(), "1".to_owned()], ["long/path".to_owned(), "2".to_owned()]];
        write_table(&mut out, ["PATH", "VALUE"], &rows).expect("writing to a Vec");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "  PATH       VALUE\n  a          1\n  long/path  2\n"
        );
    }
}
