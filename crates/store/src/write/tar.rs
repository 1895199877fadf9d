//! Importing a tarball (plain, gzip or zstd), without touching the
//! filesystem: entries go straight into objects, so no path in the archive
//! can escape anywhere. Names with `..`, absolute names, and names that
//! pass through a symlink or file of the archive are refused. A large
//! member streams into its object (see `SMALL_MEMBER`): memory stays
//! bounded whatever the archive holds.

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

/// How a tar archive is imported.
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

/// A pax record: key and value, raw bytes.
pub type PaxRecord = (Vec<u8>, Vec<u8>);

/// Parses pax extended header records, `"<len> <key>=<value>\n"`, by
/// their length field, so values may hold any byte (binary xattrs do).
pub fn parse_pax(data: &[u8]) -> Result<Vec<PaxRecord>, String> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break; // padding
        }
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or("pax record without a length")?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|l| l.parse().ok())
            .ok_or("pax record with a bad length")?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err("pax record length does not match its content".into());
        }
        let record = &rest[space + 1..len - 1];
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("pax record without '='")?;
        out.push((record[..eq].to_vec(), record[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Ok(out)
}

/// What pax and GNU extension headers say about the member that follows.
#[derive(Default)]
struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    uid: Option<u32>,
    gid: Option<u32>,
    xattrs: Xattrs,
}

impl Pending {
    fn absorb_pax(&mut self, data: &[u8], archive: &Path) -> Result<()> {
        let bad = |what: String| Error::BadInput {
            path: archive.to_owned(),
            what,
        };
        for (key, value) in parse_pax(data).map_err(|w| bad(format!("bad pax header: {w}")))? {
            let num = || {
                std::str::from_utf8(&value)
                    .ok()
                    .and_then(|v| v.parse::<u32>().ok())
                    .ok_or_else(|| bad(format!("bad pax {} value", String::from_utf8_lossy(&key))))
            };
            match key.as_slice() {
                b"path" => self.path = Some(value),
                b"linkpath" => self.link = Some(value),
                b"uid" => self.uid = Some(num()?),
                b"gid" => self.gid = Some(num()?),
                b"size" => {
                    return Err(bad(
                        "members with a pax size (over 8 GiB) are not supported".into(),
                    ));
                }
                k => {
                    // ostree leaves out xattrs with empty values, as `xattr::read`
                    // does for `--tree`; keeping them would change the checksum.
                    if let Some(name) = k.strip_prefix(b"SCHILY.xattr.")
                        && !value.is_empty()
                    {
                        let mut name = name.to_vec();
                        name.push(0);
                        self.xattrs.retain(|(n, _)| *n != name);
                        self.xattrs.push((name, value));
                    }
                }
            }
        }
        Ok(())
    }
}

fn write_dirmeta(
    tx: &Transaction<'_>,
    uid: u32,
    gid: u32,
    perms: u32,
    xattrs: Xattrs,
) -> Result<Checksum> {
    tx.write_meta(
        ObjectType::DirMeta,
        &DirMeta {
            uid,
            gid,
            mode: S_IFDIR | perms,
            xattrs,
        }
        .to_bytes(),
    )
}

fn read_all(entry: &mut impl Read, archive: &Path) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    entry
        .read_to_end(&mut data)
        .io_ctx("read tar member of", archive)?;
    Ok(data)
}

/// Members up to this size are read whole, as `dir` reads small files;
/// larger ones stream through [`Transaction::write_content_from`], so
/// memory stays bounded whatever a member's size.
const SMALL_MEMBER: u64 = 8 << 20;

/// Stores the content of the regular-file member `entry` of `archive`.
fn store_member(
    tx: &Transaction<'_>,
    header: &FileHeader,
    entry: &mut tar::Entry<'_, impl Read>,
    archive: &Path,
) -> Result<Checksum> {
    let size = entry.size();
    if size > SMALL_MEMBER {
        return tx.write_content_from(header, entry, archive);
    }
    let mut content = Vec::with_capacity(size as usize);
    entry
        .read_to_end(&mut content)
        .io_ctx("read tar member of", archive)?;
    tx.write_content(header, &content)
}

fn utf8(bytes: Vec<u8>, what: &str, archive: &Path) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| Error::BadInput {
        path: archive.to_owned(),
        what: format!("{what} is not valid UTF-8"),
    })
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
    // Raw entries: extension headers are parsed here (see `parse_pax`), as
    // the tar crate splits pax values at newline bytes.
    let entries = archive
        .entries()
        .io_ctx("read tar archive", path)?
        .raw(true);
    let mut pending = Pending::default();
    for entry in entries {
        let mut entry = entry.io_ctx("read tar archive", path)?;
        let kind = entry.header().entry_type();
        match kind {
            EntryType::XHeader => {
                let data = read_all(&mut entry, path)?;
                pending.absorb_pax(&data, path)?;
                continue;
            }
            EntryType::XGlobalHeader => continue,
            EntryType::GNULongName | EntryType::GNULongLink => {
                let mut data = read_all(&mut entry, path)?;
                while data.last() == Some(&0) {
                    data.pop();
                }
                if kind == EntryType::GNULongName {
                    pending.path = Some(data);
                } else {
                    pending.link = Some(data);
                }
                continue;
            }
            _ => {}
        }
        let ext = std::mem::take(&mut pending);
        let h = entry.header();
        let name = utf8(
            ext.path.unwrap_or_else(|| h.path_bytes().into_owned()),
            "a member name",
            path,
        )?;
        let link_name = ext
            .link
            .or_else(|| h.link_name_bytes().map(|b| b.into_owned()));
        let parts = components(&name, path)?;
        let uid = match ext.uid {
            Some(u) => u,
            None => h.uid().io_ctx("read tar header of", path)? as u32,
        };
        let gid = match ext.gid {
            Some(g) => g,
            None => h.gid().io_ctx("read tar header of", path)? as u32,
        };
        let perms = h.mode().io_ctx("read tar header of", path)? & 0o7777;
        let mut xattrs = ext.xattrs;
        xattrs.sort();
        let Some((leaf, parents)) = parts.split_last() else {
            if kind == EntryType::Directory {
                let m = write_dirmeta(tx, uid, gid, perms, xattrs)?;
                root.meta = Some(m);
            }
            continue;
        };
        match kind {
            EntryType::Directory => {
                let m = write_dirmeta(tx, uid, gid, perms, xattrs)?;
                let dir = dir_at(&mut root, &parts, &name, path)?;
                dir.meta = Some(m);
                dir_at(&mut root, parents, &name, path)?.files.remove(leaf);
            }
            EntryType::Regular | EntryType::Continuous | EntryType::Symlink | EntryType::Link => {
                let csum = if kind == EntryType::Link {
                    let target = utf8(
                        link_name.clone().unwrap_or_default(),
                        "a hard link target",
                        path,
                    )?;
                    let tparts = components(&target, path)?;
                    *stored.get(&tparts).ok_or_else(|| Error::BadInput {
                        path: path.to_owned(),
                        what: format!("hard link {name:?} points to {target:?}, which is not an earlier file of the archive"),
                    })?
                } else if kind == EntryType::Symlink {
                    let target = utf8(
                        link_name.clone().unwrap_or_default(),
                        "a symlink target",
                        path,
                    )?;
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
                    let header = FileHeader {
                        uid,
                        gid,
                        mode: S_IFREG | perms,
                        symlink_target: String::new(),
                        xattrs,
                    };
                    store_member(tx, &header, &mut entry, path)?
                };
                let dir = dir_at(&mut root, parents, &name, path)?;
                dir.dirs.remove(leaf);
                dir.files.insert(leaf.clone(), csum);
                stored.insert(parts, csum);
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                if opts.skip_special {
                    tracing::info!(member = %name, "skipping special file");
                } else {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_by_length() {
        let value = b"\x00\xff\n";
        let mut rec = b"SCHILY.xattr.user.bin=".to_vec();
        rec.extend_from_slice(value);
        let len = rec.len() + 2 + 1 + 1; // "NN " + record + "\n"
        let mut data = format!("{len} ").into_bytes();
        data.extend_from_slice(&rec);
        data.push(b'\n');
        data.extend_from_slice(b"12 path=a/b\n");
        assert_eq!(
            parse_pax(&data),
            Ok(vec![
                (b"SCHILY.xattr.user.bin".to_vec(), value.to_vec()),
                (b"path".to_vec(), b"a/b".to_vec())
            ])
        );
        for bad in [&b"5 a=b\n"[..], b"x a=b\n", b"6 ab\nc\n", b"99 a=b\n"] {
            assert!(
                parse_pax(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
