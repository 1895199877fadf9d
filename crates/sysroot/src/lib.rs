//! The machine side of strata: deployments of commits in a sysroot, the
//! three-way `/etc` merge, boot entries, rollback and cleanup. Every state
//! change is ordered so the default boot entry always names a complete
//! deployment (see each module's crash argument). The library never prints.

pub mod assess;
pub mod cleanup;
pub mod deploy;
pub mod deployment;
pub mod deployment_name;
pub mod error;
mod etc_diff;
mod etc_dirs;
mod etc_merge;
mod etc_tree;
pub mod failure;
pub mod health;
pub mod install;
mod kargs;
pub mod live;
pub mod origin;
mod rollback;
pub mod settings;
pub mod stage;
pub mod status;
pub mod sysroot;
pub mod update;
pub mod upgrade;
pub mod window;

pub use error::{Error, Result};
pub use sysroot::Sysroot;
