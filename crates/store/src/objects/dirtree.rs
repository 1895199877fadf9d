//! `dirtree`: a directory's entries. GVariant `(a(say)a(sayay))`: files as
//! (name, content checksum), subdirectories as (name, dirtree, dirmeta);
//! both lists sorted by byte-wise name comparison.

use super::{FormatError, ObjectType, invalid, parse_as, validate_entry_name};
use std::sync::LazyLock;

use crate::checksum::Checksum;
use crate::gvariant::{Type, Value};

/// The GVariant type of a dirtree object.
pub const TYPE: &str = "(a(say)a(sayay))";
/// [`TYPE`], parsed once.
static VARIANT: LazyLock<Type> = LazyLock::new(|| Type::parse(TYPE).expect("static type"));
/// A file: (name, content checksum).
static FILE_ENTRY: LazyLock<Type> = LazyLock::new(|| Type::parse("(say)").expect("static type"));
/// A subdirectory: (name, dirtree, dirmeta).
static DIR_ENTRY: LazyLock<Type> = LazyLock::new(|| Type::parse("(sayay)").expect("static type"));

/// A dirtree object: a directory's entries, each list sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirTree {
    /// Files and symlinks: name and content object.
    pub files: Vec<(String, Checksum)>,
    /// Subdirectories.
    pub dirs: Vec<DirEntry>,
}

/// A subdirectory of a [`DirTree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Its name in the parent.
    pub name: String,
    /// Its own dirtree.
    pub tree: Checksum,
    /// Its dirmeta.
    pub meta: Checksum,
}

impl DirTree {
    /// Serializes; entries must already be sorted by name.
    pub fn to_bytes(&self) -> Vec<u8> {
        let files = self
            .files
            .iter()
            .map(|(n, c)| {
                Value::Tuple(vec![
                    Value::str(n.as_str()),
                    Value::Bytes(c.as_bytes().to_vec()),
                ])
            })
            .collect();
        let dirs = self
            .dirs
            .iter()
            .map(|d| {
                Value::Tuple(vec![
                    Value::str(d.name.as_str()),
                    Value::Bytes(d.tree.as_bytes().to_vec()),
                    Value::Bytes(d.meta.as_bytes().to_vec()),
                ])
            })
            .collect();
        Value::Tuple(vec![
            Value::Array(FILE_ENTRY.clone(), files),
            Value::Array(DIR_ENTRY.clone(), dirs),
        ])
        .to_bytes()
    }

    /// Parses and validates: names safe to use as path components, sorted
    /// and unique across both lists, checksums 32 bytes.
    pub fn from_bytes(data: &[u8]) -> Result<Self, FormatError> {
        let kind = ObjectType::DirTree;
        let v = parse_as(kind, &VARIANT, data)?;
        let bad = || invalid(kind, "unexpected layout");
        let [files, dirs] = v.as_tuple().ok_or_else(bad)? else {
            return Err(bad());
        };
        let csum = |v: &Value| {
            v.as_bytes()
                .and_then(Checksum::from_slice)
                .ok_or_else(|| invalid(kind, "checksum is not 32 bytes"))
        };
        let mut tree = DirTree::default();
        for f in files.as_array().ok_or_else(bad)? {
            let [name, c] = f.as_tuple().ok_or_else(bad)? else {
                return Err(bad());
            };
            tree.files
                .push((name.as_str().ok_or_else(bad)?.to_owned(), csum(c)?));
        }
        for d in dirs.as_array().ok_or_else(bad)? {
            let [name, t, m] = d.as_tuple().ok_or_else(bad)? else {
                return Err(bad());
            };
            tree.dirs.push(DirEntry {
                name: name.as_str().ok_or_else(bad)?.to_owned(),
                tree: csum(t)?,
                meta: csum(m)?,
            });
        }
        tree.validate().map_err(|what| invalid(kind, what))?;
        Ok(tree)
    }

    fn validate(&self) -> Result<(), String> {
        for list in [
            self.files
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>(),
            self.dirs.iter().map(|d| d.name.as_str()).collect(),
        ] {
            for name in &list {
                validate_entry_name(name)?;
            }
            if list.windows(2).any(|w| w[0].as_bytes() >= w[1].as_bytes()) {
                return Err("entries not sorted or not unique".into());
            }
        }
        let mut all: Vec<&str> = self.files.iter().map(|(n, _)| n.as_str()).collect();
        all.extend(self.dirs.iter().map(|d| d.name.as_str()));
        all.sort_unstable();
        if all.windows(2).any(|w| w[0] == w[1]) {
            return Err("a name is both a file and a directory".into());
        }
        Ok(())
    }
}
