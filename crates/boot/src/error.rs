//! Errors of partitioning a disk, preparing a tree and writing the ESP.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

/// What can go wrong partitioning a disk, preparing a tree or writing
/// the ESP. External tools' failures carry their stderr.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the repository failed, or a system call did ("could not
    /// {action} {path}: {source}", made with the store's `io_ctx`).
    #[error(transparent)]
    Store(#[from] strata_store::Error),
    /// A tool (sfdisk, mkfs, losetup, mount, …) could not be started.
    #[error("{what}: cannot run {program:?}: {source} (is it installed?)")]
    Spawn {
        /// The step it was run for.
        what: String,
        /// The program's name.
        program: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// A tool ran and failed.
    #[error("{what} failed ({status}): {stderr}")]
    Command {
        /// The step it was run for.
        what: String,
        /// The program's name.
        program: String,
        /// How it exited.
        status: ExitStatus,
        /// Its error output, trimmed.
        stderr: String,
    },
    /// After partitioning, the disk does not have the two partitions
    /// asked for.
    #[error("unexpected partition table on {path}: {dump}")]
    PartitionTable {
        /// The disk or image.
        path: PathBuf,
        /// What `sfdisk --dump` printed.
        dump: String,
    },
    /// The ESP has too little free space for a new kernel and initramfs;
    /// nothing was written.
    #[error(
        "{path}: not enough space on the EFI system partition: the kernel and initramfs need {} KiB (plus {} KiB spare), {} KiB are free; remove old deployments with `strata cleanup`",
        need / 1024,
        margin / 1024,
        free / 1024
    )]
    EspFull {
        /// The ESP's mount point.
        path: PathBuf,
        /// Bytes the kernel and initramfs take.
        need: u64,
        /// Bytes kept free on top of `need`.
        margin: u64,
        /// Bytes free now.
        free: u64,
    },
    /// A tree to prepare is not what was expected (no kernel, two kernels…).
    #[error("{path}: {what}")]
    BadInput {
        /// Where in the tree.
        path: PathBuf,
        /// What is wrong there.
        what: String,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs `cmd` to its end; its trimmed stdout, or an error naming `what`.
pub(crate) fn run(cmd: &mut std::process::Command, what: &str) -> Result<String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|source| Error::Spawn {
        what: what.to_owned(),
        program: program.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(Error::Command {
            what: what.to_owned(),
            program,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
