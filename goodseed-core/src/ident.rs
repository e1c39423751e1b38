//! Validated identifiers: run ids, project names, field paths and run display names.
//!
//! Each type has a `parse` that is the only way to build it, so a value of the type is
//! always valid. Errors name the kind of identifier, the offending input and the rule
//! it broke.

use std::fmt;

/// The longest run id 0.4.0 accepts, in characters.
pub const MAX_RUN_ID_LEN: usize = 128;
/// The longest project name we accept, in characters.
pub const MAX_PROJECT_NAME_LEN: usize = 256;
/// The longest single project-name segment, in bytes (a directory name on disk).
pub const MAX_PROJECT_SEGMENT_BYTES: usize = 255;
/// The longest field path we accept, in characters.
pub const MAX_FIELD_PATH_LEN: usize = 1024;
/// The longest run display name 0.4.0 accepts, in characters.
pub const MAX_RUN_NAME_LEN: usize = 200;

/// Which identifier an [`IdentError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentKind {
    /// A run id (`bold-falcon`).
    RunId,
    /// A project name (`workspace/project`).
    ProjectName,
    /// A config or series path (`train/loss`).
    FieldPath,
    /// A run display name.
    RunName,
}

impl fmt::Display for IdentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdentKind::RunId => "run id",
            IdentKind::ProjectName => "project name",
            IdentKind::FieldPath => "field path",
            IdentKind::RunName => "run name",
        })
    }
}

/// The rule an identifier broke.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentProblem {
    /// The identifier is empty (after normalisation, for field paths).
    Empty,
    /// The identifier is longer than allowed.
    TooLong {
        /// The limit.
        max: usize,
        /// The length found.
        len: usize,
    },
    /// A character that is not allowed here.
    BadChar {
        /// The character.
        ch: char,
        /// Its position, counted in characters from 0.
        position: usize,
    },
    /// A run id must start and end with a letter or a digit.
    BadEdge,
    /// A project name segment that is empty, `.` or `..`, or too long.
    BadSegment {
        /// The segment as written.
        segment: String,
    },
}

impl fmt::Display for IdentProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentProblem::Empty => f.write_str("it is empty"),
            IdentProblem::TooLong { max, len } => {
                write!(f, "it is {len} characters long, the limit is {max}")
            }
            IdentProblem::BadChar { ch, position } => {
                write!(f, "character {ch:?} at position {position} is not allowed")
            }
            IdentProblem::BadEdge => f.write_str("it must start and end with a letter or digit"),
            IdentProblem::BadSegment { segment } if segment.is_empty() => {
                f.write_str("it has an empty segment (leading, trailing or doubled '/')")
            }
            IdentProblem::BadSegment { segment } if segment == "." || segment == ".." => {
                write!(f, "segment {segment:?} is not allowed")
            }
            IdentProblem::BadSegment { segment } => {
                write!(f, "segment {segment:?} is longer than {MAX_PROJECT_SEGMENT_BYTES} bytes")
            }
        }
    }
}

/// An identifier that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {shown:?}: {problem}", shown = shorten(input))]
pub struct IdentError {
    /// Which identifier.
    pub kind: IdentKind,
    /// The input that was refused.
    pub input: String,
    /// What was wrong with it.
    pub problem: IdentProblem,
}

impl IdentError {
    fn new(kind: IdentKind, input: &str, problem: IdentProblem) -> Self {
        IdentError { kind, input: input.to_owned(), problem }
    }
}

/// Keeps error messages readable when the input is huge.
fn shorten(input: &str) -> String {
    const KEEP: usize = 80;
    if input.chars().count() <= KEEP {
        input.to_owned()
    } else {
        let head: String = input.chars().take(KEEP).collect();
        format!("{head}…")
    }
}

/// True for C0 controls, DEL and C1 controls.
fn is_control(ch: char) -> bool {
    matches!(ch as u32, 0x00..=0x1F | 0x7F..=0x9F)
}

/// True for characters that can make a label look like something else: bidirectional
/// overrides and isolates, and zero-width formatting characters.
fn is_spoofing(ch: char) -> bool {
    matches!(ch as u32, 0x202A..=0x202E | 0x2066..=0x2069 | 0x200B..=0x200F | 0xFEFF)
}

fn check_len(kind: IdentKind, input: &str, max: usize) -> Result<(), IdentError> {
    let len = input.chars().count();
    if len > max {
        return Err(IdentError::new(kind, input, IdentProblem::TooLong { max, len }));
    }
    Ok(())
}

fn check_chars(kind: IdentKind, input: &str, bad: impl Fn(char) -> bool) -> Result<(), IdentError> {
    match input.chars().enumerate().find(|&(_, ch)| bad(ch)) {
        Some((position, ch)) => {
            Err(IdentError::new(kind, input, IdentProblem::BadChar { ch, position }))
        }
        None => Ok(()),
    }
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdentError;
            fn from_str(s: &str) -> Result<Self, IdentError> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

/// A run id: ASCII letters, digits, `-` and `_`, starting and ending with a letter or
/// digit, at most [`MAX_RUN_ID_LEN`] characters. It names the run's file, so it can
/// never hold a path separator.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(String);
string_newtype!(RunId);

impl RunId {
    /// Validates a run id.
    ///
    /// ```
    /// use goodseed_core::RunId;
    /// assert!(RunId::parse("bold-falcon-2").is_ok());
    /// assert!(RunId::parse("../etc").is_err());
    /// ```
    pub fn parse(input: &str) -> Result<RunId, IdentError> {
        let kind = IdentKind::RunId;
        if input.is_empty() {
            return Err(IdentError::new(kind, input, IdentProblem::Empty));
        }
        check_len(kind, input, MAX_RUN_ID_LEN)?;
        check_chars(kind, input, |ch| !(ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'))?;
        let edge_ok = |ch: Option<char>| ch.is_some_and(|c| c.is_ascii_alphanumeric());
        if !edge_ok(input.chars().next()) || !edge_ok(input.chars().last()) {
            return Err(IdentError::new(kind, input, IdentProblem::BadEdge));
        }
        Ok(RunId(input.to_owned()))
    }
}

/// A project name: one or more `/`-separated segments (`workspace/project`). No empty,
/// `.` or `..` segment, no leading `/`, no backslash or control character, at most
/// [`MAX_PROJECT_NAME_LEN`] characters. Each segment is a directory on disk, so a valid
/// project name can never leave the projects directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectName(String);
string_newtype!(ProjectName);

impl ProjectName {
    /// Validates a project name.
    ///
    /// ```
    /// use goodseed_core::ProjectName;
    /// assert!(ProjectName::parse("team/vision").is_ok());
    /// assert!(ProjectName::parse("team/../etc").is_err());
    /// ```
    pub fn parse(input: &str) -> Result<ProjectName, IdentError> {
        let kind = IdentKind::ProjectName;
        if input.is_empty() {
            return Err(IdentError::new(kind, input, IdentProblem::Empty));
        }
        check_len(kind, input, MAX_PROJECT_NAME_LEN)?;
        check_chars(kind, input, |ch| is_control(ch) || ch == '\\')?;
        for segment in input.split('/') {
            if segment.is_empty()
                || segment == "."
                || segment == ".."
                || segment.len() > MAX_PROJECT_SEGMENT_BYTES
            {
                return Err(IdentError::new(
                    kind,
                    input,
                    IdentProblem::BadSegment { segment: segment.to_owned() },
                ));
            }
        }
        Ok(ProjectName(input.to_owned()))
    }

    /// The `/`-separated segments, each one directory level on disk.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

/// A config or series path such as `train/loss`. Leading and trailing `/` are stripped
/// as 0.4.0 does; the result is never empty, holds no control character and is at most
/// [`MAX_FIELD_PATH_LEN`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(String);
string_newtype!(FieldPath);

impl FieldPath {
    /// Normalises and validates a field path.
    ///
    /// ```
    /// use goodseed_core::FieldPath;
    /// assert_eq!(FieldPath::parse("/train/loss/").unwrap().as_str(), "train/loss");
    /// assert!(FieldPath::parse("///").is_err());
    /// ```
    pub fn parse(input: &str) -> Result<FieldPath, IdentError> {
        let kind = IdentKind::FieldPath;
        let trimmed = input.trim_matches('/');
        if trimmed.is_empty() {
            return Err(IdentError::new(kind, input, IdentProblem::Empty));
        }
        check_len(kind, trimmed, MAX_FIELD_PATH_LEN)?;
        check_chars(kind, trimmed, is_control)?;
        Ok(FieldPath(trimmed.to_owned()))
    }
}

/// A run's display name (0.4.0's `name`, shown in the UI as `sys/name`): at most
/// [`MAX_RUN_NAME_LEN`] characters, with no control, bidirectional-override or
/// zero-width character that could make one run look like another.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunName(String);
string_newtype!(RunName);

impl RunName {
    /// Validates a display name.
    ///
    /// ```
    /// use goodseed_core::RunName;
    /// assert!(RunName::parse("lr=3e-4, wide").is_ok());
    /// assert!(RunName::parse("evil\u{202E}gnp.exe").is_err());
    /// ```
    pub fn parse(input: &str) -> Result<RunName, IdentError> {
        let kind = IdentKind::RunName;
        check_len(kind, input, MAX_RUN_NAME_LEN)?;
        check_chars(kind, input, |ch| is_control(ch) || is_spoofing(ch))?;
        Ok(RunName(input.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: fmt::Debug>(result: Result<T, IdentError>, expect: &str) {
        let got = match result {
            Ok(v) => format!("ok {v:?}"),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, expect);
    }

    #[test]
    fn run_ids() {
        check(RunId::parse("bold-falcon"), r#"ok RunId("bold-falcon")"#);
        check(RunId::parse("a"), r#"ok RunId("a")"#);
        check(RunId::parse("A_1-b"), r#"ok RunId("A_1-b")"#);
        check(RunId::parse(""), r#"invalid run id "": it is empty"#);
        check(
            RunId::parse("-lead"),
            r#"invalid run id "-lead": it must start and end with a letter or digit"#,
        );
        check(
            RunId::parse("trail_"),
            r#"invalid run id "trail_": it must start and end with a letter or digit"#,
        );
        check(
            RunId::parse("a/b"),
            r#"invalid run id "a/b": character '/' at position 1 is not allowed"#,
        );
        check(
            RunId::parse(".."),
            r#"invalid run id "..": character '.' at position 0 is not allowed"#,
        );
        check(
            RunId::parse("é"),
            r#"invalid run id "é": character 'é' at position 0 is not allowed"#,
        );
        check(
            RunId::parse("a\0b"),
            r#"invalid run id "a\0b": character '\0' at position 1 is not allowed"#,
        );
        assert!(RunId::parse(&"a".repeat(128)).is_ok());
        check(
            RunId::parse(&"a".repeat(129)),
            &format!(
                "invalid run id {:?}: it is 129 characters long, the limit is 128",
                format!("{}…", "a".repeat(80))
            ),
        );
    }

    #[test]
    fn project_names() {
        check(ProjectName::parse("default"), r#"ok ProjectName("default")"#);
        check(ProjectName::parse("ws/proj"), r#"ok ProjectName("ws/proj")"#);
        check(ProjectName::parse("a b/ü.x"), r#"ok ProjectName("a b/ü.x")"#);
        check(ProjectName::parse(""), r#"invalid project name "": it is empty"#);
        check(
            ProjectName::parse("/abs"),
            r#"invalid project name "/abs": it has an empty segment (leading, trailing or doubled '/')"#,
        );
        check(
            ProjectName::parse("a//b"),
            r#"invalid project name "a//b": it has an empty segment (leading, trailing or doubled '/')"#,
        );
        check(
            ProjectName::parse("a/"),
            r#"invalid project name "a/": it has an empty segment (leading, trailing or doubled '/')"#,
        );
        check(
            ProjectName::parse("a/../b"),
            r#"invalid project name "a/../b": segment ".." is not allowed"#,
        );
        check(ProjectName::parse("."), r#"invalid project name ".": segment "." is not allowed"#);
        check(
            ProjectName::parse("a\\..\\b"),
            r#"invalid project name "a\\..\\b": character '\\' at position 1 is not allowed"#,
        );
        check(
            ProjectName::parse("a\nb"),
            r#"invalid project name "a\nb": character '\n' at position 1 is not allowed"#,
        );
        assert!(ProjectName::parse(&"x".repeat(257)).is_err());
        assert!(ProjectName::parse(&"x".repeat(256)).is_err(), "one segment over 255 bytes");
        let p = ProjectName::parse("a/b/c").expect("valid");
        assert_eq!(p.segments().collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn field_paths() {
        check(FieldPath::parse("train/loss"), r#"ok FieldPath("train/loss")"#);
        check(FieldPath::parse("//x//"), r#"ok FieldPath("x")"#);
        check(FieldPath::parse("a//b"), r#"ok FieldPath("a//b")"#);
        check(FieldPath::parse("ünï code"), r#"ok FieldPath("ünï code")"#);
        check(FieldPath::parse(""), r#"invalid field path "": it is empty"#);
        check(FieldPath::parse("/"), r#"invalid field path "/": it is empty"#);
        check(
            FieldPath::parse("a\tb"),
            r#"invalid field path "a\tb": character '\t' at position 1 is not allowed"#,
        );
        assert!(FieldPath::parse(&"p".repeat(1024)).is_ok());
        assert!(FieldPath::parse(&"p".repeat(1025)).is_err());
    }

    #[test]
    fn run_names() {
        check(RunName::parse(""), r#"ok RunName("")"#);
        check(RunName::parse("MLP 64x64 (lr=0.01)"), r#"ok RunName("MLP 64x64 (lr=0.01)")"#);
        check(
            RunName::parse("a\u{200B}b"),
            r#"invalid run name "a\u{200b}b": character '\u{200b}' at position 1 is not allowed"#,
        );
        check(
            RunName::parse("x\u{85}"),
            r#"invalid run name "x\u{85}": character '\u{85}' at position 1 is not allowed"#,
        );
        check(
            RunName::parse("\u{2067}"),
            r#"invalid run name "\u{2067}": character '\u{2067}' at position 0 is not allowed"#,
        );
        assert!(RunName::parse(&"é".repeat(200)).is_ok());
        assert!(RunName::parse(&"é".repeat(201)).is_err());
    }
}
