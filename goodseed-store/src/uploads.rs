//! What of a run a remote server has not confirmed yet: goodseed 0.4.0's `uploaded`
//! columns, read and marked through the port. A sync (the SDK's remote mode,
//! `goodseed sync`) reads [`Pending`] rows, sends them, and marks them uploaded only
//! after the server answered; a row written again in between stays pending, so a
//! value that changed after it was sent is sent again. The local file is the durable
//! queue: a sync that stops half way starts again where the marks say.

use std::sync::Arc;

use crate::Result;

/// One config not uploaded yet, as 0.4.0 keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingConfig {
    /// The config's path.
    pub path: String,
    /// Its type tag.
    pub type_tag: String,
    /// Its text (`None` where the store holds none).
    pub value: Option<String>,
    /// The backend's mark of the row as read; passed back untouched.
    pub token: u64,
}

/// One metric point not uploaded yet.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingMetric {
    /// Its series' path.
    pub path: Arc<str>,
    /// Its step.
    pub step: f64,
    /// Its value (NaN and ±infinity included).
    pub value: f64,
    /// Unix seconds.
    pub ts: i64,
    /// The backend's mark of the row as read (for SQLite, its rowid); passed back
    /// untouched.
    pub token: u64,
}

/// One text point not uploaded yet.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingText {
    /// Its series' path.
    pub path: Arc<str>,
    /// Its step.
    pub step: f64,
    /// Its text.
    pub value: String,
    /// Unix seconds.
    pub ts: i64,
    /// The backend's mark of the row as read; passed back untouched.
    pub token: u64,
}

/// Rows read by [`RunUploads::pending`], in the order 0.4.0 sends them: configs, then
/// metric points, then text points, each in the order they were written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pending {
    /// Configs.
    pub configs: Vec<PendingConfig>,
    /// Metric points (NaN values included).
    pub metrics: Vec<PendingMetric>,
    /// Text points.
    pub texts: Vec<PendingText>,
    /// The backend's mark of the data the rows were read from (for SQLite, the
    /// database's change counter as the reading connection saw it, with the reader's
    /// identity); passed back
    /// untouched.
    pub read_at: u64,
}

impl Pending {
    /// How many rows: configs and points.
    pub fn len(&self) -> usize {
        self.configs.len() + self.metrics.len() + self.texts.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads and marks what a remote server has not confirmed of one run. It works beside
/// a live writer of the run (its own connection: marks never hold a writer up for
/// long) and after the run closed.
pub trait RunUploads: Send + std::fmt::Debug {
    /// Rows not uploaded, at most `limit` points (and every pending config), after the
    /// last ones this reader returned: a sync that sends one batch after another calls
    /// it again without marking in between. [`RunUploads::rewind`] starts over.
    fn pending(&mut self, limit: usize) -> Result<Pending>;

    /// Starts reading from the first row again: rows written again at a place already
    /// read (an overwritten step) are found only from the start.
    fn rewind(&mut self);

    /// Marks the rows of `sent` uploaded, in one transaction, except any written again
    /// since they were read (they stay pending). Returns how many were marked.
    fn mark_uploaded(&mut self, sent: &Pending) -> Result<u64>;

    /// How many rows (configs and points, and artifact records) are not uploaded.
    fn count_pending(&mut self) -> Result<u64>;

    /// The run's checkpoint, artifact and file records not uploaded yet (new ones, and
    /// ones changed since, such as a new best), in the order registered. A backend
    /// that keeps no files has none.
    fn pending_artifacts(&mut self) -> Result<Vec<crate::artifacts::Artifact>> {
        Ok(Vec::new())
    }

    /// Marks records of [`RunUploads::pending_artifacts`] uploaded, each only if it is
    /// still as it was read. Returns how many were marked.
    fn mark_artifacts_uploaded(&mut self, sent: &[crate::artifacts::Artifact]) -> Result<u64> {
        let _ = sent;
        Ok(0)
    }

    /// Opens the bytes of a record of the run, to send them.
    fn open_blob(
        &mut self,
        hash: &crate::artifacts::ContentHash,
    ) -> Result<crate::artifacts::Blob> {
        Err(crate::StoreError::NoSuchArtifact { what: hash.to_string(), location: String::new() })
    }
}
