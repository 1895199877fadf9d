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
    /// The walk keeps its own stack, so depth costs heap, not call stack.
    pub fn write(
        &self,
        tx: &Transaction<'_>,
        default_meta: Checksum,
    ) -> Result<(Checksum, Checksum)> {
        struct Frame<'a> {
            name: &'a str,
            node: &'a MutableTree,
            pending: std::collections::btree_map::Iter<'a, String, MutableTree>,
            written: Vec<DirEntry>,
        }
        fn frame<'a>(name: &'a str, node: &'a MutableTree) -> Frame<'a> {
            Frame {
                name,
                node,
                pending: node.dirs.iter(),
                written: Vec::with_capacity(node.dirs.len()),
            }
        }
        let mut stack = vec![frame("", self)];
        while let Some(top) = stack.last_mut() {
            if let Some((name, child)) = top.pending.next() {
                stack.push(frame(name, child));
                continue;
            }
            let Some(done) = stack.pop() else { break };
            let tree = DirTree {
                files: done
                    .node
                    .files
                    .iter()
                    .map(|(n, c)| (n.clone(), *c))
                    .collect(),
                dirs: done.written,
            };
            let t = tx.write_meta(ObjectType::DirTree, &tree.to_bytes())?;
            let m = done.node.meta.unwrap_or(default_meta);
            match stack.last_mut() {
                Some(parent) => parent.written.push(DirEntry {
                    name: done.name.to_owned(),
                    tree: t,
                    meta: m,
                }),
                None => return Ok((t, m)),
            }
        }
        unreachable!("the root frame returns")
    }
}

/// Dropped level by level: the derived drop recurses once per level, and
/// a tree thousands of levels deep would overflow the stack.
impl Drop for MutableTree {
    fn drop(&mut self) {
        let mut stack: Vec<MutableTree> = std::mem::take(&mut self.dirs).into_values().collect();
        while let Some(mut t) = stack.pop() {
            stack.extend(std::mem::take(&mut t.dirs).into_values());
        }
    }
}
