//! The SQLite implementation of the store, in goodseed 0.4.0's file format.

mod catalog;
mod reader;
mod schema;
mod writer;

pub use catalog::{SqliteCatalog, run_file_path};
pub use reader::SqliteRunReader;
pub use writer::SqliteRunWriter;
