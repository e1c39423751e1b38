//! The server's integration tests: the real server on port 0, driven over HTTP, and
//! the web UI in a real browser (`ui`).

mod api;
mod cloud;
mod cloud_files;
mod compat;
mod faults;
mod files;
mod live;
mod openapi;
mod remote;
mod requests;
mod schema;
mod security;
mod series;
mod support;
mod ui;
mod web;
mod ws;
