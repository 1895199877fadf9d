//! Errors of publishing and pulling.

/// What can go wrong publishing or pulling. The pull refuses a hostile
/// server's input with a specific variant, so callers and tests can tell
/// a refusal from a transport failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The local repository failed.
    #[error(transparent)]
    Store(#[from] strata_store::Error),
    /// A download failed, or what came back is unusable (connection,
    /// HTTP status, size limit, unparsable reply).
    #[error("{url}: {what}")]
    Fetch {
        /// The URL asked for.
        url: String,
        /// What went wrong.
        what: String,
    },
    /// The server has no such file (HTTP 404, or no such file for `file://`).
    #[error("{url}: not found on the server (HTTP 404)")]
    NotFound {
        /// The URL asked for.
        url: String,
    },
    /// A downloaded object or signature does not match its name or does
    /// not parse.
    #[error("object {object} from {url} is invalid: {what}")]
    BadObject {
        /// The object's name (`<checksum>.<type>`), or the file (`summary.sig`).
        object: String,
        /// Where it came from.
        url: String,
        /// What is wrong with it.
        what: String,
    },
    /// A commit's signature is missing, malformed, or by no trusted key.
    #[error("signature check failed for {what}: {why}")]
    Signature {
        /// What was checked (a commit, the summary).
        what: String,
        /// Why it failed.
        why: String,
    },
    /// The summary is past the expiry its publisher signed into it: the
    /// server may be a mirror frozen in the past.
    #[error(
        "the summary of remote {remote:?} ({url}) expired at {expired}: the server may be a stale or frozen mirror replaying an old signed summary. Ask the publisher to re-sign it; for an air-gapped mirror refreshed by hand, pass --allow-expired-summary to pull or upgrade, or re-add the remote with --ignore-summary-expiry (config summary-expiry=ignore)"
    )]
    SummaryExpired {
        /// The remote's name.
        remote: String,
        /// The summary's URL.
        url: String,
        /// When it expired, as a date.
        expired: String,
    },
    /// An operation refused for a reason given in the message.
    #[error("{0}")]
    Refused(String),
    /// A URL scheme other than http, https or file.
    #[error("unsupported URL {url:?}: use http://, https:// or file://")]
    UnsupportedUrl {
        /// The URL as given.
        url: String,
    },
    /// `remote add` with a name already configured.
    #[error("remote {name:?} already exists (delete it first)")]
    RemoteExists {
        /// The name already taken.
        name: String,
    },
    #[error(
        "{url}: the remote repository is in mode {mode:?}; only archive repositories can be pulled over the network"
    )]
    /// The remote repository is not in archive mode, so it cannot be pulled.
    NotArchive {
        /// The remote repository.
        url: String,
        /// The mode its config declares.
        mode: String,
    },
    #[error(
        "commit {commit} is bound to {bindings:?}, not to {ref_name:?}: refusing it (the server may be swapping branches)"
    )]
    /// The commit's ref binding does not name the ref being pulled.
    WrongBinding {
        /// The commit offered.
        commit: strata_store::Checksum,
        /// The refs it is bound to (`ostree.ref-binding`).
        bindings: Vec<String>,
        /// The ref being pulled.
        ref_name: String,
    },
    #[error(
        "commit {commit} is older than {current}, which {local_ref} has now: refusing a downgrade (pass --allow-downgrade to take it)"
    )]
    /// The server offers a commit older than the local ref's.
    Downgrade {
        /// The commit offered.
        commit: strata_store::Checksum,
        /// The newer commit the local ref has.
        current: strata_store::Checksum,
        /// The local ref (`remote:ref`).
        local_ref: String,
    },
    /// A fetch thread panicked; nothing it fetched was published.
    #[error("{what} panicked")]
    WorkerPanicked {
        /// Which worker.
        what: &'static str,
    },
    /// A key (or key file) does not parse.
    #[error("{what}: {why}")]
    Key {
        /// Where the key came from (an option, a file, a config key).
        what: String,
        /// Why it does not parse.
        why: String,
    },
    /// No remote of that name is configured.
    #[error("remote {0:?} is not configured (see `strata remote list`)")]
    NoSuchRemote(String),
    /// A system call failed; the message names the action and the path.
    #[error("could not {action} {path}: {source}")]
    Io {
        /// The verb, as in "could not {action}".
        action: &'static str,
        /// The file or directory it was done to.
        path: std::path::PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
