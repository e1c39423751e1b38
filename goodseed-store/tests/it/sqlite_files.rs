//! What only the SQLite backend has: files on disk. Single-file runs after close, no
//! litter from readers, bad files reported beside good runs, symlinks kept inside the
//! root, older file layouts, and the listing cache.

use std::fs;
use std::path::Path;

use goodseed_core::Step;
use goodseed_store::{RunStore, RunWriter, SqliteRunWriter, StoreError, WriteBatch};

use crate::conformance::{Backend, Sqlite, fp, new_run, pn, rid};

fn siblings(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(path.parent().expect("parent"))
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn make_run(s: &Sqlite, project: &str, run: &str) {
    let mut b = new_run(run, "2025-01-01T00:00:00+00:00");
    let m = b.metric_series(&fp("m"));
    b.metric(m, Step::ZERO, 1.0, 0);
    s.create(project, run, &b).expect("create").close().expect("close");
}

#[test]
fn closed_runs_are_one_file_and_readers_leave_no_litter() {
    let s = Sqlite::new();
    let path = s.path("p", "r1");
    let mut w = s.create("p", "r1", &new_run("r1", "2025-01-01T00:00:00+00:00")).expect("create");
    assert!(siblings(&path).contains(&"r1.sqlite-wal".to_owned()), "WAL while open");
    w.close().expect("close");
    assert_eq!(siblings(&path), ["r1.sqlite"]);

    let listing = s.catalog.list_runs(None).expect("list");
    assert_eq!(listing.runs.len(), 1);
    let r = s.catalog.open_run(&pn("p"), &rid("r1")).expect("open");
    r.meta().expect("meta");
    r.configs().expect("configs");
    r.metric_paths().expect("paths");
    drop(r);
    s.catalog.set_trashed(&pn("p"), &rid("r1"), true).expect("trash");
    s.catalog.open_run(&pn("p"), &rid("r1")).expect("open").meta().expect("meta");
    assert_eq!(siblings(&path), ["r1.sqlite"], "reads and trash leave a closed run one file");
}

#[test]
fn readers_see_each_new_commit_of_a_live_run() {
    let s = Sqlite::new();
    let mut w =
        s.create("p", "live", &new_run("live", "2025-01-01T00:00:00+00:00")).expect("create");
    let r = s.catalog.open_run(&pn("p"), &rid("live")).expect("open");
    for i in 0..5u32 {
        let mut b = WriteBatch::new();
        let m = b.metric_series(&fp("m"));
        b.metric(m, Step::from(i), f64::from(i), 0);
        w.write(&b).expect("write");
        assert_eq!(r.metric_count("m").expect("count"), u64::from(i) + 1);
        let reopened = s.catalog.open_run(&pn("p"), &rid("live")).expect("open");
        assert_eq!(reopened.metric_count("m").expect("count"), u64::from(i) + 1);
    }
    // Trash works while the writer is live, and the writer goes on.
    s.catalog.set_trashed(&pn("p"), &rid("live"), true).expect("trash while live");
    let mut b = WriteBatch::new();
    b.set_meta("status", "finished");
    w.write(&b).expect("write after trash");
    w.close().expect("close");
    let meta = s.catalog.open_run(&pn("p"), &rid("live")).expect("open").meta().expect("meta");
    assert_eq!((meta.status(), meta.trashed()), (Some("finished"), true));
}

#[test]
fn bad_files_are_reported_beside_good_runs() {
    let s = Sqlite::new();
    make_run(&s, "p", "good");
    let runs = s.dir.path().join("p/runs");
    fs::write(runs.join("empty.sqlite"), b"").expect("write");
    fs::write(
        runs.join("text.sqlite"),
        b"hello, I am not a database at all, not even close".repeat(200),
    )
    .expect("write");
    let other = rusqlite::Connection::open(runs.join("other.sqlite")).expect("open");
    other.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);").expect("ddl");
    drop(other);
    // A real run cut in half.
    make_run(&s, "p", "cut");
    let cut = runs.join("cut.sqlite");
    let bytes = fs::read(&cut).expect("read");
    fs::write(&cut, &bytes[..bytes.len() / 2]).expect("truncate");
    // Not run files: wrong extension, or not under runs/.
    fs::write(runs.join("notes.txt"), b"x").expect("write");
    fs::write(s.dir.path().join("p/stray.sqlite"), b"x").expect("write");
    fs::create_dir_all(runs.join("dir.sqlite")).expect("mkdir");

    let listing = s.catalog.list_runs(None).expect("a bad file never fails the listing");
    let good: Vec<_> = listing.runs.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(good, ["good"]);
    let bad: Vec<_> = listing
        .unreadable
        .iter()
        .map(|u| format!("{} {}: {}", u.project, u.location, u.reason))
        .collect();
    assert_eq!(
        bad,
        [
            "p p/runs/cut.sqlite: database is corrupt or truncated",
            "p p/runs/empty.sqlite: empty file (0 bytes)",
            "p p/runs/other.sqlite: SQLite file without goodseed's run_meta table",
            "p p/runs/text.sqlite: not an SQLite database",
        ]
    );
    let projects = s.catalog.list_projects().expect("projects");
    assert_eq!(projects[0].run_count, 5, "projects count every run file, as 0.4.0 does");

    let err = s.catalog.open_run(&pn("p"), &rid("text")).expect_err("not a run");
    assert!(matches!(err, StoreError::NotARun { .. }), "{err}");
    let err = s.catalog.set_trashed(&pn("p"), &rid("other"), true).expect_err("not a run");
    assert!(matches!(err, StoreError::NotARun { .. }), "{err}");
    assert!(SqliteRunWriter::open_existing(&runs.join("other.sqlite")).is_err());
}

/// A run whose file name, folder or stored run id breaks the rules identifiers are held
/// to could be listed but never opened, trashed or stopped (every request names a run by
/// valid identifiers): it is reported as unreadable, with the reason.
#[test]
fn runs_that_cannot_be_addressed_are_reported_with_the_reason() {
    let s = Sqlite::new();
    make_run(&s, "p", "good");
    let good = s.path("p", "good");
    let root = s.dir.path();
    // goodseed 0.4.0 takes any run id without a path separator: `exp.1`, `my run`.
    for name in ["p/runs/exp.1.sqlite", "p/runs/my run.sqlite", "p/runs/-x.sqlite"] {
        fs::copy(&good, root.join(name)).expect("copy");
    }
    // A folder that is no project name (a backslash, a control character).
    for project in ["back\\slash", "bell\u{7}"] {
        fs::create_dir_all(root.join(project).join("runs")).expect("mkdir");
        fs::copy(&good, root.join(project).join("runs/r.sqlite")).expect("copy");
    }
    // A file named well whose run_meta names it otherwise.
    let renamed = root.join("p/runs/renamed.sqlite");
    fs::copy(&good, &renamed).expect("copy");
    let conn = rusqlite::Connection::open(&renamed).expect("open");
    conn.execute("UPDATE run_meta SET value = '../up' WHERE key = 'run_id'", []).expect("update");
    drop(conn);

    let listing = s.catalog.list_runs(None).expect("list");
    let runs: Vec<_> = listing.runs.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(runs, ["good"]);
    let bad: Vec<_> =
        listing.unreadable.iter().map(|u| format!("{}: {}", u.location, u.reason)).collect();
    assert_eq!(
        bad,
        [
            r#"back\slash/runs/r.sqlite: its folder cannot be addressed: invalid project name "back\\slash": character '\\' at position 4 is not allowed"#,
            "bell\u{7}/runs/r.sqlite: its folder cannot be addressed: invalid project name \
             \"bell\\u{7}\": character '\\u{7}' at position 4 is not allowed",
            r#"p/runs/-x.sqlite: its file name cannot be addressed: invalid run id "-x": it must start and end with a letter or digit"#,
            r#"p/runs/exp.1.sqlite: its file name cannot be addressed: invalid run id "exp.1": character '.' at position 3 is not allowed"#,
            r#"p/runs/my run.sqlite: its file name cannot be addressed: invalid run id "my run": character ' ' at position 2 is not allowed"#,
            r#"p/runs/renamed.sqlite: the run id its run_meta holds cannot be addressed: invalid run id "../up": character '.' at position 0 is not allowed"#,
        ]
    );
    // Projects still count every run file, as 0.4.0 does.
    let projects: Vec<_> = s
        .catalog
        .list_projects()
        .expect("projects")
        .into_iter()
        .map(|p| (p.name, p.run_count))
        .collect();
    assert_eq!(projects.len(), 3);
    assert!(projects.contains(&("p".to_owned(), 5)), "{projects:?}");
    // One project's listing says the same of its own files.
    let listing = s.catalog.list_runs(Some(&pn("p"))).expect("list");
    assert_eq!(listing.unreadable.len(), 4);
}

/// In a flat directory (0.4.0's `log_dir`) a run's project is the one its `run_meta`
/// names, so that must be a valid project name too.
#[test]
fn a_flat_run_whose_project_cannot_be_addressed_is_unreadable() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (run, project) in [("good", "team/p"), ("bad", "../up")] {
        let mut b = crate::conformance::finished_run(run, "2025-01-01T00:00:00+00:00");
        b.set_meta("project", project);
        let mut w =
            SqliteRunWriter::create(&dir.path().join(format!("{run}.sqlite")), &b).expect("create");
        w.close().expect("close");
    }
    let store = goodseed_store::SqliteStore::flat(dir.path());
    let listing = store.list_runs(None).expect("list");
    let runs: Vec<_> = listing.runs.iter().map(|r| (r.project.as_str(), r.id.as_str())).collect();
    assert_eq!(runs, [("team/p", "good")]);
    let bad: Vec<_> =
        listing.unreadable.iter().map(|u| format!("{}: {}", u.location, u.reason)).collect();
    assert_eq!(
        bad,
        [
            r#"bad.sqlite: the project its run_meta holds cannot be addressed: invalid project name "../up": segment ".." is not allowed"#
        ]
    );
}

#[cfg(unix)]
#[test]
fn symlinks_never_lead_out_of_the_root() {
    use std::os::unix::fs::symlink;
    let outside = Sqlite::new();
    make_run(&outside, "secret", "leak");
    let s = Sqlite::new();
    make_run(&s, "p", "good");
    let runs = s.dir.path().join("p/runs");
    // A run file linked from outside, a project directory linked from outside, a link
    // inside the root and a dangling link.
    symlink(outside.path("secret", "leak"), runs.join("leak.sqlite")).expect("symlink");
    symlink(outside.dir.path().join("secret"), s.dir.path().join("linked")).expect("symlink");
    symlink(runs.join("good.sqlite"), runs.join("alias.sqlite")).expect("symlink");
    symlink(runs.join("gone.sqlite"), runs.join("dangling.sqlite")).expect("symlink");

    let listing = s.catalog.list_runs(None).expect("list");
    let good: Vec<_> = listing.runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(good, ["alias", "good"]);
    let bad: Vec<_> =
        listing.unreadable.iter().map(|u| format!("{}: {}", u.id, u.reason)).collect();
    assert_eq!(bad, ["dangling: broken symlink", "leak: symlink leads outside the data directory"]);
    for reason in &bad {
        assert!(
            !reason.contains(&outside.dir.path().display().to_string()),
            "no outside path revealed"
        );
    }
    let err = s.catalog.open_run(&pn("p"), &rid("leak")).expect_err("refused");
    assert!(matches!(err, StoreError::OutsideRoot { .. }), "{err}");
    assert!(!err.to_string().contains(&outside.dir.path().display().to_string()));
    let err = s.catalog.open_run(&pn("linked"), &rid("leak")).expect_err("refused");
    assert!(matches!(err, StoreError::OutsideRoot { .. }), "{err}");
    let err = s.catalog.set_trashed(&pn("linked"), &rid("leak"), true).expect_err("refused");
    assert!(matches!(err, StoreError::OutsideRoot { .. }), "{err}");
    s.catalog.open_run(&pn("p"), &rid("alias")).expect("a link inside the root is fine");
    let outside_meta =
        outside.catalog.open_run(&pn("secret"), &rid("leak")).expect("open").meta().expect("meta");
    assert!(!outside_meta.trashed(), "the outside file was not touched");
}

#[test]
fn older_files_open() {
    let s = Sqlite::new();
    let runs = s.dir.path().join("legacy/runs");
    fs::create_dir_all(&runs).expect("mkdir");
    let conn = rusqlite::Connection::open(runs.join("old-run.sqlite")).expect("open");
    conn.execute_batch(
        "CREATE TABLE run_meta (key TEXT PRIMARY KEY, value TEXT);
         INSERT INTO run_meta VALUES ('run_name', 'old-run'), ('experiment_name', 'before 0.4'),
                                     ('created_at', '2024-05-01T00:00:00+00:00'), ('status', 'finished');
         CREATE TABLE configs (path TEXT PRIMARY KEY, type_tag TEXT NOT NULL, value TEXT, updated_at TEXT NOT NULL);
         INSERT INTO configs VALUES ('lr', 'float', '0.1', 'x');
         CREATE TABLE metric_series (id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL UNIQUE);
         CREATE TABLE metric_points (series_id INTEGER NOT NULL, step INTEGER NOT NULL, y REAL NOT NULL,
                                     ts INTEGER NOT NULL, PRIMARY KEY (series_id, step));
         INSERT INTO metric_series (path) VALUES ('loss');
         INSERT INTO metric_points VALUES (1, 1, 0.5, 100), (1, 2, 0.25, 101);",
    )
    .expect("legacy schema");
    drop(conn);

    let listing = s.catalog.list_runs(None).expect("list");
    assert!(listing.unreadable.is_empty(), "{:?}", listing.unreadable);
    let run = &listing.runs[0];
    assert_eq!((run.run_id.as_str(), run.meta.name()), ("old-run", Some("before 0.4")));
    assert_eq!(run.metric_paths, ["loss"]);
    assert!(run.text_paths.is_empty());
    let r = s.catalog.open_run(&pn("legacy"), &rid("old-run")).expect("open");
    assert!(r.integer_steps().expect("steps"));
    let mut steps = Vec::new();
    r.visit_metrics(Some("loss"), &mut |_, p| {
        steps.push(p.step);
        true
    })
    .expect("visit");
    assert_eq!(steps, [1.0, 2.0]);
    assert_eq!(r.text_points(None, Default::default()).expect("text").total, 0);
    // Resuming adds the tables 0.4.0 has, and the file goes on working.
    let mut w = SqliteRunWriter::open_existing(&runs.join("old-run.sqlite")).expect("resume");
    let mut b = WriteBatch::new();
    let t = b.text_series(&fp("log"));
    b.text(t, Step::ZERO, "hello", 0);
    w.write(&b).expect("write");
    w.close().expect("close");
    let r = s.catalog.open_run(&pn("legacy"), &rid("old-run")).expect("open");
    assert_eq!(r.text_paths().expect("paths"), ["log"]);
}

#[test]
fn listings_are_cached_until_a_file_changes() {
    let s = Sqlite::new();
    make_run(&s, "p", "r1");
    assert_eq!(s.catalog.list_runs(None).expect("list").runs.len(), 1);
    // Replace the contents with garbage of the same size and mtime: a warm listing does
    // not reopen the file, so it still shows the cached summary.
    let path = s.path("p", "r1");
    let modified = fs::metadata(&path).expect("stat").modified().expect("mtime");
    let len = fs::metadata(&path).expect("stat").len();
    fs::write(&path, vec![b'x'; len as usize]).expect("write");
    fs::File::options()
        .write(true)
        .open(&path)
        .expect("open")
        .set_modified(modified)
        .expect("touch");
    let warm = s.catalog.list_runs(None).expect("list");
    assert_eq!((warm.runs.len(), warm.unreadable.len()), (1, 0), "served from cache");
    // A new mtime makes it read again.
    let later = modified + std::time::Duration::from_secs(5);
    fs::File::options().write(true).open(&path).expect("open").set_modified(later).expect("touch");
    let fresh = s.catalog.list_runs(None).expect("list");
    assert_eq!((fresh.runs.len(), fresh.unreadable.len()), (0, 1));
    // Deleted files drop out.
    fs::remove_file(&path).expect("rm");
    let gone = s.catalog.list_runs(None).expect("list");
    assert_eq!((gone.runs.len(), gone.unreadable.len()), (0, 0));
}

#[test]
fn a_missing_root_is_empty_and_never_created() {
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("nothing-here");
    let catalog = goodseed_store::SqliteStore::new(&root);
    assert!(catalog.list_runs(None).expect("list").runs.is_empty());
    assert!(catalog.list_projects().expect("projects").is_empty());
    assert!(catalog.open_run(&pn("p"), &rid("r")).expect_err("missing").is_not_found());
    assert!(!root.exists());
}

#[test]
fn two_writers_cannot_create_the_same_run() {
    let s = Sqlite::new();
    let path = s.path("p", "r1");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                SqliteRunWriter::create(&path, &new_run("r1", "x")).map(|mut w| w.close())
            })
        })
        .collect();
    let created = threads.into_iter().map(|t| t.join()).filter(|r| matches!(r, Ok(Ok(_)))).count();
    assert_eq!(created, 1);
}

#[test]
fn deleting_a_run_removes_every_file_beside_it() {
    let s = Sqlite::new();
    // A trashed run whose writer is live: its WAL, shared memory and lock file exist.
    let mut first = new_run("live", "2025-01-01T00:00:00+00:00");
    first.set_meta("trashed", "true");
    let m = first.metric_series(&fp("m"));
    first.metric(m, Step::ZERO, 1.0, 0);
    let mut live = s.create("p", "live", &first).expect("create");
    let live_path = s.path("p", "live");
    // Its files copied under another name, lock file included: a trashed run whose
    // writer died (the copied lock file is not held).
    let crashed = s.path("p", "crashed");
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let from = format!("{}{suffix}", live_path.display());
        fs::copy(&from, format!("{}{suffix}", crashed.display())).expect("copy");
    }
    let listing = s.catalog.list_runs(None).expect("list");
    let status: Vec<_> = listing.runs.iter().map(|r| format!("{} {}", r.id, r.status)).collect();
    assert_eq!(status, ["crashed crashed", "live running"]);
    let before = siblings(&live_path);
    assert_eq!(
        before,
        [
            "crashed.sqlite",
            "crashed.sqlite-shm",
            "crashed.sqlite-wal",
            "crashed.sqlite.lock",
            "live.sqlite",
            "live.sqlite-shm",
            "live.sqlite-wal",
            "live.sqlite.lock",
        ]
    );

    let err = s.catalog.delete_run(&pn("p"), &rid("live")).expect_err("live");
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert_eq!(siblings(&live_path), before, "a refused delete removes nothing");
    s.catalog.delete_run(&pn("p"), &rid("crashed")).expect("delete");
    assert_eq!(
        siblings(&live_path),
        ["live.sqlite", "live.sqlite-shm", "live.sqlite-wal", "live.sqlite.lock"]
    );
    let mut b = WriteBatch::new();
    b.set_meta("status", "finished");
    live.write(&b).expect("the live run is untouched");
    live.close().expect("close");
    s.catalog.delete_run(&pn("p"), &rid("live")).expect("delete after close");
    assert!(siblings(&live_path).is_empty());
}

#[cfg(unix)]
#[test]
fn deleting_a_symlinked_run_removes_only_the_link() {
    use std::os::unix::fs::symlink;
    let s = Sqlite::new();
    make_run(&s, "p", "good");
    let runs = s.dir.path().join("p/runs");
    symlink(runs.join("good.sqlite"), runs.join("alias.sqlite")).expect("symlink");
    s.catalog.set_trashed(&pn("p"), &rid("alias"), true).expect("trash through the link");
    s.catalog.delete_run(&pn("p"), &rid("alias")).expect("delete");
    assert_eq!(siblings(&runs.join("good.sqlite")), ["good.sqlite"]);
    let listing = s.catalog.list_runs(None).expect("list");
    assert_eq!(listing.runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["good"]);
}

/// Inverts `len` bytes in the middle of page `page` (counted from 0) of a file.
pub(crate) fn damage_page(path: &Path, page: usize, len: usize) {
    let mut bytes = fs::read(path).expect("read");
    let page_size = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    let middle = page * page_size + page_size / 2;
    for b in &mut bytes[middle - len / 2..middle + len / 2] {
        *b = !*b;
    }
    fs::write(path, bytes).expect("write");
}

#[test]
fn integrity_check_finds_damage_and_changes_nothing() {
    let s = Sqlite::new();
    let mut first = new_run("r", "2025-01-01T00:00:00+00:00");
    let m = first.metric_series(&fp("m"));
    for i in 0..20_000u32 {
        first.metric(m, Step::from(i), f64::from(i).sqrt(), 1_700_000_000);
    }
    s.create("p", "r", &first).expect("create").close().expect("close");
    let path = s.path("p", "r");
    let pages = fs::metadata(&path).expect("stat").len() as usize / 4096;
    damage_page(&path, pages / 2, 64);
    let bytes = fs::read(&path).expect("read");
    let modified = fs::metadata(&path).expect("stat").modified().expect("mtime");

    let listing = s.catalog.list_runs(None).expect("list");
    assert_eq!(listing.runs.len(), 1, "the damage is past what a listing reads");
    let problems =
        s.catalog.open_run(&pn("p"), &rid("r")).expect("open").integrity_check().expect("check");
    assert_ne!(problems, ["ok"]);
    assert!(!problems.is_empty());
    assert_eq!(fs::read(&path).expect("read"), bytes, "the file is unchanged");
    assert_eq!(fs::metadata(&path).expect("stat").modified().expect("mtime"), modified);
    assert_eq!(siblings(&path), ["r.sqlite"]);
}

#[test]
fn runs_littered_by_other_readers_still_read_as_closed() {
    let s = Sqlite::new();
    make_run(&s, "p", "closed");
    let path = s.path("p", "closed");
    // What goodseed 0.4.0's readers leave beside a closed run.
    fs::write(format!("{}-wal", path.display()), b"").expect("empty wal");
    fs::write(format!("{}-shm", path.display()), vec![0u8; 32768]).expect("shm");
    let r = s.catalog.open_run(&pn("p"), &rid("closed")).expect("open");
    assert!(r.version().is_some(), "an empty WAL and no writer: closed, cacheable");
    assert_eq!(r.metric_count("m").expect("count"), 1);

    let mut live =
        s.create("p", "live", &new_run("live", "2025-01-01T00:00:00+00:00")).expect("create");
    let r = s.catalog.open_run(&pn("p"), &rid("live")).expect("open");
    assert_eq!(r.version(), None, "a live run's data changes: no snapshot");
    live.close().expect("close");
    let r = s.catalog.open_run(&pn("p"), &rid("live")).expect("open");
    assert!(r.version().is_some(), "once closed, the next reader is a closed one");
}

#[cfg(unix)]
#[test]
fn a_run_swapped_for_a_symlink_is_refused_at_once() {
    let outside = Sqlite::new();
    make_run(&outside, "secret", "leak");
    let s = Sqlite::new();
    make_run(&s, "p", "swap");
    s.catalog.open_run(&pn("p"), &rid("swap")).expect("open").meta().expect("meta");
    let path = s.path("p", "swap");
    fs::remove_file(&path).expect("rm");
    std::os::unix::fs::symlink(outside.path("secret", "leak"), &path).expect("symlink");
    let err = s.catalog.open_run(&pn("p"), &rid("swap")).expect_err("refused");
    assert!(matches!(err, StoreError::OutsideRoot { .. }), "{err}");
}

/// A reader that opened a run while it was written must not leave the writer's `-wal`
/// and `-shm` behind once the writer has closed and the reader is gone.
#[test]
fn a_reader_of_a_live_run_leaves_no_litter_once_the_writer_closed() {
    let s = Sqlite::new();
    let path = s.path("p", "r1");
    let mut b = new_run("r1", "2025-01-01T00:00:00+00:00");
    let m = b.metric_series(&fp("m"));
    b.metric(m, goodseed_core::Step::ZERO, 1.0, 0);
    let mut w = s.create("p", "r1", &b).expect("create");
    let r = s.catalog.open_run(&pn("p"), &rid("r1")).expect("open");
    assert_eq!(r.metric_count("m").expect("count"), 1, "read while written");
    w.close().expect("close");
    // The reader still holds its connections: the files stay while it lives.
    drop(r);
    // The next look at the run finds it closed, drops the live reader, and tidies.
    let closed = s.catalog.open_run(&pn("p"), &rid("r1")).expect("open");
    assert!(closed.version().is_some());
    assert_eq!(siblings(&path), ["r1.sqlite"], "no -wal or -shm left behind");
    assert_eq!(closed.metric_count("m").expect("count"), 1, "and the data is all there");
}

/// A run left `running` with no lock and no heartbeat (as a killed goodseed 0.4.0
/// trainer leaves it) is stale once its file is old, and running again when written.
#[test]
fn a_running_run_no_one_can_vouch_for_goes_stale_when_its_file_is_old() {
    use goodseed_core::{Liveness, RunStatus};
    use std::time::{Duration, SystemTime};
    let s = Sqlite::new();
    // Closing leaves the run as 0.4.0 leaves one: `running`, one file, no lock.
    s.create("p", "old", &new_run("old", "2025-01-01T00:00:00+00:00"))
        .expect("create")
        .close()
        .expect("close");
    let path = s.path("p", "old");
    let state = || {
        let r = s.catalog.run_summary(&pn("p"), &rid("old")).expect("summary");
        let listed = s.catalog.list_runs(None).expect("list").runs[0].clone();
        assert_eq!((listed.status.clone(), listed.liveness), (r.status.clone(), r.liveness));
        (r.status.clone(), r.liveness, r.last_write.map(SystemTime::from))
    };
    let (status, liveness, written) = state();
    assert_eq!((status, liveness), (RunStatus::Running, Liveness::Unknown));
    let age = SystemTime::now().duration_since(written.expect("a file's time")).expect("past");
    assert!(age < Duration::from_secs(60), "just written: {age:?}");

    let old = SystemTime::now() - goodseed_store::STALE_AFTER - Duration::from_secs(5);
    fs::File::options().write(true).open(&path).expect("open").set_modified(old).expect("touch");
    let (status, liveness, written) = state();
    assert_eq!((status.as_str(), liveness), ("stale", Liveness::Stale));
    let shown = written.expect("time").duration_since(old).unwrap_or_default();
    assert!(shown < Duration::from_secs(1), "the file's time is the last write");
    // Stale is not dead: the store still refuses to take it over.
    let err = s.catalog.resume_run(&pn("p"), &rid("old")).expect_err("stale");
    assert!(matches!(err, StoreError::Live { .. }), "{err}");

    let now = SystemTime::now();
    fs::File::options().write(true).open(&path).expect("open").set_modified(now).expect("touch");
    assert_eq!(state().0, RunStatus::Running, "written again: running");
}
