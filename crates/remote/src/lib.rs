//! Publishing and pulling: ed25519 signatures, the summary file, remotes
//! in the repository config, a verified parallel pull over static HTTP (or
//! `file://`), and a small development server. The wire format is OSTree's,
//! so ostree clients and servers work with ours. The library never prints;
//! progress goes through [`progress::Progress`].

pub mod error;
mod fetch;
mod http1;
pub mod keys;
pub mod progress;
pub mod pull;
mod queue;
pub mod remotes;
pub mod serve;
pub mod sign;
pub mod stall;
pub mod summary;

pub use error::{Error, Result};
