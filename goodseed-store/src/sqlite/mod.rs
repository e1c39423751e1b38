//! The SQLite implementation of the store, in goodseed 0.4.0's file format.

mod artifacts;
mod histograms;
mod index;
mod lock;
mod persist;
mod pyramid;
mod reader;
mod schema;
mod store;
mod uploads;
mod writer;

pub use index::RECONCILE_EVERY;
pub use lock::lock_path;
pub use reader::SqliteRunReader;
pub use store::{HEARTBEAT_STALE_AFTER, STALE_AFTER, SqliteStore, run_file_path};
pub use writer::SqliteRunWriter;
