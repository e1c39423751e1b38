//! Support for the fault-injection tests: a small filesystem that can be filled
//! ([`Tmpfs`], [`Ballast`]) and the figures each suite measures ([`report`]).
//!
//! A full disk is made for real where the machine allows mounting (root, as in CI): a
//! `tmpfs` of a few MiB, filled with ballast files until the kernel says `ENOSPC`, then
//! freed a piece at a time. Where it does not, [`Tmpfs::mount`] says why, and the tests
//! run their scenario on the test kit's failing store instead (and say so in their
//! figures).
//!
//! Figures go to `target/fault-injection/<suite>.json` (one file per suite, so test
//! processes running at once never write the same file) and, as one line, straight to
//! the process's stderr, past the test harness's capture, so `cargo test` shows them.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A `tmpfs` mounted on a fresh temporary directory, unmounted on drop.
#[derive(Debug)]
pub struct Tmpfs {
    dir: Option<tempfile::TempDir>,
}

impl Tmpfs {
    /// Mounts a `tmpfs` of `bytes` bytes, or says why it cannot (not root, no `mount`, a
    /// container that forbids it).
    pub fn mount(bytes: u64) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes},mode=0700"), "goodseed-test"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir: Some(dir) })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new("/nonexistent"), |d| d.path())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            // Lazily, in case a process that failed its test still has a file open.
            let _ = Command::new("umount").arg("-l").arg(dir.path()).status();
            drop(dir);
        }
    }
}

/// Files that fill a filesystem until it has no space left, removed a piece at a time.
#[derive(Debug)]
pub struct Ballast {
    files: Vec<PathBuf>,
    /// The size of every file but the last, which holds what was left.
    piece: usize,
}

impl Ballast {
    /// Writes files of `piece` bytes into `dir` until the filesystem is full (the last
    /// one is cut short where `ENOSPC` struck).
    ///
    /// # Panics
    /// On any other error.
    pub fn fill(dir: &Path, piece: usize) -> Ballast {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let chunk = vec![0x5a_u8; 4096];
        let mut files = Vec::new();
        'fill: loop {
            let path = dir.join(format!("ballast-{}", files.len()));
            let mut file = match File::create(&path) {
                Ok(f) => f,
                Err(e) if is_full(&e) => break,
                Err(e) => panic!("{}: {e}", path.display()),
            };
            files.push(path.clone());
            let mut written = 0;
            while written < piece {
                match file.write_all(&chunk) {
                    Ok(()) => written += chunk.len(),
                    Err(e) if is_full(&e) => break 'fill,
                    Err(e) => panic!("{}: {e}", path.display()),
                }
            }
        }
        Ballast { files, piece }
    }

    /// Removes enough files to free about `bytes` bytes (at least one file).
    pub fn free(&mut self, bytes: usize) {
        let mut freed = 0;
        while let Some(path) = self.files.pop() {
            let _ = std::fs::remove_file(&path);
            freed += self.piece;
            if freed >= bytes {
                break;
            }
        }
    }

    /// Removes every file.
    pub fn free_all(&mut self) {
        for path in self.files.drain(..) {
            let _ = std::fs::remove_file(&path);
        }
    }

    /// Bytes still held, about.
    pub fn bytes(&self) -> usize {
        self.files.len() * self.piece
    }
}

fn is_full(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}

/// One measured figure.
#[derive(Debug, Clone)]
pub enum Figure {
    /// A count or an amount.
    Number(f64),
    /// A note (what the scenario ran on, say).
    Text(String),
}

impl From<u64> for Figure {
    fn from(n: u64) -> Figure {
        Figure::Number(n as f64)
    }
}

impl From<usize> for Figure {
    fn from(n: usize) -> Figure {
        Figure::Number(n as f64)
    }
}

impl From<f64> for Figure {
    fn from(n: f64) -> Figure {
        Figure::Number(n)
    }
}

impl From<&str> for Figure {
    fn from(s: &str) -> Figure {
        Figure::Text(s.to_owned())
    }
}

impl From<String> for Figure {
    fn from(s: String) -> Figure {
        Figure::Text(s)
    }
}

/// `<workspace>/target/fault-injection`.
pub fn figures_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap_or(manifest);
    workspace.join("target").join("fault-injection")
}

/// Records a suite's figures in `target/fault-injection/<suite>.json` and prints them
/// on stderr as one line. Returns the file written.
///
/// # Panics
/// When the file cannot be written.
pub fn report(suite: &str, figures: &[(&str, Figure)]) -> PathBuf {
    let object: serde_json::Map<String, serde_json::Value> = figures
        .iter()
        .map(|(name, figure)| {
            let value = match figure {
                Figure::Number(n) => serde_json::Number::from_f64((n * 1000.0).round() / 1000.0)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number),
                Figure::Text(s) => serde_json::Value::String(s.clone()),
            };
            ((*name).to_owned(), value)
        })
        .collect();
    let text = serde_json::to_string_pretty(&object).expect("figures serialize");
    let dir = figures_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join(format!("{suite}.json"));
    std::fs::write(&path, format!("{text}\n"))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let line = serde_json::to_string(&object).expect("figures serialize");
    let _ = writeln!(std::io::stderr().lock(), "fault-injection {suite}: {line}");
    path
}
