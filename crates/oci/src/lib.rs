//! Commits of a strata repository as OCI images, for container engines:
//! a base image for `podman build`, the image of a toolbox.
//!
//! - [`layer`] writes a commit as one deterministic layer tar (the same
//!   commit gives the same bytes, so the same digest), with `/etc` where
//!   containers expect it and `/var` as a first boot would make it;
//! - [`tmpfiles`] reads the tmpfiles.d lines that say what that is (pure);
//! - [`image`] makes the configuration, manifest and index (pure);
//! - [`layout`] writes them as an OCI image layout or an `oci-archive`.
//!
//! The library never prints.

pub mod error;
pub mod image;
pub mod layer;
pub mod layout;
pub mod tmpfiles;

pub use error::{Error, Result};
pub use image::{COMMIT_LABEL, Compression};
pub use layout::{ExportOptions, Exported, default_tag, export_archive, export_dir, write_layout};
