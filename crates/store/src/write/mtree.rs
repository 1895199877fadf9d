//! An in-memory tree of checksums, built by importers and written as
//! dirtree/dirmeta objects once all its content objects are stored.

use std::collections::BTreeMap;

use crate::checksum::Checksum;
use crate::error::Result;
use crate::objects::dirtree::DirEntry;
use crate::objects::{DirTree, ObjectType};
use crate::write::Transaction;

/// A directory: its dirmeta and its entries. `BTreeMap<String>` orders
/// names byte-wise, which is the order dirtree objects require.
#[derive(Debug, Default)]
pub struct MutableTree {
    /// The directory's dirmeta; `None` takes the default dirmeta given
    /// when the tree is written.
    pub meta: Option<Checksum>,
    /// Non-directory entries: name to content object.
    pub files: BTreeMap<String, Checksum>,
    /// Subdirectories by name.
    pub dirs: BTreeMap<String, MutableTree>,
}

impl MutableTree {
    /// Writes this tree's dirtree objects, children first; returns the
    /// checksums of the root dirtree and dirmeta. `default_meta` is used for
    /// directories whose metadata was never given (e.g. implied by a tar).
    pub fn write(
        &self,
        tx: &Transaction<'_>,
        default_meta: Checksum,
    ) -> Result<(Checksum, Checksum)> {
        let mut tree = DirTree::default();
        for (name, csum) in &self.files {
            tree.files.push((name.clone(), *csum));
        }
        for (name, sub) in &self.dirs {
            let (t, m) = sub.write(tx, default_meta)?;
            tree.dirs.push(DirEntry {
                name: name.clone(),
                tree: t,
                meta: m,
            });
        }
        let t = tx.write_meta(ObjectType::DirTree, &tree.to_bytes())?;
        Ok((t, self.meta.unwrap_or(default_meta)))
    }
}
