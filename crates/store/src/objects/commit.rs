//! `commit`: GVariant `(a{sv}aya(say)sstayay)`: metadata, parent checksum
//! (empty for none), related objects, subject, body, timestamp (seconds
//! since the epoch, big-endian), root dirtree checksum, root dirmeta checksum.
//!
//! Metadata keeps insertion order: a sorted map would change the checksum.

use super::{FormatError, ObjectType, invalid, parse_as};
use std::sync::LazyLock;

use crate::checksum::Checksum;
use crate::gvariant::{Type, Value};

/// The GVariant type of a commit object.
pub const TYPE: &str = "(a{sv}aya(say)sstayay)";
/// [`TYPE`], parsed once.
static VARIANT: LazyLock<Type> = LazyLock::new(|| Type::parse(TYPE).expect("static type"));
/// A related object: (name, commit checksum).
static RELATED_ENTRY: LazyLock<Type> = LazyLock::new(|| Type::parse("(say)").expect("static type"));
/// Detached metadata: `a{sv}`.
static DETACHED: LazyLock<Type> = LazyLock::new(|| Type::parse("a{sv}").expect("static type"));
/// A metadata entry: key → variant.
static METADATA_ENTRY: LazyLock<Type> = LazyLock::new(|| Type::parse("{sv}").expect("static type"));

/// Commit metadata key listing the refs a commit may be pulled as.
pub const REF_BINDING: &str = "ostree.ref-binding";
/// Commit metadata key with the human version string.
pub const VERSION: &str = "version";

/// A commit object: a root tree and its history, described.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// `a{sv}` metadata (version, ref binding, …), in insertion order.
    pub metadata: Vec<(String, Value)>,
    /// The previous commit, if any.
    pub parent: Option<Checksum>,
    /// Related objects by name; ostree writes none.
    pub related: Vec<(String, Checksum)>,
    /// The one-line summary.
    pub subject: String,
    /// The longer description, may be empty.
    pub body: String,
    /// When it was made, in seconds since the epoch.
    pub timestamp: u64,
    /// The dirtree of the root directory.
    pub root_tree: Checksum,
    /// The dirmeta of the root directory.
    pub root_meta: Checksum,
}

impl Commit {
    /// Serializes to the canonical bytes the commit's checksum covers.
    pub fn to_bytes(&self) -> Vec<u8> {
        let meta = metadata_to_value(&self.metadata);
        let related = self
            .related
            .iter()
            .map(|(n, c)| {
                Value::Tuple(vec![
                    Value::str(n.as_str()),
                    Value::Bytes(c.as_bytes().to_vec()),
                ])
            })
            .collect();
        Value::Tuple(vec![
            meta,
            Value::Bytes(
                self.parent
                    .map(|c| c.as_bytes().to_vec())
                    .unwrap_or_default(),
            ),
            Value::Array(RELATED_ENTRY.clone(), related),
            Value::str(self.subject.as_str()),
            Value::str(self.body.as_str()),
            Value::Uint64(self.timestamp.to_be()),
            Value::Bytes(self.root_tree.as_bytes().to_vec()),
            Value::Bytes(self.root_meta.as_bytes().to_vec()),
        ])
        .to_bytes()
    }

    /// Parses a commit object, refusing anything not in normal form.
    pub fn from_bytes(data: &[u8]) -> Result<Self, FormatError> {
        let kind = ObjectType::Commit;
        let v = parse_as(kind, &VARIANT, data)?;
        let bad = || invalid(kind, "unexpected layout");
        let [
            meta,
            parent,
            related,
            subject,
            body,
            Value::Uint64(ts),
            tree,
            dmeta,
        ] = v.as_tuple().ok_or_else(bad)?
        else {
            return Err(bad());
        };
        let csum = |v: &Value| {
            v.as_bytes()
                .and_then(Checksum::from_slice)
                .ok_or_else(|| invalid(kind, "checksum is not 32 bytes"))
        };
        let parent = match parent.as_bytes().ok_or_else(bad)? {
            [] => None,
            _ => Some(csum(parent)?),
        };
        let mut rel = Vec::new();
        for r in related.as_array().ok_or_else(bad)? {
            let [n, c] = r.as_tuple().ok_or_else(bad)? else {
                return Err(bad());
            };
            rel.push((n.as_str().ok_or_else(bad)?.to_owned(), csum(c)?));
        }
        Ok(Commit {
            metadata: metadata_from_value(meta).ok_or_else(bad)?,
            parent,
            related: rel,
            subject: subject.as_str().ok_or_else(bad)?.to_owned(),
            body: body.as_str().ok_or_else(bad)?.to_owned(),
            timestamp: u64::from_be(*ts),
            root_tree: csum(tree)?,
            root_meta: csum(dmeta)?,
        })
    }

    /// The value of metadata key `key`, unwrapped from its variant.
    pub fn meta(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The `version` metadata string, if any.
    pub fn version(&self) -> Option<&str> {
        self.meta(VERSION).and_then(Value::as_str)
    }

    /// The refs this commit is bound to (`ostree.ref-binding`).
    pub fn ref_bindings(&self) -> Vec<&str> {
        self.meta(REF_BINDING)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// The checksum of the tree alone: `sha256(root dirtree ‖ root dirmeta)`.
    pub fn content_checksum(&self) -> Checksum {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(self.root_tree.as_bytes());
        buf.extend_from_slice(self.root_meta.as_bytes());
        Checksum::of(&buf)
    }
}

/// `a{sv}` from (key, value) pairs in order; values are wrapped in variants.
pub fn metadata_to_value(meta: &[(String, Value)]) -> Value {
    Value::Array(
        METADATA_ENTRY.clone(),
        meta.iter()
            .map(|(k, v)| {
                Value::DictEntry(
                    Box::new(Value::str(k.as_str())),
                    Box::new(Value::Variant(Box::new(v.clone()))),
                )
            })
            .collect(),
    )
}

/// (key, value) pairs of an `a{sv}`, values unwrapped from their variants.
pub fn metadata_from_value(v: &Value) -> Option<Vec<(String, Value)>> {
    v.as_array()?
        .iter()
        .map(|e| match e {
            Value::DictEntry(k, v) => match v.as_ref() {
                Value::Variant(inner) => Some((k.as_str()?.to_owned(), (**inner).clone())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Parses a detached metadata (`.commitmeta`) or `summary.sig` object: `a{sv}`.
pub fn parse_detached(data: &[u8]) -> Result<Vec<(String, Value)>, FormatError> {
    let kind = ObjectType::CommitMeta;
    let v = parse_as(kind, &DETACHED, data)?;
    metadata_from_value(&v).ok_or_else(|| invalid(kind, "unexpected layout"))
}
