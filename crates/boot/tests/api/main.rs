//! strata-boot through its public API: BLS entry text and file names
//! (`bls`), the EFI system partition in a directory or a small tmpfs
//! (`esp`), and partitioning an image file (`disk`).
//!
//! Tests that need root (mounting, loop devices) or a tool or package
//! that may be missing say so and return through
//! [`strata_store::test_util::skip`], which refuses to skip under `CI`.

mod bls;
mod disk;
mod esp;

use std::fs;
use std::path::{Path, PathBuf};

use strata_store::test_util::{Tmpfs, have_root, listing, skip};

/// Whether every program in `tools` is on `PATH`; skips when one is not.
#[track_caller]
fn have_tools(tools: &[&str]) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| !std::env::split_paths(&path).any(|d| d.join(t).is_file()))
        .collect();
    if !missing.is_empty() {
        skip(&format!("needs {}", missing.join(", ")));
    }
    missing.is_empty()
}

/// Writes `content` to `dir/name` and returns the path.
fn file(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p
}
