//! The `summary` file: every published ref with its commit, so a client
//! resolves refs in one request. GVariant `(a(s(taya{sv}))a{sv})`: refs
//! sorted by name → (commit object size, commit checksum, metadata with
//! `ostree.commit.timestamp` and `version`), then repository metadata.
//! As in libostree, the commit size is little-endian and the timestamps
//! big-endian. `summary.sig` holds its signatures (see [`crate::sign`]).
//!
//! strata adds one repository metadata key, [`EXPIRES`]: when a publisher
//! signs with an expiry, clients refuse the summary after it, so a mirror
//! that keeps serving an old signed summary (a freeze attack) is noticed.
//! ostree ignores metadata keys it does not know.

use std::path::Path;
use std::sync::LazyLock;

use ed25519_dalek::SigningKey;
use strata_store::gvariant::{Type, Value};
use strata_store::objects::commit::{metadata_from_value, metadata_to_value};
use strata_store::{Checksum, ObjectType, Repo, durable};

use crate::error::{Error, Result};
use crate::sign;

/// The GVariant type of the `summary` file.
pub const TYPE: &str = "(a(s(taya{sv}))a{sv})";
/// [`TYPE`], parsed once.
static VARIANT: LazyLock<Type> = LazyLock::new(|| Type::parse(TYPE).expect("static type"));
/// A ref: (name, (commit size, commit checksum, metadata)).
static REF_ENTRY: LazyLock<Type> =
    LazyLock::new(|| Type::parse("(s(taya{sv}))").expect("static type"));
/// Per-ref metadata key: the commit's timestamp.
pub const COMMIT_TIMESTAMP: &str = "ostree.commit.timestamp";
/// Summary metadata key: when the summary was written.
pub const LAST_MODIFIED: &str = "ostree.summary.last-modified";
/// Summary metadata key (strata's own, type `t`, big-endian like
/// ostree's timestamps): seconds since the epoch after which clients
/// refuse the summary.
pub const EXPIRES: &str = "strata.summary.expires";

/// One ref as the summary lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRef {
    /// The ref's name.
    pub name: String,
    /// The commit it points to.
    pub commit: Checksum,
    /// The size of that commit object in bytes.
    pub commit_size: u64,
    /// The commit's timestamp, when listed.
    pub timestamp: Option<u64>,
    /// The commit's version, when listed.
    pub version: Option<String>,
}

/// A repository's `summary` file: its refs, with their commits.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// The refs, sorted by name.
    pub refs: Vec<SummaryRef>,
    /// `a{sv}` metadata about the repository.
    pub metadata: Vec<(String, Value)>,
}

impl Summary {
    /// Serializes to the bytes that are published and signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let refs = self
            .refs
            .iter()
            .map(|r| {
                let mut meta = Vec::new();
                if let Some(t) = r.timestamp {
                    meta.push((COMMIT_TIMESTAMP.to_owned(), Value::Uint64(t.to_be())));
                }
                if let Some(v) = &r.version {
                    meta.push(("ostree.commit.version".to_owned(), Value::str(v.as_str())));
                }
                Value::Tuple(vec![
                    Value::str(r.name.as_str()),
                    Value::Tuple(vec![
                        Value::Uint64(r.commit_size),
                        Value::Bytes(r.commit.as_bytes().to_vec()),
                        metadata_to_value(&meta),
                    ]),
                ])
            })
            .collect();
        Value::Tuple(vec![
            Value::Array(REF_ENTRY.clone(), refs),
            metadata_to_value(&self.metadata),
        ])
        .to_bytes()
    }

    /// Parses a `summary` file.
    pub fn from_bytes(data: &[u8]) -> Result<Self, String> {
        let v = Value::from_bytes(&VARIANT, data).map_err(|e| e.to_string())?;
        let bad = || "unexpected summary layout".to_owned();
        let [refs, meta] = v.as_tuple().ok_or_else(bad)? else {
            return Err(bad());
        };
        let mut out = Summary {
            refs: Vec::new(),
            metadata: metadata_from_value(meta).ok_or_else(bad)?,
        };
        for r in refs.as_array().ok_or_else(bad)? {
            let [name, inner] = r.as_tuple().ok_or_else(bad)? else {
                return Err(bad());
            };
            let [Value::Uint64(size), csum, meta] = inner.as_tuple().ok_or_else(bad)? else {
                return Err(bad());
            };
            let meta = metadata_from_value(meta).ok_or_else(bad)?;
            let timestamp = meta
                .iter()
                .find(|(k, _)| k == COMMIT_TIMESTAMP)
                .and_then(|(_, v)| match v {
                    Value::Uint64(t) => Some(u64::from_be(*t)),
                    _ => None,
                });
            let version = meta
                .iter()
                .find(|(k, _)| k == "ostree.commit.version")
                .and_then(|(_, v)| v.as_str().map(str::to_owned));
            out.refs.push(SummaryRef {
                name: name.as_str().ok_or_else(bad)?.to_owned(),
                commit: csum
                    .as_bytes()
                    .and_then(Checksum::from_slice)
                    .ok_or_else(|| "bad checksum in summary".to_owned())?,
                commit_size: *size,
                timestamp,
                version,
            });
        }
        Ok(out)
    }

    /// The ref called `name`, if listed.
    pub fn lookup(&self, name: &str) -> Option<&SummaryRef> {
        self.refs.iter().find(|r| r.name == name)
    }

    /// When the publisher said the summary expires ([`EXPIRES`]).
    pub fn expires(&self) -> Option<u64> {
        self.metadata
            .iter()
            .find(|(k, _)| k == EXPIRES)
            .and_then(|(_, v)| match v {
                Value::Uint64(t) => Some(u64::from_be(*t)),
                _ => None,
            })
    }

    /// Whether the summary is past its expiry at `now` (seconds since the
    /// epoch); one without an expiry never is.
    pub fn expired_at(&self, now: u64) -> Option<u64> {
        self.expires().filter(|&t| now > t)
    }
}

/// Seconds since the epoch now (0 if the clock is before it).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `2026-01-01 00:00:00 UTC`, for messages.
pub fn format_utc(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .unwrap_or(jiff::Timestamp::MAX)
        .strftime("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// Builds the summary of a repository's local branches.
pub fn build(repo: &Repo) -> Result<Summary> {
    let mut refs = Vec::new();
    for (r, c) in repo.list_refs()? {
        if r.remote.is_some() {
            continue; // like ostree: remote refs are not published
        }
        let bytes = repo.read_meta(&c, ObjectType::Commit)?;
        let commit = repo.load_commit(&c)?;
        refs.push(SummaryRef {
            name: r.name,
            commit: c,
            commit_size: bytes.len() as u64,
            timestamp: Some(commit.timestamp),
            version: commit.version().map(str::to_owned),
        });
    }
    refs.sort_by(|a, b| a.name.cmp(&b.name));
    let now = now();
    let metadata = vec![
        (LAST_MODIFIED.to_owned(), Value::Uint64(now.to_be())),
        (
            "ostree.summary.mode".to_owned(),
            Value::str(repo.mode().config_name()),
        ),
        (
            "ostree.summary.tombstone-commits".to_owned(),
            Value::Bool(false),
        ),
    ];
    Ok(Summary { refs, metadata })
}

/// Writes `summary` (and `summary.sig` when a key is given) into the
/// repository, each atomically. Without a key a stale `summary.sig` is
/// removed, so no signature of another summary is left to confuse clients.
/// `expires` (seconds since the epoch) is recorded as [`EXPIRES`]; it
/// needs a key, since anyone could strip it from an unsigned summary.
pub fn update(repo: &Repo, key: Option<&SigningKey>, expires: Option<u64>) -> Result<Summary> {
    let mut summary = build(repo)?;
    if let Some(t) = expires {
        if key.is_none() {
            return Err(Error::Refused(
                "a summary expiry needs a signature: pass a signing key too".into(),
            ));
        }
        summary
            .metadata
            .push((EXPIRES.to_owned(), Value::Uint64(t.to_be())));
    }
    let bytes = summary.to_bytes();
    let sig_path = repo.path().join("summary.sig");
    if let Some(key) = key {
        let mut detached = Vec::new();
        sign::add_signature(&mut detached, &bytes, key);
        durable::write_file(&sig_path, &sign::detached_to_bytes(&detached), 0o644)?;
    } else {
        remove_if_present(&sig_path)?;
    }
    durable::write_file(&repo.path().join("summary"), &bytes, 0o644)?;
    Ok(summary)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            action: "remove",
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = Summary {
            refs: vec![SummaryRef {
                name: "os/stable".into(),
                commit: Checksum::of(b"x"),
                commit_size: 321,
                timestamp: Some(1_700_000_000),
                version: Some("1.0".into()),
            }],
            metadata: vec![(LAST_MODIFIED.into(), Value::Uint64(5u64.to_be()))],
        };
        assert_eq!(Summary::from_bytes(&s.to_bytes()), Ok(s));
        assert!(Summary::from_bytes(b"garbage").is_err());
    }

    #[test]
    fn expiry() {
        let mut s = Summary::default();
        assert_eq!(s.expired_at(u64::MAX), None, "no expiry, never expired");
        s.metadata
            .push((EXPIRES.into(), Value::Uint64(1_700_000_000u64.to_be())));
        let s = Summary::from_bytes(&s.to_bytes()).expect("parses");
        assert_eq!(s.expires(), Some(1_700_000_000));
        assert_eq!(s.expired_at(1_700_000_000), None, "valid to the second");
        assert_eq!(s.expired_at(1_700_000_001), Some(1_700_000_000));
    }

    #[test]
    fn dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_709_208_000), "2024-02-29 12:00:00 UTC");
        assert_eq!(format_utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
    }
}
