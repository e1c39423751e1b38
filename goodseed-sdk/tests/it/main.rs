//! The SDK's integration tests: real runs in temp dirs read back through the store
//! (`sdk`), and by goodseed 0.4.0's own readers (`compat`).

mod agent_env;
mod compat;
mod faults;
mod files;
mod monitor;
mod sdk;
mod signals;
