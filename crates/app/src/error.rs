//! Errors of apps.

use std::path::PathBuf;

/// What can go wrong with an app. Whatever the error, what was installed
/// before is still installed, and runs as before.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository failed.
    #[error(transparent)]
    Store(#[from] strata_store::Error),
    /// A pull failed.
    #[error(transparent)]
    Remote(#[from] strata_remote::Error),
    /// An app or runtime ID, arch or branch that Flatpak would not accept.
    #[error("{value:?} is not a valid {what}: {rule}")]
    BadName {
        /// What it was meant to be (`app ID`, `branch`).
        what: &'static str,
        /// What was given.
        value: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A `metadata` key file that cannot be used.
    #[error("{source_name}: {what}")]
    BadMetadata {
        /// Where it came from (`commit 1a2b…` or a path).
        source_name: String,
        /// What is wrong with it.
        what: String,
    },
    /// Something named is not installed, or not on the remote.
    #[error("{0}")]
    NotFound(String),
    /// A request that cannot be carried out, for the reason given.
    #[error("{0}")]
    Refused(String),
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
    /// bubblewrap could not be started.
    #[error("running bwrap: {0} (install the bubblewrap package)")]
    Bwrap(std::io::Error),
    /// The seccomp filter could not be built.
    #[error("seccomp filter: {0}")]
    Seccomp(String),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Adds the action and path to an I/O error.
pub(crate) trait IoContext<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            action,
            path: path.into(),
            source,
        })
    }
}
