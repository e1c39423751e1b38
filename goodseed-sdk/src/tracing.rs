//! Logs from the `tracing` ecosystem, recorded into a run (the `tracing` feature): a
//! [`GoodseedLayer`] for `tracing-subscriber` that writes each event as one line of the
//! run's `logs/tracing` text series (or a path of your choosing), with its level, target,
//! message, fields and the spans it happened in:
//!
//! ```text
//! WARN trainer::data: shard is short rows=997 expected=1000 [epoch:load]
//! ```
//!
//! Lines start with their level's word, so the server's `level=` filter (and the UI's
//! logs view) keep a level and the more severe ones. Steps count the lines from 0.
//!
//! ```
//! use goodseed_sdk::Run;
//! use goodseed_sdk::tracing::GoodseedLayer;
//! use tracing_subscriber::prelude::*;
//!
//! let home = tempfile::tempdir()?;
//! let run = Run::builder().home(home.path()).capture_git(false).monitoring(false).create()?;
//! let subscriber = tracing_subscriber::registry()
//!     .with(GoodseedLayer::new(&run).min_level(tracing::Level::INFO));
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!(loss = 0.25, "epoch done");
//!     tracing::debug!("not recorded: below INFO");
//! });
//! run.finish()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_core::field::{Field, Visit};
use tracing_core::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::Run;

/// The series events go to unless told otherwise.
pub const DEFAULT_PATH: &str = "logs/tracing";

/// A `tracing-subscriber` layer that records events into a run.
#[derive(Debug)]
pub struct GoodseedLayer {
    run: Run,
    path: String,
    min_level: Level,
    step: AtomicU64,
}

impl GoodseedLayer {
    /// Records events of `run`'s process into it, at `logs/tracing`, TRACE and up.
    pub fn new(run: &Run) -> GoodseedLayer {
        GoodseedLayer {
            run: run.clone(),
            path: DEFAULT_PATH.to_owned(),
            min_level: Level::TRACE,
            step: AtomicU64::new(0),
        }
    }

    /// Records only events of this level or more severe.
    pub fn min_level(mut self, level: Level) -> GoodseedLayer {
        self.min_level = level;
        self
    }

    /// Records into this text series instead of `logs/tracing`.
    pub fn path(mut self, path: impl Into<String>) -> GoodseedLayer {
        self.path = path.into();
        self
    }
}

/// Collects an event's message and fields as text.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }
}

/// The line an event becomes: `LEVEL target: message k=v … [span{…}:span]`.
fn line(level: &Level, target: &str, fields: &Fields, spans: &[String]) -> String {
    let mut out = format!("{} {target}: {}{}", level.as_str(), fields.message, fields.rest);
    if !spans.is_empty() {
        let _ = write!(out, " [{}]", spans.join(":"));
    }
    // One event, one line: a line break inside would read as several.
    out.replace('\n', "\\n")
}

impl<S> Layer<S> for GoodseedLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        // Levels order from TRACE (greatest) to ERROR (least).
        if *meta.level() > self.min_level {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let spans: Vec<String> = ctx
            .event_scope(event)
            .map(|scope| scope.from_root().map(|s| s.name().to_owned()).collect())
            .unwrap_or_default();
        let text = line(meta.level(), meta.target(), &fields, &spans);
        let step = self.step.fetch_add(1, Ordering::Relaxed);
        // A closed run takes no more lines; there is no one to tell from inside a layer.
        let _ = self.run.log_text(&self.path, step, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_as_the_level_filter_expects() {
        let fields = Fields { message: "epoch done".into(), rest: " loss=0.25".into() };
        assert_eq!(
            line(&Level::WARN, "trainer", &fields, &["epoch".into(), "step".into()]),
            "WARN trainer: epoch done loss=0.25 [epoch:step]"
        );
        let multi = Fields { message: "a\nb".into(), rest: String::new() };
        assert_eq!(line(&Level::INFO, "t", &multi, &[]), "INFO t: a\\nb");
        assert_eq!(
            goodseed_store::LogLevel::of_line(&line(&Level::ERROR, "t", &fields, &[])),
            Some(goodseed_store::LogLevel::Error)
        );
    }
}
