//! Panic capture: a panic hook, chained to the one installed before it, that writes the
//! panic (message, location, backtrace) into goodseed 0.4.0's `monitoring/<hash>/traceback`
//! text series of every run that asks, and, when the panic ends the program (on the main
//! thread, or with `panic = "abort"`), closes those runs as `failed`, flushed, before the
//! program goes. A panic on another thread, which the program may survive, is recorded
//! and leaves the run open (its `Run` is closed as `failed` if it is dropped while that
//! thread unwinds).

use std::backtrace::Backtrace;
use std::panic::PanicHookInfo;
use std::sync::{Mutex, Once, PoisonError, Weak};

use goodseed_store::lifecycle::EndState;

use crate::run::Inner;

/// The runs that record panics: the run and its traceback series.
static WATCHED: Mutex<Vec<(Weak<Inner>, String)>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

/// Records panics into `run` from now on, at `path`.
pub(crate) fn watch(run: Weak<Inner>, path: String) {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // The usual message first: it reaches stderr, which may be captured too.
            previous(info);
            record(info);
        }));
    });
    WATCHED.lock().unwrap_or_else(PoisonError::into_inner).push((run, path));
}

/// Stops recording panics into `run`.
pub(crate) fn unwatch(run: &Weak<Inner>) {
    WATCHED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|(r, _)| !r.ptr_eq(run) && r.strong_count() > 0);
}

/// The text 0.4.0's traceback holds, for a Rust panic: where, what, and the stack.
pub(crate) fn traceback_text(info: &PanicHookInfo<'_>, backtrace: &Backtrace) -> String {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("<unnamed>");
    let message = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_owned());
    let location = info.location().map_or_else(|| "an unknown place".to_owned(), |l| l.to_string());
    format!("thread '{name}' panicked at {location}:\n{message}\nstack backtrace:\n{backtrace}")
}

fn record(info: &PanicHookInfo<'_>) {
    let runs: Vec<(Weak<Inner>, String)> =
        WATCHED.lock().unwrap_or_else(PoisonError::into_inner).clone();
    if runs.is_empty() {
        return;
    }
    let thread = std::thread::current();
    // A panic in goodseed's own threads must not wait on them.
    if thread.name().is_some_and(|n| n.starts_with("goodseed-")) {
        return;
    }
    let text = traceback_text(info, &Backtrace::force_capture());
    let fatal = cfg!(panic = "abort") || thread.name() == Some("main");
    if fatal {
        // What the program printed up to here belongs in the run too.
        super::console::flush_all();
    }
    for (run, path) in runs {
        let Some(run) = run.upgrade() else { continue };
        run.record_traceback(&path, &text);
        if fatal {
            run.close_from_panic(EndState::Failed);
        }
    }
}
