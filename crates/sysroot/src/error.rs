//! Errors of deployment operations.

/// What can go wrong in a deployment operation. Whatever the error, the
/// default boot entry still names a complete deployment (see each
/// operation's crash argument).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository failed.
    #[error(transparent)]
    Store(#[from] strata_store::Error),
    /// A pull failed (upgrade, switch, install from a remote).
    #[error(transparent)]
    Remote(#[from] strata_remote::Error),
    /// Writing the ESP or preparing the disk failed.
    #[error(transparent)]
    Boot(#[from] strata_boot::Error),
    /// Building layered packages again on a new base failed.
    #[error(transparent)]
    Layer(Box<dyn std::error::Error + Send + Sync>),
    /// An operation refused for the reason given in the message.
    #[error("{0}")]
    Refused(String),
    /// The operation needs a deployment and there is none.
    #[error("nothing is deployed; use `strata deploy`")]
    NothingDeployed,
    /// `sysroot init` on a directory that already is one.
    #[error("{path} is already a sysroot")]
    AlreadyInitialized {
        /// The sysroot's directory.
        path: std::path::PathBuf,
    },
    /// The directory has no `strata/sysroot.conf`.
    #[error(
        "{path} is not a strata sysroot (no strata/sysroot.conf); create one with `strata sysroot init`"
    )]
    NotASysroot {
        /// The directory given as the sysroot.
        path: std::path::PathBuf,
    },
    /// `strata/sysroot.conf` does not parse.
    #[error("{path}: {why}")]
    BadConfig {
        /// The config file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// `/etc/strata/strata.conf` has an error; nothing was changed.
    #[error("{}:{line}: {why}", path.display())]
    BadSettings {
        /// The settings file.
        path: std::path::PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong there.
        why: String,
    },
    /// `upgrade` found a commit that already failed to boot here.
    #[error(
        "commit {commit} failed to boot on this machine ({reason}); not deploying it again (`strata upgrade --allow-failed` does)"
    )]
    FailedBefore {
        /// The commit.
        commit: strata_store::Checksum,
        /// Why it failed, as recorded.
        reason: String,
    },
    /// Running a tool (systemctl, systemd-bless-boot) failed.
    #[error("{what}: {why}")]
    Tool {
        /// What was being done.
        what: String,
        /// How it failed.
        why: String,
    },
    /// A deployment's origin file does not parse.
    #[error("{path}: {why}")]
    BadOrigin {
        /// The origin file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The commit to deploy has no `usr/lib/modules/<kver>/` kernel and
    /// initramfs.
    #[error(
        "commit {commit} has no kernel: expected usr/lib/modules/<version>/vmlinuz and initramfs.img"
    )]
    NoKernel {
        /// The commit to deploy.
        commit: strata_store::Checksum,
    },
    /// The commit to deploy misses objects (an interrupted pull).
    #[error("commit {commit} is partial (objects missing); pull it again first")]
    PartialCommit {
        /// The commit to deploy.
        commit: strata_store::Checksum,
    },
    /// The ESP has too little room for the new kernel and initramfs;
    /// checked before anything is written.
    #[error(
        "not enough space on the EFI system partition {}: the kernel and initramfs need {} KiB (plus 1024 KiB spare), {} KiB are free; no deployment, kernel or boot entry was written (`strata cleanup` removes unused kernels)",
        esp.display(),
        need / 1024,
        free / 1024
    )]
    EspFull {
        /// The ESP's path.
        esp: std::path::PathBuf,
        /// Bytes the kernel and initramfs take.
        need: u64,
        /// Bytes free now.
        free: u64,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
