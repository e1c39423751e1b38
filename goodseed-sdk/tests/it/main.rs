//! The SDK's integration tests: real runs in temp dirs read back through the store
//! (`sdk`), and by goodseed 0.4.0's own readers (`compat`).

mod compat;
mod full_disk;
mod monitor;
mod sdk;
