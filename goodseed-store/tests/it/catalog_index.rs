//! A watched SQLite store (`SqliteStore::watched`) lists from an index in memory: it
//! must list exactly what a walk of the directory finds, whoever changed the files and
//! however (this process, another store as another process would, a hard link outside
//! the directory that no notification reports).

use std::fs;
use std::time::{Duration, Instant};

use goodseed_core::{RunRef, Step};
use goodseed_store::{RunListing, RunStore, SqliteStore, WriteBatch};

use crate::conformance::{Sqlite, fp, new_run, pn, rid};

/// What a listing says, comparably.
fn shown(listing: &RunListing) -> Vec<String> {
    let mut out: Vec<String> = listing
        .runs
        .iter()
        .map(|r| {
            format!(
                "{}/{} {} trashed={} name={:?} metrics={:?} texts={:?} tags={:?}",
                r.project,
                r.id,
                r.status,
                r.meta.trashed(),
                r.meta.name(),
                r.metric_paths,
                r.text_paths,
                r.tags
            )
        })
        .collect();
    out.extend(
        listing
            .unreadable
            .iter()
            .map(|u| format!("unreadable {} {}: {}", u.project, u.id, u.reason)),
    );
    out
}

fn everything(store: &SqliteStore) -> Vec<String> {
    let mut out = shown(&store.list_runs(None).expect("list"));
    for project in store.list_projects().expect("projects") {
        out.push(format!("project {} {}", project.name, project.run_count));
        let p = pn(&project.name);
        out.extend(
            shown(&store.list_runs(Some(&p)).expect("list")).into_iter().map(|l| format!("  {l}")),
        );
    }
    out
}

/// Waits (generously: it ends as soon as they agree) until the watched store lists what
/// a fresh walk lists.
fn agree(watched: &SqliteStore, walked: &SqliteStore, after: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (seen, truth) = (everything(watched), everything(walked));
        if seen == truth {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {after}:\nwatched: {seen:#?}\nwalked: {truth:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn points(from: u32, n: u32) -> WriteBatch {
    let mut b = WriteBatch::new();
    let m = b.metric_series(&fp("loss"));
    for i in from..from + n {
        b.metric(m, Step::from(i), f64::from(i), 0);
    }
    b
}

#[test]
fn changes_made_by_another_store_reach_the_index() {
    let s = Sqlite::watched();
    let other = SqliteStore::new(s.dir.path());
    agree(&s.catalog, &other, "nothing");

    // Runs made, written live, closed, in two projects.
    let mut w = other
        .create_run(&pn("a"), &rid("r1"), &new_run("r1", "2025-01-01T00:00:01+00:00"))
        .expect("create");
    agree(&s.catalog, &other, "a live run made");
    w.write(&points(0, 10)).expect("write");
    agree(&s.catalog, &other, "a live run written");
    let mut done = WriteBatch::new();
    done.set_meta("status", "finished");
    w.write(&done).expect("finish");
    w.close().expect("close");
    agree(&s.catalog, &other, "a run closed");
    for (i, project) in ["a", "b/deep", "b/deep"].into_iter().enumerate() {
        let id = format!("r{}", i + 2);
        let mut first = new_run(&id, &format!("2025-01-01T00:00:0{}+00:00", i + 2));
        first.set_meta("name", format!("run {i}"));
        other.create_run(&pn(project), &rid(&id), &first).expect("create").close().expect("close");
    }
    agree(&s.catalog, &other, "three runs made");

    // Changes to closed runs: trash, a stop request, a rename of its name.
    other.set_trashed(&pn("a"), &rid("r1"), true).expect("trash");
    agree(&s.catalog, &other, "a run trashed");
    other.request_stop(&pn("a"), &rid("r2")).expect("stop");
    agree(&s.catalog, &other, "a stop asked");
    let mut w = other.resume_run(&pn("a"), &rid("r1")).expect("resume");
    w.write(&points(10, 5)).expect("write");
    w.close().expect("close");
    agree(&s.catalog, &other, "a run resumed and written");

    // Deleted; made unreadable; written over in place; a new project's directory moved in.
    other.delete_runs(&[RunRef { project: pn("a"), run_id: rid("r1") }]).expect("delete");
    agree(&s.catalog, &other, "a run deleted");
    fs::write(s.path("b/deep", "r3"), b"not a database at all").expect("spoil");
    agree(&s.catalog, &other, "a run spoiled");
    fs::copy(s.path("b/deep", "r4"), s.path("b/deep", "r3")).expect("copy over");
    agree(&s.catalog, &other, "a run written over in place");
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let moved = SqliteStore::new(elsewhere.path());
    moved
        .create_run(&pn("c"), &rid("m1"), &new_run("m1", "2025-01-02T00:00:00+00:00"))
        .expect("create")
        .close()
        .expect("close");
    fs::rename(elsewhere.path().join("c"), s.dir.path().join("c")).expect("move a project in");
    agree(&s.catalog, &other, "a project moved in");
    fs::rename(s.dir.path().join("c"), s.dir.path().join("d")).expect("rename a project");
    agree(&s.catalog, &other, "a project renamed");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(s.path("a", "r2"), s.path("a", "linked")).expect("symlink");
        agree(&s.catalog, &other, "a symlinked run");
    }
    fs::remove_dir_all(s.dir.path().join("b")).expect("remove a project");
    agree(&s.catalog, &other, "a project removed");
}

#[test]
fn this_processs_changes_are_listed_at_once() {
    let s = Sqlite::watched();
    let status = |id: &str| {
        let listing = s.catalog.list_runs(None).expect("list");
        listing
            .runs
            .iter()
            .find(|r| r.id == id)
            .map(|r| (r.status.to_string(), r.meta.trashed(), r.metric_paths.clone()))
    };
    assert_eq!(status("r1"), None);
    let mut w = s
        .catalog
        .create_run(&pn("p"), &rid("r1"), &new_run("r1", "2025-01-01T00:00:00+00:00"))
        .expect("create");
    assert_eq!(status("r1"), Some(("running".into(), false, vec![])));
    w.write(&points(0, 3)).expect("write");
    assert_eq!(status("r1"), Some(("running".into(), false, vec!["loss".into()])));
    let mut done = WriteBatch::new();
    done.set_meta("status", "finished");
    w.write(&done).expect("finish");
    w.close().expect("close");
    assert_eq!(status("r1"), Some(("finished".into(), false, vec!["loss".into()])));
    s.catalog.set_trashed(&pn("p"), &rid("r1"), true).expect("trash");
    assert_eq!(status("r1"), Some(("finished".into(), true, vec!["loss".into()])));
    s.catalog.delete_runs(&[RunRef { project: pn("p"), run_id: rid("r1") }]).expect("delete");
    assert_eq!(status("r1"), None);
    // The listing's order is the walk's: newest first, ties in path order.
    for (id, at) in
        [("x", "2025-01-01"), ("b", "2025-01-03"), ("a", "2025-01-03"), ("c", "2025-01-02")]
    {
        let first = new_run(id, &format!("{at}T00:00:00+00:00"));
        s.catalog.create_run(&pn("p"), &rid(id), &first).expect("create").close().expect("close");
    }
    let order: Vec<String> =
        s.catalog.list_runs(None).expect("list").runs.iter().map(|r| r.id.clone()).collect();
    assert_eq!(order, ["a", "b", "c", "x"]);
    assert_eq!(
        order,
        SqliteStore::new(s.dir.path())
            .list_runs(None)
            .expect("list")
            .runs
            .iter()
            .map(|r| r.id.clone())
            .collect::<Vec<_>>()
    );
}

/// A change no notification reports (made through a hard link outside the watched
/// directory, so neither the run's directory nor its name sees it) is found by the
/// reconciling walk.
#[test]
fn the_reconciling_walk_finds_what_notifications_miss() {
    let dir = tempfile::tempdir().expect("temp dir");
    let watched =
        SqliteStore::new(dir.path()).watched_reconciling_every(Duration::from_millis(300));
    let plain = SqliteStore::new(dir.path());
    let mut first = new_run("r1", "2025-01-01T00:00:00+00:00");
    first.set_meta("name", "before");
    plain.create_run(&pn("p"), &rid("r1"), &first).expect("create").close().expect("close");
    agree(&watched, &plain, "a run made");

    let outside = tempfile::tempdir().expect("temp dir");
    let link = outside.path().join("link.sqlite");
    fs::hard_link(goodseed_store::run_file_path(dir.path(), &pn("p"), &rid("r1")), &link)
        .expect("link");
    let conn = rusqlite::Connection::open(&link).expect("open the link");
    conn.execute("UPDATE run_meta SET value = 'after' WHERE key = 'name'", []).expect("update");
    conn.close().expect("close");
    agree(&watched, &plain, "a change through a hard link");
    let listed = watched.list_runs(None).expect("list");
    assert_eq!(listed.runs[0].meta.name(), Some("after"));
}

/// A directory that does not exist yet is said, walked meanwhile, and watched once made.
#[test]
fn a_directory_made_later_is_watched_once_it_exists() {
    let home = tempfile::tempdir().expect("temp dir");
    let dir = home.path().join("projects");
    let watched = SqliteStore::new(&dir).watched();
    let problem = watched.watch_problem().expect("not there yet");
    assert!(problem.contains("does not exist"), "{problem}");
    assert!(!dir.exists(), "watching makes no directory");
    assert!(watched.list_runs(None).expect("list").runs.is_empty());

    let plain = SqliteStore::new(&dir);
    plain
        .create_run(&pn("p"), &rid("r1"), &new_run("r1", "2025-01-01T00:00:00+00:00"))
        .expect("create")
        .close()
        .expect("close");
    agree(&watched, &plain, "the directory made");
    let deadline = Instant::now() + Duration::from_secs(20);
    while watched.watch_problem().is_some() {
        assert!(Instant::now() < deadline, "never watched: {:?}", watched.watch_problem());
        std::thread::sleep(Duration::from_millis(20));
    }
    plain
        .create_run(&pn("p"), &rid("r2"), &new_run("r2", "2025-01-02T00:00:00+00:00"))
        .expect("create")
        .close()
        .expect("close");
    agree(&watched, &plain, "a run made once watched");
}

/// A watched store keeps its summaries on disk: the next one over the directory lists
/// unchanged runs without opening them (a file garbled in place, same size and time, is
/// still listed from what was kept), reads again a run changed in between, and ignores
/// a kept file it cannot read.
#[test]
fn summaries_kept_between_starts_spare_unchanged_runs_a_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let writer = SqliteStore::new(dir.path());
    for run in ["a", "b", "c"] {
        let mut w = writer
            .create_run(&pn("p"), &rid(run), &new_run(run, "2025-01-01T00:00:00+00:00"))
            .expect("create");
        w.write(&points(0, 5)).expect("write");
        let mut done = WriteBatch::new();
        done.set_meta("status", "finished");
        w.write(&done).expect("finish");
        w.close().expect("close");
    }
    let kept = dir.path().join(".goodseed-server/summaries.json");
    {
        let first = SqliteStore::new(dir.path()).watched();
        let listed = everything(&first);
        assert!(listed.iter().filter(|l| l.contains("p/")).count() >= 3, "{listed:?}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !kept.exists() {
            assert!(Instant::now() < deadline, "the summaries were never written");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Between two servers: run b is trashed (read again), run a is garbled in place with
    // its size and time kept (not read again: listed as it was).
    writer.set_trashed(&pn("p"), &rid("b"), true).expect("trash");
    let a = dir.path().join("p/runs/a.sqlite");
    let modified = fs::metadata(&a).expect("meta").modified().expect("mtime");
    let mut bytes = fs::read(&a).expect("read");
    bytes[..16].copy_from_slice(b"not a sqlite db!");
    fs::write(&a, &bytes).expect("garble");
    fs::File::options().write(true).open(&a).expect("open").set_modified(modified).expect("mtime");

    let second = SqliteStore::new(dir.path()).watched();
    let listed = everything(&second);
    let line = |id: &str| listed.iter().find(|l| l.starts_with(&format!("p/{id} "))).cloned();
    assert!(
        line("a").is_some_and(|l| l.contains("finished")),
        "a listed from what was kept: {listed:?}"
    );
    assert!(line("b").is_some_and(|l| l.contains("trashed=true")), "b read again: {listed:?}");
    // A fresh walk, with nothing kept, finds a garbled.
    let fresh = everything(&SqliteStore::new(dir.path()));
    assert!(fresh.iter().any(|l| l.starts_with("unreadable p a")), "{fresh:?}");
    drop(second);

    // A kept file that cannot be read is ignored: every run is read.
    fs::write(&kept, b"{ not json").expect("garble the kept file");
    let third = SqliteStore::new(dir.path()).watched();
    assert_eq!(everything(&third), fresh);
}
