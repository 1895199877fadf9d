//! Removing a directory tree whatever its depth.
//!
//! `std::fs::remove_dir_all` recurses on the process stack and holds a
//! descriptor per level: a tree a server sent thousands of levels deep,
//! which checkout writes, then could not be removed again (measured here:
//! a stack overflow abort below 3000 levels on a 256 KiB thread, "Too many
//! open files" at 20,000 levels with the soft limit at 20,000). This walk
//! keeps its own stack of at most `OPEN_LEVELS` (64) open directories; a
//! directory deeper than that is moved up to the top of the tree being
//! removed and taken by a later pass, so memory and descriptors stay
//! bounded and every name is relative to an open directory (no PATH_MAX).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use crate::error::{IoContext, Result};

/// Directories held open at once by one pass.
const OPEN_LEVELS: usize = 64;

/// Removes `path` and everything below it, never following a symlink (a
/// symlink or file at `path` is itself removed). A missing `path` is not
/// an error: the state wanted is reached.
pub fn remove_tree(path: &Path) -> Result<()> {
    let Some(name) = path.file_name() else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput)).io_ctx("remove", path);
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(parent, flags, Mode::empty()) {
        Err(Errno::NOENT) => return Ok(()),
        r => r.io_ctx("open", parent)?,
    };
    remove_tree_at(fd.as_fd(), name, path)
}

/// Removes `name` in directory `parent` and everything below it, as
/// [`remove_tree`]; errors show paths under `shown` (its path).
pub fn remove_tree_at(parent: BorrowedFd<'_>, name: &OsStr, shown: &Path) -> Result<()> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let root = match rustix::fs::openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        // A symlink (ELOOP with O_NOFOLLOW) or anything not a directory.
        Err(Errno::LOOP | Errno::NOTDIR) => {
            return rustix::fs::unlinkat(parent, name, AtFlags::empty()).io_ctx("remove", shown);
        }
        Err(e) => return Err(e).io_ctx("open", shown),
    };
    let mut moved = 0u64;
    while empty_pass(&root, shown, &mut moved)? {}
    drop(root);
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR).io_ctx("remove", shown)
}

/// One open directory of a pass: its descriptor, its entries being read,
/// and its name in the level above.
struct Level {
    fd: OwnedFd,
    entries: Dir,
    name: OsString,
    path: PathBuf,
}

impl Level {
    fn open(fd: OwnedFd, name: OsString, path: PathBuf) -> Result<Self> {
        let entries = Dir::read_from(&fd).io_ctx("read directory", &path)?;
        Ok(Level {
            fd,
            entries,
            name,
            path,
        })
    }
}

/// Empties what it can of `root`: removes every file, and every directory
/// within [`OPEN_LEVELS`] levels whose contents it removed; deeper ones
/// are renamed into `root`. Returns whether `root` had any entry (another
/// pass is then needed to see it empty, and take what was moved up).
fn empty_pass(root: &OwnedFd, shown: &Path, moved: &mut u64) -> Result<bool> {
    let top = rustix::io::fcntl_dupfd_cloexec(root, 0).io_ctx("duplicate descriptor of", shown)?;
    let mut stack = vec![Level::open(top, OsString::new(), shown.to_owned())?];
    let mut found = false;
    loop {
        let depth = stack.len();
        let Some(level) = stack.last_mut() else {
            break;
        };
        let Some(entry) = level.entries.read() else {
            let done = stack.pop().expect("a level");
            if let Some(up) = stack.last() {
                drop(done.entries);
                rustix::fs::unlinkat(&up.fd, &done.name, AtFlags::REMOVEDIR)
                    .io_ctx("remove", &done.path)?;
            }
            continue;
        };
        let entry = entry.io_ctx("read directory", &level.path)?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        found |= depth == 1;
        let path = level.path.join(name);
        let is_dir = match entry.file_type() {
            FileType::Directory => true,
            FileType::Unknown => {
                let st = rustix::fs::statat(&level.fd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .io_ctx("stat", &path)?;
                FileType::from_raw_mode(st.st_mode) == FileType::Directory
            }
            _ => false,
        };
        if !is_dir {
            rustix::fs::unlinkat(&level.fd, name, AtFlags::empty()).io_ctx("remove", &path)?;
        } else if depth < OPEN_LEVELS {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd =
                rustix::fs::openat(&level.fd, name, flags, Mode::empty()).io_ctx("open", &path)?;
            let name = name.to_owned();
            stack.push(Level::open(fd, name, path)?);
        } else {
            move_up(&level.fd, name, root, &path, moved)?;
            found = true;
        }
    }
    Ok(found)
}

/// Renames directory `name` in `from` to a fresh name in `root`.
fn move_up(
    from: &OwnedFd,
    name: &OsStr,
    root: &OwnedFd,
    path: &Path,
    moved: &mut u64,
) -> Result<()> {
    loop {
        let to = format!(".strata-remove-{moved}");
        *moved += 1;
        match rustix::fs::renameat_with(from, name, root, &to, RenameFlags::NOREPLACE) {
            Err(Errno::EXIST) => continue,
            r => return r.io_ctx("move up", path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// `depth` nested directories `d` under `base`, each with a file and a
    /// symlink pointing out of the tree, made relative to open handles.
    fn deep(base: &Path, depth: usize) {
        fs::create_dir(base).expect("the base");
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let mut fd = rustix::fs::open(base, flags, Mode::empty()).expect("open the base");
        for _ in 0..depth {
            rustix::fs::mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).expect("mkdir");
            let f = rustix::fs::openat(&fd, "f", OFlags::CREATE | OFlags::WRONLY, Mode::RUSR)
                .expect("a file");
            drop(f);
            rustix::fs::symlinkat("/", &fd, "l").expect("a symlink");
            fd = rustix::fs::openat(&fd, "d", flags, Mode::empty()).expect("open");
        }
    }

    /// Pins issue 15: std's remove_dir_all overflowed this stack (an
    /// abort) on a tree 3000 levels deep; this removal needs none of it.
    #[test]
    fn a_tree_thousands_of_levels_deep_is_removed_on_a_small_stack() {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let base = tmp.path().join("deep");
        deep(&base, 5000);
        let b = base.clone();
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || remove_tree(&b))
            .expect("a thread")
            .join()
            .expect("no stack overflow")
            .expect("removed");
        assert!(!base.exists());
        assert!(Path::new("/").exists(), "symlinks are not followed");
    }

    #[test]
    fn symlinks_files_and_missing_paths() {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).expect("mkdir");
        fs::write(outside.join("keep"), "x").expect("a file");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&outside, &link).expect("a symlink");
        remove_tree(&link).expect("the symlink is removed");
        assert!(!link.exists() && outside.join("keep").exists());
        let file = tmp.path().join("file");
        fs::write(&file, "x").expect("a file");
        remove_tree(&file).expect("the file is removed");
        assert!(!file.exists());
        remove_tree(&tmp.path().join("missing")).expect("nothing to do");
        // A wide tree with a name the walk itself would use.
        let wide = tmp.path().join("wide");
        for i in 0..200 {
            fs::create_dir_all(wide.join(format!("{i}/a/b"))).expect("mkdir");
        }
        fs::create_dir(wide.join(".strata-remove-0")).expect("mkdir");
        remove_tree(&wide).expect("removed");
        assert!(!wide.exists() && outside.join("keep").exists());
    }
}
