//! Debian packages layered on an image-based machine, with Debian's own
//! apt and dpkg.
//!
//! A layered deployment's commit is the base commit plus the requested
//! packages, built locally ([`build`]) and deployed like any other; the
//! request lives in the deployment's origin, and every upgrade builds it
//! again from scratch on the new base ([`ops::Relayer`]), so nothing a
//! package's scripts did on the old base leaks into the new one.
//!
//! On the running machine, [`live`] makes added packages usable before a
//! reboot and gives `/usr` a writable overlay that vanishes at reboot.

pub mod build;
pub mod dpkg_status;
pub mod error;
pub mod live;
mod mounts;
pub mod ops;
pub mod request;
mod sandbox;
pub mod sources;
pub mod sysusers;
mod tree;
pub mod var_capture;

pub use error::{Error, Result};

/// A stage of layering, for progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Checking out the base commit.
    Checkout,
    /// `apt-get update` against the machine's sources.
    Update,
    /// Resolving and downloading the packages.
    Download,
    /// Unpacking and running the maintainer scripts (no network).
    Install,
    /// Committing the result.
    Commit,
    /// Deploying it.
    Deploy,
    /// Making it usable on the running system.
    ApplyLive,
}

impl Step {
    /// What the step does, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Step::Checkout => "checking out the base",
            Step::Update => "updating the package lists",
            Step::Download => "resolving and downloading packages",
            Step::Install => "installing (maintainer scripts run confined, without network)",
            Step::Commit => "committing the layered tree",
            Step::Deploy => "deploying",
            Step::ApplyLive => "applying to the running system",
        }
    }
}

/// Receives the progress of layering: steps, and each line apt and dpkg
/// print.
pub trait Progress: Sync {
    /// A new step begins.
    fn step(&self, step: Step);
    /// A line of apt's or dpkg's output.
    fn output(&self, line: &str);
}

/// Progress nobody watches.
pub struct Silent;

impl Progress for Silent {
    fn step(&self, _: Step) {}
    fn output(&self, _: &str) {}
}
