//! How burn's metric names and splits become goodseed paths: `Loss` on the training
//! split is `train/loss`, `Top-K Accuracy` on the validation split is
//! `valid/top-k_accuracy`, and a test tagged `Hard Cases` is `test/hard_cases/…`.

use burn::train::metric::store::Split;

/// A burn metric name (or test tag) as one path segment: trimmed, lowercase, with
/// whitespace and `/` made `_` (so a name never adds a level), never empty.
pub(crate) fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut gap = false;
    for ch in name.trim().chars() {
        if ch.is_whitespace() || ch == '/' || ch.is_control() {
            gap = true;
            continue;
        }
        if gap && !out.is_empty() {
            out.push('_');
        }
        gap = false;
        out.extend(ch.to_lowercase());
    }
    if out.is_empty() { "unnamed".to_owned() } else { out }
}

/// The path prefix of a split: `train`, `valid`, `test`, or `test/<tag>`.
pub(crate) fn split_prefix(split: &Split) -> String {
    match split {
        Split::Train => "train".to_owned(),
        Split::Valid => "valid".to_owned(),
        Split::Test(None) => "test".to_owned(),
        Split::Test(Some(tag)) => format!("test/{}", segment(tag)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn check(name: &str, expect: &str) {
        assert_eq!(segment(name), expect, "segment({name:?})");
    }

    #[test]
    fn segments() {
        check("Loss", "loss");
        check("Accuracy", "accuracy");
        check("Top-K Accuracy @ 5", "top-k_accuracy_@_5");
        check("  Learning  Rate ", "learning_rate");
        check("CPU Usage", "cpu_usage");
        check("a/b", "a_b");
        check("tab\there", "tab_here");
        check("", "unnamed");
        check(" / ", "unnamed");
        check("Énergie", "énergie");
    }

    #[test]
    fn prefixes() {
        assert_eq!(split_prefix(&Split::Train), "train");
        assert_eq!(split_prefix(&Split::Valid), "valid");
        assert_eq!(split_prefix(&Split::Test(None)), "test");
        assert_eq!(
            split_prefix(&Split::Test(Some(Arc::new("Hard Cases".into())))),
            "test/hard_cases"
        );
    }
}
