//! Private PostgreSQL clusters for tests: a real server made from the machine's own
//! binaries, on a free port, with a fresh empty database for every test that asks.
//!
//! ```no_run
//! use goodseed_testkit::postgres;
//!
//! let url = postgres::shared().database(); // postgresql://goodseed@127.0.0.1:PORT/t_0
//! # let _ = url;
//! ```
//!
//! [`Cluster::start`] runs `initdb` into `<workspace>/target/pg-test/<pid>-<n>/data`
//! (superuser `goodseed`, trusted without a password, UTF-8 with the C locale so that
//! text sorts the same on every machine, `--no-sync`) and starts it with `pg_ctl`,
//! listening on 127.0.0.1 only, on a port that was free a moment before (it binds port
//! 0, reads the port and lets it go; when another process takes it in between, the
//! start is tried again on another). `fsync` is off: the data only has to outlive a
//! restart of the server, not of the machine. `max_connections` is 300, so a test may
//! open many pools at once. The server's Unix socket goes to `socket/` beside `data/`,
//! never to the system's directory, where another server may hold the same port number;
//! when that path is too long for a socket (107 bytes) the server has no Unix socket,
//! since the tests connect over TCP anyway. [`Cluster::database`] makes a database of
//! its own for each caller, so tests sharing a cluster never see each other's tables.
//!
//! [`shared`] is one cluster for the whole test process, made on first use: most tests
//! want nothing more. A test that stops or restarts the server
//! ([`Cluster::stop`], [`Cluster::start_again`], [`Cluster::restart`]) starts a
//! cluster of its own instead, so it does not pull the server from under the others.
//!
//! # Where the server comes from
//!
//! `GOODSEED_PG_BIN` names the directory holding `initdb` and `pg_ctl`. Otherwise it is
//! `pg_config --bindir` when that has them, else the newest `/usr/lib/postgresql/*/bin`
//! (where Debian keeps them, off `PATH`), else the directory of the `initdb` on `PATH`.
//! When there is none the tests fail saying what to install (`apt-get install
//! postgresql`): they never pass without having run.
//!
//! # Running as root
//!
//! PostgreSQL refuses to run as root, and CI runs as root. Then every server command
//! runs through `runuser -u USER --` as the `postgres` system user when it exists, else
//! as `nobody`; the cluster's directory belongs to that user, and every directory above
//! it is made searchable by others (`o+x`, nothing more) so that the server can reach
//! its data.
//!
//! # Nothing outlives the test process
//!
//! Dropping a [`Cluster`] stops the server (`pg_ctl stop -m immediate`) and removes its
//! directory. A `static` is never dropped, and a test process may be killed, so each
//! cluster also has a watchdog: a small shell, in a process group of its own (so that
//! Ctrl-C on `cargo test` leaves it be), that reads a pipe whose only writing end the
//! test process holds. When the test process ends, however it ends, the kernel closes
//! that end; the watchdog then stops the server and removes the directory.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ::postgres::{Client, NoTls};

/// The superuser of every cluster, trusted without a password.
pub const USER: &str = "goodseed";

/// Enough for tests that open many connection pools at once.
const MAX_CONNECTIONS: u32 = 300;

/// How many free ports a new cluster tries before giving up.
const PORT_ATTEMPTS: u32 = 10;

/// How long [`Cluster::start_again`] waits for its port when something else holds it.
const PORT_PATIENCE: Duration = Duration::from_secs(10);

/// The longest Unix socket path the kernel takes (`sun_path` less its final NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The watchdog. `$1` is the cluster's directory, the rest runs `pg_ctl`. It waits for
/// the end of its standard input, which comes when the test process is gone.
const WATCHDOG: &str = r#"trap '' INT HUP
dir=$1
shift
while read -r _; do :; done
"$@" stop -m immediate -D "$dir/data" >/dev/null 2>&1
rm -rf "$dir"
"#;

/// One test process's cluster, made on first use and stopped when the process ends.
///
/// # Panics
/// When no cluster can be started (see [`Cluster::start`]).
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(Cluster::start)
}

/// A PostgreSQL server of its own, in a fresh directory under `target/pg-test/`,
/// stopped and removed on drop.
#[derive(Debug)]
pub struct Cluster {
    /// The directory holding `initdb`, `pg_ctl` and `postgres`.
    bin: &'static Path,
    /// Who runs the server, when this process is root.
    run_as: Option<&'static Account>,
    /// `target/pg-test/<pid>-<n>`: `data/`, `log` and `socket/`.
    dir: PathBuf,
    port: u16,
    /// Whether the server syncs its writes to disk ([`Cluster::start_durable`]).
    durable: bool,
    /// How many databases [`Cluster::database`] has made.
    databases: AtomicU32,
    /// The watchdog, whose standard input closes when this cluster is dropped or the
    /// process ends.
    watchdog: Option<Child>,
}

/// An unprivileged user to run the server as.
#[derive(Debug)]
struct Account {
    name: String,
    uid: u32,
    gid: u32,
}

/// Why a start failed.
enum StartFailure {
    /// Another process holds the port.
    PortTaken,
    /// Anything else, with what `pg_ctl` and the server's log say.
    Other(String),
}

impl Cluster {
    /// Makes a fresh cluster and starts it on a free port.
    ///
    /// # Panics
    /// When there is no PostgreSQL to run (saying what to install), or when `initdb` or
    /// the server fails (with their output and the end of the server's log).
    pub fn start() -> Cluster {
        Cluster::start_with(false)
    }

    /// [`Cluster::start`] for a server that syncs what it commits to disk, as a
    /// production database does (tests run with `fsync=off`): for benchmarks.
    ///
    /// # Panics
    /// As [`Cluster::start`].
    pub fn start_durable() -> Cluster {
        Cluster::start_with(true)
    }

    fn start_with(durable: bool) -> Cluster {
        let bin = server_bin();
        let run_as = run_as();
        let dir = make_dir(run_as).unwrap_or_else(|e| {
            panic!(
                "cannot make a directory for a PostgreSQL cluster in {}: {e}",
                clusters_dir().display()
            )
        });
        // From here on, a panic drops the cluster, which cleans up.
        let mut cluster = Cluster {
            bin,
            run_as,
            dir,
            port: 0,
            durable,
            databases: AtomicU32::new(0),
            watchdog: None,
        };
        cluster.watchdog = Some(cluster.spawn_watchdog());
        if let Err(why) = cluster.run(
            "initdb",
            &[
                "-D",
                "data",
                "-U",
                USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
        ) {
            panic!("cannot make a PostgreSQL cluster: {why}");
        }
        for _ in 0..PORT_ATTEMPTS {
            cluster.port = free_port();
            match cluster.try_start() {
                Ok(()) => return cluster,
                Err(StartFailure::PortTaken) => continue,
                Err(StartFailure::Other(why)) => panic!("PostgreSQL did not start: {why}"),
            }
        }
        panic!("PostgreSQL did not start: another process took each of {PORT_ATTEMPTS} free ports")
    }

    /// Makes a fresh empty database and returns its URL.
    ///
    /// # Panics
    /// When the server does not answer or refuses.
    pub fn database(&self) -> String {
        let name = format!("t_{}", self.databases.fetch_add(1, Ordering::Relaxed));
        let mut client = Client::connect(&self.url("postgres"), NoTls).unwrap_or_else(|e| {
            panic!("cannot connect to the test cluster on port {}: {e}", self.port)
        });
        if let Err(e) = client.batch_execute(&format!("CREATE DATABASE {name}")) {
            panic!("cannot create database {name} on port {}: {e}", self.port);
        }
        self.url(&name)
    }

    /// The URL of database `db`: `postgresql://goodseed@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// The TCP port the server listens on (on 127.0.0.1), the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server, letting it end its sessions and write its data (`pg_ctl stop
    /// -m fast`).
    ///
    /// # Panics
    /// When the server is not running or does not stop.
    pub fn stop(&self) {
        if let Err(why) = self.run("pg_ctl", &["stop", "-w", "-m", "fast", "-D", "data"]) {
            panic!("cannot stop the test cluster on port {}: {why}", self.port);
        }
    }

    /// Starts the stopped server again, on the same data and the same port. Waits a
    /// while when something else holds the port meanwhile.
    ///
    /// # Panics
    /// When the server does not start.
    pub fn start_again(&self) {
        let deadline = Instant::now() + PORT_PATIENCE;
        loop {
            match self.try_start() {
                Ok(()) => return,
                Err(StartFailure::PortTaken) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(StartFailure::PortTaken) => {
                    panic!("PostgreSQL did not start again: port {} stays taken", self.port)
                }
                Err(StartFailure::Other(why)) => panic!("PostgreSQL did not start again: {why}"),
            }
        }
    }

    /// Stops the server and starts it again ([`Cluster::stop`], then
    /// [`Cluster::start_again`]).
    ///
    /// # Panics
    /// As those do.
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    /// Starts the server on `self.port` and waits until it takes connections.
    fn try_start(&self) -> Result<(), StartFailure> {
        let log = self.dir.join("log");
        let logged_before = fs::metadata(&log).map_or(0, |m| m.len());
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync={} -c max_connections={}",
            self.port,
            shell_quote(&self.socket_dir()),
            if self.durable { "on" } else { "off" },
            MAX_CONNECTIONS
        );
        let why =
            match self.run("pg_ctl", &["start", "-w", "-D", "data", "-l", "log", "-o", &options]) {
                Ok(_) => return Ok(()),
                Err(why) => why,
            };
        let log = fs::read(&log).unwrap_or_default();
        let this_start = log.get(usize::try_from(logged_before).unwrap_or(0)..).unwrap_or(&[]);
        if String::from_utf8_lossy(this_start).contains("Address already in use") {
            return Err(StartFailure::PortTaken);
        }
        Err(StartFailure::Other(format!(
            "{why}\nthe end of the server's log:\n{}",
            tail(&String::from_utf8_lossy(&log), 40)
        )))
    }

    /// Where the server makes its Unix socket: `socket/` in the cluster's directory, or
    /// nowhere (an empty string) when that path would be too long for a socket.
    fn socket_dir(&self) -> String {
        let dir = self.dir.join("socket");
        let path = dir.to_string_lossy();
        if path.len() + "/.s.PGSQL.65535".len() > MAX_SOCKET_PATH {
            String::new()
        } else {
            path.into_owned()
        }
    }

    /// Runs one of the server's programs in the cluster's directory; its output, or
    /// what went wrong.
    fn run(&self, program: &str, args: &[&str]) -> Result<Output, String> {
        let mut cmd = self.server_command(program);
        cmd.args(args).stdin(Stdio::null());
        let shown = format!("`{program} {}`", args.join(" "));
        match cmd.output() {
            Ok(out) if out.status.success() => Ok(out),
            Ok(out) => Err(format!(
                "{shown} failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
            Err(e) => Err(format!(
                "{shown} could not start ({}): {e}",
                cmd.get_program().to_string_lossy()
            )),
        }
    }

    /// A command running `program` from the server's bin directory, as the user who
    /// runs the server, in the cluster's directory: `data` and `log` are then relative
    /// paths, which matters because `pg_ctl` hands them to the shell without escaping.
    fn server_command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        let mut cmd = match self.runner().split_first() {
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg(exe);
                cmd
            }
            None => Command::new(exe),
        };
        cmd.current_dir(&self.dir);
        cmd
    }

    /// The words before a server program: `runuser -u USER --` when this process is
    /// root, nothing otherwise.
    fn runner(&self) -> Vec<&str> {
        match self.run_as {
            Some(account) => vec!["runuser", "-u", &account.name, "--"],
            None => Vec::new(),
        }
    }

    /// Starts the watchdog that stops the server and removes the directory once this
    /// process has ended.
    fn spawn_watchdog(&self) -> Child {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("goodseed-pg-watchdog")
            .arg(&self.dir)
            .args(self.runner())
            .arg(self.bin.join("pg_ctl"))
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of the terminal's foreground group: Ctrl-C stops the tests, not it.
            .process_group(0);
        cmd.spawn().unwrap_or_else(|e| panic!("cannot start the PostgreSQL watchdog (sh): {e}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .server_command("pg_ctl")
            .args(["stop", "-w", "-m", "immediate", "-D", "data"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = fs::remove_dir_all(&self.dir);
        if let Some(mut watchdog) = self.watchdog.take() {
            // Its cue to finish, which finds nothing left to do.
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
    }
}

/// `<workspace>/target/pg-test`.
fn clusters_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap_or(manifest);
    workspace.join("target").join("pg-test")
}

/// Makes a new cluster directory, `target/pg-test/<pid>-<n>`, and its `socket/`, owned
/// by `run_as` when given, with every directory above searchable by it.
fn make_dir(run_as: Option<&Account>) -> std::io::Result<PathBuf> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let parent = clusters_dir();
    fs::create_dir_all(&parent)?;
    let dir = loop {
        let name = format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let dir = parent.join(name);
        // One left by an earlier process with this pid (or a process with this pid in
        // another container sharing the directory) is not ours to remove: skip it.
        match fs::create_dir(&dir) {
            Ok(()) => break dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    };
    let socket = dir.join("socket");
    fs::create_dir(&socket)?;
    let Some(account) = run_as else { return Ok(dir) };
    for path in [&dir, &socket] {
        std::os::unix::fs::chown(path, Some(account.uid), Some(account.gid))?;
    }
    for above in dir.ancestors().skip(1) {
        let mode = fs::metadata(above)?.permissions().mode() & 0o7777;
        if mode & 0o001 == 0 {
            fs::set_permissions(above, fs::Permissions::from_mode(mode | 0o001))?;
        }
    }
    Ok(dir)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("cannot find a free port on 127.0.0.1: {e}"))
}

/// The server's bin directory, found on first use.
///
/// # Panics
/// Saying what to install, when there is none.
fn server_bin() -> &'static Path {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BIN.get_or_init(find_server_bin) {
        Ok(bin) => bin,
        Err(why) => panic!("the PostgreSQL tests need a PostgreSQL server: {why}"),
    }
}

fn find_server_bin() -> Result<PathBuf, String> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(given) = std::env::var_os("GOODSEED_PG_BIN") {
        let dir = PathBuf::from(given);
        return if has_server(&dir) {
            Ok(dir)
        } else {
            Err(format!("GOODSEED_PG_BIN={} has no initdb and pg_ctl", dir.display()))
        };
    }
    let pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    if let Some(dir) = pg_config.filter(|dir| has_server(dir)) {
        return Ok(dir);
    }
    if let Some(dir) = newest_debian_bin(Path::new("/usr/lib/postgresql"), &has_server) {
        return Ok(dir);
    }
    // Through symbolic links, to the directory that has pg_ctl beside initdb.
    let on_path = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("initdb"))
        .find(|initdb| initdb.is_file())
        .and_then(|initdb| fs::canonicalize(initdb).ok())
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf));
    if let Some(dir) = on_path.filter(|dir| has_server(dir)) {
        return Ok(dir);
    }
    Err("found no initdb and pg_ctl (in GOODSEED_PG_BIN, `pg_config --bindir`, \
         /usr/lib/postgresql/*/bin or on PATH); install PostgreSQL's server, e.g. \
         `apt-get install postgresql`, or set GOODSEED_PG_BIN to its bin directory"
        .to_owned())
}

/// The newest `<root>/<version>/bin` that has the server.
fn newest_debian_bin(root: &Path, has_server: &dyn Fn(&Path) -> bool) -> Option<PathBuf> {
    let version = |name: &str| -> Option<Vec<u32>> {
        name.split('.').map(|part| part.parse().ok()).collect()
    };
    fs::read_dir(root)
        .ok()?
        .flatten()
        .filter_map(|entry| Some((version(entry.file_name().to_str()?)?, entry.path().join("bin"))))
        .filter(|(_, bin)| has_server(bin))
        .max_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, bin)| bin)
}

/// Who runs the server: nobody else when this process is not root.
///
/// # Panics
/// When this process is root and there is no one else to run the server as.
fn run_as() -> Option<&'static Account> {
    static RUN_AS: OnceLock<Result<Option<Account>, String>> = OnceLock::new();
    match RUN_AS.get_or_init(find_run_as) {
        Ok(account) => account.as_ref(),
        Err(why) => panic!("the PostgreSQL tests cannot run the server: {why}"),
    }
}

fn find_run_as() -> Result<Option<Account>, String> {
    if id(&["-u"]) != Some(0) {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let (Some(uid), Some(gid)) = (id(&["-u", name]), id(&["-g", name])) {
            return Ok(Some(Account { name: name.to_owned(), uid, gid }));
        }
    }
    Err("PostgreSQL refuses to run as root, and there is neither a `postgres` nor a \
         `nobody` user to run it as"
        .to_owned())
}

/// What `id ARGS` prints, as a number.
fn id(args: &[&str]) -> Option<u32> {
    let out = Command::new("id").args(args).output().ok().filter(|out| out.status.success())?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// `s` in single quotes, for `sh`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(url: &str) -> Client {
        Client::connect(url, NoTls).unwrap_or_else(|e| panic!("connect to {url}: {e}"))
    }

    /// Whether process `pid` runs (a zombie does not: PID 1 of a container may never
    /// reap the server).
    fn alive(pid: u32) -> bool {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
        stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z'))
    }

    fn postmaster_pid(dir: &Path) -> u32 {
        let pid_file = dir.join("data").join("postmaster.pid");
        let text = fs::read_to_string(&pid_file).expect("a running cluster has postmaster.pid");
        text.lines().next().and_then(|line| line.trim().parse().ok()).expect("a pid")
    }

    /// Waits up to `seconds` for `done`.
    fn eventually(seconds: u64, mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        done()
    }

    #[test]
    fn each_database_is_empty_and_separate() {
        let cluster = Cluster::start();
        let (a, b) = (cluster.database(), cluster.database());
        assert_ne!(a, b);
        connect(&a)
            .batch_execute("CREATE TABLE runs (id int); INSERT INTO runs VALUES (1)")
            .expect("create a table");
        for (url, tables) in [(&a, 1), (&b, 0)] {
            let mut client = connect(url);
            let row = client
                .query_one(
                    "SELECT current_database()::text, \
                     (SELECT count(*) FROM pg_tables WHERE schemaname = 'public'), \
                     current_setting('server_encoding'), current_setting('max_connections')",
                    &[],
                )
                .expect("query");
            assert!(url.ends_with(&format!("/{}", row.get::<_, String>(0))), "{url}");
            assert_eq!(row.get::<_, i64>(1), tables, "{url}");
            assert_eq!(row.get::<_, String>(2), "UTF8");
            assert!(row.get::<_, String>(3).parse::<u32>().expect("a number") >= 200);
        }
    }

    #[test]
    fn stop_and_start_again_keep_the_data_and_the_port() {
        let cluster = Cluster::start();
        let url = cluster.database();
        connect(&url)
            .batch_execute("CREATE TABLE t (v int); INSERT INTO t VALUES (42)")
            .expect("create a table");
        let port = cluster.port();
        cluster.stop();
        assert!(Client::connect(&url, NoTls).is_err(), "a stopped server answered");
        cluster.start_again();
        let read = || {
            connect(&url).query_one("SELECT v FROM t", &[]).expect("read it back").get::<_, i32>(0)
        };
        assert_eq!(read(), 42);
        cluster.restart();
        assert_eq!(read(), 42);
        assert_eq!(cluster.port(), port);
    }

    #[test]
    fn a_dropped_cluster_leaves_no_process_and_no_directory() {
        let cluster = Cluster::start();
        let url = cluster.database();
        let dir = cluster.dir.clone();
        let server = postmaster_pid(&dir);
        let watchdog = cluster.watchdog.as_ref().map(Child::id).expect("a watchdog");
        assert!(alive(server) && alive(watchdog));
        drop(cluster);
        assert!(!dir.exists(), "{} is left", dir.display());
        assert!(!alive(server), "the server {server} runs on");
        assert!(!alive(watchdog), "the watchdog {watchdog} runs on");
        assert!(Client::connect(&url, NoTls).is_err(), "a dropped server answered");
    }

    /// Run by the test below in a process of its own (with `GOODSEED_PG_HOLDER` set):
    /// makes the shared cluster, writes its directory and server pid to that file, then
    /// waits to be told to return (`<file>.end` appears) or to be killed.
    #[test]
    #[ignore = "a helper process of the_shared_cluster_ends_with_its_process"]
    fn holds_the_shared_cluster() {
        let Some(report) = std::env::var_os("GOODSEED_PG_HOLDER").map(PathBuf::from) else {
            return;
        };
        let cluster = shared();
        let partial = report.with_extension("partial");
        let line = format!("{}\n{}\n", cluster.dir.display(), postmaster_pid(&cluster.dir));
        fs::write(&partial, line).expect("write the report");
        fs::rename(&partial, &report).expect("rename the report");
        let end = report.with_extension("end");
        assert!(eventually(600, || end.exists()), "never told to end");
    }

    #[test]
    fn the_shared_cluster_ends_with_its_process() {
        for kill in [false, true] {
            let how = if kill { "killed" } else { "finished" };
            let tmp = tempfile::tempdir().expect("a temporary directory");
            let report = tmp.path().join("report");
            let output = tmp.path().join("output");
            let out = fs::File::create(&output).expect("an output file");
            let mut holder = Command::new(std::env::current_exe().expect("this test binary"))
                .args(["postgres::tests::holds_the_shared_cluster", "--exact", "--ignored"])
                .env("GOODSEED_PG_HOLDER", &report)
                .stdout(out.try_clone().expect("an output file"))
                .stderr(out)
                .spawn()
                .expect("run the holder");
            let gone = |holder: &mut Child| holder.try_wait().ok().flatten().is_some();
            if !eventually(120, || report.exists() || gone(&mut holder)) || !report.exists() {
                let _ = holder.kill();
                let said = fs::read_to_string(&output).unwrap_or_default();
                panic!("the holder reported nothing:\n{said}");
            }
            let text = fs::read_to_string(&report).expect("the report");
            let mut lines = text.lines();
            let dir = PathBuf::from(lines.next().expect("a directory"));
            let server: u32 = lines.next().and_then(|s| s.parse().ok()).expect("a pid");
            assert!(dir.exists() && alive(server));
            if kill {
                holder.kill().expect("kill the holder");
            } else {
                fs::write(report.with_extension("end"), "").expect("tell the holder to end");
            }
            let status = holder.wait().expect("the holder ends");
            assert_eq!(status.success(), !kill, "{how}: {status}");
            assert!(
                eventually(60, || !dir.exists() && !alive(server)),
                "{how}: {} or the server {server} outlived the test process",
                dir.display()
            );
        }
    }
}
