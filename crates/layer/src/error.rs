//! Errors of layering.

use std::path::PathBuf;

/// What can go wrong while layering. Whatever the error, nothing was
/// deployed and the machine is as it was.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository failed.
    #[error(transparent)]
    Store(#[from] strata_store::Error),
    /// A deployment operation failed.
    #[error(transparent)]
    Sysroot(#[from] strata_sysroot::Error),
    /// A request names something that cannot be a package.
    #[error(
        "{0:?} is not a Debian package name (lowercase letters, digits, + - . and at least 2 characters, not ending in -; a local package is a path ending in .deb)"
    )]
    BadName(String),
    /// A request that cannot be carried out, for the reason given.
    #[error("{0}")]
    Refused(String),
    /// A file or directory that a package put where a layer cannot hold it.
    #[error("{path}: {why}")]
    CannotLayer {
        /// The path in the tree (`/var/…`).
        path: String,
        /// Why it cannot be layered.
        why: String,
    },
    /// apt or dpkg failed; `output` is the end of what it printed.
    #[error("{what} failed ({status}):\n{output}")]
    Apt {
        /// What was being done (`apt-get install htop`).
        what: String,
        /// How it ended.
        status: String,
        /// Its last lines of output, errors first.
        output: String,
    },
    /// A tool (bwrap, mount) could not run.
    #[error("{what}: {why}")]
    Tool {
        /// What was being done.
        what: String,
        /// How it failed.
        why: String,
    },
    /// A system call on a path failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds the action and path to an I/O error.
pub(crate) trait IoContext<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T, E: Into<std::io::Error>> IoContext<T> for std::result::Result<T, E> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::Io {
            action,
            path: path.into(),
            source: e.into(),
        })
    }
}
