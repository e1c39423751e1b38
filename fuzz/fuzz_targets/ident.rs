//! Identifier parsing (goodseed-core): every validated identifier is the text it was
//! given (or, for a field path, a fixed point of its normalisation), and a run file's
//! path built from a valid project and run id never leaves the projects directory.

#![no_main]

use std::path::{Component, Path};

use goodseed_core::{FieldPath, ProjectName, RunId, RunName, RunRef};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let run = RunId::parse(text);
    if let Ok(run) = &run {
        assert_eq!(run.as_str(), text);
        assert!(text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
    let project = ProjectName::parse(text);
    if let Ok(project) = &project {
        assert_eq!(project.as_str(), text);
        let id = RunId::parse("r").expect("a valid run id");
        stays_under_root(project, &id);
    }
    if let Ok(path) = FieldPath::parse(text) {
        assert!(!path.as_str().starts_with('/') && !path.as_str().ends_with('/'));
        assert_eq!(FieldPath::parse(path.as_str()).as_ref(), Ok(&path));
    }
    if let Ok(name) = RunName::parse(text) {
        assert_eq!(name.as_str(), text);
    }
    if let Ok(r) = RunRef::parse(text) {
        assert_eq!(format!("{}/{}", r.project, r.run_id), text);
        stays_under_root(&r.project, &r.run_id);
    }
    // A project and run id glued by the first `/` of the input, as URLs join them.
    if let Some((p, r)) = text.split_once('/')
        && let (Ok(p), Ok(r)) = (ProjectName::parse(p), RunId::parse(r))
    {
        stays_under_root(&p, &r);
    }
});

/// The run's file is `<root>/<segments>/runs/<id>.sqlite` with only normal components.
fn stays_under_root(project: &ProjectName, run: &RunId) {
    let root = Path::new("/data/projects");
    let path = goodseed_store::run_file_path(root, project, run);
    let rest = path.strip_prefix(root).expect("under the root");
    assert!(rest.components().all(|c| matches!(c, Component::Normal(_))), "{path:?}");
    let parts: Vec<_> = rest.components().collect();
    assert_eq!(parts.len(), project.segments().count() + 2, "{path:?}");
    assert_eq!(path.file_name().and_then(|n| n.to_str()), Some(format!("{run}.sqlite").as_str()));
}
