//! Fetching files of a remote repository over HTTP(S) or from `file://`.
//!
//! One pooled agent keeps connections alive across the pull's threads.
//! Transient failures (connection errors, timeouts, 5xx, short bodies) are
//! retried with exponential backoff; a 404 is an answer, not a failure.
//! Every body is read with a size limit, so a hostile server cannot make us
//! buffer more than the caller allows.

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};

/// Attempts per request (libostree also tries 5 times).
const ATTEMPTS: u32 = 5;
/// First backoff; doubled after each failed attempt.
const BACKOFF: Duration = Duration::from_millis(200);

pub struct Fetcher {
    base: Base,
    /// Bytes received, for progress and reports.
    pub bytes: AtomicU64,
    /// Requests made (including retries).
    pub requests: AtomicU64,
}

enum Base {
    Http { agent: ureq::Agent, url: String },
    File(PathBuf),
}

impl Fetcher {
    /// A fetcher for the repository at `url`; `connections` bounds the pool.
    pub fn new(url: &str, connections: usize) -> Result<Self> {
        let base = if let Some(path) = url.strip_prefix("file://") {
            Base::File(PathBuf::from(path))
        } else if url.starts_with("http://") || url.starts_with("https://") {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_connect(Some(Duration::from_secs(15)))
                .timeout_recv_body(Some(Duration::from_secs(60)))
                .max_idle_connections_per_host(connections.max(1))
                .max_idle_connections(connections.max(1) * 2)
                .build()
                .into();
            Base::Http {
                agent,
                url: url.trim_end_matches('/').to_owned(),
            }
        } else {
            return Err(Error::Refused(format!(
                "unsupported URL {url:?}: use http://, https:// or file://"
            )));
        };
        Ok(Fetcher {
            base,
            bytes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        })
    }

    /// The URL of a repository-relative path, for messages.
    pub fn url_of(&self, rel: &str) -> String {
        match &self.base {
            Base::Http { url, .. } => format!("{url}/{rel}"),
            Base::File(p) => format!("file://{}", p.join(rel).display()),
        }
    }

    /// Fetches `rel`; `Ok(None)` when the server says it does not exist.
    /// Bodies larger than `limit` bytes are refused.
    pub fn get(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let mut delay = BACKOFF;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            self.requests.fetch_add(1, Ordering::Relaxed);
            match self.try_get(rel, limit) {
                Ok(r) => {
                    if let Some(b) = &r {
                        self.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                    }
                    return Ok(r);
                }
                Err(Attempt::Final(e)) => return Err(e),
                Err(Attempt::Transient(why)) => {
                    tracing::debug!(url = %self.url_of(rel), attempt, %why, "retrying");
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

    fn try_get(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>, Attempt> {
        let url = self.url_of(rel);
        match &self.base {
            Base::File(root) => {
                let path = root.join(rel);
                let f = match std::fs::File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => {
                        return Err(Attempt::Final(Error::Fetch {
                            url,
                            what: e.to_string(),
                        }));
                    }
                };
                let mut out = Vec::new();
                f.take(limit + 1).read_to_end(&mut out).map_err(|e| {
                    Attempt::Final(Error::Fetch {
                        url: url.clone(),
                        what: e.to_string(),
                    })
                })?;
                if out.len() as u64 > limit {
                    return Err(Attempt::Final(too_large(url, limit)));
                }
                Ok(Some(out))
            }
            Base::Http { agent, .. } => {
                let mut resp = match agent.get(&url).call() {
                    Ok(r) => r,
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
                match resp.body_mut().with_config().limit(limit).read_to_vec() {
                    Ok(b) => Ok(Some(b)),
                    Err(ureq::Error::BodyExceedsLimit(_)) => {
                        Err(Attempt::Final(too_large(url, limit)))
                    }
                    Err(e) => Err(Attempt::Transient(format!("reading the body: {e}"))),
                }
            }
        }
    }
}

enum Attempt {
    Transient(String),
    Final(Error),
}

fn too_large(url: String, limit: u64) -> Error {
    Error::Fetch {
        url,
        what: format!("larger than the {limit}-byte limit for this kind of file; refusing it"),
    }
}
