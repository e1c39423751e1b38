//! Where the data lives: the goodseed home and its projects directory, found as goodseed
//! 0.4.0 finds them, and paths shown the way 0.4.0 shows them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The environment variable naming goodseed's home (the projects directory is its
/// `projects/` subdirectory), as in 0.4.0.
pub(crate) const GOODSEED_HOME: &str = "GOODSEED_HOME";

/// The projects directory: `dir` when given, else `$GOODSEED_HOME/projects`, else
/// `~/.goodseed/projects`. Empty values count as absent, as in 0.4.0.
pub(crate) fn projects_dir(dir: Option<OsString>) -> anyhow::Result<PathBuf> {
    resolve(dir, std::env::var_os(GOODSEED_HOME), || {
        directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf())
    })
}

fn resolve(
    dir: Option<OsString>,
    goodseed_home: Option<OsString>,
    user_home: impl FnOnce() -> Option<PathBuf>,
) -> anyhow::Result<PathBuf> {
    if let Some(dir) = dir.filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(home) = goodseed_home.filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home).join("projects"));
    }
    let home = user_home().context(
        "cannot find your home directory to locate ~/.goodseed/projects; \
         set GOODSEED_HOME or pass the data directory",
    )?;
    Ok(home.join(".goodseed").join("projects"))
}

/// The goodseed home (the parent of the projects directory): `home` when given, else
/// `$GOODSEED_HOME`, else `~/.goodseed`. An empty `GOODSEED_HOME` counts as absent.
pub(crate) fn home_dir(home: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    resolve_home(home, std::env::var_os(GOODSEED_HOME), || {
        directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf())
    })
}

fn resolve_home(
    home: Option<PathBuf>,
    goodseed_home: Option<OsString>,
    user_home: impl FnOnce() -> Option<PathBuf>,
) -> anyhow::Result<PathBuf> {
    if let Some(home) = home {
        return Ok(home);
    }
    if let Some(home) = goodseed_home.filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    let home = user_home().context(
        "cannot find your home directory to locate ~/.goodseed; set GOODSEED_HOME or pass --home",
    )?;
    Ok(home.join(".goodseed"))
}

/// A path as Python's `str(pathlib.PurePosixPath(p))` writes it: repeated `/` and `.`
/// segments dropped, no trailing `/`, `.` for an empty path, and a leading `//` kept
/// (POSIX leaves its meaning to the system). 0.4.0 prints paths this way.
pub(crate) fn python_path_display(path: &Path) -> String {
    let text = path.to_string_lossy();
    let root = if text.starts_with("//") && !text.starts_with("///") {
        "//"
    } else if text.starts_with('/') {
        "/"
    } else {
        ""
    };
    let parts: Vec<&str> = text.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    let joined = format!("{root}{}", parts.join("/"));
    if joined.is_empty() { ".".to_owned() } else { joined }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_resolve(dir: &str, goodseed_home: Option<&str>, user_home: Option<&str>, want: &str) {
        let got = resolve(Some(dir.into()), goodseed_home.map(Into::into), || {
            user_home.map(PathBuf::from)
        });
        match got {
            Ok(path) => assert_eq!(path, Path::new(want), "{dir:?} {goodseed_home:?}"),
            Err(e) => assert_eq!(format!("error: {e:#}"), want),
        }
    }

    #[test]
    fn finds_the_projects_directory_as_0_4_0_does() {
        check_resolve("data", Some("/gs"), Some("/home/u"), "data");
        check_resolve("", Some("/gs"), Some("/home/u"), "/gs/projects");
        check_resolve("", Some("rel"), Some("/home/u"), "rel/projects");
        check_resolve("", Some(""), Some("/home/u"), "/home/u/.goodseed/projects");
        check_resolve("", None, Some("/home/u"), "/home/u/.goodseed/projects");
        check_resolve(
            "",
            None,
            None,
            "error: cannot find your home directory to locate ~/.goodseed/projects; \
             set GOODSEED_HOME or pass the data directory",
        );
    }

    #[test]
    fn finds_the_home_directory() {
        let check = |home: Option<&str>, goodseed_home: Option<&str>, user: Option<&str>| {
            resolve_home(home.map(PathBuf::from), goodseed_home.map(Into::into), || {
                user.map(PathBuf::from)
            })
            .map_or_else(|e| format!("error: {e:#}"), |p| p.display().to_string())
        };
        assert_eq!(check(Some("h"), Some("/gs"), Some("/home/u")), "h");
        assert_eq!(check(None, Some("/gs"), Some("/home/u")), "/gs");
        assert_eq!(check(None, Some(""), Some("/home/u")), "/home/u/.goodseed");
        assert_eq!(check(None, None, Some("/home/u")), "/home/u/.goodseed");
        assert_eq!(
            check(None, None, None),
            "error: cannot find your home directory to locate ~/.goodseed; \
             set GOODSEED_HOME or pass --home"
        );
    }

    #[test]
    fn shows_paths_as_pathlib_does() {
        let cases = [
            ("", "."),
            (".", "."),
            ("./", "."),
            ("./x", "x"),
            ("x/./y/", "x/y"),
            ("a//b///c", "a/b/c"),
            ("a/../b", "a/../b"),
            ("/", "/"),
            ("/tmp/x/", "/tmp/x"),
            ("//srv/x", "//srv/x"),
            ("///srv/x", "/srv/x"),
            ("//", "//"),
            ("/./", "/"),
        ];
        for (input, want) in cases {
            assert_eq!(python_path_display(Path::new(input)), want, "{input:?}");
        }
    }
}
