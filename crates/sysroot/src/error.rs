//! Errors of deployment operations.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] strata_store::Error),
    #[error(transparent)]
    Remote(#[from] strata_remote::Error),
    #[error(transparent)]
    Boot(#[from] strata_boot::Error),
    #[error("{0}")]
    Refused(String),
    #[error("nothing is deployed; use `strata deploy`")]
    NothingDeployed,
    #[error("{path} is already a sysroot")]
    AlreadyInitialized { path: std::path::PathBuf },
    #[error(
        "{path} is not a strata sysroot (no strata/sysroot.conf); create one with `strata sysroot init`"
    )]
    NotASysroot { path: std::path::PathBuf },
    #[error("{path}: {why}")]
    BadConfig {
        path: std::path::PathBuf,
        why: String,
    },
    #[error("{path}: {why}")]
    BadOrigin {
        path: std::path::PathBuf,
        why: String,
    },
    #[error(
        "commit {commit} has no kernel: expected usr/lib/modules/<version>/vmlinuz and initramfs.img"
    )]
    NoKernel { commit: strata_store::Checksum },
    #[error("commit {commit} is partial (objects missing); pull it again first")]
    PartialCommit { commit: strata_store::Checksum },
    #[error(
        "not enough space on the EFI system partition {}: the kernel and initramfs need {} KiB (plus 1024 KiB spare), {} KiB are free; no deployment, kernel or boot entry was written (`strata cleanup` removes unused kernels)",
        esp.display(),
        need / 1024,
        free / 1024
    )]
    EspFull {
        esp: std::path::PathBuf,
        need: u64,
        free: u64,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
