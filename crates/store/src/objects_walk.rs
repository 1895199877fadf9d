//! Enumerating loose objects and the objects a commit reaches.

use std::collections::HashSet;
use std::fs;

use crate::checksum::Checksum;
use crate::error::{Error, IoContext, Result};
use crate::objects::ObjectType;
use crate::repo::Repo;

/// A loose object's identity.
pub type ObjectName = (Checksum, ObjectType);

impl Repo {
    /// Every loose object in `objects/`; stray files are ignored.
    pub fn list_objects(&self) -> Result<Vec<ObjectName>> {
        let objects = self.path().join("objects");
        let mut out = Vec::new();
        for sub in fs::read_dir(&objects).io_ctx("read directory", &objects)? {
            let sub = sub.io_ctx("read directory", &objects)?;
            let prefix = sub.file_name().to_string_lossy().into_owned();
            if prefix.len() != 2 || !sub.file_type().io_ctx("stat", sub.path())?.is_dir() {
                continue;
            }
            for e in fs::read_dir(sub.path()).io_ctx("read directory", sub.path())? {
                let e = e.io_ctx("read directory", sub.path())?;
                let name = e.file_name().to_string_lossy().into_owned();
                let Some((rest, ext)) = name.split_once('.') else {
                    continue;
                };
                let (Ok(c), Some(kind)) = (
                    Checksum::from_hex(&format!("{prefix}{rest}")),
                    ObjectType::from_extension(ext),
                ) else {
                    continue;
                };
                out.push((c, kind));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Adds to `into` every object `commit` reaches (itself, its detached
    /// metadata if present, dirtrees, dirmetas, files). Objects that are
    /// missing are collected in `missing` instead of failing the walk.
    pub fn reachable_from(
        &self,
        commit: &Checksum,
        into: &mut HashSet<ObjectName>,
        missing: &mut Vec<ObjectName>,
    ) -> Result<()> {
        self.reachable_around(commit, &HashSet::new(), into, missing)
    }

    /// [`Repo::reachable_from`], where a dirtree in `damaged` (found
    /// corrupt by fsck) counts as reached but is not read: fsck reports
    /// it, and what only it names, instead of failing on it.
    pub(crate) fn reachable_around(
        &self,
        commit: &Checksum,
        damaged: &HashSet<ObjectName>,
        into: &mut HashSet<ObjectName>,
        missing: &mut Vec<ObjectName>,
    ) -> Result<()> {
        into.insert((*commit, ObjectType::Commit));
        into.insert((*commit, ObjectType::CommitMeta));
        let c = match self.load_commit(commit) {
            Ok(c) => c,
            Err(Error::MissingObject { .. }) => {
                missing.push((*commit, ObjectType::Commit));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        self.walk_tree(&c.root_tree, &c.root_meta, damaged, into, missing)
    }

    /// Adds what tree `tree` (with `meta`) reaches to `into`; the walk
    /// keeps its own stack, so depth costs heap, not call stack.
    fn walk_tree(
        &self,
        tree: &Checksum,
        meta: &Checksum,
        damaged: &HashSet<ObjectName>,
        into: &mut HashSet<ObjectName>,
        missing: &mut Vec<ObjectName>,
    ) -> Result<()> {
        let mut todo = vec![(*tree, *meta)];
        while let Some((tree, meta)) = todo.pop() {
            if into.insert((meta, ObjectType::DirMeta))
                && !self.has_object(&meta, ObjectType::DirMeta)
            {
                missing.push((meta, ObjectType::DirMeta));
            }
            if !into.insert((tree, ObjectType::DirTree))
                || damaged.contains(&(tree, ObjectType::DirTree))
            {
                continue;
            }
            let t = match self.load_dirtree(&tree) {
                Ok(t) => t,
                Err(Error::MissingObject { .. }) => {
                    missing.push((tree, ObjectType::DirTree));
                    continue;
                }
                Err(e) => return Err(e),
            };
            for (_, f) in &t.files {
                if into.insert((*f, ObjectType::File)) && !self.has_object(f, ObjectType::File) {
                    missing.push((*f, ObjectType::File));
                }
            }
            todo.extend(t.dirs.iter().map(|d| (d.tree, d.meta)));
        }
        Ok(())
    }
}
