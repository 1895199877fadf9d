//! Importing a tarball (plain, gzip or zstd), without touching the
//! filesystem: entries go straight into objects, so no path in the archive
//! can escape anywhere. Names with `..`, absolute names, and names that
//! pass through a symlink or file of the archive are refused.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use tar::EntryType;

use crate::checksum::Checksum;
use crate::error::{Error, IoContext, Result};
use crate::objects::dirmeta::libc_mode::{S_IFDIR, S_IFLNK, S_IFREG};
use crate::objects::{DirMeta, FileHeader, ObjectType, Xattrs, validate_entry_name};
use crate::write::{MutableTree, Transaction};

#[derive(Debug, Clone, Default)]
pub struct TarImportOptions {
    /// Skip device nodes and fifos instead of failing on them.
    pub skip_special: bool,
}

/// Opens `path`, recognizing gzip and zstd compression by their magic bytes.
fn open_decompressed(path: &Path) -> Result<Box<dyn Read>> {
    let mut f = File::open(path).io_ctx("open", path)?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).io_ctx("read", path)?;
    let f = BufReader::new(std::io::Cursor::new(magic[..n].to_vec()).chain(f));
    Ok(match magic {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(f)),
        [0x28, 0xb5, 0x2f, 0xfd] => {
            Box::new(zstd::stream::read::Decoder::with_buffer(f).io_ctx("read zstd stream", path)?)
        }
        _ => Box::new(f),
    })
}

/// Splits an archive member name into checked components ("" for the root).
fn components(name: &str, archive: &Path) -> Result<Vec<String>> {
    let bad = |what: String| Error::BadInput {
        path: archive.to_owned(),
        what,
    };
    if name.starts_with('/') {
        return Err(bad(format!("member {name:?} has an absolute path")));
    }
    let mut out = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => continue,
            ".." => return Err(bad(format!("member {name:?} contains '..'"))),
            c => {
                validate_entry_name(c).map_err(|w| bad(format!("member {name:?}: {w}")))?;
                out.push(c.to_owned());
            }
        }
    }
    Ok(out)
}

/// The directory for `parts`, creating implied ones; refuses to descend
/// through a non-directory of the archive (a symlink could point anywhere).
fn dir_at<'t>(
    root: &'t mut MutableTree,
    parts: &[String],
    name: &str,
    archive: &Path,
) -> Result<&'t mut MutableTree> {
    let mut cur = root;
    for p in parts {
        if cur.files.contains_key(p) {
            return Err(Error::BadInput {
                path: archive.to_owned(),
                what: format!(
                    "member {name:?} passes through {p:?}, which is not a directory (a symlink or file) in the archive"
                ),
            });
        }
        cur = cur.dirs.entry(p.clone()).or_default();
    }
    Ok(cur)
}

fn pax_xattrs(entry: &mut tar::Entry<'_, impl Read>) -> Result<Xattrs> {
    let mut out = Vec::new();
    if let Ok(Some(exts)) = entry.pax_extensions() {
        for ext in exts.flatten() {
            if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                let mut key = name.to_vec();
                key.push(0);
                out.push((key, ext.value_bytes().to_vec()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Stores the tarball's tree; returns the root dirtree and dirmeta checksums.
pub fn import_tar(
    tx: &Transaction<'_>,
    path: &Path,
    opts: &TarImportOptions,
) -> Result<(Checksum, Checksum)> {
    let mut archive = tar::Archive::new(open_decompressed(path)?);
    let mut root = MutableTree::default();
    let mut stored: HashMap<Vec<String>, Checksum> = HashMap::new();
    let entries = archive.entries().io_ctx("read tar archive", path)?;
    for entry in entries {
        let mut entry = entry.io_ctx("read tar archive", path)?;
        let raw_name = entry.path_bytes().into_owned();
        let name = String::from_utf8(raw_name).map_err(|_| Error::BadInput {
            path: path.to_owned(),
            what: "a member name is not valid UTF-8".into(),
        })?;
        let parts = components(&name, path)?;
        let h = entry.header();
        let uid = h.uid().io_ctx("read tar header of", path)? as u32;
        let gid = h.gid().io_ctx("read tar header of", path)? as u32;
        let perms = h.mode().io_ctx("read tar header of", path)? & 0o7777;
        let kind = h.entry_type();
        let xattrs = pax_xattrs(&mut entry)?;
        let Some((leaf, parents)) = parts.split_last() else {
            if kind == EntryType::Directory {
                let m = tx.write_meta(
                    ObjectType::DirMeta,
                    &DirMeta {
                        uid,
                        gid,
                        mode: S_IFDIR | perms,
                        xattrs,
                    }
                    .to_bytes(),
                )?;
                root.meta = Some(m);
            }
            continue;
        };
        match kind {
            EntryType::Directory => {
                let m = tx.write_meta(
                    ObjectType::DirMeta,
                    &DirMeta {
                        uid,
                        gid,
                        mode: S_IFDIR | perms,
                        xattrs,
                    }
                    .to_bytes(),
                )?;
                let dir = dir_at(&mut root, &parts, &name, path)?;
                dir.meta = Some(m);
                dir_at(&mut root, parents, &name, path)?.files.remove(leaf);
            }
            EntryType::Regular | EntryType::Continuous | EntryType::Symlink | EntryType::Link => {
                let csum = if kind == EntryType::Link {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let tparts = components(&target, path)?;
                    *stored.get(&tparts).ok_or_else(|| Error::BadInput {
                        path: path.to_owned(),
                        what: format!("hard link {name:?} points to {target:?}, which is not an earlier file of the archive"),
                    })?
                } else if kind == EntryType::Symlink {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| b.into_owned())
                        .unwrap_or_default();
                    let target = String::from_utf8(target).map_err(|_| Error::BadInput {
                        path: path.to_owned(),
                        what: format!("symlink {name:?} has a target that is not UTF-8"),
                    })?;
                    let header = FileHeader {
                        uid,
                        gid,
                        mode: S_IFLNK | 0o777,
                        symlink_target: target,
                        xattrs,
                    };
                    header.validate().map_err(|e| Error::BadInput {
                        path: path.to_owned(),
                        what: format!("member {name:?}: {e}"),
                    })?;
                    tx.write_content(&header, &[])?
                } else {
                    let mut content = Vec::with_capacity(entry.size() as usize);
                    entry
                        .read_to_end(&mut content)
                        .io_ctx("read tar member of", path)?;
                    let header = FileHeader {
                        uid,
                        gid,
                        mode: S_IFREG | perms,
                        symlink_target: String::new(),
                        xattrs,
                    };
                    tx.write_content(&header, &content)?
                };
                let dir = dir_at(&mut root, parents, &name, path)?;
                dir.dirs.remove(leaf);
                dir.files.insert(leaf.clone(), csum);
                stored.insert(parts, csum);
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                if !opts.skip_special {
                    return Err(Error::BadInput {
                        path: path.to_owned(),
                        what: format!(
                            "member {name:?} is a device node or fifo, which a commit cannot hold (pass --skip-special to leave it out)"
                        ),
                    });
                }
            }
            EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => {}
            other => {
                return Err(Error::BadInput {
                    path: path.to_owned(),
                    what: format!("member {name:?} has unsupported type {other:?}"),
                });
            }
        }
    }
    let default_meta = tx.write_meta(
        ObjectType::DirMeta,
        &DirMeta {
            uid: 0,
            gid: 0,
            mode: S_IFDIR | 0o755,
            xattrs: Vec::new(),
        }
        .to_bytes(),
    )?;
    root.write(tx, default_meta)
}
