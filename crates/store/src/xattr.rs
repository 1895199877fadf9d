//! Reading and writing extended attributes, without following symlinks.
//!
//! OSTree serializes xattr names with their trailing NUL; this module
//! converts at the boundary so [`Xattrs`] always holds the OSTree form.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::objects::Xattrs;

/// All xattrs of `path` (not following a final symlink), sorted by name.
pub fn read(path: &Path) -> Result<Xattrs> {
    read_via(path, path)
}

/// All xattrs of entry `name` of open directory `dir`, whose path is
/// `shown` (not following it if it is a symlink), sorted by name. Linux
/// has no `*xattrat` calls before 6.13: a path shorter than PATH_MAX is
/// used as it is (no /proc needed, as in a chroot), a longer one through
/// the short `/proc/self/fd/N/NAME`.
pub fn read_at(dir: impl AsFd, name: &std::ffi::OsStr, shown: &Path) -> Result<Xattrs> {
    read_via(&short_path(dir, name, shown), shown)
}

/// Sets each xattr on entry `name` of open directory `dir`, whose path is
/// `shown`, not following it if it is a symlink (see [`read_at`]).
pub fn set_at(dir: impl AsFd, name: &std::ffi::OsStr, shown: &Path, xattrs: &Xattrs) -> Result<()> {
    let via = short_path(dir, name, shown);
    for (key, value) in xattrs {
        rustix::fs::lsetxattr(&via, &c_name(key)?, value, rustix::fs::XattrFlags::empty())
            .io_ctx("set xattr on", shown)?;
    }
    Ok(())
}

/// `shown` if a system call takes it, else `/proc/self/fd/N/NAME`.
fn short_path(dir: impl AsFd, name: &std::ffi::OsStr, shown: &Path) -> std::path::PathBuf {
    use std::os::fd::AsRawFd;
    if shown.as_os_str().len() < 4000 {
        return shown.to_owned();
    }
    Path::new("/proc/self/fd")
        .join(dir.as_fd().as_raw_fd().to_string())
        .join(name)
}

fn read_via(path: &Path, shown: &Path) -> Result<Xattrs> {
    let mut names = vec![0u8; 256];
    let len = loop {
        match rustix::fs::llistxattr(path, &mut names) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => names.resize(names.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e).io_ctx("list xattrs of", shown),
        }
    };
    names.truncate(len);
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cname = c_name(name)?;
        let mut value = vec![0u8; 256];
        let vlen = loop {
            match rustix::fs::lgetxattr(path, &cname, &mut value) {
                Ok(n) => break n,
                Err(rustix::io::Errno::RANGE) => value.resize(value.len() * 4, 0),
                Err(e) => return Err(e).io_ctx("read xattr of", shown),
            }
        };
        value.truncate(vlen);
        // ostree leaves out xattrs with empty values; so must we, or the
        // same tree would give a different checksum.
        if value.is_empty() {
            continue;
        }
        let mut key = name.to_vec();
        key.push(0);
        out.push((key, value));
    }
    out.sort();
    Ok(out)
}

fn c_name(name: &[u8]) -> Result<CString> {
    let trimmed = name.strip_suffix(&[0]).unwrap_or(name);
    CString::new(trimmed).map_err(|_| crate::Error::XattrName {
        name: String::from_utf8_lossy(trimmed).into_owned(),
    })
}

/// Sets each xattr on an open file.
pub fn set_fd(fd: impl AsFd, xattrs: &Xattrs, path: &Path) -> Result<()> {
    for (name, value) in xattrs {
        rustix::fs::fsetxattr(&fd, &c_name(name)?, value, rustix::fs::XattrFlags::empty())
            .io_ctx("set xattr on", path)?;
    }
    Ok(())
}

/// Sets each xattr on `path` itself (a symlink is not followed).
pub fn set_path(path: &Path, xattrs: &Xattrs) -> Result<()> {
    for (name, value) in xattrs {
        rustix::fs::lsetxattr(path, &c_name(name)?, value, rustix::fs::XattrFlags::empty())
            .io_ctx("set xattr on", path)?;
    }
    Ok(())
}

/// Reads one xattr of an open file, `None` when absent.
pub fn get_fd(fd: impl AsFd, name: &str, path: &Path) -> Result<Option<Vec<u8>>> {
    let cname = c_name(name.as_bytes())?;
    let mut value = vec![0u8; 512];
    loop {
        match rustix::fs::fgetxattr(&fd, &cname, &mut value) {
            Ok(n) => {
                value.truncate(n);
                return Ok(Some(value));
            }
            Err(rustix::io::Errno::RANGE) => value.resize(value.len() * 4, 0),
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e).io_ctx("read xattr of", path),
        }
    }
}
