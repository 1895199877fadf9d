//! Reading the tree of a commit by path: lookups, listings, symlink resolution.

use crate::checksum::Checksum;
use crate::error::{Error, Result};
use crate::objects::{DirMeta, DirTree, FileHeader};
use crate::repo::Repo;

/// An entry of a commit's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory.
    Dir {
        /// Its dirtree.
        tree: Checksum,
        /// Its dirmeta.
        meta: Checksum,
    },
    /// A file or symlink: its content object.
    File(Checksum),
}

/// Symlinks followed before giving up (as the kernel's ELOOP limit).
const MAX_SYMLINKS: usize = 40;

fn split(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect()
}

impl Repo {
    /// The entry at `path` in `commit`, without following symlinks.
    pub fn lookup(&self, commit: &Checksum, path: &str) -> Result<Entry> {
        let c = self.load_commit(commit)?;
        let mut entry = Entry::Dir {
            tree: c.root_tree,
            meta: c.root_meta,
        };
        for part in split(path) {
            if part == ".." {
                return Err(Error::BadPath {
                    path: path.to_owned(),
                    why: "'..' is not allowed in a path",
                });
            }
            entry = self.child(&entry, part).ok_or_else(|| Error::NoSuchPath {
                path: path.to_owned(),
                commit: *commit,
            })??;
        }
        Ok(entry)
    }

    fn child(&self, dir: &Entry, name: &str) -> Option<Result<Entry>> {
        let Entry::Dir { tree, .. } = dir else {
            return Some(Err(Error::BadPath {
                path: name.to_owned(),
                why: "a path component is not a directory",
            }));
        };
        let t = match self.load_dirtree(tree) {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
        if let Some(d) = t.dirs.iter().find(|d| d.name == name) {
            return Some(Ok(Entry::Dir {
                tree: d.tree,
                meta: d.meta,
            }));
        }
        t.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| Ok(Entry::File(*c)))
    }

    /// Resolves `path` following symlinks, all within the commit: an
    /// absolute target restarts at the commit's root, `..` stops at it.
    /// Returns the entry and its canonical path.
    pub fn resolve(&self, commit: &Checksum, path: &str) -> Result<(Entry, String)> {
        let c = self.load_commit(commit)?;
        let root = Entry::Dir {
            tree: c.root_tree,
            meta: c.root_meta,
        };
        let mut todo: Vec<String> = split(path).into_iter().rev().map(str::to_owned).collect();
        let mut stack: Vec<(String, Entry)> = Vec::new();
        let mut hops = 0;
        while let Some(part) = todo.pop() {
            if part == ".." {
                stack.pop();
                continue;
            }
            let cur = stack
                .last()
                .map(|(_, e)| e.clone())
                .unwrap_or_else(|| root.clone());
            let entry = self.child(&cur, &part).ok_or_else(|| Error::NoSuchPath {
                path: path.to_owned(),
                commit: *commit,
            })??;
            if let Entry::File(csum) = &entry {
                let (header, _) = self.load_file(csum)?;
                if header.is_symlink() {
                    hops += 1;
                    if hops > MAX_SYMLINKS {
                        return Err(Error::BadPath {
                            path: path.to_owned(),
                            why: "too many levels of symbolic links",
                        });
                    }
                    if header.symlink_target.starts_with('/') {
                        stack.clear();
                    }
                    todo.extend(
                        split(&header.symlink_target)
                            .into_iter()
                            .rev()
                            .map(str::to_owned),
                    );
                    continue;
                }
            }
            stack.push((part, entry));
        }
        let canonical = format!(
            "/{}",
            stack
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join("/")
        );
        Ok((stack.pop().map(|(_, e)| e).unwrap_or(root), canonical))
    }
}

/// One line of a listing.
#[derive(Debug, Clone)]
pub enum Listed {
    /// A directory.
    Dir {
        /// Its path in the commit.
        path: String,
        /// Its ownership, mode and xattrs.
        meta: DirMeta,
    },
    /// A file or symlink.
    File {
        /// Its path in the commit.
        path: String,
        /// Its ownership, mode, symlink target and xattrs.
        header: FileHeader,
        /// Its content size in bytes.
        size: u64,
    },
}

impl Repo {
    /// Lists `path` of `commit`: the entry itself, then (for a directory)
    /// its children, recursively when asked; directories before files at
    /// each level, as `ostree ls` prints them.
    pub fn list(&self, commit: &Checksum, path: &str, recursive: bool) -> Result<Vec<Listed>> {
        let canonical = format!("/{}", split(path).join("/"));
        let entry = self.lookup(commit, path)?;
        let mut out = Vec::new();
        match entry {
            Entry::File(c) => {
                let (header, size) = self.load_file_header(&c)?;
                out.push(Listed::File {
                    path: canonical,
                    header,
                    size,
                });
            }
            Entry::Dir { tree, meta } => {
                out.push(Listed::Dir {
                    path: canonical.clone(),
                    meta: self.load_dirmeta(&meta)?,
                });
                self.list_children(&tree, &canonical, recursive, &mut out)?;
            }
        }
        Ok(out)
    }

    /// Lists the entries below directory `dir` (dirtree `tree`); the walk
    /// keeps its own stack, so depth costs heap, not call stack.
    fn list_children(
        &self,
        tree: &Checksum,
        dir: &str,
        recursive: bool,
        out: &mut Vec<Listed>,
    ) -> Result<()> {
        struct Frame {
            dir: String,
            tree: DirTree,
            next: usize,
        }
        let join = |dir: &str, n: &str| {
            if dir == "/" {
                format!("/{n}")
            } else {
                format!("{dir}/{n}")
            }
        };
        let mut stack = vec![Frame {
            dir: dir.to_owned(),
            tree: self.load_dirtree(tree)?,
            next: 0,
        }];
        while let Some(top) = stack.last_mut() {
            if let Some(d) = top.tree.dirs.get(top.next) {
                top.next += 1;
                let path = join(&top.dir, &d.name);
                out.push(Listed::Dir {
                    path: path.clone(),
                    meta: self.load_dirmeta(&d.meta)?,
                });
                if recursive {
                    let tree = self.load_dirtree(&d.tree)?;
                    stack.push(Frame {
                        dir: path,
                        tree,
                        next: 0,
                    });
                }
                continue;
            }
            let Some(done) = stack.pop() else { break };
            for (name, c) in &done.tree.files {
                let (header, size) = self.load_file_header(c)?;
                out.push(Listed::File {
                    path: join(&done.dir, name),
                    header,
                    size,
                });
            }
        }
        Ok(())
    }
}
