//! Blobs on a filesystem: one directory per run holding each file once under its
//! SHA-256, `<dir>/<hash>`, and an index shared by the runs of a data directory
//! (`<index>/<hash>`, a hard link to the same bytes), so identical files of different
//! runs are kept once. A run's blob goes when no record of the run names it; the index
//! entry goes when it is the last link to its bytes.
//!
//! A copy is written to `<dir>/.tmp-<random>` while it is hashed, synced, and only then
//! renamed to its hash: a crash mid-copy leaves a temporary file that is no blob (removed
//! when a writer next opens the run, reported by `doctor` until then), never a blob with
//! half its bytes.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::Digest;

use crate::artifacts::{Blob, BlobRef, BlobSink, ContentHash, Tree, UploadState, blob_ref};
use crate::{Result, StoreError};

/// Bytes read and written at a time; the hash of one chunk runs on a second thread
/// while the next is copied.
const CHUNK: usize = 4 << 20;
/// Below this, the file is hashed on the copying thread.
const THREADED_FROM: u64 = 8 << 20;
/// The prefix of a copy in progress.
const TEMP_PREFIX: &str = ".tmp-";
/// The prefix of an upload in progress (`.part-<hash>`): kept across restarts, so an
/// upload resumes where it stopped.
const PART_PREFIX: &str = ".part-";

/// One run's blob directory, and the data directory's shared index.
#[derive(Debug)]
pub struct BlobDir {
    dir: PathBuf,
    index: Option<PathBuf>,
    /// Blobs ingested and not yet registered, by how many times: never removed as
    /// unreferenced.
    pins: Mutex<HashMap<ContentHash, usize>>,
}

impl BlobDir {
    /// The blobs of one run in `dir`, shared through `index` when given.
    pub fn new(dir: PathBuf, index: Option<PathBuf>) -> BlobDir {
        BlobDir { dir, index, pins: Mutex::new(HashMap::new()) }
    }

    /// The run's blob directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, hash: &ContentHash) -> PathBuf {
        self.dir.join(hash.as_str())
    }

    fn index_of(&self, hash: &ContentHash) -> Option<PathBuf> {
        self.index.as_ref().map(|i| i.join(hash.as_str()))
    }

    /// Opens a blob for reading: a regular file named by its hash in this directory
    /// (a symlink or anything else there is refused).
    pub fn open(&self, hash: &ContentHash) -> Result<Blob> {
        let path = self.path_of(hash);
        let missing = || StoreError::io("opening", &path, std::io::ErrorKind::NotFound.into());
        let meta = std::fs::symlink_metadata(&path).map_err(|_| missing())?;
        if !meta.file_type().is_file() {
            return Err(missing());
        }
        let file = File::open(&path).map_err(|e| StoreError::io("opening", &path, e))?;
        let opened = file.metadata().map_err(|e| StoreError::io("opening", &path, e))?;
        if !same_file(&meta, &opened) {
            return Err(missing());
        }
        Ok(Blob { len: opened.len(), reader: Box::new(file) })
    }

    /// The directory manifest kept as `hash`, when that blob is one (told by its first
    /// bytes, so any blob may be asked); `None` for any other blob or a missing one.
    pub fn read_tree(&self, hash: &ContentHash) -> Option<Tree> {
        Tree::from_blob(self.open(hash).ok()?)
    }

    /// The directory checkpoint kept as `hash`, its files to open one at a time;
    /// [`StoreError::NoSuchArtifact`] when that blob is no directory manifest.
    pub fn tree_files(&self, hash: &ContentHash) -> Result<crate::artifacts::TreeFiles> {
        let tree = self.read_tree(hash).ok_or_else(|| StoreError::NoSuchArtifact {
            what: hash.to_string(),
            location: self.dir.display().to_string(),
        })?;
        Ok(crate::artifacts::TreeFiles { tree, blobs: BlobDir::new(self.dir.clone(), None) })
    }

    /// Lets go of what a record just written pinned: its blob, and for a directory the
    /// blobs of its files.
    pub fn unpin_registered(&self, blob: &BlobRef) {
        if blob.media_type == goodseed_core::media::TREE
            && let Some(tree) = self.read_tree(&blob.hash)
        {
            for f in &tree.files {
                self.unpin(&f.hash);
            }
        }
        self.unpin(&blob.hash);
    }

    /// Every blob the run's records keep: each record's own, and the files of the
    /// directory manifests among them (`records`: each stored record's hash, and whether
    /// it is a directory).
    pub fn kept(&self, records: &[(ContentHash, bool)]) -> HashSet<ContentHash> {
        let mut out: HashSet<ContentHash> = records.iter().map(|(h, _)| h.clone()).collect();
        for (hash, tree) in records {
            if *tree && let Some(t) = self.read_tree(hash) {
                out.extend(t.files.into_iter().map(|f| f.hash));
            }
        }
        out
    }

    /// `candidates` with the files of the directory manifests among them: what may go
    /// once records naming them were deleted.
    pub fn expand(&self, candidates: &[ContentHash]) -> Vec<ContentHash> {
        let mut out = candidates.to_vec();
        for hash in candidates {
            if let Some(t) = self.read_tree(hash) {
                out.extend(t.files.into_iter().map(|f| f.hash));
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Removes the blobs of `candidates` (expanded with directory files) that `kept`
    /// does not hold, except pinned ones.
    pub fn collect(&self, candidates: &[ContentHash], kept: &HashSet<ContentHash>) {
        for hash in self.expand(candidates) {
            if !kept.contains(&hash) {
                let _ = self.remove_if_unpinned(&hash);
            }
        }
    }

    /// What is wrong with a directory checkpoint: its manifest missing or unreadable,
    /// or any of its files (missing, of another size, with `deep` not hashing to its
    /// name), or the total not the recorded size.
    pub fn check_tree(&self, hash: &ContentHash, total: u64, deep: bool) -> Vec<String> {
        if let Some(p) = self.check(hash, self.open(hash).map(|b| b.len).unwrap_or(0), deep) {
            return vec![p];
        }
        let Some(tree) = self.read_tree(hash) else {
            return vec![format!("blob {hash} is not a directory manifest")];
        };
        let mut problems: Vec<String> = tree
            .files
            .iter()
            .filter_map(|f| self.check(&f.hash, f.size, deep).map(|p| format!("{}: {p}", f.path)))
            .collect();
        if tree.total() != total {
            problems.push(format!("its files hold {} bytes, {total} recorded", tree.total()));
        }
        problems
    }

    /// Removes the blobs no name in `referenced` is, except pinned ones; returns how many
    /// went. Copies in progress are left alone.
    pub fn remove_unreferenced(&self, referenced: &HashSet<ContentHash>) -> Result<u64> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Ok(0) };
        let pins = self.pins.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Some(hash) = ContentHash::parse(&name) else { continue };
            if referenced.contains(&hash) || pins.contains_key(&hash) {
                continue;
            }
            self.remove(&hash)?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Removes one blob (if no pin holds it), and its index entry when that is the last
    /// link to the bytes.
    pub fn remove_if_unpinned(&self, hash: &ContentHash) -> Result<()> {
        if self.pins.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains_key(hash) {
            return Ok(());
        }
        self.remove(hash)
    }

    fn remove(&self, hash: &ContentHash) -> Result<()> {
        let path = self.path_of(hash);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("removing", &path, e)),
        }
        if let Some(index) = self.index_of(hash) {
            drop_index_entry(&index);
        }
        Ok(())
    }

    /// Removes the whole directory (the run is deleted), with the index entries that were
    /// last links to its blobs.
    pub fn remove_all(&self) -> Result<()> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Ok(()) };
        for entry in entries.flatten() {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| StoreError::io("removing", &path, e))?;
            let name = entry.file_name();
            if let Some(hash) = ContentHash::parse(&name.to_string_lossy())
                && let Some(index) = self.index_of(&hash)
            {
                drop_index_entry(&index);
            }
        }
        match std::fs::remove_dir(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("removing", &self.dir, e)),
        }
    }

    /// What is wrong with the blob of a record: missing, or not the size recorded; with
    /// `deep`, also bytes that no longer hash to its name. `None` when it is sound.
    pub fn check(&self, hash: &ContentHash, size: u64, deep: bool) -> Option<String> {
        let mut blob = match self.open(hash) {
            Ok(b) => b,
            Err(_) => return Some(format!("blob {hash} is missing")),
        };
        if blob.len != size {
            return Some(format!("blob {hash} holds {} bytes, {size} recorded", blob.len));
        }
        if deep {
            let mut hasher = sha2::Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                match blob.reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => hasher.update(&buf[..n]),
                    Err(e) => return Some(format!("blob {hash} cannot be read: {e}")),
                }
            }
            if ContentHash::from_digest(&hasher.finalize()) != *hash {
                return Some(format!("blob {hash} is corrupt: its bytes hash otherwise"));
            }
        }
        None
    }

    /// Removes the copies a crash left (only while no copy can be in progress: the run's
    /// writer is opening it).
    pub fn remove_leftovers(&self) {
        for name in self.leftovers() {
            let _ = std::fs::remove_file(self.dir.join(name));
        }
    }

    /// The blob a record registered from outside names, described again from its bytes
    /// under `name`: [`StoreError::NoSuchArtifact`] when this run does not hold it,
    /// [`StoreError::BadRequest`] when it is not of the `size` given.
    pub fn held(
        &self,
        hash: &ContentHash,
        size: u64,
        name: &str,
        location: &str,
    ) -> Result<BlobRef> {
        let held = self.describe(hash, name)?.ok_or_else(|| StoreError::NoSuchArtifact {
            what: hash.to_string(),
            location: location.to_owned(),
        })?;
        if held.size != size {
            return Err(StoreError::BadRequest {
                reason: format!("the file {hash} holds {} bytes, not {size}", held.size),
            });
        }
        Ok(held)
    }

    /// What is wrong with the blobs of a run's `records` (see
    /// [`crate::RunReader::check_blobs`]): each stored record's file (a directory's files
    /// too), and copies a crash left.
    pub fn check_records(&self, records: &[crate::artifacts::Artifact], deep: bool) -> Vec<String> {
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        for a in records {
            if a.in_place.is_some() || !seen.insert(a.hash.clone()) {
                continue;
            }
            let found = if a.media_type == goodseed_core::media::TREE {
                self.check_tree(&a.hash, a.size, deep)
            } else {
                self.check(&a.hash, a.size, deep).into_iter().collect()
            };
            problems.extend(
                found.into_iter().map(|p| format!("{} {:?}: {p}", a.kind.as_str(), a.name)),
            );
        }
        for name in self.leftovers() {
            problems.push(format!("an unfinished copy ({name}) left by a crash"));
        }
        problems
    }

    /// Copies left behind by a crash (`.tmp-*` files), by name.
    pub fn leftovers(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(TEMP_PREFIX))
            .collect()
    }

    fn pin(&self, hash: &ContentHash) {
        *self
            .pins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(hash.clone())
            .or_insert(0) += 1;
    }

    /// Puts a synced copy under its hash: the run's blob, else a link to the index's
    /// bytes, else the copy itself (then linked into the index).
    fn place(&self, temp: &Path, hash: &ContentHash, size: u64) -> Result<()> {
        let target = self.path_of(hash);
        if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_file() && m.len() == size) {
            let _ = std::fs::remove_file(temp);
            return Ok(());
        }
        if let Some(index) = self.index_of(hash) {
            let shared =
                std::fs::symlink_metadata(&index).is_ok_and(|m| m.is_file() && m.len() == size);
            if shared && std::fs::hard_link(&index, &target).is_ok() {
                let _ = std::fs::remove_file(temp);
                return Ok(());
            }
        }
        std::fs::rename(temp, &target).map_err(|e| StoreError::io("storing", &target, e))?;
        sync_dir(&self.dir);
        if let Some(index) = self.index_of(hash) {
            if let Some(parent) = index.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            // Best effort: without the index the run still has its blob.
            let _ = std::fs::hard_link(&target, &index);
        }
        Ok(())
    }
}

/// The SHA-256 of a file's bytes.
fn hash_file(path: &Path) -> std::io::Result<ContentHash> {
    let mut file = File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(ContentHash::from_digest(&hasher.finalize()))
}

/// Removes an index entry when nothing else links to its bytes.
fn drop_index_entry(index: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if std::fs::symlink_metadata(index).is_ok_and(|m| m.is_file() && m.nlink() == 1) {
            let _ = std::fs::remove_file(index);
        }
    }
    #[cfg(not(unix))]
    let _ = index;
}

fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        a.len() == b.len()
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl BlobSink for BlobDir {
    fn ingest(&self, src: &Path, progress: &mut dyn FnMut(u64)) -> Result<BlobRef> {
        std::fs::create_dir_all(&self.dir).map_err(|e| StoreError::io("creating", &self.dir, e))?;
        let mut input = File::open(src).map_err(|e| StoreError::io("reading", src, e))?;
        let meta = input.metadata().map_err(|e| StoreError::io("reading", src, e))?;
        if !meta.is_file() {
            return Err(StoreError::io(
                "reading",
                src,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| {
            StoreError::io("creating", &self.dir, std::io::Error::other(e.to_string()))
        })?;
        let temp = self.dir.join(format!("{TEMP_PREFIX}{}", u64::from_le_bytes(random)));
        let result = (|| {
            let mut output = File::options()
                .write(true)
                .create_new(true)
                .open(&temp)
                .map_err(|e| StoreError::io("creating", &temp, e))?;
            let copied = if meta.len() >= THREADED_FROM {
                copy_hashing_threaded(&mut input, &mut output, &temp, progress)
            } else {
                copy_hashing(&mut input, &mut output, progress)
            };
            let (hash, size, head) = copied.map_err(|(reading, e)| {
                if reading {
                    StoreError::io("reading", src, e)
                } else {
                    StoreError::io("writing", &temp, e)
                }
            })?;
            output.sync_all().map_err(|e| StoreError::io("syncing", &temp, e))?;
            drop(output);
            // Pinned before it is placed: a collection running meanwhile keeps it.
            self.pin(&hash);
            if let Err(e) = self.place(&temp, &hash, size) {
                self.unpin(&hash);
                return Err(e);
            }
            Ok(blob_ref(hash, size, &head, src))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }

    fn upload_state(&self, hash: &ContentHash) -> Result<UploadState> {
        let target = self.path_of(hash);
        if let Ok(m) = std::fs::symlink_metadata(&target)
            && m.is_file()
        {
            return Ok(UploadState { received: m.len(), complete: true });
        }
        // Another run's identical file: linked, nothing to send.
        if let Some(index) = self.index_of(hash)
            && std::fs::symlink_metadata(&index).is_ok_and(|m| m.is_file())
        {
            std::fs::create_dir_all(&self.dir)
                .map_err(|e| StoreError::io("creating", &self.dir, e))?;
            if std::fs::hard_link(&index, &target).is_ok() {
                self.pin(hash);
                let len = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
                return Ok(UploadState { received: len, complete: true });
            }
        }
        let part = self.dir.join(format!("{PART_PREFIX}{hash}"));
        let received = std::fs::symlink_metadata(&part).map(|m| m.len()).unwrap_or(0);
        Ok(UploadState { received, complete: false })
    }

    fn upload_chunk(
        &self,
        hash: &ContentHash,
        offset: u64,
        total: u64,
        bytes: &[u8],
    ) -> Result<UploadState> {
        let now = self.upload_state(hash)?;
        if now.complete {
            return Ok(now);
        }
        if offset != now.received {
            return Err(StoreError::BadRequest {
                reason: format!(
                    "the upload of {hash} is at byte {}, not {offset}: send from there",
                    now.received
                ),
            });
        }
        let end = offset + bytes.len() as u64;
        if end > total {
            return Err(StoreError::BadRequest {
                reason: format!("{end} bytes of {hash} is past the size given, {total}"),
            });
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| StoreError::io("creating", &self.dir, e))?;
        let part = self.dir.join(format!("{PART_PREFIX}{hash}"));
        let mut file = File::options()
            .create(true)
            .append(true)
            .open(&part)
            .map_err(|e| StoreError::io("writing", &part, e))?;
        file.write_all(bytes).map_err(|e| StoreError::io("writing", &part, e))?;
        if end < total {
            return Ok(UploadState { received: end, complete: false });
        }
        file.sync_all().map_err(|e| StoreError::io("syncing", &part, e))?;
        drop(file);
        let got = hash_file(&part).map_err(|e| StoreError::io("reading", &part, e))?;
        if got != *hash {
            let _ = std::fs::remove_file(&part);
            return Err(StoreError::BadRequest {
                reason: format!(
                    "the {total} bytes received hash to {got}, not {hash}: the upload was dropped"
                ),
            });
        }
        self.pin(hash);
        if let Err(e) = self.place(&part, hash, total) {
            self.unpin(hash);
            return Err(e);
        }
        Ok(UploadState { received: total, complete: true })
    }

    fn describe(&self, hash: &ContentHash, name: &str) -> Result<Option<BlobRef>> {
        let Ok(mut blob) = self.open(hash) else { return Ok(None) };
        let mut head = vec![0u8; goodseed_core::media::SNIFF_BYTES.min(blob.len as usize)];
        let path = self.path_of(hash);
        blob.reader.read_exact(&mut head).map_err(|e| StoreError::io("reading", &path, e))?;
        Ok(Some(blob_ref(hash.clone(), blob.len, &head, Path::new(name))))
    }

    fn tree(&self, hash: &ContentHash) -> Option<Tree> {
        self.read_tree(hash)
    }

    fn unpin(&self, hash: &ContentHash) {
        let mut pins = self.pins.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = pins.get_mut(hash) {
            *n -= 1;
            if *n == 0 {
                pins.remove(hash);
            }
        }
    }
}

/// An I/O error, and whether it came from reading (else writing).
type CopyError = (bool, std::io::Error);

fn read_chunk(input: &mut File, buf: &mut [u8]) -> std::result::Result<usize, CopyError> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err((true, e)),
        }
    }
    Ok(filled)
}

fn keep_head(head: &mut Vec<u8>, chunk: &[u8]) {
    let want = goodseed_core::media::SNIFF_BYTES.saturating_sub(head.len());
    head.extend_from_slice(&chunk[..want.min(chunk.len())]);
}

/// Copies and hashes on this thread.
fn copy_hashing(
    input: &mut File,
    output: &mut File,
    progress: &mut dyn FnMut(u64),
) -> std::result::Result<(ContentHash, u64, Vec<u8>), CopyError> {
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let (mut size, mut head) = (0u64, Vec::new());
    loop {
        let n = read_chunk(input, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        output.write_all(&buf[..n]).map_err(|e| (false, e))?;
        keep_head(&mut head, &buf[..n]);
        size += n as u64;
        progress(size);
    }
    Ok((ContentHash::from_digest(&hasher.finalize()), size, head))
}

/// Copies in the kernel (`copy_file_range`, as `cp` does: no pass through user memory)
/// while a second thread reads each chunk back from the copy and hashes it, and syncs
/// the copy while the hash finishes: the hash is of exactly the bytes stored, and the
/// copy's time is the longer of the kernel's copy and the hash, not their sum.
fn copy_hashing_threaded(
    input: &mut File,
    output: &mut File,
    copy: &Path,
    progress: &mut dyn FnMut(u64),
) -> std::result::Result<(ContentHash, u64, Vec<u8>), CopyError> {
    use std::os::unix::fs::FileExt;
    let reader = File::open(copy).map_err(|e| (false, e))?;
    let (copied_to, ends) = std::sync::mpsc::channel::<u64>();
    let hasher = std::thread::Builder::new()
        .name("goodseed-hash".into())
        .spawn(move || -> std::io::Result<(sha2::digest::Output<sha2::Sha256>, Vec<u8>)> {
            let mut hasher = sha2::Sha256::new();
            let mut buf = vec![0u8; CHUNK];
            let (mut at, mut head) = (0u64, Vec::new());
            for end in ends {
                while at < end {
                    let want = usize::try_from((end - at).min(CHUNK as u64)).unwrap_or(CHUNK);
                    reader.read_exact_at(&mut buf[..want], at)?;
                    hasher.update(&buf[..want]);
                    keep_head(&mut head, &buf[..want]);
                    at += want as u64;
                }
            }
            Ok((hasher.finalize(), head))
        })
        .map_err(|e| (false, e))?;
    let mut size = 0u64;
    let copied = (|| {
        loop {
            let n = std::io::copy(&mut (&*input).take(CHUNK as u64), output).map_err(|e| {
                // `io::copy` says which side failed only through the error; a read error
                // of the source is by far the likelier.
                (true, e)
            })?;
            if n == 0 {
                break;
            }
            size += n;
            progress(size);
            let _ = copied_to.send(size);
        }
        drop(copied_to);
        // Written back while the hash of the last chunks finishes.
        output.sync_all().map_err(|e| (false, e))
    })();
    let hashed = hasher.join().map_err(|_| (false, std::io::Error::other("hasher panicked")))?;
    copied?;
    let (digest, head) = hashed.map_err(|e| (false, e))?;
    Ok((ContentHash::from_digest(&digest), size, head))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::write(path, bytes).expect("write");
    }

    fn sha(bytes: &[u8]) -> String {
        ContentHash::from_digest(&sha2::Sha256::digest(bytes)).as_str().to_owned()
    }

    #[test]
    fn a_copy_is_kept_under_its_hash_once() {
        let tmp = tempfile::tempdir().expect("tmp");
        let src = tmp.path().join("model.pt");
        write(&src, b"weights");
        let blobs = BlobDir::new(tmp.path().join("run.files"), Some(tmp.path().join("index")));
        let a = blobs.ingest(&src, &mut |_| {}).expect("ingest");
        let b = blobs.ingest(&src, &mut |_| {}).expect("again");
        assert_eq!(a, b);
        assert_eq!(a.hash.as_str(), sha(b"weights"));
        assert_eq!(a.size, 7);
        let names: Vec<_> = std::fs::read_dir(blobs.dir()).expect("dir").flatten().collect();
        assert_eq!(names.len(), 1, "one blob, no temporary file left");
        let mut read = String::new();
        blobs.open(&a.hash).expect("open").reader.read_to_string(&mut read).expect("read");
        assert_eq!(read, "weights");
    }

    #[test]
    fn large_files_hash_on_a_second_thread_to_the_same_digest() {
        let tmp = tempfile::tempdir().expect("tmp");
        let src = tmp.path().join("big.bin");
        let bytes: Vec<u8> = (0..(THREADED_FROM as usize + CHUNK + 12_345))
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        write(&src, &bytes);
        let blobs = BlobDir::new(tmp.path().join("run.files"), None);
        let mut last = 0;
        let got = blobs.ingest(&src, &mut |n| last = n).expect("ingest");
        assert_eq!(got.hash.as_str(), sha(&bytes));
        assert_eq!((got.size, last), (bytes.len() as u64, bytes.len() as u64));
        assert!(blobs.check(&got.hash, got.size, true).is_none());
    }

    #[test]
    fn identical_files_of_two_runs_share_their_bytes_until_both_are_gone() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().expect("tmp");
        let src = tmp.path().join("same.bin");
        write(&src, b"same bytes");
        let index = tmp.path().join("index");
        let one = BlobDir::new(tmp.path().join("one.files"), Some(index.clone()));
        let two = BlobDir::new(tmp.path().join("two.files"), Some(index.clone()));
        let h = one.ingest(&src, &mut |_| {}).expect("one").hash;
        two.ingest(&src, &mut |_| {}).expect("two");
        let meta = std::fs::metadata(index.join(h.as_str())).expect("indexed");
        assert_eq!(meta.nlink(), 3, "index, run one, run two: one copy of the bytes");
        one.unpin(&h);
        two.unpin(&h);
        one.remove_all().expect("rm one");
        assert!(index.join(h.as_str()).exists(), "run two still holds it");
        two.remove_unreferenced(&HashSet::new()).expect("gc two");
        assert!(!index.join(h.as_str()).exists(), "the last link took the index entry along");
        assert!(!tmp.path().join("one.files").exists());
    }

    #[test]
    fn pinned_blobs_and_referenced_ones_survive_a_collection() {
        let tmp = tempfile::tempdir().expect("tmp");
        let blobs = BlobDir::new(tmp.path().join("run.files"), None);
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        write(&a, b"a");
        write(&b, b"b");
        let ha = blobs.ingest(&a, &mut |_| {}).expect("a").hash;
        let hb = blobs.ingest(&b, &mut |_| {}).expect("b").hash;
        assert_eq!(blobs.remove_unreferenced(&HashSet::new()).expect("gc"), 0, "both pinned");
        blobs.unpin(&ha);
        blobs.unpin(&hb);
        let keep: HashSet<_> = [hb.clone()].into();
        assert_eq!(blobs.remove_unreferenced(&keep).expect("gc"), 1);
        assert!(blobs.open(&ha).is_err());
        assert!(blobs.open(&hb).is_ok());
    }

    #[test]
    fn damage_and_leftovers_are_found() {
        let tmp = tempfile::tempdir().expect("tmp");
        let blobs = BlobDir::new(tmp.path().join("run.files"), None);
        let src = tmp.path().join("a");
        write(&src, b"original");
        let h = blobs.ingest(&src, &mut |_| {}).expect("a").hash;
        write(&blobs.dir().join(h.as_str()), b"originaL");
        assert!(blobs.check(&h, 8, false).is_none(), "same size: only a deep check sees it");
        assert!(blobs.check(&h, 8, true).expect("corrupt").contains("corrupt"));
        assert!(blobs.check(&h, 9, false).expect("size").contains("9 recorded"));
        write(&blobs.dir().join(".tmp-123"), b"half");
        assert_eq!(blobs.leftovers(), [".tmp-123"]);
        std::fs::remove_file(blobs.dir().join(h.as_str())).expect("rm");
        assert!(blobs.check(&h, 8, false).expect("missing").contains("missing"));
        std::os::unix::fs::symlink(&src, blobs.dir().join(h.as_str())).expect("link");
        assert!(blobs.open(&h).is_err(), "a symlink in place of a blob is not followed");
    }

    #[test]
    fn a_source_that_is_not_a_file_is_refused_and_leaves_nothing() {
        let tmp = tempfile::tempdir().expect("tmp");
        let blobs = BlobDir::new(tmp.path().join("run.files"), None);
        assert!(blobs.ingest(tmp.path(), &mut |_| {}).is_err());
        assert!(blobs.ingest(&tmp.path().join("nope"), &mut |_| {}).is_err());
        assert!(blobs.leftovers().is_empty());
    }
}
