//! The server's integration tests: the real server on port 0, driven over HTTP.

mod api;
mod compat;
mod live;
mod openapi;
mod security;
mod series;
mod support;

#[path = "../../../goodseed-store/tests/it/python.rs"]
#[allow(dead_code)] // shared with the store's tests, which use all of it
mod python;
