//! Errors of deployment operations.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] strata_store::Error),
    #[error(transparent)]
    Remote(#[from] strata_remote::Error),
    #[error(transparent)]
    Boot(#[from] strata_boot::Error),
    #[error("{0}")]
    Refused(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
