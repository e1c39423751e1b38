//! The SQLite implementation of the store, in goodseed 0.4.0's file format.

mod catalog;
mod lock;
mod pyramid;
mod reader;
mod schema;
mod writer;

pub use catalog::{HEARTBEAT_STALE_AFTER, SqliteCatalog, liveness, run_file_path};
pub use lock::lock_path;
pub use reader::SqliteRunReader;
pub use writer::SqliteRunWriter;
