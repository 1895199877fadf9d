//! The store's error type: every I/O failure names its action and path.

use std::io;
use std::path::{Path, PathBuf};

use crate::checksum::{Checksum, ChecksumError};
use crate::objects::{FormatError, ObjectType};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Format { path: PathBuf, source: FormatError },
    #[error("object {checksum}.{kind} is missing from the repository")]
    MissingObject {
        checksum: Checksum,
        kind: ObjectType,
    },
    #[error("object {checksum}.{kind} is corrupt: {what}")]
    Corrupt {
        checksum: Checksum,
        kind: ObjectType,
        what: String,
    },
    #[error("invalid ref name {name:?}: {rule}")]
    InvalidRef { name: String, rule: &'static str },
    #[error("{0}")]
    Checksum(#[from] ChecksumError),
    #[error("{rev:?} does not name a commit: {why}")]
    UnknownRev { rev: String, why: String },
    #[error("{path}: {what}")]
    BadInput { path: PathBuf, what: String },
    #[error("{path}: no such file or directory in commit {commit}")]
    NoSuchPath { path: String, commit: Checksum },
    #[error("{path}: {why}")]
    BadPath { path: String, why: &'static str },
    #[error("xattr name {name:?} contains a NUL byte")]
    XattrName { name: String },
    #[error("cannot start {what}: {source}")]
    Spawn {
        what: &'static str,
        source: io::Error,
    },
    #[error("{what} panicked")]
    WorkerPanicked { what: &'static str },
    #[error("writing to {dir} failed earlier in this transaction; nothing more is placed")]
    FailedEarlier { dir: PathBuf },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds the action and path to an I/O error.
pub trait IoContext<T> {
    fn io_ctx(self, action: &'static str, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn io_ctx(self, action: &'static str, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|source| Error::Io {
            action,
            path: path.as_ref().to_owned(),
            source,
        })
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn io_ctx(self, action: &'static str, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::Io {
            action,
            path: path.as_ref().to_owned(),
            source: e.into(),
        })
    }
}

impl Error {
    /// Whether this is an I/O error of kind `kind` (e.g. not found).
    pub fn is_io_kind(&self, kind: io::ErrorKind) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == kind)
    }
}
