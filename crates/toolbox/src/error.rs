//! Errors of toolboxes.

/// What can go wrong with a toolbox. A failed `create` leaves no container.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// podman is not installed (or not where it was said to be).
    #[error(
        "podman is not installed ({0}): toolboxes run in podman; install it \
         (Debian: apt-get install podman) and try again"
    )]
    NoPodman(String),
    /// podman could not be started.
    #[error("cannot run {bin}: {source}")]
    Spawn {
        /// The binary.
        bin: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An image name that is no image name.
    #[error("{0:?} is not an image name")]
    BadImage(String),
    /// A toolbox name podman would not take.
    #[error("{name:?} is not a valid toolbox name: {rule}")]
    BadName {
        /// What was given.
        name: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// No toolbox of that name.
    #[error(
        "no toolbox named {0:?}; `strata toolbox list` shows them, `strata toolbox create {0}` makes it"
    )]
    NoSuchToolbox(String),
    /// A toolbox of that name exists already.
    #[error(
        "a toolbox named {0:?} exists already; enter it with `strata toolbox enter {0}`, or remove it with `strata toolbox rm {0}`"
    )]
    Exists(String),
    /// The toolbox runs, and removing it was not forced.
    #[error("toolbox {0:?} is running; stop it first (podman stop {0}) or remove it with --force")]
    Running(String),
    /// A container of that name exists that is not a strata toolbox.
    #[error(
        "a podman container named {0:?} exists and is not a strata toolbox; choose another name"
    )]
    NotAToolbox(String),
    /// A podman command failed.
    #[error("podman {args} failed ({status}): {stderr}")]
    Podman {
        /// The arguments, shortened.
        args: String,
        /// How it ended.
        status: String,
        /// What it said.
        stderr: String,
    },
    /// podman said something this cannot read.
    #[error("cannot read what podman {args} printed: {what}")]
    BadOutput {
        /// The arguments.
        args: String,
        /// What is wrong.
        what: String,
    },
    /// A fact about the calling user that cannot be found.
    #[error("{0}")]
    Host(String),
}

/// A result with a toolbox [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
