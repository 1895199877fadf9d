//! The strata store: an OSTree-compatible, content-addressed object repository.
//!
//! Pure formats live in [`gvariant`] and [`objects`]; everything that
//! touches the disk is in [`repo`], [`refs`], [`write`](mod@write) and the operations
//! (`checkout`, `fsck`, `prune`). The library never prints.
//!
//! Four modules are plumbing shared with the crates above, which write
//! outside the repository (deployments, the ESP, summaries) under the
//! same rules: [`durable`] (atomic, fsynced replacement), [`lock`] (the
//! repository lock a sysroot operation holds), [`xattr`] (the OSTree form
//! of extended attributes) and [`fault`] (named crash points for the crash
//! tests). [`copy`] is the local pull that `sysroot install` uses.

pub mod archive;
pub mod checkout;
pub mod checksum;
pub mod config;
pub mod copy;
pub mod diff;
pub mod durable;
pub mod error;
pub mod fault;
pub mod fsck;
pub mod gvariant;
pub mod lock;
pub mod objects;
mod objects_walk;
pub mod prune;
pub mod refs;
pub mod remove;
pub mod repo;
mod rev;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
pub mod tree;
pub mod write;
pub mod xattr;

pub use checksum::Checksum;
pub use error::{Error, Result};
pub use objects::{Commit, DirMeta, DirTree, FileHeader, ObjectType};
pub use objects_walk::ObjectName;
pub use refs::RefName;
pub use repo::{ContentReader, Repo, RepoMode};
