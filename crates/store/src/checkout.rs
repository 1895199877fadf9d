//! Checking a commit out into a directory.
//!
//! Every file is created relative to an open handle of its parent
//! directory, with `O_NOFOLLOW`, after names were validated when their
//! dirtree was parsed: whatever symlinks the tree or an existing
//! destination holds, nothing is written outside the destination.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::checksum::Checksum;
use crate::error::{Error, IoContext, Result};
use crate::objects::{DirMeta, DirTree, ObjectType};
use crate::repo::{Repo, RepoMode};

/// How [`Repo::checkout`] writes the tree.
#[derive(Debug, Clone, Default)]
pub struct CheckoutOptions {
    /// Copy file contents instead of hardlinking them from a bare repository.
    pub copy: bool,
    /// Write into an existing non-empty destination, replacing files.
    pub union: bool,
    /// Check out only this path of the commit (a directory or a file).
    pub subpath: Option<String>,
}

/// What a checkout wrote.
#[derive(Debug, Default, Clone)]
pub struct CheckoutStats {
    /// Non-directory entries written (regular files and symlinks).
    pub files: u64,
    /// Directories written below the destination.
    pub dirs: u64,
    /// Of `files`, those hardlinked from the repository instead of copied.
    pub hardlinked: u64,
}

struct Ctx<'r> {
    repo: &'r Repo,
    hardlink: bool,
    union: bool,
    privileged: bool,
    euid: u32,
    metas: Mutex<HashMap<Checksum, DirMeta>>,
    files: AtomicU64,
    dirs: AtomicU64,
    hardlinked: AtomicU64,
}

/// A directory to fill with `tree`, at `path`.
struct DirJob {
    at: DirAt,
    path: PathBuf,
    tree: Checksum,
}

enum DirAt {
    /// Made and open already (the destination).
    Open(OwnedFd),
    /// To be made as `name` in `parent`, with dirmeta `meta`: a job opens
    /// its own directory, so pending jobs hold only their parents open.
    In {
        parent: Arc<OwnedFd>,
        name: String,
        meta: Checksum,
    },
}

enum Node {
    Dir(Checksum, Checksum),
    File(String, Checksum),
}

impl Repo {
    /// Checks out `commit` (or a subpath of it) into `dest`.
    pub fn checkout(
        &self,
        commit: &Checksum,
        dest: &Path,
        opts: &CheckoutOptions,
    ) -> Result<CheckoutStats> {
        let c = self.load_commit(commit)?;
        let mut node = Node::Dir(c.root_tree, c.root_meta);
        if let Some(sub) = &opts.subpath {
            for part in sub.split('/').filter(|p| !p.is_empty() && *p != ".") {
                let Node::Dir(tree, _) = node else {
                    return Err(Error::BadInput {
                        path: PathBuf::from(sub),
                        what: "a path component is not a directory".into(),
                    });
                };
                let t = self.load_dirtree(&tree)?;
                node = if let Some(d) = t.dirs.iter().find(|d| d.name == part) {
                    Node::Dir(d.tree, d.meta)
                } else if let Some((n, f)) = t.files.iter().find(|(n, _)| n == part) {
                    Node::File(n.clone(), *f)
                } else {
                    return Err(Error::BadInput {
                        path: PathBuf::from(sub),
                        what: format!("no such file or directory in commit {commit}"),
                    });
                };
            }
        }
        let ctx = Ctx {
            repo: self,
            hardlink: !opts.copy && self.mode() == RepoMode::Bare,
            union: opts.union,
            privileged: rustix::process::geteuid().is_root(),
            euid: rustix::process::geteuid().as_raw(),
            metas: Mutex::new(HashMap::new()),
            files: AtomicU64::new(0),
            dirs: AtomicU64::new(0),
            hardlinked: AtomicU64::new(0),
        };
        let existed = match fs::symlink_metadata(dest) {
            Ok(m) if m.is_dir() => true,
            Ok(_) => {
                return Err(Error::BadInput {
                    path: dest.to_owned(),
                    what: "exists and is not a directory".into(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(e).io_ctx("stat", dest),
        };
        if existed
            && !opts.union
            && fs::read_dir(dest)
                .io_ctx("read directory", dest)?
                .next()
                .is_some()
        {
            return Err(Error::BadInput {
                path: dest.to_owned(),
                what: "destination is not empty (use --union to write into it)".into(),
            });
        }
        if !existed {
            fs::create_dir(dest).io_ctx("create", dest)?;
        }
        let fd = rustix::fs::open(
            dest,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .io_ctx("open", dest)?;
        match node {
            Node::Dir(tree, meta) => {
                let keep = rustix::io::fcntl_dupfd_cloexec(&fd, 0)
                    .io_ctx("duplicate descriptor of", dest)?;
                ctx.fill_tree(fd, dest, &tree)?;
                ctx.apply_dirmeta(&keep, dest, &meta)?;
            }
            Node::File(name, csum) => ctx.place_file(&fd, dest, &name, &csum)?,
        }
        Ok(CheckoutStats {
            files: ctx.files.into_inner(),
            dirs: ctx.dirs.into_inner(),
            hardlinked: ctx.hardlinked.into_inner(),
        })
    }
}

impl Ctx<'_> {
    fn dirmeta(&self, c: &Checksum) -> Result<DirMeta> {
        // A map stays whole when a panic interrupts an insert; see
        // `write::transaction::lock` for the policy on poisoned locks.
        let metas = || self.metas.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = metas().get(c).cloned() {
            return Ok(m);
        }
        let m = self.repo.load_dirmeta(c)?;
        metas().insert(*c, m.clone());
        Ok(m)
    }

    /// Fills directory `fd` (at `path`) with `tree`, every level below
    /// included. Each directory is a job on rayon's heap-allocated queue,
    /// never a stack frame: a tree thousands of levels deep (which any
    /// server can send) costs memory for its pending jobs, not stack. A
    /// job makes and opens its own directory, and most directories get
    /// their metadata then (see [`Ctx::settle_dirmeta`]), so a directory's
    /// descriptor stays open only while its subdirectories wait to be
    /// made; one whose metadata waits stays open until the end.
    fn fill_tree(&self, fd: OwnedFd, path: &Path, tree: &Checksum) -> Result<()> {
        let failed: Mutex<Option<Error>> = Mutex::new(None);
        let deferred: Mutex<Vec<(OwnedFd, PathBuf, Checksum)>> = Mutex::new(Vec::new());
        rayon::scope(|scope| {
            let job = DirJob {
                at: DirAt::Open(fd),
                path: path.to_owned(),
                tree: *tree,
            };
            self.spawn_dir(scope, job, &failed, &deferred);
        });
        if let Some(e) = failed.into_inner().unwrap_or_else(PoisonError::into_inner) {
            return Err(e);
        }
        for (fd, path, meta) in deferred
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
        {
            self.apply_dirmeta(&fd, &path, &meta)?;
        }
        Ok(())
    }

    fn spawn_dir<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        job: DirJob,
        failed: &'s Mutex<Option<Error>>,
        deferred: &'s Mutex<Vec<(OwnedFd, PathBuf, Checksum)>>,
    ) {
        scope.spawn(move |scope| {
            // After a failure, the jobs still queued do nothing.
            if failed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some()
            {
                return;
            }
            match self.fill_one(job, deferred) {
                Ok(children) => {
                    for child in children {
                        self.spawn_dir(scope, child, failed, deferred);
                    }
                }
                Err(e) => {
                    failed
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_or_insert(e);
                }
            }
        });
    }

    /// Makes the job's directory (unless made), writes its files, and
    /// returns the jobs of its subdirectories.
    fn fill_one(
        &self,
        job: DirJob,
        deferred: &Mutex<Vec<(OwnedFd, PathBuf, Checksum)>>,
    ) -> Result<Vec<DirJob>> {
        let fd = match job.at {
            DirAt::Open(fd) => fd,
            DirAt::In { parent, name, meta } => {
                let fd = self.make_dir(&parent, &job.path, &name)?;
                drop(parent);
                self.dirs.fetch_add(1, Ordering::Relaxed);
                self.settle_dirmeta(&fd, &job.path, &meta, deferred)?;
                fd
            }
        };
        let tree: DirTree = self.repo.load_dirtree(&job.tree)?;
        for (name, csum) in &tree.files {
            self.place_file(&fd, &job.path, name, csum)?;
        }
        let fd = Arc::new(fd);
        Ok(tree
            .dirs
            .iter()
            .map(|d| DirJob {
                at: DirAt::In {
                    parent: Arc::clone(&fd),
                    name: d.name.clone(),
                    meta: d.meta,
                },
                path: job.path.join(&d.name),
                tree: d.tree,
            })
            .collect())
    }

    /// Gives a new directory its metadata now if that leaves this process
    /// able to write into it (its owner, with write and search bits), as
    /// ostree's checkout would find it; otherwise (a 0555 directory, or
    /// one root gives to another user, which root without
    /// CAP_DAC_OVERRIDE could not enter) once everything is written.
    fn settle_dirmeta(
        &self,
        fd: &OwnedFd,
        path: &Path,
        meta: &Checksum,
        deferred: &Mutex<Vec<(OwnedFd, PathBuf, Checksum)>>,
    ) -> Result<()> {
        let m = self.dirmeta(meta)?;
        let owner_can_write = m.mode & 0o300 == 0o300;
        if owner_can_write && (!self.privileged || m.uid == self.euid) {
            return self.apply_dirmeta(fd, path, meta);
        }
        let dup = rustix::io::fcntl_dupfd_cloexec(fd, 0).io_ctx("duplicate descriptor of", path)?;
        deferred
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((dup, path.to_owned(), *meta));
        Ok(())
    }

    /// Creates (or, in union mode, reuses) a real directory `name` in `parent`.
    fn make_dir(&self, parent: &OwnedFd, path: &Path, name: &str) -> Result<OwnedFd> {
        match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => {}
            Err(Errno::EXIST) if self.union => {
                let st = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                    .io_ctx("stat", path)?;
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    != rustix::fs::FileType::Directory
                {
                    // A file or symlink where the commit has a directory: replace it,
                    // never follow it.
                    rustix::fs::unlinkat(parent, name, AtFlags::empty()).io_ctx("remove", path)?;
                    rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
                        .io_ctx("create", path)?;
                }
            }
            Err(e) => return Err(e).io_ctx("create directory", path),
        }
        rustix::fs::openat(
            parent,
            name,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .io_ctx("open", path)
    }

    fn apply_dirmeta(&self, fd: &OwnedFd, path: &Path, meta: &Checksum) -> Result<()> {
        let m = self.dirmeta(meta)?;
        if self.privileged {
            rustix::fs::fchown(
                fd,
                Some(rustix::fs::Uid::from_raw(m.uid)),
                Some(rustix::fs::Gid::from_raw(m.gid)),
            )
            .io_ctx("chown", path)?;
            crate::xattr::set_fd(fd, &m.xattrs, path)?;
        }
        rustix::fs::fchmod(fd, Mode::from_raw_mode(m.mode & 0o7777)).io_ctx("chmod", path)?;
        Ok(())
    }

    fn place_file(
        &self,
        dir: &OwnedFd,
        dir_path: &Path,
        name: &str,
        csum: &Checksum,
    ) -> Result<()> {
        let path = dir_path.join(name);
        self.files.fetch_add(1, Ordering::Relaxed);
        if self.hardlink {
            let obj = self.repo.object_path(csum, ObjectType::File);
            loop {
                match rustix::fs::linkat(rustix::fs::CWD, &obj, dir, name, AtFlags::empty()) {
                    Ok(()) => {
                        self.hardlinked.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    Err(Errno::EXIST) if self.union => self.remove_existing(dir, &path, name)?,
                    Err(Errno::XDEV) | Err(Errno::MLINK) => break,
                    Err(Errno::NOENT) if !self.repo.has_object(csum, ObjectType::File) => {
                        return Err(Error::MissingObject {
                            checksum: *csum,
                            kind: ObjectType::File,
                        });
                    }
                    Err(e) => return Err(e).io_ctx("hardlink object to", &path),
                }
            }
        }
        self.copy_file(dir, &path, name, csum)
    }

    fn remove_existing(&self, dir: &OwnedFd, path: &Path, name: &str) -> Result<()> {
        let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).io_ctx("stat", path)?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
            crate::remove::remove_tree_at(dir.as_fd(), std::ffi::OsStr::new(name), path)
        } else {
            rustix::fs::unlinkat(dir, name, AtFlags::empty()).io_ctx("remove", path)
        }
    }

    fn copy_file(&self, dir: &OwnedFd, path: &Path, name: &str, csum: &Checksum) -> Result<()> {
        let (header, content) = self.repo.load_file(csum)?;
        let uid = Some(rustix::fs::Uid::from_raw(header.uid));
        let gid = Some(rustix::fs::Gid::from_raw(header.gid));
        if header.is_symlink() {
            loop {
                match rustix::fs::symlinkat(header.symlink_target.as_str(), dir, name) {
                    Ok(()) => break,
                    Err(Errno::EXIST) if self.union => self.remove_existing(dir, path, name)?,
                    Err(e) => return Err(e).io_ctx("create symlink", path),
                }
            }
            if self.privileged {
                rustix::fs::chownat(dir, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
                    .io_ctx("chown", path)?;
                crate::xattr::set_at(dir, std::ffi::OsStr::new(name), path, &header.xattrs)?;
            }
            return Ok(());
        }
        let flags =
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = loop {
            match rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o600)) {
                Ok(fd) => break fd,
                Err(Errno::EXIST) if self.union => self.remove_existing(dir, path, name)?,
                Err(e) => return Err(e).io_ctx("create", path),
            }
        };
        let mut f = fs::File::from(fd);
        f.write_all(&content).io_ctx("write", path)?;
        if self.privileged {
            rustix::fs::fchown(f.as_fd(), uid, gid).io_ctx("chown", path)?;
            crate::xattr::set_fd(&f, &header.xattrs, path)?;
        }
        rustix::fs::fchmod(&f, Mode::from_raw_mode(header.mode & 0o7777)).io_ctx("chmod", path)?;
        rustix::fs::futimens(&f, &crate::write::zero_mtime()).io_ctx("set mtime of", path)?;
        Ok(())
    }
}
