//! The rules for naming deployments, in one place: what sysroot creates
//! and what strata-prepare-root accepts on the kernel command line agree,
//! so a name sysroot would never create cannot select a root at boot.
//! strata-prepare-root includes this file with `#[path]`, so it uses std
//! only. Pure.
//!
//! ```text
//! /strata/deploy/<stateroot>/<commit>.<serial>
//!   stateroot  1..=64 of [A-Za-z0-9_-], not starting with '-'
//!   commit     64 lowercase hex digits
//!   serial     a u32 in decimal, as it prints ("0", "12"; not "01", "+1")
//! ```

/// Where deployments live, relative to the sysroot.
pub const DEPLOY_DIR: &str = "/strata/deploy/";

/// Longest stateroot name.
pub const MAX_STATEROOT: usize = 64;

/// A stateroot name: letters, digits, `-`, `_`, not starting with `-`.
pub fn validate_stateroot(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with('-')
        && name.len() <= MAX_STATEROOT
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid stateroot {name:?}: use letters, digits, '-' and '_'"
        ))
    }
}

/// Splits `<commit>.<serial>`, checking both parts.
pub fn split_dir_name(name: &str) -> Option<(&str, u32)> {
    let (commit, serial) = name.split_once('.')?;
    let commit_ok = commit.len() == 64
        && commit
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let serial: u32 = serial
        .parse()
        .ok()
        .filter(|n: &u32| n.to_string() == serial)?;
    commit_ok.then_some((commit, serial))
}

/// Splits `/strata/deploy/<stateroot>/<commit>.<serial>` into the
/// stateroot, the commit and the serial, checking each.
pub fn split_rel_path(path: &str) -> Option<(&str, &str, u32)> {
    let rest = path.strip_prefix(DEPLOY_DIR)?;
    let (stateroot, name) = rest.split_once('/')?;
    validate_stateroot(stateroot).ok()?;
    let (commit, serial) = split_dir_name(name)?;
    Some((stateroot, commit, serial))
}

/// Paths to check both parsers against: whether each names a deployment.
#[cfg(test)]
pub const CASES: &[(&str, bool)] = &[
    (
        "/strata/deploy/debian/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.0",
        true,
    ),
    (
        "/strata/deploy/a_b-1/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.4294967295",
        true,
    ),
    // A 64-character stateroot is the longest.
    (
        "/strata/deploy/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.1",
        true,
    ),
    (
        "/strata/deploy/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.1",
        false,
    ),
    // The serial is a u32 as it prints.
    (
        "/strata/deploy/debian/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.4294967296",
        false,
    ),
    (
        "/strata/deploy/debian/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.01",
        false,
    ),
    (
        "/strata/deploy/debian/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.+1",
        false,
    ),
    (
        "/strata/deploy/debian/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.",
        false,
    ),
    (
        "/strata/deploy/debian/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        false,
    ),
    (
        "/strata/deploy/debian/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.0",
        false,
    ),
    ("/strata/deploy/debian/abc.0", false),
    (
        "/strata/deploy/-a/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.0",
        false,
    ),
    (
        "/strata/deploy//aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.0",
        false,
    ),
    (
        "/strata/deploy/../aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.0",
        false,
    ),
    (
        "/strata/deploy/x/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.0/../../..",
        false,
    ),
    ("/etc/x", false),
];
