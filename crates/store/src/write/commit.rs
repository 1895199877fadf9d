//! Creating a commit: store a tree, write the commit object, move the ref.
//!
//! Fault points (see [`crate::fault`]): `objects-staged`,
//! `objects-half-renamed`, `objects-placed` (all but the commit object
//! placed), `commit-written` (all objects and the commit are durable, the
//! ref has not moved).

use crate::checksum::Checksum;
use crate::error::{Error, Result};
use crate::gvariant::{Type, Value};
use crate::lock::RepoLock;
use crate::objects::commit::REF_BINDING;
use crate::objects::{Commit, ObjectType};
use crate::refs::RefName;
use crate::repo::Repo;
use crate::write::Transaction;
use crate::write::dir::{DirImportOptions, import_dir};
use crate::write::overlay::import_overlay;
use crate::write::tar::{TarImportOptions, import_tar};

/// Where the tree of a new commit comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A directory on disk, walked without following symlinks.
    Dir(std::path::PathBuf, DirImportOptions),
    /// A tar archive, optionally gzip or zstd compressed.
    Tar(std::path::PathBuf, TarImportOptions),
    /// The tree of commit `base` with an overlayfs upper directory applied
    /// (see [`crate::write::overlay`]).
    Overlay {
        /// The commit whose tree is the lower layer.
        base: Checksum,
        /// The overlay's upper directory.
        upper: std::path::PathBuf,
    },
}

/// Which parent the new commit gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parent {
    /// The current head of the branch, if any (ostree's default).
    #[default]
    BranchHead,
    /// No parent: the commit starts a new history.
    None,
    /// This commit, which must be in the repository.
    Commit(Checksum),
}

/// What goes into the commit object besides the tree.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The one-line summary (`ostree log` shows it first).
    pub subject: String,
    /// The longer description; may be empty.
    pub body: String,
    /// Seconds since the epoch; `None` for now.
    pub timestamp: Option<u64>,
    /// Metadata in order; `ostree.ref-binding` is appended unless `no_bindings`.
    pub metadata: Vec<(String, Value)>,
    /// Which commit precedes this one.
    pub parent: Parent,
    /// Leave out `ostree.ref-binding`, so the commit may be served under any
    /// ref name (ostree's `--no-bindings`).
    pub no_bindings: bool,
}

/// What a commit did.
#[derive(Debug, Clone)]
pub struct CommitResult {
    /// The new commit.
    pub checksum: Checksum,
    /// Content objects in the tree, new or already stored.
    pub content_total: u64,
    /// Of `content_total`, those that were new and written.
    pub content_written: u64,
    /// Metadata objects (dirtree, dirmeta, commit) newly written.
    pub meta_written: u64,
    /// Bytes written to new objects, as stored (compressed in archive mode).
    pub bytes_written: u64,
}

/// Stores `source` as a new commit on `branch` and moves the branch to it.
pub fn commit(
    repo: &Repo,
    branch: &RefName,
    source: &Source,
    opts: &CommitOptions,
) -> Result<CommitResult> {
    commit_with(repo, branch, source, opts, |_| Ok(()))
}

/// Like [`commit`], calling `before_ref` once the commit is durable and
/// before the branch moves (to sign it, say). If it fails, the branch
/// stays where it was.
pub fn commit_with<E: From<Error>>(
    repo: &Repo,
    branch: &RefName,
    source: &Source,
    opts: &CommitOptions,
    before_ref: impl FnOnce(&Checksum) -> std::result::Result<(), E>,
) -> std::result::Result<CommitResult, E> {
    let parent = match opts.parent {
        Parent::BranchHead => repo.read_ref(branch)?,
        Parent::None => None,
        Parent::Commit(c) => Some(c),
    };
    if let Some(p) = parent
        && !repo.has_object(&p, ObjectType::Commit)
    {
        return Err(Error::UnknownRev {
            rev: p.to_string(),
            why: "parent commit not in the repository".into(),
        }
        .into());
    }
    // Held until the ref is written: the transaction's own lock ends when it
    // commits, and a prune (exclusive lock) in between would see the new
    // commit unreferenced and delete it under the ref about to name it.
    let _lock = RepoLock::shared(repo.path())?;
    let tx = Transaction::begin(repo)?;
    let (root_tree, root_meta) = match source {
        Source::Dir(path, o) => import_dir(&tx, path, o)?,
        Source::Tar(path, o) => import_tar(&tx, path, o)?,
        Source::Overlay { base, upper } => {
            let c = repo.load_commit(base)?;
            import_overlay(&tx, (c.root_tree, c.root_meta), upper)?
        }
    };
    let mut metadata = opts.metadata.clone();
    if !opts.no_bindings {
        metadata.push((
            REF_BINDING.to_owned(),
            Value::Array(Type::String, vec![Value::str(branch.name.as_str())]),
        ));
    }
    let timestamp = opts.timestamp.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    let commit = Commit {
        metadata,
        parent,
        related: Vec::new(),
        subject: opts.subject.clone(),
        body: opts.body.clone(),
        timestamp,
        root_tree,
        root_meta,
    };
    let checksum = tx.write_meta(ObjectType::Commit, &commit.to_bytes())?;
    let stats = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let result = CommitResult {
        checksum,
        content_total: stats(&tx.stats.content_total),
        content_written: stats(&tx.stats.content_written),
        meta_written: stats(&tx.stats.meta_written),
        bytes_written: stats(&tx.stats.bytes_written),
    };
    tx.commit()?;
    crate::fault::point("commit-written");
    before_ref(&checksum)?;
    repo.write_ref(branch, &checksum)?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::RepoMode;

    /// Regression test for e3665b1: a commit's report counted only the
    /// metadata it wrote, a few hundred bytes for any tree.
    #[test]
    fn the_report_counts_content_bytes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let tree = tmp.path().join("tree");
        std::fs::create_dir(&tree).expect("mkdir");
        std::fs::write(tree.join("a"), vec![1u8; 100_000]).expect("write");
        std::fs::write(tree.join("b"), b"hello").expect("write");
        for mode in [RepoMode::BareUser, RepoMode::Archive] {
            let repo = Repo::init(&tmp.path().join(format!("{mode:?}")), mode).expect("init");
            let branch = RefName::parse("b").expect("ref");
            let source = Source::Dir(tree.clone(), DirImportOptions::default());
            let r = commit(&repo, &branch, &source, &CommitOptions::default()).expect("commit");
            assert_eq!(r.content_written, 2, "{mode:?}");
            let stored: u64 = walkdir(&repo.path().join("objects"));
            assert!(
                r.bytes_written > 0 && r.bytes_written <= stored,
                "{mode:?}: {} bytes reported, {stored} stored",
                r.bytes_written
            );
            if mode == RepoMode::BareUser {
                assert!(r.bytes_written >= 100_005, "{mode:?}: {}", r.bytes_written);
            }
        }
    }

    /// The bytes of the files under `dir`.
    fn walkdir(dir: &std::path::Path) -> u64 {
        std::fs::read_dir(dir)
            .expect("list")
            .flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => walkdir(&e.path()),
                _ => e.metadata().map(|m| m.len()).unwrap_or(0),
            })
            .sum()
    }
}
