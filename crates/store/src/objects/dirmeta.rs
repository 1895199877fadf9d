//! `dirmeta`: a directory's ownership, mode and xattrs. GVariant `(uuua(ayay))`.

use super::{
    FormatError, ObjectType, Xattrs, be_u32, invalid, parse_as, xattrs_from_value, xattrs_to_value,
};
use std::sync::LazyLock;

use crate::gvariant::{Type, Value};

/// The GVariant type of a dirmeta object.
pub const TYPE: &str = "(uuua(ayay))";
/// [`TYPE`], parsed once.
static VARIANT: LazyLock<Type> = LazyLock::new(|| Type::parse(TYPE).expect("static type"));

/// A dirmeta object: what a directory is apart from its entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DirMeta {
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Full `st_mode`, including `S_IFDIR`.
    pub mode: u32,
    /// Extended attributes, sorted by name.
    pub xattrs: Xattrs,
}

impl DirMeta {
    /// Serializes to the canonical bytes the checksum covers.
    pub fn to_bytes(&self) -> Vec<u8> {
        Value::Tuple(vec![
            Value::Uint32(self.uid.to_be()),
            Value::Uint32(self.gid.to_be()),
            Value::Uint32(self.mode.to_be()),
            xattrs_to_value(&self.xattrs),
        ])
        .to_bytes()
    }

    /// Parses a dirmeta object; the mode must be a directory's.
    pub fn from_bytes(data: &[u8]) -> Result<Self, FormatError> {
        let kind = ObjectType::DirMeta;
        let v = parse_as(kind, &VARIANT, data)?;
        let bad = || invalid(kind, "unexpected layout");
        let [uid, gid, mode, xattrs] = v.as_tuple().ok_or_else(bad)? else {
            return Err(bad());
        };
        let meta = DirMeta {
            uid: be_u32(uid).ok_or_else(bad)?,
            gid: be_u32(gid).ok_or_else(bad)?,
            mode: be_u32(mode).ok_or_else(bad)?,
            xattrs: xattrs_from_value(xattrs).ok_or_else(bad)?,
        };
        super::validate_xattrs(&meta.xattrs).map_err(|what| invalid(kind, what))?;
        if meta.mode & libc_mode::S_IFMT != libc_mode::S_IFDIR {
            return Err(invalid(
                kind,
                format!("mode {:o} is not a directory", meta.mode),
            ));
        }
        Ok(meta)
    }
}

/// File type bits of `st_mode` (stable across Linux architectures).
pub mod libc_mode {
    /// Mask of the file type bits.
    pub const S_IFMT: u32 = 0o170000;
    /// A directory.
    pub const S_IFDIR: u32 = 0o040000;
    /// A regular file.
    pub const S_IFREG: u32 = 0o100000;
    /// A symbolic link.
    pub const S_IFLNK: u32 = 0o120000;
}
