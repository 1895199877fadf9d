//! Errors of exporting a commit as an OCI image.

use std::path::PathBuf;

/// What can go wrong in an export. Whatever the error, nothing is left at
/// the destination: the image is written aside and moved there whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository failed (a missing or corrupt object, a bad commit).
    #[error(transparent)]
    Store(#[from] strata_store::Error),
    /// A commit that cannot be an image, for the reason given.
    #[error("commit {commit}: {what}")]
    BadTree {
        /// The commit exported.
        commit: strata_store::Checksum,
        /// What is wrong with it.
        what: String,
    },
    /// Writing an entry of the layer failed (reading or verifying its
    /// object, or writing the output).
    #[error("commit {commit}: writing {}: {source}", if path.is_empty() { "the end of the layer" } else { path.as_str() })]
    Layer {
        /// The commit exported.
        commit: strata_store::Checksum,
        /// The entry's path in the image.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A destination that cannot be used.
    #[error("{}: {what}", path.display())]
    BadDestination {
        /// The path given.
        path: PathBuf,
        /// Why not.
        what: &'static str,
    },
    /// A file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A result with an export [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches an action and a path to an I/O error.
pub(crate) trait IoContext<T> {
    fn io_ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            action,
            path: path.into(),
            source,
        })
    }
}
