//! SIGINT and SIGTERM: a run open when the process is told to stop is closed as `killed`
//! (0.4.0's status `failed`, as it records an interrupted run), with everything logged
//! written (and, for a remote run, sent for at most its upload timeout) and the signal
//! named in `ended_by_signal`; then the signal does what it would have done without us
//! (the process ends, killed by it). A second signal while the runs close ends the
//! process at once. Without this, Ctrl-C or a scheduler's SIGTERM leaves a run crashed,
//! with up to a flush interval of points lost.
//!
//! Installed when the first run that asks starts (`RunBuilder::handle_signals`, on by
//! default; `GOODSEED_HANDLE_SIGNALS=0` turns it off), by a thread that waits for the
//! signals (`signal-hook`), so nothing runs inside a signal handler.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once, PoisonError, Weak};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::run::Inner;

/// The runs to close on a signal.
static WATCHED: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();
/// A signal came and the runs are being closed.
static CLOSING: AtomicBool = AtomicBool::new(false);

/// Closes `run` as killed if the process gets SIGINT or SIGTERM while it is open.
pub(crate) fn watch(run: Weak<Inner>) {
    INSTALL.call_once(start);
    let mut watched = WATCHED.lock().unwrap_or_else(PoisonError::into_inner);
    watched.retain(|r| r.strong_count() > 0);
    watched.push(run);
}

/// How long a logging call on a run closed by a signal waits for the process to end
/// before it returns the error of a closed run.
const END_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Called by a logging call that finds its run closed: after a signal closed the runs,
/// waits (bounded) for the process to end, so a training loop does not go on, or fail
/// on the closed run, in the moments before the signal ends it.
pub(crate) fn wait_for_the_end() {
    if CLOSING.load(Ordering::SeqCst) {
        std::thread::sleep(END_WAIT);
    }
}

/// Whether signals are handled unless the builder says: `GOODSEED_HANDLE_SIGNALS`.
pub(crate) fn wanted_by_environment() -> bool {
    !matches!(
        std::env::var("GOODSEED_HANDLE_SIGNALS").as_deref().map(str::trim),
        Ok("0" | "false" | "no" | "off")
    )
}

fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

fn start() {
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            crate::writer::tell(&format!(
                "cannot handle SIGINT and SIGTERM ({e}): a run interrupted will show as crashed"
            ));
            return;
        }
    };
    let started = std::thread::Builder::new().name("goodseed-signals".into()).spawn(move || {
        for signal in signals.forever() {
            if CLOSING.swap(true, Ordering::SeqCst) {
                // Asked again while closing: go now.
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                continue;
            }
            // Closing happens beside this thread, so a second signal is still heard.
            let closer = std::thread::Builder::new()
                .name("goodseed-signal-close".into())
                .spawn(move || close_all_and_end(signal));
            if closer.is_err() {
                close_all_and_end(signal);
            }
        }
    });
    if let Err(e) = started {
        crate::writer::tell(&format!("cannot start the signal thread: {e}"));
    }
}

fn close_all_and_end(signal: i32) {
    let runs: Vec<Weak<Inner>> =
        WATCHED.lock().unwrap_or_else(PoisonError::into_inner).drain(..).collect();
    // What the program printed up to here belongs in the runs too (without waiting on
    // the stdout lock, which the interrupted program may hold).
    crate::monitor::console::never_flush_std_here();
    crate::monitor::console::flush_all();
    for run in runs {
        if let Some(run) = run.upgrade() {
            run.close_killed(name(signal));
        }
    }
    let _ = signal_hook::low_level::emulate_default_handler(signal);
}
