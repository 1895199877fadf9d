//! A write transaction: objects are staged, synced, then renamed into place.
//!
//! Crash argument: an object appears under `objects/` only by `rename` of a
//! complete staged file, and only after `syncfs` made its data durable; the
//! commit object is written last and the ref moves only after a second
//! `syncfs`. So a crash at any point leaves no ref to an incomplete commit,
//! and no partial object under its final name. What a crash leaves in
//! `tmp/staging-*` is removed by the next transaction (a staging directory
//! is locked by its owner while in use, so a live one is never removed).

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rayon::prelude::*;
use rustix::fs::{FlockOperation, Timespec, Timestamps};

use crate::archive;
use crate::checksum::Checksum;
use crate::durable;
use crate::error::{Error, IoContext, Result};
use crate::lock::RepoLock;
use crate::objects::{FileHeader, ObjectType, file_header};
use crate::repo::{Repo, RepoMode};
use crate::xattr;

/// Counts of what a transaction did, for progress and summaries.
#[derive(Debug, Default)]
pub struct Stats {
    pub content_total: AtomicU64,
    pub content_written: AtomicU64,
    pub meta_total: AtomicU64,
    pub meta_written: AtomicU64,
    pub bytes_written: AtomicU64,
}

pub struct Transaction<'r> {
    repo: &'r Repo,
    staging: PathBuf,
    _staging_lock: File,
    _lock: RepoLock,
    pending: Mutex<Vec<(PathBuf, String)>>,
    seen: Mutex<HashSet<(Checksum, ObjectType)>>,
    pub stats: Stats,
    /// Whether the process may chown to any owner (bare mode needs it).
    privileged: bool,
    /// Content objects staged since the last early writeback.
    since_writeback: AtomicU64,
    writeback_running: std::sync::Arc<AtomicBool>,
    /// The effective uid and gid, which new files get without a chown.
    own: (u32, u32),
    /// Renames into `objects/` not yet made durable.
    unsynced: AtomicBool,
}

const STAGING_PREFIX: &str = "staging-";
/// Content objects between early writebacks (about 30 MB of a typical OS tree).
const EARLY_WRITEBACK_EVERY: u64 = 1024;

impl<'r> Transaction<'r> {
    /// Starts a transaction, taking the repository's shared lock.
    pub fn begin(repo: &'r Repo) -> Result<Self> {
        let lock = RepoLock::shared(repo.path())?;
        let tmp = repo.path().join("tmp");
        fs::create_dir_all(&tmp).io_ctx("create", &tmp)?;
        remove_stale_staging(&tmp);
        // Made under another name and locked before it is named staging-*:
        // a concurrent transaction cleaning up stale staging directories
        // must never see ours unlocked.
        let suffix = format!("{}-{}", std::process::id(), durable::unique_suffix());
        let fresh = tmp.join(format!(".new-{suffix}"));
        fs::create_dir(&fresh).io_ctx("create staging directory", &fresh)?;
        let staging_lock = File::open(&fresh).io_ctx("open", &fresh)?;
        rustix::fs::flock(&staging_lock, FlockOperation::LockExclusive).io_ctx("lock", &fresh)?;
        let staging = tmp.join(format!("{STAGING_PREFIX}{suffix}"));
        fs::rename(&fresh, &staging).io_ctx("name staging directory", &staging)?;
        Ok(Transaction {
            repo,
            staging,
            _staging_lock: staging_lock,
            _lock: lock,
            pending: Mutex::new(Vec::new()),
            seen: Mutex::new(HashSet::new()),
            stats: Stats::default(),
            privileged: rustix::process::geteuid().is_root(),
            unsynced: AtomicBool::new(false),
            since_writeback: AtomicU64::new(0),
            writeback_running: std::sync::Arc::new(AtomicBool::new(false)),
            own: (
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            ),
        })
    }

    pub fn repo(&self) -> &Repo {
        self.repo
    }

    /// Returns true the first time an object is offered in this transaction
    /// and it is not already in the repository.
    fn claim(&self, checksum: Checksum, kind: ObjectType) -> bool {
        let first = self
            .seen
            .lock()
            .map(|mut s| s.insert((checksum, kind)))
            .unwrap_or(true);
        first && !self.repo.has_object(&checksum, kind)
    }

    fn stage_path(&self, checksum: &Checksum, kind: ObjectType) -> PathBuf {
        self.staging
            .join(format!("{checksum}.{}", kind.extension(false)))
    }

    fn add_pending(&self, staged: PathBuf, checksum: &Checksum, kind: ObjectType) {
        let rel = self.repo.object_relpath(checksum, kind);
        if let Ok(mut p) = self.pending.lock() {
            p.push((staged, rel));
        }
    }

    /// Writes a metadata object (dirtree, dirmeta, commit); returns its checksum.
    pub fn write_meta(&self, kind: ObjectType, data: &[u8]) -> Result<Checksum> {
        let checksum = Checksum::of(data);
        self.stats.meta_total.fetch_add(1, Ordering::Relaxed);
        if !self.claim(checksum, kind) {
            return Ok(checksum);
        }
        let path = self.stage_path(&checksum, kind);
        let mut f = create(&path, 0o644)?;
        f.write_all(data).io_ctx("write", &path)?;
        self.stats.meta_written.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes_written
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        self.add_pending(path, &checksum, kind);
        Ok(checksum)
    }

    /// Writes a content object whose content is in memory (empty for symlinks).
    pub fn write_content(&self, header: &FileHeader, content: &[u8]) -> Result<Checksum> {
        let checksum = header.checksum(content);
        self.write_content_with_checksum(header, checksum, |w| w.write_all(content))?;
        Ok(checksum)
    }

    /// Writes a content object whose checksum the caller computed; `fill`
    /// writes the content bytes (called only if the object is new).
    pub fn write_content_with_checksum(
        &self,
        header: &FileHeader,
        checksum: Checksum,
        fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        self.stats.content_total.fetch_add(1, Ordering::Relaxed);
        if !self.claim(checksum, ObjectType::File) {
            return Ok(());
        }
        let path = self.stage_path(&checksum, ObjectType::File);
        match self.repo.mode() {
            RepoMode::Bare => self.stage_bare(header, &path, fill)?,
            RepoMode::BareUser => stage_bare_user(header, &path, fill)?,
            RepoMode::Archive => stage_archive(header, &path, fill)?,
        }
        self.stats.content_written.fetch_add(1, Ordering::Relaxed);
        self.add_pending(path, &checksum, ObjectType::File);
        if self.since_writeback.fetch_add(1, Ordering::Relaxed) + 1 >= EARLY_WRITEBACK_EVERY {
            self.since_writeback.store(0, Ordering::Relaxed);
            self.early_writeback();
        }
        Ok(())
    }

    fn stage_bare(
        &self,
        header: &FileHeader,
        path: &Path,
        fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        if !self.privileged && (header.uid, header.gid) != self.own {
            return Err(Error::BadInput {
                path: self.repo.path().to_owned(),
                what: format!(
                    "a bare repository keeps file owners ({}:{}), which needs root; use a bare-user repository",
                    header.uid, header.gid
                ),
            });
        }
        let uid = Some(rustix::fs::Uid::from_raw(header.uid));
        let gid = Some(rustix::fs::Gid::from_raw(header.gid));
        if header.is_symlink() {
            symlink(&header.symlink_target, path).io_ctx("create symlink", path)?;
            rustix::fs::chownat(
                rustix::fs::CWD,
                path,
                uid,
                gid,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .io_ctx("chown", path)?;
            xattr::set_path(path, &header.xattrs)?;
            rustix::fs::utimensat(
                rustix::fs::CWD,
                path,
                &zero_mtime(),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .io_ctx("set mtime of", path)?;
            return Ok(());
        }
        let mut f = create(path, 0o600)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 16, &mut f);
        fill(&mut w).io_ctx("write", path)?;
        w.flush().io_ctx("write", path)?;
        drop(w);
        // chown before chmod: chown clears the setuid and setgid bits. A new
        // file is ours already; most of a tree is root's, like us.
        if (header.uid, header.gid) != self.own {
            rustix::fs::fchown(&f, uid, gid).io_ctx("chown", path)?;
        }
        rustix::fs::fchmod(&f, rustix::fs::Mode::from_raw_mode(header.mode & 0o7777))
            .io_ctx("chmod", path)?;
        xattr::set_fd(&f, &header.xattrs, path)?;
        rustix::fs::futimens(&f, &zero_mtime()).io_ctx("set mtime of", path)?;
        Ok(())
    }

    /// Starts flushing what is staged so far in the background, so the
    /// `syncfs` of [`Transaction::flush`] finds most data on disk already:
    /// the disk works while the cores hash and copy. Only a head start:
    /// durability still comes from the flush's own `syncfs`.
    fn early_writeback(&self) {
        if self.writeback_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(dir) = File::open(&self.staging) else {
            self.writeback_running.store(false, Ordering::Release);
            return;
        };
        let running = self.writeback_running.clone();
        std::thread::spawn(move || {
            let _ = rustix::fs::syncfs(&dir);
            running.store(false, Ordering::Release);
        });
    }

    /// Makes every staged object durable and moves it into `objects/`.
    pub fn commit(self) -> Result<()> {
        self.flush()?;
        self.sync()
    }

    /// Moves every staged object into `objects/` once its data is durable,
    /// keeping the transaction open: a long pull flushes now and then so an
    /// interrupted run keeps what it fetched. The renames themselves become
    /// durable at [`Transaction::commit`] (a crash before loses only them,
    /// never leaves a partial object). Returns whether anything moved.
    pub fn flush(&self) -> Result<bool> {
        let pending = std::mem::take(
            &mut *self
                .pending
                .lock()
                .map_err(|_| Error::Invalid("poisoned".into()))?,
        );
        let moved = !pending.is_empty();
        if moved {
            self.unsynced.store(true, Ordering::Release);
            durable::sync_filesystem(&self.staging)?;
            crate::fault::point("objects-staged")?;
            // Directories first, then the renames on all cores: each is an
            // independent directory operation.
            let dirs: HashSet<&str> = pending.iter().map(|(_, rel)| &rel[..10]).collect();
            for dir in dirs {
                let d = self.repo.path().join(dir);
                fs::create_dir_all(&d).io_ctx("create", &d)?;
            }
            let half = pending.len() / 2;
            pending
                .par_iter()
                .enumerate()
                .try_for_each(|(i, (staged, rel))| {
                    let dest = self.repo.path().join(rel);
                    fs::rename(staged, &dest).io_ctx("move object into place", &dest)?;
                    if i == half {
                        crate::fault::point("objects-half-renamed")?;
                    }
                    Ok::<(), Error>(())
                })?;
        }
        Ok(moved)
    }

    /// Makes durable every rename done by earlier flushes.
    pub fn sync(&self) -> Result<()> {
        if self.unsynced.swap(false, Ordering::AcqRel) {
            durable::sync_filesystem(self.repo.path())?;
        }
        Ok(())
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.staging);
    }
}

/// Removes staging directories left by transactions that died.
fn remove_stale_staging(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".new-") {
            // Unnamed yet, so maybe not locked yet: only an old one is dead.
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            if old.is_some_and(|age| age > std::time::Duration::from_secs(3600)) {
                let _ = fs::remove_dir_all(e.path());
            }
            continue;
        }
        if !name.starts_with(STAGING_PREFIX) {
            continue;
        }
        let Ok(dir) = File::open(e.path()) else {
            continue;
        };
        if rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive).is_ok() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

fn create(path: &Path, mode: u32) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .io_ctx("create", path)
}

/// Access time left alone, modification time 0: every file OSTree stores
/// or checks out has mtime 0.
pub(crate) fn zero_mtime() -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
    }
}

fn stage_bare_user(
    header: &FileHeader,
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    // Symlinks become regular files holding the target; the real mode is in the xattr.
    let content_mode = if header.is_symlink() {
        0o644
    } else {
        (header.mode & 0o775) | 0o400
    };
    let mut f = create(path, 0o600)?;
    if header.is_symlink() {
        // With the terminating NUL, byte for byte as ostree writes it.
        f.write_all(header.symlink_target.as_bytes())
            .io_ctx("write", path)?;
        f.write_all(&[0]).io_ctx("write", path)?;
    } else {
        let mut w = std::io::BufWriter::with_capacity(1 << 16, &mut f);
        fill(&mut w).io_ctx("write", path)?;
        w.flush().io_ctx("write", path)?;
    }
    let meta = header.bare_user_meta();
    let name = std::ffi::CString::new(file_header::BARE_USER_XATTR).expect("static name");
    rustix::fs::fsetxattr(&f, &name, &meta, rustix::fs::XattrFlags::empty())
        .io_ctx("set user.ostreemeta on", path)?;
    rustix::fs::fchmod(&f, rustix::fs::Mode::from_raw_mode(content_mode)).io_ctx("chmod", path)?;
    rustix::fs::futimens(&f, &zero_mtime()).io_ctx("set mtime of", path)?;
    Ok(())
}

fn stage_archive(
    header: &FileHeader,
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let mut content = Vec::new();
    if !header.is_symlink() {
        fill(&mut content).io_ctx("read content for", path)?;
    }
    let mut f = create(path, 0o644)?;
    f.write_all(&header.archive_prefix(content.len() as u64))
        .io_ctx("write", path)?;
    if !header.is_symlink() {
        f.write_all(&archive::deflate(&content, archive::DEFAULT_LEVEL))
            .io_ctx("write", path)?;
    }
    Ok(())
}
