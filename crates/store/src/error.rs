//! The store's error type: every I/O failure names its action and path.

use std::io;
use std::path::{Path, PathBuf};

use crate::checksum::{Checksum, ChecksumError};
use crate::objects::{FormatError, ObjectType};

/// What can go wrong in the store. Callers branch on the kind (a missing
/// object, a bad ref name); the message names the object or path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed; made by [`IoContext::io_ctx`].
    #[error("could not {action} {path}: {source}")]
    Io {
        /// The verb, as in "could not {action}": `open`, `rename`, `fsync`…
        action: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// An object or file on disk does not parse.
    #[error("{path}: {source}")]
    Format {
        /// The file that does not parse.
        path: PathBuf,
        /// What is wrong with it.
        source: FormatError,
    },
    /// A needed object is not in the repository (not yet pulled, or pruned).
    #[error("object {checksum}.{kind} is missing from the repository")]
    MissingObject {
        /// The object's name.
        checksum: Checksum,
        /// Its type, which is part of its file name.
        kind: ObjectType,
    },
    /// An object's content does not match its name, or does not parse.
    #[error("object {checksum}.{kind} is corrupt: {what}")]
    Corrupt {
        /// The object's name.
        checksum: Checksum,
        /// Its type.
        kind: ObjectType,
        /// What is wrong with it.
        what: String,
    },
    /// A ref name breaks the naming rules (see [`crate::RefName`]).
    #[error("invalid ref name {name:?}: {rule}")]
    InvalidRef {
        /// The name as given.
        name: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A string is not a valid checksum.
    #[error("{0}")]
    Checksum(#[from] ChecksumError),
    /// A revision (`ref`, `ref^`, checksum or prefix) resolves to no commit.
    #[error("{rev:?} does not name a commit: {why}")]
    UnknownRev {
        /// The revision as given.
        rev: String,
        /// Why it resolves to nothing (no such ref, ambiguous prefix…).
        why: String,
    },
    /// A file or directory handed to the store is unusable: not a
    /// repository, a bad config, a tree or tar member that cannot be
    /// committed.
    #[error("{path}: {what}")]
    BadInput {
        /// Where in the input.
        path: PathBuf,
        /// What is wrong there.
        what: String,
    },
    /// A path asked for inside a commit does not exist there.
    #[error("{path}: no such file or directory in commit {commit}")]
    NoSuchPath {
        /// The path, relative to the commit's root.
        path: String,
        /// The commit searched.
        commit: Checksum,
    },
    /// A path looked up in a commit is refused: it has `..`, or goes
    /// through a file as if it were a directory.
    #[error("{path}: {why}")]
    BadPath {
        /// The path as given.
        path: String,
        /// The rule it breaks.
        why: &'static str,
    },
    /// An extended attribute name cannot be passed to the kernel.
    #[error("xattr name {name:?} contains a NUL byte")]
    XattrName {
        /// The name, lossily decoded.
        name: String,
    },
    /// A helper thread or process could not be started.
    #[error("cannot start {what}: {source}")]
    Spawn {
        /// What was being started.
        what: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// A worker thread panicked; its work is lost, nothing was published.
    #[error("{what} panicked")]
    WorkerPanicked {
        /// Which worker.
        what: &'static str,
    },
    /// Making a transaction's staged objects durable failed earlier; it
    /// places nothing more, so no object is published unsynced.
    #[error("writing to {dir} failed earlier in this transaction; nothing more is placed")]
    FailedEarlier {
        /// The transaction's staging directory.
        dir: PathBuf,
    },
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds the action and path to an I/O error. The crates above the store
/// use it too: their errors wrap [`Error`], so `.io_ctx(..)?` gives them
/// the same "could not {action} {path}: {source}".
pub trait IoContext<T> {
    /// Turns an I/O error into [`Error::Io`] saying "could not `action` `path`".
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
        self.map_err(io::Error::from).io_ctx(action, path)
    }
}

impl Error {
    /// Whether this is an I/O error of kind `kind` (e.g. not found).
    pub fn is_io_kind(&self, kind: io::ErrorKind) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == kind)
    }
}
