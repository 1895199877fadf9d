//! Atomic, durable replacement of small files (refs, config, state).
//!
//! The sequence is: write a temporary file in the same directory, fsync it,
//! rename it over the target, fsync the directory. A crash leaves either the
//! old file or the new one, never a mix; at worst a stray `.tmp-` file,
//! which readers ignore. The file is fsynced once more after the rename,
//! for vfat (see `write_file`).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};

/// Replaces `path` with `data`, atomically and durably.
pub fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".tmp-{}-{}-{}",
        name,
        std::process::id(),
        unique_suffix()
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .io_ctx("create", &tmp)?;
        f.write_all(data).io_ctx("write", &tmp)?;
        f.sync_all().io_ctx("fsync", &tmp)?;
        fs::rename(&tmp, path).io_ctx("rename into place", path)?;
        // Again after the rename: vfat (the ESP) writes a renamed file's
        // size into its new directory entry only when the inode is written
        // back, so without this a power cut leaves a 0-byte boot entry
        // (seen in the VM power-cut test).
        f.sync_all().io_ctx("fsync", path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Fsyncs a directory so that renames and unlinks in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .io_ctx("fsync directory", dir)
}

/// Flushes every pending write of the filesystem holding `path`. For
/// writes that must be known to have reached the disk, use a [`Syncer`]
/// opened before them.
pub fn sync_filesystem(path: &Path) -> Result<()> {
    Syncer::open(path)?.sync()
}

/// `syncfs` through a descriptor opened before the writes it vouches for:
/// since Linux 5.8 it reports every writeback error of the filesystem
/// since the descriptor was opened, so one opened afterwards would miss an
/// error from writeback the kernel started in between.
pub struct Syncer {
    dir: File,
    path: std::path::PathBuf,
}

impl Syncer {
    /// Opens `path` (any file or directory on the filesystem to sync); do
    /// this before the writes it must vouch for.
    pub fn open(path: &Path) -> Result<Syncer> {
        Ok(Syncer {
            dir: File::open(path).io_ctx("open", path)?,
            path: path.to_owned(),
        })
    }

    /// Flushes every pending write of the filesystem; fails if any write
    /// since [`Syncer::open`] failed.
    pub fn sync(&self) -> Result<()> {
        rustix::fs::syncfs(&self.dir).io_ctx("syncfs", &self.path)
    }
}

/// A per-process unique suffix for temporary names.
pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{t:08x}{n:x}")
}
