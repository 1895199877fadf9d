//! Importing a directory tree from the filesystem.
//!
//! Three phases: walk the tree (readdir and lstat, sequential and cheap),
//! store every regular file and symlink (parallel: hashing and copying are
//! the cost), then write the dirtree objects bottom-up.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

use crate::checksum::Checksum;
use crate::error::{Error, IoContext, Result};
use crate::objects::{DirMeta, FileHeader, ObjectType, Xattrs, validate_entry_name};
use crate::write::{MutableTree, Transaction};
use crate::xattr;

/// Options for reading the tree.
#[derive(Debug, Clone, Default)]
pub struct DirImportOptions {
    /// Skip device nodes, sockets and fifos instead of failing on them.
    pub skip_special: bool,
    /// ostree's `--canonical-permissions`, which `flatpak build-export`
    /// commits with: every owner root, no setuid, setgid or sticky bit,
    /// no write bit but the owner's, no xattrs (symlinks keep their mode).
    pub canonical_permissions: bool,
}

/// Files up to this size are read whole; larger ones are streamed twice
/// (hash, then copy when new) to keep memory flat.
const SMALL_FILE: u64 = 8 << 20;

struct Walked {
    /// (index into `dirs` of the parent, name, path below the root,
    /// header, size) per file
    files: Vec<(usize, String, PathBuf, FileHeader, u64)>,
    /// (parent index, name, meta checksum); index 0 is the root
    dirs: Vec<(usize, String, Checksum)>,
}

/// Stores the tree at `root`; returns the root dirtree and dirmeta checksums.
pub fn import_dir(
    tx: &Transaction<'_>,
    root: &Path,
    opts: &DirImportOptions,
) -> Result<(Checksum, Checksum)> {
    let meta = fs::symlink_metadata(root).io_ctx("stat", root)?;
    if !meta.is_dir() {
        return Err(Error::BadInput {
            path: root.to_owned(),
            what: "not a directory".into(),
        });
    }
    let mut walked = Walked {
        files: Vec::new(),
        dirs: Vec::new(),
    };
    let root_fd = rustix::fs::open(root, DIR_FLAGS, Mode::empty()).io_ctx("open", root)?;
    let st = rustix::fs::fstat(&root_fd).io_ctx("stat", root)?;
    let root_meta = dir_meta(tx, &st, || xattr::read(root), opts.canonical_permissions)?;
    walked.dirs.push((0, String::new(), root_meta));
    let root_fd = Arc::new(root_fd);
    walk(tx, root, Arc::clone(&root_fd), opts, &mut walked)?;

    let checksums: Vec<Checksum> = walked
        .files
        .par_iter()
        .map(|(_, _, rel, header, size)| {
            let shown = root.join(rel);
            store_file(tx, &shown, header, *size, || {
                open_beneath(root_fd.as_fd(), rel)
            })
        })
        .collect::<Result<_>>()?;

    // Assemble: dirs were pushed parent-before-child, so index order works.
    let mut trees: Vec<MutableTree> = walked
        .dirs
        .iter()
        .map(|(_, _, m)| {
            let mut t = MutableTree::default();
            t.meta = Some(*m);
            t
        })
        .collect();
    for ((parent, name, ..), csum) in walked.files.iter().zip(checksums) {
        trees[*parent].files.insert(name.clone(), csum);
    }
    for i in (1..walked.dirs.len()).rev() {
        let (parent, name, _) = &walked.dirs[i];
        let t = std::mem::take(&mut trees[i]);
        trees[*parent].dirs.insert(name.clone(), t);
    }
    let root_tree = std::mem::take(&mut trees[0]);
    root_tree.write(tx, root_meta)
}

/// Entry `name` of directory `dir` as a commit may hold it: UTF-8 (as
/// OSTree requires) and a valid entry name; an error names its path.
fn checked_name(dir: &Path, name: &[u8]) -> Result<String> {
    let name = String::from_utf8(name.to_vec()).map_err(|n| Error::BadInput {
        path: dir.join(OsStr::from_bytes(n.as_bytes())),
        what: "file name is not valid UTF-8 (OSTree requires UTF-8 names)".into(),
    })?;
    validate_entry_name(&name).map_err(|what| Error::BadInput {
        path: dir.join(&name),
        what,
    })?;
    Ok(name)
}

/// The entries of `dir` by name, sorted; a name OSTree cannot hold (not
/// UTF-8, `.`, `..`, with `/`) is an error naming the path.
pub(super) fn entry_names(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut entries: Vec<(String, PathBuf)> = Vec::new();
    for e in fs::read_dir(dir).io_ctx("read directory", dir)? {
        let e = e.io_ctx("read directory", dir)?;
        let name = checked_name(dir, e.file_name().as_bytes())?;
        entries.push((name, e.path()));
    }
    entries.sort();
    Ok(entries)
}

/// Stores the dirmeta of a directory whose stat is `st` (see
/// [`DirImportOptions::canonical_permissions`]); returns its checksum.
fn dir_meta(
    tx: &Transaction<'_>,
    st: &Stat,
    xattrs: impl FnOnce() -> Result<Xattrs>,
    canonical: bool,
) -> Result<Checksum> {
    let dm = if canonical {
        DirMeta {
            uid: 0,
            gid: 0,
            mode: st.st_mode & (S_IFMT | 0o755),
            xattrs: Vec::new(),
        }
    } else {
        DirMeta {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode,
            xattrs: xattrs()?,
        }
    };
    tx.write_meta(ObjectType::DirMeta, &dm.to_bytes())
}

const S_IFMT: u32 = 0o170000;

/// `header` as [`DirImportOptions::canonical_permissions`] has it.
fn canonical_file(header: FileHeader) -> FileHeader {
    let mode = if header.symlink_target.is_empty() {
        header.mode & (S_IFMT | 0o755)
    } else {
        header.mode
    };
    FileHeader {
        uid: 0,
        gid: 0,
        mode,
        xattrs: Vec::new(),
        ..header
    }
}

/// The header of regular file or symlink `path`, whose lstat is `meta`.
pub(super) fn file_header(path: &Path, meta: &fs::Metadata) -> Result<FileHeader> {
    let symlink_target = if meta.file_type().is_symlink() {
        let t = fs::read_link(path).io_ctx("read symlink", path)?;
        t.into_os_string()
            .into_string()
            .map_err(|_| Error::BadInput {
                path: path.to_owned(),
                what: "symlink target is not valid UTF-8".into(),
            })?
    } else {
        String::new()
    };
    Ok(FileHeader {
        uid: meta.uid(),
        gid: meta.gid(),
        mode: meta.mode(),
        symlink_target,
        xattrs: xattr::read(path)?,
    })
}

const DIR_FLAGS: OFlags = OFlags::DIRECTORY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::RDONLY)
    .union(OFlags::CLOEXEC);

/// A directory found and not yet read: entry `name` of `parent`, at
/// `rel` below the root, `index` in [`Walked::dirs`].
struct Pending {
    parent: Arc<OwnedFd>,
    name: String,
    rel: PathBuf,
    index: usize,
}

/// Reads every directory below `root_fd` into `out`. The walk keeps its
/// own stack and works on directory handles, each opened from its
/// parent's: depth costs neither call stack nor path length (a tree can
/// be deeper than PATH_MAX allows a path to be), and a directory's handle
/// closes once its last subdirectory is opened.
fn walk(
    tx: &Transaction<'_>,
    root: &Path,
    root_fd: Arc<OwnedFd>,
    opts: &DirImportOptions,
    out: &mut Walked,
) -> Result<()> {
    let mut w = Walker {
        tx,
        root,
        opts,
        out,
        stack: Vec::new(),
    };
    w.read_dir(root_fd, Path::new(""), 0)?;
    while let Some(p) = w.stack.pop() {
        let fd = rustix::fs::openat(&*p.parent, p.name.as_str(), DIR_FLAGS, Mode::empty())
            .io_ctx("open", root.join(&p.rel))?;
        drop(p.parent);
        w.read_dir(Arc::new(fd), &p.rel, p.index)?;
    }
    Ok(())
}

struct Walker<'a, 't> {
    tx: &'a Transaction<'t>,
    root: &'a Path,
    opts: &'a DirImportOptions,
    out: &'a mut Walked,
    stack: Vec<Pending>,
}

impl Walker<'_, '_> {
    /// Records the entries of directory `fd` (at `rel`, `index` in
    /// `out.dirs`); its subdirectories go on the stack.
    fn read_dir(&mut self, fd: Arc<OwnedFd>, rel: &Path, index: usize) -> Result<()> {
        let shown_dir = self.root.join(rel);
        let mut names = Vec::new();
        let mut dir = rustix::fs::Dir::read_from(&*fd).io_ctx("read directory", &shown_dir)?;
        while let Some(e) = dir.read() {
            let e = e.io_ctx("read directory", &shown_dir)?;
            let name = e.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            names.push(checked_name(&shown_dir, name)?);
        }
        drop(dir);
        names.sort();
        for name in names {
            self.read_entry(&fd, rel.join(&name), name, index)?;
        }
        Ok(())
    }

    /// Records entry `name` of directory `fd` (`index`), at `rel`.
    fn read_entry(
        &mut self,
        fd: &Arc<OwnedFd>,
        rel: PathBuf,
        name: String,
        index: usize,
    ) -> Result<()> {
        let (tx, opts) = (self.tx, self.opts);
        let shown = self.root.join(&rel);
        let st = rustix::fs::statat(&**fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .io_ctx("stat", &shown)?;
        let xattrs = || xattr::read_at(&**fd, OsStr::new(&name), &shown);
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let m = dir_meta(tx, &st, xattrs, opts.canonical_permissions)?;
                self.out.dirs.push((index, name.clone(), m));
                self.stack.push(Pending {
                    parent: Arc::clone(fd),
                    name,
                    rel,
                    index: self.out.dirs.len() - 1,
                });
            }
            ft @ (FileType::RegularFile | FileType::Symlink) => {
                let symlink_target = if ft == FileType::Symlink {
                    let t = rustix::fs::readlinkat(&**fd, name.as_str(), Vec::new())
                        .io_ctx("read symlink", &shown)?;
                    t.into_string().map_err(|_| Error::BadInput {
                        path: shown.clone(),
                        what: "symlink target is not valid UTF-8".into(),
                    })?
                } else {
                    String::new()
                };
                let mut header = FileHeader {
                    uid: st.st_uid,
                    gid: st.st_gid,
                    mode: st.st_mode,
                    symlink_target,
                    xattrs: xattrs()?,
                };
                if opts.canonical_permissions {
                    header = canonical_file(header);
                }
                self.out
                    .files
                    .push((index, name, rel, header, st.st_size as u64));
            }
            _ if opts.skip_special => {
                tracing::info!(path = %shown.display(), "skipping special file");
            }
            ft => {
                let what = match ft {
                    FileType::BlockDevice | FileType::CharacterDevice => "device node",
                    FileType::Fifo => "fifo",
                    FileType::Socket => "socket",
                    _ => "special file",
                };
                return Err(Error::BadInput {
                    path: shown,
                    what: format!(
                        "is a {what}, which a commit cannot hold (remove it, or pass --skip-special)"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Opens regular file `rel` below directory `root` for reading, without
/// following a final symlink. A path longer than one system call takes
/// (PATH_MAX) is opened a slice of components at a time.
fn open_beneath(root: BorrowedFd<'_>, rel: &Path) -> std::io::Result<File> {
    const SLICE: usize = 3072;
    let file_flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if rel.as_os_str().len() < SLICE {
        return Ok(rustix::fs::openat(root, rel, file_flags, Mode::empty())?.into());
    }
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut parts: Vec<&OsStr> = rel.iter().collect();
    let last = parts.pop().unwrap_or_default();
    let mut at: Option<OwnedFd> = None;
    let mut slice = PathBuf::new();
    for part in parts {
        if slice.as_os_str().len() + part.len() + 1 > SLICE {
            let base = at.as_ref().map_or(root, AsFd::as_fd);
            at = Some(rustix::fs::openat(base, &slice, dir_flags, Mode::empty())?);
            slice.clear();
        }
        slice.push(part);
    }
    if !slice.as_os_str().is_empty() {
        let base = at.as_ref().map_or(root, AsFd::as_fd);
        at = Some(rustix::fs::openat(base, &slice, dir_flags, Mode::empty())?);
    }
    let base = at.as_ref().map_or(root, AsFd::as_fd);
    Ok(rustix::fs::openat(base, last, file_flags, Mode::empty())?.into())
}

/// Stores regular file or symlink `path` (`size` bytes) as a content
/// object; `open` opens it for reading.
pub(super) fn store_file(
    tx: &Transaction<'_>,
    path: &Path,
    header: &FileHeader,
    size: u64,
    open: impl Fn() -> std::io::Result<File>,
) -> Result<Checksum> {
    if header.is_symlink() {
        return tx.write_content(header, &[]);
    }
    if size <= SMALL_FILE {
        // The size is known from the walk: no second stat, one read call.
        let mut content = Vec::with_capacity(size as usize + 1);
        open()
            .and_then(|f| f.take(SMALL_FILE + 1).read_to_end(&mut content))
            .io_ctx("read", path)?;
        return tx.write_content(header, &content);
    }
    let mut h = header.hasher();
    let mut f = open().io_ctx("open", path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).io_ctx("read", path)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let checksum = h.finish();
    tx.write_content_with_checksum(header, checksum, |w| {
        let mut f = open()?;
        std::io::copy(&mut f, w).map(|_| ())
    })
    .map(|()| checksum)
}
