//! Console capture: the process's stdout and stderr teed, at the file-descriptor level,
//! into goodseed 0.4.0's `monitoring/<hash>/stdout` and `stderr` text series of every
//! run that asks, a line a point, while the terminal still shows everything.
//!
//! The first run that asks puts a pipe in place of descriptor 1 (and 2), keeping a copy
//! of the original; a tee thread per stream reads the pipe, writes each chunk to the
//! original at once (so the terminal shows everything in order, and a full pipe never
//! waits on goodseed), and splits it into lines for each subscribed run. Lines go to the
//! run without ever waiting: when its queue is full they wait in the subscription's own
//! buffer (bounded: beyond [`MAX_PENDING_BYTES`] the oldest are dropped and counted) and
//! are handed over on the next chunk or the next tick of a pump thread, which also flushes
//! a partial line (no newline yet) after [`PARTIAL_DELAY`]. A `\r` before the end of a
//! line starts it again, as progress bars use it (0.4.0's rule). Steps count the lines of
//! both streams together, from 0, as in 0.4.0. Everything written by any thread or by a
//! child process goes through the same descriptors; a line stays whole as long as it was
//! written in one `write`.
//!
//! When a run closes it takes everything written before it closed (a sync marker goes
//! through each pipe and the tee confirms it), and when the last subscription ends the
//! original descriptors are put back. While captured, the streams are pipes: a library
//! that checks for a terminal (colors, progress bars) sees none.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::run::Inner;

/// A partial line is taken as a line after this long without a newline (0.4.0: 5 s).
pub(crate) const PARTIAL_DELAY: Duration = Duration::from_secs(5);
/// How often the pump hands waiting lines over and looks at partial lines.
const PUMP_EVERY: Duration = Duration::from_millis(200);
/// The bytes of lines one subscription keeps waiting for a full queue before the tee
/// waits for the run (the printer then meets back-pressure, as from a slow terminal).
pub(crate) const MAX_PENDING_BYTES: usize = 64 << 20;
/// How long the tee waits for a run whose writer makes no room before it drops the
/// oldest waiting lines (at once when the writer reports failures, a full disk, say):
/// never hang the printer.
const STALLED_AFTER: Duration = Duration::from_secs(2);
/// How long closing waits for the tee to read what was written before it.
const SYNC_TIMEOUT: Duration = Duration::from_secs(2);

/// The marker that says "everything before me was read": NUL, ESC, `GSSYNC`, 8 bytes of
/// a sequence number, NUL. NUL does not occur in console text; the tee removes it.
const MARKER_HEAD: &[u8] = b"\x00\x1bGSSYNC";
const MARKER_LEN: usize = MARKER_HEAD.len() + 8 + 1;

/// Which stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// A line being built: the text since the last newline, and when it was last written.
#[derive(Debug, Default)]
struct Partial {
    text: Vec<u8>,
    since: Option<Instant>,
}

/// One run's share of the console.
#[derive(Debug)]
pub(crate) struct Subscription {
    run: Weak<Inner>,
    /// The text series of each stream; `None` for a stream not captured.
    paths: [Option<String>; 2],
    state: Mutex<SubState>,
}

#[derive(Debug, Default)]
struct SubState {
    /// The next line's step (both streams).
    step: u64,
    partial: [Partial; 2],
    /// Lines waiting for room in the run's queue: (stream, step, text, unix seconds).
    pending: VecDeque<(usize, u64, String, i64)>,
    pending_bytes: usize,
    /// Lines dropped because even the pending buffer was full.
    dropped: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Subscription {
    /// Appends a chunk of one stream: complete lines become pending lines.
    fn take(&self, stream: Stream, chunk: &[u8]) {
        let i = stream.index();
        if self.paths[i].is_none() {
            return;
        }
        let mut st = lock(&self.state);
        let ts = unix_now();
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (line, after) = rest.split_at(nl);
            rest = &after[1..];
            push_text(&mut st.partial[i], line);
            let text = std::mem::take(&mut st.partial[i].text);
            st.partial[i].since = None;
            st.line(i, text, ts);
        }
        if !rest.is_empty() {
            push_text(&mut st.partial[i], rest);
            st.partial[i].since.get_or_insert_with(Instant::now);
        }
    }

    /// Hands pending lines to the run, as many as its queue takes without waiting
    /// (`wait`: all of them, waiting for room, when the run closes). Partial lines older
    /// than `partial_after` are taken as lines first.
    fn deliver(&self, partial_after: Option<Duration>, wait: bool) {
        let Some(run) = self.run.upgrade() else { return };
        self.deliver_to(&run, partial_after, wait);
    }

    /// [`Subscription::deliver`] into a run the caller holds (one being dropped, say).
    fn deliver_to(&self, run: &Inner, partial_after: Option<Duration>, wait: bool) {
        let mut st = lock(&self.state);
        if let Some(after) = partial_after {
            for i in 0..2 {
                let stale = st.partial[i].since.is_some_and(|t| t.elapsed() >= after);
                if stale && !st.partial[i].text.is_empty() {
                    let text = std::mem::take(&mut st.partial[i].text);
                    st.partial[i].since = None;
                    st.line(i, text, unix_now());
                }
            }
        }
        while let Some((i, step, text, ts)) = st.pending.pop_front() {
            let Some(path) = &self.paths[i] else { continue };
            let len = text.len();
            match run.push_text_nonblocking(path, step, text, ts, wait) {
                Ok(None) => st.pending_bytes -= len,
                Ok(Some(text)) => {
                    // No room: keep it first in line for the next look.
                    st.pending.push_front((i, step, text, ts));
                    break;
                }
                // The run is closed or the line cannot be a point: nothing to keep.
                Err(()) => st.pending_bytes -= len,
            }
        }
    }

    /// Lines dropped because the run could take none for a long while.
    pub(crate) fn dropped(&self) -> u64 {
        lock(&self.state).dropped
    }

    /// Keeps the waiting lines within [`MAX_PENDING_BYTES`]: hands them over, waiting for
    /// the run's writer to make room as long as it does, and drops the oldest (counted)
    /// only when it makes none for [`STALLED_AFTER`].
    fn bound(&self) {
        let over = || lock(&self.state).pending_bytes > MAX_PENDING_BYTES;
        if !over() {
            return;
        }
        let Some(run) = self.run.upgrade() else { return };
        let mut progress_at = Instant::now();
        let mut before = lock(&self.state).pending_bytes;
        while over() {
            self.deliver_to(&run, None, false);
            let now = lock(&self.state).pending_bytes;
            if now < before {
                progress_at = Instant::now();
                before = now;
            } else if progress_at.elapsed() >= STALLED_AFTER || run.writer_failing() {
                let mut st = lock(&self.state);
                while st.pending_bytes > MAX_PENDING_BYTES / 2 {
                    let Some((_, _, old, _)) = st.pending.pop_front() else { break };
                    st.pending_bytes -= old.len();
                    st.dropped += 1;
                }
                return;
            } else {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

impl SubState {
    fn line(&mut self, stream: usize, text: Vec<u8>, ts: i64) {
        if text.is_empty() {
            return; // 0.4.0 logs no empty line
        }
        let text = String::from_utf8(text)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        self.pending_bytes += text.len();
        let step = self.step;
        self.step += 1;
        self.pending.push_back((stream, step, text, ts));
    }
}

/// Adds text to a line being built; a `\r` starts it again (progress bars).
fn push_text(partial: &mut Partial, text: &[u8]) {
    match text.iter().rposition(|&b| b == b'\r') {
        Some(cr) => {
            partial.text.clear();
            partial.text.extend_from_slice(&text[cr + 1..]);
        }
        None => partial.text.extend_from_slice(text),
    }
}

/// One stream in capture: the original descriptor (written to, and put back at the end),
/// a writer into the pipe (for sync markers) and the tee thread.
#[derive(Debug)]
struct Tee {
    original: OwnedFd,
    marker_writer: std::io::PipeWriter,
    thread: Option<JoinHandle<()>>,
}

/// What the tee threads have confirmed: the last marker read, per stream.
#[derive(Debug, Default)]
struct Synced {
    seen: [u64; 2],
}

#[derive(Debug, Default)]
struct Capture {
    tees: [Option<Tee>; 2],
    subscriptions: Vec<Arc<Subscription>>,
    next_marker: u64,
    pump: bool,
}

static CAPTURE: Mutex<Option<Capture>> = Mutex::new(None);
static SUBSCRIBERS: Mutex<Vec<Arc<Subscription>>> = Mutex::new(Vec::new());
static SYNCED: (Mutex<Synced>, Condvar) = (Mutex::new(Synced { seen: [0, 0] }), Condvar::new());

/// Starts capturing for a run: `paths` names its stdout and stderr series (`None`: that
/// stream is not captured for it). Fails (capturing nothing) when the descriptors cannot
/// be redirected.
pub(crate) fn subscribe(
    run: Weak<Inner>,
    paths: [Option<String>; 2],
) -> std::io::Result<Arc<Subscription>> {
    let sub = Arc::new(Subscription { run, paths, state: Mutex::new(SubState::default()) });
    let mut capture = lock(&CAPTURE);
    let capture = capture.get_or_insert_with(Capture::default);
    for stream in [Stream::Stdout, Stream::Stderr] {
        if sub.paths[stream.index()].is_some() && capture.tees[stream.index()].is_none() {
            capture.tees[stream.index()] = Some(start_tee(stream)?);
        }
    }
    capture.subscriptions.push(Arc::clone(&sub));
    lock(&SUBSCRIBERS).push(Arc::clone(&sub));
    if !capture.pump {
        capture.pump = true;
        let _ = std::thread::Builder::new().name("goodseed-console".into()).spawn(pump);
    }
    Ok(sub)
}

/// Ends a run's capture: everything written so far reaches the run (waiting for room),
/// and the original descriptors come back once no run captures.
pub(crate) fn unsubscribe(sub: &Arc<Subscription>, run: &Inner) {
    sync();
    sub.deliver_to(run, Some(Duration::ZERO), true);
    lock(&SUBSCRIBERS).retain(|s| !Arc::ptr_eq(s, sub));
    let mut guard = lock(&CAPTURE);
    let Some(capture) = guard.as_mut() else { return };
    capture.subscriptions.retain(|s| !Arc::ptr_eq(s, sub));
    if capture.subscriptions.is_empty() {
        let capture = guard.take().expect("checked above");
        drop(guard);
        restore(capture);
    }
}

/// Flushes what every run captured so far into it, without waiting on a full queue
/// (a panicking thread calls it before the run is closed).
pub(crate) fn flush_all() {
    sync();
    let subs: Vec<Arc<Subscription>> = lock(&SUBSCRIBERS).clone();
    for sub in subs {
        sub.deliver(Some(Duration::ZERO), false);
    }
}

thread_local! {
    /// This thread must not flush the program's `stdout` and `stderr` (see
    /// [`never_flush_std_here`]).
    static NO_STD_FLUSH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes this thread (the signal thread) close runs without flushing the program's
/// `stdout` and `stderr` buffers: another thread may hold their lock for as long as it
/// runs (a command writing through a `StdoutLock`), and waiting on it would hang the
/// close for ever. What the program wrote to the descriptors is captured all the same;
/// at most a line it had not finished is left out.
pub(crate) fn never_flush_std_here() {
    NO_STD_FLUSH.with(|f| f.set(true));
}

/// Flushes the program's `stdout` and `stderr` buffers, unless this thread must not.
fn flush_std() {
    if !NO_STD_FLUSH.with(std::cell::Cell::get) {
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
    }
}

/// Waits (a bounded time) until the tees have read everything written so far (first
/// flushing the program's `stdout` and `stderr` buffers, unless this thread must not).
fn sync() {
    flush_std();
    let mut targets = Vec::new();
    {
        let mut guard = lock(&CAPTURE);
        let Some(capture) = guard.as_mut() else { return };
        for (i, tee) in capture.tees.iter_mut().enumerate() {
            if let Some(tee) = tee {
                capture.next_marker += 1;
                let n = capture.next_marker;
                let mut marker = MARKER_HEAD.to_vec();
                marker.extend_from_slice(&n.to_be_bytes());
                marker.push(0);
                if tee.marker_writer.write_all(&marker).is_ok() {
                    targets.push((i, n));
                }
            }
        }
    }
    let deadline = Instant::now() + SYNC_TIMEOUT;
    let (lock_synced, cond) = &SYNCED;
    let mut synced = lock(lock_synced);
    for (i, n) in targets {
        while synced.seen[i] < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return; // the terminal does not read: never hang a closing run on it
            }
            synced = cond.wait_timeout(synced, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

fn start_tee(stream: Stream) -> std::io::Result<Tee> {
    let (reader, writer) = std::io::pipe()?;
    let original = match stream {
        Stream::Stdout => {
            std::io::stdout().flush()?;
            std::io::stdout().as_fd().try_clone_to_owned()?
        }
        Stream::Stderr => std::io::stderr().as_fd().try_clone_to_owned()?,
    };
    let marker_writer = writer.try_clone()?;
    let redirected = match stream {
        Stream::Stdout => nix::unistd::dup2_stdout(&writer),
        Stream::Stderr => nix::unistd::dup2_stderr(&writer),
    };
    redirected.map_err(std::io::Error::from)?;
    drop(writer);
    let out = std::fs::File::from(original.try_clone()?);
    let thread = std::thread::Builder::new()
        .name(format!("goodseed-tee-{}", if stream == Stream::Stdout { "out" } else { "err" }))
        .spawn(move || tee(stream, reader, out))?;
    Ok(Tee { original, marker_writer, thread: Some(thread) })
}

/// Puts the original descriptors back. The tees go on until every writer of their pipe
/// is gone (a child process may still hold one), forwarding what comes.
fn restore(capture: Capture) {
    flush_std();
    for (i, tee) in capture.tees.into_iter().enumerate() {
        let Some(mut tee) = tee else { continue };
        let _ = match i {
            0 => nix::unistd::dup2_stdout(&tee.original),
            _ => nix::unistd::dup2_stderr(&tee.original),
        };
        drop(tee.marker_writer);
        // Detached: it ends at the pipe's end of file.
        drop(tee.thread.take());
    }
}

/// The tee thread: read, write to the terminal, split for the runs, confirm markers.
fn tee(stream: Stream, mut reader: std::io::PipeReader, mut out: std::fs::File) {
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes held back because they may be the start of a marker.
    let mut held: Vec<u8> = Vec::new();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        held.extend_from_slice(&buf[..n]);
        let mut text: &[u8] = &held;
        let mut confirmed = None;
        let mut out_text: Vec<u8> = Vec::new();
        // Markers are removed, and confirmed once what came before them is handed on.
        while let Some(at) = find(text, MARKER_HEAD) {
            if text.len() < at + MARKER_LEN {
                break;
            }
            out_text.extend_from_slice(&text[..at]);
            let mut number = [0u8; 8];
            number.copy_from_slice(&text[at + MARKER_HEAD.len()..at + MARKER_HEAD.len() + 8]);
            confirmed = Some(u64::from_be_bytes(number));
            text = &text[at + MARKER_LEN..];
        }
        // Keep back a tail that could be a marker's beginning.
        let keep = possible_marker_start(text);
        out_text.extend_from_slice(&text[..text.len() - keep]);
        let tail = text[text.len() - keep..].to_vec();
        held = tail;
        if !out_text.is_empty() {
            let _ = out.write_all(&out_text);
            let subs: Vec<Arc<Subscription>> = lock(&SUBSCRIBERS).clone();
            for sub in &subs {
                sub.take(stream, &out_text);
                sub.deliver(None, false);
                sub.bound();
            }
        }
        if let Some(n) = confirmed {
            let (m, cond) = &SYNCED;
            let mut synced = lock(m);
            synced.seen[stream.index()] = synced.seen[stream.index()].max(n);
            cond.notify_all();
        }
    }
    if !held.is_empty() {
        let _ = out.write_all(&held);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// How many bytes at the end of `text` could begin a marker (to be completed by the
/// next read): the longest tail that is the start of one.
fn possible_marker_start(text: &[u8]) -> usize {
    let from = text.len().saturating_sub(MARKER_LEN - 1);
    for pos in from..text.len() {
        let tail = &text[pos..];
        let n = tail.len().min(MARKER_HEAD.len());
        if tail[..n] == MARKER_HEAD[..n] {
            return tail.len();
        }
    }
    0
}

/// Hands pending lines over and flushes stale partial lines, while any run captures.
fn pump() {
    loop {
        std::thread::sleep(PUMP_EVERY);
        let subs: Vec<Arc<Subscription>> = lock(&SUBSCRIBERS).clone();
        if subs.is_empty() {
            let mut guard = lock(&CAPTURE);
            match guard.as_mut() {
                Some(capture) if !capture.subscriptions.is_empty() => continue,
                Some(capture) => {
                    capture.pump = false;
                    return;
                }
                None => return,
            }
        }
        for sub in subs {
            sub.deliver(Some(PARTIAL_DELAY), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(paths: [Option<&str>; 2]) -> Subscription {
        Subscription {
            run: Weak::new(),
            paths: paths.map(|p| p.map(str::to_owned)),
            state: Mutex::new(SubState::default()),
        }
    }

    fn lines(s: &Subscription) -> Vec<(usize, u64, String)> {
        lock(&s.state).pending.iter().map(|(i, step, t, _)| (*i, *step, t.clone())).collect()
    }

    #[test]
    fn splits_lines_as_0_4_0_does() {
        let s = sub([Some("ns/stdout"), Some("ns/stderr")]);
        s.take(Stream::Stdout, b"one\ntw");
        s.take(Stream::Stderr, b"oops\n");
        s.take(Stream::Stdout, b"o\n\nprogress 10%\rprogress 100%\n");
        s.take(Stream::Stdout, b"no newline yet");
        assert_eq!(
            lines(&s),
            [
                (0, 0, "one".to_owned()),
                (1, 1, "oops".to_owned()),
                (0, 2, "two".to_owned()),
                (0, 3, "progress 100%".to_owned()),
            ],
            "steps count both streams; empty lines are skipped; \\r starts a line again"
        );
        assert_eq!(lock(&s.state).partial[0].text, b"no newline yet");
        // A stream the run does not capture is ignored.
        let only_err = sub([None, Some("ns/stderr")]);
        only_err.take(Stream::Stdout, b"x\n");
        assert!(lines(&only_err).is_empty());
        // Invalid UTF-8 is kept, replaced.
        s.take(Stream::Stderr, b"\xff\n");
        assert_eq!(lines(&s).last().map(|l| l.2.clone()), Some("\u{fffd}".to_owned()));
    }

    #[test]
    fn lines_wait_for_the_run_rather_than_being_lost() {
        // No run to take them (it is gone): the lines wait, counted in bytes; nothing is
        // dropped while a run could still take them.
        let s = sub([Some("ns/stdout"), None]);
        let line = vec![b'x'; 1 << 20];
        for _ in 0..20 {
            s.take(Stream::Stdout, &line);
            s.take(Stream::Stdout, b"\n");
        }
        let st = lock(&s.state);
        assert_eq!(st.pending.len(), 20);
        assert_eq!(st.pending_bytes, 20 << 20);
        assert_eq!(st.dropped, 0);
    }

    #[test]
    fn markers_are_found_across_reads() {
        let mut marker = MARKER_HEAD.to_vec();
        marker.extend_from_slice(&7u64.to_be_bytes());
        marker.push(0);
        for cut in 1..marker.len() {
            let mut text = b"abc".to_vec();
            text.extend_from_slice(&marker[..cut]);
            assert_eq!(possible_marker_start(&text), cut, "cut at {cut}");
        }
        assert_eq!(possible_marker_start(b"abc\0def"), 0, "a NUL that starts no marker");
        assert_eq!(possible_marker_start(b"plain"), 0);
    }
}
