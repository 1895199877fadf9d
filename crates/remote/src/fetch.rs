//! Fetching files of a remote repository over HTTP(S) or from `file://`.
//!
//! One pooled agent keeps connections alive across the pull's threads.
//! Transient failures (connection errors, timeouts, stalls, 5xx, short
//! bodies) are retried with exponential backoff; a 404 is an answer, not a
//! failure. Every phase of a request is bounded by the stall window
//! (`stall.rs`): connecting, sending, the response head, and each read of
//! the body, whose speed is watched too.
//! Every body is read with a size limit, so a hostile server cannot make us
//! take more than the caller allows; and a session keeps at most
//! [`BODY_MEMORY`] bytes of a batch's bodies in memory (and as much again
//! for one asked again), a larger body going into a file of its own: a 2 GB
//! object costs a fetch thread no more memory than a small one.
//!
//! Many objects at once go through a [`Session`]: over plain `http://`
//! without a proxy, its requests are pipelined on a connection of its own
//! (`http1.rs`); whatever that cannot answer is asked again here.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::http1::{Bodies, CONNECT_TIMEOUT, Outcome, Pipeline};
use crate::stall::{self, StallLimit, Watched};

/// Attempts per request (libostree also tries 5 times).
const ATTEMPTS: u32 = 5;
/// First backoff; doubled after each failed attempt.
const BACKOFF: Duration = Duration::from_millis(200);
/// Bytes of a batch's bodies a session keeps in memory.
pub const BODY_MEMORY: usize = 16 << 20;

/// A fetched body: in memory, or past [`BODY_MEMORY`] in an anonymous file
/// (read from its start).
pub enum Body<'a> {
    /// In memory.
    Bytes(Cow<'a, [u8]>),
    /// Spooled to an anonymous file, at its start.
    File {
        /// The file.
        file: File,
        /// The body's length in bytes.
        len: u64,
    },
}

impl<'a> Body<'a> {
    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    /// The body in memory, read back from its file if it has one.
    pub fn into_bytes(self) -> io::Result<Cow<'a, [u8]>> {
        match self {
            Body::Bytes(b) => Ok(b),
            Body::File { mut file, len } => {
                let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
                file.read_to_end(&mut out)?;
                Ok(out.into())
            }
        }
    }
}

/// Fetches a repository's files by relative path, over HTTP(S) (with
/// retries) or from a local directory.
pub struct Fetcher {
    base: Base,
    /// Bytes received, for progress and reports.
    pub bytes: AtomicU64,
    /// Requests made (including retries).
    pub requests: AtomicU64,
    /// Answers that came through a pipelined connection.
    pub pipelined: AtomicU64,
    /// Pipelined batches in a row that met a broken connection: at
    /// [`GIVE_UP_PIPELINING`], every session stops pipelining.
    broken_batches: AtomicU32,
    /// Where a session's large bodies go (see [`Fetcher::spool_in`]).
    spool_dir: PathBuf,
    /// When a transfer counts as stalled.
    stall: StallLimit,
}

/// See `Fetcher::broken_batches`: a server or a network path that breaks
/// pipelined connections costs a few batches, not the whole pull.
const GIVE_UP_PIPELINING: u32 = 3;

enum Base {
    Http {
        agent: ureq::Agent,
        url: String,
        /// `host:port` and the path prefix, when requests may be pipelined.
        direct: Option<(String, String)>,
    },
    File(PathBuf),
}

/// Environment variables that send requests through a proxy (ureq reads them).
const PROXY_VARS: [&str; 6] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
];

/// `host:port` and the path of a plain `http://` URL, when we can talk to
/// the server directly: no proxy set, no credentials in the URL.
fn direct_target(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("http://")?;
    if PROXY_VARS
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
    {
        return None;
    }
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') || path.contains(['?', '#']) {
        return None;
    }
    // A port after the host (and after an IPv6 literal's brackets).
    let has_port = authority.rsplit_once(':').is_some_and(|(host, port)| {
        !port.is_empty() && (!host.contains(':') || host.ends_with(']'))
    });
    let authority = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Some((authority, path.trim_end_matches('/').to_owned()))
}

impl Fetcher {
    /// A fetcher for the repository at `url`; `connections` bounds the
    /// pool; a transfer slower than `stall` allows fails (and is retried).
    pub fn new(url: &str, connections: usize, stall: StallLimit) -> Result<Self> {
        let base = if let Some(path) = url.strip_prefix("file://") {
            Base::File(PathBuf::from(path))
        } else if url.starts_with("http://") || url.starts_with("https://") {
            let window = Some(stall.window);
            // No total budget for a body: a large one may take hours, as
            // long as it keeps coming (the watch in `try_get` sees to that).
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_resolve(window)
                .timeout_connect(Some(stall.window.min(CONNECT_TIMEOUT)))
                .timeout_send_request(window)
                .timeout_recv_response(window)
                .timeout_per_read(window)
                .timeout_per_write(window)
                .max_idle_connections_per_host(connections.max(1))
                .max_idle_connections(connections.max(1) * 2)
                .build()
                .into();
            Base::Http {
                agent,
                url: url.trim_end_matches('/').to_owned(),
                direct: direct_target(url),
            }
        } else {
            return Err(Error::UnsupportedUrl {
                url: url.to_owned(),
            });
        };
        Ok(Fetcher {
            base,
            bytes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            pipelined: AtomicU64::new(0),
            broken_batches: AtomicU32::new(0),
            spool_dir: std::env::temp_dir(),
            stall,
        })
    }

    /// Sessions put bodies past [`BODY_MEMORY`] in anonymous files in
    /// `dir` (by default the system's temporary directory, often in memory
    /// itself: a pull passes its repository's `tmp/`).
    pub fn spool_in(mut self, dir: &Path) -> Self {
        self.spool_dir = dir.to_owned();
        self
    }

    fn spool(&self) -> io::Result<File> {
        tempfile::tempfile_in(&self.spool_dir)
    }

    /// What went wrong keeping a large body, and where.
    fn spool_error(&self, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            format!(
                "keeping a large body in a file in {}: {e}",
                self.spool_dir.display()
            ),
        )
    }

    /// A session for fetching many objects, from one thread.
    pub fn session(&self) -> Session<'_> {
        let pipeline = match &self.base {
            Base::Http {
                direct: Some((authority, path)),
                ..
            } => Some((Pipeline::new(authority, self.stall), path.clone())),
            _ => None,
        };
        Session {
            fetcher: self,
            pipeline,
            bodies: Vec::new(),
        }
    }

    /// The URL of a repository-relative path, for messages.
    pub fn url_of(&self, rel: &str) -> String {
        match &self.base {
            Base::Http { url, .. } => format!("{url}/{rel}"),
            Base::File(p) => format!("file://{}", p.join(rel).display()),
        }
    }

    /// Fetches `rel` into memory; `Ok(None)` when the server says it does
    /// not exist. Bodies larger than `limit` bytes are refused.
    pub fn get(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        // Without a memory budget, nothing is kept in a file to read back.
        let body = self.fetch(rel, limit, usize::MAX)?;
        body.map(|b| b.into_bytes().map(Cow::into_owned))
            .transpose()
            .map_err(|e| self.unreadable(rel, e))
    }

    /// A fetched body that could not be read back from its file.
    pub fn unreadable(&self, rel: &str, e: io::Error) -> Error {
        Error::Fetch {
            url: self.url_of(rel),
            what: format!("reading the body back: {e}"),
        }
    }

    /// [`Fetcher::get`], a body past `memory` bytes going into a file.
    fn fetch(&self, rel: &str, limit: u64, memory: usize) -> Result<Option<Body<'static>>> {
        let mut delay = BACKOFF;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            self.requests.fetch_add(1, Ordering::Relaxed);
            match self.try_get(rel, limit, memory) {
                Ok(r) => {
                    if let Some(b) = &r {
                        self.bytes.fetch_add(b.len(), Ordering::Relaxed);
                    }
                    return Ok(r);
                }
                Err(Attempt::Final(e)) => return Err(e),
                Err(Attempt::Transient(why)) => {
                    tracing::info!(url = %self.url_of(rel), attempt, %why, "retrying");
                    last = why;
                    if attempt < ATTEMPTS {
                        std::thread::sleep(delay);
                        delay *= 2;
                    }
                }
            }
        }
        Err(Error::Fetch {
            url: self.url_of(rel),
            what: format!("{last} (gave up after {ATTEMPTS} attempts)"),
        })
    }

    fn try_get(
        &self,
        rel: &str,
        limit: u64,
        memory: usize,
    ) -> Result<Option<Body<'static>>, Attempt> {
        let url = self.url_of(rel);
        match &self.base {
            Base::File(root) => {
                let path = root.join(rel);
                let failed = |e: io::Error| {
                    Attempt::Final(Error::Fetch {
                        url: url.clone(),
                        what: e.to_string(),
                    })
                };
                let mut f = match File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(failed(e)),
                };
                let len = f.metadata().map_err(failed)?.len();
                if len > limit {
                    return Err(Attempt::Final(too_large(url, limit)));
                }
                if len > memory as u64 {
                    // The file itself, unless it changes while we read it.
                    return Ok(Some(Body::File { file: f, len }));
                }
                match read_spooling(&mut f, limit, memory, &|| self.spool()) {
                    Ok(Some(body)) => Ok(Some(body)),
                    Ok(None) => Err(Attempt::Final(too_large(url, limit))),
                    Err(ReadError::Source(e)) => Err(failed(e)),
                    Err(ReadError::Local(e)) => Err(failed(self.spool_error(e))),
                }
            }
            Base::Http { agent, .. } => {
                let mut resp = match agent.get(&url).call() {
                    Ok(r) => r,
                    Err(ureq::Error::Timeout(_)) => {
                        return Err(Attempt::Transient(stall::stalled(self.stall).to_string()));
                    }
                    Err(e) => return Err(Attempt::Transient(e.to_string())),
                };
                let status = resp.status().as_u16();
                match status {
                    200 => {}
                    404 | 410 => return Ok(None),
                    500..=599 | 408 | 429 => {
                        return Err(Attempt::Transient(format!("HTTP {status}")));
                    }
                    _ => {
                        return Err(Attempt::Final(Error::Fetch {
                            url,
                            what: format!("HTTP {status}"),
                        }));
                    }
                }
                let mut reader =
                    Watched::new(resp.body_mut().as_reader(), self.stall, is_ureq_timeout);
                match read_spooling(&mut reader, limit, memory, &|| self.spool()) {
                    Ok(Some(body)) => Ok(Some(body)),
                    Ok(None) => Err(Attempt::Final(too_large(url, limit))),
                    Err(ReadError::Source(e)) => {
                        Err(Attempt::Transient(format!("reading the body: {e}")))
                    }
                    Err(ReadError::Local(e)) => Err(Attempt::Final(Error::Fetch {
                        url,
                        what: self.spool_error(e).to_string(),
                    })),
                }
            }
        }
    }
}

/// Fetches for one thread: see the module docs.
pub struct Session<'f> {
    fetcher: &'f Fetcher,
    /// The pipelined connection and the URL's path prefix.
    pipeline: Option<(Pipeline, String)>,
    /// Where a batch's pipelined bodies land, reused from batch to batch.
    bodies: Vec<u8>,
}

/// A body buffer larger than this is not kept for the next batch.
const KEEP_BODY_BUFFER: usize = 16 << 20;

impl Session<'_> {
    /// Fetches each `(rel, limit)`, in order, with the answers of
    /// [`Fetcher::get`]. The requests go out at once; an answer the
    /// pipeline could not give is asked again through [`Fetcher::get`]
    /// only when the caller takes it from the iterator.
    pub fn get_many<'a>(
        &'a mut self,
        requests: &'a [(String, u64)],
    ) -> impl Iterator<Item = Result<Option<Body<'a>>>> + 'a {
        let fetcher = self.fetcher;
        if self.bodies.capacity() > KEEP_BODY_BUFFER {
            self.bodies = Vec::new();
        }
        let spool = || fetcher.spool();
        let pipelining = fetcher.broken_batches.load(Ordering::Relaxed) < GIVE_UP_PIPELINING;
        let outcomes: Vec<Option<Outcome>> = match &mut self.pipeline {
            Some((pipeline, prefix)) if pipelining => {
                let paths: Vec<(String, u64)> = requests
                    .iter()
                    .map(|(rel, limit)| (format!("{prefix}/{rel}"), *limit))
                    .collect();
                fetcher
                    .requests
                    .fetch_add(paths.len() as u64, Ordering::Relaxed);
                let mut bodies = Bodies {
                    buf: &mut self.bodies,
                    memory: BODY_MEMORY,
                    spool: &spool,
                    spools: 1,
                };
                let outcomes = pipeline.get_all(&paths, &mut bodies);
                if outcomes.iter().any(|o| matches!(o, Outcome::Broken(_))) {
                    fetcher.broken_batches.fetch_add(1, Ordering::Relaxed);
                } else {
                    fetcher.broken_batches.store(0, Ordering::Relaxed);
                }
                outcomes.into_iter().map(Some).collect()
            }
            _ => requests.iter().map(|_| None).collect(),
        };
        let bodies: &'a [u8] = &self.bodies;
        let ask_again = move |rel: &String, limit: u64| fetcher.fetch(rel, limit, BODY_MEMORY);
        requests
            .iter()
            .zip(outcomes)
            .map(move |((rel, limit), outcome)| {
                let answered = match outcome {
                    Some(Outcome::Body(range)) => {
                        Ok(Some(Body::Bytes(Cow::Borrowed(&bodies[range]))))
                    }
                    Some(Outcome::Spooled(file, len)) => Ok(Some(Body::File { file, len })),
                    Some(Outcome::Missing) => Ok(None),
                    Some(Outcome::TooLarge) => Err(too_large(fetcher.url_of(rel), *limit)),
                    Some(Outcome::TooLargeForMemory) => return ask_again(rel, *limit),
                    Some(Outcome::Retry(why) | Outcome::Broken(why)) => {
                        tracing::debug!(url = %fetcher.url_of(rel), %why, "asking again");
                        return ask_again(rel, *limit);
                    }
                    None => return ask_again(rel, *limit),
                };
                fetcher.pipelined.fetch_add(1, Ordering::Relaxed);
                if let Ok(Some(b)) = &answered {
                    fetcher.bytes.fetch_add(b.len(), Ordering::Relaxed);
                }
                answered
            })
    }
}

/// A read that ureq timed out (its per-read timeout is the stall window).
fn is_ureq_timeout(e: &io::Error) -> bool {
    stall::is_socket_timeout(e)
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)))
}

enum Attempt {
    Transient(String),
    Final(Error),
}

enum ReadError {
    /// Reading what was fetched failed (the server's side).
    Source(io::Error),
    /// Keeping it failed (our side: the spool file).
    Local(io::Error),
}

/// Reads `r` to its end: into memory up to `memory` bytes, the whole of a
/// longer body into a file from `spool`. `Ok(None)` when it holds more
/// than `limit` bytes.
fn read_spooling(
    r: &mut dyn Read,
    limit: u64,
    memory: usize,
    spool: &dyn Fn() -> io::Result<File>,
) -> std::result::Result<Option<Body<'static>>, ReadError> {
    let in_memory = limit.min(memory as u64);
    let mut buf = Vec::new();
    r.take(in_memory + 1)
        .read_to_end(&mut buf)
        .map_err(ReadError::Source)?;
    if buf.len() as u64 <= in_memory {
        return Ok(Some(Body::Bytes(Cow::Owned(buf))));
    }
    if in_memory == limit {
        return Ok(None);
    }
    let mut file = spool().map_err(ReadError::Local)?;
    file.write_all(&buf).map_err(ReadError::Local)?;
    let mut len = buf.len() as u64;
    drop(buf);
    let mut chunk = vec![0; 1 << 16];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::Source(e)),
        };
        len += n as u64;
        if len > limit {
            return Ok(None);
        }
        file.write_all(&chunk[..n]).map_err(ReadError::Local)?;
    }
    file.rewind().map_err(ReadError::Local)?;
    Ok(Some(Body::File { file, len }))
}

fn too_large(url: String, limit: u64) -> Error {
    Error::Fetch {
        url,
        what: format!("larger than the {limit}-byte limit for this kind of file; refusing it"),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn direct_targets() {
        if PROXY_VARS.iter().any(|v| std::env::var_os(v).is_some()) {
            strata_store::test_util::skip("a proxy is set in the environment");
            return;
        }
        let t = |u: &str| direct_target(u).map(|(a, p)| format!("{a} {p}"));
        assert_eq!(t("http://127.0.0.1:8080"), Some("127.0.0.1:8080 ".into()));
        assert_eq!(
            t("http://example.org/repo/"),
            Some("example.org:80 /repo".into())
        );
        assert_eq!(t("http://[::1]:81/r"), Some("[::1]:81 /r".into()));
        assert_eq!(t("http://[::1]/r"), Some("[::1]:80 /r".into()));
        assert_eq!(t("http://user:pw@host/r"), None, "credentials: ureq's job");
        assert_eq!(t("https://host/r"), None, "TLS: ureq's job");
        assert_eq!(t("http://host/r?x=1"), None);
    }

    #[test]
    fn bodies_past_the_memory_budget_go_to_a_file() {
        let spool = || tempfile::tempfile();
        let read = |data: &[u8], limit: u64, memory: usize| match read_spooling(
            &mut &data[..],
            limit,
            memory,
            &spool,
        ) {
            Ok(Some(Body::Bytes(b))) => format!("memory {:?}", String::from_utf8_lossy(&b)),
            Ok(Some(Body::File { mut file, len })) => {
                let mut text = String::new();
                file.read_to_string(&mut text).expect("read back");
                format!("file {len} {text:?}")
            }
            Ok(None) => "too large".to_owned(),
            Err(ReadError::Source(e) | ReadError::Local(e)) => format!("error {e}"),
        };
        assert_eq!(read(b"hello", 10, 5), "memory \"hello\"");
        assert_eq!(read(b"hello", 10, 4), "file 5 \"hello\"");
        assert_eq!(read(b"hello", 4, 100), "too large");
        assert_eq!(
            read(b"hello", 4, 2),
            "too large",
            "the limit holds in a file too"
        );
        assert_eq!(read(b"", 4, 0), "memory \"\"");
        let failing = || Err(io::Error::other("disk full"));
        assert!(matches!(
            read_spooling(&mut &b"hello"[..], 10, 2, &failing),
            Err(ReadError::Local(_))
        ));
    }

    fn files() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a"), b"aaaa").expect("write");
        std::fs::write(dir.path().join("big"), vec![7u8; 1000]).expect("write");
        dir
    }

    fn answers(f: &Fetcher, requests: &[(&str, u64)]) -> Vec<String> {
        let requests: Vec<(String, u64)> = requests
            .iter()
            .map(|(r, l)| ((*r).to_owned(), *l))
            .collect();
        f.session()
            .get_many(&requests)
            .map(|r| match r {
                Ok(Some(b)) => format!("{} bytes", b.len()),
                Ok(None) => "missing".into(),
                Err(e) => format!("error: {e}"),
            })
            .collect()
    }

    /// Against the development server, which reads pipelined requests in
    /// turn: answers in order; after a body over the limit the connection
    /// is dropped and the rest are asked again.
    #[test]
    fn pipelined_against_a_real_server() {
        if PROXY_VARS.iter().any(|v| std::env::var_os(v).is_some()) {
            strata_store::test_util::skip("a proxy is set in the environment");
            return;
        }
        let dir = files();
        let root = dir.path().to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            crate::serve::run(&root, "127.0.0.1:0", |a| {
                let _ = tx.send(a);
            })
        });
        let addr = rx.recv().expect("server address");
        let f = Fetcher::new(&format!("http://{addr}"), 2, StallLimit::default()).expect("fetcher");
        let got = answers(&f, &[("a", 10), ("nope", 10), ("big", 10_000), ("a", 10)]);
        assert_eq!(got, ["4 bytes", "missing", "1000 bytes", "4 bytes"]);
        assert_eq!(f.pipelined.load(Ordering::Relaxed), 4, "all four pipelined");
        let got = answers(&f, &[("big", 10), ("a", 10)]);
        assert!(got[0].contains("limit"), "{got:?}");
        assert_eq!(got[1], "4 bytes");
        assert_eq!(
            f.pipelined.load(Ordering::Relaxed),
            5,
            "the second asked again"
        );
    }

    /// A server that answers one request per connection and hangs up:
    /// every request still gets its answer.
    #[test]
    fn a_server_that_hangs_up_after_each_answer() {
        if PROXY_VARS.iter().any(|v| std::env::var_os(v).is_some()) {
            strata_store::test_util::skip("a proxy is set in the environment");
            return;
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = (&stream).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            }
        });
        let f = Fetcher::new(&format!("http://{addr}"), 2, StallLimit::default()).expect("fetcher");
        let got = answers(&f, &[("x", 10), ("y", 10), ("z", 10)]);
        assert_eq!(got, ["2 bytes", "2 bytes", "2 bytes"]);
        // The first answer may be lost to the reset of the hang-up too.
        assert!(f.pipelined.load(Ordering::Relaxed) <= 1, "two asked again");
        // Broken batch after broken batch: pipelining stops.
        for _ in 0..GIVE_UP_PIPELINING {
            answers(&f, &[("x", 10), ("y", 10)]);
        }
        assert!(
            f.broken_batches.load(Ordering::Relaxed) >= GIVE_UP_PIPELINING,
            "every batch met a hang-up"
        );
        let before = f.pipelined.load(Ordering::Relaxed);
        let got = answers(&f, &[("x", 10), ("y", 10)]);
        assert_eq!(got, ["2 bytes", "2 bytes"]);
        assert_eq!(
            f.pipelined.load(Ordering::Relaxed),
            before,
            "no longer pipelined"
        );
    }
}
