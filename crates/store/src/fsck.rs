//! Verifying a repository: every object's checksum and format, every
//! commit's completeness, every ref's target.
//!
//! With `delete`, corrupt objects are removed and each commit that needed
//! one is marked partial (`state/<commit>.commitpartial`), so the next pull
//! can fetch it again and the next fsck passes.

use std::collections::HashSet;
use std::fs;
use std::io::Read;

use rayon::prelude::*;

use crate::checksum::Checksum;
use crate::error::{Error, IoContext, Result};
use crate::lock::RepoLock;
use crate::objects::{Commit, DirMeta, DirTree, ObjectType, commit::parse_detached};
use crate::objects_walk::ObjectName;
use crate::repo::{ContentCorrupt, Repo};

/// One object fsck found wrong.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The object, by checksum and type.
    pub object: ObjectName,
    /// What is wrong with it, or who needs it.
    pub what: String,
}

/// What [`Repo::fsck`] found, and with `delete` what it repaired.
#[derive(Debug, Default)]
pub struct FsckReport {
    /// Loose objects read and verified against their names.
    pub objects_checked: usize,
    /// Commit objects present (after any deletion).
    pub commits: usize,
    /// Objects whose content does not match their name or does not parse.
    pub corrupt: Vec<Problem>,
    /// Objects a complete commit or a ref needs that are not there.
    pub missing: Vec<Problem>,
    /// Commits already marked partial (an interrupted pull) with objects
    /// missing; not an error, a rerun of the pull completes them.
    pub partial_commits: Vec<Checksum>,
    /// With `delete`: the corrupt objects removed.
    pub deleted: Vec<ObjectName>,
    /// With `delete`: commits that lost objects and are now marked partial,
    /// so a pull fetches what they miss.
    pub marked_partial: Vec<Checksum>,
}

impl FsckReport {
    /// Whether nothing is corrupt or missing (partial commits are fine).
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty() && self.missing.is_empty()
    }
}

/// Checks one object; `Err(what)` describes the corruption.
fn verify(repo: &Repo, (c, kind): &ObjectName) -> Result<Result<(), String>> {
    let corrupt = |e: Error| match e {
        Error::Io { .. } => Err(e),
        Error::Corrupt { what, .. } => Ok(Err(what)),
        e => Ok(Err(e.to_string())),
    };
    if *kind == ObjectType::File {
        // Streamed and verified as read: a file of any size costs a buffer.
        let (header, _, mut content) = match repo.open_file(c) {
            Ok(x) => x,
            Err(e) => return corrupt(e),
        };
        if let Err(e) = header.validate() {
            return Ok(Err(e.to_string()));
        }
        return match std::io::copy(&mut content, &mut std::io::sink()) {
            Ok(_) => Ok(Ok(())),
            Err(e) => match ContentCorrupt::of(&e) {
                Some(bad) => Ok(Err(bad.what.clone())),
                None => Err(e).io_ctx("read", repo.object_path(c, *kind)),
            },
        };
    }
    let path = repo.object_path(c, *kind);
    let max = crate::objects::MAX_METADATA_SIZE;
    let mut data = Vec::new();
    fs::File::open(&path)
        .and_then(|f| f.take(max + 1).read_to_end(&mut data))
        .io_ctx("read", &path)?;
    if data.len() as u64 > max {
        return Ok(Err(format!(
            "larger than the {} MiB limit of a metadata object",
            max >> 20
        )));
    }
    if *kind == ObjectType::CommitMeta {
        return Ok(parse_detached(&data).map(drop).map_err(|e| e.to_string()));
    }
    let actual = Checksum::of(&data);
    if actual != *c {
        return Ok(Err(format!("checksum mismatch: bytes hash to {actual}")));
    }
    let parsed = match kind {
        ObjectType::Commit => Commit::from_bytes(&data).map(drop),
        ObjectType::DirTree => DirTree::from_bytes(&data).map(drop),
        ObjectType::DirMeta => DirMeta::from_bytes(&data).map(drop),
        _ => Ok(()),
    };
    Ok(parsed.map_err(|e| e.to_string()))
}

impl Repo {
    /// Verifies the repository; with `delete`, repairs what can be repaired.
    pub fn fsck(&self, delete: bool) -> Result<FsckReport> {
        let _lock = if delete {
            RepoLock::exclusive(self.path())?
        } else {
            RepoLock::shared(self.path())?
        };
        let objects = self.list_objects()?;
        let results: Vec<(ObjectName, Result<(), String>)> = objects
            .par_iter()
            .map(|o| verify(self, o).map(|r| (*o, r)))
            .collect::<Result<_>>()?;
        let mut report = FsckReport {
            objects_checked: objects.len(),
            ..Default::default()
        };
        let mut bad: HashSet<ObjectName> = HashSet::new();
        for (o, r) in results {
            if let Err(what) = r {
                bad.insert(o);
                report.corrupt.push(Problem { object: o, what });
            }
        }
        if delete {
            for (c, kind) in &bad {
                let p = self.object_path(c, *kind);
                fs::remove_file(&p).io_ctx("delete corrupt object", &p)?;
                report.deleted.push((*c, *kind));
            }
            if !bad.is_empty() {
                crate::durable::sync_filesystem(self.path())?;
            }
        }
        let present: HashSet<ObjectName> = objects
            .iter()
            .copied()
            .filter(|o| !(delete && bad.contains(o)))
            .collect();
        for (c, kind) in &objects {
            if *kind != ObjectType::Commit || !present.contains(&(*c, *kind)) {
                continue;
            }
            report.commits += 1;
            let mut seen = HashSet::new();
            let mut missing = Vec::new();
            if bad.contains(&(*c, *kind)) {
                continue;
            }
            self.reachable_around(c, &bad, &mut seen, &mut missing)?;
            // A corrupt object counts as missing for the commits that need it.
            let damaged: Vec<ObjectName> =
                seen.iter().filter(|o| bad.contains(o)).copied().collect();
            missing.extend(damaged.iter().filter(|o| !delete || !present.contains(o)));
            if missing.is_empty() {
                continue;
            }
            if self.is_partial(c) {
                report.partial_commits.push(*c);
            } else if delete {
                self.mark_partial(c)?;
                report.marked_partial.push(*c);
            } else {
                for o in missing.iter().filter(|o| !bad.contains(o)) {
                    report.missing.push(Problem {
                        object: *o,
                        what: format!("needed by commit {c} but missing"),
                    });
                }
            }
        }
        for (r, c) in self.list_refs()? {
            if !present.contains(&(c, ObjectType::Commit)) {
                report.missing.push(Problem {
                    object: (c, ObjectType::Commit),
                    what: format!("ref {r} points to it but it is missing"),
                });
            }
        }
        Ok(report)
    }
}
