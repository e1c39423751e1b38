//! Hostile run files read through the store: a real run file (closed, or being written:
//! its file and its WAL) with bytes overwritten and maybe cut short, or any bytes at
//! all, listed, opened, read in every way and integrity-checked. Nothing may panic or
//! hang, and reading a closed run never changes its file.

#![no_main]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use goodseed_core::{ProjectName, RunId};
use goodseed_fuzz::{Seeds, read_store};
use goodseed_store::SqliteStore;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Base {
    Closed,
    Live,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Patch {
    /// In the WAL rather than the file (for a live run).
    wal: bool,
    at: u32,
    bytes: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    base: Base,
    patches: Vec<Patch>,
    cut: Option<u32>,
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(Seeds::make)
}

/// Where the files go: memory (`/dev/shm`) where there is one.
fn scratch() -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() }
}

fn patch(file: &mut [u8], at: u32, bytes: &[u8]) {
    if file.is_empty() {
        return;
    }
    let start = at as usize % file.len();
    for (slot, b) in file[start..].iter_mut().zip(bytes) {
        *slot = *b;
    }
}

fuzz_target!(|input: Input| {
    let seeds = seeds();
    let (mut file, mut wal) = match input.base {
        Base::Closed => (seeds.closed.clone(), None),
        Base::Live => (seeds.live.clone(), Some(seeds.live_wal.clone())),
        Base::Raw(bytes) => (bytes, None),
    };
    for p in &input.patches {
        match (&mut wal, p.wal) {
            (Some(w), true) => patch(w, p.at, &p.bytes),
            _ => patch(&mut file, p.at, &p.bytes),
        }
    }
    if let Some(cut) = input.cut {
        let len = file.len();
        file.truncate(cut as usize % (len + 1));
    }

    // One store for the whole run, as a server keeps one: its caches see every file.
    static N: AtomicU64 = AtomicU64::new(0);
    let (dir, store) = store();
    let runs = dir.join("p/runs");
    let run = format!("r{}", N.fetch_add(1, Ordering::Relaxed));
    let path = runs.join(format!("{run}.sqlite"));
    let wal_path = runs.join(format!("{run}.sqlite-wal"));
    std::fs::write(&path, &file).expect("write");
    if let Some(wal) = &wal {
        std::fs::write(&wal_path, wal).expect("write");
    }

    let project = ProjectName::parse("p").expect("project");
    let id = RunId::parse(&run).expect("run id");
    read_store(store, &project, &id);
    if wal.is_none() {
        let after = std::fs::read(&path).expect("the file is still there");
        assert!(after == file, "reading changed a closed run's file");
    }
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let _ = std::fs::remove_file(runs.join(format!("{run}.sqlite{suffix}")));
    }
});

fn store() -> (&'static std::path::Path, &'static SqliteStore) {
    static STORE: OnceLock<(tempfile::TempDir, SqliteStore)> = OnceLock::new();
    let (dir, store) = STORE.get_or_init(|| {
        let dir = tempfile::tempdir_in(scratch()).expect("temp dir");
        std::fs::create_dir_all(dir.path().join("p/runs")).expect("mkdir");
        let store = SqliteStore::new(dir.path());
        (dir, store)
    });
    (dir.path(), store)
}
