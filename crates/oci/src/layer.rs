//! A commit as one layer tar, the same bytes for the same commit:
//!
//! - entries in a fixed order (a directory, its files, then its
//!   subdirectories), numeric owners, modification times of 0 (what a
//!   deployment's files show), extended attributes as PAX
//!   `SCHILY.xattr.*` records;
//! - `usr/etc` becomes `etc` (a strata commit keeps `/etc`'s defaults in
//!   `/usr`, where a deployment's merge finds them);
//! - `/var`, empty in a strata commit, gets what a first boot's
//!   `systemd-tmpfiles` would make of the commit's `usr/lib/tmpfiles.d`
//!   ([`crate::tmpfiles`]);
//! - a content object met twice under `/usr` is a hard link to its first
//!   path there; `/etc` and `/var` get copies of their own, since a
//!   container writes them and some engines (podman's vfs driver, a plain
//!   `tar x`) keep hard links in the writable tree.
//!
//! The walk keeps its own stack and tar writes long names as extensions:
//! neither depth nor path length is bounded by the process. Content is
//! streamed and verified against its checksum on the way.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

use strata_store::tree::Entry;
use strata_store::{Checksum, DirMeta, Repo};
use tar::{EntryType, Header};

use crate::error::{Error, Result};
use crate::tmpfiles::{self, Action, Owner};

/// Where tmpfiles.d files are read from, in the commit.
const TMPFILES_DIR: &str = "usr/lib/tmpfiles.d";

/// What a layer holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Regular files written with their content.
    pub files: u64,
    /// Hard links to a file written before.
    pub hardlinks: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Directories.
    pub dirs: u64,
    /// Content bytes written.
    pub bytes: u64,
    /// tmpfiles.d lines for `/var` left out: an owner the image does not
    /// name, or a path under something that is not a directory.
    pub skipped_lines: u64,
    /// Whether everything is readable by others: a layer with a file that
    /// is not (`/etc/shadow`) must not be given to everyone.
    pub private: bool,
}

/// Writes `commit` of `repo` to `out` as a layer tar (see the module).
pub fn write_layer<W: Write>(repo: &Repo, commit: &Checksum, out: W) -> Result<LayerStats> {
    let c = repo.load_commit(commit)?;
    let root = repo.load_dirtree(&c.root_tree)?;
    let usr_etc = match root.dirs.iter().find(|d| d.name == "usr") {
        Some(usr) => repo
            .load_dirtree(&usr.tree)?
            .dirs
            .iter()
            .any(|d| d.name == "etc"),
        None => false,
    };
    let root_etc =
        root.dirs.iter().any(|d| d.name == "etc") || root.files.iter().any(|(n, _)| n == "etc");
    if usr_etc && root_etc {
        return Err(Error::BadTree {
            commit: *commit,
            what: "it has both /etc and /usr/etc; an image has one /etc".into(),
        });
    }
    let mut w = Writer {
        repo,
        commit: *commit,
        tar: tar::Builder::new(out),
        first_path: HashMap::new(),
        var: HashSet::new(),
        var_leaves: HashSet::new(),
        usr_etc,
        stats: LayerStats::default(),
    };
    w.tree(&c.root_tree, &c.root_meta, "")?;
    w.first_boot_var()?;
    w.tar
        .into_inner()
        .and_then(|mut out| out.flush())
        .map_err(|source| Error::Layer {
            commit: *commit,
            path: String::new(),
            source,
        })?;
    Ok(w.stats)
}

struct Writer<'r, W: Write> {
    repo: &'r Repo,
    commit: Checksum,
    tar: tar::Builder<W>,
    /// The first path each regular file's content object was written at,
    /// and its mode, uid and gid.
    first_path: HashMap<Checksum, (String, u32, u32, u32)>,
    /// Paths written at or under `var`.
    var: HashSet<String>,
    /// Those of them that are not directories: nothing goes beneath them.
    var_leaves: HashSet<String>,
    /// Whether `usr/etc` is written as `etc`.
    usr_etc: bool,
    stats: LayerStats,
}

impl<W: Write> Writer<'_, W> {
    /// Writes the tree `tree` (with `meta`) at `path` ("" for the root,
    /// which has no entry of its own), without recursion.
    fn tree(&mut self, tree: &Checksum, meta: &Checksum, path: &str) -> Result<()> {
        let mut stack = vec![(*tree, *meta, path.to_owned())];
        while let Some((tree, meta, path)) = stack.pop() {
            if !path.is_empty() {
                let meta = self.repo.load_dirmeta(&meta)?;
                self.dir(&path, &meta)?;
            }
            let dirtree = self.repo.load_dirtree(&tree)?;
            for (name, checksum) in &dirtree.files {
                self.file(&join(&path, name), checksum)?;
            }
            for d in dirtree.dirs.iter().rev() {
                let child = if self.usr_etc && path == "usr" && d.name == "etc" {
                    "etc".to_owned()
                } else {
                    join(&path, &d.name)
                };
                stack.push((d.tree, d.meta, child));
            }
        }
        Ok(())
    }

    /// Records a written entry: `leaf` when it is no directory.
    fn note(&mut self, path: &str, leaf: bool) {
        if path == "var" || path.starts_with("var/") {
            self.var.insert(path.to_owned());
            if leaf {
                self.var_leaves.insert(path.to_owned());
            }
        }
    }

    /// An error appending the entry at `path`.
    fn err(&self, path: &str) -> impl Fn(std::io::Error) -> Error + '_ {
        let path = path.to_owned();
        move |source| Error::Layer {
            commit: self.commit,
            path: path.clone(),
            source,
        }
    }

    fn private_mode(&mut self, mode: u32, dir: bool) {
        let others = if dir { 0o005 } else { 0o004 };
        if mode & others != others {
            self.stats.private = true;
        }
    }

    fn dir(&mut self, path: &str, meta: &DirMeta) -> Result<()> {
        self.xattrs(path, &meta.xattrs)?;
        let mut h = header(EntryType::Directory, meta.mode, meta.uid, meta.gid);
        self.tar
            .append_data(&mut h, format!("{path}/"), std::io::empty())
            .map_err(self.err(path))?;
        self.stats.dirs += 1;
        self.private_mode(meta.mode, true);
        self.note(path, false);
        Ok(())
    }

    fn symlink(&mut self, path: &str, target: &str, uid: u32, gid: u32) -> Result<()> {
        let mut h = header(EntryType::Symlink, 0o777, uid, gid);
        // The target as it is: tar's own setter would normalize it
        // (`a//b/` → `a/b`); a long one goes in a GNU record, also as it is.
        let appended = if target.len() < 100 {
            h.set_link_name_literal(target)
                .and_then(|()| self.tar.append_data(&mut h, path, std::io::empty()))
        } else {
            self.tar.append_link(&mut h, path, target)
        };
        appended.map_err(self.err(path))?;
        self.stats.symlinks += 1;
        self.note(path, true);
        Ok(())
    }

    fn file(&mut self, path: &str, checksum: &Checksum) -> Result<()> {
        let shared = path.starts_with("usr/");
        if let Some((first, mode, uid, gid)) = self.first_path.get(checksum).filter(|_| shared) {
            // With the file's metadata: extractors (containers/storage
            // among them) apply a link entry's mode to the shared inode.
            let mut h = header(EntryType::Link, *mode, *uid, *gid);
            let first = first.clone();
            self.tar
                .append_link(&mut h, path, first)
                .map_err(self.err(path))?;
            self.stats.hardlinks += 1;
            self.note(path, true);
            return Ok(());
        }
        let (fh, size, content) = self.repo.open_file(checksum)?;
        if fh.is_symlink() {
            return self.symlink(path, &fh.symlink_target, fh.uid, fh.gid);
        }
        self.xattrs(path, &fh.xattrs)?;
        let mut h = header(EntryType::Regular, fh.mode, fh.uid, fh.gid);
        h.set_size(size);
        self.tar
            .append_data(&mut h, path, content)
            .map_err(self.err(path))?;
        self.stats.files += 1;
        self.stats.bytes += size;
        self.private_mode(fh.mode, false);
        if shared {
            self.first_path
                .entry(*checksum)
                .or_insert_with(|| (path.to_owned(), fh.mode, fh.uid, fh.gid));
        }
        self.note(path, true);
        Ok(())
    }

    /// A PAX extended header with the entry's xattrs, before the entry.
    fn xattrs(&mut self, path: &str, xattrs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        if xattrs.is_empty() {
            return Ok(());
        }
        let mut records = Vec::new();
        for (name, value) in xattrs {
            // OSTree keeps the name's trailing NUL; a PAX key has none.
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(name.strip_suffix(&[0]).unwrap_or(name));
            pax_record(&mut records, &key, value);
        }
        let mut h = header(EntryType::XHeader, 0o644, 0, 0);
        h.set_size(records.len() as u64);
        // A fixed short name: a long one would need a GNU long-name record
        // of its own, which some readers give to the next entry instead.
        self.tar
            .append_data(&mut h, "PaxHeader", &records[..])
            .map_err(self.err(path))
    }

    /// What the commit's tmpfiles.d lines make in `/var` that the tree
    /// does not have, in path order (parents first, missing ones made as
    /// root 0755 as tmpfiles makes them), nothing beneath a non-directory.
    fn first_boot_var(&mut self) -> Result<()> {
        let mut wanted: BTreeMap<String, Action> = BTreeMap::new();
        for line in self.tmpfiles_lines()? {
            let Some(rel) = line.path.strip_prefix('/') else {
                continue;
            };
            if rel == "var" || rel.starts_with("var/") {
                // As tmpfiles: the first line for a path wins.
                wanted.entry(rel.to_owned()).or_insert(line.action);
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let ids = Ids::read(self.repo, &self.commit, self.usr_etc)?;
        for (path, action) in wanted {
            if self.var.contains(&path) {
                continue;
            }
            if !self.parents(&path)? {
                self.stats.skipped_lines += 1;
                continue;
            }
            match action {
                Action::Dir { mode, user, group } => {
                    let (Some(uid), Some(gid)) = (ids.user(&user), ids.group(&group)) else {
                        self.stats.skipped_lines += 1;
                        continue;
                    };
                    let meta = DirMeta {
                        uid,
                        gid,
                        mode: mode.unwrap_or(0o755),
                        xattrs: Vec::new(),
                    };
                    self.dir(&path, &meta)?;
                }
                Action::Symlink { target } => self.symlink(&path, &target, 0, 0)?,
                // Followed through symlinks in the image, as tmpfiles would.
                Action::Copy { source } => match self.repo.resolve(&self.commit, &source) {
                    Ok((Entry::File(checksum), _)) => self.file(&path, &checksum)?,
                    Ok((Entry::Dir { tree, meta }, _)) => self.tree(&tree, &meta, &path)?,
                    // tmpfiles skips a copy whose source is missing.
                    Err(
                        strata_store::Error::NoSuchPath { .. }
                        | strata_store::Error::BadPath { .. },
                    ) => {
                        self.stats.skipped_lines += 1;
                    }
                    Err(e) => return Err(e.into()),
                },
            }
        }
        Ok(())
    }

    /// Makes the missing parents of `path` (root, 0755); false when one of
    /// them is a file or symlink, so nothing may go beneath it.
    fn parents(&mut self, path: &str) -> Result<bool> {
        let mut missing = Vec::new();
        let mut p = path;
        while let Some((parent, _)) = p.rsplit_once('/') {
            if self.var_leaves.contains(parent) {
                return Ok(false);
            }
            if !self.var.contains(parent) {
                missing.push(parent.to_owned());
            }
            p = parent;
        }
        for dir in missing.iter().rev() {
            let meta = DirMeta {
                uid: 0,
                gid: 0,
                mode: 0o755,
                xattrs: Vec::new(),
            };
            self.dir(dir, &meta)?;
        }
        Ok(true)
    }

    /// Every line of the commit's tmpfiles.d files, the files in name order.
    fn tmpfiles_lines(&self) -> Result<Vec<tmpfiles::Line>> {
        let tree = match self.repo.lookup(&self.commit, TMPFILES_DIR) {
            Ok(Entry::Dir { tree, .. }) => self.repo.load_dirtree(&tree)?,
            Ok(Entry::File(_)) | Err(strata_store::Error::NoSuchPath { .. }) => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(e.into()),
        };
        let mut lines = Vec::new();
        for (name, checksum) in &tree.files {
            if !name.ends_with(".conf") {
                continue;
            }
            let (fh, content) = self.repo.load_file(checksum)?;
            if fh.is_regular() {
                lines.extend(tmpfiles::parse(&String::from_utf8_lossy(&content)));
            }
        }
        Ok(lines)
    }
}

/// User and group names of the commit, for tmpfiles lines that name them.
struct Ids {
    users: HashMap<String, u32>,
    groups: HashMap<String, u32>,
}

impl Ids {
    /// The image's `passwd` and `group`; missing ones are empty, a
    /// corrupt one an error.
    fn read(repo: &Repo, commit: &Checksum, usr_etc: bool) -> Result<Ids> {
        let etc = if usr_etc { "usr/etc" } else { "etc" };
        let table = |name: &str| -> Result<HashMap<String, u32>> {
            let c = match repo.lookup(commit, &format!("{etc}/{name}")) {
                Ok(Entry::File(c)) => c,
                Ok(Entry::Dir { .. }) | Err(strata_store::Error::NoSuchPath { .. }) => {
                    return Ok(HashMap::new());
                }
                Err(e) => return Err(e.into()),
            };
            let (_, content) = repo.load_file(&c)?;
            Ok(String::from_utf8_lossy(&content)
                .lines()
                .filter_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?;
                    let id = f.nth(1)?.parse().ok()?;
                    Some((name.to_owned(), id))
                })
                .collect())
        };
        Ok(Ids {
            users: table("passwd")?,
            groups: table("group")?,
        })
    }

    fn user(&self, o: &Owner) -> Option<u32> {
        Self::id(&self.users, o)
    }

    fn group(&self, o: &Owner) -> Option<u32> {
        Self::id(&self.groups, o)
    }

    fn id(table: &HashMap<String, u32>, o: &Owner) -> Option<u32> {
        match o {
            Owner::Default => Some(0),
            Owner::Id(id) => Some(*id),
            Owner::Name(n) if n == "root" => Some(0),
            Owner::Name(n) => table.get(n).copied(),
        }
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// A header with everything but the path (and size) fixed.
fn header(kind: EntryType, mode: u32, uid: u32, gid: u32) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode & 0o7777);
    h.set_uid(u64::from(uid));
    h.set_gid(u64::from(gid));
    h.set_mtime(0);
    h.set_size(0);
    h
}

/// One PAX record: `LEN KEY=VALUE\n`, LEN counting itself.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        for (key, value, want) in [
            (&b"k"[..], &b"v"[..], &b"6 k=v\n"[..]),
            (
                b"SCHILY.xattr.user.a",
                b"12345678",
                b"32 SCHILY.xattr.user.a=12345678\n",
            ),
            (b"k", &[b'x'; 93], &[]),
        ] {
            let mut out = Vec::new();
            pax_record(&mut out, key, value);
            let space = out.iter().position(|&b| b == b' ').expect("a space");
            let len = std::str::from_utf8(&out[..space]).expect("digits");
            assert_eq!(len.parse::<usize>().expect("number"), out.len());
            if !want.is_empty() {
                assert_eq!(out, want);
            }
        }
    }
}
