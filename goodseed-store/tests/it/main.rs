//! The store's integration tests: the conformance suite over the traits, SQLite file
//! behaviour, and compatibility with goodseed 0.4.0 both ways.

mod artifacts;
mod catalog_index;
mod compat;
mod conformance;
mod requests;

mod sqlite_files;
