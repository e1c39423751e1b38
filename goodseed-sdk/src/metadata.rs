//! Run metadata captured once, when a run is created: the Git state of the source code,
//! the host, process and thread, and the command line, as configs under the paths
//! goodseed 0.4.0 writes (`source_code/…`, `monitoring/<hash>/…`) plus our own
//! `sys/command_line` and `sys/working_directory`.
//!
//! Capture never fails a run: whatever is unavailable (no `git` binary, not a repository,
//! a command that fails or hangs, no `/proc`) is skipped silently.

use std::borrow::Cow;
use std::cell::Cell;
use std::env;
use std::ffi::OsStr;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{self, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use goodseed_core::{ConfigValue, FieldPath};

/// What to capture; each switchable off.
#[derive(Debug, Clone)]
pub(crate) struct Capture {
    /// Git metadata and diffs under `source_code/`.
    pub git: GitCapture,
    /// `<monitoring namespace>/hostname`, `/pid` and `/tid`.
    pub host: bool,
    /// `sys/command_line` and `sys/working_directory`.
    pub command_line: bool,
    /// The monitoring namespace to record under (`None`: [`monitoring_namespace`]).
    pub namespace: Option<String>,
}

impl Default for Capture {
    /// Everything on, Git from the current directory, as 0.4.0 does by default.
    fn default() -> Self {
        Capture { git: GitCapture::CurrentDir, host: true, command_line: true, namespace: None }
    }
}

/// Where to look for the Git repository whose state is recorded (0.4.0's `git_ref`).
#[derive(Debug, Clone)]
pub(crate) enum GitCapture {
    /// Record nothing (`git_ref=False` or `GitRef.DISABLED`).
    Off,
    /// The repository containing the process's working directory (the default).
    CurrentDir,
    /// The repository containing this path, a directory or a file in it
    /// (`GitRef(repository_path=…)`). A leading `~` is the home directory, as in 0.4.0.
    Repository(PathBuf),
}

/// The program run for Git commands, looked up on `PATH`.
const GIT_PROGRAM: &str = "git";

/// How long one Git command may run before it is killed and its result skipped. After a
/// timeout the remaining commands are skipped too, so a hung repository (a stale network
/// mount, say) delays run creation by one timeout, not one per command.
const GIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The most bytes of one Git command's output that are stored.
///
/// 0.4.0 stores diffs whole, however large; we keep the first 1 MiB and end the text with
/// a line saying it was truncated and how large the output was (see
/// [`decode_git_output`]). A deliberate difference: a multi-gigabyte diff of a checked-in
/// data file should not become a config value.
const MAX_GIT_OUTPUT_BYTES: usize = 1 << 20;

/// Collects the configs to write at creation. Never fails: anything unavailable is
/// skipped silently.
///
/// The keys, by switch:
///
/// - [`Capture::git`] (0.4.0's `_collect_git_configs`, same commands, same keys, each
///   run with the repository root as working directory and skipped if it fails or
///   outlives [`GIT_TIMEOUT`]):
///   - `source_code/git/repository_path` (str): `git rev-parse --show-toplevel`; when
///     this fails nothing else is recorded.
///   - `source_code/git/dirty` (bool): `git status --porcelain` printed anything.
///   - `source_code/diff` (str): `git diff HEAD`, stored even when empty, as 0.4.0 does.
///   - `source_code/git/commit_id`, `commit_message`, `commit_author`, `commit_date`
///     (str): `git log -1 --pretty=%H`, `%B`, `%an`, `%cI`.
///   - `source_code/git/current_branch` (str): `git rev-parse --abbrev-ref HEAD`.
///   - `source_code/git/remotes` (str): `git remote -v`.
///   - `source_code/diff_upstream_<upstream sha>` (str): `git diff @{u}`, only when the
///     branch has an upstream whose commit differs from `HEAD`.
///
///   Except for `diff`, `dirty` and the upstream diff, an empty output is not stored.
///   Outputs are decoded as 0.4.0 reads them (see [`decode_git_output`]).
/// - [`Capture::host`] (0.4.0's `MonitoringManager.start`), under
///   `ns = `[`monitoring_namespace`]`()`: `<ns>/hostname` (str, [`hostname`]),
///   `<ns>/pid` (int), `<ns>/tid` (int, see [`current_thread_id`]).
/// - [`Capture::command_line`] (ours, not in 0.4.0): `sys/command_line` (str, the
///   process's arguments joined with spaces, each quoted for a POSIX shell when needed)
///   and `sys/working_directory` (str).
///
pub(crate) fn collect(capture: &Capture) -> Vec<(FieldPath, ConfigValue)> {
    let mut configs = Configs::default();
    match &capture.git {
        GitCapture::Off => {}
        GitCapture::CurrentDir => {
            if let Ok(cwd) = env::current_dir() {
                collect_git(OsStr::new(GIT_PROGRAM), &cwd, &mut configs);
            }
        }
        GitCapture::Repository(path) => {
            collect_git(OsStr::new(GIT_PROGRAM), path, &mut configs);
        }
    }
    if capture.host {
        let ns = capture.namespace.clone().unwrap_or_else(monitoring_namespace);
        configs.push(&format!("{ns}/hostname"), ConfigValue::Str(hostname()));
        configs.push(&format!("{ns}/pid"), ConfigValue::Int(i64::from(process::id())));
        configs.push(&format!("{ns}/tid"), ConfigValue::Int(current_thread_id()));
    }
    if capture.command_line {
        configs.push("sys/command_line", ConfigValue::Str(command_line(env::args_os())));
        if let Ok(cwd) = env::current_dir() {
            let cwd = cwd.to_string_lossy().into_owned();
            configs.push("sys/working_directory", ConfigValue::Str(cwd));
        }
    }
    configs.0
}

/// `monitoring/<8 hex digits>`, the namespace 0.4.0 gives a run's monitoring data when
/// none is chosen: a hash of `hostname:pid:thread id`, so runs from different processes
/// or threads do not mix. 0.4.0 takes the first 8 hex digits of an MD5; we take the low
/// 32 bits of std's `DefaultHasher` (SipHash with fixed keys), stable within a process,
/// which is all the namespace needs.
pub(crate) fn monitoring_namespace() -> String {
    let key = format!("{}:{}:{}", hostname(), process::id(), current_thread_id());
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    format!("monitoring/{:08x}", hasher.finish() as u32)
}

/// The machine's host name, the same one the writer records in `run_meta` (and the
/// store compares to tell this host's runs from others').
pub(crate) fn hostname() -> String {
    goodseed_store::host_name()
}

/// A number for the calling thread, stable for its lifetime: the kernel's thread id
/// (what `gettid` returns and `ps -L` shows), read from the `/proc/thread-self` link,
/// else the number in Rust's `ThreadId` debug text (unique within the process).
///
/// 0.4.0 stores Python's `threading.get_ident()`, the `pthread_t` value; both identify
/// the thread, neither means anything outside the process.
fn current_thread_id() -> i64 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|link| link.file_name()?.to_str()?.parse().ok())
        .unwrap_or_else(|| {
            let text = format!("{:?}", thread::current().id());
            text.chars().filter(char::is_ascii_digit).collect::<String>().parse().unwrap_or(0)
        })
}

/// The configs collected so far; a path that does not parse is skipped.
#[derive(Debug, Default)]
struct Configs(Vec<(FieldPath, ConfigValue)>);

impl Configs {
    fn push(&mut self, path: &str, value: ConfigValue) {
        if let Ok(path) = FieldPath::parse(path) {
            self.0.push((path, value));
        }
    }
}

/// Records the state of the repository containing `start`, as 0.4.0's
/// `_collect_git_configs` does, running `program` for each Git command.
fn collect_git(program: &OsStr, start: &Path, configs: &mut Configs) {
    let Some(base) = resolve_start(start) else {
        return;
    };
    let git = GitRunner::new(program, GIT_TIMEOUT, MAX_GIT_OUTPUT_BYTES);
    let Some(root) = git.run(&base, &["rev-parse", "--show-toplevel"]) else {
        return;
    };
    let root_text = decode_git_output(&root);
    if root_text.is_empty() {
        return;
    }
    let root = path_from_output(&root);
    configs.push("source_code/git/repository_path", ConfigValue::Str(root_text));

    let text = |args: &[&str]| git.run(&root, args).map(|out| decode_git_output(&out));

    if let Some(status) = text(&["status", "--porcelain"]) {
        configs.push("source_code/git/dirty", ConfigValue::Bool(!status.trim().is_empty()));
    }
    // Stored even when empty, as 0.4.0 does.
    if let Some(diff) = text(&["diff", "HEAD"]) {
        configs.push("source_code/diff", ConfigValue::Str(diff));
    }
    let nonempty = [
        ("source_code/git/commit_id", &["log", "-1", "--pretty=%H"][..]),
        ("source_code/git/commit_message", &["log", "-1", "--pretty=%B"]),
        ("source_code/git/commit_author", &["log", "-1", "--pretty=%an"]),
        ("source_code/git/commit_date", &["log", "-1", "--pretty=%cI"]),
        ("source_code/git/current_branch", &["rev-parse", "--abbrev-ref", "HEAD"]),
        ("source_code/git/remotes", &["remote", "-v"]),
    ];
    for (key, args) in nonempty {
        if let Some(value) = text(args).filter(|v| !v.is_empty()) {
            configs.push(key, ConfigValue::Str(value));
        }
    }
    if let Some((upstream_sha, diff)) = upstream_diff(&text) {
        configs.push(&format!("source_code/diff_upstream_{upstream_sha}"), ConfigValue::Str(diff));
    }
}

/// The upstream's commit and `git diff @{u}` when the branch has an upstream whose commit
/// differs from `HEAD`, as 0.4.0 records it.
fn upstream_diff(text: &impl Fn(&[&str]) -> Option<String>) -> Option<(String, String)> {
    text(&["rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{u}"])
        .filter(|s| !s.is_empty())?;
    let head = text(&["rev-parse", "HEAD"]).filter(|s| !s.is_empty())?;
    let upstream = text(&["rev-parse", "@{u}"]).filter(|s| !s.is_empty())?;
    if head == upstream {
        return None;
    }
    let diff = text(&["diff", "@{u}"])?;
    Some((upstream, diff))
}

/// The directory to start looking for a repository from, as 0.4.0's
/// `_resolve_git_repo_root` computes it: `~` expanded, a file's parent, made absolute.
/// `None` when it does not exist.
fn resolve_start(start: &Path) -> Option<PathBuf> {
    let start = match start.strip_prefix("~") {
        Ok(rest) => {
            env::var_os("HOME").map_or_else(|| start.to_owned(), |h| Path::new(&h).join(rest))
        }
        Err(_) => start.to_owned(),
    };
    let base = if start.is_file() {
        match start.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        }
    } else {
        start
    };
    base.canonicalize().ok()
}

/// A path printed by Git, its trailing newlines removed, kept byte for byte where the
/// platform allows so that a non-UTF-8 repository path still works as a working directory.
fn path_from_output(output: &GitOutput) -> PathBuf {
    let mut bytes = output.kept.as_slice();
    while let [rest @ .., b'\n' | b'\r'] = bytes {
        bytes = rest;
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt as _;
        PathBuf::from(OsStr::from_bytes(bytes))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// What one command printed on stdout: its first bytes and how many it printed in all.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GitOutput {
    /// The first [`GitRunner::max_bytes`] bytes.
    kept: Vec<u8>,
    /// The size of the whole output.
    total: usize,
}

/// Turns a command's output into the text 0.4.0 stores: decoded (invalid UTF-8 replaced
/// by U+FFFD where 0.4.0 would fail and record no Git data at all), line ends translated
/// as Python's text mode does (`\r\n` and `\r` become `\n`), trailing newlines stripped
/// (`rstrip("\n")`). A truncated output ends with the line
/// `[goodseed: output truncated: kept the first <kept> of <total> bytes]`.
fn decode_git_output(output: &GitOutput) -> String {
    let truncated = output.total > output.kept.len();
    let kept = if truncated { without_split_char(&output.kept) } else { &output.kept[..] };
    let mut text = String::from_utf8_lossy(kept).replace("\r\n", "\n").replace('\r', "\n");
    text.truncate(text.trim_end_matches('\n').len());
    if truncated {
        text.push_str(&format!(
            "\n[goodseed: output truncated: kept the first {} of {} bytes]",
            kept.len(),
            output.total
        ));
    }
    text
}

/// `bytes` without a UTF-8 sequence cut short at its end, so truncation does not leave
/// half a character.
fn without_split_char(bytes: &[u8]) -> &[u8] {
    let tail_start = bytes.len().saturating_sub(3);
    for i in (tail_start..bytes.len()).rev() {
        let b = bytes[i];
        if b & 0xC0 == 0x80 {
            continue; // A continuation byte: keep looking for the lead byte.
        }
        let needed = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if bytes.len() - i < needed { &bytes[..i] } else { bytes };
    }
    bytes
}

/// Runs Git commands: stdin closed, stderr discarded, stdout read (up to a cap) on a
/// thread of its own, and the process killed if it outlives the timeout. Once one command
/// has timed out, the runner runs no more.
#[derive(Debug)]
struct GitRunner<'a> {
    /// The program to run, `git` in production.
    program: &'a OsStr,
    /// How long one command may take, output included.
    timeout: Duration,
    /// The most bytes of output kept.
    max_bytes: usize,
    /// Whether a command has timed out.
    timed_out: Cell<bool>,
}

impl<'a> GitRunner<'a> {
    /// A runner that has not timed out yet.
    fn new(program: &'a OsStr, timeout: Duration, max_bytes: usize) -> Self {
        GitRunner { program, timeout, max_bytes, timed_out: Cell::new(false) }
    }

    /// Runs `program args` in `cwd`; `None` if it cannot start, fails, or times out, and
    /// without running anything once a command has timed out.
    fn run(&self, cwd: &Path, args: &[&str]) -> Option<GitOutput> {
        if self.timed_out.get() {
            return None;
        }
        let deadline = Instant::now() + self.timeout;
        let mut child = Command::new(self.program)
            .args(args)
            .current_dir(cwd)
            // Keep `git status` from taking the index lock, so capture never makes a
            // concurrent Git command in the user's shell fail.
            .env("GIT_OPTIONAL_LOCKS", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let give_up = |child: &mut process::Child| {
            if Instant::now() >= deadline {
                self.timed_out.set(true);
            }
            let _ = child.kill();
            let _ = child.wait();
            None
        };
        let Some(mut stdout) = child.stdout.take() else {
            return give_up(&mut child);
        };
        let (sender, receiver) = mpsc::channel();
        let max_bytes = self.max_bytes;
        let reader =
            thread::Builder::new().name("goodseed-git-output".to_owned()).spawn(move || {
                let _ = sender.send(read_capped(&mut stdout, max_bytes));
            });
        if reader.is_err() {
            return give_up(&mut child);
        }
        // The output ends when the command closes its stdout, normally as it exits. A
        // command that hangs, or leaves a child holding the pipe, runs into the deadline;
        // the reader thread then ends by itself once the pipe closes.
        let output = match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(Ok(output)) => output,
            Ok(Err(_)) | Err(_) => return give_up(&mut child),
        };
        let mut pause = Duration::from_millis(1);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.success().then_some(output),
                Ok(None) if Instant::now() < deadline => {
                    thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Ok(None) | Err(_) => return give_up(&mut child),
            }
        }
    }
}

/// Reads `source` to its end, keeping the first `max_bytes` bytes and counting the rest.
fn read_capped(source: &mut impl Read, max_bytes: usize) -> io::Result<GitOutput> {
    let mut kept = Vec::new();
    let mut total = 0;
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let room = max_bytes.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
        total += n;
    }
    Ok(GitOutput { kept, total })
}

/// The arguments joined with spaces, each quoted for a POSIX shell when it holds anything
/// but letters, digits and `-_./=:,+@%^`, so the line can be pasted back into a shell.
/// Arguments that are not UTF-8 are decoded lossily.
fn command_line<I>(args: I) -> String
where
    I: IntoIterator,
    I::Item: AsRef<OsStr>,
{
    args.into_iter()
        .map(|arg| shell_quote(&arg.as_ref().to_string_lossy()).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One argument as a POSIX shell reads it back: as is when it is plain, else in single
/// quotes with each `'` written `'\''`.
fn shell_quote(arg: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_alphanumeric() || "-_./=:,+@%^".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        Cow::Borrowed(arg)
    } else {
        Cow::Owned(format!("'{}'", arg.replace('\'', r"'\''")))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs;

    use super::*;

    /// Runs real `git` in `dir` for test setup, isolated from the user's and the system's
    /// Git configuration, and returns its trimmed stdout.
    fn git(dir: &Path, args: &[&str]) -> String {
        let output = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null())
            .output()
            .expect("the tests need a git binary");
        assert!(output.status.success(), "git {args:?} failed: {output:?}");
        String::from_utf8(output.stdout).expect("git printed UTF-8").trim_end().to_owned()
    }

    /// A repository with one commit on `main` by "Ada Lovelace".
    fn repo_with_commit() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path();
        git(path, &["init", "-q", "-b", "main"]);
        git(path, &["config", "user.name", "Ada Lovelace"]);
        git(path, &["config", "user.email", "ada@example.com"]);
        git(path, &["config", "commit.gpgsign", "false"]);
        fs::write(path.join("train.py"), "lr = 0.1\n").expect("write file");
        git(path, &["add", "train.py"]);
        git(path, &["commit", "-q", "-m", "First commit\n\nWith a body."]);
        dir
    }

    fn capture(git: GitCapture) -> Capture {
        Capture { git, host: false, command_line: false, namespace: None }
    }

    fn collect_map(capture: &Capture) -> BTreeMap<String, ConfigValue> {
        collect(capture).into_iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect()
    }

    fn str_value<'a>(configs: &'a BTreeMap<String, ConfigValue>, key: &str) -> &'a str {
        match configs.get(key) {
            Some(ConfigValue::Str(s)) => s,
            other => panic!("{key}: expected a str, got {other:?} in {configs:#?}"),
        }
    }

    fn source_code_keys(configs: &BTreeMap<String, ConfigValue>) -> Vec<&String> {
        configs.keys().filter(|k| k.starts_with("source_code/")).collect()
    }

    #[test]
    fn dirty_repository_is_recorded_as_git_reports_it() {
        let repo = repo_with_commit();
        fs::write(repo.path().join("train.py"), "lr = 0.2\n").expect("write file");
        let configs = collect_map(&capture(GitCapture::Repository(repo.path().to_owned())));

        let root = repo.path().canonicalize().expect("canonical path");
        assert_eq!(
            str_value(&configs, "source_code/git/repository_path"),
            root.to_str().expect("utf-8")
        );
        assert_eq!(configs.get("source_code/git/dirty"), Some(&ConfigValue::Bool(true)));
        let diff = str_value(&configs, "source_code/diff");
        assert!(diff.contains("-lr = 0.1\n+lr = 0.2"), "{diff}");
        assert!(!diff.ends_with('\n'), "trailing newlines are stripped");
        assert_eq!(
            str_value(&configs, "source_code/git/commit_id"),
            git(repo.path(), &["rev-parse", "HEAD"])
        );
        assert_eq!(
            str_value(&configs, "source_code/git/commit_message"),
            "First commit\n\nWith a body."
        );
        assert_eq!(str_value(&configs, "source_code/git/commit_author"), "Ada Lovelace");
        assert_eq!(
            str_value(&configs, "source_code/git/commit_date"),
            git(repo.path(), &["log", "-1", "--pretty=%cI"])
        );
        assert_eq!(str_value(&configs, "source_code/git/current_branch"), "main");
        // No remote and no upstream: 0.4.0 stores neither key.
        assert!(!configs.contains_key("source_code/git/remotes"));
        assert!(!configs.keys().any(|k| k.starts_with("source_code/diff_upstream_")));
    }

    #[test]
    fn clean_repository_stores_an_empty_diff_as_0_4_0_does() {
        let repo = repo_with_commit();
        let configs = collect_map(&capture(GitCapture::Repository(repo.path().to_owned())));
        assert_eq!(configs.get("source_code/git/dirty"), Some(&ConfigValue::Bool(false)));
        assert_eq!(configs.get("source_code/diff"), Some(&ConfigValue::Str(String::new())));
    }

    #[test]
    fn a_file_or_subdirectory_finds_the_repository_root() {
        let repo = repo_with_commit();
        let sub = repo.path().join("models");
        fs::create_dir(&sub).expect("create dir");
        fs::write(sub.join("net.py"), "").expect("write file");
        let root = repo.path().canonicalize().expect("canonical path");
        for start in [sub.clone(), sub.join("net.py")] {
            let configs = collect_map(&capture(GitCapture::Repository(start)));
            assert_eq!(
                str_value(&configs, "source_code/git/repository_path"),
                root.to_str().expect("utf-8")
            );
        }
    }

    #[test]
    fn remotes_and_upstream_diff_are_recorded() {
        let repo = repo_with_commit();
        let path = repo.path();
        git(path, &["remote", "add", "origin", "https://example.invalid/team/model.git"]);
        git(path, &["branch", "base"]);
        git(path, &["branch", "--set-upstream-to=base"]);
        let upstream = git(path, &["rev-parse", "base"]);

        // Level with the upstream: no upstream diff.
        let configs = collect_map(&capture(GitCapture::Repository(path.to_owned())));
        assert!(
            str_value(&configs, "source_code/git/remotes")
                .contains("origin\thttps://example.invalid/team/model.git (fetch)")
        );
        assert!(!configs.keys().any(|k| k.starts_with("source_code/diff_upstream_")));

        // One commit ahead.
        fs::write(path.join("train.py"), "lr = 0.3\n").expect("write file");
        git(path, &["commit", "-q", "-am", "Raise lr"]);
        let configs = collect_map(&capture(GitCapture::Repository(path.to_owned())));
        let diff = str_value(&configs, &format!("source_code/diff_upstream_{upstream}"));
        assert!(diff.contains("+lr = 0.3"), "{diff}");
    }

    #[test]
    fn no_git_configs_when_off_outside_a_repository_or_for_a_missing_path() {
        let repo = repo_with_commit();
        let plain = tempfile::tempdir().expect("temp dir");
        for git_capture in [
            GitCapture::Off,
            GitCapture::Repository(plain.path().to_owned()),
            GitCapture::Repository(plain.path().join("does-not-exist")),
        ] {
            let configs = collect_map(&capture(git_capture.clone()));
            assert!(source_code_keys(&configs).is_empty(), "{git_capture:?}: {configs:#?}");
        }
        // Sanity check that the same capture does find a repository.
        let configs = collect_map(&capture(GitCapture::Repository(repo.path().to_owned())));
        assert!(!source_code_keys(&configs).is_empty());
    }

    #[test]
    fn no_git_configs_without_a_git_binary() {
        let repo = repo_with_commit();
        let missing = repo.path().join("no-such-git");
        let mut configs = Configs::default();
        collect_git(missing.as_os_str(), repo.path(), &mut configs);
        assert_eq!(configs.0, []);
    }

    #[test]
    fn current_dir_agrees_with_git() {
        let expected = Command::new("git")
            .args(["rev-parse", "--show-toplevel"])
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim_end_matches('\n').to_owned());
        let configs = collect_map(&capture(GitCapture::CurrentDir));
        let found = configs.get("source_code/git/repository_path").cloned();
        assert_eq!(found, expected.map(ConfigValue::Str));
    }

    #[cfg(unix)]
    #[test]
    fn a_hanging_command_is_killed_at_the_timeout() {
        let cwd = env::temp_dir();
        let runner = || GitRunner::new(OsStr::new("sh"), Duration::from_millis(200), 1000);
        let ok = runner().run(&cwd, &["-c", "echo hi"]).expect("a quick command succeeds");
        assert_eq!(ok, GitOutput { kept: b"hi\n".to_vec(), total: 3 });
        assert_eq!(runner().run(&cwd, &["-c", "exit 3"]), None);
        // A command that hangs, and one that exits but leaves a child holding its stdout.
        for script in ["sleep 5", "sleep 5 & echo started"] {
            let runner = runner();
            let started = Instant::now();
            assert_eq!(runner.run(&cwd, &["-c", script]), None, "{script}");
            assert!(started.elapsed() < Duration::from_secs(4), "{script}");
            // Nothing more runs after a timeout.
            assert_eq!(runner.run(&cwd, &["-c", "echo hi"]), None, "{script}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn long_output_is_capped_and_counted() {
        let runner = GitRunner::new(OsStr::new("sh"), GIT_TIMEOUT, 1000);
        let output = runner
            .run(
                &env::temp_dir(),
                &["-c", "i=0; while [ $i -lt 500 ]; do echo 123456789; i=$((i+1)); done"],
            )
            .expect("the command succeeds");
        assert_eq!((output.kept.len(), output.total), (1000, 5000));
        let text = decode_git_output(&output);
        assert!(text.starts_with("123456789\n123456789\n"));
        assert!(
            text.ends_with("\n[goodseed: output truncated: kept the first 1000 of 5000 bytes]"),
            "{text}"
        );
    }

    #[test]
    fn git_output_is_decoded_as_0_4_0_reads_it() {
        fn check(kept: &[u8], total: usize, expect: &str) {
            let output = GitOutput { kept: kept.to_vec(), total };
            assert_eq!(decode_git_output(&output), expect, "{kept:?}");
        }
        check(b"", 0, "");
        check(b"abc\n\n", 5, "abc");
        check(b"\n abc \n", 7, "\n abc ");
        check(b"a\r\nb\rc\r\n", 8, "a\nb\nc");
        check(b"caf\xc3\xa9 \xff", 7, "caf\u{e9} \u{fffd}");
        check(b"ab\n", 10, "ab\n[goodseed: output truncated: kept the first 3 of 10 bytes]");
        // A character cut in two by the cap is dropped whole.
        check(b"x\xe2\x82", 10, "x\n[goodseed: output truncated: kept the first 1 of 10 bytes]");
        check(
            b"x\xe2\x82\xac",
            10,
            "x\u{20ac}\n[goodseed: output truncated: kept the first 4 of 10 bytes]",
        );
    }

    #[test]
    fn host_configs_live_under_the_monitoring_namespace() {
        let configs = collect_map(&Capture {
            git: GitCapture::Off,
            host: true,
            command_line: false,
            namespace: None,
        });
        let ns = monitoring_namespace();
        let hash = ns.strip_prefix("monitoring/").expect("monitoring/ prefix");
        assert!(hash.len() == 8 && hash.chars().all(|c| c.is_ascii_hexdigit()), "{ns}");
        assert_eq!(configs.get(&format!("{ns}/hostname")), Some(&ConfigValue::Str(hostname())));
        assert_eq!(
            configs.get(&format!("{ns}/pid")),
            Some(&ConfigValue::Int(i64::from(process::id())))
        );
        assert_eq!(configs.get(&format!("{ns}/tid")), Some(&ConfigValue::Int(current_thread_id())));
        assert_eq!(configs.len(), 3, "{configs:#?}");
        assert!(!hostname().is_empty());
    }

    #[test]
    fn monitoring_namespace_is_stable_on_a_thread_and_differs_across_threads() {
        assert_eq!(monitoring_namespace(), monitoring_namespace());
        let here = (monitoring_namespace(), current_thread_id());
        let there = thread::spawn(|| (monitoring_namespace(), current_thread_id()))
            .join()
            .expect("thread ran");
        assert_ne!(here.1, there.1);
        assert_ne!(here.0, there.0);
    }

    #[test]
    fn command_line_and_working_directory_are_recorded() {
        let configs = collect_map(&Capture {
            git: GitCapture::Off,
            host: false,
            command_line: true,
            namespace: None,
        });
        assert_eq!(
            configs.get("sys/command_line"),
            Some(&ConfigValue::Str(command_line(env::args_os())))
        );
        let cwd = env::current_dir().expect("cwd").to_string_lossy().into_owned();
        assert_eq!(configs.get("sys/working_directory"), Some(&ConfigValue::Str(cwd)));
        assert_eq!(configs.len(), 2, "{configs:#?}");
    }

    #[test]
    fn everything_off_collects_nothing() {
        let configs = collect(&capture(GitCapture::Off));
        assert_eq!(configs, []);
    }

    #[test]
    fn arguments_are_quoted_for_a_shell_when_needed() {
        fn check(args: &[&str], expect: &str) {
            assert_eq!(command_line(args), expect, "{args:?}");
        }
        check(&["python", "train.py", "--lr=3e-4"], "python train.py --lr=3e-4");
        check(&["python", "-c", "print('hi there')"], r"python -c 'print('\''hi there'\'')'");
        check(&["run", "two words", ""], "run 'two words' ''");
        check(&["say", "\"quoted\"", "$HOME", "a;b"], r#"say '"quoted"' '$HOME' 'a;b'"#);
        check(&["données/é.py", "user@host:path", "50%"], "données/é.py user@host:path 50%");
    }
}
