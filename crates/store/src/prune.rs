//! Removing objects nothing needs.
//!
//! Roots are the commits kept: with `refs_only`, those refs reach (up to
//! `depth` parents); otherwise every commit in the repository. Commits older
//! than `keep_younger_than` are dropped from the roots unless a ref points
//! at them. Everything the roots do not reach is deleted. The repository's
//! exclusive lock keeps commits from being written meanwhile, and each
//! unlink is of an unreachable object, so a crash at any point leaves every
//! kept commit complete.

use std::collections::HashSet;
use std::fs;

use crate::checksum::Checksum;
use crate::error::{IoContext, Result};
use crate::lock::RepoLock;
use crate::objects::ObjectType;
use crate::objects_walk::ObjectName;
use crate::repo::Repo;

/// Which commits [`Repo::prune`] keeps.
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Keep only the commits refs point at and their parents (up to
    /// `depth`); otherwise every commit stays unless `depth` or
    /// `older_than` drops it.
    pub refs_only: bool,
    /// Parents to keep behind each ref's commit; `None` for all.
    pub depth: Option<u64>,
    /// Seconds since the epoch: commits older than this go, unless a ref points at them.
    pub older_than: Option<u64>,
    /// Compute and report, delete nothing.
    pub dry_run: bool,
    /// Commits kept as if a ref named them (a layered deployment's base).
    pub keep: Vec<Checksum>,
}

/// What [`Repo::prune`] deleted (with `dry_run`, would delete).
#[derive(Debug, Default, Clone)]
pub struct PruneReport {
    /// Loose objects in the repository before pruning.
    pub objects_total: usize,
    /// Objects deleted, commits included.
    pub objects_deleted: usize,
    /// Of `objects_deleted`, the commits.
    pub commits_deleted: usize,
    /// Sum of the deleted objects' file sizes, in bytes.
    pub bytes_freed: u64,
}

impl Repo {
    /// Removes the objects that `opts` does not keep (see the module docs).
    pub fn prune(&self, opts: &PruneOptions) -> Result<PruneReport> {
        let _lock = RepoLock::exclusive(self.path())?;
        let objects = self.list_objects()?;
        let mut heads: HashSet<Checksum> = self.list_refs()?.into_iter().map(|(_, c)| c).collect();
        heads.extend(
            opts.keep
                .iter()
                .filter(|c| self.has_object(c, ObjectType::Commit)),
        );

        let mut roots: HashSet<Checksum> = HashSet::new();
        if opts.refs_only || opts.depth.is_some() {
            for head in &heads {
                let mut c = *head;
                let mut n = 0u64;
                loop {
                    roots.insert(c);
                    if opts.depth.is_some_and(|d| n >= d) {
                        break;
                    }
                    match self.load_commit(&c) {
                        Ok(commit) => match commit.parent {
                            Some(p) if self.has_object(&p, ObjectType::Commit) => c = p,
                            _ => break,
                        },
                        Err(_) => break,
                    }
                    n += 1;
                }
            }
        }
        if !opts.refs_only {
            // Commits no ref reaches stay; those in a ref's history obey the depth limit.
            let history = if opts.depth.is_some() {
                history_of(self, &heads)
            } else {
                HashSet::new()
            };
            for (c, kind) in &objects {
                if *kind == ObjectType::Commit && !history.contains(c) {
                    roots.insert(*c);
                }
            }
        }
        if let Some(cutoff) = opts.older_than {
            roots.retain(|c| {
                heads.contains(c)
                    || self
                        .load_commit(c)
                        .map(|x| x.timestamp >= cutoff)
                        .unwrap_or(true)
            });
        }

        let mut keep: HashSet<ObjectName> = HashSet::new();
        let mut missing = Vec::new();
        for c in &roots {
            self.reachable_from(c, &mut keep, &mut missing)?;
        }
        let mut report = PruneReport {
            objects_total: objects.len(),
            ..Default::default()
        };
        for (c, kind) in &objects {
            if keep.contains(&(*c, *kind)) {
                continue;
            }
            let path = self.object_path(c, *kind);
            let size = fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
            if !opts.dry_run {
                fs::remove_file(&path).io_ctx("delete object", &path)?;
                if *kind == ObjectType::Commit {
                    self.clear_partial(c)?;
                }
            }
            report.objects_deleted += 1;
            report.bytes_freed += size;
            if *kind == ObjectType::Commit {
                report.commits_deleted += 1;
            }
        }
        if report.objects_deleted > 0 && !opts.dry_run {
            crate::durable::sync_filesystem(self.path())?;
        }
        Ok(report)
    }
}

/// Every commit in the history of the heads.
fn history_of(repo: &Repo, heads: &HashSet<Checksum>) -> HashSet<Checksum> {
    let mut seen = HashSet::new();
    for h in heads {
        let mut cur = Some(*h);
        while let Some(x) = cur {
            if !seen.insert(x) {
                break;
            }
            cur = repo.load_commit(&x).ok().and_then(|k| k.parent);
        }
    }
    seen
}
