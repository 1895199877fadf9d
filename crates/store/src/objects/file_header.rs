//! Content object headers.
//!
//! A content object's checksum covers a header and the content:
//! `sha256(BE32(len(H)) ‖ 0u32 ‖ H ‖ content)` with H the GVariant
//! `(uuuusa(ayay))` (uid, gid, mode, rdev = 0, symlink target, xattrs).
//! Archive repositories store `.filez` as `BE32(len(Z)) ‖ 0u32 ‖ Z ‖
//! raw-deflate(content)` with Z = `(tuuuusa(ayay))`, the size first.
//! Bare-user repositories keep `(uuua(ayay))` in the `user.ostreemeta` xattr.

use super::dirmeta::libc_mode::{S_IFLNK, S_IFMT, S_IFREG};
use super::{
    FormatError, ObjectType, Xattrs, be_u32, invalid, parse_as, xattrs_from_value, xattrs_to_value,
};
use crate::checksum::{Checksum, Hasher};
use std::sync::LazyLock;

use crate::gvariant::{Type, Value};

/// The header a content checksum covers: uid, gid, mode, rdev, symlink
/// target, xattrs.
pub const TYPE: &str = "(uuuusa(ayay))";
/// The header of a `.filez` object: the content size, then [`TYPE`].
pub const ARCHIVE_TYPE: &str = "(tuuuusa(ayay))";
/// The metadata in a bare-user object's [`BARE_USER_XATTR`]: uid, gid,
/// mode, xattrs.
pub const BARE_USER_TYPE: &str = "(uuua(ayay))";
/// [`ARCHIVE_TYPE`], parsed once.
static ARCHIVE_VARIANT: LazyLock<Type> =
    LazyLock::new(|| Type::parse(ARCHIVE_TYPE).expect("static type"));
/// [`BARE_USER_TYPE`], parsed once.
static BARE_USER_VARIANT: LazyLock<Type> =
    LazyLock::new(|| Type::parse(BARE_USER_TYPE).expect("static type"));
/// Name of the xattr that holds a bare-user object's real metadata.
pub const BARE_USER_XATTR: &str = "user.ostreemeta";

/// A content object's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileHeader {
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Full `st_mode`: `S_IFREG` or `S_IFLNK` plus permission bits.
    pub mode: u32,
    /// The target for symlinks, empty for regular files.
    pub symlink_target: String,
    /// Extended attributes, sorted by name.
    pub xattrs: Xattrs,
}

impl FileHeader {
    /// Whether this is a symlink.
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }

    /// Whether this is a regular file.
    pub fn is_regular(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    fn fields(&self) -> Vec<Value> {
        vec![
            Value::Uint32(self.uid.to_be()),
            Value::Uint32(self.gid.to_be()),
            Value::Uint32(self.mode.to_be()),
            Value::Uint32(0),
            Value::str(self.symlink_target.as_str()),
            xattrs_to_value(&self.xattrs),
        ]
    }

    /// The length-prefixed header that starts the checksummed stream.
    pub fn stream_prefix(&self) -> Vec<u8> {
        length_prefixed(Value::Tuple(self.fields()).to_bytes())
    }

    /// A hasher already fed the header; feed it the content to get the checksum.
    pub fn hasher(&self) -> Hasher {
        let mut h = Hasher::new();
        h.update(&self.stream_prefix());
        h
    }

    /// The checksum of this header followed by `content`.
    pub fn checksum(&self, content: &[u8]) -> Checksum {
        let mut h = self.hasher();
        h.update(content);
        h.finish()
    }

    /// The `.filez` prefix of an archive object holding `size` content bytes.
    pub fn archive_prefix(&self, size: u64) -> Vec<u8> {
        let mut fields = vec![Value::Uint64(size.to_be())];
        fields.extend(self.fields());
        length_prefixed(Value::Tuple(fields).to_bytes())
    }

    /// Parses the header of an archive object; returns it with the content size.
    pub fn from_archive(data: &[u8]) -> Result<(Self, u64), FormatError> {
        let v = parse_as(ObjectType::File, &ARCHIVE_VARIANT, data)?;
        let bad = || invalid(ObjectType::File, "unexpected archive header layout");
        let items = v.as_tuple().ok_or_else(bad)?;
        let (Some(Value::Uint64(size)), Some(rest)) = (items.first(), items.get(1..)) else {
            return Err(bad());
        };
        Ok((Self::from_fields(rest)?, u64::from_be(*size)))
    }

    fn from_fields(items: &[Value]) -> Result<Self, FormatError> {
        let bad = || invalid(ObjectType::File, "unexpected header layout");
        let [uid, gid, mode, Value::Uint32(rdev), target, xattrs] = items else {
            return Err(bad());
        };
        let header = FileHeader {
            uid: be_u32(uid).ok_or_else(bad)?,
            gid: be_u32(gid).ok_or_else(bad)?,
            mode: be_u32(mode).ok_or_else(bad)?,
            symlink_target: target.as_str().ok_or_else(bad)?.to_owned(),
            xattrs: xattrs_from_value(xattrs).ok_or_else(bad)?,
        };
        if *rdev != 0 {
            return Err(invalid(ObjectType::File, "device numbers are not content"));
        }
        header.validate()?;
        Ok(header)
    }

    /// Checks the mode is a regular file or symlink, with a target only for symlinks.
    pub fn validate(&self) -> Result<(), FormatError> {
        super::validate_xattrs(&self.xattrs).map_err(|what| invalid(ObjectType::File, what))?;
        if self.symlink_target.len() > super::SYMLINK_MAX {
            return Err(invalid(
                ObjectType::File,
                format!(
                    "symlink target of {} bytes, longer than {}",
                    self.symlink_target.len(),
                    super::SYMLINK_MAX
                ),
            ));
        }
        let ok = if self.is_symlink() {
            !self.symlink_target.is_empty() && !self.symlink_target.contains('\0')
        } else {
            self.is_regular() && self.symlink_target.is_empty()
        };
        if ok {
            Ok(())
        } else {
            Err(invalid(
                ObjectType::File,
                format!(
                    "mode {:o} with symlink target {:?}",
                    self.mode, self.symlink_target
                ),
            ))
        }
    }

    /// The `user.ostreemeta` value of a bare-user object.
    pub fn bare_user_meta(&self) -> Vec<u8> {
        Value::Tuple(vec![
            Value::Uint32(self.uid.to_be()),
            Value::Uint32(self.gid.to_be()),
            Value::Uint32(self.mode.to_be()),
            xattrs_to_value(&self.xattrs),
        ])
        .to_bytes()
    }

    /// Reads a bare-user object's metadata; the symlink target, if any, is
    /// the object's content and is filled in by the caller.
    pub fn from_bare_user_meta(data: &[u8]) -> Result<Self, FormatError> {
        let v = parse_as(ObjectType::File, &BARE_USER_VARIANT, data)?;
        let bad = || invalid(ObjectType::File, "unexpected user.ostreemeta layout");
        let [uid, gid, mode, xattrs] = v.as_tuple().ok_or_else(bad)? else {
            return Err(bad());
        };
        let header = FileHeader {
            uid: be_u32(uid).ok_or_else(bad)?,
            gid: be_u32(gid).ok_or_else(bad)?,
            mode: be_u32(mode).ok_or_else(bad)?,
            symlink_target: String::new(),
            xattrs: xattrs_from_value(xattrs).ok_or_else(bad)?,
        };
        super::validate_xattrs(&header.xattrs).map_err(|what| invalid(ObjectType::File, what))?;
        Ok(header)
    }
}

/// `BE32(len) ‖ 0u32 ‖ data`: the padding keeps the variant 8-aligned.
fn length_prefixed(data: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&data);
    out
}

/// Splits a length-prefixed header off the front of `data`.
pub fn split_prefixed(data: &[u8]) -> Result<(&[u8], &[u8]), FormatError> {
    let bad = || invalid(ObjectType::File, "truncated header");
    let len = u32::from_be_bytes(
        data.get(..4)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    ) as usize;
    let header = data.get(8..8 + len).ok_or_else(bad)?;
    Ok((header, &data[8 + len..]))
}

/// Why [`read_prefixed`] failed.
#[derive(Debug)]
pub enum PrefixError {
    /// The header is not a valid one.
    Bad(FormatError),
    /// Reading failed.
    Io(std::io::Error),
}

/// [`split_prefixed`] for an object of `len` bytes read from `r`: returns
/// its header and leaves `r` at what follows. A header longer than `max`
/// bytes is refused before it is read.
pub fn read_prefixed(
    r: &mut impl std::io::Read,
    len: u64,
    max: u64,
) -> Result<Vec<u8>, PrefixError> {
    if len < 8 {
        return Err(PrefixError::Bad(invalid(
            ObjectType::File,
            "truncated header",
        )));
    }
    let mut start = [0u8; 8];
    r.read_exact(&mut start).map_err(PrefixError::Io)?;
    let header_len = u64::from(u32::from_be_bytes([start[0], start[1], start[2], start[3]]));
    if header_len > max || 8 + header_len > len {
        return Err(PrefixError::Bad(invalid(
            ObjectType::File,
            format!("bad header length {header_len} in a {len}-byte object"),
        )));
    }
    let mut header = vec![0; header_len as usize];
    r.read_exact(&mut header).map_err(PrefixError::Io)?;
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> FileHeader {
        FileHeader {
            uid: 0,
            gid: 0,
            mode: 0o100644,
            symlink_target: String::new(),
            xattrs: vec![(b"user.a".to_vec(), b"b".to_vec())],
        }
    }

    /// Archive staging writes the header before it knows the size, then
    /// again: the length must not depend on the size.
    #[test]
    fn archive_prefix_length_does_not_depend_on_the_size() {
        let h = header();
        let zero = h.archive_prefix(0);
        for size in [1, 1 << 32, u64::MAX] {
            assert_eq!(h.archive_prefix(size).len(), zero.len(), "{size}");
        }
    }

    #[test]
    fn read_prefixed_agrees_with_split_prefixed() {
        let mut object = header().archive_prefix(5);
        object.extend_from_slice(b"12345");
        let (header, rest) = split_prefixed(&object).expect("split");
        let mut r = &object[..];
        let read = read_prefixed(&mut r, object.len() as u64, 1 << 20).expect("read");
        assert_eq!(read, header);
        assert_eq!(r, rest, "the reader is left at the content");
        let bad = |data: &[u8], max| match read_prefixed(&mut &data[..], data.len() as u64, max) {
            Err(PrefixError::Bad(e)) => e.to_string(),
            other => panic!("{other:?}"),
        };
        assert!(bad(&object[..5], 1 << 20).contains("truncated"));
        assert!(bad(&object[..12], 1 << 20).contains("bad header length"));
        assert!(
            bad(&object, 4).contains("bad header length"),
            "over the maximum"
        );
    }
}
