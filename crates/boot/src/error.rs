//! Errors of partitioning a disk, preparing a tree and writing the ESP.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] strata_store::Error),
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A tool (sfdisk, mkfs, losetup, mount, …) could not be started.
    #[error("{what}: cannot run {program:?}: {source} (is it installed?)")]
    Spawn {
        what: String,
        program: String,
        source: io::Error,
    },
    /// A tool ran and failed.
    #[error("{what} failed ({status}): {stderr}")]
    Command {
        what: String,
        program: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("unexpected partition table on {path}: {dump}")]
    PartitionTable { path: PathBuf, dump: String },
    #[error(
        "{path}: not enough space on the EFI system partition: the kernel and initramfs need {} KiB (plus {} KiB spare), {} KiB are free; remove old deployments with `strata cleanup`",
        need / 1024,
        margin / 1024,
        free / 1024
    )]
    EspFull {
        path: PathBuf,
        need: u64,
        margin: u64,
        free: u64,
    },
    #[error("{path}: {what}")]
    BadInput { path: PathBuf, what: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds the action and path to an I/O error.
pub(crate) trait IoContext<T> {
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
