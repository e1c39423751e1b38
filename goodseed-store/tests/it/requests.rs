//! Requests of interactive control, the same on both backends (a SQLite file in the data
//! directory, and PostgreSQL on the test kit's private cluster): bad requests refused
//! with the reason, claims in order and never twice (also from two handles at once),
//! settling only by the claiming agent, released claims claimed again.

use std::collections::BTreeSet;
use std::sync::Arc;

use goodseed_core::{ProjectName, RunId};
use goodseed_store::StoreError;
use goodseed_store::requests::{
    NewRequest, Outcome, RequestKind, RequestState, RequestStore, SqliteRequestStore,
};

fn pn(s: &str) -> ProjectName {
    ProjectName::parse(s).expect("project")
}

fn ask(kind: RequestKind, run: &str) -> NewRequest {
    NewRequest::new(kind, RunId::parse(run).expect("run id"), "ana")
}

fn reason(err: StoreError) -> String {
    match err {
        StoreError::BadRequest { reason } => reason,
        other => panic!("not a bad request: {other}"),
    }
}

/// Everything but concurrency, on one store.
fn requests_are_kept_claimed_and_settled(store: &dyn RequestStore) {
    let p = pn("team/p");
    // Refused, with the reason.
    let mut stop = ask(RequestKind::Stop, "r1");
    stop.config_patch = Some("{}".into());
    assert!(
        reason(store.ask(&p, &stop).expect_err("patch"))
            .contains("stop request takes no config patch")
    );
    let mut clone = ask(RequestKind::Clone, "r1");
    clone.config_patch = Some("[1]".into());
    assert!(reason(store.ask(&p, &clone).expect_err("array")).contains("JSON object"));
    clone.config_patch = Some("{lr: 1".into());
    assert!(reason(store.ask(&p, &clone).expect_err("not json")).contains("not JSON"));
    clone.config_patch = None;
    clone.checkpoint = Some(" ".into());
    assert!(reason(store.ask(&p, &clone).expect_err("empty")).contains("checkpoint is empty"));
    let mut nobody = ask(RequestKind::Delete, "r1");
    nobody.asked_by = String::new();
    assert!(reason(store.ask(&p, &nobody).expect_err("nobody")).contains("who asked"));
    assert_eq!(store.list(&p).expect("list"), [], "nothing refused was kept");

    // Kept in order, with what was asked.
    let clone = ask(RequestKind::Clone, "r1")
        .with_config_patch(r#"{"lr": 0.01, "model": {"act": "relu"}}"#)
        .expect("patch")
        .with_checkpoint("step-1000")
        .expect("checkpoint");
    let a = store.ask(&p, &clone).expect("ask");
    let b = store.ask(&p, &ask(RequestKind::Stop, "r2")).expect("ask");
    let c = store.ask(&p, &ask(RequestKind::Resume, "r3")).expect("ask");
    let other = store.ask(&pn("team/q"), &ask(RequestKind::Delete, "r9")).expect("ask");
    assert!(a.id < b.id && b.id < c.id);
    assert_eq!(a.state, RequestState::Pending);
    assert_eq!(a.config_patch.as_deref(), Some(r#"{"lr": 0.01, "model": {"act": "relu"}}"#));
    assert_eq!((a.checkpoint.as_deref(), a.asked_by.as_str()), (Some("step-1000"), "ana"));
    assert!(a.asked_at.starts_with("20"), "{}", a.asked_at);
    let listed = store.list(&p).expect("list");
    assert_eq!(listed.iter().map(|r| r.id).collect::<Vec<_>>(), [a.id, b.id, c.id]);
    assert_eq!(store.get(&p, b.id).expect("get").map(|r| r.kind), Some(RequestKind::Stop));
    assert_eq!(store.get(&p, other.id).expect("get"), None, "another project's");

    // Claimed oldest first, each once; the other project's stays.
    let first = store.claim(&p, "agent-1", &RequestKind::ALL).expect("claim").expect("pending");
    assert_eq!(
        (first.id, first.state, first.claimed_by.as_deref()),
        (a.id, RequestState::Claimed, Some("agent-1"))
    );
    let second = store.claim(&p, "agent-2", &RequestKind::ALL).expect("claim").expect("pending");
    assert_eq!(second.id, b.id);

    // Only its claimer settles it.
    let err = reason(store.settle(&p, a.id, "agent-2", &Outcome::done(None)).expect_err("other"));
    assert!(err.contains("claimed by \"agent-1\""), "{err}");
    let done = store.settle(&p, a.id, "agent-1", &Outcome::done(Some("r1-clone"))).expect("settle");
    assert_eq!((done.state, done.result_run.as_deref()), (RequestState::Done, Some("r1-clone")));
    assert!(done.settled_at.is_some());
    let err = reason(store.settle(&p, a.id, "agent-1", &Outcome::done(None)).expect_err("twice"));
    assert!(err.contains("is done"), "{err}");
    let err = reason(store.settle(&p, 999_999, "agent-1", &Outcome::done(None)).expect_err("none"));
    assert!(err.contains("no request 999999"), "{err}");

    // An agent that died: its claims go back to pending, and another takes them.
    assert_eq!(store.release(&p, "agent-2").expect("release"), 1);
    assert_eq!(store.get(&p, b.id).expect("get").map(|r| r.state), Some(RequestState::Pending));
    let again = store.claim(&p, "agent-3", &RequestKind::ALL).expect("claim").expect("pending");
    assert_eq!(again.id, b.id);
    let failed = store
        .settle(&p, b.id, "agent-3", &Outcome::failed("run r2 has no trainer"))
        .expect("settle");
    assert_eq!(
        (failed.state, failed.message.as_deref()),
        (RequestState::Failed, Some("run r2 has no trainer"))
    );
    assert_eq!(
        store.claim(&p, "agent-3", &RequestKind::ALL).expect("claim").map(|r| r.id),
        Some(c.id)
    );
    assert_eq!(
        store.claim(&p, "agent-3", &RequestKind::ALL).expect("claim"),
        None,
        "nothing pending"
    );
    assert_eq!(
        store.claim(&pn("team/q"), "agent-3", &RequestKind::ALL).expect("claim").map(|r| r.id),
        Some(other.id)
    );

    // An agent with no free slot claims only what it carries out at once.
    let resume = store.ask(&p, &ask(RequestKind::Resume, "r4")).expect("ask");
    let stop = store.ask(&p, &ask(RequestKind::Stop, "r5")).expect("ask");
    let at_once = [RequestKind::Stop, RequestKind::Delete];
    assert_eq!(store.claim(&p, "agent-4", &at_once).expect("claim").map(|r| r.id), Some(stop.id));
    assert_eq!(store.claim(&p, "agent-4", &at_once).expect("claim"), None, "a resume is left");
    assert_eq!(store.claim(&p, "agent-4", &[]).expect("claim"), None, "no kind asked for");
    assert_eq!(
        store.claim(&p, "agent-4", &RequestKind::ALL).expect("claim").map(|r| r.id),
        Some(resume.id)
    );
}

/// Two handles claim at once: every request is claimed exactly once.
fn two_agents_never_claim_the_same_request(a: Arc<dyn RequestStore>, b: Arc<dyn RequestStore>) {
    let p = pn("team/race");
    let mut asked = BTreeSet::new();
    for i in 0..60 {
        asked.insert(a.ask(&p, &ask(RequestKind::Stop, &format!("r{i}"))).expect("ask").id);
    }
    let take = |store: Arc<dyn RequestStore>, agent: &'static str| {
        let p = p.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            while let Some(r) = store.claim(&p, agent, &RequestKind::ALL).expect("claim") {
                got.push(r.id);
            }
            got
        })
    };
    let (x, y) = (take(a, "x"), take(b, "y"));
    let (x, y) = (x.join().expect("x"), y.join().expect("y"));
    let mut all: Vec<i64> = x.iter().chain(&y).copied().collect();
    all.sort_unstable();
    assert_eq!(all.len(), 60, "x took {}, y took {}", x.len(), y.len());
    assert_eq!(all.into_iter().collect::<BTreeSet<_>>(), asked, "each once");
}

/// A sweep's trials: checked, kept with their sweep, claimed as any request; cancelling
/// fails the pending ones of that sweep only.
fn trials_belong_to_their_sweep_and_cancel_together(store: &dyn RequestStore) {
    let p = pn("team/sweeps");
    let run = |s: &str| RunId::parse(s).expect("run id");
    let bad = |r: Result<NewRequest, goodseed_store::requests::BadRequest>| r.expect_err("bad").0;
    assert!(bad(NewRequest::trial("", run("s-1"), "{}", "sweep")).contains("needs its sweep"));
    assert!(bad(NewRequest::trial("s", run("s-1"), "[1]", "sweep")).contains("JSON object"));
    let mut stray = ask(RequestKind::Stop, "r1");
    stray.sweep = Some("s".into());
    assert!(reason(store.ask(&p, &stray).expect_err("sweep")).contains("belongs to no sweep"));
    let mut no_config = NewRequest::trial("s", run("s-1"), "{}", "sweep").expect("trial");
    no_config.config_patch = None;
    assert!(reason(store.ask(&p, &no_config).expect_err("config")).contains("needs its config"));

    let trial = |sweep: &str, n: u32| {
        let t = NewRequest::trial(sweep, run(&format!("{sweep}-{n}")), r#"{"lr": 0.1}"#, "sweep")
            .expect("trial");
        store.ask(&p, &t).expect("ask")
    };
    let (a1, a2, a3, b1) = (trial("a", 1), trial("a", 2), trial("a", 3), trial("b", 1));
    assert_eq!((a1.kind, a1.sweep.as_deref()), (RequestKind::Trial, Some("a")));
    assert_eq!(a1.config_patch.as_deref(), Some(r#"{"lr": 0.1}"#));
    let claimed = store.claim(&p, "agent", &RequestKind::ALL).expect("claim").expect("one");
    assert_eq!(claimed.id, a1.id);
    assert_eq!(store.cancel_sweep(&p, "a", "the sweep was cancelled").expect("cancel"), 2);
    let state = |id| store.get(&p, id).expect("get").expect("kept");
    for id in [a2.id, a3.id] {
        let r = state(id);
        assert_eq!(
            (r.state, r.message.as_deref()),
            (RequestState::Failed, Some("the sweep was cancelled"))
        );
        assert!(r.settled_at.is_some());
    }
    assert_eq!(state(a1.id).state, RequestState::Claimed, "a claimed trial is its agent's");
    assert_eq!(state(b1.id).state, RequestState::Pending, "another sweep's stays");
    assert_eq!(store.cancel_sweep(&p, "a", "again").expect("cancel"), 0);
    assert_eq!(
        store.claim(&p, "agent", &RequestKind::ALL).expect("claim").map(|r| r.id),
        Some(b1.id)
    );
}

/// Saved configs: kept by name per project, replaced under the same name, refused with
/// the reason, deleted.
fn saved_configs_are_kept_by_name(store: &dyn RequestStore) {
    let p = pn("team/presets");
    let run = RunId::parse("r1").expect("run id");
    for (name, config, why) in [
        ("", "{}", "1 to 100 letters"),
        ("has space", "{}", "1 to 100 letters"),
        ("ok", "[1]", "must be a JSON object"),
        ("ok", "{lr", "not JSON"),
    ] {
        let err = reason(store.save_config(&p, name, config, None, "ana").expect_err(name));
        assert!(err.contains(why), "{name:?} {config:?}: {err}");
    }
    let fast = store.save_config(&p, "fast", r#"{"lr": 0.1}"#, Some(&run), "ana").expect("save");
    assert_eq!((fast.name.as_str(), fast.from_run.as_deref()), ("fast", Some("r1")));
    store.save_config(&p, "base.v2", r#"{"lr": 0.01, "epochs": 5}"#, None, "bo").expect("save");
    let again = store.save_config(&p, "fast", r#"{"lr": 0.2}"#, None, "bo").expect("replace");
    assert_eq!((again.config.as_str(), again.from_run), (r#"{"lr": 0.2}"#, None));
    let names: Vec<String> =
        store.saved_configs(&p).expect("list").into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["base.v2", "fast"]);
    assert_eq!(store.saved_configs(&pn("team/other")).expect("list"), []);
    assert_eq!(store.saved_config(&p, "fast").expect("get").map(|c| c.saved_by), Some("bo".into()));
    assert!(store.delete_saved_config(&p, "fast").expect("delete"));
    assert!(!store.delete_saved_config(&p, "fast").expect("delete"), "gone");
    assert_eq!(store.saved_config(&p, "fast").expect("get"), None);
}

/// Views: kept by name per project, replaced under the same name, refused with the
/// reason, deleted.
fn views_are_kept_by_name(store: &dyn RequestStore, p: &ProjectName) {
    for (name, layout, why) in [
        ("", "{}", "1 to 100 letters"),
        ("a/b", "{}", "1 to 100 letters"),
        ("ok", "[]", "must be a JSON object"),
        ("ok", "{", "not JSON"),
    ] {
        let err = reason(store.save_view(p, name, layout, "ana").expect_err(name));
        assert!(err.contains(why), "{name:?} {layout:?}: {err}");
    }
    let big = format!(r#"{{"query": "{}"}}"#, "x".repeat(goodseed_store::requests::MAX_VIEW));
    assert!(reason(store.save_view(p, "big", &big, "ana").expect_err("big")).contains("at most"));
    let best =
        store.save_view(p, "best-runs", r#"{"query": "sort=s%3Amax"}"#, "ana").expect("save");
    assert_eq!((best.name.as_str(), best.saved_by.as_str()), ("best-runs", "ana"));
    store.save_view(p, "all", r#"{"query": ""}"#, "bo").expect("save");
    store.save_view(p, "best-runs", r#"{"query": "group=lr"}"#, "bo").expect("replace");
    let views = store.views(p).expect("list");
    let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["all", "best-runs"]);
    assert_eq!(
        (views[1].layout.as_str(), views[1].saved_by.as_str()),
        (r#"{"query": "group=lr"}"#, "bo")
    );
    assert_eq!(store.views(&pn("team/elsewhere")).expect("list"), []);
    assert!(store.delete_view(p, "all").expect("delete"));
    assert!(!store.delete_view(p, "all").expect("delete"), "gone");
    assert_eq!(store.views(p).expect("list").len(), 1);
}

#[test]
fn sqlite_requests() {
    let dir = tempfile::tempdir().expect("dir");
    requests_are_kept_claimed_and_settled(&SqliteRequestStore::in_data_dir(dir.path()));
    trials_belong_to_their_sweep_and_cancel_together(&SqliteRequestStore::in_data_dir(dir.path()));
    saved_configs_are_kept_by_name(&SqliteRequestStore::in_data_dir(dir.path()));
    views_are_kept_by_name(&SqliteRequestStore::in_data_dir(dir.path()), &pn("team/views"));
    two_agents_never_claim_the_same_request(
        Arc::new(SqliteRequestStore::in_data_dir(dir.path())),
        Arc::new(SqliteRequestStore::in_data_dir(dir.path())),
    );
}

#[test]
fn postgres_requests() {
    let url = goodseed_testkit::postgres::shared().database();
    let store = goodseed_postgres::PgStore::connect(&url).expect("connect");
    requests_are_kept_claimed_and_settled(&goodseed_postgres::PgRequestStore::of(&store));
    trials_belong_to_their_sweep_and_cancel_together(&goodseed_postgres::PgRequestStore::of(
        &store,
    ));
    // The cluster is shared by the tests: a project of this test's own.
    let views = pn(&format!("team/views-{}", std::process::id()));
    views_are_kept_by_name(&goodseed_postgres::PgRequestStore::of(&store), &views);
    let other = goodseed_postgres::PgStore::connect(&url).expect("connect");
    two_agents_never_claim_the_same_request(
        Arc::new(goodseed_postgres::PgRequestStore::of(&store)),
        Arc::new(goodseed_postgres::PgRequestStore::of(&other)),
    );
}

/// A requests file made before sweeps (no `sweep` column) is brought up to date when it
/// is opened, its requests kept.
#[test]
fn a_requests_file_from_before_sweeps_is_upgraded() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join(".goodseed-server/requests.sqlite");
    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute_batch(
        "CREATE TABLE requests (id INTEGER PRIMARY KEY AUTOINCREMENT, project TEXT NOT NULL,
             kind TEXT NOT NULL, run_id TEXT NOT NULL, config_patch TEXT, checkpoint TEXT,
             state TEXT NOT NULL, asked_by TEXT NOT NULL, asked_at TEXT NOT NULL,
             claimed_by TEXT, claimed_at TEXT, settled_at TEXT, message TEXT, result_run TEXT);
         INSERT INTO requests (project, kind, run_id, state, asked_by, asked_at)
             VALUES ('team/p', 'stop', 'r1', 'pending', 'ana', '2026-12-01T00:00:00+00:00');",
    )
    .expect("old schema");
    drop(conn);
    let store = SqliteRequestStore::in_data_dir(dir.path());
    let old = store.list(&pn("team/p")).expect("list");
    assert_eq!((old.len(), old[0].sweep.as_deref()), (1, None));
    let t = NewRequest::trial("s", RunId::parse("s-1").expect("id"), "{}", "sweep").expect("trial");
    assert_eq!(store.ask(&pn("team/p"), &t).expect("ask").sweep.as_deref(), Some("s"));
}
