//! Bodies of the cloud API turned into one [`WriteBatch`], every path and step checked
//! by the core's rules first: a request with one bad point writes nothing, and the
//! answer names the point.

use std::collections::HashMap;

use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, FieldPath, Step};
use goodseed_protocol::ConfigEntry;
use goodseed_protocol::ingest::{IngestPoint, PointValue};
use goodseed_protocol::limits::MAX_CONFIGS_PER_REQUEST;
use goodseed_store::{SeriesRef, WriteBatch, meta_key};

use super::CloudError;

/// The batch of an ingest request. Points keep their order, so a later point at the same
/// (path, step) wins, as it does for 0.4.0.
pub(crate) fn points(points: &[IngestPoint<'_>]) -> Result<WriteBatch, CloudError> {
    let mut batch = WriteBatch::new();
    // Each path is checked once, however many points it has.
    let mut metric_refs: HashMap<&str, SeriesRef> = HashMap::new();
    let mut text_refs: HashMap<&str, SeriesRef> = HashMap::new();
    for (i, p) in points.iter().enumerate() {
        let step =
            Step::new(p.step).map_err(|e| CloudError::invalid(format!("points[{i}].step: {e}")))?;
        let ts = p.timestamp_ms.div_euclid(1000);
        let refs = match p.value {
            PointValue::Number(_) => &mut metric_refs,
            PointValue::Text(_) => &mut text_refs,
        };
        let series = match refs.get(&*p.path) {
            Some(r) => *r,
            None => {
                let path = FieldPath::parse(&p.path)
                    .map_err(|e| CloudError::invalid(format!("points[{i}].path: {e}")))?;
                let r = match p.value {
                    PointValue::Number(_) => batch.metric_series(&path),
                    PointValue::Text(_) => batch.text_series(&path),
                };
                refs.insert(&p.path, r);
                r
            }
        };
        match &p.value {
            PointValue::Number(v) => batch.metric(series, step, *v, ts),
            PointValue::Text(t) => batch.text(series, step, &**t, ts),
        }
    }
    Ok(batch)
}

/// The batch of a configs request: values kept exactly as sent, under their type tag
/// (a tag this version does not know is kept as it is, as the store keeps it). The
/// trainer's `sys/creation_time` also becomes the run's `created_at`.
pub(crate) fn configs(entries: &[ConfigEntry]) -> Result<WriteBatch, CloudError> {
    if entries.len() > MAX_CONFIGS_PER_REQUEST {
        return Err(CloudError::wire(goodseed_protocol::WireError::TooLarge {
            what: "the configs request",
            limit: format!("{MAX_CONFIGS_PER_REQUEST} configs"),
        }));
    }
    let mut batch = WriteBatch::new();
    for (i, c) in entries.iter().enumerate() {
        let path = FieldPath::parse(&c.path)
            .map_err(|e| CloudError::invalid(format!("configs[{i}].path: {e}")))?;
        if c.type_tag.is_empty() {
            return Err(CloudError::invalid(format!("configs[{i}].type_tag is empty")));
        }
        let value = ConfigValue::decode(&c.type_tag, c.value.as_deref());
        // The trainer's own creation time is the run's: registration came after it.
        if path.as_str() == "sys/creation_time"
            && let ConfigValue::Str(t) | ConfigValue::DateTime(t) = &value
            && UtcMicros::parse_iso8601(t).is_some()
        {
            batch.set_meta(meta_key::CREATED_AT, t.clone());
        }
        batch.config(path, value);
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn point(path: &str, step: f64, value: PointValue<'static>) -> IngestPoint<'static> {
        IngestPoint { path: Cow::Owned(path.into()), step, timestamp_ms: 1_700_000_000_999, value }
    }

    #[test]
    fn points_become_one_batch_with_each_path_checked_once() {
        let ps = [
            point("/loss/", 0.0, PointValue::Number(1.0)),
            point("/loss/", 1.0, PointValue::Number(f64::NAN)),
            point("/loss/", -0.0, PointValue::Text(Cow::Borrowed("same path, text series"))),
        ];
        let b = points(&ps).expect("batch");
        assert_eq!(b.metric_paths().iter().map(|p| p.as_str()).collect::<Vec<_>>(), ["loss"]);
        assert_eq!(b.text_paths().iter().map(|p| p.as_str()).collect::<Vec<_>>(), ["loss"]);
        let metrics: Vec<_> = b.metric_entries().map(|(_, m)| (m.step.get(), m.ts)).collect();
        assert_eq!(metrics, [(0.0, 1_700_000_000), (1.0, 1_700_000_000)]);
        assert_eq!(b.text_entries().next().map(|(_, t)| t.step.get().to_bits()), Some(0));
    }

    #[test]
    fn a_bad_point_is_named() {
        for (p, expect) in [
            (point("", 0.0, PointValue::Number(1.0)), "points[1].path"),
            (point("a", f64::INFINITY, PointValue::Number(1.0)), "points[1].step"),
            (point("a\u{0}b", 0.0, PointValue::Number(1.0)), "points[1].path"),
        ] {
            let err = points(&[point("ok", 0.0, PointValue::Number(1.0)), p]).expect_err("refused");
            assert!(err.detail.contains(expect), "{}", err.detail);
            assert_eq!(err.status.as_u16(), 400);
        }
        // Before 1970: the second is floored, as Python's int() of a negative would not
        // matter here: timestamps are whole seconds at or before the point.
        let mut early = point("a", 0.0, PointValue::Number(1.0));
        early.timestamp_ms = -1;
        assert_eq!(
            points(&[early]).expect("batch").metric_entries().next().map(|(_, m)| m.ts),
            Some(-1)
        );
    }

    #[test]
    fn configs_keep_tags_and_text() {
        let entry = |path: &str, tag: &str, value: Option<&str>| ConfigEntry {
            path: path.into(),
            type_tag: tag.into(),
            value: value.map(str::to_owned),
        };
        let b = configs(&[
            entry("lr", "float", Some("0.001")),
            entry("tags", "string_set", Some("[\"a\", \"b\"]")),
            entry("odd", "future_tag", Some("x")),
            entry("none", "null", None),
        ])
        .expect("batch");
        let got: Vec<_> = b
            .config_entries()
            .map(|(p, v)| (p.to_string(), v.type_tag().to_owned(), v.encode()))
            .collect();
        assert_eq!(got[0], ("lr".into(), "float".into(), Some("0.001".into())));
        assert_eq!(got[1].2.as_deref(), Some("[\"a\", \"b\"]"));
        assert_eq!(got[2], ("odd".into(), "future_tag".into(), Some("x".into())));
        assert_eq!(got[3].1, "null");
        let err = configs(&[entry("", "int", Some("1"))]).expect_err("refused");
        assert!(err.detail.contains("configs[0].path"), "{}", err.detail);
        assert!(configs(&[entry("a", "", Some("1"))]).is_err());
        let many = vec![entry("a", "int", Some("1")); MAX_CONFIGS_PER_REQUEST + 1];
        assert_eq!(configs(&many).expect_err("too many").status.as_u16(), 413);
    }
}
