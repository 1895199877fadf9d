//! Crash injection for tests: `STRATA_FAULT=<point>` aborts the process
//! (as a `kill -9` would, without unwinding or cleanup) when execution
//! reaches the named point. Points are named in the module docs of the
//! operations that have them.

use crate::error::Result;

/// Aborts here if `STRATA_FAULT` names `name`.
pub fn point(name: &str) -> Result<()> {
    if std::env::var_os("STRATA_FAULT").is_some_and(|v| v == name) {
        std::process::abort();
    }
    Ok(())
}
