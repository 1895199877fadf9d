//! SHA-256 object names.

use std::fmt;

use sha2::{Digest, Sha256};

/// The SHA-256 checksum that names an object.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Checksum([u8; 32]);

/// A string that is not 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid checksum {0:?}: expected 64 lowercase hex characters")]
pub struct ChecksumError(pub String);

impl Checksum {
    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Checksum(bytes)
    }

    /// Reads a checksum stored as 32 raw bytes (as in dirtree and commit objects).
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Checksum)
    }

    /// Parses 64 lowercase hex characters.
    pub fn from_hex(s: &str) -> Result<Self, ChecksumError> {
        if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ChecksumError(s.to_owned()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| ChecksumError(s.to_owned()))?;
        Ok(Checksum(out))
    }

    /// The SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Checksum(Sha256::digest(data).into())
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64-character lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({})", self.to_hex())
    }
}

impl std::str::FromStr for Checksum {
    type Err = ChecksumError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Checksum::from_hex(s)
    }
}

/// Incremental SHA-256 for content streamed from files.
#[derive(Default, Clone)]
pub struct Hasher(Sha256);

impl Hasher {
    /// A hasher that has seen nothing yet.
    pub fn new() -> Self {
        Hasher(Sha256::new())
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The checksum of everything fed.
    pub fn finish(self) -> Checksum {
        Checksum(self.0.finalize().into())
    }
}
