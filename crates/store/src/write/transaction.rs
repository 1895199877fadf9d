//! A write transaction: objects are staged, synced, then placed under
//! their final names (see [`super::staged`]).
//!
//! Crash argument: an object appears under `objects/` only by `linkat` or
//! `rename` of a complete staged file, and only after `syncfs` made its
//! data durable; the commit object is written last and the ref moves only
//! after a second `syncfs`. So a crash at any point leaves no ref to an
//! incomplete commit, and no partial object under its final name. What a
//! crash leaves in `tmp/staging-*` is removed by the next transaction (a
//! staging directory is locked by its owner while in use, so a live one is
//! never removed); anonymous staged files vanish by themselves.
//!
//! Every [`EARLY_WRITEBACK_EVERY`] content objects (or
//! [`EARLY_WRITEBACK_BYTES`] of them), a background thread
//! takes what is staged, `syncfs`es and places it, while the writers go
//! on: the disk works while the cores hash and copy, and the final
//! [`Transaction::flush`] finds little left to do.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread::JoinHandle;

use rayon::prelude::*;
use rustix::fs::{FlockOperation, Timespec, Timestamps};

use crate::archive;
use crate::checksum::Checksum;
use crate::durable;
use crate::error::{Error, IoContext, Result};
use crate::lock::RepoLock;
use crate::objects::{FileHeader, ObjectType, file_header};
use crate::repo::{Repo, RepoMode};
use crate::write::staged::{NewFile, Staged, Staging, Unfinished};
use crate::xattr;

/// Counts of what a transaction did, for progress and summaries.
#[derive(Debug, Default)]
pub struct Stats {
    /// Content objects offered, new or not.
    pub content_total: AtomicU64,
    /// Content objects that were new and written.
    pub content_written: AtomicU64,
    /// Metadata objects offered, new or not.
    pub meta_total: AtomicU64,
    /// Metadata objects that were new and written.
    pub meta_written: AtomicU64,
    /// Bytes written to new objects, as stored (compressed in archive mode).
    pub bytes_written: AtomicU64,
}

/// A batch of object writes to one repository: an object appears under
/// its final name only once durable, and [`Transaction::flush`] makes the
/// rest durable (see the module docs). Holds the repository lock, shared,
/// for its lifetime.
pub struct Transaction<'r> {
    repo: &'r Repo,
    placer: Arc<Placer>,
    _staging_lock: File,
    _lock: RepoLock,
    /// Staged objects, each with its path relative to the repository.
    pending: Mutex<Vec<Unplaced>>,
    /// The background placement of an earlier batch, if one was started.
    background: Mutex<Option<JoinHandle<Result<()>>>>,
    seen: Mutex<HashSet<(Checksum, ObjectType)>>,
    /// Running counts, readable while writes go on (for progress).
    pub stats: Stats,
    /// Whether the process may chown to any owner (bare mode needs it).
    privileged: bool,
    /// Content objects, and their bytes, staged since the last early writeback.
    since_writeback: AtomicU64,
    since_writeback_bytes: AtomicU64,
    /// The effective uid and gid, which new files get without a chown.
    own: (u32, u32),
    /// Renames into `objects/` not yet made durable.
    unsynced: AtomicBool,
}

/// A staged object waiting to be placed under its final name.
struct Unplaced {
    staged: Staged,
    /// Its path relative to the repository ([`Repo::object_relpath`]).
    rel: String,
    kind: ObjectType,
}

const STAGING_PREFIX: &str = "staging-";
/// Content objects between early writebacks (about 30 MB of a typical OS tree).
const EARLY_WRITEBACK_EVERY: u64 = 1024;
/// Or bytes: a few large files are as much to write back as many small
/// ones (measured: a pull's final flush waited on a 50 MB file staged last).
const EARLY_WRITEBACK_BYTES: u64 = 32 << 20;

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
        let privileged = rustix::process::geteuid().is_root();
        let placer = Placer {
            objects: repo
                .objects_dir()
                .try_clone()
                .io_ctx("open", repo.path().join("objects"))?,
            repo: repo.path().to_owned(),
            sync_background: durable::Syncer::open(&staging)?,
            sync_flush: durable::Syncer::open(&staging)?,
            staging: Staging::new(staging)?,
            failed: AtomicBool::new(false),
        };
        Ok(Transaction {
            repo,
            placer: Arc::new(placer),
            _staging_lock: staging_lock,
            _lock: lock,
            pending: Mutex::new(Vec::new()),
            background: Mutex::new(None),
            seen: Mutex::new(HashSet::new()),
            stats: Stats::default(),
            privileged,
            unsynced: AtomicBool::new(false),
            since_writeback: AtomicU64::new(0),
            since_writeback_bytes: AtomicU64::new(0),
            own: (
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            ),
        })
    }

    /// The repository written to.
    pub fn repo(&self) -> &Repo {
        self.repo
    }

    /// Returns true the first time an object is offered in this transaction
    /// and it is not already in the repository.
    fn claim(&self, checksum: Checksum, kind: ObjectType) -> bool {
        let first = lock(&self.seen).insert((checksum, kind));
        first && !self.repo.has_object(&checksum, kind)
    }

    fn unclaim(&self, checksum: Checksum, kind: ObjectType) {
        lock(&self.seen).remove(&(checksum, kind));
    }

    fn stage_name(checksum: &Checksum, kind: ObjectType) -> String {
        format!("{checksum}.{}", kind.extension(false))
    }

    fn add_pending(&self, staged: Staged, checksum: &Checksum, kind: ObjectType) -> Result<()> {
        let rel = self.repo.object_relpath(checksum, kind);
        lock(&self.pending).push(Unplaced { staged, rel, kind });
        Ok(())
    }

    /// Writes a metadata object (dirtree, dirmeta, commit); returns its checksum.
    pub fn write_meta(&self, kind: ObjectType, data: &[u8]) -> Result<Checksum> {
        let checksum = Checksum::of(data);
        self.stats.meta_total.fetch_add(1, Ordering::Relaxed);
        if !self.claim(checksum, kind) {
            return Ok(checksum);
        }
        let mut f = self
            .placer
            .staging
            .create(&Self::stage_name(&checksum, kind), 0o644)?;
        f.file.write_all(data).io_ctx("write", &f.path)?;
        self.stats.meta_written.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes_written
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        self.add_pending(f.staged(), &checksum, kind)?;
        Ok(checksum)
    }

    /// Writes a content object whose content is in memory (empty for symlinks).
    pub fn write_content(&self, header: &FileHeader, content: &[u8]) -> Result<Checksum> {
        let checksum = header.checksum(content);
        self.write_content_with_checksum(header, checksum, |w| w.write_all(content))?;
        Ok(checksum)
    }

    /// Writes a content object whose content `src` streams (a tar member),
    /// in bounded memory whatever its size: the bytes are hashed as they
    /// are spooled to an anonymous file of the staging directory, and
    /// stored from it once the checksum, the object's name, is known. The
    /// spool takes as much room as the content until it returns. A read
    /// error names `src_path`.
    pub fn write_content_from(
        &self,
        header: &FileHeader,
        src: &mut dyn Read,
        src_path: &Path,
    ) -> Result<Checksum> {
        let (mut spool, spool_path) = self.placer.staging.spool()?;
        let mut hasher = header.hasher();
        let mut buf = vec![0u8; SPOOL_CHUNK];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).io_ctx("read", src_path),
            };
            hasher.update(&buf[..n]);
            spool.write_all(&buf[..n]).io_ctx("write", &spool_path)?;
        }
        let checksum = hasher.finish();
        spool.seek(SeekFrom::Start(0)).io_ctx("seek", &spool_path)?;
        self.write_content_with_checksum(header, checksum, |w| {
            std::io::copy(&mut spool, w).map(|_| ())
        })?;
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
        let name = Self::stage_name(&checksum, ObjectType::File);
        let staged = match self.repo.mode() {
            RepoMode::Bare if header.is_symlink() => self.stage_bare_symlink(header, &name),
            RepoMode::Bare => self
                .placer
                .staging
                .create(&name, 0o600)
                .and_then(|f| self.stage_bare(header, f, fill)),
            RepoMode::BareUser => self
                .placer
                .staging
                .create(&name, 0o600)
                .and_then(|f| stage_bare_user(header, f, fill)),
            RepoMode::Archive => stage_archive(header, &self.placer.staging, &name, fill),
        };
        let (staged, bytes) = match staged {
            Ok(s) => s,
            Err(e) => {
                // Not stored: whoever offers it next must write it.
                self.unclaim(checksum, ObjectType::File);
                return Err(e);
            }
        };
        self.stats.content_written.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes_written.fetch_add(bytes, Ordering::Relaxed);
        self.add_pending(staged, &checksum, ObjectType::File)?;
        // Once enough is staged, every write tries until a batch starts:
        // what is left for the final flush (to wait for) stays small.
        let staged_objects = self.since_writeback.fetch_add(1, Ordering::Relaxed) + 1;
        let staged_bytes = self
            .since_writeback_bytes
            .fetch_add(bytes, Ordering::Relaxed)
            + bytes;
        if (staged_objects >= EARLY_WRITEBACK_EVERY || staged_bytes >= EARLY_WRITEBACK_BYTES)
            && self.early_writeback()?
        {
            self.since_writeback.store(0, Ordering::Relaxed);
            self.since_writeback_bytes.store(0, Ordering::Relaxed);
        }
        Ok(())
    }

    fn check_owner(&self, header: &FileHeader) -> Result<()> {
        if !self.privileged && (header.uid, header.gid) != self.own {
            return Err(Error::BadInput {
                path: self.repo.path().to_owned(),
                what: format!(
                    "a bare repository keeps file owners ({}:{}), which needs root; use a bare-user repository",
                    header.uid, header.gid
                ),
            });
        }
        Ok(())
    }

    /// Each staging returns the staged object and the bytes it wrote.
    fn stage_bare_symlink(&self, header: &FileHeader, name: &str) -> Result<(Staged, u64)> {
        self.check_owner(header)?;
        let path = self.placer.staging.dir.join(name);
        symlink(&header.symlink_target, &path).io_ctx("create symlink", &path)?;
        let unfinished = Unfinished::named(path.clone());
        rustix::fs::chownat(
            rustix::fs::CWD,
            &path,
            Some(rustix::fs::Uid::from_raw(header.uid)),
            Some(rustix::fs::Gid::from_raw(header.gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .io_ctx("chown", &path)?;
        xattr::set_path(&path, &header.xattrs)?;
        rustix::fs::utimensat(
            rustix::fs::CWD,
            &path,
            &zero_mtime(),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .io_ctx("set mtime of", &path)?;
        unfinished.keep();
        Ok((Staged::Named(path), 0))
    }

    fn stage_bare(
        &self,
        header: &FileHeader,
        mut f: NewFile,
        fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<(Staged, u64)> {
        self.check_owner(header)?;
        let path = &f.path;
        let bytes = write_data(&mut f.file, path, fill)?;
        // chown before chmod: chown clears the setuid and setgid bits. A new
        // file is ours already; most of a tree is root's, like us.
        if (header.uid, header.gid) != self.own {
            let uid = Some(rustix::fs::Uid::from_raw(header.uid));
            let gid = Some(rustix::fs::Gid::from_raw(header.gid));
            rustix::fs::fchown(&f.file, uid, gid).io_ctx("chown", path)?;
        }
        rustix::fs::fchmod(
            &f.file,
            rustix::fs::Mode::from_raw_mode(header.mode & 0o7777),
        )
        .io_ctx("chmod", path)?;
        xattr::set_fd(&f.file, &header.xattrs, path)?;
        rustix::fs::futimens(&f.file, &zero_mtime()).io_ctx("set mtime of", path)?;
        Ok((f.staged(), bytes))
    }

    /// Starts placing what is staged so far in a background thread (see
    /// the module docs), unless the last batch is still being placed or a
    /// flush is running; returns whether it started. Returns the error of
    /// the last batch, if any.
    fn early_writeback(&self) -> Result<bool> {
        let mut background = match self.background.try_lock() {
            Ok(b) => b,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Ok(false), // a flush is running
        };
        if background.as_ref().is_some_and(|h| !h.is_finished()) {
            return Ok(false);
        }
        if let Some(h) = background.take() {
            join(h)?;
        }
        // Commit objects stay for the flush, which places them last.
        let batch = self.take_pending(|kind| kind != ObjectType::Commit);
        if batch.is_empty() {
            return Ok(true);
        }
        self.unsynced.store(true, Ordering::Release);
        let placer = self.placer.clone();
        let thread = std::thread::Builder::new()
            .name("strata-writeback".into())
            .spawn(move || {
                let _panic = FailOnPanic(&placer.failed);
                placer.sync(&placer.sync_background)?;
                placer.place(&batch, false)
            })
            .map_err(|source| Error::Spawn {
                what: "a writeback thread",
                source,
            })?;
        *background = Some(thread);
        Ok(true)
    }

    /// Takes the staged objects whose kind `which` accepts.
    fn take_pending(&self, which: impl Fn(ObjectType) -> bool) -> Vec<Unplaced> {
        let mut pending = lock(&self.pending);
        let (taken, kept) = std::mem::take(&mut *pending)
            .into_iter()
            .partition(|p| which(p.kind));
        *pending = kept;
        taken
    }

    /// Makes every staged object durable and moves it into `objects/`.
    pub fn commit(self) -> Result<()> {
        self.flush()?;
        self.sync()
    }

    /// Places every object staged so far under its final name once its
    /// data is durable, keeping the transaction open: a long pull flushes
    /// now and then so an interrupted run keeps what it fetched. The names
    /// themselves become durable at [`Transaction::commit`] (a crash before
    /// loses only them, never leaves a partial object).
    pub fn flush(&self) -> Result<()> {
        let mut background = lock(&self.background);
        let _panic = FailOnPanic(&self.placer.failed);
        // The batch in the background, if any, goes on while this one
        // syncs: their `syncfs`es overlap instead of following each other.
        let earlier = background.take();
        let (commits, others): (Vec<Unplaced>, Vec<Unplaced>) = self
            .take_pending(|_| true)
            .into_iter()
            .partition(|p| p.kind == ObjectType::Commit);
        let placed = if commits.is_empty() && others.is_empty() {
            Ok(())
        } else {
            self.unsynced.store(true, Ordering::Release);
            self.placer
                .sync(&self.placer.sync_flush)
                .and_then(|()| self.placer.place(&others, true))
        };
        let earlier = earlier.map_or(Ok(()), join);
        placed.and(earlier)?;
        // Last, once everything they name is in place.
        if !commits.is_empty() {
            crate::fault::point("objects-placed");
        }
        self.placer.place(&commits, false)
    }

    /// Makes durable every rename done by earlier flushes.
    pub fn sync(&self) -> Result<()> {
        if self.unsynced.swap(false, Ordering::AcqRel) {
            self.placer.sync(&self.placer.sync_flush)?;
        }
        Ok(())
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        let background = self.background.get_mut();
        if let Some(h) = background.unwrap_or_else(PoisonError::into_inner).take() {
            let _ = h.join();
        }
        let _ = fs::remove_dir_all(&self.placer.staging.dir);
    }
}

fn join(h: JoinHandle<Result<()>>) -> Result<()> {
    h.join().map_err(|_| Error::WorkerPanicked {
        what: "placing staged objects",
    })?
}

/// Locks `m`, also after a thread panicked while holding it: every lock
/// here guards a set, a list or a handle that each operation leaves
/// whole, so the data is still consistent. What a panic can lose is a
/// batch taken for placing and never placed; [`FailOnPanic`] marks the
/// transaction failed then, so no later flush places a commit that names
/// it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Marks the transaction failed for good if dropped while its thread
/// unwinds: a panic while placing a batch (in the background thread or in
/// a flush a caller survives with `catch_unwind`) leaves objects that are
/// neither pending nor placed.
struct FailOnPanic<'a>(&'a AtomicBool);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

/// What placing staged objects takes, shared with the background thread.
struct Placer {
    staging: Staging,
    repo: PathBuf,
    /// The repository's `objects/`.
    objects: File,
    /// Opened before anything was written (see [`durable::Syncer`]). Each
    /// reports an error once, so background batches and flushes have one
    /// each.
    sync_background: durable::Syncer,
    sync_flush: durable::Syncer,
    /// Set at the first failed `syncfs` or a panic while placing (see
    /// [`FailOnPanic`]): nothing is placed after it.
    failed: AtomicBool,
}

impl Placer {
    /// Makes everything written so far durable, or fails for good.
    fn sync(&self, through: &durable::Syncer) -> Result<()> {
        if let Err(e) = through.sync() {
            self.failed.store(true, Ordering::Release);
            return Err(e);
        }
        if self.failed.load(Ordering::Acquire) {
            return Err(Error::FailedEarlier {
                dir: self.staging.dir.clone(),
            });
        }
        crate::fault::point("objects-staged");
        Ok(())
    }

    /// Places each object of `batch`, whose data [`Placer::sync`] made
    /// durable; on all cores when `parallel` (each is an independent
    /// directory operation).
    fn place(&self, batch: &[Unplaced], parallel: bool) -> Result<()> {
        // The fan-out directories, `objects/XX`.
        let dirs: HashSet<&Path> = batch
            .iter()
            .filter_map(|p| Path::new(&p.rel).parent())
            .collect();
        for dir in dirs {
            let d = self.repo.join(dir);
            fs::create_dir_all(&d).io_ctx("create", &d)?;
        }
        let objects_path = self.repo.join("objects");
        let half = batch.len() / 2;
        let place = |(i, Unplaced { staged, rel, .. }): (usize, &Unplaced)| {
            self.staging
                .place(staged, &self.objects, &objects_path, Repo::in_objects(rel))?;
            if i == half {
                crate::fault::point("objects-half-renamed");
            }
            Ok::<(), Error>(())
        };
        if parallel {
            batch.par_iter().enumerate().try_for_each(place)
        } else {
            batch.iter().enumerate().try_for_each(place)
        }
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

/// The piece of a streamed content object held in memory at a time.
const SPOOL_CHUNK: usize = 1 << 20;

/// Files at least this large start their writeback as soon as they are
/// written: less is left dirty for a flush to wait for. (The biggest tenth
/// of an OS tree's files holds most of its bytes.)
const WRITEBACK_NOW: u64 = 256 << 10;

/// Writes a content object's data to `file` (at `path`, for messages)
/// through a buffer, and starts the writeback of a large one; returns its size.
fn write_data(
    file: &mut File,
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<u64> {
    let inner = &mut *file;
    let mut w = std::io::BufWriter::with_capacity(1 << 16, Counted { inner, bytes: 0 });
    fill(&mut w).io_ctx("write", path)?;
    w.flush().io_ctx("write", path)?;
    let Counted { inner: file, bytes } = w.into_parts().0;
    if bytes >= WRITEBACK_NOW {
        // Starts writeback of the dirty pages; it drops only clean ones,
        // and there are none yet. A hint: failure changes nothing.
        let _ = rustix::fs::fadvise(&*file, 0, None, rustix::fs::Advice::DontNeed);
    }
    Ok(bytes)
}

/// A writer and how many bytes went into it (asking a file costs a call).
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
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
    mut f: NewFile,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(Staged, u64)> {
    // Symlinks become regular files holding the target; the real mode is in the xattr.
    let content_mode = if header.is_symlink() {
        0o644
    } else {
        (header.mode & 0o775) | 0o400
    };
    let path = &f.path;
    let bytes = if header.is_symlink() {
        // With the terminating NUL, byte for byte as ostree writes it.
        f.file
            .write_all(header.symlink_target.as_bytes())
            .io_ctx("write", path)?;
        f.file.write_all(&[0]).io_ctx("write", path)?;
        header.symlink_target.len() as u64 + 1
    } else {
        write_data(&mut f.file, path, fill)?
    };
    let meta = header.bare_user_meta();
    let name = std::ffi::CString::new(file_header::BARE_USER_XATTR).expect("static name");
    rustix::fs::fsetxattr(&f.file, &name, &meta, rustix::fs::XattrFlags::empty())
        .io_ctx("set user.ostreemeta on", path)?;
    rustix::fs::fchmod(&f.file, rustix::fs::Mode::from_raw_mode(content_mode))
        .io_ctx("chmod", path)?;
    rustix::fs::futimens(&f.file, &zero_mtime()).io_ctx("set mtime of", path)?;
    Ok((f.staged(), bytes))
}

fn stage_archive(
    header: &FileHeader,
    staging: &Staging,
    name: &str,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(Staged, u64)> {
    use std::os::unix::fs::FileExt;
    let mut f = staging.create(name, 0o644)?;
    let path = f.path.clone();
    // The prefix holds the content's size, known once it is all written:
    // written first with 0, then again (its length does not depend on it).
    let placeholder = header.archive_prefix(0);
    f.file.write_all(&placeholder).io_ctx("write", &path)?;
    let mut size = 0;
    let mut compressed = 0;
    if !header.is_symlink() {
        let out = Counted {
            inner: std::io::BufWriter::with_capacity(1 << 16, &mut f.file),
            bytes: 0,
        };
        let mut content = Counted {
            inner: archive::deflater(out, archive::DEFAULT_LEVEL),
            bytes: 0,
        };
        fill(&mut content).io_ctx("write", &path)?;
        size = content.bytes;
        let mut out = content.inner.finish().io_ctx("write", &path)?;
        out.flush().io_ctx("write", &path)?;
        compressed = out.bytes;
    }
    let prefix = header.archive_prefix(size);
    if prefix.len() != placeholder.len() {
        return Err(Error::BadInput {
            path: path.clone(),
            what: "the archive header changed length with the size".into(),
        });
    }
    f.file.write_all_at(&prefix, 0).io_ctx("write", &path)?;
    Ok((f.staged(), prefix.len() as u64 + compressed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::regular_file_header;

    /// A content object whose write failed is not taken as stored: offered
    /// again in the same transaction, it is written. Regression test for
    /// 6bc6f29.
    #[test]
    fn a_failed_write_leaves_the_object_to_the_next_offer() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for mode in [RepoMode::BareUser, RepoMode::Archive] {
            let repo = Repo::init(&tmp.path().join(format!("{mode:?}")), mode).expect("init");
            let header = regular_file_header();
            let c = header.checksum(b"content");
            let tx = Transaction::begin(&repo).expect("begin");
            let failed = tx.write_content_with_checksum(&header, c, |_| {
                Err(std::io::Error::other("the source went away"))
            });
            assert!(failed.is_err(), "{mode:?}");
            tx.write_content_with_checksum(&header, c, |w| w.write_all(b"content"))
                .expect("the second offer");
            assert_eq!(tx.stats.content_written.load(Ordering::Relaxed), 1);
            tx.commit().expect("commit");
            assert!(repo.has_object(&c, ObjectType::File), "{mode:?}");
        }
    }

    /// A streamed content object is the object its bytes in memory make,
    /// in every mode, and the spool leaves nothing in the staging directory.
    #[test]
    fn streamed_content_equals_content_in_memory() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let content: Vec<u8> = (0..3 * SPOOL_CHUNK + 17).map(|i| i as u8).collect();
        for mode in [RepoMode::BareUser, RepoMode::Archive] {
            let repo = Repo::init(&tmp.path().join(format!("{mode:?}")), mode).expect("init");
            let header = regular_file_header();
            let tx = Transaction::begin(&repo).expect("begin");
            let c = tx
                .write_content_from(&header, &mut &content[..], Path::new("src"))
                .expect("streamed");
            assert_eq!(c, header.checksum(&content), "{mode:?}");
            tx.commit().expect("commit");
            let (_, stored) = repo.load_file(&c).expect("load");
            assert_eq!(stored, content, "{mode:?}");
        }
    }

    /// Found in review of issue 10, when poisoned locks became recovered
    /// instead of refused: a panic while placing a batch loses that batch,
    /// and a later flush must not go on to place a commit naming it. The
    /// panic marks the transaction failed; the next flush refuses.
    #[test]
    fn a_panic_while_placing_fails_the_transaction() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = Repo::init(&tmp.path().join("repo"), RepoMode::BareUser).expect("init");
        let tx = Transaction::begin(&repo).expect("begin");
        let header = regular_file_header();
        let c = header.checksum(b"content");
        tx.write_content_with_checksum(&header, c, |w| w.write_all(b"content"))
            .expect("write");
        let unwound = std::panic::catch_unwind(|| {
            let _panic = FailOnPanic(&tx.placer.failed);
            panic!("a bug while placing");
        });
        assert!(unwound.is_err());
        let e = tx.commit().expect_err("a transaction that lost a batch");
        assert!(matches!(e, Error::FailedEarlier { .. }), "{e}");
    }

    /// Regression test for e2071a8: an early writeback started only after
    /// EARLY_WRITEBACK_EVERY (1,024) content objects, so a large file
    /// staged last waited for the final flush. It also starts once
    /// EARLY_WRITEBACK_BYTES (32 MiB) are staged, even by one object.
    #[test]
    fn early_writeback_starts_after_32_mib_staged() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // Bare-user stages content as is, so the bytes staged are its length.
        let repo = Repo::init(&tmp.path().join("repo"), RepoMode::BareUser).expect("init");
        let header = regular_file_header();
        let staged = |tx: &Transaction<'_>| tx.pending.lock().expect("pending").len();
        let tx = Transaction::begin(&repo).expect("begin");
        tx.write_content(&header, b"small").expect("small");
        assert_eq!(staged(&tx), 1, "one small object waits for more");
        assert!(tx.background.lock().expect("background").is_none());

        let large = vec![7u8; EARLY_WRITEBACK_BYTES as usize];
        let c = tx.write_content(&header, &large).expect("large");
        assert_eq!(staged(&tx), 0, "past 32 MiB both went to a writeback");
        assert!(tx.background.lock().expect("background").is_some());
        assert_eq!(tx.since_writeback_bytes.load(Ordering::Relaxed), 0);
        tx.commit().expect("commit");
        assert!(repo.has_object(&c, ObjectType::File));
    }
}
