//! Pulling a ref from a remote: resolve, verify, fetch what is missing, move the ref.
//!
//! Order of trust: the commit object is fetched first and checked against
//! its checksum, its signature (when the remote requires one), its ref
//! binding and its timestamp (no silent downgrade). Only then is anything
//! else fetched; every object is verified against its name before it
//! enters the store, and every dirtree's names are validated when parsed.
//!
//! Crash argument: the commit is marked partial before its object is
//! stored; content arrives in batches, each made durable before the next;
//! the partial mark goes and the ref `refs/remotes/<remote>/<ref>` moves
//! only after the last batch is durable. An interrupted pull leaves a
//! partial commit that a rerun completes, fetching only what is missing.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use strata_store::config::Config;
use strata_store::objects::commit::parse_detached;
use strata_store::objects::file_header::split_prefixed;
use strata_store::write::Transaction;
use strata_store::{Checksum, Commit, DirTree, FileHeader, ObjectType, RefName, Repo, archive};

use crate::error::{Error, Result};
use crate::fetch::Fetcher;
use crate::progress::{Progress, PullProgress};
use crate::remotes;
use crate::sign;
use crate::summary::Summary;

/// Largest metadata object accepted (libostree's OSTREE_MAX_METADATA_SIZE).
pub const MAX_METADATA: u64 = 128 << 20;
/// Largest compressed content object accepted.
pub const MAX_CONTENT: u64 = 16 << 30;
/// How often fetched objects are made durable and moved into place: what an
/// interruption can lose. Each flush costs a `syncfs`, so not too often.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct PullOptions {
    pub remote: String,
    pub ref_name: String,
    /// Parents to fetch behind the commit (0: the commit only).
    pub depth: u32,
    /// Pull this commit instead of the ref's current one.
    pub commit: Option<Checksum>,
    pub allow_downgrade: bool,
    /// Requests in flight at once.
    pub concurrency: usize,
}

#[derive(Debug, Clone)]
pub struct PullReport {
    pub commit: Checksum,
    pub previous: Option<Checksum>,
    pub up_to_date: bool,
    pub objects_fetched: u64,
    pub bytes_fetched: u64,
    pub signed_by: Option<String>,
}

/// Shared state of a tree walk: what was seen, and the first error.
#[derive(Default)]
struct Walk {
    trees: Mutex<HashSet<Checksum>>,
    metas: Mutex<HashSet<Checksum>>,
    files: Mutex<HashSet<Checksum>>,
    error: Mutex<Option<Error>>,
    failed: AtomicBool,
}

impl Walk {
    /// True the first time `c` is offered to `set`.
    fn first(&self, set: &Mutex<HashSet<Checksum>>, c: Checksum) -> bool {
        set.lock().map(|mut s| s.insert(c)).unwrap_or(false)
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    fn record(&self, r: Result<()>) {
        if let Err(e) = r
            && !self.failed.swap(true, Ordering::AcqRel)
            && let Ok(mut slot) = self.error.lock()
        {
            *slot = Some(e);
        }
    }
}

struct Puller<'a> {
    repo: &'a Repo,
    fetcher: Fetcher,
    pool: rayon::ThreadPool,
    progress: &'a dyn Progress,
    fetched: AtomicU64,
    needed: AtomicU64,
    started: std::time::Instant,
    last_flush_ms: AtomicU64,
}

pub fn pull(repo: &Repo, opts: &PullOptions, progress: &dyn Progress) -> Result<PullReport> {
    let remote = remotes::get(repo, &opts.remote)?;
    let local_ref = RefName::parse(&format!("{}:{}", opts.remote, opts.ref_name))?;
    let keys = if remote.sign_verify {
        let (trusted, revoked) = remote.keys()?;
        if trusted.is_empty() {
            return Err(Error::Refused(format!(
                "remote {:?} has signature verification on but no key: add one (strata remote add --sign-pubkey) or re-add the remote with --no-sign-verify",
                opts.remote
            )));
        }
        Some((trusted, revoked))
    } else {
        None
    };
    let concurrency = opts.concurrency.max(1);
    let p = Puller {
        repo,
        fetcher: Fetcher::new(&remote.url, concurrency)?,
        pool: rayon::ThreadPoolBuilder::new()
            .num_threads(concurrency)
            .build()
            .map_err(|e| {
                Error::Refused(format!("cannot start {concurrency} fetch threads: {e}"))
            })?,
        progress,
        fetched: AtomicU64::new(0),
        needed: AtomicU64::new(0),
        started: std::time::Instant::now(),
        last_flush_ms: AtomicU64::new(0),
    };
    p.check_remote_mode()?;

    let target = match opts.commit {
        Some(c) => c,
        None => p.resolve(&opts.ref_name, keys.as_ref())?,
    };
    let (commit_bytes, commit) = p.fetch_commit(&target)?;
    let detached = p.fetch_detached(&target)?;
    let mut signed_by = None;
    if let Some((trusted, revoked)) = &keys {
        let k = sign::verify(
            &commit_bytes,
            &detached,
            trusted,
            revoked,
            &format!("commit {target}"),
        )?;
        signed_by = Some(crate::keys::format_public(&k));
    }
    let bindings = commit.ref_bindings();
    if !bindings.is_empty() && !bindings.contains(&opts.ref_name.as_str()) {
        return Err(Error::Refused(format!(
            "commit {target} is bound to {bindings:?}, not to {:?}: refusing it (the server may be swapping branches)",
            opts.ref_name
        )));
    }
    let previous = repo.read_ref(&local_ref)?;
    if let Some(prev) = previous
        && prev != target
        && !opts.allow_downgrade
        && let Ok(old) = repo.load_commit(&prev)
        && old.timestamp > commit.timestamp
    {
        return Err(Error::Refused(format!(
            "commit {target} is older than {prev}, which {local_ref} has now: refusing a downgrade (pass --allow-downgrade to take it)"
        )));
    }
    let complete = |c: &Checksum| repo.has_object(c, ObjectType::Commit) && !repo.is_partial(c);
    if previous == Some(target) && complete(&target) {
        return Ok(PullReport {
            commit: target,
            previous,
            up_to_date: true,
            objects_fetched: 0,
            bytes_fetched: 0,
            signed_by,
        });
    }

    let tx = Transaction::begin(repo)?;
    let mut todo = vec![(target, commit_bytes, commit, detached)];
    let mut chain = Vec::new();
    for _ in 0..opts.depth {
        let Some(parent) = todo
            .last()
            .and_then(|t| t.2.parent)
            .or_else(|| chain.last().copied())
        else {
            break;
        };
        chain.push(parent);
        if complete(&parent) {
            break;
        }
        match p
            .fetcher
            .get(&object_rel(&parent, ObjectType::Commit), MAX_METADATA)?
        {
            None => break, // history not on the server
            Some(bytes) => {
                let c = p.check_commit(&parent, &bytes)?;
                let d = p.fetch_detached(&parent)?;
                todo.push((parent, bytes, c, d));
            }
        }
    }
    for (c, bytes, commit, detached) in &todo {
        if complete(c) {
            continue;
        }
        repo.mark_partial(c)?;
        tx.write_meta(ObjectType::Commit, bytes)?;
        tx.flush()?;
        if !detached.is_empty() {
            sign::write_detached(repo, c, detached)?;
        }
        p.pull_tree(&tx, commit)?;
    }
    tx.commit()?;
    for (c, ..) in &todo {
        repo.clear_partial(c)?;
    }
    repo.write_ref(&local_ref, &target)?;
    Ok(PullReport {
        commit: target,
        previous,
        up_to_date: false,
        objects_fetched: p.fetched.load(Ordering::Relaxed),
        bytes_fetched: p.fetcher.bytes.load(Ordering::Relaxed),
        signed_by,
    })
}

/// `objects/XX/YYYY….ext` as served by an archive repository.
fn object_rel(c: &Checksum, kind: ObjectType) -> String {
    let hex = c.to_hex();
    format!(
        "objects/{}/{}.{}",
        &hex[..2],
        &hex[2..],
        kind.extension(true)
    )
}

impl Puller<'_> {
    fn report(&self) {
        self.progress.update(PullProgress {
            fetched: self.fetched.load(Ordering::Relaxed),
            needed: self.needed.load(Ordering::Relaxed),
            bytes: self.fetcher.bytes.load(Ordering::Relaxed),
            walk_done: false,
        });
    }

    fn check_remote_mode(&self) -> Result<()> {
        let url = self.fetcher.url_of("config");
        let bytes = self
            .fetcher
            .get("config", 1 << 20)?
            .ok_or_else(|| Error::NotFound { url: url.clone() })?;
        let text = String::from_utf8(bytes).map_err(|_| Error::Fetch {
            url: url.clone(),
            what: "config is not text".into(),
        })?;
        let config = Config::parse(&text).map_err(|what| Error::Fetch {
            url: url.clone(),
            what,
        })?;
        match config.get("core", "mode") {
            Some("archive-z2") | Some("archive") => Ok(()),
            other => Err(Error::Refused(format!(
                "{url}: the remote repository is in mode {:?}; only archive repositories can be pulled over the network",
                other.unwrap_or("bare")
            ))),
        }
    }

    /// The commit the remote's ref points to: from the summary (its
    /// signature checked when present and keys are required), else from
    /// `refs/heads/<ref>`.
    fn resolve(
        &self,
        name: &str,
        keys: Option<&(
            Vec<ed25519_dalek::VerifyingKey>,
            Vec<ed25519_dalek::VerifyingKey>,
        )>,
    ) -> Result<Checksum> {
        strata_store::refs::validate_ref_name(name)?;
        if let Some(bytes) = self.fetcher.get("summary", MAX_METADATA)? {
            if let Some((trusted, revoked)) = keys
                && let Some(sig) = self.fetcher.get("summary.sig", MAX_METADATA)?
            {
                let detached = parse_detached(&sig).map_err(|e| Error::BadObject {
                    object: "summary.sig".into(),
                    url: self.fetcher.url_of("summary.sig"),
                    what: e.to_string(),
                })?;
                sign::verify(&bytes, &detached, trusted, revoked, "the summary")?;
            }
            let summary = Summary::from_bytes(&bytes).map_err(|what| Error::BadObject {
                object: "summary".into(),
                url: self.fetcher.url_of("summary"),
                what,
            })?;
            if let Some(r) = summary.lookup(name) {
                return Ok(r.commit);
            }
        }
        let rel = format!("refs/heads/{name}");
        let url = self.fetcher.url_of(&rel);
        let bytes = self
            .fetcher
            .get(&rel, 1024)?
            .ok_or_else(|| Error::NotFound { url: url.clone() })?;
        let text = String::from_utf8_lossy(&bytes);
        Checksum::from_hex(text.trim()).map_err(|e| Error::Fetch {
            url,
            what: e.to_string(),
        })
    }

    fn check_commit(&self, c: &Checksum, bytes: &[u8]) -> Result<Commit> {
        let rel = object_rel(c, ObjectType::Commit);
        let bad = |what: String| Error::BadObject {
            object: format!("{c}.commit"),
            url: self.fetcher.url_of(&rel),
            what,
        };
        if Checksum::of(bytes) != *c {
            return Err(bad(format!(
                "checksum mismatch (content hashes to {})",
                Checksum::of(bytes)
            )));
        }
        Commit::from_bytes(bytes).map_err(|e| bad(e.to_string()))
    }

    /// Fetches `rel`, which must exist on the server.
    fn required(&self, rel: &str, limit: u64) -> Result<Vec<u8>> {
        self.fetcher
            .get(rel, limit)?
            .ok_or_else(|| Error::NotFound {
                url: self.fetcher.url_of(rel),
            })
    }

    fn fetch_commit(&self, c: &Checksum) -> Result<(Vec<u8>, Commit)> {
        let rel = object_rel(c, ObjectType::Commit);
        let bytes = self.required(&rel, MAX_METADATA)?;
        let commit = self.check_commit(c, &bytes)?;
        Ok((bytes, commit))
    }

    fn fetch_detached(&self, c: &Checksum) -> Result<Vec<(String, strata_store::gvariant::Value)>> {
        let rel = object_rel(c, ObjectType::CommitMeta);
        match self.fetcher.get(&rel, MAX_METADATA)? {
            None => Ok(Vec::new()),
            Some(bytes) => parse_detached(&bytes).map_err(|e| Error::BadObject {
                object: format!("{c}.commitmeta"),
                url: self.fetcher.url_of(&rel),
                what: e.to_string(),
            }),
        }
    }

    /// Fetches (or reads locally) a metadata object and checks its checksum.
    fn meta(&self, tx: &Transaction<'_>, c: &Checksum, kind: ObjectType) -> Result<Vec<u8>> {
        if self.repo.has_object(c, kind) {
            return Ok(self.repo.read_meta(c, kind)?);
        }
        let rel = object_rel(c, kind);
        let bytes = self.required(&rel, MAX_METADATA)?;
        if Checksum::of(&bytes) != *c {
            return Err(Error::BadObject {
                object: format!("{c}.{kind}"),
                url: self.fetcher.url_of(&rel),
                what: format!(
                    "checksum mismatch (content hashes to {})",
                    Checksum::of(&bytes)
                ),
            });
        }
        tx.write_meta(kind, &bytes)?;
        self.fetched.fetch_add(1, Ordering::Relaxed);
        self.report();
        Ok(bytes)
    }

    /// Walks the commit's tree and fetches what is missing, all at once: each
    /// directory's listing spawns the fetches of its files and
    /// subdirectories, so content flows while the walk goes on and no level
    /// waits for its slowest member. The first error stops new work.
    fn pull_tree(&self, tx: &Transaction<'_>, commit: &Commit) -> Result<()> {
        let walk = Walk::default();
        self.pool
            .scope(|s| self.visit_dir(s, tx, &walk, commit.root_tree, commit.root_meta));
        if let Some(e) = walk.error.lock().ok().and_then(|mut e| e.take()) {
            return Err(e);
        }
        self.progress.update(PullProgress {
            fetched: self.fetched.load(Ordering::Relaxed),
            needed: self.needed.load(Ordering::Relaxed),
            bytes: self.fetcher.bytes.load(Ordering::Relaxed),
            walk_done: true,
        });
        Ok(())
    }

    fn visit_dir<'s>(
        &'s self,
        s: &rayon::Scope<'s>,
        tx: &'s Transaction<'_>,
        walk: &'s Walk,
        tree: Checksum,
        meta: Checksum,
    ) {
        if walk.failed() {
            return;
        }
        if walk.first(&walk.metas, meta) {
            self.needed.fetch_add(1, Ordering::Relaxed);
            s.spawn(move |_| walk.record(self.dirmeta(tx, &meta)));
        }
        if !walk.first(&walk.trees, tree) {
            return;
        }
        self.needed.fetch_add(1, Ordering::Relaxed);
        s.spawn(move |s| {
            if walk.failed() {
                return;
            }
            let listing = match self.dirtree(tx, &tree) {
                Ok(t) => t,
                Err(e) => return walk.record(Err(e)),
            };
            for (_, f) in &listing.files {
                let f = *f;
                if walk.first(&walk.files, f) && !self.repo.has_object(&f, ObjectType::File) {
                    self.needed.fetch_add(1, Ordering::Relaxed);
                    s.spawn(move |_| {
                        if !walk.failed() {
                            walk.record(self.content(tx, &f).and_then(|()| self.maybe_flush(tx)));
                        }
                    });
                }
            }
            for d in &listing.dirs {
                self.visit_dir(s, tx, walk, d.tree, d.meta);
            }
        });
    }

    fn dirmeta(&self, tx: &Transaction<'_>, m: &Checksum) -> Result<()> {
        let bytes = self.meta(tx, m, ObjectType::DirMeta)?;
        strata_store::DirMeta::from_bytes(&bytes)
            .map(drop)
            .map_err(|e| Error::BadObject {
                object: format!("{m}.dirmeta"),
                url: self.fetcher.url_of(&object_rel(m, ObjectType::DirMeta)),
                what: e.to_string(),
            })
    }

    fn dirtree(&self, tx: &Transaction<'_>, t: &Checksum) -> Result<DirTree> {
        let bytes = self.meta(tx, t, ObjectType::DirTree)?;
        DirTree::from_bytes(&bytes).map_err(|e| Error::BadObject {
            object: format!("{t}.dirtree"),
            url: self.fetcher.url_of(&object_rel(t, ObjectType::DirTree)),
            what: e.to_string(),
        })
    }

    /// Flushes the transaction when the last flush is older than
    /// [`FLUSH_EVERY`]; one thread wins the race, the others go on.
    fn maybe_flush(&self, tx: &Transaction<'_>) -> Result<()> {
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.last_flush_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= FLUSH_EVERY.as_millis() as u64
            && self
                .last_flush_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            tx.flush()?;
        }
        Ok(())
    }

    /// Fetches a `.filez`, checks it inflates to exactly its declared size
    /// and hashes to its name, and stores it.
    fn content(&self, tx: &Transaction<'_>, c: &Checksum) -> Result<()> {
        let rel = object_rel(c, ObjectType::File);
        let url = || self.fetcher.url_of(&rel);
        let bad = |what: String| Error::BadObject {
            object: format!("{c}.filez"),
            url: url(),
            what,
        };
        let bytes = self.required(&rel, MAX_CONTENT)?;
        let (header_bytes, compressed) = split_prefixed(&bytes).map_err(|e| bad(e.to_string()))?;
        let (header, size): (FileHeader, u64) =
            FileHeader::from_archive(header_bytes).map_err(|e| bad(e.to_string()))?;
        let content = if header.is_symlink() {
            Vec::new()
        } else {
            archive::inflate(compressed, size).map_err(bad)?
        };
        let actual = header.checksum(&content);
        if actual != *c {
            return Err(bad(format!(
                "checksum mismatch (content hashes to {actual})"
            )));
        }
        tx.write_content_with_checksum(&header, actual, |w| w.write_all(&content))?;
        self.fetched.fetch_add(1, Ordering::Relaxed);
        self.report();
        Ok(())
    }
}
