//! Crash injection for tests: `STRATA_FAULT=<point>` aborts the process
//! (as a `kill -9` would, without unwinding or cleanup) when execution
//! reaches the named point; `STRATA_FAULT_HANG=<point>` stops it there for
//! a power cut. Points are named in the module docs of the
//! operations that have them.
//!
//! Only with the `fault-injection` feature, which the strata binary gets
//! when built for its tests (`cargo test`); otherwise `point` does nothing
//! and compiles away, so a release binary cannot be made to abort by its
//! environment.

/// Aborts here if `STRATA_FAULT` names `name`; hangs here (after saying
/// so on stderr and the console) if `STRATA_FAULT_HANG` does, so a VM test
/// can cut the power at exactly this point.
#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    if std::env::var_os("STRATA_FAULT").is_some_and(|v| v == name) {
        std::process::abort();
    }
    if std::env::var_os("STRATA_FAULT_HANG").is_some_and(|v| v == name) {
        let line = format!("strata: fault point {name} reached, hanging\n");
        eprint!("{line}");
        if let Ok(mut c) = std::fs::OpenOptions::new().write(true).open("/dev/console") {
            let _ = std::io::Write::write_all(&mut c, line.as_bytes());
        }
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Does nothing: built without the `fault-injection` feature.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_name: &str) {}
