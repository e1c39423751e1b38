//! The PostgreSQL store's integration tests, one binary (the store's conformance suite,
//! in goodseed-store, runs on PostgreSQL too). Everything runs on the test kit's
//! private PostgreSQL clusters.

mod blocks;
mod pyramid;
mod servers;
