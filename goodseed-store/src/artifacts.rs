//! What a run produced, kept beside what it logged: checkpoints, artifacts and file
//! series (images, sounds, any file at a step), part of the store's port.
//!
//! A file is kept once per run as a blob named by its SHA-256 ([`ContentHash`]); the
//! run keeps a record of each ([`Artifact`]) in a table of ours that goodseed 0.4.0
//! ignores. The bytes are copied by a [`BlobSink`] that the run's writer hands out
//! ([`crate::RunWriter::blobs`]), on the caller's thread, before the record goes into a
//! [`crate::WriteBatch`]: a copy that never finished is never registered. Readers list
//! the records ([`crate::RunReader::artifacts`]) and open a blob by its hash
//! ([`crate::RunReader::open_blob`]), never by a path.

use std::collections::BTreeMap;
use std::path::Path;

use goodseed_core::{FieldPath, Step};

use crate::{Result, StoreError};

/// What an artifact is to its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArtifactKind {
    /// A model checkpoint at a step, with the metrics it was saved at.
    Checkpoint,
    /// A named file of the run (predictions, a plot, a config).
    Artifact,
    /// One file of a file series at a step (an image, a sound, any file).
    File,
}

impl ArtifactKind {
    /// `checkpoint`, `artifact` or `file`, as kept and served.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Checkpoint => "checkpoint",
            ArtifactKind::Artifact => "artifact",
            ArtifactKind::File => "file",
        }
    }

    /// The kind of its [`ArtifactKind::as_str`] text.
    pub fn parse(text: &str) -> Option<ArtifactKind> {
        match text {
            "checkpoint" => Some(ArtifactKind::Checkpoint),
            "artifact" => Some(ArtifactKind::Artifact),
            "file" => Some(ArtifactKind::File),
            _ => None,
        }
    }

    /// Whether artifacts of this kind sit at a step.
    pub fn has_step(self) -> bool {
        !matches!(self, ArtifactKind::Artifact)
    }
}

/// A blob's name: the SHA-256 of its bytes, 64 lowercase hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(String);

impl ContentHash {
    /// Checks a hash's text: exactly 64 lowercase hexadecimal digits, so it can name a
    /// file and nothing else.
    pub fn parse(text: &str) -> Option<ContentHash> {
        (text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| ContentHash(text.to_owned()))
    }

    /// The hash of 32 digest bytes.
    pub fn from_digest(digest: &[u8]) -> ContentHash {
        use std::fmt::Write;
        let mut s = String::with_capacity(64);
        for b in digest {
            let _ = write!(s, "{b:02x}");
        }
        ContentHash(s)
    }

    /// The 64 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A file as a [`BlobSink`] kept it (or, for a file referenced in place, as it was read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    /// Its SHA-256.
    pub hash: ContentHash,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type, from its first bytes (see [`goodseed_core::media`]).
    pub media_type: String,
    /// An image's width in pixels.
    pub width: Option<u32>,
    /// An image's height in pixels.
    pub height: Option<u32>,
}

/// The longest artifact name, in characters.
pub const MAX_ARTIFACT_NAME_LEN: usize = 1024;

/// A record to add to a run (through [`crate::WriteBatch::artifact`]). Adding one with
/// the kind, name and step of an existing one replaces it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewArtifact {
    /// What it is.
    pub kind: ArtifactKind,
    /// Its name: a checkpoint's or an artifact's, or a file series' path.
    pub name: String,
    /// Its step (checkpoints and files; `None` for artifacts).
    pub step: Option<Step>,
    /// The file.
    pub blob: BlobRef,
    /// A checkpoint's metrics when it was saved (NaN and ±infinity kept).
    pub metrics: Vec<(String, f64)>,
    /// Where the file is on the trainer's machine when it was registered in place (not
    /// copied into the store); such a file is listed, never served.
    pub in_place: Option<String>,
}

impl NewArtifact {
    /// Checks what a store would refuse, naming the problem: an empty, overlong or
    /// control-character name, a file series name that is no field path, a step missing
    /// where the kind needs one (or given where it has none), an empty metric name.
    pub fn check(&self) -> std::result::Result<(), String> {
        check_name(self.kind, &self.name)?;
        match (self.kind.has_step(), self.step) {
            (true, None) => return Err(format!("a {} needs a step", self.kind.as_str())),
            (false, Some(_)) => return Err("an artifact has no step".into()),
            _ => {}
        }
        for (name, _) in &self.metrics {
            if name.is_empty() || name.chars().any(char::is_control) {
                return Err(format!("bad metric name {name:?} for {}", self.name));
            }
        }
        Ok(())
    }
}

/// Checks an artifact's name for its kind (see [`NewArtifact::check`]).
pub fn check_name(kind: ArtifactKind, name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err(format!("a {}'s name is empty", kind.as_str()));
    }
    if name.chars().count() > MAX_ARTIFACT_NAME_LEN {
        return Err(format!("a name longer than {MAX_ARTIFACT_NAME_LEN} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("the name {name:?} holds a control character"));
    }
    if kind == ArtifactKind::File {
        let path = FieldPath::parse(name).map_err(|e| e.to_string())?;
        if path.as_str() != name {
            return Err(format!("the file series {name:?} is not a normalised path"));
        }
    }
    Ok(())
}

/// A change to a run's records, written with its other changes in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum ArtifactChange {
    /// Removes the record of this kind, name and step (nothing when there is none); the
    /// blob goes once no record of the run names it.
    Delete {
        /// Its kind.
        kind: ArtifactKind,
        /// Its name.
        name: String,
        /// Its step (`None` for artifacts).
        step: Option<Step>,
    },
    /// Marks one checkpoint the best of the run (and no other).
    MarkBest {
        /// The checkpoint's name.
        name: String,
        /// Its step.
        step: Step,
    },
}

/// One change of a [`crate::WriteBatch`] to a run's records, applied in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ArtifactOp {
    /// Adds (or replaces) a record.
    Add(NewArtifact),
    /// Deletes one, or marks one best.
    Change(ArtifactChange),
}

/// One record of a run, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    /// Its id within the run (what the API names it by).
    pub id: i64,
    /// What it is.
    pub kind: ArtifactKind,
    /// Its name (a file series' path for files).
    pub name: String,
    /// Its step (`None` for artifacts).
    pub step: Option<f64>,
    /// The blob's hash.
    pub hash: ContentHash,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type, one of [`goodseed_core::media`]'s (anything else read back from a
    /// store is given as `application/octet-stream`).
    pub media_type: String,
    /// An image's width.
    pub width: Option<u32>,
    /// An image's height.
    pub height: Option<u32>,
    /// A checkpoint's metrics, by name.
    pub metrics: BTreeMap<String, f64>,
    /// Whether it is the run's best checkpoint.
    pub best: bool,
    /// Where it is on the trainer's machine when registered in place (then the store
    /// holds no copy and serves nothing).
    pub in_place: Option<String>,
    /// ISO 8601 time it was registered.
    pub created_at: String,
}

/// A change asked of a run's records from outside its writer (the API, the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactEdit {
    /// Removes the record (and its blob once no record of the run names it).
    Delete,
    /// Marks the checkpoint the best of its run.
    MarkBest,
}

/// A blob opened for reading.
pub trait BlobRead: std::io::Read + std::io::Seek + Send + std::fmt::Debug {}
impl<T: std::io::Read + std::io::Seek + Send + std::fmt::Debug> BlobRead for T {}

/// A blob opened by [`crate::RunReader::open_blob`].
#[derive(Debug)]
pub struct Blob {
    /// Its length in bytes.
    pub len: u64,
    /// Its bytes.
    pub reader: Box<dyn BlobRead>,
}

/// Where a run's writer keeps the files it is given: hands the bytes in under their
/// hash, on the caller's thread (a large copy never holds up the writer).
pub trait BlobSink: Send + Sync + std::fmt::Debug {
    /// Copies the file at `src` into the store under its SHA-256, telling `progress` the
    /// bytes copied so far. Nothing is kept under the hash unless every byte was copied
    /// and synced. The blob is pinned (never removed as unreferenced) until a record
    /// naming it is written or [`BlobSink::unpin`] is called.
    fn ingest(&self, src: &Path, progress: &mut dyn FnMut(u64)) -> Result<BlobRef>;

    /// Lets go of a blob [`BlobSink::ingest`] pinned that will not be registered.
    fn unpin(&self, hash: &ContentHash);

    /// How much of the blob `hash` is here: complete when the run holds it (or another
    /// run's identical file was linked to it just now), else the bytes of an unfinished
    /// upload ([`BlobSink::upload_chunk`]) kept so far.
    fn upload_state(&self, hash: &ContentHash) -> Result<UploadState>;

    /// Writes `bytes` at `offset` of an upload of a `total`-byte file named `hash`
    /// (`offset` must be what [`BlobSink::upload_state`] says was received:
    /// [`StoreError::BadRequest`] otherwise, nothing written). When the last byte
    /// arrives the whole file's SHA-256 is checked: the blob is kept (and pinned, as an
    /// ingested one) only when it matches, else the upload is dropped and the error
    /// names both hashes.
    fn upload_chunk(
        &self,
        hash: &ContentHash,
        offset: u64,
        total: u64,
        bytes: &[u8],
    ) -> Result<UploadState>;

    /// The blob `hash` as held, described under `name` (its media type told from its
    /// first bytes and the name); `None` when the run does not hold it.
    fn describe(&self, hash: &ContentHash, name: &str) -> Result<Option<BlobRef>>;

    /// The directory manifest held as `hash`, when that blob is one.
    fn tree(&self, hash: &ContentHash) -> Option<Tree>;
}

/// How much of a file a [`BlobSink`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadState {
    /// Bytes kept (the whole size once complete).
    pub received: u64,
    /// Whether the run holds the whole file.
    pub complete: bool,
}

/// The files of a directory checkpoint: each a blob of the run, by its path relative to
/// the directory (`/`-separated). Kept as a blob of its own, JSON that starts with
/// [`Tree::MAGIC`]; the record names that blob, with media type
/// [`goodseed_core::media::TREE`] and the files' total size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    /// The files, in path order.
    pub files: Vec<TreeFile>,
}

/// One file of a [`Tree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Its path within the directory: relative, `/`-separated, no `.` or `..`.
    pub path: String,
    /// Its blob.
    pub hash: ContentHash,
    /// Its size.
    pub size: u64,
}

impl Tree {
    /// How a manifest's bytes begin (what tells one from any other blob cheaply).
    pub const MAGIC: &'static [u8] = b"{\"goodseed_tree\":1,";

    /// The largest manifest read.
    pub const MAX_BYTES: u64 = 64 << 20;

    /// The manifest's bytes.
    pub fn to_json(&self) -> Vec<u8> {
        let files: Vec<serde_json::Value> = self
            .files
            .iter()
            .map(|f| serde_json::json!({"path": f.path, "sha256": f.hash.as_str(), "size": f.size}))
            .collect();
        let mut out = Tree::MAGIC.to_vec();
        out.extend_from_slice(b"\"files\":");
        out.extend_from_slice(serde_json::Value::Array(files).to_string().as_bytes());
        out.push(b'}');
        out
    }

    /// Reads a manifest, checking every path and hash (a file may hold anything).
    pub fn parse(bytes: &[u8]) -> std::result::Result<Tree, String> {
        if !bytes.starts_with(Tree::MAGIC) {
            return Err("not a goodseed directory manifest".into());
        }
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("a bad manifest: {e}"))?;
        let files = v["files"].as_array().ok_or("a manifest without files")?;
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            let path = f["path"].as_str().ok_or("a manifest file without a path")?;
            check_tree_path(path)?;
            let hash = f["sha256"]
                .as_str()
                .and_then(ContentHash::parse)
                .ok_or_else(|| format!("{path}: not a SHA-256"))?;
            let size = f["size"].as_u64().ok_or_else(|| format!("{path}: no size"))?;
            out.push(TreeFile { path: path.to_owned(), hash, size });
        }
        Ok(Tree { files: out })
    }

    /// The manifest a blob holds; `None` when it is none (told by its first bytes, so
    /// any blob may be given: a large one is not read).
    pub fn from_blob(mut blob: Blob) -> Option<Tree> {
        use std::io::Read;
        if blob.len > Tree::MAX_BYTES || blob.len < Tree::MAGIC.len() as u64 {
            return None;
        }
        let mut bytes = vec![0u8; Tree::MAGIC.len()];
        blob.reader.read_exact(&mut bytes).ok()?;
        if bytes != Tree::MAGIC {
            return None;
        }
        blob.reader.read_to_end(&mut bytes).ok()?;
        Tree::parse(&bytes).ok()
    }

    /// The files' total size.
    pub fn total(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// A path within a directory checkpoint: relative, `/`-separated, no empty, `.` or `..`
/// segment, no control character or backslash.
pub fn check_tree_path(path: &str) -> std::result::Result<(), String> {
    let bad = path.is_empty()
        || path.chars().any(|c| c.is_control() || c == '\\')
        || path.split('/').any(|s| s.is_empty() || s == "." || s == "..");
    if bad { Err(format!("{path:?} is not a relative path within the directory")) } else { Ok(()) }
}

/// A directory checkpoint opened for reading ([`crate::RunReader::open_tree`]): its
/// manifest, and its files opened one at a time (the record was checked once).
#[derive(Debug)]
pub struct TreeFiles {
    /// The files.
    pub tree: Tree,
    pub(crate) blobs: crate::blobs::BlobDir,
}

impl TreeFiles {
    /// Opens the file at `index` of [`TreeFiles::tree`].
    pub fn open(&self, index: usize) -> Result<Blob> {
        let file = self.tree.files.get(index).ok_or_else(|| StoreError::NoSuchArtifact {
            what: format!("file {index} of the directory"),
            location: self.blobs.dir().display().to_string(),
        })?;
        self.blobs.open(&file.hash)
    }
}

/// Reads a file once for its hash, size and media type, without copying it (a file
/// registered in place).
pub fn describe_file(src: &Path) -> Result<BlobRef> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(src).map_err(|e| StoreError::io("reading", src, e))?;
    let mut hasher = sha2::Sha256::new();
    let mut head = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StoreError::io("reading", src, e)),
        };
        hasher.update(&buf[..n]);
        if head.len() < goodseed_core::media::SNIFF_BYTES {
            let take = n.min(goodseed_core::media::SNIFF_BYTES - head.len());
            head.extend_from_slice(&buf[..take]);
        }
        size += n as u64;
    }
    Ok(blob_ref(ContentHash::from_digest(&hasher.finalize()), size, &head, src))
}

/// A [`BlobRef`] of a file's hash, size, first bytes and name.
pub(crate) fn blob_ref(hash: ContentHash, size: u64, head: &[u8], src: &Path) -> BlobRef {
    let name = src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let media = goodseed_core::media::sniff(head, &name);
    BlobRef {
        hash,
        size,
        media_type: media.media_type.to_owned(),
        width: media.width,
        height: media.height,
    }
}

/// A checkpoint's metrics as stored: a JSON object, non-finite values as the strings
/// `"NaN"`, `"Infinity"`, `"-Infinity"` (for backends).
pub fn metrics_json(metrics: &[(String, f64)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = metrics
        .iter()
        .map(|(k, v)| {
            let value = serde_json::Number::from_f64(*v).map_or_else(
                || serde_json::Value::String(goodseed_core::python_float_repr(*v)),
                serde_json::Value::Number,
            );
            (k.clone(), value)
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// The metrics of [`metrics_json`]'s text (anything unreadable is left out: a file may
/// hold anything).
pub fn metrics_from_json(text: &str) -> BTreeMap<String, f64> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str(text) else {
        return BTreeMap::new();
    };
    map.into_iter()
        .filter_map(|(k, v)| {
            let x = match v {
                serde_json::Value::Number(n) => n.as_f64()?,
                serde_json::Value::String(s) => match s.as_str() {
                    "nan" | "NaN" => f64::NAN,
                    "inf" | "Infinity" => f64::INFINITY,
                    "-inf" | "-Infinity" => f64::NEG_INFINITY,
                    _ => return None,
                },
                _ => return None,
            };
            Some((k, x))
        })
        .collect()
}

/// The media type to report for one read back from a store (one goodseed does not
/// give is reported as `application/octet-stream`).
pub fn known_media_type(stored: &str) -> String {
    if goodseed_core::media::is_known(stored) {
        stored.to_owned()
    } else {
        goodseed_core::media::OCTET_STREAM.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_64_lowercase_hex_digits() {
        assert!(ContentHash::parse(&"a".repeat(64)).is_some());
        assert!(ContentHash::parse(&"A".repeat(64)).is_none());
        assert!(ContentHash::parse(&"a".repeat(63)).is_none());
        assert!(ContentHash::parse(&format!("../{}", "a".repeat(61))).is_none());
        assert_eq!(ContentHash::from_digest(&[0xab; 32]).as_str(), "ab".repeat(32));
    }

    #[test]
    fn names_and_steps_are_checked() {
        let blob = BlobRef {
            hash: ContentHash::from_digest(&[0; 32]),
            size: 0,
            media_type: "application/octet-stream".into(),
            width: None,
            height: None,
        };
        let new = |kind, name: &str, step: Option<u32>| NewArtifact {
            kind,
            name: name.into(),
            step: step.map(Step::from),
            blob: blob.clone(),
            metrics: vec![],
            in_place: None,
        };
        assert!(new(ArtifactKind::Checkpoint, "model.pt", Some(3)).check().is_ok());
        assert!(new(ArtifactKind::Checkpoint, "model.pt", None).check().is_err());
        assert!(new(ArtifactKind::Artifact, "preds.csv", Some(1)).check().is_err());
        assert!(new(ArtifactKind::Artifact, "", None).check().is_err());
        assert!(new(ArtifactKind::Artifact, "a\u{7}b", None).check().is_err());
        assert!(new(ArtifactKind::File, "images/samples", Some(0)).check().is_ok());
        assert!(new(ArtifactKind::File, "/images//samples", Some(0)).check().is_err());
    }

    #[test]
    fn metrics_keep_non_finite_values() {
        let text = metrics_json(&[("loss".into(), f64::NAN), ("acc".into(), 0.5)]);
        let back = metrics_from_json(&text);
        assert!(back["loss"].is_nan());
        assert_eq!(back["acc"], 0.5);
        assert!(metrics_from_json("not json").is_empty());
    }
}
