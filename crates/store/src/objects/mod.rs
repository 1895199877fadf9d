//! The OSTree object kinds and their GVariant formats.
//!
//! Each object is named by the SHA-256 of its canonical bytes (for content
//! objects, of a header plus the content; see [`file_header`]). Integers
//! inside the values are big-endian, a quirk of OSTree kept for
//! compatibility: we convert at the edges, so the structs hold plain numbers.

pub mod commit;
pub mod dirmeta;
pub mod dirtree;
pub mod file_header;

use std::fmt;
use std::sync::LazyLock;

pub use commit::Commit;
pub use dirmeta::DirMeta;
pub use dirtree::DirTree;
pub use file_header::FileHeader;

use crate::Checksum;
use crate::gvariant::{self, Type, Value};

/// Extended attributes: (name, value), sorted by name. Names carry the
/// trailing NUL byte, exactly as OSTree serializes them.
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// The kinds of object a repository holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectType {
    /// A file or symlink: header and content (`.file`, `.filez`).
    File,
    /// A directory listing (`.dirtree`).
    DirTree,
    /// A directory's ownership, mode and xattrs (`.dirmeta`).
    DirMeta,
    /// A commit (`.commit`).
    Commit,
    /// Left where a deleted commit was (`.tombstone-commit`).
    TombstoneCommit,
    /// Detached metadata of a commit (signatures); named by the commit.
    CommitMeta,
}

/// A loose object's path relative to its repository,
/// `objects/XX/YYYY….ext`: the first two hex digits of the checksum name
/// the fan-out directory, and archive repositories store content objects
/// as `.filez`.
pub fn loose_path(checksum: &Checksum, kind: ObjectType, archive: bool) -> String {
    let hex = checksum.to_hex();
    format!(
        "objects/{}/{}.{}",
        &hex[..2],
        &hex[2..],
        kind.extension(archive)
    )
}

impl ObjectType {
    /// The file name extension of loose objects (`.file` in bare modes).
    pub fn extension(self, archive: bool) -> &'static str {
        match self {
            ObjectType::File if archive => "filez",
            ObjectType::File => "file",
            ObjectType::DirTree => "dirtree",
            ObjectType::DirMeta => "dirmeta",
            ObjectType::Commit => "commit",
            ObjectType::TombstoneCommit => "tombstone-commit",
            ObjectType::CommitMeta => "commitmeta",
        }
    }

    /// Recognizes a loose object's extension.
    pub fn from_extension(ext: &str) -> Option<Self> {
        Some(match ext {
            "file" | "filez" => ObjectType::File,
            "dirtree" => ObjectType::DirTree,
            "dirmeta" => ObjectType::DirMeta,
            "commit" => ObjectType::Commit,
            "tombstone-commit" => ObjectType::TombstoneCommit,
            "commitmeta" => ObjectType::CommitMeta,
            _ => return None,
        })
    }

    /// Whether this is a metadata object (a GVariant named by its bytes).
    pub fn is_meta(self) -> bool {
        !matches!(self, ObjectType::File)
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension(false))
    }
}

/// Why bytes are not a valid object of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The bytes are not a normal-form GVariant of the kind's type.
    #[error("{kind} object: {source}")]
    Variant {
        /// The kind expected.
        kind: ObjectType,
        /// Why it did not parse.
        source: gvariant::ParseError,
    },
    /// The GVariant is sound, but its content is not a valid object.
    #[error("{kind} object: {what}")]
    Invalid {
        /// The kind expected.
        kind: ObjectType,
        /// What is wrong with it.
        what: String,
    },
}

/// Checks a name as a directory entry: not empty, `.` or `..`, no `/` or NUL.
pub fn validate_entry_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty file name".into());
    }
    if name == "." || name == ".." {
        return Err(format!("invalid file name {name:?}"));
    }
    if name.contains('/') || name.contains('\0') {
        return Err(format!("invalid file name {name:?}: contains '/' or NUL"));
    }
    if name.len() > NAME_MAX {
        return Err(format!(
            "file name of {} bytes, longer than the {NAME_MAX} a Linux file system holds",
            name.len()
        ));
    }
    Ok(())
}

/// Largest metadata object read or pulled (libostree's
/// `OSTREE_MAX_METADATA_SIZE`): a bigger one is refused, not buffered.
pub const MAX_METADATA_SIZE: u64 = 128 << 20;

/// Longest file name, in bytes (Linux's `NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Longest symlink target, in bytes (Linux's `PATH_MAX` less its NUL).
pub const SYMLINK_MAX: usize = 4095;
/// Longest xattr name, in bytes without its NUL (`XATTR_NAME_MAX`).
pub const XATTR_NAME_MAX: usize = 255;
/// Largest xattr value, in bytes (`XATTR_SIZE_MAX`).
pub const XATTR_SIZE_MAX: usize = 65536;

/// Checks what an object's xattrs would do on a file system: each name in
/// OSTree's form (one trailing NUL, none inside, not empty) and within
/// the kernel's limits, each value too. A pull, fsck and checkout all
/// refuse an object that breaks them, before any file is written.
pub fn validate_xattrs(xattrs: &Xattrs) -> Result<(), String> {
    for (name, value) in xattrs {
        let shown = String::from_utf8_lossy(name);
        let Some(bare) = name.strip_suffix(&[0]) else {
            return Err(format!("xattr name {shown:?} lacks its trailing NUL"));
        };
        if bare.is_empty() || bare.contains(&0) {
            return Err(format!("invalid xattr name {shown:?}"));
        }
        if bare.len() > XATTR_NAME_MAX {
            return Err(format!(
                "xattr name of {} bytes, longer than {XATTR_NAME_MAX}",
                bare.len()
            ));
        }
        if value.len() > XATTR_SIZE_MAX {
            return Err(format!(
                "xattr {shown:?} of {} bytes, larger than {XATTR_SIZE_MAX}",
                value.len()
            ));
        }
    }
    Ok(())
}

/// One extended attribute: (name, value).
static XATTR_ENTRY: LazyLock<Type> = LazyLock::new(|| Type::parse("(ayay)").expect("static type"));

pub(crate) fn xattrs_to_value(xattrs: &Xattrs) -> Value {
    Value::Array(
        XATTR_ENTRY.clone(),
        xattrs
            .iter()
            .map(|(k, v)| Value::Tuple(vec![Value::Bytes(k.clone()), Value::Bytes(v.clone())]))
            .collect(),
    )
}

pub(crate) fn xattrs_from_value(v: &Value) -> Option<Xattrs> {
    v.as_array()?
        .iter()
        .map(|item| match item.as_tuple()? {
            [Value::Bytes(k), Value::Bytes(v)] => Some((k.clone(), v.clone())),
            _ => None,
        })
        .collect()
}

pub(crate) fn be_u32(v: &Value) -> Option<u32> {
    match v {
        Value::Uint32(x) => Some(u32::from_be(*x)),
        _ => None,
    }
}

pub(crate) fn parse_as(kind: ObjectType, ty: &Type, data: &[u8]) -> Result<Value, FormatError> {
    Value::from_bytes(ty, data).map_err(|source| FormatError::Variant { kind, source })
}

pub(crate) fn invalid(kind: ObjectType, what: impl Into<String>) -> FormatError {
    FormatError::Invalid {
        kind,
        what: what.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::Checksum;

    /// Issue 15: what no Linux file system can hold is refused when an
    /// object is parsed, so a pull, fsck and checkout agree on it.
    #[test]
    fn names_and_xattrs_past_the_kernels_limits_are_refused() {
        let c = Checksum::of(b"x");
        for (name, ok) in [
            ("a".repeat(255), true),
            ("a".repeat(256), false),
            (".".into(), false),
            ("..".into(), false),
            ("a/b".into(), false),
            ("...".into(), true),
        ] {
            let tree = DirTree {
                files: vec![(name.clone(), c)],
                dirs: Vec::new(),
            };
            assert_eq!(
                DirTree::from_bytes(&tree.to_bytes()).is_ok(),
                ok,
                "{name:?}"
            );
        }
        let meta = |xattrs: Xattrs| DirMeta {
            uid: 0,
            gid: 0,
            mode: 0o40755,
            xattrs,
        };
        let good = meta(vec![(b"user.a\0".to_vec(), b"v".to_vec())]);
        assert!(DirMeta::from_bytes(&good.to_bytes()).is_ok());
        for bad in [
            vec![(b"user.a".to_vec(), b"v".to_vec())],
            vec![(b"\0".to_vec(), b"v".to_vec())],
            vec![(b"user.\0a\0".to_vec(), b"v".to_vec())],
            vec![(
                [b"user.".as_slice(), &[b'a'; 251], b"\0"].concat(),
                b"v".to_vec(),
            )],
            vec![(b"user.a\0".to_vec(), vec![0; XATTR_SIZE_MAX + 1])],
        ] {
            let err = DirMeta::from_bytes(&meta(bad.clone()).to_bytes());
            assert!(err.is_err(), "{bad:?}");
            let header = FileHeader {
                uid: 0,
                gid: 0,
                mode: 0o100644,
                symlink_target: String::new(),
                xattrs: bad,
            };
            assert!(FileHeader::from_bare_user_meta(&header.bare_user_meta()).is_err());
            assert!(header.validate().is_err());
        }
        let link = |len: usize| FileHeader {
            uid: 0,
            gid: 0,
            mode: 0o120777,
            symlink_target: "t".repeat(len),
            xattrs: Vec::new(),
        };
        assert!(link(SYMLINK_MAX).validate().is_ok());
        assert!(link(SYMLINK_MAX + 1).validate().is_err());
    }
}
