//! Copying a commit and everything it reaches from one repository into
//! another (any modes), verifying each object on the way, as a local pull.

use std::collections::HashSet;

use crate::checksum::Checksum;
use crate::error::{Error, Result};
use crate::objects::ObjectType;
use crate::objects_walk::ObjectName;
use crate::repo::Repo;
use crate::write::Transaction;

/// Copies `commit` from `src` into `dst`; returns how many objects were new.
pub fn copy_commit(src: &Repo, dst: &Repo, commit: &Checksum) -> Result<usize> {
    let mut reach: HashSet<ObjectName> = HashSet::new();
    let mut missing = Vec::new();
    src.reachable_from(commit, &mut reach, &mut missing)?;
    if let Some((c, kind)) = missing.first() {
        return Err(Error::MissingObject {
            checksum: *c,
            kind: *kind,
        });
    }
    let tx = Transaction::begin(dst)?;
    let mut copied = 0;
    // The commit object last: it is what makes the others reachable.
    let mut objects: Vec<&ObjectName> = reach
        .iter()
        .filter(|(_, k)| *k != ObjectType::CommitMeta)
        .collect();
    objects.sort_by_key(|(_, k)| *k == ObjectType::Commit);
    for (c, kind) in objects {
        if dst.has_object(c, *kind) {
            continue;
        }
        copied += 1;
        if *kind == ObjectType::File {
            let (header, content) = src.load_file(c)?;
            let got = tx.write_content(&header, &content)?;
            if got != *c {
                return Err(Error::Corrupt {
                    checksum: *c,
                    kind: *kind,
                    what: format!("content hashes to {got}"),
                });
            }
        } else {
            tx.write_meta(*kind, &src.read_meta(c, *kind)?)?;
        }
    }
    tx.commit()?;
    let meta = src.object_path(commit, ObjectType::CommitMeta);
    if let Ok(bytes) = std::fs::read(&meta) {
        let to = dst.object_path(commit, ObjectType::CommitMeta);
        if let Some(d) = to.parent() {
            std::fs::create_dir_all(d).map_err(|e| Error::Io {
                action: "create",
                path: d.to_owned(),
                source: e,
            })?;
        }
        crate::durable::write_file(&to, &bytes, 0o644)?;
    }
    Ok(copied)
}
