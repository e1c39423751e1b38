//! Trainers on other hosts: network namespaces made for the test (`ip netns`, as root),
//! one for `goodseed serve` and one per trainer host, each joined to the server by a
//! veth link. Our SDK in remote mode on one host and goodseed 0.4.0 in cloud mode on the
//! other log into the one server at once; the first host's link is cut in the middle
//! of its run and restored. Nothing acknowledged is lost and nothing is doubled.
//!
//! It needs root and iproute2 (`.ci/run` runs as root and installs it). Set
//! `GOODSEED_SKIP_NETNS=1` to skip it on a machine where that cannot be had; otherwise a
//! machine without them fails the test, saying so.

use std::ffi::OsStr;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use goodseed_core::{ProjectName, RunId};
use goodseed_sdk::Run;
use goodseed_sdk::remote::Remote;
use goodseed_store::{StoreLocation, open_store};

const STEPS: u32 = 4000;
const METRICS: u32 = 10;
const TOKEN: &str = "hosts-test-token-0123456789";

/// The trainer host's side: run as this test binary again, inside the host's namespace
/// (`ip netns exec`), when `GOODSEED_HOSTS_TRAINER` names its signal directory.
#[test]
fn trainer_on_another_host() {
    let Some(signals) = std::env::var_os("GOODSEED_HOSTS_TRAINER").map(PathBuf::from) else {
        return;
    };
    let wait = |name: &str| {
        while !signals.join(name).exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let url = std::env::var("GOODSEED_HOSTS_URL").expect("url");
    let run = Run::builder()
        .home(signals.join("home"))
        .project("team/hosts")
        .run_id("ours")
        .monitoring(false)
        .capture_git(false)
        .capture_host(false)
        .capture_command_line(false)
        .upload_timeout(Duration::from_secs(120))
        .remote(Remote::new(url, TOKEN).expect("remote"))
        .create()
        .expect("create");
    let log = |from: u32, to: u32| {
        for step in from..to {
            let values: Vec<(String, f64)> =
                (0..METRICS).map(|m| (format!("m{m}"), f64::from(step * 100 + m))).collect();
            run.log_metrics(step, values.iter().map(|(k, v)| (k.as_str(), *v))).expect("log");
        }
        run.flush().expect("flush");
    };
    log(0, STEPS / 2);
    std::fs::write(signals.join("half"), b"").expect("signal");
    wait("go");
    log(STEPS / 2, STEPS);
    std::fs::write(signals.join("logged"), b"").expect("signal");
    wait("end");
    run.finish().expect("finish");
    std::fs::write(signals.join("finished"), b"").expect("signal");
}

/// Runs `ip` with these arguments, panicking with its error.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The namespaces of one test, removed when it ends.
struct Hosts {
    names: Vec<String>,
}

impl Hosts {
    /// `srv`, `a` and `b`, with links srv<->a (10.77.1.0/24) and srv<->b (10.77.2.0/24).
    fn make() -> Hosts {
        let tag = std::process::id() % 100_000;
        let names: Vec<String> = ["srv", "a", "b"].iter().map(|n| format!("gs{tag}{n}")).collect();
        let hosts = Hosts { names };
        let (srv, a, b) = (&hosts.names[0], &hosts.names[1], &hosts.names[2]);
        for n in &hosts.names {
            ip(&["netns", "add", n]);
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        for (host, net, inside, outside) in [(a, 1, "va", "sa"), (b, 2, "vb", "sb")] {
            let inside = format!("{inside}{tag}");
            let outside = format!("{outside}{tag}");
            ip(&["link", "add", &inside, "type", "veth", "peer", "name", &outside]);
            ip(&["link", "set", &inside, "netns", host]);
            ip(&["link", "set", &outside, "netns", srv]);
            ip(&["-n", srv, "addr", "add", &format!("10.77.{net}.1/24"), "dev", &outside]);
            ip(&["-n", host, "addr", "add", &format!("10.77.{net}.2/24"), "dev", &inside]);
            ip(&["-n", srv, "link", "set", &outside, "up"]);
            ip(&["-n", host, "link", "set", &inside, "up"]);
        }
        hosts
    }

    fn exec(&self, host: usize, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.names[host]]).arg(program);
        cmd
    }

    /// Takes host `a`'s link down or up, from its side.
    fn link_a(&self, up: bool) {
        let tag = std::process::id() % 100_000;
        ip(&[
            "-n",
            &self.names[1],
            "link",
            "set",
            &format!("va{tag}"),
            if up { "up" } else { "down" },
        ]);
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

/// A child killed when the test ends early.
struct Killed(Option<Child>);

impl Killed {
    /// Waits for it to end on its own.
    fn output(mut self) -> std::process::Output {
        self.0.take().expect("a child").wait_with_output().expect("it ends")
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn netns_usable() -> Result<(), String> {
    let out =
        Command::new("ip").args(["netns", "list"]).output().map_err(|e| format!("ip: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let uid = Command::new("id").arg("-u").output().map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("the test makes network namespaces, which needs root".to_owned());
    }
    Ok(())
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Points of every metric the server holds for a run (0 before it exists).
fn on_server(dir: &Path, run: &str, metric: impl Fn(u32) -> String) -> u64 {
    let store = open_store(&StoreLocation::Projects(dir.to_owned()));
    let (p, r) = (ProjectName::parse("team/hosts").expect("p"), RunId::parse(run).expect("r"));
    let Ok(reader) = store.open_run(&p, &r) else { return 0 };
    (0..METRICS).map(|m| reader.metric_count(&metric(m)).unwrap_or(0)).sum()
}

#[test]
fn trainers_on_two_hosts_log_into_one_server_through_a_cut_link() {
    if std::env::var_os("GOODSEED_HOSTS_TRAINER").is_some() {
        return;
    }
    if std::env::var("GOODSEED_SKIP_NETNS").is_ok_and(|v| v == "1") {
        return;
    }
    if let Err(why) = netns_usable() {
        panic!(
            "this test needs `ip netns` as root ({why}); run it as root with iproute2, or set \
             GOODSEED_SKIP_NETNS=1 to skip it"
        );
    }
    let hosts = Hosts::make();
    let server_dir = tempfile::tempdir().expect("server dir");
    let mut server = hosts
        .exec(0, env!("CARGO_BIN_EXE_goodseed"))
        .args(["serve", "--host", "0.0.0.0", "--port", "8765", "--token", TOKEN, "--dir"])
        .arg(server_dir.path())
        .env_remove("GOODSEED_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server");
    let mut first = String::new();
    std::io::BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("line");
    assert!(first.starts_with("Goodseed server running at"), "{first}");
    let _server = Killed(Some(server));

    // Host a: our SDK in remote mode (this binary again, inside the namespace).
    let signals = tempfile::tempdir().expect("signals");
    let trainer = hosts
        .exec(1, std::env::current_exe().expect("this test binary"))
        .args(["--exact", "hosts::trainer_on_another_host", "--nocapture", "--test-threads", "1"])
        .env("GOODSEED_HOSTS_TRAINER", signals.path())
        .env("GOODSEED_HOSTS_URL", "http://10.77.1.1:8765")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("trainer a");
    let trainer = Killed(Some(trainer));
    // Host b: goodseed 0.4.0 in cloud mode, at the same time.
    let python_home = tempfile::tempdir().expect("home");
    let python = hosts
        .exec(2, goodseed_testkit::python::python())
        .arg(goodseed_testkit::python::scripts_dir().join("cloud_client.py"))
        .args([
            OsStr::new("train"),
            python_home.path().as_os_str(),
            OsStr::new("team/hosts"),
            OsStr::new("theirs"),
        ])
        .env("GOODSEED_API_URL", "http://10.77.2.1:8765")
        .env("GOODSEED_API_KEY", TOKEN)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("GOODSEED_HOME")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("trainer b");
    let python = Killed(Some(python));

    let ours = |m: u32| format!("m{m}");
    let half = u64::from(STEPS / 2 * METRICS);
    wait_until("the first half on the server", Duration::from_secs(120), || {
        on_server(server_dir.path(), "ours", ours) >= half
    });
    // Cut host a off; it goes on logging, its uploads fail.
    hosts.link_a(false);
    std::fs::write(signals.path().join("go"), b"").expect("signal");
    wait_until("the second half logged", Duration::from_secs(60), || {
        signals.path().join("logged").exists()
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(on_server(server_dir.path(), "ours", ours), half, "nothing crossed the cut link");
    // Back: the rest arrives, once.
    hosts.link_a(true);
    std::fs::write(signals.path().join("end"), b"").expect("signal");
    let out = trainer.output();
    assert!(out.status.success(), "trainer a: {}", String::from_utf8_lossy(&out.stderr));
    let total = u64::from(STEPS * METRICS);
    assert_eq!(on_server(server_dir.path(), "ours", ours), total, "every point once");
    let store = open_store(&StoreLocation::Projects(server_dir.path().to_owned()));
    let p = ProjectName::parse("team/hosts").expect("p");
    let reader = store.open_run(&p, &RunId::parse("ours").expect("r")).expect("run");
    let mut checked = 0;
    reader
        .visit_metrics(Some("m7"), &mut |_, point| {
            assert_eq!(point.value, point.step * 100.0 + 7.0, "the value logged at its step");
            checked += 1;
            true
        })
        .expect("visit");
    assert_eq!(checked, u64::from(STEPS));
    let py = python.output();
    assert!(py.status.success());
    let answer: serde_json::Value = serde_json::from_slice(&py.stdout).expect("JSON");
    assert_eq!(answer["pending"], 0, "{answer}");
    assert_eq!(
        on_server(server_dir.path(), "theirs", |m| if m == 0 {
            "train/loss".into()
        } else {
            "-".into()
        }),
        3000
    );
    for run in ["ours", "theirs"] {
        let s = store.run_summary(&p, &RunId::parse(run).expect("r")).expect("summary");
        assert_eq!(s.status.as_str(), "finished", "{run}");
    }
}
