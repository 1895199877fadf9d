//! A handle into a directory tree that moves by names, one directory open
//! at a time: the `/etc` merge reads and writes through it, never through
//! path strings.
//!
//! Each step down opens a name relative to the directory handle with
//! `O_NOFOLLOW | O_DIRECTORY`, so a symlink in the tree is never followed
//! (a symlink to `/` in a machine's `/etc` cannot send a write outside the
//! deployment), and a tree of any depth needs neither a deep stack nor a
//! path within `PATH_MAX`. A step up opens `..` and checks it is the
//! directory the cursor came down from (device and inode), so a directory
//! moved meanwhile is an error, not a walk somewhere else.

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, Stat};
use strata_store::error::{IoContext, Result};

/// One directory on the way down: its identity and what it is like.
#[derive(Debug, Clone, Copy)]
pub struct Level {
    dev: u64,
    ino: u64,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl Level {
    fn of(st: &Stat) -> Level {
        Level {
            dev: st.st_dev,
            ino: st.st_ino,
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode,
        }
    }
}

/// An open directory of the tree at `root`, and the names leading to it.
pub struct Cursor {
    root: PathBuf,
    fd: OwnedFd,
    names: Vec<OsString>,
    /// The root and each directory down to this one: `names.len() + 1`.
    levels: Vec<Level>,
}

const DIR_FLAGS: OFlags = OFlags::DIRECTORY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::RDONLY)
    .union(OFlags::CLOEXEC);

/// The components of `rel` ("a/b/c"; "" is the root).
pub fn components(rel: &OsStr) -> impl Iterator<Item = &OsStr> {
    rel.as_bytes()
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(OsStr::from_bytes)
}

/// `dir/name`, or `name` at the root.
pub fn join(dir: &OsStr, name: &OsStr) -> OsString {
    if dir.is_empty() {
        return name.to_owned();
    }
    let mut out = dir.to_owned();
    out.push("/");
    out.push(name);
    out
}

/// The parent of `rel` ("" at the root) and its last name.
pub fn split_last(rel: &OsStr) -> (&OsStr, &OsStr) {
    let b = rel.as_bytes();
    match b.iter().rposition(|&c| c == b'/') {
        Some(i) => (OsStr::from_bytes(&b[..i]), OsStr::from_bytes(&b[i + 1..])),
        None => (OsStr::new(""), rel),
    }
}

impl Cursor {
    /// A cursor at `root`, which must be a directory (not a symlink to one).
    pub fn open(root: &Path) -> Result<Cursor> {
        let fd = rustix::fs::open(root, DIR_FLAGS, Mode::empty()).io_ctx("open", root)?;
        let st = rustix::fs::fstat(&fd).io_ctx("stat", root)?;
        Ok(Cursor {
            root: root.to_owned(),
            fd,
            names: Vec::new(),
            levels: vec![Level::of(&st)],
        })
    }

    /// The directory the cursor is at.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// `name` in the current directory, for error messages only (it may
    /// be longer than `PATH_MAX`; nothing opens it).
    pub fn path_of(&self, name: &OsStr) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(&self.names);
        p.push(name);
        p
    }

    fn here(&self) -> PathBuf {
        self.path_of(OsStr::new(""))
    }

    /// How many directories below the root the cursor is.
    pub fn depth(&self) -> usize {
        self.names.len()
    }

    /// The directory `depth` levels below the root on the way here (0: the
    /// root itself).
    pub fn level(&self, depth: usize) -> Level {
        self.levels[depth]
    }

    /// Moves to the directory `rel` (relative to the root).
    pub fn cd(&mut self, rel: &OsStr) -> Result<()> {
        self.cd_with(rel, |_, _| Ok(()))
    }

    /// Moves to `rel` like [`Cursor::cd`]; where a directory on the way is
    /// missing, `create(self, name)` is called at its parent to make it.
    pub fn cd_with(
        &mut self,
        rel: &OsStr,
        mut create: impl FnMut(&Cursor, &OsStr) -> Result<()>,
    ) -> Result<()> {
        let target: Vec<&OsStr> = components(rel).collect();
        let common = self
            .names
            .iter()
            .zip(&target)
            .take_while(|(a, b)| a.as_os_str() == **b)
            .count();
        while self.names.len() > common {
            self.up()?;
        }
        for name in &target[common..] {
            match self.down(name) {
                Err(e) if e.is_io_kind(std::io::ErrorKind::NotFound) => {
                    create(self, name)?;
                    self.down(name)?;
                }
                r => r?,
            }
        }
        Ok(())
    }

    fn down(&mut self, name: &OsStr) -> Result<()> {
        let path = || self.path_of(name);
        let fd = rustix::fs::openat(&self.fd, name, DIR_FLAGS, Mode::empty())
            .io_ctx("open directory", path())?;
        let st = rustix::fs::fstat(&fd).io_ctx("stat", path())?;
        self.fd = fd;
        self.names.push(name.to_owned());
        self.levels.push(Level::of(&st));
        Ok(())
    }

    fn up(&mut self) -> Result<()> {
        let fd = rustix::fs::openat(&self.fd, "..", DIR_FLAGS, Mode::empty())
            .io_ctx("open the parent of", self.here())?;
        let st = rustix::fs::fstat(&fd).io_ctx("stat the parent of", self.here())?;
        let want = self.levels[self.levels.len() - 2];
        if (st.st_dev, st.st_ino) != (want.dev, want.ino) {
            return Err(std::io::Error::other(
                "moved while the /etc merge walked it",
            ))
            .io_ctx("return to the parent of", self.here());
        }
        self.fd = fd;
        self.names.pop();
        self.levels.pop();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_by_components() {
        assert_eq!(components(OsStr::new("")).count(), 0);
        assert_eq!(
            components(OsStr::new("a/b/c")).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(join(OsStr::new(""), OsStr::new("a")), "a");
        assert_eq!(join(OsStr::new("a"), OsStr::new("b")), "a/b");
        assert_eq!(
            split_last(OsStr::new("a")),
            (OsStr::new(""), OsStr::new("a"))
        );
        assert_eq!(
            split_last(OsStr::new("a/b/c")),
            (OsStr::new("a/b"), OsStr::new("c"))
        );
    }

    #[test]
    fn a_symlink_on_the_way_is_not_followed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
        std::os::unix::fs::symlink(tmp.path(), root.join("out")).expect("symlink");
        let mut c = Cursor::open(&root).expect("open");
        c.cd(OsStr::new("a/b")).expect("down");
        c.cd(OsStr::new("a")).expect("up");
        assert_eq!(c.names, ["a"]);
        let e = c.cd(OsStr::new("out")).expect_err("through a symlink");
        assert!(e.to_string().contains("out"), "{e}");
    }
}
