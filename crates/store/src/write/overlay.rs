//! Importing the upper directory of an overlayfs on top of a commit's tree:
//! the new tree is the base with the upper's changes applied, as the
//! overlay showed it, without reading the unchanged files again.
//!
//! The upper directory must come from an overlay mounted with
//! `redirect_dir=off` and `metacopy=off` (every changed file is whole in
//! it). Its conventions:
//! - a character device 0:0 is a whiteout: the name is deleted;
//! - a directory with `trusted.overlay.opaque=y` replaces the base's
//!   directory of that name instead of merging with it;
//! - `trusted.overlay.*` attributes are overlayfs's own and are not stored;
//! - the upper directory's own mode, owner and attributes are the root's
//!   (give it the base root's before mounting).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::checksum::Checksum;
use crate::error::{Error, IoContext, Result};
use crate::objects::dirtree::DirEntry;
use crate::objects::{DirMeta, DirTree, ObjectType, Xattrs};
use crate::write::Transaction;
use crate::write::dir::{entry_names, file_header, store_file};
use crate::xattr;

const OVERLAY_XATTR: &[u8] = b"trusted.overlay.";
const OPAQUE: &str = "trusted.overlay.opaque";

/// One entry of a directory being merged.
enum Node {
    File(Checksum),
    Dir { tree: Checksum, meta: Checksum },
}

/// Stores the tree `base` (root dirtree and dirmeta) with the overlay upper
/// directory `upper` applied; returns the new root dirtree and dirmeta.
pub fn import_overlay(
    tx: &Transaction<'_>,
    base: (Checksum, Checksum),
    upper: &Path,
) -> Result<(Checksum, Checksum)> {
    let meta = fs::symlink_metadata(upper).io_ctx("stat", upper)?;
    if !meta.is_dir() {
        return Err(Error::BadInput {
            path: upper.to_owned(),
            what: "not a directory".into(),
        });
    }
    merge_dir(tx, Some(base.0), upper, &meta)
}

fn without_overlay_attrs(mut xattrs: Xattrs) -> Xattrs {
    xattrs.retain(|(k, _)| !k.starts_with(OVERLAY_XATTR));
    xattrs
}

fn is_opaque(path: &Path) -> Result<bool> {
    let f = fs::File::open(path).io_ctx("open", path)?;
    Ok(xattr::get_fd(&f, OPAQUE, path)?.is_some_and(|v| v == b"y"))
}

/// Merges upper directory `dir` (lstat `meta`) onto base dirtree `base`.
fn merge_dir(
    tx: &Transaction<'_>,
    base: Option<Checksum>,
    dir: &Path,
    meta: &fs::Metadata,
) -> Result<(Checksum, Checksum)> {
    let mut entries: BTreeMap<String, Node> = BTreeMap::new();
    if let Some(base) = base {
        let tree = tx.repo().load_dirtree(&base)?;
        for (name, csum) in tree.files {
            entries.insert(name, Node::File(csum));
        }
        for d in tree.dirs {
            let node = Node::Dir {
                tree: d.tree,
                meta: d.meta,
            };
            entries.insert(d.name, node);
        }
    }
    for (name, path) in entry_names(dir)? {
        let m = fs::symlink_metadata(&path).io_ctx("stat", &path)?;
        let ft = m.file_type();
        if ft.is_char_device() && m.rdev() == 0 {
            entries.remove(&name);
        } else if ft.is_dir() {
            let below = match entries.get(&name) {
                Some(Node::Dir { tree, .. }) if !is_opaque(&path)? => Some(*tree),
                _ => None,
            };
            let (tree, meta) = merge_dir(tx, below, &path, &m)?;
            entries.insert(name, Node::Dir { tree, meta });
        } else if ft.is_file() || ft.is_symlink() {
            let mut header = file_header(&path, &m)?;
            header.xattrs = without_overlay_attrs(std::mem::take(&mut header.xattrs));
            let csum = store_file(tx, &path, &header, m.len(), || fs::File::open(&path))?;
            entries.insert(name, Node::File(csum));
        } else {
            return Err(Error::BadInput {
                path,
                what: "is a device node, fifo or socket, which a commit cannot hold".into(),
            });
        }
    }
    let mut tree = DirTree::default();
    for (name, node) in entries {
        match node {
            Node::File(c) => tree.files.push((name, c)),
            Node::Dir { tree: t, meta: m } => tree.dirs.push(DirEntry {
                name,
                tree: t,
                meta: m,
            }),
        }
    }
    let dm = DirMeta {
        uid: meta.uid(),
        gid: meta.gid(),
        mode: meta.mode(),
        xattrs: without_overlay_attrs(xattr::read(dir)?),
    };
    let meta = tx.write_meta(ObjectType::DirMeta, &dm.to_bytes())?;
    let tree = tx.write_meta(ObjectType::DirTree, &tree.to_bytes())?;
    Ok((tree, meta))
}
