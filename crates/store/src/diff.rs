//! Differences between two commits' trees, path by path.
//!
//! Subtrees with equal dirtree checksums are skipped without being read,
//! so the cost follows the size of the change, not of the tree.

use std::collections::BTreeMap;

use crate::checksum::Checksum;
use crate::error::Result;
use crate::repo::Repo;

/// How a path differs between two commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Only in the second.
    Added,
    /// Only in the first.
    Deleted,
    /// In both, with different content or metadata.
    Modified,
}

impl Change {
    /// The letter `ostree diff` prints for it: `A`, `D` or `M`.
    pub fn letter(self) -> char {
        match self {
            Change::Added => 'A',
            Change::Deleted => 'D',
            Change::Modified => 'M',
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Node {
    File(Checksum),
    Dir(Checksum, Checksum),
}

/// The changed paths from `from` to `to`, sorted by path. A directory added
/// or deleted is one entry; its contents are not listed. A directory whose
/// metadata (owner, mode, xattrs) changed is listed as modified.
pub fn diff_commits(repo: &Repo, from: &Checksum, to: &Checksum) -> Result<Vec<(Change, String)>> {
    let a = repo.load_commit(from)?;
    let b = repo.load_commit(to)?;
    let mut out = Vec::new();
    if a.root_meta != b.root_meta {
        out.push((Change::Modified, "/".to_owned()));
    }
    diff_trees(repo, &a.root_tree, &b.root_tree, "", &mut out)?;
    out.sort_by(|x, y| x.1.cmp(&y.1));
    Ok(out)
}

fn entries(repo: &Repo, tree: &Checksum) -> Result<BTreeMap<String, Node>> {
    let t = repo.load_dirtree(tree)?;
    let mut m: BTreeMap<String, Node> = t
        .files
        .into_iter()
        .map(|(n, c)| (n, Node::File(c)))
        .collect();
    m.extend(
        t.dirs
            .into_iter()
            .map(|d| (d.name, Node::Dir(d.tree, d.meta))),
    );
    Ok(m)
}

/// Compares trees `a` and `b` (at `prefix`) and everything below; the
/// walk keeps its own stack, so depth costs heap, not call stack.
fn diff_trees(
    repo: &Repo,
    a: &Checksum,
    b: &Checksum,
    prefix: &str,
    out: &mut Vec<(Change, String)>,
) -> Result<()> {
    let mut todo = vec![(*a, *b, prefix.to_owned())];
    while let Some((a, b, prefix)) = todo.pop() {
        if a == b {
            continue;
        }
        let (ea, eb) = (entries(repo, &a)?, entries(repo, &b)?);
        for (name, na) in &ea {
            let path = format!("{prefix}/{name}");
            match (na, eb.get(name)) {
                (_, None) => out.push((Change::Deleted, path)),
                (Node::File(x), Some(Node::File(y))) => {
                    if x != y {
                        out.push((Change::Modified, path));
                    }
                }
                (Node::Dir(ta, ma), Some(Node::Dir(tb, mb))) => {
                    if ma != mb {
                        out.push((Change::Modified, path.clone()));
                    }
                    todo.push((*ta, *tb, path));
                }
                (_, Some(_)) => out.push((Change::Modified, path)),
            }
        }
        for name in eb.keys().filter(|n| !ea.contains_key(*n)) {
            out.push((Change::Added, format!("{prefix}/{name}")));
        }
    }
    Ok(())
}
