//! What a run records without being asked, as goodseed 0.4.0 does by default, under the
//! run's monitoring namespace (`monitoring/<hash>/`):
//!
//! - hardware (readings from `goodseed-hardware`): a sampler thread reads CPU, memory and GPUs once
//!   when the run starts, every interval (10 s by default, at least 0.1 s), and once when
//!   it closes; a sample that finds the run's queue full is dropped and counted
//!   ([`crate::Stats::monitoring_samples_dropped`]), never waited for;
//! - the console (`console.rs`): stdout and stderr teed into `stdout` and `stderr` text
//!   series;
//! - panics (`panic.rs`): the panic, with its backtrace, as `traceback`, and the run closed
//!   as `failed` when the panic ends the program.
//!
//! Each part is switched on the builder or by environment (the builder wins):
//! `GOODSEED_CAPTURE_HARDWARE`, `GOODSEED_CAPTURE_GPU`, `GOODSEED_CAPTURE_STDOUT`,
//! `GOODSEED_CAPTURE_STDERR`, `GOODSEED_CAPTURE_TRACEBACK` (`0`, `false`, `off` or `no`
//! turn one off) and `GOODSEED_MONITORING_INTERVAL` (seconds). Nothing here keeps a run
//! open: the threads hold the run weakly, and closing the run stops them.

pub(crate) mod console;
pub(crate) mod panic;

use goodseed_hardware as hardware;

use std::sync::atomic::Ordering;
use std::sync::mpsc::{RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::SdkError;
use crate::run::Inner;

/// The default time between hardware samples, as in 0.4.0.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// The shortest time between hardware samples.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Environment variables that switch monitoring.
pub mod env {
    /// Seconds between hardware samples (at least 0.1).
    pub const INTERVAL: &str = "GOODSEED_MONITORING_INTERVAL";
    /// Hardware samples (CPU, memory, GPUs).
    pub const HARDWARE: &str = "GOODSEED_CAPTURE_HARDWARE";
    /// GPU samples only.
    pub const GPU: &str = "GOODSEED_CAPTURE_GPU";
    /// The stdout series.
    pub const STDOUT: &str = "GOODSEED_CAPTURE_STDOUT";
    /// The stderr series.
    pub const STDERR: &str = "GOODSEED_CAPTURE_STDERR";
    /// The traceback of a panic.
    pub const TRACEBACK: &str = "GOODSEED_CAPTURE_TRACEBACK";
}

/// What the builder was told (`None`: the environment, else on).
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    pub(crate) hardware: Option<bool>,
    pub(crate) gpu: Option<bool>,
    pub(crate) stdout: Option<bool>,
    pub(crate) stderr: Option<bool>,
    pub(crate) traceback: Option<bool>,
    pub(crate) interval: Option<Duration>,
}

/// What a run monitors, settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) hardware: bool,
    pub(crate) gpu: bool,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
    pub(crate) traceback: bool,
    pub(crate) interval: Duration,
}

/// A switch from the environment: on unless it says off; an unknown value is an error.
fn switch(name: &str, value: Option<String>) -> Result<Option<bool>, SdkError> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else { return Ok(None) };
    match value.trim().to_ascii_lowercase().as_str() {
        "0" | "false" | "off" | "no" => Ok(Some(false)),
        "1" | "true" | "on" | "yes" => Ok(Some(true)),
        _ => Err(SdkError::Setting {
            name: name.to_owned(),
            message: format!("expected 1/true/on/yes or 0/false/off/no, got {value:?}"),
        }),
    }
}

impl Settings {
    /// The plan, from the builder's settings, else `env` (a lookup of a variable).
    pub(crate) fn plan(&self, env: impl Fn(&str) -> Option<String>) -> Result<Plan, SdkError> {
        let on = |given: Option<bool>, var: &str| -> Result<bool, SdkError> {
            Ok(match given {
                Some(b) => b,
                None => switch(var, env(var))?.unwrap_or(true),
            })
        };
        let interval = match self.interval {
            Some(i) => i,
            None => match env(env::INTERVAL).filter(|v| !v.trim().is_empty()) {
                None => DEFAULT_INTERVAL,
                Some(text) => {
                    let seconds: f64 = text.trim().parse().map_err(|_| SdkError::Setting {
                        name: env::INTERVAL.to_owned(),
                        message: format!("expected seconds (e.g. 10 or 0.5), got {text:?}"),
                    })?;
                    if !(0.0..=86_400.0).contains(&seconds) {
                        return Err(SdkError::Setting {
                            name: env::INTERVAL.to_owned(),
                            message: format!("expected 0.1 to 86400 seconds, got {text:?}"),
                        });
                    }
                    Duration::from_secs_f64(seconds)
                }
            },
        };
        if interval < MIN_INTERVAL {
            return Err(SdkError::Setting {
                name: "monitoring interval".to_owned(),
                message: format!("must be at least 0.1 s, got {interval:?}"),
            });
        }
        Ok(Plan {
            hardware: on(self.hardware, env::HARDWARE)?,
            gpu: on(self.gpu, env::GPU)?,
            stdout: on(self.stdout, env::STDOUT)?,
            stderr: on(self.stderr, env::STDERR)?,
            traceback: on(self.traceback, env::TRACEBACK)?,
            interval,
        })
    }
}

/// A run's monitoring, running.
#[derive(Debug)]
pub(crate) struct Monitor {
    sampler: Option<Sampler>,
    console: Option<Arc<console::Subscription>>,
    panics: Option<Weak<Inner>>,
}

impl Monitor {
    /// Starts what `plan` asks for, on the run `run`, under `namespace`. What cannot be
    /// started (descriptors that cannot be redirected, a thread that cannot be spawned)
    /// is skipped: monitoring never fails a run.
    pub(crate) fn start(run: &Arc<Inner>, namespace: &str, plan: &Plan) -> Monitor {
        let weak = Arc::downgrade(run);
        let mut monitor = Monitor { sampler: None, console: None, panics: None };
        if plan.stdout || plan.stderr {
            let paths = [
                plan.stdout.then(|| format!("{namespace}/stdout")),
                plan.stderr.then(|| format!("{namespace}/stderr")),
            ];
            monitor.console = console::subscribe(Weak::clone(&weak), paths).ok();
        }
        if plan.hardware {
            let parts = hardware::Parts { host: true, process: true, gpu: plan.gpu };
            let gpus = if plan.gpu { hardware::detect() } else { None };
            let hw = hardware::Hardware::new(parts, gpus);
            monitor.sampler = Sampler::spawn(Weak::clone(&weak), namespace, plan.interval, hw);
        }
        if plan.traceback {
            panic::watch(Weak::clone(&weak), format!("{namespace}/traceback"));
            monitor.panics = Some(weak);
        }
        monitor
    }

    /// Stops everything: the last hardware sample and everything printed so far reach
    /// `run` before this returns. `run` is the run being closed (perhaps dropped: the
    /// threads, which hold it weakly, can no longer reach it).
    pub(crate) fn stop(mut self, run: &Inner) {
        if let Some(sampler) = self.sampler.take() {
            sampler.stop(run);
        }
        if let Some(sub) = self.console.take() {
            console::unsubscribe(&sub, run);
            if sub.dropped() > 0 {
                run.counters().console_lines_dropped.fetch_add(sub.dropped(), Ordering::Relaxed);
            }
        }
        if let Some(weak) = self.panics.take() {
            panic::unwatch(&weak);
        }
    }
}

/// The hardware sampler: its thread, and the way to stop it.
#[derive(Debug)]
struct Sampler {
    stop: SyncSender<()>,
    thread: JoinHandle<(hardware::Hardware, u64)>,
    namespace: String,
}

/// Takes one sample into `run` at `step`; a sample the queue has no room for is dropped
/// and counted.
fn sample_into(run: &Inner, hw: &mut hardware::Hardware, namespace: &str, step: u64) {
    let values: Vec<(String, f64)> =
        hw.sample().into_iter().map(|(name, v)| (format!("{namespace}/{name}"), v)).collect();
    if !run.try_log_metrics(step, &values) {
        run.counters().monitoring_samples_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

impl Sampler {
    /// A sample at once, then one every `interval`, on a thread of its own.
    fn spawn(
        run: Weak<Inner>,
        namespace: &str,
        interval: Duration,
        mut hw: hardware::Hardware,
    ) -> Option<Sampler> {
        let (stop, stopped) = sync_channel::<()>(0);
        let ns = namespace.to_owned();
        let thread = std::thread::Builder::new()
            .name("goodseed-sampler".to_owned())
            .spawn(move || {
                let mut step = 0u64;
                loop {
                    let Some(run) = run.upgrade() else { break };
                    sample_into(&run, &mut hw, &ns, step);
                    drop(run);
                    step += 1;
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                (hw, step)
            })
            .ok()?;
        Some(Sampler { stop, thread, namespace: namespace.to_owned() })
    }

    /// Stops the thread and takes the last sample, into `run`.
    fn stop(self, run: &Inner) {
        drop(self.stop);
        // The sampler can be the thread that dropped the run's last handle: then it
        // cannot wait for itself, and its next look finds the run gone.
        if self.thread.thread().id() == std::thread::current().id() {
            return;
        }
        if let Ok((mut hw, step)) = self.thread.join() {
            sample_into(run, &mut hw, &self.namespace, step);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(settings: &Settings, vars: &[(&str, &str)]) -> Result<Plan, String> {
        let vars: Vec<(String, String)> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        settings
            .plan(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_part_is_on_unless_switched_off() {
        let all = plan(&Settings::default(), &[]).expect("plan");
        assert_eq!(
            all,
            Plan {
                hardware: true,
                gpu: true,
                stdout: true,
                stderr: true,
                traceback: true,
                interval: DEFAULT_INTERVAL
            }
        );
        let off = plan(
            &Settings::default(),
            &[(env::STDOUT, "0"), (env::GPU, "off"), (env::INTERVAL, "0.5"), (env::TRACEBACK, "")],
        )
        .expect("plan");
        assert!(!off.stdout && !off.gpu && off.stderr && off.traceback);
        assert_eq!(off.interval, Duration::from_millis(500));
        // The builder wins over the environment.
        let builder = Settings {
            stdout: Some(true),
            interval: Some(Duration::from_secs(2)),
            ..Settings::default()
        };
        let both = plan(&builder, &[(env::STDOUT, "0"), (env::INTERVAL, "0.5")]).expect("plan");
        assert!(both.stdout);
        assert_eq!(both.interval, Duration::from_secs(2));
    }

    #[test]
    fn bad_settings_name_what_is_wrong() {
        let err = plan(&Settings::default(), &[(env::INTERVAL, "fast")]).expect_err("bad");
        assert!(err.contains("GOODSEED_MONITORING_INTERVAL") && err.contains("\"fast\""), "{err}");
        let err = plan(&Settings::default(), &[(env::INTERVAL, "0.01")]).expect_err("too short");
        assert!(err.contains("at least 0.1 s"), "{err}");
        let err = plan(&Settings::default(), &[(env::HARDWARE, "maybe")]).expect_err("bad");
        assert!(err.contains("GOODSEED_CAPTURE_HARDWARE") && err.contains("maybe"), "{err}");
        let short = Settings { interval: Some(Duration::from_millis(50)), ..Settings::default() };
        assert!(plan(&short, &[]).expect_err("too short").contains("at least 0.1 s"));
    }
}
