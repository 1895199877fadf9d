//! Booting deployments: Boot Loader Specification (type 1) entries and the
//! layout of the EFI system partition (ESP).
//!
//! ```text
//! <esp>/
//!   loader/loader.conf
//!   loader/entries/strata-<stateroot>-<generation>[+LEFT[-DONE]].conf
//!   strata/<stateroot>-<bootcsum>/vmlinuz
//!   strata/<stateroot>-<bootcsum>/initramfs.img
//! ```
//!
//! The generation orders entries: the highest that is not bad (boot
//! counting: no tries left) is the default. It appears
//! zero-padded in the file name and as the entry's `version`, so readers
//! that sort by name (grub's blscfg, see ostree#2961) and readers that sort
//! by version (systemd-boot) agree.

pub mod bls;
pub mod disk;
pub mod error;
pub mod esp;
pub mod prepare_tree;
pub mod units;

pub use bls::Entry;
pub use error::{Error, Result};
