//! Pulling a ref from a remote: resolve, verify, fetch what is missing, move the ref.
//!
//! Order of trust: with keys, the ref resolves through the summary, which
//! must be signed by one of them and not expired (see `fetch_summary`).
//! The commit object is fetched first and checked against
//! its checksum, its signature (when the remote requires one), its ref
//! binding and its timestamp (no silent downgrade). Only then is anything
//! else fetched; every object is verified against its name before it
//! enters the store, and every dirtree's names are validated when parsed.
//!
//! Crash argument: the commit is marked partial before its object is
//! stored; content arrives in batches, each made durable before the next;
//! the partial mark goes and the ref `refs/remotes/<remote>/<ref>` moves
//! only after the last batch is durable. An interrupted pull leaves a
//! partial commit that a rerun completes, fetching only what is missing;
//! a pull that fails (a stalled server, say) makes what it verified
//! durable before it returns.
//!
//! The tree is walked by fetch threads sharing a queue (`queue.rs`): each takes a
//! batch, fetches it in one go on its own connection (pipelined, see
//! `fetch.rs`), and stores what it got, queueing what each
//! directory listing names.

use std::io::{BufReader, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use strata_store::config::Config;
use strata_store::objects::commit::parse_detached;
use strata_store::objects::file_header::{PrefixError, read_prefixed, split_prefixed};
use strata_store::write::Transaction;
use strata_store::{Checksum, Commit, DirTree, FileHeader, ObjectType, RefName, Repo, archive};

use crate::error::{Error, Result};
use crate::fetch::{Body, Fetcher};
use crate::keys::TrustedKeys;
use crate::progress::{Progress, PullProgress};
use crate::queue::{Item, Queue};
use crate::remotes;
use crate::sign;
use crate::stall::StallLimit;
use crate::summary::Summary;

/// Largest metadata object accepted (libostree's OSTREE_MAX_METADATA_SIZE).
pub const MAX_METADATA: u64 = strata_store::objects::MAX_METADATA_SIZE;
/// Largest compressed content object accepted.
pub const MAX_CONTENT: u64 = 16 << 30;
/// How often fetched objects are made durable and moved into place: what an
/// interruption can lose. Each flush costs a `syncfs`, so not too often.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(3);
/// Requests a fetch thread sends at once on its connection.
const PIPELINE_DEPTH: usize = 16;

/// What [`run`] pulls, and from where.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The configured remote's name (see [`crate::remotes`]).
    pub remote: String,
    /// The ref on the remote; pulled into `refs/remotes/<remote>/<ref_name>`.
    pub ref_name: String,
    /// Parents to fetch behind the commit (0: the commit only).
    pub depth: u32,
    /// Pull this commit instead of the ref's current one.
    pub commit: Option<Checksum>,
    /// Take a commit older than the one the local ref has (refused
    /// otherwise, so a server cannot roll a machine back silently).
    pub allow_downgrade: bool,
    /// Fetch threads, each with its own connection.
    pub concurrency: usize,
    /// Fetch and verify only the commit object (and its signatures),
    /// stored marked partial, without moving the local ref: enough to say
    /// what an update is (`upgrade --check`, the updater's `check` policy)
    /// without downloading it.
    pub commit_only: bool,
    /// The stall window for this pull, instead of the remote's
    /// `stall-timeout` (see [`crate::stall`]).
    pub stall_timeout: Option<std::time::Duration>,
    /// Accept a summary past the expiry its publisher gave it (an
    /// air-gapped mirror; the remote's `summary-expiry=ignore` does too).
    pub allow_expired_summary: bool,
}

/// What [`run`] did.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// The commit the local ref now points at.
    pub commit: Checksum,
    /// What the local ref pointed at before; `None` on a first pull.
    pub previous: Option<Checksum>,
    /// Whether the commit was already here and complete: nothing fetched.
    pub up_to_date: bool,
    /// Objects downloaded (metadata and content).
    pub objects_fetched: u64,
    /// Bytes downloaded, as sent by the server (compressed objects).
    pub bytes_fetched: u64,
    /// The base64 public key whose signature was accepted; `None` when the
    /// remote is configured with `sign-verify=false`.
    pub signed_by: Option<String>,
}

struct Puller<'a> {
    repo: &'a Repo,
    fetcher: Fetcher,
    /// Fetch threads, each with its own connection.
    workers: usize,
    progress: &'a dyn Progress,
    fetched: AtomicU64,
    needed: AtomicU64,
    started: std::time::Instant,
    last_flush_ms: AtomicU64,
}

/// What a summary must be for a client to use it.
struct SummaryPolicy<'a> {
    /// The remote's name, for messages.
    remote: &'a str,
    /// With keys, the summary must be signed by one of them, and refs
    /// resolve only through it.
    keys: Option<&'a TrustedKeys>,
    /// Accept a summary past its expiry.
    allow_expired: bool,
}

impl SummaryPolicy<'_> {
    /// A failed signature check of the summary at `url`.
    fn unsigned(&self, url: &str, why: &str) -> Error {
        Error::Signature {
            what: format!("the summary of remote {:?} ({url})", self.remote),
            why: format!(
                "{why}; with signature verification on, refs resolve only through a summary signed by a trusted key (the publisher runs `strata summary --update --sign-key KEY`; for a publisher who signs only commits, re-add the remote with --no-sign-verify-summary)"
            ),
        }
    }
}

/// The remote's summary, if it has one. With keys, it must exist and be
/// signed by one of them; past its expiry it is refused unless allowed.
fn fetch_summary(fetcher: &Fetcher, policy: &SummaryPolicy<'_>) -> Result<Option<Summary>> {
    let url = fetcher.url_of("summary");
    let Some(bytes) = fetcher.get("summary", MAX_METADATA)? else {
        if policy.keys.is_some() {
            return Err(policy.unsigned(&url, "the server has none"));
        }
        return Ok(None);
    };
    if let Some(keys) = policy.keys {
        let Some(sig) = fetcher.get("summary.sig", MAX_METADATA)? else {
            let why = format!(
                "it is not signed ({} is not on the server)",
                fetcher.url_of("summary.sig")
            );
            return Err(policy.unsigned(&url, &why));
        };
        let detached = parse_detached(&sig).map_err(|e| Error::BadObject {
            object: "summary.sig".into(),
            url: fetcher.url_of("summary.sig"),
            what: e.to_string(),
        })?;
        sign::verify(
            &bytes,
            &detached,
            &keys.trusted,
            &keys.revoked,
            &format!("the summary of remote {:?} ({url})", policy.remote),
        )?;
    }
    let summary = Summary::from_bytes(&bytes).map_err(|what| Error::BadObject {
        object: "summary".into(),
        url: url.clone(),
        what,
    })?;
    if let Some(t) = summary.expired_at(crate::summary::now())
        && !policy.allow_expired
    {
        return Err(Error::SummaryExpired {
            remote: policy.remote.to_owned(),
            url,
            expired: crate::summary::format_utc(t),
        });
    }
    Ok(Some(summary))
}

/// The refs remote `name` lists in its summary (verified as a pull
/// verifies it); an error names the URL when it has no summary.
pub fn remote_refs(repo: &Repo, name: &str) -> Result<Vec<crate::summary::SummaryRef>> {
    let remote = remotes::get(repo, name)?;
    let keys = if remote.sign_verify {
        Some(remote.keys()?)
    } else {
        None
    };
    let fetcher = Fetcher::new(&remote.url, 1, remote.stall)?;
    let policy = SummaryPolicy {
        remote: name,
        keys: keys.as_ref().filter(|_| remote.sign_verify_summary),
        allow_expired: remote.ignore_summary_expiry,
    };
    match fetch_summary(&fetcher, &policy)? {
        Some(s) => Ok(s.refs),
        None => Err(Error::NotFound {
            url: fetcher.url_of("summary"),
        }),
    }
}

/// Pulls what `opts` names into `repo` (see the module docs).
pub fn run(repo: &Repo, opts: &PullOptions, progress: &dyn Progress) -> Result<PullReport> {
    let remote = remotes::get(repo, &opts.remote)?;
    let local_ref = RefName::parse(&format!("{}:{}", opts.remote, opts.ref_name))?;
    let keys = if remote.sign_verify {
        let keys = remote.keys()?;
        if keys.trusted.is_empty() {
            return Err(Error::Refused(format!(
                "remote {:?} has signature verification on but no key: add one (strata remote add --sign-pubkey) or re-add the remote with --no-sign-verify",
                opts.remote
            )));
        }
        Some(keys)
    } else {
        None
    };
    let concurrency = opts.concurrency.max(1);
    let stall = StallLimit {
        window: opts.stall_timeout.unwrap_or(remote.stall.window),
        ..remote.stall
    };
    let p = Puller {
        repo,
        fetcher: Fetcher::new(&remote.url, concurrency, stall)?.spool_in(&repo.path().join("tmp")),
        workers: concurrency,
        progress,
        fetched: AtomicU64::new(0),
        needed: AtomicU64::new(0),
        started: std::time::Instant::now(),
        last_flush_ms: AtomicU64::new(0),
    };
    p.check_remote_mode()?;

    let policy = SummaryPolicy {
        remote: &opts.remote,
        keys: keys.as_ref().filter(|_| remote.sign_verify_summary),
        allow_expired: opts.allow_expired_summary || remote.ignore_summary_expiry,
    };
    let target = match opts.commit {
        Some(c) => c,
        None => p.resolve(&opts.ref_name, &policy)?,
    };
    let (commit_bytes, commit) = p.fetch_commit(&target)?;
    let detached = p.fetch_detached(&target)?;
    let mut signed_by = None;
    if let Some(keys) = &keys {
        let k = sign::verify(
            &commit_bytes,
            &detached,
            &keys.trusted,
            &keys.revoked,
            &format!("commit {target}"),
        )?;
        signed_by = Some(crate::keys::format_public(&k));
    }
    let bindings = commit.ref_bindings();
    if !bindings.is_empty() && !bindings.contains(&opts.ref_name.as_str()) {
        return Err(Error::WrongBinding {
            commit: target,
            bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
            ref_name: opts.ref_name.clone(),
        });
    }
    let previous = repo.read_ref(&local_ref)?;
    if let Some(prev) = previous
        && prev != target
        && !opts.allow_downgrade
        && let Ok(old) = repo.load_commit(&prev)
        && old.timestamp > commit.timestamp
    {
        return Err(Error::Downgrade {
            commit: target,
            current: prev,
            local_ref: local_ref.to_string(),
        });
    }
    let complete = |c: &Checksum| repo.has_object(c, ObjectType::Commit) && !repo.is_partial(c);
    if opts.commit_only {
        if !repo.has_object(&target, ObjectType::Commit) {
            let tx = Transaction::begin(repo)?;
            repo.mark_partial(&target)?;
            tx.write_meta(ObjectType::Commit, &commit_bytes)?;
            tx.commit()?;
            if !detached.is_empty() {
                sign::write_detached(repo, &target, &detached)?;
            }
        }
        return Ok(PullReport {
            commit: target,
            previous,
            up_to_date: previous == Some(target) && complete(&target),
            objects_fetched: 0,
            bytes_fetched: p.fetcher.bytes.load(Ordering::Relaxed),
            signed_by,
        });
    }
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
        if let Err(e) = p.pull_tree(&tx, commit) {
            // Keep what was fetched and verified, so that a rerun (after
            // a stall, a server gone away) fetches only the rest.
            if let Err(flush) = tx.flush() {
                tracing::warn!(%flush, "could not keep what the failed pull fetched");
            }
            return Err(e);
        }
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
    strata_store::objects::loose_path(c, kind, true)
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
            other => Err(Error::NotArchive {
                url,
                mode: other.unwrap_or("bare").to_owned(),
            }),
        }
    }

    /// The commit the remote's ref points to: from the summary, else
    /// (without keys only: nothing signs it) from `refs/heads/<ref>`.
    fn resolve(&self, name: &str, policy: &SummaryPolicy<'_>) -> Result<Checksum> {
        strata_store::refs::validate_ref_name(name)?;
        if let Some(summary) = fetch_summary(&self.fetcher, policy)? {
            if let Some(r) = summary.lookup(name) {
                return Ok(r.commit);
            }
            if policy.keys.is_some() {
                return Err(Error::Refused(format!(
                    "ref {name:?} is not in the signed summary of remote {:?} ({}): refusing refs/heads/{name}, which nothing signs",
                    policy.remote,
                    self.fetcher.url_of("summary")
                )));
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

    /// Walks the commit's tree and fetches what is missing, all at once:
    /// each directory listing queues its files and subdirectories, so
    /// content flows while the walk goes on, and the fetch threads take the
    /// queue in pipelined batches. The first error stops new work.
    fn pull_tree(&self, tx: &Transaction<'_>, commit: &Commit) -> Result<()> {
        let queue = Queue::new(self.workers, PIPELINE_DEPTH);
        let mut root = Vec::new();
        self.offer_dir(&queue, commit.root_tree, commit.root_meta, &mut root);
        queue.push(root);
        std::thread::scope(|s| {
            for _ in 0..self.workers {
                s.spawn(|| {
                    // A panic must still stop the others, which would
                    // otherwise wait for its batch forever.
                    let worker = std::panic::AssertUnwindSafe(|| self.fetch_worker(tx, &queue));
                    if std::panic::catch_unwind(worker).is_err() {
                        queue.record(Err(Error::WorkerPanicked {
                            what: "a fetch thread",
                        }));
                    }
                });
            }
        });
        if let Some(e) = queue.into_error() {
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

    /// What a directory needs: its metadata when missing, and its listing
    /// (read locally when stored, to walk on).
    fn offer_dir(&self, queue: &Queue, tree: Checksum, meta: Checksum, out: &mut Vec<Item>) {
        let meta = Item {
            checksum: meta,
            kind: ObjectType::DirMeta,
        };
        if queue.claim(meta) && !self.repo.has_object(&meta.checksum, meta.kind) {
            self.needed.fetch_add(1, Ordering::Relaxed);
            out.push(meta);
        }
        let tree = Item {
            checksum: tree,
            kind: ObjectType::DirTree,
        };
        if queue.claim(tree) {
            if !self.repo.has_object(&tree.checksum, tree.kind) {
                self.needed.fetch_add(1, Ordering::Relaxed);
            }
            out.push(tree);
        }
    }

    /// One fetch thread: takes batches until the queue runs dry.
    fn fetch_worker(&self, tx: &Transaction<'_>, queue: &Queue) {
        let mut session = self.fetcher.session();
        let mut inflater = archive::Inflater::default();
        while let Some(batch) = queue.take() {
            let (local, remote): (Vec<Item>, Vec<Item>) = batch.iter().partition(|i| {
                i.kind == ObjectType::DirTree && self.repo.has_object(&i.checksum, i.kind)
            });
            for item in &local {
                queue.record(self.walk_local(queue, &item.checksum));
            }
            let requests: Vec<(String, u64)> = remote
                .iter()
                .map(|i| {
                    let limit = if i.kind == ObjectType::File {
                        MAX_CONTENT
                    } else {
                        MAX_METADATA
                    };
                    (object_rel(&i.checksum, i.kind), limit)
                })
                .collect();
            for ((item, (rel, _)), answer) in remote
                .iter()
                .zip(&requests)
                .zip(session.get_many(&requests))
            {
                if queue.failed() {
                    break;
                }
                let stored = answer
                    .and_then(|body| {
                        body.ok_or_else(|| Error::NotFound {
                            url: self.fetcher.url_of(rel),
                        })
                    })
                    .and_then(|body| self.store(tx, queue, &mut inflater, item, body));
                queue.record(stored);
            }
            queue.done(batch.len());
        }
    }

    /// Checks a fetched object and stores it; a listing queues what it names.
    fn store(
        &self,
        tx: &Transaction<'_>,
        queue: &Queue,
        inflater: &mut archive::Inflater,
        item: &Item,
        body: Body<'_>,
    ) -> Result<()> {
        let c = &item.checksum;
        if item.kind == ObjectType::File {
            self.content(tx, inflater, c, body)?;
        } else {
            let rel = object_rel(c, item.kind);
            let bad = |what: String| Error::BadObject {
                object: format!("{c}.{}", item.kind),
                url: self.fetcher.url_of(&rel),
                what,
            };
            let body = body
                .into_bytes()
                .map_err(|e| self.fetcher.unreadable(&rel, e))?;
            let body = &body[..];
            let actual = Checksum::of(body);
            if actual != *c {
                return Err(bad(format!(
                    "checksum mismatch (content hashes to {actual})"
                )));
            }
            if item.kind == ObjectType::DirTree {
                let listing = DirTree::from_bytes(body).map_err(|e| bad(e.to_string()))?;
                tx.write_meta(item.kind, body)?;
                self.offer_listing(queue, &listing);
            } else {
                strata_store::DirMeta::from_bytes(body).map_err(|e| bad(e.to_string()))?;
                tx.write_meta(item.kind, body)?;
            }
        }
        self.fetched.fetch_add(1, Ordering::Relaxed);
        self.report();
        self.maybe_flush(tx)
    }

    /// Walks a listing this repository has already.
    fn walk_local(&self, queue: &Queue, tree: &Checksum) -> Result<()> {
        let listing = self.repo.load_dirtree(tree)?;
        self.offer_listing(queue, &listing);
        Ok(())
    }

    /// Queues what a listing names and this repository lacks.
    fn offer_listing(&self, queue: &Queue, listing: &DirTree) {
        let mut out = Vec::new();
        for (_, f) in &listing.files {
            let item = Item {
                checksum: *f,
                kind: ObjectType::File,
            };
            if queue.claim(item) && !self.repo.has_object(f, ObjectType::File) {
                self.needed.fetch_add(1, Ordering::Relaxed);
                out.push(item);
            }
        }
        for d in &listing.dirs {
            self.offer_dir(queue, d.tree, d.meta, &mut out);
        }
        queue.push(out);
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

    /// Checks a fetched `.filez` inflates to exactly its declared size and
    /// hashes to its name, and stores it. Content larger than
    /// [`INFLATE_IN_MEMORY`], or a body in a file, goes through in pieces.
    fn content(
        &self,
        tx: &Transaction<'_>,
        inflater: &mut archive::Inflater,
        c: &Checksum,
        body: Body<'_>,
    ) -> Result<()> {
        let bad = |what: String| self.bad_content(c, what);
        let parse =
            |header: &[u8]| FileHeader::from_archive(header).map_err(|e| bad(e.to_string()));
        match body {
            Body::Bytes(bytes) => {
                let (header_bytes, compressed) =
                    split_prefixed(&bytes).map_err(|e| bad(e.to_string()))?;
                let (header, size) = parse(header_bytes)?;
                if header.is_symlink() {
                    return self.store_whole(tx, c, &header, &[]);
                }
                if size <= INFLATE_IN_MEMORY {
                    let content = inflater.inflate(compressed, size).map_err(bad)?;
                    return self.store_whole(tx, c, &header, content);
                }
                let compressed_len = compressed.len() as u64;
                self.store_streaming(tx, c, &header, size, &mut &compressed[..], compressed_len)
            }
            Body::File { file, len } => {
                let mut r = BufReader::with_capacity(1 << 18, file);
                let header_bytes = read_prefixed(&mut r, len, MAX_HEADER).map_err(|e| match e {
                    PrefixError::Bad(e) => bad(e.to_string()),
                    PrefixError::Io(e) => self.unreadable_content(c, e),
                })?;
                let (header, size) = parse(&header_bytes)?;
                if header.is_symlink() {
                    return self.store_whole(tx, c, &header, &[]);
                }
                let compressed_len = len - 8 - header_bytes.len() as u64;
                self.store_streaming(tx, c, &header, size, &mut r, compressed_len)
            }
        }
    }

    fn bad_content(&self, c: &Checksum, what: String) -> Error {
        Error::BadObject {
            object: format!("{c}.filez"),
            url: self.fetcher.url_of(&object_rel(c, ObjectType::File)),
            what,
        }
    }

    fn unreadable_content(&self, c: &Checksum, e: std::io::Error) -> Error {
        self.fetcher.unreadable(&object_rel(c, ObjectType::File), e)
    }

    /// Stores content held in memory once it hashes to `c`.
    fn store_whole(
        &self,
        tx: &Transaction<'_>,
        c: &Checksum,
        header: &FileHeader,
        content: &[u8],
    ) -> Result<()> {
        let actual = header.checksum(content);
        if actual != *c {
            return Err(
                self.bad_content(c, format!("checksum mismatch (content hashes to {actual})"))
            );
        }
        tx.write_content_with_checksum(header, actual, |w| w.write_all(content))
            .map_err(Error::from)
    }

    /// Stores content as it is inflated from `compressed`, a piece at a
    /// time, and checks it at the end: a bad object fails the write, and its
    /// staged file is never placed.
    fn store_streaming(
        &self,
        tx: &Transaction<'_>,
        c: &Checksum,
        header: &FileHeader,
        size: u64,
        compressed: &mut dyn Read,
        compressed_len: u64,
    ) -> Result<()> {
        // Why the object was refused, or could not be read back: reported
        // as such, not as the failed write to the staged file it causes.
        let mut refused = None;
        let mut unread = None;
        let written = tx.write_content_with_checksum(header, *c, |w| {
            let mut hashing = Hashing {
                hasher: header.hasher(),
                out: w,
            };
            match archive::inflate_to(compressed, compressed_len, size, &mut hashing) {
                Ok(()) => {
                    let actual = hashing.hasher.finish();
                    if actual == *c {
                        return Ok(());
                    }
                    refused = Some(format!("checksum mismatch (content hashes to {actual})"));
                }
                Err(archive::StreamError::Data(what)) => refused = Some(what),
                Err(archive::StreamError::Read(e)) => unread = Some(e),
                Err(archive::StreamError::Write(e)) => return Err(e),
            }
            Err(std::io::Error::other("not stored"))
        });
        if let Some(what) = refused {
            return Err(self.bad_content(c, what));
        }
        if let Some(e) = unread {
            return Err(self.unreadable_content(c, e));
        }
        Ok(written?)
    }
}

/// Content up to this size is inflated in one piece in memory (the fastest
/// way); larger content goes through in pieces.
const INFLATE_IN_MEMORY: u64 = 16 << 20;

/// Whatever is written, hashed too.
struct Hashing<'w> {
    hasher: strata_store::checksum::Hasher,
    out: &'w mut dyn Write,
}

impl Write for Hashing<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Largest `.filez` header read from a file (its extended attributes).
const MAX_HEADER: u64 = 16 << 20;
