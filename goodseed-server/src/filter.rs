//! Ours: conditions on the values of runs (`filter=` on `GET /api/runs`, repeatable, all
//! must hold), and sorting by a config (`sort=config.<key>`), evaluated on the server
//! over the runs' summaries, so they cost no file reads at any number of runs.
//!
//! A condition is `FIELD OP VALUE`:
//!
//! - `FIELD`: `name`, `run_id`, `status` (the derived state), `tag`, `created_at`,
//!   `closed_at`; a metric's summary, `<path>.<last|min|max|mean|last_step|min_step|
//!   max_step>` (`val/acc.max`; `mean` is the mean of the last ten finite values, the
//!   steps those of the newest point and of the first least and greatest values), or
//!   `metric.<path>.<…>`; or a config: `config.<key>`, or the bare key when it is none
//!   of those (`lr`, `optimizer`, `model/layers`);
//! - `OP`: `=` `!=` `<` `<=` `>` `>=`, `~` (holds the text, case-insensitive),
//!   `in [LOW, HIGH]` (both included), or the unary `exists` / `!exists`;
//! - `VALUE`: a number (compared as a number with int and float configs alike, and with
//!   text that reads as one; as text with other text), `true` or `false`, or text (bare,
//!   or in double quotes with `\"` and `\\`; times are ISO 8601 text, compared as text:
//!   `created_at >= 2025-06`).
//!
//! A run without the field fails every condition but `!exists` (and `!=`, which holds
//! for a missing value as for any other). A string set holds `= x` when it contains x.

use std::cmp::Ordering;

use goodseed_core::ConfigValue;
use goodseed_store::{MetricSummary, RunSummary};

/// One condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    field: Field,
    op: Op,
}

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Name,
    RunId,
    Status,
    Tag,
    CreatedAt,
    ClosedAt,
    Config(String),
    Metric(String, Agg),
}

/// What of a metric's summary a field reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Agg {
    Last,
    Min,
    Max,
    Mean,
    LastStep,
    MinStep,
    MaxStep,
}

impl Agg {
    const ALL: [(&'static str, Agg); 7] = [
        ("last_step", Agg::LastStep),
        ("min_step", Agg::MinStep),
        ("max_step", Agg::MaxStep),
        ("last", Agg::Last),
        ("min", Agg::Min),
        ("max", Agg::Max),
        ("mean", Agg::Mean),
    ];

    /// The summary's value this reads.
    pub(crate) fn value(self, s: &MetricSummary) -> f64 {
        match self {
            Agg::Last => s.last,
            Agg::Min => s.min,
            Agg::Max => s.max,
            Agg::Mean => s.mean_last,
            Agg::LastStep => s.last_step,
            Agg::MinStep => s.min_step,
            Agg::MaxStep => s.max_step,
        }
    }
}

/// `<path>.<agg>` read as a metric's summary, if it is one.
pub(crate) fn metric_field(name: &str) -> Option<(String, Agg)> {
    let name = name.strip_prefix("metric.").unwrap_or(name);
    Agg::ALL.iter().find_map(|(suffix, agg)| {
        let path = name.strip_suffix(suffix)?.strip_suffix('.')?;
        (!path.is_empty()).then(|| (path.to_owned(), *agg))
    })
}

impl Condition {
    /// Whether the condition reads metrics' summaries (which a backend may not keep).
    pub(crate) fn reads_metrics(&self) -> bool {
        matches!(self.field, Field::Metric(..))
    }
}

/// The summary of one of a run's metrics, if it has it.
pub(crate) fn metric_of<'a>(run: &'a RunSummary, path: &str) -> Option<&'a MetricSummary> {
    let at = run.metrics.binary_search_by(|(p, _)| p.as_str().cmp(path)).ok()?;
    Some(&run.metrics[at].1)
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Cmp(Cmp, Value),
    Contains(String),
    Between(Value, Value),
    Exists(bool),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A value written in a condition.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// A number, and the text it was written as.
    Number(f64, String),
    Bool(bool),
    Text(String),
}

/// A field's value in a run.
#[derive(Debug, Clone, Copy)]
enum Found<'a> {
    Number(f64),
    Bool(bool),
    Text(&'a str),
    Set(&'a std::collections::BTreeSet<String>),
    Tags(&'a [String]),
}

impl Condition {
    /// Reads one condition; the error names what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<Condition, String> {
        let text = text.trim();
        let bad = |why: &str| Err(format!("filter {text:?}: {why}"));
        let field_end = text.find(|c: char| c.is_whitespace() || "=!<>~".contains(c));
        let Some(end) = field_end.filter(|&e| e > 0) else {
            return bad("expected FIELD OP VALUE (such as lr > 0.001, optimizer = adam)");
        };
        let field = Field::parse(&text[..end]);
        let rest = text[end..].trim_start();
        let op = if let Some(after) = rest.strip_prefix("!exists") {
            if !after.trim().is_empty() {
                return bad("!exists takes no value");
            }
            Op::Exists(false)
        } else if let Some(after) = rest.strip_prefix("exists") {
            if !after.trim().is_empty() {
                return bad("exists takes no value");
            }
            Op::Exists(true)
        } else if let Some(range) = rest.strip_prefix("in").filter(|r| r.starts_with([' ', '['])) {
            let range = range.trim();
            let Some(inner) = range.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
                return bad("in takes a range [LOW, HIGH]");
            };
            let Some((low, high)) = inner.split_once(',') else {
                return bad("in takes a range [LOW, HIGH]");
            };
            let (low, high) = (
                Value::parse(low).map_err(|e| format!("filter {text:?}: {e}"))?,
                Value::parse(high).map_err(|e| format!("filter {text:?}: {e}"))?,
            );
            Op::Between(low, high)
        } else {
            let (cmp, len) = match rest.as_bytes() {
                [b'!', b'=', ..] => (Some(Cmp::Ne), 2),
                [b'<', b'=', ..] => (Some(Cmp::Le), 2),
                [b'>', b'=', ..] => (Some(Cmp::Ge), 2),
                [b'=', b'=', ..] => (Some(Cmp::Eq), 2),
                [b'<', ..] => (Some(Cmp::Lt), 1),
                [b'>', ..] => (Some(Cmp::Gt), 1),
                [b'=', ..] => (Some(Cmp::Eq), 1),
                [b'~', ..] => (None, 1),
                _ => {
                    return bad(
                        "unknown operator: use = != < <= > >= ~ (holds), in [LOW, HIGH], exists or !exists",
                    );
                }
            };
            let value = rest[len..].trim();
            if value.is_empty() {
                return bad("a value is missing after the operator");
            }
            let value = Value::parse(value).map_err(|e| format!("filter {text:?}: {e}"))?;
            match cmp {
                Some(cmp) => Op::Cmp(cmp, value),
                None => Op::Contains(value.text().to_lowercase()),
            }
        };
        Ok(Condition { field, op })
    }

    /// Whether a run meets the condition.
    pub(crate) fn holds(&self, run: &RunSummary) -> bool {
        let found = self.field.of(run);
        match (&self.op, found) {
            (Op::Exists(want), found) => found.is_some() == *want,
            (Op::Cmp(Cmp::Ne, v), found) => found.is_none_or(|f| !equals(f, v)),
            (_, None) => false,
            (Op::Cmp(Cmp::Eq, v), Some(f)) => equals(f, v),
            (Op::Cmp(cmp, v), Some(f)) => order(f, v).is_some_and(|o| match cmp {
                Cmp::Lt => o == Ordering::Less,
                Cmp::Le => o != Ordering::Greater,
                Cmp::Gt => o == Ordering::Greater,
                Cmp::Ge => o != Ordering::Less,
                Cmp::Eq | Cmp::Ne => unreachable!("handled above"),
            }),
            (Op::Between(low, high), Some(f)) => {
                order(f, low).is_some_and(|o| o != Ordering::Less)
                    && order(f, high).is_some_and(|o| o != Ordering::Greater)
            }
            (Op::Contains(needle), Some(f)) => match f {
                Found::Text(t) => contains_folded(t, needle),
                Found::Number(x) => x.to_string().contains(needle),
                Found::Bool(b) => b.to_string().contains(needle),
                Found::Set(set) => set.iter().any(|t| t.to_lowercase().contains(needle)),
                Found::Tags(tags) => tags.iter().any(|t| t.to_lowercase().contains(needle)),
            },
        }
    }
}

impl Field {
    fn parse(name: &str) -> Field {
        match name {
            "name" => Field::Name,
            "run_id" => Field::RunId,
            "status" | "state" => Field::Status,
            "tag" | "tags" => Field::Tag,
            "created_at" => Field::CreatedAt,
            "closed_at" => Field::ClosedAt,
            other => match other.strip_prefix("config.") {
                Some(key) => Field::Config(key.to_owned()),
                None => match metric_field(other) {
                    Some((path, agg)) => Field::Metric(path, agg),
                    None => Field::Config(other.to_owned()),
                },
            },
        }
    }

    fn of<'a>(&self, run: &'a RunSummary) -> Option<Found<'a>> {
        match self {
            Field::Name => run.meta.name().map(Found::Text),
            Field::RunId => Some(Found::Text(&run.run_id)),
            Field::Status => Some(Found::Text(run.status.as_str())),
            Field::Tag => Some(Found::Tags(&run.tags)),
            Field::CreatedAt => run.meta.created_at().map(Found::Text),
            Field::ClosedAt => run.meta.closed_at().map(Found::Text),
            Field::Config(key) => {
                let at = run.configs.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok()?;
                config_found(&run.configs[at].1)
            }
            Field::Metric(path, agg) => metric_of(run, path).map(|s| Found::Number(agg.value(s))),
        }
    }
}

/// A config's value as conditions see it; `None` for null (a value that is not there).
fn config_found(value: &ConfigValue) -> Option<Found<'_>> {
    Some(match value {
        ConfigValue::Bool(b) => Found::Bool(*b),
        ConfigValue::Int(i) => Found::Number(*i as f64),
        ConfigValue::Float(x) => Found::Number(*x),
        ConfigValue::Str(s) | ConfigValue::DateTime(s) => Found::Text(s),
        ConfigValue::StringSet(set) => Found::Set(set),
        ConfigValue::Null => return None,
        ConfigValue::Raw { value, .. } => Found::Text(value.as_deref()?),
        _ => return None,
    })
}

impl Value {
    fn parse(text: &str) -> Result<Value, String> {
        let text = text.trim();
        if let Some(inner) = text.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = inner.chars();
            loop {
                match chars.next() {
                    None => return Err("a quoted value does not end".to_owned()),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('"' | '\\')) => out.push(c),
                        _ => return Err("in quotes, \\ escapes only \" and \\".to_owned()),
                    },
                    Some(c) => out.push(c),
                }
            }
            if !chars.as_str().trim().is_empty() {
                return Err("text after the quoted value".to_owned());
            }
            return Ok(Value::Text(out));
        }
        if text.is_empty() {
            return Err("an empty value".to_owned());
        }
        match text {
            "true" => return Ok(Value::Bool(true)),
            "false" => return Ok(Value::Bool(false)),
            _ => {}
        }
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Value::Number(x, text.to_owned())),
            _ => Ok(Value::Text(text.to_owned())),
        }
    }

    /// The value as written.
    fn text(&self) -> String {
        match self {
            Value::Number(_, written) => written.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Text(t) => t.clone(),
        }
    }
}

fn equals(found: Found<'_>, want: &Value) -> bool {
    match (found, want) {
        (Found::Number(x), Value::Number(y, _)) => x == *y,
        (Found::Bool(a), Value::Bool(b)) => a == *b,
        (Found::Text(t), Value::Text(w)) => t == w,
        // Text that reads as a number or a bool is compared as written.
        (Found::Text(t), Value::Number(..) | Value::Bool(_)) => {
            t == want.text() || t.parse::<f64>().ok() == want.number()
        }
        (Found::Set(set), v) => {
            set.contains(&v.text()) || matches!(v, Value::Text(t) if set.contains(t))
        }
        (Found::Tags(tags), v) => {
            tags.iter().any(|t| *t == v.text() || matches!(v, Value::Text(w) if t == w))
        }
        _ => false,
    }
}

impl Value {
    fn number(&self) -> Option<f64> {
        match self {
            Value::Number(x, _) => Some(*x),
            _ => None,
        }
    }
}

/// How a run's value orders against a written one: numbers as numbers, text as text;
/// `None` when they cannot be ordered (a number against text, a NaN, a set).
fn order(found: Found<'_>, want: &Value) -> Option<Ordering> {
    match (found, want) {
        (Found::Number(x), Value::Number(y, _)) => x.partial_cmp(y),
        (Found::Text(t), Value::Text(w)) => Some(t.cmp(w.as_str())),
        // Text that reads as a number orders as one; other text as text (a time
        // against a year).
        (Found::Text(t), Value::Number(y, written)) => match t.parse::<f64>() {
            Ok(x) => x.partial_cmp(y),
            Err(_) => Some(t.cmp(written.as_str())),
        },
        _ => None,
    }
}

/// A run's config `key` in a sortable form, (kind, number, text): numbers (kind 0)
/// before booleans (1) and text (2), each in its own order; kind 3 for a run without
/// it or with a value that has no order (null, NaN, a set).
pub(crate) fn config_rank<'a>(run: &'a RunSummary, key: &str) -> (u8, f64, &'a str) {
    let found = run
        .configs
        .binary_search_by(|(k, _)| k.as_str().cmp(key))
        .ok()
        .and_then(|at| config_found(&run.configs[at].1));
    match found {
        Some(Found::Number(x)) if !x.is_nan() => (0, x, ""),
        Some(Found::Bool(b)) => (1, f64::from(u8::from(b)), ""),
        Some(Found::Text(t)) => (2, 0.0, t),
        _ => (3, 0.0, ""),
    }
}

/// Whether a search (lowercase) matches one of a run's config values.
pub(crate) fn config_value_matches(run: &RunSummary, needle: &str) -> bool {
    // A number's text holds only these: skip formatting numbers for other searches.
    let numeric = needle.bytes().all(|b| b.is_ascii_digit() || b"+-.einf".contains(&b));
    run.configs.iter().any(|(key, value)| {
        !key.starts_with("sys/")
            && !key.starts_with("source_code/")
            && !key.starts_with("monitoring/")
            && match config_found(value) {
                Some(Found::Text(t)) => contains_folded(t, needle),
                Some(Found::Number(x)) => numeric && x.to_string().contains(needle),
                Some(Found::Set(set)) => set.iter().any(|t| contains_folded(t, needle)),
                _ => false,
            }
    })
}

/// Whether `hay` holds `needle` (lowercase) in any case, without allocating for ASCII.
pub(crate) fn contains_folded(hay: &str, needle: &str) -> bool {
    if hay.is_ascii() && needle.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        return n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    hay.to_lowercase().contains(needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use goodseed_store::RunMeta;

    fn run(configs: &[(&str, ConfigValue)]) -> RunSummary {
        let mut meta = std::collections::BTreeMap::new();
        meta.insert("name".to_owned(), "trial 7".to_owned());
        meta.insert("created_at".to_owned(), "2025-03-01T00:00:00+00:00".to_owned());
        let mut configs: Vec<(String, ConfigValue)> =
            configs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        configs.sort_by(|a, b| a.0.cmp(&b.0));
        RunSummary {
            project: "p".into(),
            id: "r7".into(),
            run_id: "r7".into(),
            meta: RunMeta(meta),
            status: goodseed_core::RunStatus::Finished,
            liveness: goodseed_core::Liveness::Unknown,
            metric_paths: Vec::new(),
            text_paths: Vec::new(),
            tags: vec!["best".into(), "sweep".into()],
            version: None,
            location: "p/runs/r7.sqlite".into(),
            last_write: None,
            configs,
            metrics: vec![(
                "val/acc".to_owned(),
                MetricSummary {
                    last_step: 9.0,
                    last: 0.8,
                    min: 0.1,
                    min_step: 0.0,
                    max: 0.93,
                    max_step: 7.0,
                    mean_last: 0.85,
                    finite: 10,
                },
            )],
        }
    }

    fn holds(text: &str, r: &RunSummary) -> bool {
        Condition::parse(text).unwrap_or_else(|e| panic!("{e}")).holds(r)
    }

    #[test]
    fn conditions_on_configs_fields_and_tags() {
        let r = run(&[
            ("lr", ConfigValue::Float(0.003)),
            ("batch", ConfigValue::Int(64)),
            ("optimizer", ConfigValue::Str("adam".into())),
            ("amp", ConfigValue::Bool(true)),
            ("note", ConfigValue::Null),
            ("model/name", ConfigValue::Str("Res Net 50".into())),
            ("name", ConfigValue::Str("a config called name".into())),
        ]);
        for yes in [
            "optimizer = adam",
            "optimizer != sgd",
            "lr > 0.001",
            "lr in [0.001, 0.01]",
            "lr <= 0.003",
            "batch = 64",
            "batch >= 64.0",
            "amp = true",
            "model/name ~ res net",
            "model/name = \"Res Net 50\"",
            "name = \"trial 7\"",
            "config.name ~ called",
            "run_id = r7",
            "status = finished",
            "tag = best",
            "created_at >= 2025-01-01",
            "created_at < 2026",
            "lr exists",
            "note !exists",
            "missing !exists",
            "missing != 3",
            "val/acc.max > 0.9",
            "metric.val/acc.max_step = 7",
            "val/acc.last in [0.79, 0.81]",
            "val/acc.mean >= 0.85",
            "val/acc.min_step < 1",
            "val/acc.last_step = 9",
            "val/loss.min !exists",
        ] {
            assert!(holds(yes, &r), "{yes}");
        }
        for no in [
            "optimizer = sgd",
            "lr > 0.01",
            "lr in [0.01, 0.1]",
            "batch < 64",
            "amp = false",
            "optimizer < 3",
            "tag = worst",
            "missing = 3",
            "missing < 3",
            "missing ~ x",
            "note exists",
            "closed_at exists",
            "status = running",
            "val/acc.max < 0.9",
            "val/loss.min < 1",
            "val/loss.min exists",
        ] {
            assert!(!holds(no, &r), "{no}");
        }
    }

    #[test]
    fn bad_conditions_say_what_is_wrong() {
        for (text, says) in [
            ("", "expected FIELD OP VALUE"),
            ("lr", "expected FIELD OP VALUE"),
            ("lr 3", "unknown operator"),
            ("lr >", "a value is missing"),
            ("lr ?? 3", "unknown operator"),
            ("lr in 1, 2", "in takes a range"),
            ("lr in [1]", "in takes a range"),
            ("lr exists 3", "exists takes no value"),
            ("name = \"open", "a quoted value does not end"),
            ("name = \"a\" b", "text after the quoted value"),
            ("name = \"a\\n\"", "escapes only"),
        ] {
            let err = Condition::parse(text).expect_err(text);
            assert!(err.contains(says) && err.contains("filter"), "{text}: {err}");
        }
    }

    #[test]
    fn config_order_puts_numbers_then_text_then_missing() {
        let runs = [
            run(&[("k", ConfigValue::Str("b".into()))]),
            run(&[]),
            run(&[("k", ConfigValue::Float(2.5))]),
            run(&[("k", ConfigValue::Int(-1))]),
            run(&[("k", ConfigValue::Str("a".into()))]),
        ];
        let mut sorted: Vec<&RunSummary> = runs.iter().collect();
        sorted.sort_by(|a, b| {
            config_rank(a, "k").partial_cmp(&config_rank(b, "k")).unwrap_or(Ordering::Equal)
        });
        let shown: Vec<String> = sorted
            .iter()
            .map(|r| r.configs.first().map_or("-".to_owned(), |(_, v)| format!("{v:?}")))
            .collect();
        assert_eq!(shown, ["Int(-1)", "Float(2.5)", "Str(\"a\")", "Str(\"b\")", "-"]);
        assert!(config_value_matches(&runs[4], "a"));
        assert!(!config_value_matches(&runs[1], "a"));
    }
}
