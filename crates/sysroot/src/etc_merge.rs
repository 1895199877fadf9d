//! The three-way merge of `/etc`, pure: from three trees (the old defaults,
//! the machine's current `/etc`, the new defaults) decide what the new
//! deployment's `/etc` keeps from the machine.
//!
//! Rules: a file changed or added locally keeps the local version; a file
//! removed locally stays removed; everything else takes the new defaults.
//! Where a kept local entry and the new default differ in kind (a file
//! became a directory or the reverse) the local one is kept and the clash
//! reported as a conflict, instead of failing the upgrade as ostree does.
//!
//! Paths are bytes (`OsString`), as the filesystem has them: a name that
//! is not UTF-8 is merged like any other, and shown escaped
//! ([`display_path`]).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;

/// One entry of a tree, as far as the merge compares entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    File {
        mode: u32,
        uid: u32,
        gid: u32,
        digest: [u8; 32],
    },
    Symlink {
        target: OsString,
        uid: u32,
        gid: u32,
    },
}

impl Node {
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Dir { .. } => "directory",
            Node::File { .. } => "file",
            Node::Symlink { .. } => "symlink",
        }
    }

    fn same_kind(&self, other: &Node) -> bool {
        self.kind() == other.kind()
    }
}

/// Paths relative to `/etc` ("hostname", "ssh/sshd_config"), sorted by
/// their bytes, so a directory comes before what it holds.
pub type Tree = BTreeMap<OsString, Node>;

/// What the merge carries from the machine into the new `/etc`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Copy from the current `/etc` over whatever the new defaults have.
    pub keep_local: Vec<OsString>,
    /// Remove from the new `/etc` (removed locally).
    pub remove: Vec<OsString>,
    /// Kept locally although the new default is of another kind.
    pub conflicts: Vec<Conflict>,
    pub modified: usize,
    pub added: usize,
    pub removed: usize,
    /// What applying the plan carried over only in part (an extended
    /// attribute the new `/etc` refused, …); filled when it is applied.
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub path: OsString,
    pub local: &'static str,
    pub new_default: &'static str,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "/etc/{} is a {} here but a {} in the new defaults; kept the local one",
            display_path(&self.path),
            self.local,
            self.new_default
        )
    }
}

/// Something the merge could not do for one entry and went on without:
/// the merge never aborts an upgrade for it, but says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The entry, relative to `/etc`.
    pub path: OsString,
    /// What failed, as in "could not copy extended attributes: …".
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/etc/{}: {}", display_path(&self.path), self.what)
    }
}

/// `path` for a message: UTF-8 as it is, any other byte (and control
/// characters) escaped as `\xNN`, so nothing is lost or garbled.
pub fn display_path(path: &OsStr) -> String {
    let mut out = String::new();
    for chunk in path.as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

fn is_under(path: &OsStr, dir: &OsStr) -> bool {
    let (path, dir) = (path.as_bytes(), dir.as_bytes());
    path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

/// Decides the merge. Entries under a path already kept or removed as a
/// whole are handled with it.
pub fn plan(old: &Tree, current: &Tree, new: &Tree) -> Plan {
    let mut p = Plan::default();
    // Subtrees replaced wholesale by a local non-directory, or removed.
    let mut covered: Vec<&OsStr> = Vec::new();
    let is_covered = |path: &OsStr, covered: &[&OsStr]| covered.iter().any(|c| is_under(path, c));
    for (path, cur) in current {
        if is_covered(path, &covered) {
            continue;
        }
        let changed = match old.get(path) {
            None => {
                p.added += 1;
                true
            }
            Some(o) if o != cur => {
                p.modified += 1;
                true
            }
            Some(_) => false,
        };
        if !changed {
            continue;
        }
        if let Some(n) = new.get(path)
            && !n.same_kind(cur)
        {
            p.conflicts.push(Conflict {
                path: path.clone(),
                local: cur.kind(),
                new_default: n.kind(),
            });
        }
        if !matches!(cur, Node::Dir { .. }) {
            covered.push(path);
        }
        p.keep_local.push(path.clone());
    }
    // A kept entry needs its parents as directories; where the new defaults
    // have a non-directory there, the local directory wins, reported. Found
    // from the few such clashes, not by walking up from every kept entry
    // (quadratic in the depth of a deep tree).
    let clashes: Vec<(&OsString, &Node, &Node)> = current
        .iter()
        .filter(|(_, cur)| matches!(cur, Node::Dir { .. }))
        .filter_map(|(path, cur)| {
            new.get(path)
                .filter(|n| !n.same_kind(cur))
                .map(|n| (path, cur, n))
        })
        .collect();
    for (dir, cur, n) in clashes {
        if p.keep_local.iter().any(|k| is_under(k, dir)) {
            if !p.conflicts.iter().any(|c| c.path == *dir) {
                p.conflicts.push(Conflict {
                    path: dir.clone(),
                    local: cur.kind(),
                    new_default: n.kind(),
                });
            }
            p.keep_local.push(dir.clone());
        }
    }
    p.keep_local.sort();
    p.keep_local.dedup();
    p.conflicts.sort_by(|a, b| a.path.cmp(&b.path));
    for path in old.keys() {
        if current.contains_key(path) || is_covered(path, &covered) {
            continue;
        }
        p.removed += 1;
        covered.push(path);
        if new.contains_key(path) {
            p.remove.push(path.clone());
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(d: u8) -> Node {
        Node::File {
            mode: 0o100644,
            uid: 0,
            gid: 0,
            digest: [d; 32],
        }
    }
    fn dir() -> Node {
        Node::Dir {
            mode: 0o40755,
            uid: 0,
            gid: 0,
        }
    }
    fn tree(entries: &[(&str, Node)]) -> Tree {
        entries
            .iter()
            .map(|(p, n)| (OsString::from(p), n.clone()))
            .collect()
    }

    struct Case {
        name: &'static str,
        old: Tree,
        cur: Tree,
        new: Tree,
        keep: &'static [&'static str],
        remove: &'static [&'static str],
        conflicts: &'static [&'static str],
    }

    #[test]
    fn table() {
        let cases = vec![
            Case {
                name: "untouched file takes the new default",
                old: tree(&[("a", f(1))]),
                cur: tree(&[("a", f(1))]),
                new: tree(&[("a", f(2))]),
                keep: &[],
                remove: &[],
                conflicts: &[],
            },
            Case {
                name: "local edit wins",
                old: tree(&[("hostname", f(1))]),
                cur: tree(&[("hostname", f(9))]),
                new: tree(&[("hostname", f(2))]),
                keep: &["hostname"],
                remove: &[],
                conflicts: &[],
            },
            Case {
                name: "local addition is kept",
                old: tree(&[]),
                cur: tree(&[("x.conf", f(9))]),
                new: tree(&[]),
                keep: &["x.conf"],
                remove: &[],
                conflicts: &[],
            },
            Case {
                name: "local removal stays removed",
                old: tree(&[("motd", f(1))]),
                cur: tree(&[]),
                new: tree(&[("motd", f(2))]),
                keep: &[],
                remove: &["motd"],
                conflicts: &[],
            },
            Case {
                name: "removed locally and in the new defaults: nothing to do",
                old: tree(&[("gone", f(1))]),
                cur: tree(&[]),
                new: tree(&[]),
                keep: &[],
                remove: &[],
                conflicts: &[],
            },
            Case {
                name: "a removed directory takes its contents with it",
                old: tree(&[("d", dir()), ("d/a", f(1))]),
                cur: tree(&[]),
                new: tree(&[("d", dir()), ("d/a", f(2)), ("d/b", f(3))]),
                keep: &[],
                remove: &["d"],
                conflicts: &[],
            },
            Case {
                name: "file became a directory upstream, local file edited: keep local, report",
                old: tree(&[("x", f(1))]),
                cur: tree(&[("x", f(9))]),
                new: tree(&[("x", dir()), ("x/inner", f(2))]),
                keep: &["x"],
                remove: &[],
                conflicts: &["x"],
            },
            Case {
                name: "directory became a file upstream, local adds inside: keep local dir",
                old: tree(&[("d", dir())]),
                cur: tree(&[("d", dir()), ("d/mine", f(9))]),
                new: tree(&[("d", f(2))]),
                keep: &["d", "d/mine"],
                remove: &[],
                conflicts: &["d"],
            },
            Case {
                name: "local file replaced a default directory: children are covered",
                old: tree(&[("d", dir()), ("d/a", f(1))]),
                cur: tree(&[("d", f(9))]),
                new: tree(&[("d", dir()), ("d/a", f(2))]),
                keep: &["d"],
                remove: &[],
                conflicts: &["d"],
            },
            Case {
                name: "mode change counts as a local modification",
                old: tree(&[(
                    "shadow",
                    Node::File {
                        mode: 0o100640,
                        uid: 0,
                        gid: 42,
                        digest: [1; 32],
                    },
                )]),
                cur: tree(&[(
                    "shadow",
                    Node::File {
                        mode: 0o100600,
                        uid: 0,
                        gid: 42,
                        digest: [1; 32],
                    },
                )]),
                new: tree(&[("shadow", f(2))]),
                keep: &["shadow"],
                remove: &[],
                conflicts: &[],
            },
        ];
        for c in cases {
            let p = plan(&c.old, &c.cur, &c.new);
            assert_eq!(p.keep_local, c.keep, "{}: keep", c.name);
            assert_eq!(p.remove, c.remove, "{}: remove", c.name);
            let conflicts: Vec<&OsStr> = p.conflicts.iter().map(|x| x.path.as_os_str()).collect();
            assert_eq!(conflicts, c.conflicts, "{}: conflicts", c.name);
        }
    }

    #[test]
    fn counts() {
        let p = plan(
            &tree(&[("a", f(1)), ("b", f(1)), ("c", f(1))]),
            &tree(&[("a", f(9)), ("b", f(1)), ("n", f(5))]),
            &tree(&[("a", f(2)), ("b", f(2)), ("c", f(2))]),
        );
        assert_eq!((p.modified, p.added, p.removed), (1, 1, 1));
    }
}
