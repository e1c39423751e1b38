//! The logger fed by hand with what burn hands a `MetricLogger`: updates of every
//! kind, in burn's order, and bad input (NaN, unknown metrics, placeholders, a finished
//! or disabled run), which must never panic or stop training.

use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::train::Interrupter;
use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, NumericMetricUpdate, Split};
use burn::train::metric::{
    MetricAttributes, MetricDefinition, MetricEntry, MetricId, NumericAttributes, NumericEntry,
    SerializedEntry,
};
use goodseed_burn::GoodseedLogger;
use goodseed_core::ConfigValue;

use super::{builder, config, points, reader, steps, store};

fn id(name: &str) -> MetricId {
    MetricId::new(Arc::new(name.to_owned()))
}

fn numeric_definition(name: &str, unit: Option<&str>, higher_is_better: bool) -> MetricDefinition {
    MetricDefinition {
        metric_id: id(name),
        name: Arc::new(name.to_owned()),
        description: Some(format!("the {name}")),
        attributes: MetricAttributes::Numeric(NumericAttributes {
            unit: unit.map(str::to_owned),
            higher_is_better,
        }),
    }
}

fn text_definition(name: &str) -> MetricDefinition {
    MetricDefinition {
        metric_id: id(name),
        name: Arc::new(name.to_owned()),
        description: None,
        attributes: MetricAttributes::None,
    }
}

/// An iteration's update of numeric metrics: (name, batch value, batch size, running).
fn iteration(values: &[(&str, f64, usize, f64)]) -> MetricsUpdate {
    let numeric = values
        .iter()
        .map(|(name, v, n, running)| {
            NumericMetricUpdate::new(
                MetricEntry::new(
                    id(name),
                    SerializedEntry::new(format!("{v}"), format!("{v},{n}")),
                ),
                Some(NumericEntry::Aggregated { aggregated_value: *v, count: *n }),
                Some(NumericEntry::Aggregated { aggregated_value: *running, count: *n }),
            )
        })
        .collect();
    MetricsUpdate::new(Vec::new(), numeric)
}

/// The epoch's end: each metric's final value.
fn epoch_end(values: &[(&str, f64)]) -> MetricsUpdate {
    let numeric = values
        .iter()
        .map(|(name, v)| {
            NumericMetricUpdate::new(
                MetricEntry::new(
                    id(name),
                    SerializedEntry::new(format!("{v}"), format!("{v},final")),
                ),
                Some(NumericEntry::Final(*v)),
                None,
            )
        })
        .collect();
    MetricsUpdate::new(Vec::new(), numeric)
}

#[test]
fn series_steps_and_definitions_in_burns_order() {
    let home = tempfile::tempdir().expect("home");
    let run = builder(home.path()).create().expect("run");
    let mut logger = GoodseedLogger::new(&run);
    logger.log_metric_definition(numeric_definition("Loss", None, false));
    logger.log_metric_definition(numeric_definition("Top-K Accuracy", Some("%"), true));
    logger.log_metric_definition(text_definition("Sample"));
    for epoch in 1..=2 {
        for i in 0..3 {
            let v = f64::from(epoch * 10 + i);
            let mut update =
                iteration(&[("Loss", v, 4, v - 0.5), ("Top-K Accuracy", 50.0 + v, 4, 50.0)]);
            update.entries.push(MetricEntry::new(
                id("Sample"),
                SerializedEntry::new(format!("text {v}"), "x".into()),
            ));
            logger.log(update, epoch as usize, &Split::Train);
        }
        logger.log(
            epoch_end(&[("Loss", f64::from(epoch)), ("Top-K Accuracy", 60.0)]),
            epoch as usize,
            &Split::Train,
        );
        logger.log_epoch_summary(EpochSummary::new(epoch as usize, Split::Train));
        logger.log(iteration(&[("Loss", 7.0, 2, 7.0)]), epoch as usize, &Split::Valid);
        logger.log(epoch_end(&[("Loss", 7.0)]), epoch as usize, &Split::Valid);
        logger.log_epoch_summary(EpochSummary::new(epoch as usize, Split::Valid));
    }
    let hard = Split::Test(Some(Arc::new("Hard Cases".to_owned())));
    logger.log(iteration(&[("Loss", 3.0, 1, 3.0)]), 1, &hard);
    logger.log(iteration(&[("Loss", 4.0, 1, 3.5)]), 1, &hard);
    logger.log(iteration(&[("Loss", 5.0, 1, 5.0)]), 1, &Split::Test(None));
    assert_eq!(logger.errors(), 0);
    drop(logger);
    run.finish().expect("finish");

    let r = reader(home.path(), &run);
    assert_eq!(
        points(&*r, "train/loss"),
        [(1.0, 10.0), (2.0, 11.0), (3.0, 12.0), (4.0, 20.0), (5.0, 21.0), (6.0, 22.0)]
    );
    assert_eq!(points(&*r, "train/loss/running")[0], (1.0, 9.5));
    assert_eq!(points(&*r, "train/loss/epoch"), [(1.0, 1.0), (2.0, 2.0)]);
    assert_eq!(steps(&*r, "train/top-k_accuracy"), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(points(&*r, "train/top-k_accuracy/epoch"), [(1.0, 60.0), (2.0, 60.0)]);
    assert_eq!(
        points(&*r, "train/epoch").iter().map(|p| p.1).collect::<Vec<_>>(),
        [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    );
    assert_eq!(points(&*r, "valid/loss"), [(1.0, 7.0), (2.0, 7.0)]);
    assert_eq!(points(&*r, "valid/epoch"), [(1.0, 1.0), (2.0, 2.0)]);
    assert_eq!(points(&*r, "test/hard_cases/loss"), [(1.0, 3.0), (2.0, 4.0)]);
    assert_eq!(points(&*r, "test/hard_cases/loss/running"), [(1.0, 3.0), (2.0, 3.5)]);
    assert_eq!(points(&*r, "test/loss"), [(1.0, 5.0)]);
    assert!(steps(&*r, "test/hard_cases/loss/epoch").is_empty(), "a test has no epoch end");
    let texts = r.text_paths().expect("texts");
    assert!(texts.contains(&"train/sample".to_owned()), "{texts:?}");

    let text = |s: &str| Some(ConfigValue::Str(s.to_owned()));
    assert_eq!(config(&*r, "burn/metrics/top-k_accuracy/name"), text("Top-K Accuracy"));
    assert_eq!(config(&*r, "burn/metrics/top-k_accuracy/description"), text("the Top-K Accuracy"));
    assert_eq!(config(&*r, "burn/metrics/top-k_accuracy/unit"), text("%"));
    assert_eq!(
        config(&*r, "burn/metrics/top-k_accuracy/higher_is_better"),
        Some(ConfigValue::Bool(true))
    );
    assert_eq!(config(&*r, "burn/metrics/loss/higher_is_better"), Some(ConfigValue::Bool(false)));
    assert_eq!(config(&*r, "burn/metrics/loss/unit"), None, "no unit, no config");
    assert_eq!(config(&*r, "burn/metrics/sample/numeric"), Some(ConfigValue::Bool(false)));
    assert_eq!(config(&*r, "burn/metrics/sample/higher_is_better"), None);
}

/// What burn's aggregation makes of `read_numeric`'s answer: the last entry when final,
/// else the mean weighted by counts.
fn aggregate(entries: &[NumericEntry]) -> Option<f64> {
    match entries.last()? {
        NumericEntry::Final(v) => Some(*v),
        _ => {
            let (sum, n) = entries.iter().fold((0.0, 0usize), |(s, n), e| match e {
                NumericEntry::Value(v) => (s + v, n + 1),
                NumericEntry::Aggregated { aggregated_value, count } => {
                    (s + aggregated_value * *count as f64, n + count)
                }
                NumericEntry::Final(_) => unreachable!("final is last"),
            });
            Some(sum / n as f64)
        }
    }
}

#[test]
fn read_numeric_is_answered_from_memory_at_once() {
    let home = tempfile::tempdir().expect("home");
    // A long flush interval: nothing is in the file yet when burn asks.
    let run = builder(home.path()).flush_interval(Duration::from_secs(3600)).create().expect("run");
    let mut logger = GoodseedLogger::new(&run);
    logger.log_metric_definition(numeric_definition("Loss", None, false));
    logger.log(iteration(&[("Loss", 1.0, 16, 1.0)]), 1, &Split::Valid);
    logger.log(iteration(&[("Loss", 4.0, 8, 2.0)]), 1, &Split::Valid);
    // Mid-epoch (the last update still held): the mean over what was logged.
    let mid = logger.read_numeric("Loss", 1, &Split::Valid).expect("read");
    assert_eq!(aggregate(&mid), Some(2.0), "(1×16 + 4×8) / 24: {mid:?}");
    logger.log(epoch_end(&[("Loss", 1.9)]), 1, &Split::Valid);
    logger.log_epoch_summary(EpochSummary::new(1, Split::Valid));
    let done = logger.read_numeric("Loss", 1, &Split::Valid).expect("read");
    assert_eq!(aggregate(&done), Some(1.9), "the final value wins: {done:?}");
    assert!(
        logger.read_numeric("Loss", 2, &Split::Valid).expect("read").is_empty(),
        "no epoch 2 yet"
    );
    assert!(
        logger.read_numeric("Loss", 1, &Split::Train).expect("read").is_empty(),
        "another split"
    );
    assert!(logger.read_numeric("Nope", 1, &Split::Valid).expect("read").is_empty());
    assert_eq!(
        reader(home.path(), &run).metric_paths().expect("paths"),
        Vec::<String>::new(),
        "the file lags"
    );
    drop(logger);
    run.finish().expect("finish");
}

#[test]
fn bad_input_never_panics_and_nan_is_data() {
    let home = tempfile::tempdir().expect("home");
    let run = builder(home.path()).create().expect("run");
    let mut logger = GoodseedLogger::new(&run);
    logger.log_metric_definition(numeric_definition("Loss", None, false));
    logger.log_metric_definition(numeric_definition(" / ", None, true)); // a name that is no path
    // NaN and infinities; a metric with no definition; a placeholder (`N/A`) with no
    // value; an entry whose only value is its serialized text; and garbage text.
    let mut update = iteration(&[
        ("Loss", f64::NAN, 4, f64::INFINITY),
        ("Unknown", 1.0, 1, 1.0),
        (" / ", 2.0, 1, 2.0),
    ]);
    update.entries_numeric.push(NumericMetricUpdate::new(
        MetricEntry::new(id("Loss"), SerializedEntry::not_available(None)),
        None,
        None,
    ));
    update
        .entries
        .push(MetricEntry::new(id("Unknown"), SerializedEntry::new("?".into(), "?".into())));
    logger.log(update, 1, &Split::Train);
    let mut parsed_only = MetricsUpdate::new(Vec::new(), Vec::new());
    parsed_only.entries_numeric.push(NumericMetricUpdate::new(
        MetricEntry::new(id("Loss"), SerializedEntry::new("x".into(), "0.5".into())),
        None,
        None,
    ));
    parsed_only.entries_numeric.push(NumericMetricUpdate::new(
        MetricEntry::new(id("Loss"), SerializedEntry::new("x".into(), "not a number".into())),
        None,
        None,
    ));
    logger.log(parsed_only, 1, &Split::Train);
    logger.log(epoch_end(&[("Loss", f64::NAN)]), 1, &Split::Train);
    logger.log_epoch_summary(EpochSummary::new(1, Split::Train));
    // An epoch summary with nothing held, and one for a split never seen.
    logger.log_epoch_summary(EpochSummary::new(1, Split::Train));
    logger.log_epoch_summary(EpochSummary::new(3, Split::Test(None)));
    let read = logger.read_numeric("Loss", 1, &Split::Train).expect("read");
    assert!(aggregate(&read).is_some_and(f64::is_nan), "{read:?}");
    assert_eq!(logger.errors(), 0, "none of it is an error of the run");
    drop(logger);
    run.finish().expect("finish");

    let r = reader(home.path(), &run);
    let loss = points(&*r, "train/loss");
    assert_eq!(loss.len(), 2);
    assert!(loss[0].1.is_nan(), "NaN is kept: {loss:?}");
    assert_eq!(loss[1], (2.0, 0.5), "read from its serialized text");
    assert_eq!(points(&*r, "train/loss/running")[0].1, f64::INFINITY);
    assert!(points(&*r, "train/loss/epoch")[0].1.is_nan());
    assert_eq!(points(&*r, "train/unnamed"), [(1.0, 2.0)]);
    let paths = r.metric_paths().expect("paths");
    assert!(!paths.iter().any(|p| p.contains("unknown")), "{paths:?}");
}

#[test]
fn a_finished_run_counts_errors_and_training_goes_on() {
    let home = tempfile::tempdir().expect("home");
    let run = builder(home.path()).create().expect("run");
    let mut logger = GoodseedLogger::new(&run);
    run.finish().expect("finish");
    logger.log_metric_definition(numeric_definition("Loss", None, false));
    for _ in 0..3 {
        logger.log(iteration(&[("Loss", 1.0, 1, 1.0)]), 1, &Split::Train);
    }
    logger.log(epoch_end(&[("Loss", 1.0)]), 1, &Split::Train);
    logger.log_epoch_summary(EpochSummary::new(1, Split::Train));
    assert!(logger.errors() >= 4, "{} errors", logger.errors());
    let read = logger.read_numeric("Loss", 1, &Split::Train).expect("memory still answers");
    assert_eq!(aggregate(&read), Some(1.0));
}

#[test]
fn a_disabled_run_takes_everything_and_writes_nothing() {
    let run = goodseed_sdk::Run::builder().disabled(true).create().expect("run");
    let interrupter = Interrupter::new();
    let mut logger = GoodseedLogger::new(&run).with_interrupter(interrupter.clone());
    logger.log_metric_definition(numeric_definition("Loss", None, false));
    logger.log(iteration(&[("Loss", 1.0, 1, 1.0)]), 1, &Split::Train);
    logger.log(epoch_end(&[("Loss", 1.0)]), 1, &Split::Train);
    logger.log_epoch_summary(EpochSummary::new(1, Split::Train));
    assert_eq!(logger.errors(), 0);
    assert!(!interrupter.should_stop());
}

#[test]
fn a_stop_request_reaches_the_interrupter_at_the_next_update() {
    let home = tempfile::tempdir().expect("home");
    let run = builder(home.path()).create().expect("run");
    let interrupter = Interrupter::new();
    let mut logger = GoodseedLogger::new(&run).with_interrupter(interrupter.clone());
    logger.log_metric_definition(numeric_definition("Loss", None, false));
    logger.log(iteration(&[("Loss", 1.0, 1, 1.0)]), 1, &Split::Train);
    assert!(!interrupter.should_stop(), "nobody asked");
    store(home.path()).request_stop(run.project(), run.run_id()).expect("stop");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !run.should_stop() {
        assert!(Instant::now() < deadline, "the run never saw the request");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!interrupter.should_stop(), "forwarded by the logger, not by itself");
    logger.log(iteration(&[("Loss", 1.0, 1, 1.0)]), 1, &Split::Train);
    assert!(interrupter.should_stop());
    assert_eq!(
        interrupter.interruption().and_then(|i| i.reason).as_deref(),
        Some("stop requested in goodseed")
    );
    drop(logger);
    run.finish().expect("finish");
}
