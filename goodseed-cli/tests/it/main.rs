//! Tests of the `goodseed` binary: the real executable on data directories made in temp
//! dirs, compared byte for byte with goodseed 0.4.0's own CLI (`cli`); the commands that
//! act on runs (`commands`); `goodseed demo` (`demo`); the team server and `sync`
//! (`sync`, `hosts`); `import`; and runs kept in PostgreSQL (`postgres`).

mod agent;
mod cli;
mod commands;
mod demo;
mod hosts;
mod import;
mod postgres;
mod support;
mod sync;
