//! [`GoodseedCheckpointer`], a burn-train [`Checkpointer`] that saves records where
//! burn's `FileCheckpointer` does and registers each with the run's checkpoints.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};
use goodseed_sdk::{Run, Step};

use crate::shared::Shared;

/// How long a checkpoint waits for the logger to have seen its epoch's final values
/// (burn hands them to the logger on another thread, just before it checkpoints).
const FINALS_PATIENCE: Duration = Duration::from_secs(2);

/// A burn-train [`Checkpointer`] for any record (model, optimizer, scheduler): saves
/// `<directory>/<name>-<epoch>.bpk` exactly as burn's `FileCheckpointer` does (so
/// resuming with either works), then registers the file with the run as the checkpoint
/// `name` at step `epoch` ([`Run::log_checkpoint_with`]): the run copies it into its
/// store in the background, and `goodseed serve` lists it and serves it for download.
///
/// Made from a [`GoodseedLogger`](crate::GoodseedLogger) ([`checkpointer`]), a
/// checkpoint carries the epoch's final metric values (`valid/loss`, `train/accuracy`,
/// …): what a goodseed retention rule such as
/// `Retention::best(3, "valid/loss", Goal::Min)` ranks by. Made with [`new`](Self::new),
/// it carries none.
///
/// burn's checkpointing strategy still decides which of *its* files to keep and deletes
/// the others ([`Checkpointer::delete`]); the run's copies are kept by the run's own
/// rule ([`Run::keep_checkpoints`]), all of them when it has none: give the run a rule,
/// since burn checkpoints every epoch. A failure to register is
/// said once through `log` and counted, never a failed training.
///
/// [`checkpointer`]: crate::GoodseedLogger::checkpointer
#[derive(Debug)]
pub struct GoodseedCheckpointer {
    shared: Arc<Shared>,
    directory: PathBuf,
    name: String,
}

impl GoodseedCheckpointer {
    /// A checkpointer saving into `directory` (created if missing) and registering with
    /// `run`, without metrics.
    pub fn new(run: &Run, directory: impl AsRef<Path>, name: &str) -> GoodseedCheckpointer {
        GoodseedCheckpointer::with_shared(Arc::new(Shared::new(run)), directory.as_ref(), name)
    }

    pub(crate) fn with_shared(
        shared: Arc<Shared>,
        directory: &Path,
        name: &str,
    ) -> GoodseedCheckpointer {
        if let Err(error) = std::fs::create_dir_all(directory) {
            log::warn!("goodseed: cannot create {}: {error}", directory.display());
        }
        GoodseedCheckpointer { shared, directory: directory.to_owned(), name: name.to_owned() }
    }

    /// Where the record of `epoch` is saved.
    pub fn path_for_epoch(&self, epoch: usize) -> PathBuf {
        self.directory.join(format!("{}-{epoch}.bpk", self.name))
    }
}

impl<R: Checkpoint> Checkpointer<R> for GoodseedCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        let path = self.path_for_epoch(epoch);
        record.save(path.clone())?;
        let step = match Step::try_from(epoch) {
            Ok(step) => step,
            Err(error) => {
                log::error!("goodseed: checkpoint of epoch {epoch} not registered: {error}");
                return Ok(());
            }
        };
        let mut checkpoint = goodseed_sdk::Checkpoint::new(&path, step).name(self.name.as_str());
        for (metric, value) in self.shared.finals(epoch, FINALS_PATIENCE) {
            checkpoint = checkpoint.metric(metric, value);
        }
        let result = self.shared.run.log_checkpoint_with(checkpoint);
        self.shared.report("a checkpoint", result);
        Ok(())
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        let path = self.path_for_epoch(epoch);
        if path.exists() {
            // The run copies a checkpoint in the background: let it finish first.
            if let Err(error) = self.shared.run.wait_for_files() {
                log::warn!("goodseed: waiting for the run's copies: {error}");
            }
            std::fs::remove_file(&path).map_err(CheckpointerError::IOError)?;
        }
        Ok(())
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        R::load(self.path_for_epoch(epoch))
    }
}
