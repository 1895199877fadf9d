//! strata's integration tests, one test binary with a module per area, so
//! the shared helpers in `common` compile once and one binary links
//! (ripgrep's `tests/tests.rs` layout). Run one area with a name filter:
//! `cargo test -p strata-cli --test it -- sysroot::`.
//!
//! The VM boot test is a binary of its own (`--test vm`): it is
//! `#[ignore]`d and takes minutes of emulation.

#[path = "../common/mod.rs"]
mod common;

mod app;
mod cli;
mod conformance;
mod faults;
mod remote;
mod sysroot;
mod toolbox;
