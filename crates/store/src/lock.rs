//! The repository lock: `flock` on `<repo>/.lock`, as ostree does.
//!
//! Writers of objects and refs share it; `prune` takes it exclusively so no
//! object is deleted while a commit that needs it is being written.

use std::fs::{File, OpenOptions};
use std::path::Path;

use rustix::fs::FlockOperation;

use crate::error::{IoContext, Result};

/// A held lock; released when dropped (the file is closed).
#[derive(Debug)]
pub struct RepoLock {
    _file: File,
}

impl RepoLock {
    /// Takes the lock shared, for operations that only read or add;
    /// blocks while it is held exclusively.
    pub fn shared(repo: &Path) -> Result<Self> {
        Self::take(repo, FlockOperation::LockShared)
    }

    /// Takes the lock exclusively, for operations that delete; blocks until
    /// every other holder is gone.
    pub fn exclusive(repo: &Path) -> Result<Self> {
        Self::take(repo, FlockOperation::LockExclusive)
    }

    fn take(repo: &Path, op: FlockOperation) -> Result<Self> {
        let path = repo.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .io_ctx("open lock file", &path)?;
        rustix::fs::flock(&file, op).io_ctx("lock", &path)?;
        Ok(RepoLock { _file: file })
    }
}
