//! Where a transaction's objects wait until their data is durable, and how
//! they then get their final names under `objects/`.
//!
//! A regular file is staged as an anonymous file (`O_TMPFILE`) of the
//! staging directory's filesystem and linked under its final name once a
//! `syncfs` made its data durable. Otherwise (a symlink, a filesystem
//! without `O_TMPFILE`, no file descriptors to spare) it is a named file in
//! the staging directory, renamed into place.
//!
//! Why: an anonymous file costs no directory entry, and linking it into
//! `objects/XX/` locks only that directory, while a rename between two
//! directories takes the filesystem-wide rename lock (measured: 6,200
//! renames on two cores took as long as on one). A crash leaves no
//! anonymous file behind: the kernel frees it.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rustix::fs::{AtFlags, CWD, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{IoContext, Result};

/// Anonymous files allowed open at once when the file limit is unlimited.
const MAX_ANON: usize = 1 << 16;
/// File descriptors left for everything else (connections, the tree walk).
const FD_RESERVE: usize = 256;

/// One staged object, ready to be placed.
pub(super) enum Staged {
    Named(PathBuf),
    Anon(AnonFile),
}

/// An open anonymous file; dropping it frees its slot in the budget.
pub(super) struct AnonFile {
    file: File,
    open: Arc<AtomicUsize>,
}

impl Drop for AnonFile {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A file being written: `path` is its staged name (for messages, and the
/// file itself when it is named).
pub(super) struct NewFile {
    pub file: File,
    pub path: PathBuf,
    anon: Option<Arc<AtomicUsize>>,
}

impl NewFile {
    /// The staged object, once everything is written to it.
    pub fn staged(self) -> Staged {
        match self.anon {
            Some(open) => Staged::Anon(AnonFile {
                file: self.file,
                open,
            }),
            None => Staged::Named(self.path),
        }
    }
}

pub(super) struct Staging {
    pub dir: PathBuf,
    /// `dir`, open.
    dir_fd: File,
    /// Cleared when the filesystem refuses `O_TMPFILE`.
    anon_works: AtomicBool,
    open: Arc<AtomicUsize>,
    budget: usize,
    /// Link through `/proc/self/fd` (without CAP_DAC_READ_SEARCH,
    /// `linkat(AT_EMPTY_PATH)` is refused).
    link_by_proc: bool,
}

impl Staging {
    pub fn new(dir: PathBuf, privileged: bool) -> Result<Self> {
        let dir_fd = rustix::fs::open(
            &dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map(File::from)
        .map_err(std::io::Error::from)
        .io_ctx("open", &dir)?;
        let link_by_proc = !privileged;
        let usable = !link_by_proc || Path::new("/proc/self/fd").is_dir();
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        let budget = match limit {
            Some(n) => (usize::try_from(n)
                .unwrap_or(MAX_ANON)
                .saturating_sub(FD_RESERVE)
                / 2)
            .min(MAX_ANON),
            None => MAX_ANON,
        };
        Ok(Staging {
            dir,
            dir_fd,
            anon_works: AtomicBool::new(usable),
            open: Arc::new(AtomicUsize::new(0)),
            budget,
            link_by_proc,
        })
    }

    /// Creates a regular file to stage as `name`: anonymous when possible.
    pub fn create(&self, name: &str, mode: u32) -> Result<NewFile> {
        let path = self.dir.join(name);
        if self.anon_works.load(Ordering::Relaxed) {
            if self.open.fetch_add(1, Ordering::Relaxed) < self.budget {
                match rustix::fs::openat(
                    &self.dir_fd,
                    ".",
                    OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
                    Mode::from_raw_mode(mode),
                ) {
                    Ok(fd) => {
                        return Ok(NewFile {
                            file: File::from(fd),
                            path,
                            anon: Some(self.open.clone()),
                        });
                    }
                    // Filesystems and kernels without O_TMPFILE.
                    Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => {
                        self.anon_works.store(false, Ordering::Relaxed);
                    }
                    Err(e) => {
                        self.open.fetch_sub(1, Ordering::Relaxed);
                        return Err(std::io::Error::from(e)).io_ctx("create", &path);
                    }
                }
            }
            self.open.fetch_sub(1, Ordering::Relaxed);
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .io_ctx("create", &path)?;
        Ok(NewFile {
            file,
            path,
            anon: None,
        })
    }

    /// Gives `staged` its final name: `name` in the directory `objects`,
    /// found at `objects_path`. Only for objects whose data is durable. An
    /// object already there is the same object (its name is its checksum),
    /// so it stays.
    pub fn place(
        &self,
        staged: &Staged,
        objects: &File,
        objects_path: &Path,
        name: &str,
    ) -> Result<()> {
        match staged {
            Staged::Named(path) => rustix::fs::renameat(CWD, path, objects, name)
                .map_err(std::io::Error::from)
                .io_ctx("move object into place", objects_path.join(name)),
            Staged::Anon(a) => {
                let linked = if self.link_by_proc {
                    let fd = format!("/proc/self/fd/{}", a.file.as_raw_fd());
                    rustix::fs::linkat(CWD, fd.as_str(), objects, name, AtFlags::SYMLINK_FOLLOW)
                } else {
                    rustix::fs::linkat(&a.file, "", objects, name, AtFlags::EMPTY_PATH)
                };
                match linked {
                    Ok(()) | Err(Errno::EXIST) => Ok(()),
                    Err(e) => Err(std::io::Error::from(e))
                        .io_ctx("link object into place", objects_path.join(name)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn stage(staging: &Staging, name: &str, data: &[u8]) -> Staged {
        let mut f = staging.create(name, 0o644).expect("create");
        f.file.write_all(data).expect("write");
        f.staged()
    }

    fn check_linking(privileged: bool) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let staging = Staging::new(tmp.path().to_owned(), privileged).expect("staging");
        let here = File::open(tmp.path()).expect("open");
        let staged = stage(&staging, "a", b"hello");
        assert!(matches!(staged, Staged::Anon(_)), "anonymous on ext4/tmpfs");
        assert_eq!(staging.open.load(Ordering::Relaxed), 1);
        let dest = tmp.path().join("dest");
        staging
            .place(&staged, &here, tmp.path(), "dest")
            .expect("link");
        // Already there: the same object, so placing again is no error.
        staging
            .place(&staged, &here, tmp.path(), "dest")
            .expect("link again");
        drop(staged);
        assert_eq!(staging.open.load(Ordering::Relaxed), 0);
        assert_eq!(std::fs::read(&dest).expect("read"), b"hello");
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["dest"], "nothing named but the placed object");
    }

    #[test]
    fn anonymous_files_are_linked_into_place() {
        // Through /proc/self/fd, as an unprivileged user must.
        check_linking(false);
        if rustix::process::geteuid().is_root() {
            check_linking(true);
        } else {
            eprintln!("skipping linkat(AT_EMPTY_PATH): needs root");
        }
    }

    #[test]
    fn named_files_past_the_descriptor_budget() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut staging = Staging::new(tmp.path().to_owned(), false).expect("staging");
        let here = File::open(tmp.path()).expect("open");
        staging.budget = 1;
        let first = stage(&staging, "a", b"1");
        let second = stage(&staging, "b", b"2");
        assert!(matches!(first, Staged::Anon(_)));
        assert!(matches!(&second, Staged::Named(p) if p == &tmp.path().join("b")));
        staging
            .place(&second, &here, tmp.path(), "dest")
            .expect("rename");
        assert_eq!(std::fs::read(tmp.path().join("dest")).expect("read"), b"2");
        drop(first);
        assert!(
            matches!(stage(&staging, "c", b"3"), Staged::Anon(_)),
            "a slot is free again"
        );
    }
}
