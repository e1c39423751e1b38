//! Test support shared by goodseed's crates (a dev-dependency only):
//!
//! - [`MemoryStore`]: a whole [`RunStore`](goodseed_store::RunStore) in memory, the
//!   second backend of the store's conformance suite, and a store that fails on demand
//!   ([`MemoryStore::fail`]) for tests of what callers do then;
//! - [`python`]: an interpreter with Python goodseed 0.4.0 installed (a venv made once
//!   under `target/`), and the scripts in `python/` that drive it, for the tests that
//!   check compatibility both ways;
//! - [`faults`]: a small `tmpfs` to fill, and the figures the fault-injection tests
//!   report;
//! - [`producers`]: pyarrow, tensorboardX and tbparse (a venv made once under
//!   `target/`), the real producers of what the importers read;
//! - [`schemathesis`]: Schemathesis from PyPI (a venv made once under `target/`), for
//!   the test that holds the server to its `openapi.json`.
//! - [`postgres`]: private PostgreSQL clusters under `target/pg-test/` (the machine's own
//!   server, on a free port, gone when the test process ends), with a fresh database
//!   for each test of the PostgreSQL store.
//!
//! ```
//! use goodseed_core::{ProjectName, RunId};
//! use goodseed_store::{RunStore, StoreError, WriteBatch};
//! use goodseed_testkit::{Failure, MemoryStore, Operation};
//!
//! let store = MemoryStore::new();
//! let (p, r) = (ProjectName::parse("p")?, RunId::parse("r")?);
//! store.create_run(&p, &r, &WriteBatch::new())?.close()?;
//! store.fail(Operation::Read, Failure::Busy);
//! assert!(matches!(store.open_run(&p, &r), Err(StoreError::Database { busy: true, .. })));
//! store.heal();
//! assert!(store.open_run(&p, &r).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod faults;
mod memory;
#[cfg(unix)]
pub mod postgres;
pub mod producers;
pub mod python;
pub mod rng;
pub mod schemathesis;
mod venv;

pub use memory::{Failure, MemoryStore, Operation};
