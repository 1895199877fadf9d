//! Crash injection for tests: `STRATA_FAULT=<point>` aborts the process
//! (as a `kill -9` would, without unwinding or cleanup) when execution
//! reaches the named point. Points are named in the module docs of the
//! operations that have them.
//!
//! Only with the `fault-injection` feature, which the strata binary gets
//! when built for its tests (`cargo test`); otherwise `point` does nothing
//! and compiles away, so a release binary cannot be made to abort by its
//! environment.

/// Aborts here if `STRATA_FAULT` names `name`.
#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    if std::env::var_os("STRATA_FAULT").is_some_and(|v| v == name) {
        std::process::abort();
    }
}

/// Does nothing: built without the `fault-injection` feature.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_name: &str) {}
