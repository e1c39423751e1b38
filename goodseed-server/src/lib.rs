//! Goodseed's HTTP server: the JSON API of goodseed 0.4.0 and the web UI, over a
//! [`goodseed_store::Catalog`] handed in by the binary.
//!
//! Not built yet: this crate holds its place in the workspace so the dependency
//! direction (core ← store ← server ← cli) is fixed from the start.
