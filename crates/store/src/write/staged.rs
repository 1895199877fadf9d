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
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// An open anonymous file, holding its slot in the budget.
pub(super) struct AnonFile {
    file: File,
    _slot: Slot,
}

/// One anonymous file's share of the descriptor budget, given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A slot if fewer than `budget` are taken.
    fn take(open: &Arc<AtomicUsize>, budget: usize) -> Option<Slot> {
        let slot = Slot(open.clone());
        (open.fetch_add(1, Ordering::Relaxed) < budget).then_some(slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A file being written: `path` is its staged name (for messages, and the
/// file itself when it is named). Dropped unfinished, it frees its slot,
/// or removes its named file (so the object can be offered again).
pub(super) struct NewFile {
    pub file: File,
    pub path: PathBuf,
    slot: Option<Slot>,
    unfinished: Unfinished,
}

impl NewFile {
    /// The staged object, once everything is written to it.
    pub fn staged(self) -> Staged {
        let NewFile {
            file,
            path,
            slot,
            unfinished,
        } = self;
        unfinished.keep();
        match slot {
            Some(slot) => Staged::Anon(AnonFile { file, _slot: slot }),
            None => Staged::Named(path),
        }
    }
}

/// A named staged file, removed on drop unless kept.
pub(super) struct Unfinished(Option<PathBuf>);

impl Unfinished {
    pub fn named(path: PathBuf) -> Self {
        Unfinished(Some(path))
    }

    /// The file is complete: it stays.
    pub fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// How an anonymous file gets a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// `linkat(fd, "", AT_EMPTY_PATH)`: needs CAP_DAC_READ_SEARCH before
    /// Linux 6.10 (root in a container often lacks it).
    EmptyPath,
    /// `linkat("/proc/self/fd/N", AT_SYMLINK_FOLLOW)`: needs /proc.
    Proc,
}

pub(super) struct Staging {
    pub dir: PathBuf,
    /// `dir`, open.
    dir_fd: File,
    /// `None` when this filesystem, kernel or process cannot stage
    /// anonymous files (found out by trying, once).
    link: Option<Link>,
    open: Arc<AtomicUsize>,
    budget: usize,
}

impl Staging {
    pub fn new(dir: PathBuf) -> Result<Self> {
        let dir_fd = File::open(&dir).io_ctx("open", &dir)?;
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        let budget = match limit {
            Some(n) => (usize::try_from(n)
                .unwrap_or(MAX_ANON)
                .saturating_sub(FD_RESERVE)
                / 2)
            .min(MAX_ANON),
            None => MAX_ANON,
        };
        let link = probe(&dir_fd);
        if link.is_some() {
            reserve_descriptors(&dir_fd, budget + FD_RESERVE);
        }
        Ok(Staging {
            dir,
            dir_fd,
            link,
            open: Arc::new(AtomicUsize::new(0)),
            budget,
        })
    }

    /// Creates a regular file to stage as `name`: anonymous when possible.
    pub fn create(&self, name: &str, mode: u32) -> Result<NewFile> {
        let path = self.dir.join(name);
        if self.link.is_some()
            && let Some(slot) = Slot::take(&self.open, self.budget)
        {
            let fd = rustix::fs::openat(
                &self.dir_fd,
                ".",
                OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode),
            )
            .map_err(std::io::Error::from)
            .io_ctx("create", &path)?;
            return Ok(NewFile {
                file: File::from(fd),
                path,
                slot: Some(slot),
                unfinished: Unfinished(None), // nothing named to remove
            });
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .io_ctx("create", &path)?;
        Ok(NewFile {
            file,
            unfinished: Unfinished::named(path.clone()),
            path,
            slot: None,
        })
    }

    /// An anonymous read-write file in the staging directory, for content
    /// whose checksum is known only once it is all read (see
    /// [`super::Transaction::write_content_from`]); the path is for
    /// messages. Where anonymous files cannot be made, a named file,
    /// removed at once: either way nothing of it outlives the handle.
    pub fn spool(&self) -> Result<(File, PathBuf)> {
        let path = self
            .dir
            .join(format!("spool-{}", crate::durable::unique_suffix()));
        let anon = rustix::fs::openat(
            &self.dir_fd,
            ".",
            OFlags::RDWR | OFlags::TMPFILE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        );
        if let Ok(fd) = anon {
            return Ok((File::from(fd), path));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .io_ctx("create", &path)?;
        std::fs::remove_file(&path).io_ctx("remove", &path)?;
        Ok((file, path))
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
            Staged::Anon(a) => match link(self.link, &a.file, objects, name) {
                Ok(()) | Err(Errno::EXIST) => Ok(()),
                Err(e) => Err(std::io::Error::from(e))
                    .io_ctx("link object into place", objects_path.join(name)),
            },
        }
    }
}

/// Names the anonymous file `file` as `name` in `dir`.
fn link(how: Option<Link>, file: &File, dir: &File, name: &str) -> rustix::io::Result<()> {
    match how {
        Some(Link::EmptyPath) => rustix::fs::linkat(file, "", dir, name, AtFlags::EMPTY_PATH),
        Some(Link::Proc) => {
            let fd = format!("/proc/self/fd/{}", file.as_raw_fd());
            rustix::fs::linkat(CWD, fd.as_str(), dir, name, AtFlags::SYMLINK_FOLLOW)
        }
        None => Err(Errno::NOTSUP),
    }
}

/// Grows this process's descriptor table to hold `count` descriptors now,
/// in one step. Left to grow by doubling as anonymous files open, it is
/// copied each time, and in a process with threads each copy waits for an
/// RCU grace period while every thread opening a file waits behind it
/// (measured: 340 ms of blocked threads in a 0.65 s pull). The table never
/// shrinks, so asking for its last slot once is enough; failing to is no
/// error, only slower.
fn reserve_descriptors(any: &File, count: usize) {
    if let Ok(last) = i32::try_from(count.saturating_sub(1)) {
        drop(rustix::io::fcntl_dupfd_cloexec(any, last));
    }
}

/// Finds how this process can stage anonymous files in `dir`: makes one
/// and names it each way (then removes it). `None` when no way works.
fn probe(dir: &File) -> Option<Link> {
    let file = rustix::fs::openat(
        dir,
        ".",
        OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .ok()
    .map(File::from)?;
    let name = format!(".probe-{}", crate::durable::unique_suffix());
    [Link::EmptyPath, Link::Proc].into_iter().find(|how| {
        link(Some(*how), &file, dir, &name).is_ok()
            && rustix::fs::unlinkat(dir, name.as_str(), AtFlags::empty()).is_ok()
    })
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

    fn check_linking(how: Link) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut staging = Staging::new(tmp.path().to_owned()).expect("staging");
        assert!(staging.link.is_some(), "ext4 and tmpfs have O_TMPFILE");
        staging.link = Some(how);
        let here = File::open(tmp.path()).expect("open");
        let staged = stage(&staging, "a", b"hello");
        assert!(matches!(staged, Staged::Anon(_)), "{how:?}");
        assert_eq!(staging.open.load(Ordering::Relaxed), 1);
        staging
            .place(&staged, &here, tmp.path(), "dest")
            .expect("link");
        // Already there: the same object, so placing again is no error.
        staging
            .place(&staged, &here, tmp.path(), "dest")
            .expect("link again");
        drop(staged);
        assert_eq!(staging.open.load(Ordering::Relaxed), 0);
        assert_eq!(
            std::fs::read(tmp.path().join("dest")).expect("read"),
            b"hello"
        );
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["dest"], "nothing named but the placed object");
    }

    #[test]
    fn anonymous_files_are_linked_into_place() {
        // As a process without CAP_DAC_READ_SEARCH must.
        check_linking(Link::Proc);
        if rustix::process::geteuid().is_root() {
            check_linking(Link::EmptyPath);
        } else {
            crate::test_util::skip("linkat(AT_EMPTY_PATH) needs root");
        }
    }

    #[test]
    fn an_unfinished_file_gives_its_slot_back() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let staging = Staging::new(tmp.path().to_owned()).expect("staging");
        let f = staging.create("a", 0o644).expect("create");
        assert_eq!(staging.open.load(Ordering::Relaxed), 1);
        drop(f);
        assert_eq!(staging.open.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn named_files_past_the_descriptor_budget() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut staging = Staging::new(tmp.path().to_owned()).expect("staging");
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
        // A named file dropped unfinished is removed: the name is free again.
        staging.budget = 0;
        let unfinished = staging.create("e", 0o644).expect("create");
        assert!(tmp.path().join("e").exists());
        drop(unfinished);
        assert!(!tmp.path().join("e").exists(), "an unfinished file stays");
        assert!(matches!(stage(&staging, "e", b"5"), Staged::Named(_)));
    }

    #[test]
    fn the_descriptor_table_is_grown_for_the_whole_budget_at_once() {
        let fd_size = || {
            let status = std::fs::read_to_string("/proc/self/status").expect("status");
            status
                .lines()
                .find_map(|l| l.strip_prefix("FDSize:"))
                .and_then(|n| n.trim().parse::<usize>().ok())
                .expect("FDSize")
        };
        let tmp = tempfile::tempdir().expect("tempdir");
        let staging = Staging::new(tmp.path().to_owned()).expect("staging");
        assert!(staging.link.is_some(), "ext4 and tmpfs have O_TMPFILE");
        assert!(
            fd_size() >= staging.budget + FD_RESERVE,
            "table of {} descriptors for a budget of {}",
            fd_size(),
            staging.budget
        );
    }
}
