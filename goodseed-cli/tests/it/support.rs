//! The `goodseed` binary as the tests run it: none of the user's goodseed settings (data
//! directory, store, server, keys) reach it, and `HOME` leads nowhere.

use std::process::{Command, Stdio};

/// The variables of the user's environment that would point the binary elsewhere.
pub(crate) const SETTINGS: [&str; 5] =
    ["GOODSEED_HOME", "GOODSEED_STORE", "GOODSEED_API_URL", "GOODSEED_API_KEY", "GOODSEED_TOKEN"];

/// `goodseed`, with no input and none of [`SETTINGS`].
pub(crate) fn goodseed() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_goodseed"));
    for var in SETTINGS {
        cmd.env_remove(var);
    }
    cmd.env("HOME", "/nonexistent/goodseed-test-home").stdin(Stdio::null());
    cmd
}

/// Exit code, stdout and stderr.
pub(crate) fn outcome(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("run goodseed");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8");
    (out.status.code().expect("exited"), text(out.stdout), text(out.stderr))
}

/// `goodseed serve` with `args` (on port 0 unless they say), killed on drop; its address
/// read from the first line it prints.
pub(crate) struct Serve {
    child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
    pub(crate) port: u16,
}

impl Serve {
    pub(crate) fn start<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Serve {
        use std::io::BufRead as _;
        let mut child = goodseed()
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start goodseed serve");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("first line");
        let url = first
            .trim()
            .strip_prefix("Goodseed server running at ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        let port = url
            .strip_prefix("http://127.0.0.1:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("not a loopback address: {url}"));
        Serve { child, url, port }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
