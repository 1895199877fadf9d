//! Errors of publishing and pulling.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] strata_store::Error),
    #[error("{url}: {what}")]
    Fetch { url: String, what: String },
    #[error("{url}: not found on the server (HTTP 404)")]
    NotFound { url: String },
    #[error("object {object} from {url} is invalid: {what}")]
    BadObject {
        object: String,
        url: String,
        what: String,
    },
    #[error("signature check failed for {what}: {why}")]
    Signature { what: String, why: String },
    #[error("{0}")]
    Refused(String),
    #[error("unsupported URL {url:?}: use http://, https:// or file://")]
    UnsupportedUrl { url: String },
    #[error("remote {name:?} already exists (delete it first)")]
    RemoteExists { name: String },
    #[error(
        "{url}: the remote repository is in mode {mode:?}; only archive repositories can be pulled over the network"
    )]
    NotArchive { url: String, mode: String },
    #[error(
        "commit {commit} is bound to {bindings:?}, not to {ref_name:?}: refusing it (the server may be swapping branches)"
    )]
    WrongBinding {
        commit: strata_store::Checksum,
        bindings: Vec<String>,
        ref_name: String,
    },
    #[error(
        "commit {commit} is older than {current}, which {local_ref} has now: refusing a downgrade (pass --allow-downgrade to take it)"
    )]
    Downgrade {
        commit: strata_store::Checksum,
        current: strata_store::Checksum,
        local_ref: String,
    },
    #[error("{what} panicked")]
    WorkerPanicked { what: &'static str },
    #[error("{what}: {why}")]
    Key { what: String, why: String },
    #[error("remote {0:?} is not configured (see `strata remote list`)")]
    NoSuchRemote(String),
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
