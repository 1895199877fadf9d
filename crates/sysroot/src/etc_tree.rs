//! Reading an `/etc` directory into an [`etc_merge::Tree`](Tree) and applying
//! a merge [`Plan`] to a new deployment's `/etc`.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use strata_store::error::{Error, IoContext, Result};

use crate::etc_merge::{Node, Plan, Tree};

/// Scans `root` recursively; a missing directory is an empty tree.
pub fn scan(root: &Path) -> Result<Tree> {
    let mut tree = Tree::new();
    if fs::symlink_metadata(root).is_err() {
        return Ok(tree);
    }
    scan_dir(root, "", &mut tree)?;
    Ok(tree)
}

fn scan_dir(dir: &Path, prefix: &str, tree: &mut Tree) -> Result<()> {
    for e in fs::read_dir(dir).io_ctx("read directory", dir)? {
        let e = e.io_ctx("read directory", dir)?;
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let path = e.path();
        let m = fs::symlink_metadata(&path).io_ctx("stat", &path)?;
        let node = if m.is_dir() {
            Node::Dir {
                mode: m.mode(),
                uid: m.uid(),
                gid: m.gid(),
            }
        } else if m.file_type().is_symlink() {
            let target = fs::read_link(&path).io_ctx("read symlink", &path)?;
            Node::Symlink {
                target: target.to_string_lossy().into_owned(),
                uid: m.uid(),
                gid: m.gid(),
            }
        } else if m.is_file() {
            Node::File {
                mode: m.mode(),
                uid: m.uid(),
                gid: m.gid(),
                digest: digest(&path)?,
            }
        } else {
            // Sockets and fifos in /etc are not configuration; leave them out.
            continue;
        };
        let is_dir = matches!(node, Node::Dir { .. });
        tree.insert(rel.clone(), node);
        if is_dir {
            scan_dir(&path, &rel, tree)?;
        }
    }
    Ok(())
}

fn digest(path: &Path) -> Result<[u8; 32]> {
    let mut f = fs::File::open(path).io_ctx("open", path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).io_ctx("read", path)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

fn remove_any(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).io_ctx("remove", path),
        Ok(_) => fs::remove_file(path).io_ctx("remove", path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).io_ctx("stat", path),
    }
}

fn set_owner_mode(path: &Path, uid: u32, gid: u32, mode: Option<u32>) -> Result<()> {
    if rustix::process::geteuid().is_root() {
        rustix::fs::chownat(
            rustix::fs::CWD,
            path,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .io_ctx("chown", path)?;
    }
    if let Some(mode) = mode {
        rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(mode & 0o7777))
            .io_ctx("chmod", path)?;
    }
    Ok(())
}

/// Applies `plan` to `dest` (the new deployment's `/etc`, already holding
/// the new defaults), copying kept entries from `current`.
pub fn apply(plan: &Plan, current: &Path, dest: &Path) -> Result<()> {
    for rel in &plan.remove {
        remove_any(&dest.join(rel))?;
    }
    // Sorted: a directory is handled before what it holds.
    for rel in &plan.keep_local {
        let src = current.join(rel);
        let to = dest.join(rel);
        ensure_parents(current, dest, Path::new(rel))?;
        let m = fs::symlink_metadata(&src).io_ctx("stat", &src)?;
        if m.is_dir() {
            match fs::symlink_metadata(&to) {
                Ok(t) if t.is_dir() => {}
                _ => {
                    remove_any(&to)?;
                    fs::create_dir(&to).io_ctx("create", &to)?;
                }
            }
            set_owner_mode(&to, m.uid(), m.gid(), Some(m.mode()))?;
            continue;
        }
        remove_any(&to)?;
        if m.file_type().is_symlink() {
            let target = fs::read_link(&src).io_ctx("read symlink", &src)?;
            symlink(&target, &to).io_ctx("create symlink", &to)?;
            set_owner_mode(&to, m.uid(), m.gid(), None)?;
        } else if m.is_file() {
            fs::copy(&src, &to).io_ctx("copy to", &to)?;
            set_owner_mode(&to, m.uid(), m.gid(), Some(m.mode()))?;
        } else {
            return Err(Error::BadInput {
                path: src,
                what: "not a file, directory or symlink".into(),
            });
        }
        if let Ok(x) = strata_store::xattr::read(&src) {
            let _ = strata_store::xattr::set_path(&to, &x);
        }
    }
    Ok(())
}

/// Creates the directories above `rel` in `dest` that are missing, as
/// they are in `current`: a locally changed file is kept even where the
/// new defaults dropped its directory (the vendor removed
/// `/etc/foo/`, the machine changed `/etc/foo/bar.conf`).
fn ensure_parents(current: &Path, dest: &Path, rel: &Path) -> Result<()> {
    let mut so_far = PathBuf::new();
    let parents: Vec<_> = rel
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    for c in parents {
        so_far.push(c);
        let to = dest.join(&so_far);
        if fs::symlink_metadata(&to).is_ok() {
            continue;
        }
        let from = current.join(&so_far);
        let m = fs::symlink_metadata(&from).io_ctx("stat", &from)?;
        fs::create_dir(&to).io_ctx("create", &to)?;
        set_owner_mode(&to, m.uid(), m.gid(), Some(m.mode()))?;
    }
    Ok(())
}

/// Copies a directory tree (the new defaults `usr/etc` to `etc`): real
/// copies, never hardlinks, since `/etc` is written to.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let m = fs::symlink_metadata(from).io_ctx("stat", from)?;
    fs::create_dir(to).io_ctx("create", to)?;
    for e in fs::read_dir(from).io_ctx("read directory", from)? {
        let e = e.io_ctx("read directory", from)?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let em = fs::symlink_metadata(&src).io_ctx("stat", &src)?;
        if em.is_dir() {
            copy_tree(&src, &dst)?;
        } else if em.file_type().is_symlink() {
            symlink(fs::read_link(&src).io_ctx("read symlink", &src)?, &dst)
                .io_ctx("create symlink", &dst)?;
            set_owner_mode(&dst, em.uid(), em.gid(), None)?;
        } else if em.is_file() {
            fs::copy(&src, &dst).io_ctx("copy to", &dst)?;
            set_owner_mode(&dst, em.uid(), em.gid(), Some(em.mode()))?;
        }
        if let Ok(x) = strata_store::xattr::read(&src) {
            let _ = strata_store::xattr::set_path(&dst, &x);
        }
    }
    set_owner_mode(to, m.uid(), m.gid(), Some(m.mode()))
}
