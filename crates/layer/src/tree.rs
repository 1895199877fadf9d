//! Small filesystem helpers for build directories.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::error::{IoContext, Result};

/// Makes directory `rel` (and its parents) in `upper` where missing, each
/// with the mode and owner of the same directory in `lower` (0755 root
/// when `lower` has none): an upper directory's metadata replaces the
/// base's in the commit, so it must not change by accident.
pub fn ensure_dir_like(upper: &Path, lower: &Path, rel: &Path) -> Result<()> {
    let mut at = upper.to_path_buf();
    let mut below = lower.to_path_buf();
    for part in rel.components() {
        at.push(part);
        below.push(part);
        if fs::symlink_metadata(&at).is_ok() {
            continue;
        }
        fs::create_dir(&at).ctx("create", &at)?;
        let (mode, uid, gid) = match fs::symlink_metadata(&below) {
            Ok(m) if m.is_dir() => (m.mode() & 0o7777, m.uid(), m.gid()),
            _ => (0o755, 0, 0),
        };
        fs::set_permissions(&at, fs::Permissions::from_mode(mode)).ctx("chmod", &at)?;
        std::os::unix::fs::lchown(&at, Some(uid), Some(gid)).ctx("chown", &at)?;
    }
    Ok(())
}

/// Gives directory `to` the mode, owner and extended attributes of `from`
/// (the overlay's upper root stands for the tree's root in the commit).
pub fn copy_dir_meta(from: &Path, to: &Path) -> Result<()> {
    let m = fs::symlink_metadata(from).ctx("stat", from)?;
    std::os::unix::fs::lchown(to, Some(m.uid()), Some(m.gid())).ctx("chown", to)?;
    fs::set_permissions(to, fs::Permissions::from_mode(m.mode() & 0o7777)).ctx("chmod", to)?;
    strata_store::xattr::set_path(to, &strata_store::xattr::read(from)?)?;
    Ok(())
}

/// Removes a file that a sandbox bind made as a mount point in the upper
/// directory (`usr/sbin/policy-rc.d`), when the base has none there.
pub fn remove_mount_point_file(upper: &Path, lower: &Path, rel: &str) -> Result<()> {
    let at = upper.join(rel);
    let made = fs::symlink_metadata(&at).is_ok_and(|m| m.is_file() && m.len() == 0);
    if made && fs::symlink_metadata(lower.join(rel)).is_err() {
        fs::remove_file(&at).ctx("remove", &at)?;
    }
    Ok(())
}

/// Whether `path` is a mount point (its device differs from its parent's).
pub fn is_mount_point(path: &Path) -> bool {
    let (Ok(m), Some(Ok(p))) = (
        fs::symlink_metadata(path),
        path.parent().map(fs::symlink_metadata),
    ) else {
        return false;
    };
    m.dev() != p.dev() || m.ino() == p.ino()
}

/// Removes an empty directory that a sandbox made as a mount point in the
/// upper directory (`/etc`, `/run`…), when the base has none there.
pub fn remove_mount_point_dir(upper: &Path, lower: &Path, name: &str) -> Result<()> {
    let at = upper.join(name);
    let empty = fs::read_dir(&at).is_ok_and(|mut d| d.next().is_none());
    if empty && fs::symlink_metadata(lower.join(name)).is_err() {
        fs::remove_dir(&at).ctx("remove", &at)?;
    }
    Ok(())
}
