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
