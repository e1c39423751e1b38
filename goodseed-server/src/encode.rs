//! The JSON shapes values take on the wire, written once for every answer (and for
//! `goodseed export`): config values, steps, `logged_at` times, downsampled points and
//! windows, and a run as the listing shows it.

use goodseed_core::downsample::{SampledPoint, Window};
use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, HistogramPoint, MetricPoint, TextPoint};
use goodseed_store::RunSummary;

use crate::json::Json;

/// A config value as 0.4.0's `read_configs` returns it, then `json.dumps`. 0.4.0 itself
/// fails with a 500 on datetimes and string sets (tags), which JSON cannot hold: we
/// send them as ISO text and a sorted array.
pub fn config_value(j: &mut Json, value: &ConfigValue) {
    let _: &mut Json = match value {
        ConfigValue::Bool(b) => j.bool(*b),
        ConfigValue::Int(i) => j.i64(*i),
        ConfigValue::Float(x) => j.f64(*x),
        ConfigValue::Str(s) | ConfigValue::DateTime(s) => j.str(s),
        ConfigValue::StringSet(set) => {
            j.begin_array();
            for s in set {
                j.str(s);
            }
            j.end_array()
        }
        ConfigValue::Raw { type_tag, value: Some(text) }
            if type_tag == "int" && is_json_integer(text) =>
        {
            j.raw_number(text)
        }
        ConfigValue::Raw { value: Some(text), .. } => j.str(text),
        _ => j.null(),
    };
}

fn is_json_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

/// Writes a step as 0.4.0's reader hands it to `json.dumps`: a float from a `REAL`
/// column, an integer from the `INTEGER` steps of files before 0.4.0.
pub fn step(j: &mut Json, step: f64, integer_steps: bool) {
    if integer_steps && step.fract() == 0.0 && step.abs() < 9.0e15 {
        j.i64(step as i64);
    } else {
        j.f64(step);
    }
}

/// Unix seconds as `logged_at` text: ISO 8601 UTC, as 0.4.0 writes it.
pub fn logged_at(ts: i64) -> String {
    UtcMicros::from_unix_seconds(ts).to_iso8601()
}

/// `logged_at` text for a run of points: consecutive points share their second, so the
/// text is formatted once per distinct `ts`, not once per point.
#[derive(Debug, Default)]
pub struct LoggedAt {
    ts: Option<i64>,
    text: String,
}

impl LoggedAt {
    /// The text of `ts`.
    pub fn get(&mut self, ts: i64) -> &str {
        if self.ts != Some(ts) {
            self.ts = Some(ts);
            self.text = logged_at(ts);
        }
        &self.text
    }
}

/// A point of a metric series as `.../metrics` lists it: `{"path", "step", "value",
/// "logged_at"}`.
pub fn metric_point(
    j: &mut Json,
    path: &str,
    point: &MetricPoint,
    integer_steps: bool,
    times: &mut LoggedAt,
) {
    j.begin_object().key("path").str(path).key("step");
    step(j, point.step, integer_steps);
    j.key("value").f64(point.value);
    j.key("logged_at").str(times.get(point.ts));
    j.end_object();
}

/// A point of a text series as `.../string_series` lists it: `{"path", "step",
/// "value", "logged_at"}`.
pub fn text_point(
    j: &mut Json,
    path: &str,
    point: &TextPoint,
    integer_steps: bool,
    times: &mut LoggedAt,
) {
    j.begin_object().key("path").str(path).key("step");
    step(j, point.step, integer_steps);
    j.key("value").str(&point.value);
    j.key("logged_at").str(times.get(point.ts));
    j.end_object();
}

/// A histogram as `.../histograms?path=` lists it, `{"step", "logged_at", "kind",
/// "edges", "counts"}`, with `"path"` first when given (as `goodseed export` writes it).
pub fn histogram_point(j: &mut Json, path: Option<&str>, h: &HistogramPoint, integer_steps: bool) {
    j.begin_object();
    if let Some(path) = path {
        j.key("path").str(path);
    }
    j.key("step");
    step(j, h.step, integer_steps);
    j.key("logged_at").str(&logged_at(h.ts));
    j.key("kind").str(&h.histogram.kind);
    j.key("edges").begin_array();
    for e in &h.histogram.edges {
        j.f64(*e);
    }
    j.end_array().key("counts").begin_array();
    for c in &h.histogram.counts {
        j.f64(*c);
    }
    j.end_array().end_object();
}

/// A downsampled point as `.../metrics?pointCount=` lists it.
pub fn sampled_point(j: &mut Json, path: &str, p: &SampledPoint, integer_steps: bool) {
    j.begin_object().key("path").str(path).key("step");
    if p.downsampled {
        j.f64(p.step); // a bucket's mean step is always a float in 0.4.0
    } else {
        step(j, p.step, integer_steps);
    }
    j.key("value").f64(p.value);
    j.key("minY").f64(p.min);
    j.key("maxY").f64(p.max);
    j.key("downsampled").bool(p.downsampled);
    j.key("logged_at").str(&logged_at(p.ts));
    j.end_object();
}

/// The window a downsampled answer reports, in 0.4.0's order.
pub fn window_fields(j: &mut Json, window: &Window) {
    j.key("firstPointIndex").i64(window.first_point_index);
    j.key("lastPointIndex").i64(window.last_point_index);
    j.key("totalCount").i64(window.total_count as i64);
}

/// One run as the listing shows it (also the data of the live stream's `event: run`).
pub(crate) fn run_json(j: &mut Json, r: &RunSummary) {
    run_fields(j, r);
    j.end_object();
}

/// [`run_json`] without its closing brace, so the listing can add fields.
pub(crate) fn run_fields(j: &mut Json, r: &RunSummary) {
    let m = &r.meta;
    j.begin_object();
    j.key("project").str(&r.project);
    j.key("run_id").str(&r.run_id);
    j.key("experiment_name").opt_str(m.name());
    j.key("created_at").opt_str(m.created_at());
    j.key("closed_at").opt_str(m.closed_at());
    j.key("status").str(m.status().unwrap_or("unknown"));
    j.key("trashed").bool(m.trashed());
    j.key("string_series_paths").begin_array();
    for p in &r.text_paths {
        j.str(p);
    }
    j.end_array();
    j.key("metric_paths").begin_array();
    for p in &r.metric_paths {
        j.str(p);
    }
    j.end_array();
    // Ours, added after 0.4.0's fields: the status with `crashed` derived, the tags, how
    // the run ended.
    j.key("state").str(r.status.as_str());
    j.key("tags").begin_array();
    for t in &r.tags {
        j.str(t);
    }
    j.end_array();
    j.key("ended_by").opt_str(goodseed_store::lifecycle::ended_by(m, &r.status).as_deref());
    j.key("last_write_at").opt_str(r.last_write.map(|t| t.to_iso8601()).as_deref());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_as_0_4_0_sends_them() {
        let render = |v: ConfigValue| {
            let mut j = Json::default();
            config_value(&mut j, &v);
            j.finish()
        };
        assert_eq!(render(ConfigValue::Float(1e-5)), "1e-05");
        assert_eq!(render(ConfigValue::Float(f64::NAN)), "\"NaN\"");
        assert_eq!(render(ConfigValue::Int(-3)), "-3");
        assert_eq!(render(ConfigValue::Null), "null");
        assert_eq!(
            render(ConfigValue::Raw {
                type_tag: "int".into(),
                value: Some("18446744073709551616".into())
            }),
            "18446744073709551616"
        );
        assert_eq!(
            render(ConfigValue::Raw { type_tag: "int".into(), value: Some("007".into()) }),
            "\"007\""
        );
        assert_eq!(
            render(ConfigValue::StringSet(["b".into(), "a".into()].into())),
            r#"["a", "b"]"#
        );
    }

    #[test]
    fn points_as_the_api_and_export_send_them() {
        let mut times = LoggedAt::default();
        let mut j = Json::default();
        let point = MetricPoint { step: 2.0, value: f64::NAN, ts: 1_700_000_000 };
        metric_point(&mut j, "loss", &point, false, &mut times);
        let point = MetricPoint { step: 3.0, value: 1e-5, ts: 1_700_000_000 };
        metric_point(&mut j, "loss", &point, true, &mut times);
        let text = TextPoint { step: 0.5, value: "h\u{e9}\nllo".into(), ts: 1_700_000_001 };
        text_point(&mut j, "log", &text, false, &mut times);
        assert_eq!(
            j.finish(),
            concat!(
                r#"{"path": "loss", "step": 2.0, "value": "NaN", "logged_at": "2023-11-14T22:13:20+00:00"}"#,
                r#"{"path": "loss", "step": 3, "value": 1e-05, "logged_at": "2023-11-14T22:13:20+00:00"}"#,
                r#"{"path": "log", "step": 0.5, "value": "h\u00e9\nllo", "logged_at": "2023-11-14T22:13:21+00:00"}"#,
            )
        );
        let render = |x: f64| {
            let mut j = Json::default();
            step(&mut j, x, true);
            j.finish()
        };
        assert_eq!(
            (render(4.0), render(4.5), render(1e16)),
            ("4".into(), "4.5".into(), "1e+16".into())
        );
    }
}
