//! Importing a directory tree from the filesystem.
//!
//! Three phases: walk the tree (readdir and lstat, sequential and cheap),
//! store every regular file and symlink (parallel: hashing and copying are
//! the cost), then write the dirtree objects bottom-up.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::checksum::Checksum;
use crate::error::{Error, IoContext, Result};
use crate::objects::{DirMeta, FileHeader, ObjectType, validate_entry_name};
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
    /// (index into `dirs` of the parent, name, path, header) per file
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
    let root_meta = dir_meta(tx, root, &meta, opts.canonical_permissions)?;
    walked.dirs.push((0, String::new(), root_meta));
    walk(tx, root, 0, opts, &mut walked)?;

    let checksums: Vec<Checksum> = walked
        .files
        .par_iter()
        .map(|(_, _, path, header, size)| store_file(tx, path, header, *size))
        .collect::<Result<_>>()?;

    // Assemble: dirs were pushed parent-before-child, so index order works.
    let mut trees: Vec<MutableTree> = walked
        .dirs
        .iter()
        .map(|(_, _, m)| MutableTree {
            meta: Some(*m),
            ..Default::default()
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

/// The entries of `dir` by name, sorted; a name OSTree cannot hold (not
/// UTF-8, `.`, `..`, with `/`) is an error naming the path.
pub(super) fn entry_names(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut entries: Vec<(String, PathBuf)> = Vec::new();
    for e in fs::read_dir(dir).io_ctx("read directory", dir)? {
        let e = e.io_ctx("read directory", dir)?;
        let name = e.file_name().into_string().map_err(|n| Error::BadInput {
            path: dir.join(&n),
            what: "file name is not valid UTF-8 (OSTree requires UTF-8 names)".into(),
        })?;
        validate_entry_name(&name).map_err(|what| Error::BadInput {
            path: dir.join(&name),
            what,
        })?;
        entries.push((name, e.path()));
    }
    entries.sort();
    Ok(entries)
}

/// Stores the dirmeta of directory `path` (see
/// [`DirImportOptions::canonical_permissions`]); returns its checksum.
pub(super) fn dir_meta(
    tx: &Transaction<'_>,
    path: &Path,
    meta: &fs::Metadata,
    canonical: bool,
) -> Result<Checksum> {
    let dm = if canonical {
        DirMeta {
            uid: 0,
            gid: 0,
            mode: meta.mode() & (S_IFMT | 0o755),
            xattrs: Vec::new(),
        }
    } else {
        DirMeta {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode(),
            xattrs: xattr::read(path)?,
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

fn walk(
    tx: &Transaction<'_>,
    dir: &Path,
    index: usize,
    opts: &DirImportOptions,
    out: &mut Walked,
) -> Result<()> {
    for (name, path) in entry_names(dir)? {
        let meta = fs::symlink_metadata(&path).io_ctx("stat", &path)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            let m = dir_meta(tx, &path, &meta, opts.canonical_permissions)?;
            out.dirs.push((index, name, m));
            let child = out.dirs.len() - 1;
            walk(tx, &path, child, opts, out)?;
        } else if ft.is_file() || ft.is_symlink() {
            let mut header = file_header(&path, &meta)?;
            if opts.canonical_permissions {
                header = canonical_file(header);
            }
            out.files.push((index, name, path, header, meta.len()));
        } else if opts.skip_special {
            tracing::info!(path = %path.display(), "skipping special file");
        } else {
            let what = if ft.is_block_device() || ft.is_char_device() {
                "device node"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_socket() {
                "socket"
            } else {
                "special file"
            };
            return Err(Error::BadInput {
                path,
                what: format!(
                    "is a {what}, which a commit cannot hold (remove it, or pass --skip-special)"
                ),
            });
        }
    }
    Ok(())
}

/// Stores regular file or symlink `path` (`size` bytes) as a content object.
pub(super) fn store_file(
    tx: &Transaction<'_>,
    path: &Path,
    header: &FileHeader,
    size: u64,
) -> Result<Checksum> {
    if header.is_symlink() {
        return tx.write_content(header, &[]);
    }
    if size <= SMALL_FILE {
        // The size is known from the walk: no second stat, one read call.
        let mut content = Vec::with_capacity(size as usize + 1);
        File::open(path)
            .and_then(|f| f.take(SMALL_FILE + 1).read_to_end(&mut content))
            .io_ctx("read", path)?;
        return tx.write_content(header, &content);
    }
    let mut h = header.hasher();
    let mut f = File::open(path).io_ctx("open", path)?;
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
        let mut f = File::open(path)?;
        std::io::copy(&mut f, w).map(|_| ())
    })
    .map(|()| checksum)
}
