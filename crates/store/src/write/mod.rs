//! Writing: transactions, importers (directory, tarball) and commits.

pub mod commit;
pub mod dir;
mod mtree;
pub mod overlay;
mod staged;
pub mod tar;
mod transaction;

pub use commit::{CommitOptions, CommitResult, Parent, Source, commit, commit_with};
pub use mtree::MutableTree;
pub(crate) use transaction::zero_mtime;
pub use transaction::{Stats, Transaction};
